package probe

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func udpServer(t *testing.T, reply func(p []byte) []byte) (netip.AddrPort, chan []byte) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	got := make(chan []byte, 4)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p := append([]byte(nil), buf[:n]...)
			got <- p
			if r := reply(p); r != nil {
				pc.WriteTo(r, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), got
}

func closedUDPPort(t *testing.T) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	return a
}

func TestUDP(t *testing.T) {
	noLeak(t)
	ctx := ctxT(t)
	const to = 300 * time.Millisecond
	t.Run("silence is success, default payload", func(t *testing.T) {
		a, got := udpServer(t, func([]byte) []byte { return nil })
		if r := (&UDP{Conn: Conn{Addr: a, Timeout: to}}).Check(ctx); !r.OK {
			t.Fatalf("check failed: %s", r.Reason)
		}
		if p := <-got; !bytes.Equal(p, []byte("keepalived check - keepalived ch")) {
			t.Errorf("payload %q, want keepalived's 32-byte filler", p)
		}
	})
	t.Run("port unreachable fails", func(t *testing.T) {
		a := closedUDPPort(t)
		r := (&UDP{Conn: Conn{Addr: a, Timeout: to}}).Check(ctx)
		if r.OK {
			t.Fatal("check of a closed UDP port succeeded")
		}
		wantReason(t, r.Reason, "ICMP port unreachable")
	})
	t.Run("require_reply times out", func(t *testing.T) {
		a, _ := udpServer(t, func([]byte) []byte { return nil })
		r := (&UDP{Conn: Conn{Addr: a, Timeout: to}, RequireReply: true}).Check(ctx)
		if r.OK {
			t.Fatal("silent server passed require_reply")
		}
		wantReason(t, r.Reason, "no reply within 300ms")
	})
	t.Run("payload and reply with mask", func(t *testing.T) {
		a, got := udpServer(t, func(p []byte) []byte { return []byte{0xab, 0x12, 0x7f, 0x03} })
		data, mask, err := ParseHexString("ab 12 Xf", true)
		if err != nil {
			t.Fatal(err)
		}
		u := &UDP{Conn: Conn{Addr: a, Timeout: to}, Payload: []byte{1, 2, 3}, RequireReply: true, Reply: data, ReplyMask: mask, MaxReplyLen: 255}
		if r := u.Check(ctx); !r.OK {
			t.Fatalf("check failed: %s", r.Reason)
		}
		if p := <-got; !bytes.Equal(p, []byte{1, 2, 3}) {
			t.Errorf("payload % x, want 01 02 03", p)
		}
		u.Reply = []byte{0xab, 0x13}
		r := u.Check(ctx)
		<-got
		if r.OK {
			t.Fatal("mismatched reply passed")
		}
		wantReason(t, r.Reason, "byte 1 is 0x12, want 0x13")
		u.Reply, u.MinReplyLen = data, 5
		r = u.Check(ctx)
		<-got
		if r.OK {
			t.Fatal("short reply passed min_reply_length")
		}
		wantReason(t, r.Reason, "length 4 outside 5-255")
	})
}

func TestParseHexString(t *testing.T) {
	// keepalived.conf(5): "Ab12f 3 456 546443123" is
	// AB 12 0F 03 45 06 54 64 43 12 03.
	got, mask, err := ParseHexString("Ab12f 3 456 546443123", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if mask != nil {
		t.Errorf("mask % x without x digits", mask)
	}
	got, mask, err = ParseHexString("1x X2", true)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]byte{{0x10, 0x02}, {0x0f, 0xf0}}, [][]byte{got, mask}); diff != "" {
		t.Errorf("masked (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "  ", "zz", "1\t2"} {
		if _, _, err := ParseHexString(bad, true); err == nil {
			t.Errorf("ParseHexString(%q) succeeded", bad)
		}
	}
	if _, _, err := ParseHexString("1x", false); err == nil {
		t.Error("x accepted without mask")
	}
}
