package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

const csInstances = `vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 1
	priority 100
	virtual_ipaddress { 10.0.0.1 }
}
vrrp_instance VI_2 {
	interface eth1
	virtual_router_id 2
	priority 100
	virtual_ipaddress { 10.1.0.1 }
}
vrrp_sync_group VG_1 {
	group { VI_1 VI_2 }
}
`

func TestConntrackSync(t *testing.T) {
	cfg := mustLoad(t, csInstances+`conntrack_sync {
	interface eth2
	unicast_peer 10.9.0.2
	source 10.9.0.1
	port 3790
	vrrp_sync_group VG_1
	timeout 2.5
	filter all
}
`)
	cs := cfg.ConntrackSync
	if cs == nil {
		t.Fatal("no conntrack_sync in the model")
	}
	if cs.Interface != "eth2" || cs.Peer != netip.MustParseAddr("10.9.0.2") || cs.Source != netip.MustParseAddr("10.9.0.1") ||
		cs.Port != 3790 || cs.SyncGroup != "VG_1" || cs.Timeout != 2500*time.Millisecond || cs.Filter != "all" ||
		cs.Conntrackd != DefaultConntrackd || cs.Pos.Line != 16 {
		t.Errorf("conntrack_sync = %+v", *cs)
	}
}

func TestConntrackSyncErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"no interface", "unicast_peer 10.9.0.2\nvrrp_instance VI_1", "k.conf:16:1: error: conntrack_sync: no interface"},
		{"hex name", "interface d0\nunicast_peer 10.9.0.2\nvrrp_instance VI_1", `interface "d0": conntrackd cannot read a name made of hexadecimal digits only`},
		{"no peer", "interface eth2\nvrrp_instance VI_1", "no unicast_peer and no mcast_group"},
		{"both transports", "interface eth2\nunicast_peer 10.9.0.2\nmcast_group 225.0.0.50\nvrrp_instance VI_1", "both given; conntrackd uses one transport"},
		{"not multicast", "interface eth2\nmcast_group 10.0.0.5\nvrrp_instance VI_1", "k.conf:18:13: error: mcast_group 10.0.0.5 is not a multicast address"},
		{"families", "interface eth2\nunicast_peer fd00::2\nsource 10.9.0.1\nvrrp_instance VI_1", "of different families"},
		{"unknown instance", "interface eth2\nunicast_peer 10.9.0.2\nvrrp_instance VI_9", "no vrrp_instance VI_9"},
		{"unknown group", "interface eth2\nunicast_peer 10.9.0.2\nvrrp_sync_group VG_9", "no vrrp_sync_group VG_9"},
		{"nothing followed", "interface eth2\nunicast_peer 10.9.0.2", "name the vrrp_instance or vrrp_sync_group"},
		{"bad filter", "interface eth2\nunicast_peer 10.9.0.2\nvrrp_instance VI_1\nfilter some", `filter "some": want one of virtual_servers, all`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ds := loadString(t, csInstances+"conntrack_sync {\n"+tc.body+"\n}\n")
			got := dumpDiags(ds)
			if !strings.Contains(got, tc.want) {
				t.Errorf("diagnostics:\n%s\nwant %q", got, tc.want)
			}
		})
	}
	_, ds := loadString(t, csInstances+"conntrack_sync {\ninterface eth2\nunicast_peer 10.9.0.2\nvrrp_instance VI_1\n}\nconntrack_sync {\n}\n")
	if got := dumpDiags(ds); !strings.Contains(got, "k.conf:21:1: error: conntrack_sync: a second block; the first is at line 16") {
		t.Errorf("two blocks:\n%s", got)
	}
}
