package ops

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// pairLab is the smaller lab of the metrics, status page and dump tests:
// two vigil nodes and a web server on one LAN.
//
//	n1 192.168.50.1  n2 192.168.50.2  web 192.168.50.11 (HTTP on :80, nothing on :81)
//	VI_1: VRID 61, VIP 192.168.50.100; virtual server 192.168.50.100:80 over web:80 and web:81
type pairLab struct {
	l      *lab.Lab
	n1, n2 *lab.Host
	web    *lab.Host
}

const (
	pairVS       = "[192.168.50.100]:tcp:80"
	pairRealUp   = "192.168.50.11:80"
	pairRealDown = "192.168.50.11:81"
)

func newPairLab(t *testing.T, name string) *pairLab {
	t.Helper()
	l := netnstest.New(t, name)
	x := &pairLab{l: l}
	x.n1 = netnstest.AddHost(t, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.50.1/24"}})
	x.n2 = netnstest.AddHost(t, l, "n2", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.50.2/24"}})
	x.web = netnstest.AddHost(t, l, "web", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.50.11/24"}})
	serveWeb(t, x.web, ":80", "web")
	netnstest.WaitLANReady(t, l, x.n1, x.n2, x.web)
	return x
}

// pairConf is a node's configuration in the pair lab: VRRPv3 with a short
// advert interval so that transitions take a second, and one virtual
// server whose second real server is down (nothing listens on :81).
func pairConf(routerID, state string, priority int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `! written by internal/e2e/ops
global_defs {
    router_id %s
    vrrp_version 3
}

vrrp_instance VI_1 {
    state %s
    interface eth0
    virtual_router_id 61
    priority %d
    advert_int 0.2
    virtual_ipaddress {
        192.168.50.100/24
    }
}

virtual_server 192.168.50.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.168.50.11 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 192.168.50.11 81 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
`, routerID, state, priority)
	return b.String()
}
