package netif

import (
	"net/netip"
	"testing"
)

func lft(n uint32) *uint32 { return &n }

func TestVIPDefaults(t *testing.T) {
	tests := []struct {
		name      string
		vip       VIP
		wantFlags uint32
		wantLft   uint32
	}{
		{"IPv4 has no nodad", VIP{Prefix: netip.MustParsePrefix("10.0.0.1/24")}, 0, LifetimeForever},
		{"IPv6 /128 is nodad and deprecated", VIP{Prefix: netip.MustParsePrefix("fd00::1/128")}, FlagNoDAD, 0},
		{"IPv6 /64 is nodad and preferred", VIP{Prefix: netip.MustParsePrefix("fd00::1/64")}, FlagNoDAD, LifetimeForever},
		{"-nodad keeps DAD", VIP{Prefix: netip.MustParsePrefix("fd00::1/64"), KeepDAD: true}, 0, LifetimeForever},
		{"explicit preferred_lft", VIP{Prefix: netip.MustParsePrefix("fd00::1/128"), PreferredLft: lft(LifetimeForever)}, FlagNoDAD, LifetimeForever},
		{"extra flags kept", VIP{Prefix: netip.MustParsePrefix("fd00::1/64"), Flags: FlagNoPrefixRoute}, FlagNoDAD | FlagNoPrefixRoute, LifetimeForever},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.vip.ifaFlags(); got != tt.wantFlags {
				t.Errorf("ifaFlags() = %#x, want %#x", got, tt.wantFlags)
			}
			if got := tt.vip.preferredLft(); got != tt.wantLft {
				t.Errorf("preferredLft() = %d, want %d", got, tt.wantLft)
			}
		})
	}
}

func TestVIPString(t *testing.T) {
	v := VIP{Prefix: netip.MustParsePrefix("192.168.1.100/24"), Broadcast: netip.MustParseAddr("192.168.1.255"), Dev: "eth0", Scope: ScopeLink, Label: "eth0:1"}
	if got, want := v.String(), "192.168.1.100/24 brd 192.168.1.255 dev eth0 scope link label eth0:1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
