package netif_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/netnstest"
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
