package config

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVirtualServerRules checks keepalived 2.2.7's virtual-server
// corrections (check_data.c validate_check_config), each reported once, in
// file order, with the value the model then carries.
func TestVirtualServerRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		diags []string
		check func(c *Config) string
		want  string
	}{
		{
			name: "quorum above the total weight, hysteresis above the quorum",
			src: "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n" +
				"    quorum 5\n    hysteresis 9\n    real_server 10.0.0.2 80 {\n    }\n}\n",
			diags: []string{
				"k.conf:5:5: warning: virtual_server 10.0.0.1:80: quorum 5 exceeds the total weight 1 of the real servers; 1 is used, as keepalived does",
				"k.conf:6:5: warning: virtual_server 10.0.0.1:80: hysteresis 9 must be below quorum 1; 0 is used, as keepalived does",
			},
			check: func(c *Config) string {
				vs := c.VirtualServers[0]
				return fmt.Sprintf("quorum %d hysteresis %d", vs.Quorum, vs.Hysteresis)
			},
			want: `quorum 1 hysteresis 0`,
		},
		{
			name: "hysteresis equal to the quorum",
			src: "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n" +
				"    quorum 3\n    hysteresis 3\n    real_server 10.0.0.2 80 {\n        weight 4\n    }\n}\n",
			diags: []string{
				"k.conf:6:5: warning: virtual_server 10.0.0.1:80: hysteresis 3 must be below quorum 3; 2 is used, as keepalived does",
			},
			check: func(c *Config) string {
				vs := c.VirtualServers[0]
				return fmt.Sprintf("quorum %d hysteresis %d", vs.Quorum, vs.Hysteresis)
			},
			want: `quorum 3 hysteresis 2`,
		},
		{
			name: "sorry server duplicating a real server takes its inhibit",
			src: "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    inhibit_on_failure\n" +
				"    sorry_server 10.0.0.2 80\n    real_server 10.0.0.2 80 {\n    }\n}\n",
			diags: []string{
				"k.conf:7:5: warning: virtual_server 10.0.0.1:80: real_server 10.0.0.2:80 is also the sorry_server, with another inhibit_on_failure; the sorry server takes the real server's (true), as keepalived does",
			},
			check: func(c *Config) string {
				return fmt.Sprintf("sorry inhibit %v", c.VirtualServers[0].SorryServer.Inhibit)
			},
			want: `sorry inhibit true`,
		},
		{
			name: "a group range holding another virtual server's service",
			src: "virtual_server 10.1.1.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n}\n" +
				"virtual_server_group g {\n    10.1.1.0-3 80\n}\n" +
				"virtual_server group g {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n}\n",
			diags: []string{
				"k.conf:11:1: warning: virtual_server group g: service TCP 10.1.1.1:80 is also defined by virtual_server 10.1.1.1:80; this virtual server is ignored",
			},
			check: func(c *Config) string { return fmt.Sprintf("%d virtual servers", len(c.VirtualServers)) },
			want:  `1 virtual servers`,
		},
		{
			name: "fwmark: protocol ignored, DR port cleared, ha_suspend cleared",
			src: "virtual_server fwmark 3 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    ha_suspend\n" +
				"    real_server 10.0.0.2 8080 {\n    }\n}\n",
			diags: []string{
				"k.conf:4:5: warning: virtual_server fwmark 3: protocol is ignored for fwmark services",
				"k.conf:5:5: warning: virtual_server fwmark 3: ha_suspend cannot be used with fwmarks; ignored",
				"k.conf:6:5: warning: virtual_server fwmark 3: real_server port 8080 is ignored for a fwmark service without NAT",
			},
			check: func(c *Config) string {
				vs := c.VirtualServers[0]
				return fmt.Sprintf("protocol %q port %d ha_suspend %v family %s", vs.Protocol, vs.RealServers[0].Port, vs.HASuspend, vs.Family)
			},
			want: `protocol "" port 0 ha_suspend false family inet`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ds := loadString(t, tc.src)
			var got []string
			for _, d := range ds {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tc.diags, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if got := tc.check(c); got != tc.want {
				t.Errorf("model: %s, want %s", got, tc.want)
			}
		})
	}
}

// "brd +" sets the host bits, "brd -" clears them (ip-address(8)); both
// reach the kernel as an address.
func TestBroadcastAddr(t *testing.T) {
	c := mustLoad(t, `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        10.0.0.1/24 brd 10.0.0.254
        10.0.0.2/24 brd +
        10.0.0.3/24 brd -
        10.0.0.4/24
    }
}
`)
	var got []string
	for _, a := range c.Instances[0].VirtualIPs {
		got = append(got, fmt.Sprint(a.BroadcastAddr()))
	}
	if diff := cmp.Diff([]string{"10.0.0.254", "10.0.0.255", "10.0.0.0", "invalid IP"}, got); diff != "" {
		t.Errorf("broadcast (-want +got):\n%s", diff)
	}
}
