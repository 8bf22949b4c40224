package config

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// bgpBase is a valid instance (lines 1-6) and virtual server (lines 8-14)
// followed by a bgp block from line 15.
const bgpBase = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.1/24\n    }\n}\n" +
	"virtual_server 10.0.0.9 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n}\n"

func TestBGPBlock(t *testing.T) {
	src := bgpBase + `bgp {
    router_id 192.0.2.1
    local_as 65001
    med 10
    community 65001:7 no_export
    graceful_shutdown_delay 2.5
    neighbor 192.0.2.254 {
        remote_as 65000
        password s3cret
        hold_time 3
        connect_retry 1
        bfd 100 4
    }
    neighbor fd00::fe {
        bfd
        remote_as 65000
        passive
    }
    announce {
        vrrp_instance VI_1
        virtual_server 10.0.0.9 80 TCP
    }
}
`
	c, ds := loadString(t, src)
	if len(ds) != 0 {
		t.Fatalf("diagnostics: %v", ds)
	}
	b := c.BGP
	if b == nil {
		t.Fatal("no BGP block in the model")
	}
	if b.RouterID != netip.MustParseAddr("192.0.2.1") || b.LocalAS != 65001 || b.MED != 10 || b.ShutdownDelay != 2500*time.Millisecond || b.ShutdownMED != DefaultBGPShutdownMED {
		t.Errorf("bgp = %+v", b)
	}
	if fmt.Sprint(b.Communities) != fmt.Sprint([]uint32{65001<<16 | 7, 0xFFFFFF01}) {
		t.Errorf("communities = %x", b.Communities)
	}
	if len(b.Neighbors) != 2 {
		t.Fatalf("neighbors = %+v", b.Neighbors)
	}
	n := b.Neighbors[0]
	if n.RemoteAS != 65000 || n.Password != "s3cret" || n.HoldTime != 3*time.Second || n.ConnectRetry != time.Second || n.Passive {
		t.Errorf("neighbor 0 = %+v", n)
	}
	if bfd := b.Neighbors[0].BFD; bfd == nil || bfd.Interval != 100*time.Millisecond || bfd.Multiplier != 4 {
		t.Errorf("neighbor 0 bfd = %+v", bfd)
	}
	if bfd := b.Neighbors[1].BFD; bfd == nil || bfd.Interval != 300*time.Millisecond || bfd.Multiplier != 3 {
		t.Errorf("neighbor 1 bfd = %+v, want the defaults", bfd)
	}
	if n := b.Neighbors[1]; n.HoldTime != DefaultBGPHoldTime || !n.Passive || !n.Addr.Is6() {
		t.Errorf("neighbor 1 = %+v", n)
	}
	if len(b.Announce) != 2 || b.Announce[0].Instance != "VI_1" || b.Announce[1].Addr != netip.MustParseAddr("10.0.0.9") || b.Announce[1].Port != 80 || b.Announce[1].Protocol != TCP {
		t.Errorf("announce = %+v", b.Announce)
	}
}

func TestBGPDiagnostics(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string // the bgp block, from line 15
		want []string
	}{
		{"no router id nor AS", "bgp {\n neighbor 192.0.2.254 {\n  remote_as 1\n }\n announce {\n  vrrp_instance VI_1\n }\n}\n",
			[]string{"15:1 error: bgp has no router_id", "15:1 error: bgp has no local_as"}},
		{"neighbor without AS", "bgp {\n router_id 1.2.3.4\n local_as 1\n neighbor 192.0.2.254 {\n }\n announce {\n  vrrp_instance VI_1\n }\n}\n",
			[]string{"18:2 error: neighbor 192.0.2.254 has no remote_as", "15:1 warning: bgp has no neighbor"}},
		{"bad hold time", "bgp {\n router_id 1.2.3.4\n local_as 1\n neighbor 192.0.2.254 {\n  remote_as 2\n  hold_time 2\n }\n announce {\n  vrrp_instance VI_1\n }\n}\n",
			[]string{"20:13 error: hold_time 2: BGP allows 0 or 3..65535 seconds"}},
		{"router id v6", "bgp {\n router_id fd00::1\n local_as 1\n neighbor 192.0.2.254 {\n  remote_as 2\n }\n announce {\n  vrrp_instance VI_1\n }\n}\n",
			[]string{"16:12 error: router_id fd00::1: a BGP identifier is an IPv4 address"}},
		{"unknown instance and server", "bgp {\n router_id 1.2.3.4\n local_as 1\n neighbor 192.0.2.254 {\n  remote_as 2\n }\n announce {\n  vrrp_instance VI_2\n  virtual_server 10.0.0.9 443\n  vrrp_instanse VI_1\n }\n}\n",
			[]string{"22:3 error: announce: no vrrp_instance VI_2", "23:3 error: announce: no virtual_server 10.0.0.9 443 TCP", "24:3 error: unknown announce source \"vrrp_instanse\""}},
		{"bad community", "bgp {\n router_id 1.2.3.4\n local_as 1\n community 70000:1\n neighbor 192.0.2.254 {\n  remote_as 2\n }\n announce {\n  vrrp_instance VI_1\n }\n}\n",
			[]string{"18:12 error: community \"70000:1\": want ASN:VALUE"}},
		{"bfd interval too short", "bgp {\n router_id 1.2.3.4\n local_as 1\n neighbor 192.0.2.254 {\n  remote_as 2\n  bfd 5\n }\n announce {\n  vrrp_instance VI_1\n }\n}\n",
			[]string{"20:7 warning: bfd interval (ms) 5 is out of range 10..60000"}},
		{"typo in neighbor", "bgp {\n router_id 1.2.3.4\n local_as 1\n neighbor 192.0.2.254 {\n  remote_as 2\n  hold_tme 3\n }\n announce {\n  vrrp_instance VI_1\n }\n}\n",
			[]string{"20:3 warning: unknown keyword \"hold_tme\" in neighbor; did you mean \"hold_time\"?"}},
		{"nothing to announce", "bgp {\n router_id 1.2.3.4\n local_as 1\n}\n",
			[]string{"15:1 warning: bgp has no neighbor", "15:1 warning: bgp has no announce block"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ds := loadString(t, bgpBase+tc.body)
			var got []string
			for _, d := range ds {
				got = append(got, fmt.Sprintf("%d:%d %s: %s", d.Pos.Line, d.Pos.Col, d.Severity, d.Msg))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d diagnostics, want %d:\n  %s", len(got), len(tc.want), strings.Join(got, "\n  "))
			}
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					if strings.HasPrefix(g, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing %q in:\n  %s", w, strings.Join(got, "\n  "))
				}
			}
		})
	}
}

func TestBGPKeywordsAndJSON(t *testing.T) {
	var found []string
	for _, k := range Keywords() {
		if k.Block == "bgp" || k.Block == "neighbor" || (k.Block == rootName && k.Name == "bgp") {
			found = append(found, k.Block+"."+k.Name)
		}
	}
	for _, want := range []string{"top level.bgp", "bgp.router_id", "bgp.local_as", "bgp.neighbor", "bgp.announce", "bgp.graceful_shutdown_delay", "neighbor.remote_as", "neighbor.hold_time", "neighbor.password"} {
		if !strings.Contains(strings.Join(found, " ")+" ", want+" ") {
			t.Errorf("keyword table lacks %s (has %v)", want, found)
		}
	}
	c, ds := loadString(t, bgpBase+"bgp {\n router_id 1.2.3.4\n local_as 1\n neighbor 192.0.2.254 {\n  remote_as 2\n }\n announce {\n  vrrp_instance VI_1\n }\n}\n")
	if len(ds) != 0 {
		t.Fatal(ds)
	}
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"bgp": {`, `"router_id": "1.2.3.4"`, `"remote_as": 2`, `"hold_time": "1m30s"`, `"instance": "VI_1"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}
