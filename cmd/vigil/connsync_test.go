package main

import (
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/vigil-ha/vigil/internal/config"
)

func TestConnSyncChanged(t *testing.T) {
	a := &config.ConntrackSync{Interface: "eth2", Port: 3780}
	moved := *a
	moved.Pos.Line = 40
	other := *a
	other.Port = 3790
	for _, tc := range []struct {
		name    string
		a, b    *config.ConntrackSync
		changed bool
	}{
		{"none", nil, nil, false},
		{"added", nil, a, true},
		{"removed", a, nil, true},
		{"moved lines only", a, &moved, false},
		{"port", a, &other, true},
	} {
		if got := connSyncChanged(tc.a, tc.b); got != tc.changed {
			t.Errorf("%s: changed %v, want %v", tc.name, got, tc.changed)
		}
	}
}

// The virtual_servers filter replicates the flows of the real (and sorry)
// servers over the virtual servers' protocols; conntrackd's files live
// beside the API socket.
func TestConnSyncSpec(t *testing.T) {
	src := `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    priority 100
    virtual_ipaddress { 192.168.118.110 }
}
virtual_server 192.168.118.110 80 {
    lb_kind NAT
    protocol TCP
    sorry_server 192.168.40.200 80
    real_server 192.168.40.131 80 {
    }
    real_server 192.168.40.129 80 {
    }
}
virtual_server 192.168.118.110 53 {
    lb_kind NAT
    protocol UDP
    real_server 192.168.40.131 53 {
    }
}
conntrack_sync {
    interface eth2
    unicast_peer 10.9.0.2
    source 10.9.0.1
    vrrp_instance VI_1
}
`
	cfg, ds := config.Load(fstest.MapFS{"k.conf": {Data: []byte(src)}}, "k.conf", config.Options{})
	if ds.HasErrors() {
		t.Fatalf("%v", ds)
	}
	s, err := connSyncSpec(cfg, "/run/vigil-test/vigil.sock")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintln(s.Protocols, s.Accept, s.Dir, s.Follow), "[TCP UDP] [192.168.40.131 192.168.40.129 192.168.40.200] /run/vigil-test/conntrackd VI_1\n"; got != want {
		t.Errorf("spec: %s, want %s", got, want)
	}
	cfg.ConntrackSync.Filter = "all"
	if s, _ := connSyncSpec(cfg, "/run/vigil-test/vigil.sock"); len(s.Accept) != 0 || len(s.Protocols) != 0 {
		t.Errorf("filter all: accept %v, protocols %v", s.Accept, s.Protocols)
	}
}
