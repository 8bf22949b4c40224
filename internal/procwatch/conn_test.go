package procwatch

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// le32 renders v in the machine's byte order (the connector speaks host
// order); the golden messages below are written for little-endian hosts.
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// cnHeader is a cn_msg for the proc connector.
func cnHeader(seq, ack uint32, dataLen uint16) []byte {
	return cat(
		le32(1), le32(1), // id: CN_IDX_PROC, CN_VAL_PROC
		le32(seq), le32(ack), // seq, ack
		[]byte{byte(dataLen), byte(dataLen >> 8)}, []byte{0, 0}, // len, flags
	)
}

// procHeader is proc_event's what, cpu and timestamp_ns.
func procHeader(what, cpu uint32, ts uint64) []byte {
	return cat(le32(what), le32(cpu), binary.LittleEndian.AppendUint64(nil, ts))
}

func nlmsg(payload []byte) []byte {
	return cat(le32(uint32(16+len(payload))), []byte{3, 0, 0, 0}, le32(0), le32(0), payload) // len, NLMSG_DONE, flags, seq, pid
}

func TestParse(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("golden messages are little-endian")
	}
	comm := make([]byte, 16)
	copy(comm, "Web Content")
	tests := []struct {
		name string
		msg  []byte
		want Event
	}{
		{
			name: "fork",
			msg: cat(cnHeader(7, 0, 40), procHeader(0x1, 1, 12345),
				le32(100), le32(100), le32(200), le32(200), // parent pid/tgid, child pid/tgid
				make([]byte, 8)), // rest of the union
			want: Event{Kind: EventFork, CPU: 1, Timestamp: 12345, Seq: 7, ParentPID: 100, ParentTGID: 100, PID: 200, TGID: 200},
		},
		{
			name: "exec",
			msg:  cat(cnHeader(8, 0, 40), procHeader(0x2, 0, 1), le32(200), le32(200), make([]byte, 16)),
			want: Event{Kind: EventExec, Timestamp: 1, Seq: 8, PID: 200, TGID: 200},
		},
		{
			name: "comm",
			msg:  cat(cnHeader(9, 0, 40), procHeader(0x200, 0, 2), le32(201), le32(200), comm),
			want: Event{Kind: EventComm, Timestamp: 2, Seq: 9, PID: 201, TGID: 200, Comm: "Web Content"},
		},
		{
			name: "exit",
			msg: cat(cnHeader(10, 0, 40), procHeader(0x80000000, 1, 3), le32(200), le32(200),
				le32(9), le32(17), // exit_code (killed by 9), exit_signal SIGCHLD
				make([]byte, 8)),
			want: Event{Kind: EventExit, CPU: 1, Timestamp: 3, Seq: 10, PID: 200, TGID: 200, ExitCode: 9, ExitSignal: 17},
		},
		{
			// cn_proc.c cn_proc_ack: what NONE, ack = request's ack + 1, err.
			name: "acknowledgement refused",
			msg:  cat(cnHeader(190, 43, 40), procHeader(0, 0, 4), le32(1), make([]byte, 20)), // err EPERM
			want: Event{Kind: EventNone, Timestamp: 4, Seq: 190, Ack: 43, Err: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.msg)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			evs, err := ParseNetlink(nlmsg(tt.msg))
			if err != nil || len(evs) != 1 || evs[0] != tt.want {
				t.Errorf("ParseNetlink = %+v, %v", evs, err)
			}
			// Every truncation is an error, never a panic.
			for n := 0; n < len(tt.msg)-16; n++ {
				if _, err := Parse(tt.msg[:n]); err == nil {
					t.Errorf("Parse of %d of %d bytes succeeded", n, len(tt.msg))
				}
			}
		})
	}
	if _, err := Parse(cat(le32(4), le32(1), make([]byte, 60))); err == nil {
		t.Error("message for another connector accepted")
	}
}

// FuzzParseNetlink: never panics; every event returned has a known layout.
func FuzzParseNetlink(f *testing.F) {
	f.Add(nlmsg(cat(cnHeader(1, 0, 40), procHeader(2, 0, 0), make([]byte, 24))))
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseNetlink(b)
		_, _ = Parse(b)
	})
}
