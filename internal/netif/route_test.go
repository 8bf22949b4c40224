package netif_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"golang.org/x/sys/unix"
)

// TestNamespaceRoutesAndRules: virtual_routes and virtual_rules entries are
// installed (marked proto 18, as keepalived's) and removed, idempotently.
func TestNamespaceRoutesAndRules(t *testing.T) {
	l := netnstest.New(t, "route")
	r1 := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24", "fd00::105/64"}})
	h := openIn(t, r1)
	run := func(args ...string) string {
		out, err := r1.Run("ip", args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	routes := []netif.Route{
		{Dst: netip.MustParsePrefix("10.20.0.0/16"), Gw: netip.MustParseAddr("192.168.1.1"), Dev: "eth0", Table: 100, Metric: 5},
		{Dst: netip.MustParsePrefix("10.30.0.0/16"), Type: "blackhole"},
		{Dst: netip.MustParsePrefix("fd20::/48"), Gw: netip.MustParseAddr("fd00::1"), Dev: "eth0"},
	}
	rule := netif.Rule{From: netip.MustParsePrefix("192.168.1.100/32"), Table: 100, Preference: 1000}
	for range 2 { // the second round checks idempotency
		for _, r := range routes {
			if err := h.AddRoute(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.AddRule(rule); err != nil {
			t.Fatal(err)
		}
	}
	if out := run("route", "show", "table", "100"); !strings.Contains(out, "10.20.0.0/16 via 192.168.1.1 dev eth0 proto keepalived metric 5") {
		t.Errorf("table 100: %q", out)
	}
	if out := run("route", "show"); !strings.Contains(out, "blackhole 10.30.0.0/16 proto keepalived") {
		t.Errorf("main table: %q", out)
	}
	if out := run("-6", "route", "show"); !strings.Contains(out, "fd20::/48 via fd00::1 dev eth0 proto keepalived") {
		t.Errorf("IPv6 routes: %q", out)
	}
	if out := run("rule", "show"); !strings.Contains(out, "1000:\tfrom 192.168.1.100 lookup 100 proto keepalived") {
		t.Errorf("rules: %q", out)
	}
	for range 2 {
		for _, r := range routes {
			if err := h.DelRoute(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.DelRule(rule); err != nil {
			t.Fatal(err)
		}
	}
	if out := run("route", "show", "table", "all"); strings.Contains(out, "10.20.0.0") || strings.Contains(out, "10.30.0.0") {
		t.Errorf("routes left: %q", out)
	}
	if out := run("rule", "show"); strings.Contains(out, "lookup 100") {
		t.Errorf("rule left: %q", out)
	}
}

// TestNamespaceRouteOptions: the options keepalived's netlink_route() and
// netlink_rule() send reach the kernel (metrics with locks, weighted
// nexthops, an IPv6 gateway for an IPv4 route as RTA_VIA, rule selectors);
// ReplaceRoute changes a route in place; what the kernel refuses comes back
// as an error.
func TestNamespaceRouteOptions(t *testing.T) {
	l := netnstest.New(t, "ropts")
	r1 := netnstest.AddHost(t, l, "r1",
		lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24", "fd00::105/64"}},
		lab.Iface{Name: "eth1", LAN: "lan2", Addrs: []string{"192.168.2.105/24"}})
	h := openIn(t, r1)
	ip := func(args ...string) string {
		out, err := r1.Run("ip", args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	mtu := netif.Route{Dst: p("10.20.0.0/16"), Gw: a("192.168.1.1"), Dev: "eth0",
		Metrics: []netif.Metric{{Type: unix.RTAX_MTU, Value: 1400}, {Type: unix.RTAX_ADVMSS, Value: 1360}}, Locks: 1 << unix.RTAX_MTU}
	multi := netif.Route{Dst: p("10.21.0.0/16"), Nexthops: []netif.Nexthop{
		{Gw: a("192.168.1.1"), Dev: "eth0", Weight: 2}, {Gw: a("192.168.2.1"), Dev: "eth1", Weight: 5}}}
	via6 := netif.Route{Dst: p("10.22.0.0/16"), Gw: a("fd00::1"), Dev: "eth0"}
	rule := netif.Rule{MarkSet: true, Mark: 0x10, MaskSet: true, Mask: 0xf0, IIf: "eth0", UIDSet: true, UIDStart: 10, UIDEnd: 20,
		Table: 100, Preference: 1000}
	for _, r := range []netif.Route{mtu, multi, via6} {
		if err := h.AddRoute(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.AddRule(rule); err != nil {
		t.Fatal(err)
	}
	out := ip("-d", "route", "show")
	for _, want := range []string{
		"10.20.0.0/16 via 192.168.1.1 dev eth0 proto keepalived scope global mtu lock 1400 advmss 1360",
		"nexthop via 192.168.1.1 dev eth0 weight 2",
		"nexthop via 192.168.2.1 dev eth1 weight 5",
		"10.22.0.0/16 via inet6 fd00::1 dev eth0 proto keepalived",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("routes lack %q:\n%s", want, out)
		}
	}
	if out := ip("rule", "show"); !strings.Contains(out, "1000:\tfrom all fwmark 0x10/0xf0 iif eth0 uidrange 10-20 lookup 100 proto keepalived") {
		t.Errorf("rules: %q", out)
	}
	mtu.Metrics[0].Value = 1300
	if err := h.ReplaceRoute(mtu); err != nil {
		t.Fatal(err)
	}
	if out := ip("route", "show", "10.20.0.0/16"); strings.Count(out, "\n") != 1 || !strings.Contains(out, "mtu lock 1300") {
		t.Errorf("after the replace: %q", out)
	}
	// A gateway on no connected network: the kernel refuses the route.
	if err := h.AddRoute(netif.Route{Dst: p("10.23.0.0/16"), Gw: a("172.31.0.1"), Dev: "eth0"}); err == nil || !strings.Contains(err.Error(), "10.23.0.0/16") {
		t.Errorf("unreachable gateway: err %v, want the kernel's refusal naming the route", err)
	}
	for _, r := range []netif.Route{mtu, multi, via6} {
		if err := h.DelRoute(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.DelRule(rule); err != nil {
		t.Fatal(err)
	}
	if out := ip("route", "show", "table", "all", "proto", "keepalived"); out != "" {
		t.Errorf("routes left: %q", out)
	}
	if out := ip("rule", "show"); strings.Contains(out, "1000:") {
		t.Errorf("rule left: %q", out)
	}
}
