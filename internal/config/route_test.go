package config

import (
	"slices"
	"strings"
	"testing"
)

// TestRouteRuleLinesAsKeepalived: what keepalived 2.2.7's alloc_route() and
// alloc_rule() do with a line, vigil's parser does: the route or rule kept
// or left out, the words kept for translate, the warning at the line.
func TestRouteRuleLinesAsKeepalived(t *testing.T) {
	for _, tc := range []struct {
		name, routes, rules string
		nRoutes, nRules     int
		warn                string
		check               func(t *testing.T, vi VRRPInstance)
	}{
		{name: "mixed families drop the route", routes: "10.9.0.0/16 via fd00::1 dev eth0", warn: "the route is ignored"},
		{name: "via inet6 on an IPv4 route drops it", routes: "10.9.0.0/16 via inet6 fd00::1 dev eth0", warn: "the route is ignored"},
		{name: "as to is skipped", routes: "10.9.0.0/16 via 10.0.0.1 dev eth0 as to 10.1.1.1 mtu 1400", nRoutes: 1,
			warn: `"as to" is for MPLS only`, check: func(t *testing.T, vi VRRPInstance) {
				if got := vi.VirtualRoutes[0].Options; !slices.Equal(got, []string{"mtu", "1400"}) {
					t.Errorf("options %q", got)
				}
			}},
		{name: "a tracked route's protocol is reset", routes: "10.9.0.0/16 dev eth0 protocol static", nRoutes: 1,
			warn: "protocol static is replaced", check: func(t *testing.T, vi VRRPInstance) {
				if p := vi.VirtualRoutes[0].Protocol; p != "" {
					t.Errorf("protocol %q, want none (keepalived's 18)", p)
				}
			}},
		{name: "a no_track route keeps its protocol", routes: "10.9.0.0/16 dev eth0 protocol static no_track", nRoutes: 1,
			check: func(t *testing.T, vi VRRPInstance) {
				if p := vi.VirtualRoutes[0].Protocol; p != "static" {
					t.Errorf("protocol %q, want static", p)
				}
			}},
		{name: "inet6 steps over the next word", rules: "inet6 from 2001:db8::/32 table 5 priority 3",
			warn: `keepalived 2.2.7 skips the word after inet6 ("from")`},
		{name: "inet6 last", rules: "from 2001:db8::/32 table 5 priority 3 inet6", nRules: 1},
		{name: "keepalived's rule option names", rules: "dev eth0 ipproto udp tunnel-id 7 sup_pl 0 type unreachable priority 4", nRules: 1,
			check: func(t *testing.T, vi VRRPInstance) {
				want := []string{"dev", "eth0", "ipproto", "udp", "tunnel-id", "7", "sup_pl", "0", "type", "unreachable"}
				if got := vi.VirtualRules[0].Options; !slices.Equal(got, want) {
					t.Errorf("options %q, want %q", got, want)
				}
			}},
		{name: "anycast and brd are route types", routes: "anycast 10.9.0.1 dev eth0\n        brd 10.9.255.255 dev eth0 scope link", nRoutes: 2,
			check: func(t *testing.T, vi VRRPInstance) {
				if vi.VirtualRoutes[0].Type != "anycast" || vi.VirtualRoutes[1].Type != "brd" {
					t.Errorf("types %q, %q", vi.VirtualRoutes[0].Type, vi.VirtualRoutes[1].Type)
				}
			}},
		{name: "ip_proto is not keepalived's", rules: "ip_proto tcp table 5 priority 4", warn: `unknown rule option "ip_proto"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.routes != "" {
				extra += "    virtual_routes {\n        " + tc.routes + "\n    }\n"
			}
			if tc.rules != "" {
				extra += "    virtual_rules {\n        " + tc.rules + "\n    }\n"
			}
			cfg, ds := loadString(t, inst(extra))
			vi := cfg.Instances[0]
			if len(vi.VirtualRoutes) != tc.nRoutes || len(vi.VirtualRules) != tc.nRules {
				t.Fatalf("%d routes, %d rules; want %d, %d\n%s", len(vi.VirtualRoutes), len(vi.VirtualRules), tc.nRoutes, tc.nRules, dumpDiags(ds))
			}
			if tc.warn != "" && !strings.Contains(dumpDiags(ds), tc.warn) {
				t.Errorf("no warning with %q:\n%s", tc.warn, dumpDiags(ds))
			}
			if tc.check != nil {
				tc.check(t, vi)
			}
		})
	}
}
