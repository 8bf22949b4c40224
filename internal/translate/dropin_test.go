package translate

import (
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vigil-ha/vigil/internal/config"
)

// keepalived 2.2.7 disables every script that would run as a script_user
// the host lacks, and runs on: the specs leave those scripts out (with
// warnings, no errors), and the instance tracks nothing it cannot run.
func TestScriptUserMissingDisablesScripts(t *testing.T) {
	const conf = `global_defs {
    script_user vg-no-such-user-21
}
vrrp_script chk {
    script "/bin/true"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 55
    virtual_ipaddress {
        192.168.1.100/24
    }
    track_script {
        chk
    }
    notify_master "/bin/true master"
}
virtual_server 192.168.1.100 80 {
    protocol TCP
    lb_algo rr
    real_server 192.168.1.11 80 {
        MISC_CHECK {
            misc_path "/bin/true"
        }
        TCP_CHECK {
        }
    }
}
`
	cfg, ds := config.Load(fstest.MapFS{"k.conf": {Data: []byte(conf)}}, "k.conf", config.Options{})
	if ds.HasErrors() {
		t.Fatalf("Load: %v", ds.Err())
	}
	spec, vds := FromConfig(cfg)
	dspec, dds := DirectorFromConfig(cfg)
	all := append(vds, dds...)
	if all.HasErrors() {
		t.Fatalf("a missing script_user is not an error (keepalived runs): %v", all.Err())
	}
	var msgs []string
	for _, d := range all {
		msgs = append(msgs, d.String())
	}
	text := strings.Join(msgs, "\n")
	for _, want := range []string{
		"k.conf:5:12: warning: vrrp_script chk: script: script_user: ",
		"k.conf:16:19: warning: notify_master of vrrp_instance VI_1: ",
		"MISC_CHECK: ",
		"the checker's script is disabled and the checker left out, as keepalived does",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, text)
		}
	}
	if len(spec.Scripts) != 0 {
		t.Errorf("vrrp_script chk kept: %+v", spec.Scripts)
	}
	if len(spec.Instances) != 1 {
		t.Fatalf("instances: %d", len(spec.Instances))
	}
	if in := spec.Instances[0]; len(in.Trackers) != 0 || in.Notify.Master != nil {
		t.Errorf("VI_1 still tracks %+v / notifies %v", in.Trackers, in.Notify.Master)
	}
	if len(dspec.Checks) != 1 || len(dspec.Checks[0].Checkers) != 1 || !strings.HasPrefix(dspec.Checks[0].Checkers[0].Name, "TCP_CHECK") {
		t.Errorf("checks: %+v (want only the TCP_CHECK)", dspec.Checks)
	}
}

// What keepalived 2.2.7 resets reaches the runtime specs, not only a
// warning: state MASTER under vrrp_strict below priority 255 starts as
// BACKUP, an unknown scheduler runs as wlc, sh-port under mh sets no flag,
// a zero vrrp_garp_interval leaves the default.
func TestKeepalivedResetsReachTheSpecs(t *testing.T) {
	const conf = `global_defs {
    vrrp_strict
    vrrp_garp_interval 0
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.168.1.10/24
    }
}
virtual_server 192.168.1.10 80 {
    protocol TCP
    lb_algo loadbalance
    lb_kind NAT
    persistence_timeout 0
    real_server 192.168.1.11 80 {
    }
}
virtual_server 192.168.1.10 53 {
    protocol UDP
    lvs_sched mh
    sh-port
    lb_kind NAT
    real_server 192.168.1.11 53 {
    }
}
`
	cfg, ds := config.Load(fstest.MapFS{"k.conf": {Data: []byte(conf)}}, "k.conf", config.Options{})
	if ds.HasErrors() {
		t.Fatalf("Load: %v", ds.Err())
	}
	spec, vds := FromConfig(cfg)
	dspec, dds := DirectorFromConfig(cfg)
	if err := append(vds, dds...).Err(); err != nil {
		t.Fatal(err)
	}
	if len(spec.Instances) != 1 {
		t.Fatalf("instances: %d", len(spec.Instances))
	}
	in := spec.Instances[0].VRRP
	if in.InitialState != vrrp.StateBackup {
		t.Errorf("initial state %v, want BACKUP (strict mode, priority 100)", in.InitialState)
	}
	if in.AuthType != packet.AuthNone {
		t.Errorf("auth type %v, want none (strict mode drops authentication)", in.AuthType)
	}
	if spec.GARPInterval != 0 {
		t.Errorf("GARP interval %v, want 0", spec.GARPInterval)
	}
	if len(dspec.VirtualServers) != 2 {
		t.Fatalf("virtual servers: %d", len(dspec.VirtualServers))
	}
	for _, vs := range dspec.VirtualServers {
		switch vs.Port {
		case 80:
			if vs.Scheduler != "wlc" || vs.PersistenceTimeout != 0 {
				t.Errorf(":80 scheduler %q, persistence %d; want wlc, not persistent", vs.Scheduler, vs.PersistenceTimeout)
			}
		case 53:
			if vs.Scheduler != "mh" || vs.Flags&lb.FlagSched2 != 0 {
				t.Errorf(":53 scheduler %q flags %v; want mh without the port flag", vs.Scheduler, vs.Flags)
			}
		}
	}
}

// auth_type AH reaches the state machine with the auth_pass as its key,
// truncated and zero padded to 8 bytes as keepalived stores it.
func TestAHReachesTheSpec(t *testing.T) {
	const conf = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    authentication {
        auth_type AH
        auth_pass secret12345
    }
    virtual_ipaddress {
        192.168.1.10/24
    }
}
`
	cfg, ds := config.Load(fstest.MapFS{"k.conf": {Data: []byte(conf)}}, "k.conf", config.Options{})
	if ds.HasErrors() {
		t.Fatalf("Load: %v", ds.Err())
	}
	spec, vds := FromConfig(cfg)
	if err := vds.Err(); err != nil || len(spec.Instances) != 1 {
		t.Fatalf("FromConfig: %v, %d instances", err, len(spec.Instances))
	}
	in := spec.Instances[0].VRRP
	if in.AuthType != packet.AuthAH || in.AuthPass != [8]byte([]byte("secret12")) {
		t.Errorf("auth %v %q, want AH \"secret12\"", in.AuthType, in.AuthPass)
	}
}
