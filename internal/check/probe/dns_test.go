package probe

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDNSQuery(t *testing.T) {
	tests := []struct {
		name  string
		qtype uint16
		qname string
		want  []byte
	}{
		{
			// check_dns.c defaults: SOA for the root.
			name: "defaults", want: []byte{
				0x12, 0x34, // ID
				0x01, 0x00, // RD
				0, 1, 0, 0, 0, 0, 0, 0, // QD 1, AN NS AR 0
				0,    // root
				0, 6, // SOA
				0, 1, // IN
			},
		},
		{
			name: "A www.example.com.", qtype: 1, qname: "www.example.com.", want: []byte{
				0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
				3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
				0, 1, 0, 1,
			},
		},
	}
	for _, tt := range tests {
		got, err := dnsQuery(0x1234, tt.qtype, tt.qname)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	for _, bad := range []string{".com", "a..b"} {
		if _, err := dnsQuery(1, 1, bad); err == nil {
			t.Errorf("dnsQuery(%q) accepted an empty label", bad)
		}
	}
	if ty, err := ParseDNSType("aaaa"); err != nil || ty != 28 {
		t.Errorf("ParseDNSType(aaaa) = %d, %v", ty, err)
	}
}

// dnsResponder answers each query with the replies reply returns.
func dnsResponder(t *testing.T, reply func(q []byte) [][]byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, r := range reply(append([]byte(nil), buf[:n]...)) {
				pc.WriteTo(r, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func answer(q []byte, id uint16, flags uint16) []byte {
	r := append([]byte(nil), q...)
	binary.BigEndian.PutUint16(r, id)
	binary.BigEndian.PutUint16(r[2:], flags)
	return r
}

func TestDNS(t *testing.T) {
	noLeak(t)
	ctx := ctxT(t)
	id := func(q []byte) uint16 { return binary.BigEndian.Uint16(q) }
	tests := []struct {
		name   string
		reply  func(q []byte) [][]byte
		ok     bool
		reason string
	}{
		{name: "answer", reply: func(q []byte) [][]byte { return [][]byte{answer(q, id(q), 0x8180)} }, ok: true},
		{
			name: "wrong id and queries are ignored",
			reply: func(q []byte) [][]byte {
				return [][]byte{answer(q, id(q)+1, 0x8180), answer(q, id(q), 0x0100), q[:5], answer(q, id(q), 0x8180)}
			},
			ok: true,
		},
		{name: "NXDOMAIN fails", reply: func(q []byte) [][]byte { return [][]byte{answer(q, id(q), 0x8183)} }, reason: "rcode 3 (NXDOMAIN)"},
		{name: "REFUSED fails", reply: func(q []byte) [][]byte { return [][]byte{answer(q, id(q), 0x8185)} }, reason: "rcode 5 (REFUSED)"},
		{name: "silence times out", reply: func(q []byte) [][]byte { return nil }, reason: "timeout after 300ms"},
		{name: "only mismatched ids time out", reply: func(q []byte) [][]byte { return [][]byte{answer(q, id(q)^0xffff, 0x8180)} }, reason: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := dnsResponder(t, tt.reply)
			r := (&DNS{Conn: Conn{Addr: a, Timeout: 300 * time.Millisecond}, Type: 1, Name: "www.example.com"}).Check(ctx)
			if r.OK != tt.ok {
				t.Fatalf("OK %v (%s), want %v", r.OK, r.Reason, tt.ok)
			}
			if tt.reason != "" {
				wantReason(t, r.Reason, tt.reason)
			}
		})
	}
}
