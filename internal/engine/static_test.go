package engine

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/vigil-ha/vigil/internal/netif"
	"golang.org/x/sys/unix"
)

// TestDiffRoutes: a reload leaves an unchanged route alone, replaces in
// place one whose options changed (keepalived's clear_diff_routes(): same
// destination, tos, metric, table, scope, type, via, dev, nexthops), and
// removes and adds one whose identity changed.
func TestDiffRoutes(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	base := netif.Route{Dst: p("10.1.0.0/16"), Gw: a("192.168.1.1"), Dev: "eth0",
		Metrics: []netif.Metric{{Type: unix.RTAX_MTU, Value: 1400}}}
	mtu := base
	mtu.Metrics = []netif.Metric{{Type: unix.RTAX_MTU, Value: 1300}}
	proto := base
	proto.Protocol = 11
	via := base
	via.Gw = a("192.168.1.2")
	other := netif.Route{Dst: p("10.2.0.0/16"), Type: "blackhole"}
	multi := netif.Route{Dst: p("10.3.0.0/16"), Nexthops: []netif.Nexthop{{Gw: a("192.168.1.1"), Weight: 1}}}
	multiW := multi
	multiW.Nexthops = []netif.Nexthop{{Gw: a("192.168.1.1"), Weight: 2}}
	for _, tc := range []struct {
		name                 string
		old, next            []netif.Route
		gone, came, replaced []netif.Route
	}{
		{name: "unchanged", old: []netif.Route{base, other}, next: []netif.Route{base, other}},
		{name: "mtu changed", old: []netif.Route{base, other}, next: []netif.Route{mtu, other}, replaced: []netif.Route{mtu}},
		{name: "protocol changed", old: []netif.Route{base}, next: []netif.Route{proto}, replaced: []netif.Route{proto}},
		{name: "via changed", old: []netif.Route{base}, next: []netif.Route{via}, gone: []netif.Route{base}, came: []netif.Route{via}},
		{name: "nexthop weight changed", old: []netif.Route{multi}, next: []netif.Route{multiW}, gone: []netif.Route{multi}, came: []netif.Route{multiW}},
		{name: "removed and added", old: []netif.Route{base, other}, next: []netif.Route{base, multi}, gone: []netif.Route{other}, came: []netif.Route{multi}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gone, came, replaced := diffRoutes(tc.old, tc.next)
			nilIfEmpty := func(rs []netif.Route) []netif.Route {
				if len(rs) == 0 {
					return nil
				}
				return rs
			}
			gone, came, replaced = nilIfEmpty(gone), nilIfEmpty(came), nilIfEmpty(replaced)
			if !reflect.DeepEqual(gone, tc.gone) || !reflect.DeepEqual(came, tc.came) || !reflect.DeepEqual(replaced, tc.replaced) {
				t.Errorf("gone %v, came %v, replaced %v; want %v, %v, %v", gone, came, replaced, tc.gone, tc.came, tc.replaced)
			}
		})
	}
}
