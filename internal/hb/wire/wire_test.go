package wire

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// keys used when testdata/capture was recorded (TestCaptureHeartbeat).
var captureKeys = map[string]*Auth{
	"crc":  {Active: 3, Methods: map[int]Method{3: {Type: "crc"}}},
	"md5":  {Active: 3, Methods: map[int]Method{3: {Type: "md5", Key: "hello!"}}},
	"sha1": {Active: 3, Methods: map[int]Method{3: {Type: "sha1", Key: "s3cret"}}},
}

// Every packet two real heartbeat 3.0.6 nodes exchanged parses, passes both
// of heartbeat's authentications, and re-encodes to the same bytes.
func TestGoldenCaptures(t *testing.T) {
	files, _ := filepath.Glob("testdata/capture/*.bin")
	if len(files) < 20 {
		t.Fatalf("only %d golden captures", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			a := captureKeys[strings.SplitN(filepath.Base(f), "-", 2)[0]]
			p, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Format != Netstring || p.Trailer == "" {
				t.Fatalf("format %v trailer %q", p.Format, p.Trailer)
			}
			if err := Verify(p, a); err != nil {
				t.Errorf("trailer: %v", err)
			}
			tok, _ := p.Msg.Get(FAuth)
			if err := a.Check(p.Msg.Classic(), tok); err != nil {
				t.Errorf("auth field: %v", err)
			}
			// Re-signing the same fields gives heartbeat's bytes exactly.
			m := p.Msg.Clone()
			got, err := Marshal(m, a)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b) {
				t.Errorf("re-encoded differs:\n got %q\nwant %q", got, b)
			}
			// A flipped byte in a value fails authentication.
			bad := bytes.Replace(b, []byte("src="), []byte("src=X"), 1)
			bad = bytes.Replace(bad, []byte("12:(0)src="), []byte("13:(0)src="), 1)
			bad = bytes.Replace(bad, []byte("11:(0)src="), []byte("12:(0)src="), 1)
			if q, err := Parse(bad); err == nil {
				if Verify(q, a) == nil {
					t.Error("tampered packet verified")
				}
			}
		})
	}
}

// Annotated golden: heartbeat's status heartbeat, md5 key "hello!".
func TestGoldenStatusFields(t *testing.T) {
	b, err := os.ReadFile("testdata/capture/md5-status-up.bin")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range p.Msg.Fields {
		names = append(names, f.Name)
	}
	// heartbeat.c send_local_status + ha_msg_internal.c defaults[]:
	want := []string{
		"t", "st", // type=status, status up/active/init
		"dt",             // our deadtime in ms, hex
		"protocol",       // 1: flow control (acks) spoken
		"src", "srcuuid", // node name, 16-byte binary uuid
		"seq", "hg", "ts", // sequence, generation, time (hex)
		"ld", "ttl", // load average, hop count
		"auth", // add_msg_auth over the classic text
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if u, _ := p.Msg.Get(FOrigUUID); len(u) != 16 {
		t.Errorf("srcuuid is %d bytes", len(u))
	}
}

func TestCRC(t *testing.T) {
	// POSIX cksum's CRC without the length: "123456789" -> 0x765e7680
	// (CRC-32/POSIX check value 0x765e7680).
	if got := CRC([]byte("123456789")); got != 0x765e7680 {
		t.Errorf("CRC = %#x", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", ErrShort},
		{"hello world", ErrFraming},
		{"###\n5:(0)t=,", ErrNetstring},
		{"###\n99:(0)t=status,%%%\n", ErrNetstring},
		{"###\n8:(0)t=sta,", ErrNetstring},
		{"###\n5:t=abc,%%%\n", ErrField},
		{"###\n7:(2)t=ab,%%%\n", ErrFieldType},
		{"###\n8:(0)t=stat,%%%\n4:xyz,junk", ErrNetstring},
		{">>>\nt=status\nno equals\n<<<\n", ErrField},
		{">>>\nt=status\n", ErrField},
	} {
		if _, err := Parse([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want.Error()) {
			t.Errorf("Parse(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestClassicRoundTrip(t *testing.T) {
	a := captureKeys["sha1"]
	m := &Message{}
	m.Set(FType, TStatus)
	m.Set(FOrig, "ha1")
	m.SetBinary(FOrigUUID, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff})
	b, err := MarshalClassic(m, a)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(p, a); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, &p.Msg); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// FuzzParse: Parse never panics, and whatever parses re-encodes (netstring)
// to a packet that parses to the same fields and verifies.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/capture/*.bin")
	for _, fn := range files {
		b, _ := os.ReadFile(fn)
		f.Add(b)
	}
	f.Add([]byte(">>>\nt=status\n(1)srcuuid=AAEC\n<<<\n"))
	a := captureKeys["md5"]
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		m := p.Msg.Clone()
		for _, fl := range m.Fields {
			if strings.ContainsAny(fl.Name, "=") || fl.Name == FAuth {
				return
			}
		}
		out, err := Marshal(m, a)
		if err != nil {
			return
		}
		q, err := Parse(out)
		if err != nil {
			t.Fatalf("re-encoded packet does not parse: %v\n%q", err, out)
		}
		if err := Verify(q, a); err != nil {
			t.Fatalf("re-encoded packet does not verify: %v", err)
		}
		if diff := cmp.Diff(m, &q.Msg); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
	})
}
