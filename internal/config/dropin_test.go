package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestKeepaliveCarriesOn has one case per "report and carry on" rule of
// keepalived 2.2.7 that vigil follows: the input, the diagnostics (each
// "line:col severity: part of the message", matched one to one), and the
// effective value keepalived would run with, read from the model.
func TestKeepaliveCarriesOn(t *testing.T) {
	vrrp := func(body string) string {
		return "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.1/24\n    }\n" + body + "}\n"
	}
	strict := func(body string) string { return "global_defs {\n    vrrp_strict\n}\n" + vrrp(body) }
	const strictWarn = "4:1 warning: vrrp_instance VI_1: accept mode is off (vrrp_strict): VIP traffic will be dropped on this node while MASTER"
	lvs := func(vsBody string) string {
		return "virtual_server 10.0.0.1 80 {\n    protocol TCP\n" + vsBody + "    real_server 10.0.0.2 80 {\n    }\n}\n"
	}
	inst := func(c *Config) *VRRPInstance { return &c.Instances[0] }
	// trackSrc is a vrrp_script s (weight 7 reverse), a track_file tf
	// (weight 3 reverse) and an instance with the track block given.
	trackSrc := func(track string) string {
		return "vrrp_script s {\n    script /bin/true\n    weight 7 reverse\n}\ntrack_file tf {\n    file /tmp/tf\n    weight 3 reverse\n}\n" +
			"vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    " + track + "    virtual_ipaddress {\n        10.0.0.1/24\n    }\n}\n"
	}
	const trackSecurity = "2:12 warning: 1 script(s) configured without enable_script_security"

	vs0 := func(c *Config) *VirtualServer { return &c.VirtualServers[0] }
	eq := func(what string, got, want any) error {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%s = %v, want %v", what, got, want)
		}
		return nil
	}

	for _, tc := range []struct {
		name  string
		src   string
		diags []string
		check func(c *Config) error
	}{
		// global_defs
		{"vrrp_garp_interval 0 (the distribution sample)", "global_defs {\n    vrrp_garp_interval 0\n}\n",
			[]string{"2:24 warning: vrrp_garp_interval 0 is invalid (keepalived takes 0.000001s and up); ignored as keepalived does: no pause between gratuitous ARP packets (the default)"},
			func(c *Config) error { return eq("vrrp_garp_interval", c.Global.VRRPGARPInterval, time.Duration(0)) }},
		{"vrrp_gna_interval 0", "global_defs {\n    vrrp_gna_interval 0\n}\n",
			[]string{"2:23 warning: vrrp_gna_interval 0 is invalid"},
			func(c *Config) error { return eq("vrrp_gna_interval", c.Global.VRRPGNAInterval, time.Duration(0)) }},
		{"vrrp_garp_interval 0 after a valid one", "global_defs {\n    vrrp_garp_interval 0.002\n    vrrp_garp_interval 0\n}\n",
			[]string{"3:5 warning: vrrp_garp_interval given again", "3:24 warning: vrrp_garp_interval 0 is invalid (keepalived takes 0.000001s and up); ignored as keepalived does: the earlier 0.002s stays"},
			func(c *Config) error {
				return eq("vrrp_garp_interval", c.Global.VRRPGARPInterval, 2*time.Millisecond)
			}},
		// vrrp_script (vrrp_parser.c vrrp_tscript_interval_handler,
		// vrrp_tscript_timeout_handler): 0 is raised to 1 second.
		{"vrrp_script timeout 0 is 1s", "vrrp_script s {\n    script /bin/true\n    interval 5\n    timeout 0\n}\n",
			[]string{"1:1 warning: vrrp_script s is not used", "2:12 warning: 1 script(s) configured without enable_script_security", "4:13 warning: vrrp_script timeout 0 must be greater than 0; set to 1s, as keepalived does"},
			func(c *Config) error { return eq("timeout", c.Scripts[0].Timeout, time.Second) }},
		{"vrrp_script interval 0 is 1s", "vrrp_script s {\n    script /bin/true\n    interval 0\n}\n",
			[]string{"1:1 warning: vrrp_script s is not used", "2:12 warning: 1 script(s) configured without enable_script_security", "3:14 warning: vrrp_script interval 0 must be greater than 0; set to 1s, as keepalived does"},
			func(c *Config) error { return eq("interval", c.Scripts[0].Interval, time.Second) }},
		{"vrrp_script timeout above 4294 is ignored", "vrrp_script s {\n    script /bin/true\n    interval 5\n    timeout 3\n    timeout 5000\n}\n",
			[]string{"1:1 warning: vrrp_script s is not used", "2:12 warning: 1 script(s) configured without enable_script_security", "5:5 warning: timeout given again", "5:13 warning: timeout 5000 is out of range"},
			func(c *Config) error { return eq("timeout", c.Scripts[0].Timeout, 3*time.Second) }},
		// track_* entries (vrrp_track.c alloc_track_if/alloc_track_script,
		// track_file.c vrrp_alloc_track_file), checked against keepalived
		// 2.2.7's SIGUSR1 dump: a bad weight keeps the entry with the
		// default weight; +/-254 becomes +/-253 for interfaces and scripts;
		// a weight without "reverse" keeps the object's own reverse.
		{"track_script weight out of range: the script's weight", trackSrc("track_script {\n        s weight -300 reverse\n    }\n"),
			[]string{trackSecurity, "13:18 warning: track_script s: weight -300 is out of range -254..254; the entry is kept with the vrrp_script's own weight"},
			func(c *Config) error { return eq("track", inst(c).TrackScripts, "[{k.conf:13:9 s 7 true false true}]") }},
		{"track_script weight 254 is 253", trackSrc("track_script {\n        s weight 254\n    }\n"),
			[]string{trackSecurity, "13:18 warning: track_script s: weight 254 is not allowed; 253 is used, as keepalived does"},
			func(c *Config) error {
				return eq("track", inst(c).TrackScripts, "[{k.conf:13:9 s 253 true true false}]")
			}},
		{"track_script weight keeps the script's reverse", trackSrc("track_script {\n        s weight 5\n    }\n"),
			[]string{trackSecurity},
			func(c *Config) error { return eq("track", inst(c).TrackScripts, "[{k.conf:13:9 s 5 true true false}]") }},
		{"track_script unknown weight option: the entry stays", trackSrc("track_script {\n        s weight 5 bogus\n    }\n"),
			[]string{trackSecurity, `13:20 warning: track_script s: weight option "bogus"`},
			func(c *Config) error { return eq("track", inst(c).TrackScripts, "[{k.conf:13:9 s 5 true true false}]") }},
		{"track_script weight noreverse", trackSrc("track_script {\n        s weight 5 noreverse\n    }\n"),
			[]string{trackSecurity},
			func(c *Config) error { return eq("track", inst(c).TrackScripts, "[{k.conf:13:9 s 5 false true true}]") }},
		{"track_interface weight out of range: weight 0", trackSrc("track_interface {\n        eth1 weight 300 reverse\n    }\n"),
			[]string{trackSecurity, "1:1 warning: vrrp_script s is not used", "13:21 warning: track_interface eth1: weight 300 is out of range -254..254; the entry is kept with weight 0"},
			func(c *Config) error {
				return eq("track", inst(c).TrackInterfaces, "[{k.conf:13:9 eth1 0 true false true}]")
			}},
		{"track_interface weight -254 is -253", trackSrc("track_interface {\n        eth1 weight -254\n    }\n"),
			[]string{trackSecurity, "1:1 warning: vrrp_script s is not used", "13:21 warning: track_interface eth1: weight -254 is not allowed; -253 is used"},
			func(c *Config) error {
				return eq("track", inst(c).TrackInterfaces, "[{k.conf:13:9 eth1 -253 false true false}]")
			}},
		{"track_file weight keeps the file's reverse", trackSrc("track_file {\n        tf weight 2\n    }\n"),
			[]string{trackSecurity, "1:1 warning: vrrp_script s is not used"},
			func(c *Config) error { return eq("track", inst(c).TrackFiles, "[{k.conf:13:9 tf 2 true true false}]") }},
		{"track_file weight out of range: the file's weight", trackSrc("track_file {\n        tf weight 999\n    }\n"),
			[]string{trackSecurity, "1:1 warning: vrrp_script s is not used", "13:19 warning: track_file tf: weight 999 is out of range -254..254; the entry is kept with the track_file's own weight"},
			func(c *Config) error { return eq("track", inst(c).TrackFiles, "[{k.conf:13:9 tf 3 true false false}]") }},
		{"track_file unknown weight option drops the entry", trackSrc("track_file {\n        tf weight 2 bogus\n    }\n"),
			[]string{trackSecurity, "1:1 warning: vrrp_script s is not used", `13:21 warning: track_file tf: weight option "bogus": want one of reverse, noreverse; the entry is ignored, as keepalived does`},
			func(c *Config) error { return eq("track", len(inst(c).TrackFiles), 0) }},
		{"max_auto_priority N", "global_defs {\n    max_auto_priority 49\n    min_auto_priority_delay 500000\n}\n",
			[]string{"2:5 warning: max_auto_priority in global_defs is not supported by vigil (read into the model with keepalived's meaning", "3:5 warning: min_auto_priority_delay in global_defs is not supported"},
			func(c *Config) error {
				if err := eq("max_auto_priority", c.Global.MaxAutoPriority, 49); err != nil {
					return err
				}
				return eq("min_auto_priority_delay", c.Global.MinAutoPriorityDelay, 500*time.Millisecond)
			}},
		{"max_auto_priority without value", "global_defs {\n    max_auto_priority\n}\n",
			[]string{"2:5 warning: max_auto_priority in global_defs is not supported"},
			func(c *Config) error { return eq("max_auto_priority", c.Global.MaxAutoPriority, 99) }},
		{"max_auto_priority -1 disables", "global_defs {\n    max_auto_priority -1\n}\n",
			[]string{"2:5 warning: max_auto_priority in global_defs is not supported"},
			func(c *Config) error { return eq("max_auto_priority", c.Global.MaxAutoPriority, 0) }},
		{"max_auto_priority out of range", "global_defs {\n    max_auto_priority 100\n}\n",
			[]string{"2:5 warning: max_auto_priority in global_defs is not supported", "2:23 warning: max_auto_priority 100 is out of range -1..99; the line is ignored"},
			func(c *Config) error { return eq("max_auto_priority", c.Global.MaxAutoPriority, 0) }},

		// vrrp_instance
		{"strict: state MASTER below 255 starts as BACKUP", strict("    state MASTER\n    priority 100\n"),
			[]string{strictWarn, "10:5 warning: vrrp_instance VI_1: in strict mode state MASTER goes with priority 255 and only with it; state BACKUP is used, as keepalived does"},
			func(c *Config) error { return eq("state", inst(c).State, Backup) }},
		{"strict: authentication is dropped", strict("    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n"),
			[]string{strictWarn, "10:5 warning: vrrp_instance VI_1: strict mode does not support authentication; the authentication block is ignored and adverts carry none, as keepalived does"},
			func(c *Config) error { return eq("auth", inst(c).Auth, Auth{}) }},
		{"VRRPv3: authentication is dropped", vrrp("    version 3\n    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n"),
			[]string{"8:5 warning: vrrp_instance VI_1: VRRP version 3 has no authentication (RFC 5798 §9); the authentication block is ignored"},
			func(c *Config) error { return eq("auth", inst(c).Auth, Auth{}) }},
		{"auth_type PASS; with a stray semicolon", vrrp("    authentication {\n        auth_type PASS;\n        auth_pass 1111\n    }\n"),
			[]string{`8:19 warning: auth_type "PASS;" is not PASS or AH (a stray ";" after PASS: keepalived.conf has no statement separators); ignored, as keepalived does`,
				"7:5 warning: vrrp_instance VI_1: auth_pass without auth_type is ignored"},
			func(c *Config) error { a := inst(c).Auth; return eq("auth", a.Type+AuthType(a.Pass), AuthNone) }},
		{"AH with state MASTER at priority 50 starts as BACKUP", vrrp("    state MASTER\n    priority 50\n    authentication {\n        auth_type AH\n        auth_pass 1111\n    }\n"),
			[]string{"7:5 warning: vrrp_instance VI_1: initial state MASTER is incompatible with AH authentication below priority 255"},
			func(c *Config) error {
				if err := eq("state", inst(c).State, Backup); err != nil {
					return err
				}
				return eq("auth", inst(c).Auth.Type, AuthAH)
			}},
		{"AH with VRRPv3: authentication is dropped", vrrp("    version 3\n    authentication {\n        auth_type AH\n        auth_pass 1111\n    }\n"),
			[]string{"8:5 warning: vrrp_instance VI_1: VRRP version 3 has no authentication (RFC 5798 §9); the authentication block is ignored"},
			func(c *Config) error { return eq("auth", inst(c).Auth, Auth{}) }},
		{"priority out of range: keepalived's 100, not the state's 255", vrrp("    state MASTER\n    priority 300\n"),
			[]string{"8:14 warning: priority 300 is not valid (1..255); priority 100 is used, as keepalived does"},
			func(c *Config) error {
				if err := eq("priority", inst(c).Priority, 100); err != nil {
					return err
				}
				return eq("state", inst(c).State, Master)
			}},
		{"unknown state", vrrp("    state PRIMARY\n"),
			[]string{`7:11 warning: state "PRIMARY" is not MASTER or BACKUP; state BACKUP is used, as keepalived does`},
			func(c *Config) error { return eq("state", inst(c).State, Backup) }},
		{"advert_int 0", vrrp("    advert_int 0\n"),
			[]string{"7:16 warning: advert_int 0 is out of range 0.01s..255s; the line is ignored"},
			func(c *Config) error { return eq("advert_int", inst(c).AdvertInt, time.Second) }},
		{"VRRPv2 sub-second advert_int is rounded", vrrp("    advert_int 1.6\n"),
			[]string{"7:5 warning: vrrp_instance VI_1: advert_int 1.6s is not a whole number of seconds, which VRRP version 2 needs; rounded to 2s, as keepalived does"},
			func(c *Config) error { return eq("advert_int", inst(c).AdvertInt, 2*time.Second) }},
		{"virtual_router_id out of range: keepalived does not run", "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 300\n    virtual_ipaddress {\n        10.0.0.1/24\n    }\n}\n",
			[]string{"3:23 warning: virtual_router_id 300 is out of range 1..255",
				"3:5 error: vrrp_instance VI_1 has no valid virtual_router_id (1..255); keepalived does not run without one"},
			nil},
		{"a bad virtual_router_id after a good one: the good one stays", vrrp("    virtual_router_id 300\n"),
			[]string{"7:5 warning: virtual_router_id given again", "7:23 warning: virtual_router_id 300 is out of range 1..255; the line is ignored and the earlier or default value stays"},
			func(c *Config) error { return eq("VRID", inst(c).VRID, 1) }},
		{"track_script naming a vrrp_script nested in the instance", vrrp("    vrrp_script chk {\n        script /bin/true\n    }\n    track_script {\n        chk\n    }\n"),
			[]string{`7:5 warning: keyword "vrrp_script" is not valid in vrrp_instance (it belongs in top level); ignored`,
				`11:9 warning: no vrrp_script named chk: this tracker is ignored, as keepalived does ("not found, ignoring")`},
			func(c *Config) error {
				if err := eq("scripts", len(c.Scripts), 0); err != nil {
					return err
				}
				return eq("track_script", len(inst(c).TrackScripts), 0)
			}},
		{"track_script before its vrrp_script", "global_defs {\n    enable_script_security\n}\n" + vrrp("    track_script {\n        chk\n    }\n") + "vrrp_script chk {\n    script /bin/true\n}\n",
			[]string{"11:9 warning: vrrp_script chk is defined after this reference (at k.conf:14:1); keepalived 2.2.7 resolves the name where it reads it, so this tracker is ignored"},
			func(c *Config) error {
				// The script exists (and runs), the instance ignores it.
				if err := eq("scripts", len(c.Scripts), 1); err != nil {
					return err
				}
				return eq("track_script", len(inst(c).TrackScripts), 0)
			}},
		{"vrrp_script without script", "vrrp_script s {\n    interval 1\n}\n" + vrrp("    track_script {\n        s\n    }\n"),
			[]string{"1:1 warning: vrrp_script s has no script; the vrrp_script is ignored", "11:9 warning: no vrrp_script named s: this tracker is ignored"},
			func(c *Config) error { return eq("scripts", len(c.Scripts), 0) }},
		{"strict mode with unicast peers runs (keepalived 2.2.7 never refuses it)", strict("    unicast_peer {\n        10.0.0.9\n    }\n"),
			[]string{strictWarn},
			func(c *Config) error { return eq("unicast", inst(c).Unicast, true) }},
		{"virtual address of the other family", vrrp("    virtual_ipaddress {\n        fd00::1\n    }\n"),
			[]string{"8:9 warning: virtual_ipaddress fd00::1 is IPv6 but vrrp_instance VI_1 is IPv4 (from virtual_ipaddress at k.conf:5:9); ignored, as keepalived does"},
			func(c *Config) error { return eq("VIPs", len(inst(c).VirtualIPs), 1) }},
		{"unknown address option keeps the address", vrrp("    virtual_ipaddress {\n        10.0.0.2/24 labl x\n    }\n"),
			[]string{`8:21 warning: unknown address option "labl"; the word is ignored and the address kept, as keepalived does; did you mean "label"?`,
				`8:26 warning: unknown address option "x"; the word is ignored and the address kept`},
			func(c *Config) error { return eq("VIPs", len(inst(c).VirtualIPs), 2) }},
		{"sync group naming a missing instance", "vrrp_sync_group G {\n    group {\n        VI_9\n    }\n}\n" + vrrp(""),
			[]string{"2:5 warning: vrrp_sync_group G: no vrrp_instance named VI_9; the name is ignored", "1:1 warning: vrrp_sync_group G has no instance left; the group is ignored"},
			func(c *Config) error { return eq("sync groups", len(c.SyncGroups), 0) }},

		{"second vrrp_instance of the same name is skipped", vrrp("") + strings.Replace(vrrp(""), "virtual_router_id 1", "virtual_router_id 2", 1),
			[]string{"8:1 warning: vrrp_instance VI_1 is already defined at k.conf:1:1; this one is ignored, as keepalived does"},
			func(c *Config) error {
				if err := eq("instances", len(c.Instances), 1); err != nil {
					return err
				}
				return eq("VRID", inst(c).VRID, 1)
			}},
		{"lvs_sync_daemon naming a missing instance is cleared", "global_defs {\n    lvs_sync_daemon eth1 VI_9\n}\n" + vrrp(""),
			[]string{"2:5 warning: lvs_sync_daemon: no vrrp_instance VI_9; the sync daemon setting is ignored, as keepalived does"},
			func(c *Config) error { return eq("lvs_sync_daemon", c.Global.LVSSyncDaemon == nil, true) }},
		{"interface lo is ignored, and a multicast instance cannot run", strings.Replace(vrrp(""), "interface eth0", "interface lo", 1),
			[]string{"2:15 warning: interface lo: VRRP cannot run on the loopback interface; ignored, as keepalived does",
				"2:5 error: vrrp_instance VI_1 has no usable interface"},
			nil},
		{"min_ttl above max_ttl is refused as unsafe", vrrp("    unicast_src_ip 10.0.0.5\n    unicast_peer {\n        10.0.0.9 min_ttl 200 max_ttl 100\n    }\n"),
			[]string{"9:9 error: unicast_peer 10.0.0.9: min_ttl 200 > max_ttl 100, every advert from it would be dropped"},
			nil},

		// Structure.
		{"'{' never closed: the end of the file closes it", "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.1/24\n    }\n",
			[]string{"1:20 warning: '{' is never closed (missing '}' before the end of the file); the end of the file closes it"},
			func(c *Config) error { return eq("VRID", inst(c).VRID, 1) }},
		{"stray '}'", vrrp("") + "}\n",
			[]string{"8:1 warning: unexpected '}': no block is open here; ignored, as keepalived does"},
			func(c *Config) error { return eq("instances", len(c.Instances), 1) }},

		// virtual_server
		{"lb_algo loadbalance: keepalived's default wlc", lvs("    lb_algo loadbalance\n    lb_kind NAT\n"),
			[]string{`3:13 warning: lb_algo "loadbalance" is not a scheduler (rr, wrr, lc, wlc, lblc, sh, mh, dh, fo, ovf, lblcr, sed, nq, twos); ignored, keepalived's default wlc is used, as keepalived does`},
			func(c *Config) error { return eq("lb_algo", vs0(c).Scheduler, Scheduler("wlc")) }},
		{"bad lb_algo after a good one", lvs("    lb_algo rr\n    lb_algo rrr\n    lb_kind NAT\n"),
			[]string{"4:5 warning: lb_algo given again", `4:13 warning: lb_algo "rrr" is not a scheduler (rr, wrr, lc, wlc, lblc, sh, mh, dh, fo, ovf, lblcr, sed, nq, twos); ignored, rr from the earlier line stays, as keepalived does; did you mean "rr"?`},
			func(c *Config) error { return eq("lb_algo", vs0(c).Scheduler, Scheduler("rr")) }},
		{"persistence_timeout 0: not persistent", lvs("    lb_algo rr\n    lb_kind NAT\n    persistence_timeout 0\n"),
			[]string{"5:25 warning: persistence_timeout 0 is not valid (1..2678400 seconds); ignored, the service is not persistent, as keepalived does"},
			func(c *Config) error { return eq("persistence_timeout", vs0(c).PersistenceTimeout, time.Duration(0)) }},
		{"sh-port with lvs_sched mh sets nothing", lvs("    lvs_sched mh\n    sh-port\n    lb_kind NAT\n"),
			[]string{"4:5 warning: sh-port has no effect with lvs_sched mh (its flag is mh-port); keepalived ignores it without a word"},
			func(c *Config) error { return eq("flags", len(vs0(c).SchedFlags), 0) }},
		{"mh-port with lvs_sched mh", lvs("    lvs_sched mh\n    mh-port\n    lb_kind NAT\n"),
			nil,
			func(c *Config) error { return eq("flags", vs0(c).SchedFlags, []string{"mh-port"}) }},
		{"sh-port before lb_algo", lvs("    sh-port\n    lb_algo sh\n    lb_kind NAT\n"),
			[]string{"3:5 warning: sh-port only applies to the sh scheduler, which is not set before it; ignored, as keepalived does"},
			func(c *Config) error { return eq("flags", len(vs0(c).SchedFlags), 0) }},
		{"no protocol: UDP", "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    real_server 10.0.0.2 80 {\n    }\n}\n",
			[]string{"1:1 warning: virtual_server 10.0.0.1:80 has no protocol; UDP is used, as keepalived does"},
			func(c *Config) error { return eq("protocol", vs0(c).Protocol, UDP) }},
		{"no port: made persistent", "virtual_server 10.0.0.1 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n}\n",
			[]string{"1:1 warning: virtual_server 10.0.0.1:0 has no port, which only persistent services may omit; the service is made persistent (persistence_timeout 360), as keepalived does"},
			func(c *Config) error { return eq("persistence_timeout", vs0(c).PersistenceTimeout, 360*time.Second) }},
		{"duplicate real server: the second is dropped", lvs("    lb_algo rr\n    lb_kind NAT\n    real_server 10.0.0.2 80 {\n        weight 5\n    }\n"),
			[]string{"8:5 warning: virtual_server 10.0.0.1:80: real_server 10.0.0.2:80 is already defined at k.conf:5:5; this one is ignored, as keepalived does"},
			func(c *Config) error {
				if err := eq("real servers", len(vs0(c).RealServers), 1); err != nil {
					return err
				}
				return eq("weight", vs0(c).RealServers[0].Weight, 5)
			}},
		{"group fwmark 0 is skipped and makes nothing persistent", "virtual_server_group G {\n    10.0.0.1-2 80\n    fwmark 0\n}\nvirtual_server group G {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.9 80 {\n    }\n}\n",
			[]string{"3:12 warning: fwmark 0 does not mark anything (keepalived 2.2.7 installs a service of mark 0 that no traffic reaches); the entry is skipped; use 1..4294967295"},
			func(c *Config) error {
				if err := eq("group entries", len(c.VSGroups[0].Entries), 1); err != nil {
					return err
				}
				return eq("persistence_timeout", vs0(c).PersistenceTimeout, time.Duration(0))
			}},
		{"group of both families with NAT real servers: the virtual server is ignored", "virtual_server_group G {\n    10.0.0.1-2 80\n    fd00::1 80\n}\nvirtual_server group G {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.9 80 {\n    }\n}\nvirtual_server 10.0.0.3 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.9 80 {\n    }\n}\n",
			[]string{"5:1 warning: virtual_server group G: virtual_server_group G holds IPv4 and IPv6 entries, which only a virtual server whose real servers all use TUN may take; this virtual server is ignored, as keepalived does"},
			func(c *Config) error {
				if err := eq("virtual servers", len(c.VirtualServers), 1); err != nil {
					return err
				}
				return eq("the other virtual server", c.VirtualServers[0].Addr.String(), "10.0.0.3")
			}},
		{"IPv6 group with IPv4 real servers: the virtual server is ignored", "virtual_server_group G {\n    fd00::1-3 80\n}\nvirtual_server group G {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.9 80 {\n    }\n}\n",
			[]string{"4:1 warning: virtual_server group G: virtual_server_group G is not of the family of its real servers (IPv4); this virtual server is ignored, as keepalived does"},
			func(c *Config) error { return eq("virtual servers", len(c.VirtualServers), 0) }},
		{"virtual_server naming a missing group is ignored", "virtual_server group G {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n}\n",
			[]string{"1:1 warning: no virtual_server_group named G; this virtual server is ignored, as keepalived does"},
			func(c *Config) error { return eq("virtual servers", len(c.VirtualServers), 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ds := loadString(t, tc.src)
			var got []string
			for _, d := range ds {
				got = append(got, fmt.Sprintf("%d:%d %s: %s", d.Pos.Line, d.Pos.Col, d.Severity, d.Msg))
			}
			ok := len(got) == len(tc.diags)
			used := make([]bool, len(got))
			for _, w := range tc.diags {
				head, msg, _ := strings.Cut(w, ": ")
				found := false
				for i, g := range got {
					if !used[i] && strings.HasPrefix(g, head+": ") && strings.Contains(g, msg) {
						used[i], found = true, true
						break
					}
				}
				ok = ok && found
			}
			if !ok {
				t.Errorf("diagnostics:\n  got:\n    %s\n  want:\n    %s", strings.Join(got, "\n    "), strings.Join(tc.diags, "\n    "))
			}
			if tc.check != nil {
				if ds.HasErrors() {
					t.Errorf("errors, but keepalived runs this:\n%s", dumpDiags(ds))
				}
				if err := tc.check(c); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestAutoPriority is keepalived 2.2.7's max_auto_priority: one step up
// in realtime priority per late wake-up beyond min_auto_priority_delay,
// never above the cap, never when disabled.
func TestAutoPriority(t *testing.T) {
	for _, tc := range []struct {
		name     string
		max      int
		minDelay time.Duration
		cur      int
		late     time.Duration
		want     int
	}{
		{"disabled (the default)", 0, 0, 0, 10 * time.Second, 0},
		{"on time", 49, 0, 0, 500 * time.Millisecond, 0},
		{"late beyond the default 1s: realtime 1", 49, 0, 0, 1500 * time.Millisecond, 1},
		{"late again: one more step", 49, 0, 7, 2 * time.Second, 8},
		{"at the cap", 49, 0, 49, 5 * time.Second, 49},
		{"min_auto_priority_delay", 10, 100 * time.Millisecond, 3, 150 * time.Millisecond, 4},
		{"within min_auto_priority_delay", 10, 100 * time.Millisecond, 3, 100 * time.Millisecond, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := Global{MaxAutoPriority: tc.max, MinAutoPriorityDelay: tc.minDelay}
			if got := g.AutoPriority(tc.cur, tc.late); got != tc.want {
				t.Errorf("AutoPriority(%d, %v) = %d, want %d", tc.cur, tc.late, got, tc.want)
			}
		})
	}
}

// AH authentication runs (VRRPv2 over IPv4) with keepalived's reset of the
// initial state below priority 255, so the message about the state and the
// model agree.
func TestAHMasterStateReset(t *testing.T) {
	c, ds := loadString(t, inst("    state MASTER\n    priority 50\n    authentication {\n        auth_type AH\n        auth_pass 1111\n    }\n"))
	if ds.HasErrors() {
		t.Fatalf("AH refused:\n%s", dumpDiags(ds))
	}
	if a := c.Instances[0].Auth; a.Type != AuthAH || a.Pass != "1111" {
		t.Errorf("auth %+v, want AH 1111", a)
	}
	if got := c.Instances[0].State; got != Backup {
		t.Errorf("state %s, want BACKUP (keepalived: \"Initial state master is incompatible with AH authentication - clearing\")", got)
	}
}
