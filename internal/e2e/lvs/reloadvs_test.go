package lvs

import (
	"fmt"
	"strings"
	"testing"
)

// TestReloadAddsFirstVirtualServer: a director that ran VRRP alone gets
// its first virtual server from a reload: the service is in nftables,
// the client reaches both real servers through the VIP, and the VRRP
// instance stays MASTER (the VIP never moved).
func TestReloadAddsFirstVirtualServer(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, "rlvs", topoOpts{})
	d := tp.dirs[0]
	d.writeConfig(vrrpSingle())
	d.start()
	waitServing(t, d)
	if _, ok, _ := nftDests(d.host, 80); ok {
		t.Fatal("a service in nftables before any virtual server")
	}
	check := tcpCheck("1", 1, "1")
	d.writeConfig(vrrpSingle() + vs{port: 80, delayLoop: "1", reals: []rs{{addr: web1, checker: check}, {addr: web2, checker: check}}}.String())
	out, err := d.vigil("reload", "--api-socket", d.sock())
	if err != nil || strings.Contains(out, "restart") || !strings.Contains(out, "virtual_server") {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	waitServing(t, d, 80)
	waitChecked(t, d, patience)
	waitFor(t, patience, "both real servers answer through the VIP", func() (bool, string) {
		per := tp.client.spread(80, 10)
		return per[web1] > 0 && per[web2] > 0, fmt.Sprint(per)
	})
	s := d.mustStatus()
	if len(s.VirtualServers) != 1 || s.Reconciler == nil {
		t.Errorf("status after the reload: %d virtual servers, reconciler %+v", len(s.VirtualServers), s.Reconciler)
	}
	for _, in := range s.Instances {
		if in.State != "MASTER" {
			t.Errorf("%s is %s after the reload", in.Name, in.State)
		}
	}
	if o := d.output(); strings.Contains(o, "from=MASTER") {
		t.Errorf("the instance left MASTER:\n%s", o)
	}
}
