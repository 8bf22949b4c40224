package netif

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func lft(n uint32) *uint32 { return &n }

func TestParseVIP(t *testing.T) {
	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	tests := []struct {
		name string
		line string
		want VIP
		err  string
	}{
		{name: "bare IPv4 defaults to /32", line: "192.168.1.100",
			want: VIP{Prefix: pfx("192.168.1.100/32")}},
		{name: "bare IPv6 defaults to /128", line: "fd00::100",
			want: VIP{Prefix: pfx("fd00::100/128")}},
		{name: "tutorial label line", line: "192.168.1.100/24 dev eth0 label eth0:1",
			want: VIP{Prefix: pfx("192.168.1.100/24"), Dev: "eth0", Label: "eth0:1"}},
		{name: "brd address and scope name", line: "10.0.0.5/24 brd 10.0.0.255 dev eth1 scope link",
			want: VIP{Prefix: pfx("10.0.0.5/24"), Broadcast: addr("10.0.0.255"), Dev: "eth1", Scope: ScopeLink}},
		{name: "broadcast keyword and numeric scope", line: "10.0.0.5/24 broadcast 10.0.0.255 scope 200",
			want: VIP{Prefix: pfx("10.0.0.5/24"), Broadcast: addr("10.0.0.255"), Scope: ScopeSite}},
		{name: "brd + sets host bits", line: "10.1.2.3/22 brd +",
			want: VIP{Prefix: pfx("10.1.2.3/22"), Broadcast: addr("10.1.3.255")}},
		{name: "brd - clears host bits", line: "10.1.2.3/22 brd -",
			want: VIP{Prefix: pfx("10.1.2.3/22"), Broadcast: addr("10.1.0.0")}},
		{name: "peer keeps the full length", line: "10.9.9.1 peer 10.9.9.2 dev tun0",
			want: VIP{Prefix: pfx("10.9.9.1/32"), Peer: addr("10.9.9.2"), Dev: "tun0"}},
		{name: "IPv6 flags", line: "fd00::1/64 dev eth0 -nodad noprefixroute home autojoin mngtmpaddr preferred_lft forever",
			want: VIP{Prefix: pfx("fd00::1/64"), Dev: "eth0", KeepDAD: true,
				Flags: FlagNoPrefixRoute | FlagHome | FlagAutoJoin | FlagMngTmpAddr, PreferredLft: lft(LifetimeForever)}},
		{name: "preferred_lft number", line: "fd00::1/64 preferred_lft 30",
			want: VIP{Prefix: pfx("fd00::1/64"), PreferredLft: lft(30)}},
		{name: "host bits kept", line: "192.168.1.100/16",
			want: VIP{Prefix: pfx("192.168.1.100/16")}},

		{name: "empty", line: "", err: "empty address"},
		{name: "bad address", line: "192.168.1.300", err: "invalid address"},
		{name: "bad prefix", line: "192.168.1.1/33", err: "invalid prefix length"},
		{name: "missing parameter", line: "192.168.1.1 dev", err: "no dev parameter"},
		{name: "unknown keyword", line: "192.168.1.1 bogus", err: `unknown keyword "bogus"`},
		{name: "dev twice", line: "192.168.1.1 dev a dev b", err: "dev given twice"},
		{name: "label on IPv6", line: "fd00::1 label eth0:1", err: "label on an IPv6"},
		{name: "brd on IPv6", line: "fd00::1 brd +", err: "broadcast on an IPv6"},
		{name: "scope on IPv6", line: "fd00::1 scope link", err: "scope on an IPv6"},
		{name: "brd + on /31", line: "10.0.0.1/31 brd +", err: "prefix too long"},
		{name: "bad broadcast", line: "10.0.0.1/24 brd fd00::1", err: "invalid broadcast"},
		{name: "brd and peer", line: "10.0.0.1 peer 10.0.0.2 brd +", err: "broadcast and peer"},
		{name: "prefix and peer", line: "10.0.0.1/24 peer 10.0.0.2", err: "a prefix length and a peer"},
		{name: "peer with prefix", line: "10.0.0.1 peer 10.0.0.2/30", err: "unexpected prefix length"},
		{name: "peer of other family", line: "10.0.0.1 peer fd00::2", err: "another family"},
		{name: "label too long", line: "10.0.0.1 label eth0:0123456789ab", err: "longer than 15"},
		{name: "bad scope", line: "10.0.0.1 scope galaxy", err: "invalid scope"},
		{name: "bad preferred_lft", line: "fd00::1 preferred_lft -1", err: "invalid preferred_lft"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVIP(strings.Fields(tt.line))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseVIP(%q) error = %v, want containing %q", tt.line, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseVIP(%q): %v", tt.line, err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("ParseVIP(%q) (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

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
	v, err := ParseVIP(strings.Fields("192.168.1.100/24 brd 192.168.1.255 dev eth0 scope link label eth0:1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.String(), "192.168.1.100/24 brd 192.168.1.255 dev eth0 scope link label eth0:1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
