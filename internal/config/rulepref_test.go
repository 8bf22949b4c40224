package config

import (
	"testing"
	"testing/fstest"
)

// keepalived 2.2.7 gives a rule without a preference 16384, then one less
// for each next rule of the same family, static_rules included
// (vrrp_iprule.c alloc_rule(); -t on doc/samples/keepalived.conf.vrrp.rules
// says "setting to 16384" for its static rule and "setting to 16383" for
// the virtual one).
func TestRuleDefaultPreference(t *testing.T) {
	const src = `static_rules {
    from 192.168.100.0/24 table 1
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.168.200.16
    }
    virtual_rules {
        from 192.168.200.0/24 table 2
        from fd00::/64 table 2
        from 192.168.201.0/24 table 2 preference 7
        to 192.168.202.0/24 table 2
    }
}
`
	cfg, ds := Load(fstest.MapFS{"k.conf": {Data: []byte(src)}}, "k.conf", Options{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	if got := cfg.StaticRules[0].Preference; got != 16384 {
		t.Errorf("static rule: preference %d, want 16384", got)
	}
	var got []int64
	for _, r := range cfg.Instances[0].VirtualRules {
		got = append(got, r.Preference)
	}
	if want := []int64{16383, 16384, 7, 16382}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("virtual rules: preferences %v, want %v", got, want)
	}
	warned := map[int]bool{}
	for _, d := range ds {
		warned[d.Pos.Line] = true
	}
	for _, line := range []int{11, 12, 14} {
		if !warned[line] {
			t.Errorf("no warning at line %d:\n%v", line, ds)
		}
	}
}
