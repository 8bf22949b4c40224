package netif

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSourceAddr(t *testing.T) {
	a := func(p string, idx int, flags uint32, proto uint8) Addr {
		return Addr{Prefix: netip.MustParsePrefix(p), LinkIndex: idx, Flags: flags, Proto: proto}
	}
	tests := []struct {
		name  string
		addrs []Addr
		v6    bool
		want  string // "" for none
	}{
		{"none", nil, false, ""},
		{"first primary", []Addr{a("10.0.0.1/24", 2, 0, 0), a("10.0.0.2/24", 2, 0, 0)}, false, "10.0.0.1"},
		{"secondary skipped", []Addr{a("10.0.0.9/24", 2, unix.IFA_F_SECONDARY, 0), a("10.0.0.1/24", 2, 0, 0)}, false, "10.0.0.1"},
		{"other link skipped", []Addr{a("10.0.0.9/24", 3, 0, 0)}, false, ""},
		{"VIP skipped", []Addr{a("10.0.0.100/24", 2, 0, AddrProtoKeepalived), a("10.0.0.1/24", 2, 0, 0)}, false, "10.0.0.1"},
		{"IPv6 global is not a source", []Addr{a("fd00::1/64", 2, 0, 0)}, true, ""},
		{"IPv6 link-local", []Addr{a("fd00::1/64", 2, 0, 0), a("fe80::1/64", 2, unix.IFA_F_PERMANENT, 0)}, true, "fe80::1"},
		{"IPv6 tentative", []Addr{a("fe80::1/64", 2, unix.IFA_F_TENTATIVE, 0)}, true, ""},
		{"IPv6 optimistic", []Addr{a("fe80::1/64", 2, unix.IFA_F_TENTATIVE|unix.IFA_F_OPTIMISTIC, 0)}, true, "fe80::1"},
		{"IPv6 DAD failed", []Addr{a("fe80::1/64", 2, unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED, 0)}, true, ""},
		{"IPv6 next usable", []Addr{a("fe80::1/64", 2, unix.IFA_F_TENTATIVE, 0), a("fe80::2/64", 2, 0, 0)}, true, "fe80::2"},
		{"IPv4 asked, IPv6 only", []Addr{a("fe80::1/64", 2, 0, 0)}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := SourceAddr(tt.addrs, 2, tt.v6, AddrProtoKeepalived)
			if tt.want == "" {
				if ok {
					t.Fatalf("SourceAddr = %v, want none", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("SourceAddr = %v, %v; want %s", got, ok, tt.want)
			}
		})
	}
}
