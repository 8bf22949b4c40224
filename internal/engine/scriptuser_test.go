package engine

import (
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
