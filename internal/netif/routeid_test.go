package netif

import (
	"net/netip"
	"testing"
)

// TestSameIdentityIsKey: a reload compares routes by their Key (the one
// rule: main table as 0, unicast as no type, "brd" as broadcast, the
// destination masked) and the fields a replace cannot change.
func TestSameIdentityIsKey(t *testing.T) {
	base := Route{Dst: netip.MustParsePrefix("10.1.0.0/16"), Gw: netip.MustParseAddr("192.168.1.1")}
	for _, tc := range []struct {
		name string
		a, b Route
		want bool
	}{
		{"main table spelled 254", base, with(base, func(r *Route) { r.Table = 254 }), true},
		{"unicast spelled out", base, with(base, func(r *Route) { r.Type = "unicast" }), true},
		{"brd is broadcast", with(base, func(r *Route) { r.Type = "brd" }), with(base, func(r *Route) { r.Type = "broadcast" }), true},
		{"host bits in the destination", base, with(base, func(r *Route) { r.Dst = netip.MustParsePrefix("10.1.2.3/16") }), true},
		{"source changes in place", base, with(base, func(r *Route) { r.Src = netip.MustParseAddr("192.168.1.5") }), true},
		{"another table", base, with(base, func(r *Route) { r.Table = 100 }), false},
		{"another gateway", base, with(base, func(r *Route) { r.Gw = netip.MustParseAddr("192.168.1.2") }), false},
		{"another metric", base, with(base, func(r *Route) { r.Metric = 5 }), false},
		{"blackhole", base, with(base, func(r *Route) { r.Type = "blackhole" }), false},
	} {
		if got := tc.a.SameIdentity(tc.b); got != tc.want {
			t.Errorf("%s: SameIdentity %v, want %v", tc.name, got, tc.want)
		}
		if got := tc.b.SameIdentity(tc.a); got != tc.want {
			t.Errorf("%s, the other way: SameIdentity %v, want %v", tc.name, got, tc.want)
		}
	}
}

func with(r Route, f func(*Route)) Route {
	f(&r)
	return r
}
