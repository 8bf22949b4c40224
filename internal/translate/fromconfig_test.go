package translate

import (
	"reflect"
	"testing"

	"github.com/vigil-ha/vigil/internal/runspec"
)

const vrrpConf = `vrrp_script chk {
    script "/bin/true"
    interval 2
    weight -20
}
track_file tf {
    file /run/vigil-test-tf
}
vrrp_sync_group G {
    group {
        VI_1
    }
    notify_master "/bin/true master"
    sync_group_tracking_weight
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    notify "/bin/true notify"
    track_script {
        chk
    }
    track_file {
        tf weight 5
    }
    virtual_ipaddress {
        192.168.1.100/24 brd + dev eth0 scope global label eth0:vip
        192.168.1.101
    }
    virtual_ipaddress_excluded {
        2001:db8::100/64
    }
    virtual_routes {
        10.10.0.0/16 via 192.168.1.1 dev eth0 metric 5 table 100
        blackhole 10.20.0.0/16
    }
    virtual_rules {
        from 192.168.1.100 table 100 priority 50
    }
}
`

func loadVRRP(t *testing.T, conf string) runspec.Spec {
	t.Helper()
	spec, sds := FromConfig(load(t, conf))
	if sds.HasErrors() {
		t.Fatalf("FromConfig: %v", sds.Err())
	}
	return spec
}

// Lines added above the configuration move every position but change no
// spec: a reload sees each instance, script and sync group unchanged.
func TestFromConfigPositionFree(t *testing.T) {
	a := loadVRRP(t, vrrpConf)
	b := loadVRRP(t, "global_defs {\n    router_id r1\n}\n\n"+vrrpConf)
	b.RouterID = a.RouterID
	if len(a.Instances) != 1 || !a.Instances[0].Equal(b.Instances[0]) {
		t.Errorf("instances differ after lines moved:\n%+v\n%+v", a.Instances, b.Instances)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("specs differ after lines moved:\n%+v\n%+v", a, b)
	}
	in := a.Instances[0]
	if len(in.VIPs) != 2 || len(in.ExcludedVIPs) != 1 || len(in.Routes) != 2 || len(in.Rules) != 1 {
		t.Errorf("addresses, routes, rules: %+v", in)
	}
	var kinds []string
	for _, tr := range in.Trackers {
		kinds = append(kinds, tr.Name)
	}
	if !reflect.DeepEqual(kinds, []string{"chk", "tf"}) {
		t.Errorf("trackers %v, want [chk tf]", kinds)
	}
}
