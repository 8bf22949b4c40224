package netif

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// attr encodes one rtattr (native-endian header, 4-byte aligned).
func attr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, (4+len(v)+3)&^3)
	binary.NativeEndian.PutUint16(b[0:2], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func ifaddrmsg(family, plen, flags, scope byte, index uint32) []byte {
	b := []byte{family, plen, flags, scope, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[4:], index)
	return b
}

func u32(v uint32) []byte { b := make([]byte, 4); binary.NativeEndian.PutUint32(b, v); return b }

func TestParseAddrMsg(t *testing.T) {
	v4 := []byte{192, 168, 1, 100}
	v6 := netip.MustParseAddr("fd00::100").AsSlice()
	peer := []byte{10, 9, 9, 2}
	tests := []struct {
		name string
		msg  []byte
		want Addr
		err  bool
	}{
		{
			name: "IPv4 VIP with label, brd, flags and proto",
			msg: bytes.Join([][]byte{
				ifaddrmsg(2, 24, 0x80, 0, 7),      // AF_INET /24, IFA_F_PERMANENT, scope global, ifindex 7
				attr(1, v4),                       // IFA_ADDRESS
				attr(2, v4),                       // IFA_LOCAL
				attr(4, []byte{192, 168, 1, 255}), // IFA_BROADCAST
				attr(3, []byte("eth0:1\x00")),     // IFA_LABEL
				attr(8, u32(0x81)),                // IFA_FLAGS secondary|permanent
				attr(11, []byte{18}),              // IFA_PROTO keepalived
			}, nil),
			want: Addr{Prefix: netip.MustParsePrefix("192.168.1.100/24"), Broadcast: netip.MustParseAddr("192.168.1.255"),
				Label: "eth0:1", Flags: 0x81, Proto: 18, LinkIndex: 7},
		},
		{
			name: "IPv4 peer",
			msg: bytes.Join([][]byte{
				ifaddrmsg(2, 32, 0, 0, 3),
				attr(1, peer), // IFA_ADDRESS = peer
				attr(2, v4),   // IFA_LOCAL
			}, nil),
			want: Addr{Prefix: netip.MustParsePrefix("192.168.1.100/32"), Peer: netip.MustParseAddr("10.9.9.2"), LinkIndex: 3},
		},
		{
			name: "IPv6 address only",
			msg: bytes.Join([][]byte{
				ifaddrmsg(10, 128, 0, 253, 2), // AF_INET6 /128 scope link
				attr(1, v6),
			}, nil),
			want: Addr{Prefix: netip.MustParsePrefix("fd00::100/128"), Scope: ScopeLink, LinkIndex: 2},
		},
		{name: "short header", msg: []byte{2, 24, 0}, err: true},
		{name: "unknown family", msg: ifaddrmsg(7, 0, 0, 0, 1), err: true},
		{name: "prefix too long", msg: append(ifaddrmsg(2, 33, 0, 0, 1), attr(2, v4)...), err: true},
		{name: "no address", msg: ifaddrmsg(2, 24, 0, 0, 1), err: true},
		{name: "address of wrong length", msg: append(ifaddrmsg(2, 24, 0, 0, 1), attr(2, v6)...), err: true},
		{name: "bad flags length", msg: bytes.Join([][]byte{ifaddrmsg(2, 24, 0, 0, 1), attr(2, v4), attr(8, []byte{1})}, nil), err: true},
		{name: "bad proto length", msg: bytes.Join([][]byte{ifaddrmsg(2, 24, 0, 0, 1), attr(2, v4), attr(11, []byte{1, 2})}, nil), err: true},
		{name: "truncated attribute", msg: append(ifaddrmsg(2, 24, 0, 0, 1), 0x20, 0, 2, 0, 1), err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAddrMsg(tt.msg)
			if tt.err {
				if err == nil {
					t.Fatalf("parseAddrMsg: want error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("parseAddrMsg (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseAddrMsg: parseAddrMsg never panics, and what it accepts has a
// valid prefix.
func FuzzParseAddrMsg(f *testing.F) {
	f.Add(append(ifaddrmsg(2, 24, 0, 0, 1), attr(2, []byte{1, 2, 3, 4})...))
	f.Add(append(ifaddrmsg(10, 64, 0, 0, 1), attr(1, make([]byte, 16))...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAddrMsg(b)
		if err == nil && !a.Prefix.IsValid() {
			t.Fatalf("accepted %x with invalid prefix %v", b, a.Prefix)
		}
	})
}
