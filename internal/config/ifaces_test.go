package config

import (
	"strings"
	"testing"
	"testing/fstest"
)

// keepalived 2.2.7 refuses a file naming an interface the host lacks
// ("Non-existent interface specified in configuration", its VRRP process
// exits) unless dynamic_interfaces is set; vigil runs it as keepalived does
// with dynamic_interfaces and warns at each reference.
func TestMissingInterfaces(t *testing.T) {
	const body = `vrrp_sync_group G {
    group {
        VI_1
    }
    track_interface {
        gone3
    }
}
vrrp_instance VI_1 {
    interface gone0
    virtual_router_id 51
    track_interface {
        gone1 weight 10
        here
    }
    virtual_ipaddress {
        192.0.2.1/24 dev gone2
        192.0.2.2/24 dev here
    }
    virtual_routes {
        198.51.100.0/24 dev gone4
    }
}
`
	exists := func(n string) bool { return n == "here" }
	for _, tc := range []struct {
		name string
		src  string
		want []string // "line:col: text"
	}{
		{"every kind of reference", body, []string{
			`k.conf:6:9: track_interface gone3 does not exist in this network namespace (where vigil check runs; the daemon's may differ): keepalived 2.2.7 refuses to run this file ("Non-existent interface specified in configuration") unless global_defs has dynamic_interfaces; vigil runs it as keepalived does with dynamic_interfaces: G counts it as down until it appears`,
			`k.conf:10:15: interface gone0 does not exist in this network namespace`,
			`: vrrp_instance VI_1 stays in FAULT until gone0 appears`,
			`k.conf:13:9: track_interface gone1 does not exist`,
			`: VI_1 counts it as down until it appears`,
			`k.conf:17:9: dev gone2 does not exist`,
			`: vrrp_instance VI_1 cannot add its address 192.0.2.1/24 while gone2 is missing`,
			`k.conf:21:9: dev gone4 does not exist`,
			`: vrrp_instance VI_1 cannot add its route 198.51.100.0/24 while gone4 is missing`,
		}},
		{"dynamic_interfaces: keepalived waits and says nothing", "global_defs {\n    dynamic_interfaces\n}\n" + body, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := Load(fstest.MapFS{"k.conf": {Data: []byte(tc.src)}}, "k.conf", Options{})
			if ds.HasErrors() {
				t.Fatalf("Load: %v", ds)
			}
			got := cfg.MissingInterfaces(exists)
			var lines []string
			for _, d := range got {
				if d.Severity.String() != "warning" {
					t.Errorf("%v: want a warning", d)
				}
				lines = append(lines, d.Pos.String()+": "+d.Msg)
			}
			all := strings.Join(lines, "\n")
			if tc.want == nil && len(got) != 0 {
				t.Errorf("got\n%s\nwant nothing", all)
			}
			if tc.want != nil && len(got) != 5 {
				t.Errorf("got %d diagnostics, want 5 (gone0..gone4):\n%s", len(got), all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("lacks %q:\n%s", w, all)
				}
			}
		})
	}
}
