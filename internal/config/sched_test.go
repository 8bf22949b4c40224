package config

import (
	"strings"
	"testing"
)

// The scheduling keywords are read as keepalived 2.2.7 reads them: an RT
// priority out of 1..99 is clamped with a warning, a bad one ignored, a
// nice level outside -20..19 ignored.
func TestSchedulingKeywords(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want Global
		warn string
	}{
		{"vrrp rt", "vrrp_rt_priority 50\n", Global{VRRPRTPriority: 50}, ""},
		{"checker side", "checker_rt_priority 20\nchecker_priority -5\nchecker_no_swap\n", Global{CheckerRTPriority: 20, CheckerNice: -5, CheckerNoSwap: true}, ""},
		{"vrrp nice and swap", "vrrp_priority -10\nvrrp_no_swap\n", Global{VRRPNice: -10, VRRPNoSwap: true}, ""},
		{"rt too high", "vrrp_rt_priority 150\n", Global{VRRPRTPriority: 99}, "keepalived uses 99"},
		{"rt too low", "vrrp_rt_priority 0\n", Global{VRRPRTPriority: 1}, "keepalived uses 1"},
		{"rt not a number", "vrrp_rt_priority high\n", Global{}, "not a number; ignored"},
		{"nice out of range", "vrrp_priority -30\n", Global{}, "not a nice level in -20..19"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "global_defs {\n" + tc.src + "}\nvrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 100\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n"
			cfg, ds := Load(one(src), "k.conf", Options{})
			g := cfg.Global
			got := Global{VRRPRTPriority: g.VRRPRTPriority, CheckerRTPriority: g.CheckerRTPriority, VRRPNice: g.VRRPNice,
				CheckerNice: g.CheckerNice, VRRPNoSwap: g.VRRPNoSwap, CheckerNoSwap: g.CheckerNoSwap}
			if got.VRRPRTPriority != tc.want.VRRPRTPriority || got.CheckerRTPriority != tc.want.CheckerRTPriority || got.VRRPNice != tc.want.VRRPNice ||
				got.CheckerNice != tc.want.CheckerNice || got.VRRPNoSwap != tc.want.VRRPNoSwap || got.CheckerNoSwap != tc.want.CheckerNoSwap {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			var warns []string
			for _, d := range ds {
				warns = append(warns, d.String())
			}
			all := strings.Join(warns, "\n")
			if ds.HasErrors() || (tc.warn == "") != (len(ds) == 0) || !strings.Contains(all, tc.warn) {
				t.Errorf("diagnostics:\n%s\nwant a warning with %q", all, tc.warn)
			}
		})
	}
}
