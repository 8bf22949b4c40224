package translate

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"testing/fstest"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/runspec"
)

const lvsConf = `virtual_server_group G {
    10.1.1.10 80
}
virtual_server 10.1.1.1 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 {
        TCP_CHECK {
        }
    }
    real_server 10.0.0.3 8080 {
    }
}
virtual_server 10.1.1.2 80 {
    lb_algo rr
    protocol TCP
}
virtual_server group G {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.4 80 {
        TCP_CHECK {
        }
    }
}
`

// load loads conf, which must have no errors.
func load(t *testing.T, conf string) *config.Config {
	t.Helper()
	cfg, ds := config.Load(fstest.MapFS{"k.conf": {Data: []byte(conf)}}, "k.conf", config.Options{})
	if ds.HasErrors() {
		t.Fatalf("Load: %v", ds.Err())
	}
	return cfg
}

func loadLVS(t *testing.T, conf string) (*config.Config, runspec.DirectorSpec) {
	t.Helper()
	cfg := load(t, conf)
	spec, sds := DirectorFromConfig(cfg)
	if sds.HasErrors() {
		t.Fatalf("DirectorFromConfig: %v", sds.Err())
	}
	return cfg, spec
}

// The translation keeps the configuration's order, leaves out what
// keepalived ignores (a virtual server without real servers), and gives each
// checker its real server's identity.
func TestDirectorFromConfig(t *testing.T) {
	cfg, spec := loadLVS(t, lvsConf)
	srcs := DirectorSources(cfg)
	if len(srcs) != 2 || srcs[0].Addr != netip.MustParseAddr("10.1.1.1") || srcs[1].Group != "G" {
		t.Fatalf("sources: %+v", srcs)
	}
	var ids []string
	for _, vs := range spec.VirtualServers {
		ids = append(ids, vs.ID())
	}
	if want := []string{"[10.1.1.1]:tcp:80", "[G]:0"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("virtual servers %v, want %v", ids, want)
	}
	if got := spec.VirtualServers[0].Reals[0].AddrPort(); got != netip.MustParseAddrPort("10.0.0.2:80") {
		t.Errorf("NAT real server without a port: %v, want the virtual port", got)
	}
	var checks []lb.RealID
	for _, rc := range spec.Checks {
		checks = append(checks, rc.ID)
	}
	want := []lb.RealID{
		{VS: "[10.1.1.1]:tcp:80", Addr: netip.MustParseAddrPort("10.0.0.2:80")},
		{VS: "[10.1.1.1]:tcp:80", Addr: netip.MustParseAddrPort("10.0.0.3:8080")},
		{VS: "[G]:0", Addr: netip.MustParseAddrPort("10.0.0.4:80")},
	}
	if !reflect.DeepEqual(checks, want) {
		t.Errorf("checks %v, want %v", checks, want)
	}
}

// Lines added above the virtual servers move their positions but not their
// specs: a reload sees no change.
func TestDirectorFromConfigPositionFree(t *testing.T) {
	_, a := loadLVS(t, lvsConf)
	_, b := loadLVS(t, "global_defs {\n    router_id r1\n}\n\n"+lvsConf)
	if !reflect.DeepEqual(a.VirtualServers, b.VirtualServers) || !reflect.DeepEqual(a.CheckerKeys(), b.CheckerKeys()) {
		t.Errorf("specs differ after lines moved:\n%+v\n%+v", a.VirtualServers, b.VirtualServers)
	}
}

// sorry_server_lvs_method reaches the sorry server's spec; without it the
// sorry server takes the virtual server's lb_kind (keepalived 2.2.7
// check_parser.c vs_end_handler).
func TestDirectorFromConfigSorryMethod(t *testing.T) {
	_, spec := loadLVS(t, `virtual_server 10.1.1.1 80 {
    lb_kind NAT
    protocol TCP
    sorry_server 10.0.0.9 80
    sorry_server_lvs_method DR
    real_server 10.0.0.2 80 {
    }
}
virtual_server 10.1.1.2 80 {
    lb_kind DR
    protocol TCP
    sorry_server 10.0.0.9 80
    real_server 10.0.0.2 80 {
    }
}
`)
	for i, want := range []lb.Method{lb.DR, lb.DR} {
		got := spec.VirtualServers[i].Sorry
		if got == nil || got.Method != want {
			t.Errorf("%s: sorry server %+v, want method %v", spec.VirtualServers[i].ID(), got, want)
		}
	}
	if m := spec.VirtualServers[0].Reals[0].Method; m != lb.NAT {
		t.Errorf("real server method %v, want NAT (lb_kind)", m)
	}

	// With its real server down, the first virtual server's pool is the
	// sorry server, installed as a DR destination beside a NAT service.
	vs := spec.VirtualServers[:1]
	down := lb.Health{{VS: vs[0].ID(), Addr: vs[0].Reals[0].AddrPort()}: {State: lb.Down}}
	res := lb.NewPolicy(lb.PolicyOptions{}).Desired(vs, down, func(netip.Addr) bool { return true })
	var dests []string
	for k, d := range res.State.Dests {
		dests = append(dests, fmt.Sprintf("%s %v weight %d", k.Addr, d.Method, d.Weight))
	}
	if want := []string{"10.0.0.9:80 DR weight 1"}; !reflect.DeepEqual(dests, want) {
		t.Errorf("destinations %v, want %v", dests, want)
	}
}

// Each real server reaches lb with its method resolved by the configuration
// (its own lvs_method, else the virtual server's lb_kind, else NAT) and the
// tunnel options that go with it.
func TestDirectorFromConfigMethods(t *testing.T) {
	_, spec := loadLVS(t, `virtual_server 10.1.1.1 80 {
    lb_kind TUN type gue port 6080 csum
    protocol TCP
    real_server 10.0.0.2 80 {
    }
    real_server 10.0.0.3 80 {
        lvs_method DR
    }
}
virtual_server 10.1.1.2 80 {
    protocol TCP
    real_server 10.0.0.4 8080 {
    }
}
`)
	type got struct {
		Method lb.Method
		Tunnel lb.Tunnel
	}
	var gots []got
	for _, vs := range spec.VirtualServers {
		gots = append(gots, got{vs.Method, lb.Tunnel{}})
		for _, r := range vs.Reals {
			gots = append(gots, got{r.Method, r.Tunnel})
		}
	}
	gue := lb.Tunnel{Type: lb.TunnelGUE, Port: 6080, Csum: 1}
	want := []got{{lb.TUN, lb.Tunnel{}}, {lb.TUN, gue}, {lb.DR, lb.Tunnel{}}, {lb.NAT, lb.Tunnel{}}, {lb.NAT, lb.Tunnel{}}}
	if !reflect.DeepEqual(gots, want) {
		t.Errorf("methods %+v, want %+v", gots, want)
	}
}

// Other runtimes name a virtual server as the director does.
func TestVirtualServerID(t *testing.T) {
	_, spec := loadLVS(t, lvsConf)
	vs := spec.VirtualServers[0]
	if got := VirtualServerID(vs.Addr, vs.Port, config.TCP); got != vs.ID() || got != "[10.1.1.1]:tcp:80" {
		t.Errorf("VirtualServerID = %q, director's ID %q", got, vs.ID())
	}
}

// Each virtual server reaches lb with its family resolved by the
// configuration: its address's or its group's, else its real servers'.
func TestDirectorFromConfigFamily(t *testing.T) {
	_, spec := loadLVS(t, lvsConf+`virtual_server fd00::1 80 {
    protocol TCP
    real_server fd00::2 80 {
    }
}
virtual_server fwmark 5 {
    real_server fd00::2 80 {
    }
}
`)
	var got []string
	for _, vs := range spec.VirtualServers {
		got = append(got, vs.ID()+" "+vs.Family.String())
	}
	want := []string{"[10.1.1.1]:tcp:80 inet", "[G]:0 inet", "[fd00::1]:tcp:80 inet6", "FWM 5 inet6"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("families %v, want %v", got, want)
	}
}

// A real server starts down only when one of its checkers starts down
// (keepalived 2.2.7 check_data.c validate_check_config, ipwrapper.c
// init_service_rs): `alpha` on the virtual server is only its checkers'
// default, which `alpha no` overrides and FILE_CHECK ignores, and a real
// server without checkers is always up.
func TestDirectorFromConfigAlphaFromCheckers(t *testing.T) {
	_, spec := loadLVS(t, `track_file tf {
    file /run/vigil-test-alpha
}
virtual_server 10.0.0.1 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    alpha
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
    }
    real_server 10.0.0.3 80 {
    }
    real_server 10.0.0.4 80 {
        TCP_CHECK {
            alpha no
        }
    }
    real_server 10.0.0.5 80 {
        FILE_CHECK {
            track_file tf
        }
    }
    real_server 10.0.0.6 80 {
        alpha no
        TCP_CHECK {
        }
        MISC_CHECK {
            misc_path /bin/true
            alpha
        }
    }
}
`)
	got := map[string]bool{}
	for _, r := range spec.VirtualServers[0].Reals {
		got[r.Addr.String()] = r.Alpha
	}
	want := map[string]bool{"10.0.0.2": true, "10.0.0.3": false, "10.0.0.4": false, "10.0.0.5": false, "10.0.0.6": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("real servers starting down %v, want %v", got, want)
	}
}
