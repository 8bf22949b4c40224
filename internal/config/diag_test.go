package config

import (
	"fmt"
	"strings"
	"testing"
)

// inst wraps instance keywords in a valid vrrp_instance (lines 1-6; the
// extra keywords start on line 7).
func inst(extra string) string {
	return "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.1/24\n    }\n" + extra + "}\n"
}

// vs wraps real_server keywords in a valid virtual_server (real_server on
// line 5; its body from line 6).
func vs(rsBody string) string {
	return "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n" + rsBody + "    }\n}\n"
}

// TestDiagnostics has one case per kind of diagnostic. Each want entry is
// "line:col severity: part of the message"; the diagnostics must match
// one to one, in order.
func TestDiagnostics(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		// Structure.
		{"stray closing brace", minimal + "}\n", []string{"8:1 warning: unexpected '}': no block is open"}},
		{"missing closing brace", "vrrp_instance VI_1 {\n    interface eth0\n", []string{
			"1:20 warning: '{' is never closed",
			"1:1 error: has no virtual_router_id",
			"1:1 warning: has no virtual_ipaddress"}},
		{"missing opening brace", "global_defs\nrouter_id x\n}\n", []string{"1:1 error: missing '{' after global_defs"}},
		{"brace on the next line is fine", "global_defs\n{\nrouter_id x\n}\n", nil},
		{"unexpected opening brace", "{\n}\n", []string{"1:1 error: unexpected '{'"}},
		{"block given to a value keyword", inst("    priority 100 {\n    }\n"), []string{"7:18 error: priority does not take a '{' block"}},
		// keepalived 2.2.7: "Unterminated quote", "Unmatched quote"; the
		// line stops at the quote and notify, left without a value, is
		// ignored.
		{"unterminated quote", inst("    notify \"/bin/x\n"), []string{"7:5 warning: notify needs a value; ignored, as keepalived does", "7:12 warning: unterminated quoted string; the line is read up to the quote, as keepalived does"}},
		// keepalived 2.2.7 alloc_strvec_quoted_escaped(): "String
		// '/bin/x 'a': missing terminating '", "Missing escape char at
		// end"; no script is set and the file runs.
		{"script with an unterminated quote", "vrrp_script chk {\n    script \"/bin/x 'a\"\n}\n" + inst("    notify_master \"/bin/y \\\\\"\n    track_script {\n        chk\n    }\n"), []string{
			"1:1 warning: vrrp_script chk has no script; the vrrp_script is ignored",
			"2:12 warning: script: missing closing '; ignored, as keepalived does",
			"10:19 warning: notify_master: trailing backslash escapes nothing; ignored, as keepalived does",
			"12:9 warning: no vrrp_script named chk"}},
		// keepalived 2.2.7 vrrp_tprocess_process_handler(): the words as
		// the lexer splits them; a single quote is an ordinary character.
		{"track_process words as keepalived splits them", "vrrp_track_process tp {\n    process nginx 'a b'\n}\nvrrp_track_process tq {\n    process \"nginx -g x\"\n}\n", []string{
			`5:13 warning: process "nginx -g x": keepalived takes the quoted text as one process name`}},
		{"empty program", inst("    notify_master \"\"\n"), []string{"7:19 warning: notify_master: empty program; ignored (keepalived accepts it and its every run fails)"}},

		// Keywords.
		{"unknown keyword with suggestion", inst("    prioritty 10\n"), []string{`7:5 warning: unknown keyword "prioritty" in vrrp_instance; did you mean "priority"?`}},
		{"keyword of another block", inst("    delay_loop 5\n"), []string{`7:5 warning: keyword "delay_loop" is not valid in vrrp_instance (it belongs in virtual_server, real_server, TCP_CHECK, ...)`}},
		// keepalived 2.2.7 check_parser.c: real_server has lvs_method, not
		// lb_kind ("Unknown keyword 'lb_kind'").
		{"keyword with another name here", vs("        lb_kind DR\n"), []string{`6:9 warning: keyword "lb_kind" is not valid in real_server (keepalived 2.2.7 ignores it there too: lvs_method is the keyword here); ignored`}},
		// keepalived 2.2.7 check_data.c validate_check_config: "virtual
		// server [G]:0:[10.0.0.2,81] and real server [10.0.1.1]:tcp:8080
		// ports don't match", "fwmark virtual server ..., real server ...
		// has port specified - port will be ignored"; nothing for a NAT
		// real server or one without a port or of the entry's port.
		{"group entry port differs", "virtual_server_group G {\n    10.0.0.1 80\n    10.0.0.2 81\n    fwmark 7\n}\nvirtual_server group G {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n" +
			"    real_server 10.0.1.1 8080 {\n    }\n    real_server 10.0.1.2 80 {\n        lvs_method NAT\n    }\n    real_server 10.0.1.3 {\n    }\n    sorry_server 10.0.1.9 80\n}\n", []string{
			`10:5 warning: virtual_server group G: real_server port 8080 differs from the port 80 of the virtual_server_group G entry at k.conf:2:5 and 1 other entry; with DR the destination takes each entry's port and only the checkers use 8080, as keepalived does (it reports "ports don't match")`,
			"10:5 warning: virtual_server group G: real_server port 8080 is ignored for the fwmark entries of virtual_server_group G with DR (only the checkers use it), as keepalived does",
			`17:5 warning: virtual_server group G: sorry_server port 80 differs from the port 81 of the virtual_server_group G entry at k.conf:3:5; with DR the destination takes each entry's port and only the checkers use 80, as keepalived does (it reports "port will be ignored")`,
			"17:5 warning: virtual_server group G: sorry_server port 80 is ignored for the fwmark entries"}},
		{"unknown keyword without suggestion", "xyzzy\n", []string{`1:1 warning: unknown keyword "xyzzy" at the top level; ignored`}},
		{"unknown block is skipped", "foo {\n priority 999\n}\n", []string{`1:1 warning: unknown keyword "foo" at the top level; ignored`}},
		{"unsupported keyword", "global_defs {\n    enable_dbus\n}\n", []string{"2:5 warning: enable_dbus in global_defs is not supported by vigil (vigil has a status API, not D-Bus)"}},
		{"deprecated keyword", "vrrp_track_file f {\n    file /x\n}\n", []string{"1:1 warning: vrrp_track_file is deprecated; use track_file"}},
		{"repeated keyword", inst("    priority 10\n    priority 20\n"), []string{"8:5 warning: priority given again (first at k.conf:7:5); the last one is used"}},
		{"repeated notify keeps the first", inst("    notify_master /bin/a\n    notify_master /bin/b\n"), []string{
			"8:5 warning: notify_master given again (first at k.conf:7:19); this one is ignored",
			"7:19 warning: 1 script(s) configured without enable_script_security"}},
		{"missing value", inst("    priority\n"), []string{"7:5 warning: priority needs a value"}},
		{"extra value", inst("    priority 10 20\n"), []string{`7:17 warning: extra value "20" after priority is ignored`}},
		{"value on a flag", inst("    nopreempt yes\n"), []string{`7:15 warning: nopreempt takes no value; "yes" and what follows is ignored`}},

		// Values.
		{"priority out of range", inst("    priority 300\n"), []string{
			"7:14 warning: priority 300 is not valid (1..255); priority 100 is used, as keepalived does",
		}},
		{"vrid zero", strings.Replace(minimal, "virtual_router_id 1", "virtual_router_id 0", 1), []string{
			"3:5 error: vrrp_instance VI_1 has no valid virtual_router_id (1..255); keepalived does not run without one",
			"3:23 warning: virtual_router_id 0 is out of range 1..255; the line is ignored and the earlier or default value stays, as keepalived does",
		}},
		{"advert_int zero", inst("    advert_int 0\n"), []string{"7:16 warning: advert_int 0 is out of range 0.01s..255s"}},
		{"not a number", inst("    priority high\n"), []string{
			"7:14 warning: priority high is not valid (1..255); priority 100 is used, as keepalived does",
		}},
		{"negative number", inst("    priority -5\n"), []string{
			"7:14 warning: priority -5 is not valid (1..255); priority 100 is used, as keepalived does",
		}},
		{"too many decimals", inst("    advert_int 1.0000001\n"), []string{`7:16 warning: advert_int "1.0000001": more than 6 decimal places`}},
		{"bad enum with suggestion", inst("    state MASTR\n"), []string{
			"7:11 warning: state \"MASTR\" is not MASTER or BACKUP; state BACKUP is used, as keepalived does",
		}},
		{"bad bool", inst("    strict_mode maybe\n"), []string{
			`7:17 warning: strict_mode "maybe": want on|off|true|false|yes|no`}},
		{"state BACKUP after MASTER", inst("    state MASTER\n    state BACKUP\n"), []string{
			"8:11 warning: state BACKUP after state MASTER is ignored; state MASTER stays, as keepalived does",
		}},
		{"loopback interface", strings.Replace(minimal, "interface eth0", "interface lo", 1), []string{
			"2:5 error: vrrp_instance VI_1 has no usable interface",
			"2:15 warning: interface lo: VRRP cannot run on the loopback interface; ignored, as keepalived does",
		}},
		{"bad interface name", strings.Replace(minimal, "interface eth0", "interface a/b", 1), []string{
			"2:5 error: vrrp_instance VI_1 has no usable interface",
			"2:15 warning: interface \"a/b\" is not a valid interface name; ignored, as keepalived does",
		}},

		// Addresses.
		{"malformed address", inst("    mcast_src_ip 10.0.0.256\n"), []string{`7:18 warning: mcast_src_ip "10.0.0.256" is not a valid IP address`}},
		{"prefix too long", "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n10.0.0.1/40\n}\n}\n", []string{`5:1 warning: address "10.0.0.1/40": prefix length "40" is not in 0..32`}},
		{"unknown address option", inst("    virtual_ipaddress_excluded {\n        10.0.0.9 devv eth0\n    }\n"), []string{
			"8:18 warning: unknown address option \"devv\"; the word is ignored and the address kept, as keepalived does; did you mean \"dev\"?",
			"8:23 warning: unknown address option \"eth0\"; the word is ignored and the address kept, as keepalived does",
		}},
		{"ipv6 broadcast", inst("    virtual_ipaddress_excluded {\n        fd00::1 brd fd00::ff\n    }\n"), []string{"8:17 warning: an IPv6 address has no broadcast address"}},
		{"not multicast", "global_defs {\n    vrrp_mcast_group4 10.0.0.1\n}\n", []string{"2:23 warning: vrrp_mcast_group4 10.0.0.1 is not a multicast address"}},
		{"bad mac", inst("    use_vmac 01:00:5e:00:00:01\n"), []string{
			`7:14 warning: use_vmac MAC address "01:00:5e:00:00:01" is multicast; ignored, as keepalived does`}},
		{"route without dev", inst("    virtual_routes {\n        10.9.0.0/16 via 10.0.0.254\n    }\n"), []string{"8:9 warning: route 10.9.0.0/16 has no dev, so it cannot be tracked"}},
		{"rule without preference", inst("    virtual_rules {\n        from 10.9.0.0/16 table 5\n    }\n"), []string{"8:9 warning: rule has no preference"}},
		{"route mixing families", inst("    virtual_routes {\n        10.9.0.0/16 via fd00::1 dev eth0\n    }\n"), []string{"8:25 warning: route mixes IPv4 and IPv6 addresses (fd00::1)"}},
		{"unknown route option", inst("    virtual_routes {\n        10.9.0.0/16 vai 10.0.0.1 dev eth0\n    }\n"), []string{`8:21 warning: unknown route option "vai"; did you mean "via"?`}},

		// Required fields.
		{"no interface", "vrrp_instance VI_1 {\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n", []string{"1:1 error: vrrp_instance VI_1 has no interface"}},
		{"no vrid", "vrrp_instance VI_1 {\n    interface eth0\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n", []string{"1:1 error: vrrp_instance VI_1 has no virtual_router_id"}},
		{"unicast without interface needs a source", "vrrp_instance VI_1 {\n    virtual_router_id 1\n    unicast_peer {\n        10.0.0.2\n    }\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n", []string{
			"1:1 error: vrrp_instance VI_1: a unicast instance needs an interface or unicast_src_ip"}},
		{"no vip", "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n}\n", []string{"1:1 warning: vrrp_instance VI_1 has no virtual_ipaddress"}},
		{"no vip in vrrpv3", "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    version 3\n}\n", []string{"1:1 error: vrrp_instance VI_1 has no virtual_ipaddress; VRRPv3 and strict mode need at least one"}},
		{"vrrp_script without script", "vrrp_script s {\n    interval 1\n}\n", []string{
			"1:1 warning: vrrp_script s has no script; the vrrp_script is ignored (and every track_script naming it), as keepalived does",
		}},
		{"track_file without file", "track_file f {\n    weight 1\n}\n", []string{"1:1 warning: track_file f has no file"}},

		// Semantic checks.
		{"duplicate vrid", minimal + strings.Replace(minimal, "VI_1", "VI_2", 1), []string{
			"10:5 error: vrrp_instance VI_2 and vrrp_instance VI_1 (at k.conf:1:1) both use VRID 1 with IPv4 on interface eth0"}},
		{"same vrid on another interface", minimal + strings.Replace(strings.Replace(minimal, "VI_1", "VI_2", 1), "eth0", "eth1", 1), nil},
		{"same vrid with another mcast group", minimal + strings.Replace(strings.Replace(minimal, "VI_1", "VI_2", 1), "interface eth0", "interface eth0\nmcast_dst_ip 224.0.0.99", 1), nil},
		{"unicast peers overlap", strings.Replace(minimal, "interface eth0", "interface eth0\nunicast_peer {\n10.0.0.9\n}", 1) +
			strings.Replace(strings.Replace(minimal, "VI_1", "VI_2", 1), "interface eth0", "interface eth0\nunicast_peer {\n10.0.0.9\n}", 1), []string{
			"16:5 error: vrrp_instance VI_2 uses VRID 1 with the same unicast peers as vrrp_instance VI_1"}},
		{"unicast family mismatch", inst("    unicast_src_ip 10.0.0.5\n    unicast_peer {\n        fd00::9\n    }\n"), []string{
			"9:9 warning: unicast_peer fd00::9 is IPv6 but vrrp_instance VI_1 is IPv4 (from virtual_ipaddress at k.conf:5:9)"}},
		{"vip family mismatch", inst("    virtual_ipaddress {\n        fd00::1\n    }\n"), []string{
			"8:9 warning: virtual_ipaddress fd00::1 is IPv6 but vrrp_instance VI_1 is IPv4 (from virtual_ipaddress at k.conf:5:9)"}},
		{"excluded may mix families", inst("    virtual_ipaddress_excluded {\n        fd00::1\n    }\n"), nil},
		{"track_script naming nothing", inst("    track_script {\n        chk_x\n    }\n"), []string{"8:9 warning: no vrrp_script named chk_x"}},
		{"track_script suggestion", "vrrp_script chk_web {\n    script /bin/x\n}\n" + strings.Replace(inst("    track_script {\n        chk_wbe\n    }\n"), "VI_1", "VI_1", 1), []string{
			"1:1 warning: vrrp_script chk_web is not used by any track_script",
			"2:12 warning: 1 script(s) configured without enable_script_security in global_defs: keepalived reports a security violation and does not check who can modify them",
			"11:9 warning: no vrrp_script named chk_wbe: this tracker is ignored, as keepalived does (\"not found, ignoring\"); did you mean \"chk_web\"?",
		}},
		{"script defined after use", "global_defs {\nenable_script_security\n}\n" + inst("    track_script {\n        s\n    }\n") + "vrrp_script s {\n    script /bin/s\n}\n", []string{
			"11:9 warning: vrrp_script s is defined after this reference (at k.conf:14:1); keepalived 2.2.7 resolves the name where it reads it, so this tracker is ignored, as keepalived does (move the vrrp_script block above)",
		}},
		{"track_file naming nothing", inst("    track_file {\n        nope\n    }\n"), []string{"8:9 warning: no track_file named nope"}},
		{"track_process naming nothing", inst("    track_process {\n        nope\n    }\n"), []string{"8:9 warning: no vrrp_track_process named nope"}},
		{"track weight out of range", inst("    track_interface {\n        eth1 weight 254\n    }\n"), []string{"8:21 warning: track_interface eth1: weight 254 is not allowed; 253 is used, as keepalived does"}},
		{"track weight not a number", inst("    track_interface {\n        eth1 weight heavy\n    }\n"), []string{"8:21 warning: track_interface eth1: weight heavy is not a number (range -254..254); the entry is kept with weight 0, as keepalived does"}},
		{"tracking the own interface", inst("    track_interface {\n        eth0\n    }\n"), []string{"8:9 warning: vrrp_instance VI_1: track_interface eth0 is the instance's own interface"}},
		{"sync group naming nothing", "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_7\n    }\n}\n" + minimal, []string{
			"1:1 warning: vrrp_sync_group G has only one instance",
			"2:5 warning: vrrp_sync_group G: no vrrp_instance named VI_7; the name is ignored, as keepalived does; did you mean \"VI_1\"?",
		}},
		{"instance in two sync groups", "vrrp_sync_group G {\n    group {\n        VI_1\n    }\n}\nvrrp_sync_group H {\n    group {\n        VI_1\n    }\n}\n" + minimal, []string{
			"1:1 warning: vrrp_sync_group G has only one instance",
			"6:1 warning: vrrp_sync_group H has no instance left; the group is ignored, as keepalived does",
			"7:5 warning: vrrp_instance VI_1 is already in vrrp_sync_group G; an instance can be in one group only, so it is left out of H, as keepalived does",
		}},
		{"empty sync group", "vrrp_sync_group G {\n}\n", []string{"1:1 warning: vrrp_sync_group G has no instances"}},
		{"weights ignored in a sync group", "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n" +
			inst("    track_interface {\n        eth1 weight 10\n    }\n") + strings.Replace(strings.Replace(minimal, "VI_1", "VI_2", 1), "virtual_router_id 1", "virtual_router_id 2", 1), []string{
			"14:9 warning: vrrp_instance VI_1: the weight of track_interface eth1 is ignored because of vrrp_sync_group G"}},
		{"duplicate instance name", minimal + strings.Replace(minimal, "virtual_router_id 1", "virtual_router_id 2", 1), []string{
			"8:1 warning: vrrp_instance VI_1 is already defined at k.conf:1:1"}},
		{"auth_pass too long", inst("    authentication {\n        auth_type PASS\n        auth_pass 123456789\n    }\n"), []string{
			`9:19 warning: auth_pass is 9 characters long; only the first 8 ("12345678") are used, as keepalived does`}},
		{"auth in vrrpv3", inst("    version 3\n    authentication {\n        auth_type PASS\n        auth_pass 1\n    }\n"), []string{
			"8:5 warning: vrrp_instance VI_1: VRRP version 3 has no authentication"}},
		{"auth without pass", inst("    authentication {\n        auth_type PASS\n    }\n"), []string{"7:5 warning: vrrp_instance VI_1: authentication without auth_pass"}},
		{"strict mode and unicast", "global_defs {\n    vrrp_strict\n}\n" + inst("    unicast_peer {\n        10.0.0.9\n    }\n"), []string{
			"4:1 warning: vrrp_instance VI_1: accept mode is off (vrrp_strict): VIP traffic will be dropped on this node while MASTER, as keepalived does (nftables table inet vigil_vrrp); add `accept` to answer it",
		}},
		{"vrrpv2 sub-second advert", inst("    advert_int 0.5\n"), []string{"7:5 warning: vrrp_instance VI_1: advert_int 0.5s is not a whole number of seconds"}},
		{"vrrpv3 advert not in centiseconds", inst("    version 3\n    advert_int 0.015\n"), []string{"8:5 warning: vrrp_instance VI_1: advert_int 0.015s is not a multiple of 10ms"}},
		{"vrrpv3 advert too long", inst("    version 3\n    advert_int 41\n"), []string{"8:5 warning: vrrp_instance VI_1: advert_int 41s is too long for VRRP version 3"}},
		{"nopreempt with master", inst("    state MASTER\n    priority 100\n    nopreempt\n"), []string{"9:5 warning: vrrp_instance VI_1: nopreempt does not work with state MASTER"}},
		{"unicast keyword without peers", inst("    unicast_src_ip 10.0.0.5\n"), []string{"1:1 warning: vrrp_instance VI_1: unicast keywords without unicast_peer"}},
		{"notify parameter taken as the user", "global_defs {\nenable_script_security\n}\n" + inst("    notify_master /bin/n master\n"), []string{
			`10:26 warning: notify_master: "master" is taken as the user to run /bin/n as; to pass it as a parameter, quote the program with its parameters (notify_master "/bin/n master")`}},
		{"script security", inst("    notify /bin/n\n"), []string{"7:12 warning: 1 script(s) configured without enable_script_security"}},
		{"unused script", "global_defs {\nenable_script_security\n}\nvrrp_script s {\n    script /bin/s\n}\n", []string{"4:1 warning: vrrp_script s is not used by any track_script"}},
		{"unquoted script parameters", "global_defs {\nenable_script_security\n}\nvrrp_script s {\n    script /bin/s arg\n}\n" + inst("    track_script {\n        s\n    }\n"), []string{
			`5:12 warning: script: keepalived ignores "arg" and what follows; quote the program together with its parameters`}},
		{"swallowed configuration", "vrrp_instance VI_1 {#VIP state MASTER#x interface eth0#y virtual_router_id 5\n}\n", []string{
			"1:1 error: vrrp_instance VI_1 has no virtual_router_id",
			"1:1 error: vrrp_instance VI_1 has no interface",
			"1:1 warning: vrrp_instance VI_1 has no virtual_ipaddress",
			"1:21 warning: this comment contains configuration (interface, state, virtual_router_id)"}},
		{"ordinary comment is not swallowed configuration", "! set the priority higher on the master, state is BACKUP elsewhere\n" + minimal, nil},

		// LVS.
		{"virtual_server_group not found", "virtual_server group G {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n        TCP_CHECK {\n        }\n    }\n}\n", []string{
			"1:1 warning: no virtual_server_group named G"}},
		{"no protocol", "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    real_server 10.0.0.2 80 {\n    }\n}\n", []string{
			"1:1 warning: virtual_server 10.0.0.1:80 has no protocol; UDP is used, as keepalived does (set protocol TCP, UDP or SCTP)",
		}},
		{"no real server", "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n}\n", []string{
			"1:1 warning: virtual_server 10.0.0.1:80 has no real_server; keepalived ignores it"}},
		{"no port without persistence", "virtual_server 10.0.0.1 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n}\n", []string{
			"1:1 warning: virtual_server 10.0.0.1:0 has no port, which only persistent services may omit; the service is made persistent (persistence_timeout 360), as keepalived does",
		}},
		{"bad scheduler", "virtual_server 10.0.0.1 80 {\n    lb_algo rrr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n}\n", []string{
			"2:13 warning: lb_algo \"rrr\" is not a scheduler (rr, wrr, lc, wlc, lblc, sh, mh, dh, fo, ovf, lblcr, sed, nq, twos); ignored, keepalived's default wlc is used, as keepalived does; did you mean \"rr\"?",
		}},
		{"duplicate real server", vs("    }\n    real_server 10.0.0.2 80 {\n"), []string{
			"7:5 warning: virtual_server 10.0.0.1:80: real_server 10.0.0.2:80 is already defined at k.conf:5:5"}},
		{"real server of another family", strings.Replace(vs(""), "real_server 10.0.0.2 80", "real_server fd00::2 80", 1), []string{
			"5:5 warning: virtual_server 10.0.0.1:80: real_server fd00::2 is not of the virtual server's family"}},
		{"quorum above the weights", strings.Replace(vs(""), "protocol TCP", "protocol TCP\n    quorum 5", 1), []string{
			"5:5 warning: virtual_server 10.0.0.1:80: quorum 5 exceeds the total weight 1 of the real servers"}},
		{"DR port mismatch", strings.Replace(strings.Replace(vs(""), "lb_kind NAT", "lb_kind DR", 1), "10.0.0.2 80", "10.0.0.2 8080", 1), []string{
			"5:5 warning: virtual_server 10.0.0.1:80: real_server port 8080 differs from the virtual server's 80"}},
		// keepalived 2.2.7 check_data.c validate_check_config checks for
		// duplicates before it resets a DR port, so both stay and name one
		// kernel destination (ipvswrapper.c: a DR destination takes the
		// service's port).
		{"DR port reset makes a duplicate", strings.Replace(vs("    }\n    real_server 10.0.0.2 8080 {\n"), "lb_kind NAT", "lb_kind DR", 1), []string{
			"7:5 warning: virtual_server 10.0.0.1:80: real_server port 8080 differs from the virtual server's 80",
			"7:5 warning: virtual_server 10.0.0.1:80: real_server 10.0.0.2:8080 is 10.0.0.2:80 with DR, the real server at k.conf:5:5: keepalived keeps both, adds the destination twice (IPVS refuses the second: File exists), and either one's failing checker removes it while the other passes; vigil keeps the first one and its checkers only"}},
		{"DR real servers of one address in a group", "virtual_server_group G {\n    10.0.0.1 80\n}\n" +
			"virtual_server group G {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n    real_server 10.0.0.2 8080 {\n    }\n}\n", []string{
			`10:5 warning: virtual_server group G: real_server port 8080 differs from the port 80 of the virtual_server_group G entry at k.conf:2:5; with DR`,
			"10:5 warning: virtual_server group G: real_server 10.0.0.2:8080 has the address of the real server at k.conf:8:5; with DR a destination takes the service's port, so both are one destination: keepalived adds it twice (IPVS refuses the second: File exists), and either one's failing checker removes it while the other passes; vigil installs it while either passes"}},
		{"NAT real servers of one address in a group", "virtual_server_group G {\n    10.0.0.1 80\n}\n" +
			"virtual_server group G {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n    real_server 10.0.0.2 8080 {\n    }\n}\n", nil},
		{"HTTP_GET without url", vs("        HTTP_GET {\n        }\n"), []string{
			"6:9 warning: HTTP_GET has no url; the checker is ignored, as keepalived does",
		}},
		{"url without path", vs("        HTTP_GET {\n            url {\n                status_code 200\n            }\n        }\n"), []string{
			"6:9 warning: HTTP_GET has no url; the checker is ignored, as keepalived does",
			"7:13 warning: url has no path; the url is ignored, as keepalived does",
		}},
		{"bad digest", vs("        HTTP_GET {\n            url {\n                path /\n                digest abc\n            }\n        }\n"), []string{
			`9:24 warning: digest "abc" is not an MD5 digest`}},
		{"bad status code", vs("        HTTP_GET {\n            url {\n                path /\n                status_code 99 600 300-200\n            }\n        }\n"), []string{
			`9:29 warning: status_code "99": want a code or range within 100-599`,
			`9:32 warning: status_code "600": want a code or range within 100-599`,
			`9:36 warning: status_code "300-200": want a code or range within 100-599`}},
		{"MISC_CHECK without path", vs("        MISC_CHECK {\n            misc_timeout 3\n        }\n"), []string{
			"6:9 warning: MISC_CHECK has no misc_path; the checker is ignored, as keepalived does",
		}},
		{"FILE_CHECK naming nothing", vs("        FILE_CHECK {\n            track_file nope\n        }\n"), []string{
			"6:9 warning: FILE_CHECK has no usable track_file; the checker is ignored, as keepalived does",
			"7:13 warning: no track_file named nope: this tracker is ignored, as keepalived does (\"not found, ignoring\")",
		}},
		{"connection keyword in MISC_CHECK", vs("        MISC_CHECK {\n            misc_path /bin/x\n            connect_port 80\n        }\n"), []string{
			"7:23 warning: 1 script(s) configured without enable_script_security",
			`8:13 warning: keyword "connect_port" is not valid in MISC_CHECK (it belongs in TCP_CHECK, HTTP_GET, SSL_GET, ...); ignored`}},
		{"bad hex payload", vs("        UDP_CHECK {\n            payload 0g\n        }\n"), []string{`7:21 warning: payload: "0g" is not a hex string`}},
		{"bad DNS type", vs("        DNS_CHECK {\n            type AXFR\n        }\n"), []string{`7:18 warning: DNS type "AXFR": want one of A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG, DNSKEY`}},
		{"bad tunnel options", strings.Replace(vs(""), "lb_kind NAT", "lb_kind TUN type gue", 1), []string{
			"3:5 warning: lb_kind: a gue tunnel needs a port, other tunnels take none; the options are ignored and lb_kind TUN is used with its defaults, as keepalived does",
		}},
		{"sh flag without sh", strings.Replace(vs(""), "protocol TCP", "protocol TCP\n    sh-port", 1), []string{
			"5:5 warning: sh-port only applies to the sh scheduler"}},
		{"bad virtual server address", "virtual_server 10.0.0.300 80 {\n    protocol TCP\n}\n", []string{`1:16 warning: virtual_server address "10.0.0.300" is not a valid IP address`}},
		{"group fwmark 0", "virtual_server_group G {\n    10.0.0.1-2 80\n    fwmark 0\n}\n", []string{
			`3:12 warning: fwmark 0 does not mark anything (keepalived 2.2.7 installs a service of mark 0 that no traffic reaches); the entry is skipped; use 1..4294967295`}},
		{"bad group range", "virtual_server_group G {\n    10.0.0.20-10 80\n}\n", []string{
			`2:5 warning: virtual_server_group range "10.0.0.20-10": the end is not after the start`,
			"1:1 warning: virtual_server_group G has no entries"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ds := loadString(t, tc.src)
			var got []string
			for _, d := range ds {
				got = append(got, fmt.Sprintf("%d:%d %s: %s", d.Pos.Line, d.Pos.Col, d.Severity, d.Msg))
			}
			ok := len(got) == len(tc.want)
			if ok {
				// Diagnostics are sorted by position; compare as sets so
				// the table can list them in reading order.
				used := make([]bool, len(got))
				for _, w := range tc.want {
					found := false
					for i, g := range got {
						if !used[i] && strings.HasPrefix(g, strings.SplitN(w, ": ", 2)[0]+": ") && strings.Contains(g, strings.SplitN(w, ": ", 2)[1]) {
							used[i], found = true, true
							break
						}
					}
					ok = ok && found
				}
			}
			if !ok {
				t.Errorf("diagnostics:\n  got:\n    %s\n  want:\n    %s", strings.Join(got, "\n    "), strings.Join(tc.want, "\n    "))
			}
		})
	}
}
