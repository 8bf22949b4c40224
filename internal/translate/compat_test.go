package translate

import (
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/check/probe"
	"github.com/vigil-ha/vigil/internal/diag"
)

// keepalived 2.2.7 runs virtual routes and rules that vigil cannot program
// (keepalived.conf.5 "ip route" options such as mtu and nexthop, route
// types local and nat, rule selectors fwmark and iif; -t on such a file
// reports nothing about them), and ignores a route or rule whose table it
// cannot resolve ("Routing table T not found for route"). vigil runs the
// instance, leaves each such route or rule out and warns at its line.
func TestRoutesRulesVigilCannotProgram(t *testing.T) {
	const conf = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.168.1.100/24
    }
    virtual_routes {
        10.1.0.0/16 via 192.168.1.1 dev eth0 mtu 1400
        10.2.0.0/16 dev eth0 nexthop via 192.168.1.1 weight 1 nexthop via 192.168.1.2 weight 2
        local 10.3.0.1 dev eth0
        10.4.0.0/16 via 192.168.1.1 dev eth0 table vigil-no-such-table
        10.5.0.0/16 via 192.168.1.1 dev eth0
    }
    virtual_rules {
        from 192.168.1.0/24 table 2 fwmark 5 priority 100
        from 192.168.2.0/24 table vigil-no-such-table priority 101
        from 192.168.3.0/24 table 3 priority 102
    }
}
`
	spec, ds := FromConfig(load(t, conf))
	if ds.HasErrors() {
		t.Fatalf("FromConfig refused the instance: %v", ds.Err())
	}
	want := map[int]string{
		8:  "virtual route 10.1.0.0/16: options [mtu 1400] are not supported by vigil; vigil does not add this route (keepalived 2.2.7 adds it)",
		9:  "virtual route 10.2.0.0/16: options [nexthop via 192.168.1.1 weight 1 nexthop via 192.168.1.2 weight 2]",
		10: `virtual route 10.3.0.1/32: route type "local" is not supported by vigil`,
		11: `virtual route 10.4.0.0/16: routing table "vigil-no-such-table" is not a number and not in /etc/iproute2/rt_tables; the route is ignored, as keepalived does`,
		15: "virtual rule: options [fwmark 5] are not supported by vigil; vigil does not add this rule (keepalived 2.2.7 adds it)",
		16: `virtual rule: routing table "vigil-no-such-table" is not a number and not in /etc/iproute2/rt_tables; the rule is ignored, as keepalived does`,
	}
	got := map[int]diag.Diagnostic{}
	for _, d := range ds {
		got[d.Pos.Line] = d
	}
	for line, msg := range want {
		d, ok := got[line]
		if !ok || d.Severity != diag.Warning || !strings.Contains(d.Msg, "vrrp_instance VI_1: "+msg) {
			t.Errorf("line %d: got %v, want a warning with %q", line, d, msg)
		}
	}
	if len(ds) != len(want) {
		t.Errorf("%d diagnostics, want %d:\n%v", len(ds), len(want), ds)
	}
	in := spec.Instances[0]
	if len(in.Routes) != 1 || in.Routes[0].Dst.String() != "10.5.0.0/16" {
		t.Errorf("routes %v, want only 10.5.0.0/16", in.Routes)
	}
	if len(in.Rules) != 1 || in.Rules[0].From.String() != "192.168.3.0/24" || in.Rules[0].Preference != 102 {
		t.Errorf("rules %+v, want only from 192.168.3.0/24 at 102", in.Rules)
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
