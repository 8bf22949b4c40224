package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestServerMethodAsRead: a real or sorry server takes the virtual
// server's lb_kind as read when its block starts (keepalived 2.2.7
// check_data.c alloc_rs(), alloc_ssvr()), and a fwmark service's family
// comes from the servers not tunnelled at that point (check_parser.c
// rs_end_handler(), vs_end_handler()).
func TestServerMethodAsRead(t *testing.T) {
	type server struct {
		Addr   string
		Method Method
	}
	tests := []struct {
		name    string
		body    string
		family  Family
		reals   []server // kept, in order
		sorry   *server
		inhibit bool
		warn    string // a warning that must be printed ("" none about families)
	}{{
		name: "lb_kind TUN before: the tunnelled real server does not decide",
		body: `lb_kind TUN
    real_server 2001:db8::1 { }
    real_server 10.0.0.2 {
        lvs_method DR
    }`,
		family: Inet,
		reals:  []server{{"2001:db8::1", TUN}, {"10.0.0.2", DR}},
	}, {
		name: "lb_kind TUN after a real server: that one was not tunnelled when read",
		body: `real_server 2001:db8::1 { }
    lb_kind TUN
    real_server 10.0.0.2 {
        lvs_method DR
    }`,
		family: Inet6,
		reals:  []server{{"2001:db8::1", TUN}},
		warn:   "real_server 10.0.0.2 is not of the virtual server's family",
	}, {
		name: "lb_kind twice: each real server keeps the one read before it",
		body: `lb_kind DR
    real_server 10.0.0.1 { }
    lb_kind NAT
    real_server 10.0.0.2 { }`,
		family: Inet,
		reals:  []server{{"10.0.0.1", DR}, {"10.0.0.2", NAT}},
	}, {
		name: "all tunnelled: a sorry server with its own DR decides",
		body: `lb_kind TUN
    real_server 10.0.0.1 { }
    sorry_server 2001:db8::9
    sorry_server_lvs_method DR`,
		family: Inet6,
		reals:  []server{{"10.0.0.1", TUN}},
		sorry:  &server{"2001:db8::9", DR},
	}, {
		name: "all tunnelled, one family",
		body: `lb_kind TUN
    real_server 2001:db8::1 { }
    real_server 2001:db8::2 { }`,
		family: Inet6,
		reals:  []server{{"2001:db8::1", TUN}, {"2001:db8::2", TUN}},
	}, {
		name: "all tunnelled, sorry and real servers of two families: IPv4",
		body: `lb_kind TUN
    real_server 2001:db8::1 { }
    sorry_server 10.0.0.9`,
		family: Inet,
		reals:  []server{{"2001:db8::1", TUN}},
		sorry:  &server{"10.0.0.9", TUN},
	}, {
		name: "a second sorry_server replaces the first whole",
		body: `lb_kind DR
    sorry_server 10.0.0.8
    sorry_server_inhibit
    sorry_server_lvs_method NAT
    sorry_server 10.0.0.9
    real_server 10.0.0.1 { }`,
		family: Inet,
		reals:  []server{{"10.0.0.1", DR}},
		sorry:  &server{"10.0.0.9", DR},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := loadString(t, "virtual_server fwmark 7 {\n    lb_algo rr\n    "+tc.body+"\n}\n")
			if ds.HasErrors() {
				t.Fatalf("errors:\n%s", dumpDiags(ds))
			}
			found := tc.warn == ""
			for _, d := range ds {
				if tc.warn != "" && strings.Contains(d.Msg, tc.warn) {
					found = true
				} else if strings.Contains(d.Msg, "family") {
					t.Errorf("unexpected: %s", d)
				}
			}
			if !found {
				t.Errorf("no warning %q in:\n%s", tc.warn, dumpDiags(ds))
			}
			vs := cfg.VirtualServers[0]
			if vs.Family != tc.family {
				t.Errorf("family %v, want %v", vs.Family, tc.family)
			}
			var reals []server
			for _, rs := range vs.RealServers {
				reals = append(reals, server{rs.Addr.String(), rs.Forwarding.Method})
			}
			if diff := cmp.Diff(tc.reals, reals); diff != "" {
				t.Errorf("real servers (-want +got):\n%s", diff)
			}
			var sorry *server
			if ss := vs.SorryServer; ss != nil {
				sorry = &server{ss.Addr.String(), ss.Forwarding.Method}
				if ss.Inhibit != tc.inhibit {
					t.Errorf("sorry server inhibit %v, want %v", ss.Inhibit, tc.inhibit)
				}
			}
			if diff := cmp.Diff(tc.sorry, sorry); diff != "" {
				t.Errorf("sorry server (-want +got):\n%s", diff)
			}
		})
	}
}
