package translate

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vigil-ha/vigil/internal/netif"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/check/probe"
	"github.com/vigil-ha/vigil/internal/diag"
)

// keepalived 2.2.7 programs every "ip route" / "ip rule" option its
// keepalived.conf(5) lists (vrrp_iproute.c alloc_route(), vrrp_iprule.c
// alloc_rule()); vigil turns each into the route or rule netif sends, and
// leaves out, at the line, what keepalived leaves out (a table it cannot
// resolve, a bad value) and the two options it cannot program (encap, vrf).
func TestRoutesRulesProgrammed(t *testing.T) {
	const conf = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.168.1.100/24
    }
    virtual_routes {
        10.1.0.0/16 via 192.168.1.1 dev eth0 mtu lock 1400 advmss 1360 rtt 1s initcwnd 10 features ecn congctl lock cubic
        10.2.0.0/16 dev eth0 nexthop via 192.168.1.1 dev eth0 weight 1 nexthop via 192.168.1.2 weight 256 onlink realms 3/4
        local 10.3.0.1 dev eth0 table local
        10.4.0.0/16 via 192.168.1.1 dev eth0 table vigil-no-such-table
        blackhole 10.5.0.0/16 table 100 metric 7 tos 0x10 protocol zebra no_track append
        10.6.0.0/16 via 192.168.1.1 dev eth0 encap ip id 5 dst 10.0.0.1
        2001:db8::/32 from 2001:db8:1::/48 via fe80::1 dev eth0 pref high expires 30 hoplimit 9
        10.7.0.0/16 via 192.168.1.1 or 192.168.1.2 dev eth0 scope link
        10.8.0.0/16 via 192.168.1.1 dev eth0 pref high
        10.9.0.0/16 no_track
    }
    virtual_rules {
        from 192.168.1.0/24 table 2 fwmark 0x5/0xff priority 100
        from 192.168.2.0/24 table vigil-no-such-table priority 101
        iif eth0 oif eth1 uidrange 100-200 table main priority 102
        not to 10.0.0.0/8 ipproto tcp sport 1000-2000 dport 80 goto 200 priority 103 tos 0x10
        from all blackhole priority 104 realms 1
        from all priority 105
        to 10.9.0.0/16 suppress_prefixlength 0 suppress_ifgroup 3 table 7 priority 106 protocol 4 no_track
        from 2001:db8::/32 type unreachable priority 107 inet6
        l3mdev priority 108
    }
}
`
	spec, ds := FromConfig(load(t, conf))
	if ds.HasErrors() {
		t.Fatalf("FromConfig refused the instance: %v", ds.Err())
	}
	want := map[int]string{
		11: `virtual route 10.4.0.0/16: routing table "vigil-no-such-table" is not a number and not in /etc/iproute2/rt_tables; the route is ignored, as keepalived does`,
		13: "virtual route 10.6.0.0/16: encap (lightweight tunnel) is not supported by vigil",
		16: "virtual route 10.8.0.0/16: pref is only valid for IPv6; the route is ignored, as keepalived does",
		17: "virtual route 10.9.0.0/16: a unicast route needs dev or via; the kernel refuses it, as it refuses keepalived's (add dev eth0)",
		21: `virtual rule: routing table "vigil-no-such-table" is not a number and not in /etc/iproute2/rt_tables; the rule is ignored, as keepalived does`,
		24: "virtual rule: suppressor/realm specified for non table action; the rule is ignored, as keepalived does",
		25: "virtual rule: no action (table, goto, nop, blackhole, unreachable, prohibit or l3mdev); the rule is ignored, as keepalived does",
	}
	got := map[int]diag.Diagnostic{}
	for _, d := range ds {
		if strings.Contains(d.Msg, "deprecated") {
			continue // "or" (config's warning)
		}
		got[d.Pos.Line] = d
	}
	for line, msg := range want {
		d, ok := got[line]
		if !ok || d.Severity != diag.Warning || !strings.Contains(d.Msg, "vrrp_instance VI_1: "+msg) {
			t.Errorf("line %d: got %v, want a warning with %q", line, d, msg)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d diagnostics, want %d:\n%v", len(got), len(want), ds)
	}
	eqIP := cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	wantRoutes := []netif.Route{
		{Dst: p("10.1.0.0/16"), Gw: a("192.168.1.1"), Dev: "eth0", Metrics: []netif.Metric{
			{Type: unix.RTAX_MTU, Value: 1400}, {Type: unix.RTAX_ADVMSS, Value: 1360}, {Type: unix.RTAX_RTT, Value: 8000},
			{Type: unix.RTAX_INITCWND, Value: 10}, {Type: unix.RTAX_FEATURES, Value: unix.RTAX_FEATURE_ECN},
		}, Locks: 1<<unix.RTAX_MTU | 1<<unix.RTAX_CC_ALGO, Congctl: "cubic"},
		{Dst: p("10.2.0.0/16"), Dev: "eth0", Nexthops: []netif.Nexthop{
			{Gw: a("192.168.1.1"), Dev: "eth0", Weight: 1}, {Gw: a("192.168.1.2"), Weight: 256, OnLink: true, Realms: 3<<16 | 4},
		}},
		{Dst: p("10.3.0.1/32"), Type: "local", Dev: "eth0", Table: 255},
		{Dst: p("10.5.0.0/16"), Type: "blackhole", Table: 100, Metric: 7, TOS: 0x10, Protocol: 11, Mode: "append"},
		{Dst: p("2001:db8::/32"), From: p("2001:db8:1::/48"), Gw: a("fe80::1"), Dev: "eth0", Pref: 1, PrefSet: true,
			Expires: 30, ExpiresSet: true, Metrics: []netif.Metric{{Type: unix.RTAX_HOPLIMIT, Value: 9}}},
		{Dst: p("10.7.0.0/16"), Dev: "eth0", Scope: netif.ScopeLink, ScopeSet: true, Nexthops: []netif.Nexthop{{Gw: a("192.168.1.1")}, {Gw: a("192.168.1.2")}}},
		{Dst: p("10.9.0.0/16")},
	}
	if diff := cmp.Diff(wantRoutes, spec.Instances[0].Routes, eqIP); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	wantRules := []netif.Rule{
		{From: p("192.168.1.0/24"), Table: 2, Preference: 100, Mark: 5, Mask: 0xff, MarkSet: true, MaskSet: true, Protocol: 18},
		{IIf: "eth0", OIf: "eth1", UIDStart: 100, UIDEnd: 200, UIDSet: true, Table: 254, Preference: 102, Protocol: 18},
		{Not: true, To: p("10.0.0.0/8"), IPProto: 6, IPProtoSet: true, Sport: netif.PortRange{Start: 1000, End: 2000, Set: true},
			Dport: netif.PortRange{Start: 80, End: 80, Set: true}, Action: "goto", Goto: 200, Preference: 103, TOS: 0x10, Protocol: 18},
		{To: p("10.9.0.0/16"), SuppressPrefixLen: 0, SuppressPrefixLenSet: true, SuppressIfgroup: 3, SuppressIfgroupSet: true,
			Table: 7, Preference: 106, Protocol: 4},
		{IPv6: true, From: p("2001:db8::/32"), Action: "unreachable", Preference: 107, Protocol: 18},
		{L3mdev: true, Preference: 108, Protocol: 18},
	}
	if diff := cmp.Diff(wantRules, spec.Instances[0].Rules, eqIP); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
}

// keepalived 2.2.7 compiles an HTTP_GET url's regex with its
// regex_options (PCRE2_CASELESS for caseless, ...); vigil gives the RE2
// regex the same flags.
func TestRegexOptionsApplied(t *testing.T) {
	const conf = `virtual_server 10.0.0.1 80 {
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 80 {
        HTTP_GET {
            url {
                path /health
                regex "^status: ok$"
                regex_options caseless multiline
            }
        }
    }
}
`
	spec, ds := DirectorFromConfig(load(t, conf))
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	h := spec.Checks[0].Checkers[0].Checker.(*probe.HTTP)
	re := h.URLs[0].Regex
	if re == nil || !re.MatchString("uptime: 5\nSTATUS: OK\n") {
		t.Errorf("regex %v does not match a caseless, multiline body", re)
	}
}
