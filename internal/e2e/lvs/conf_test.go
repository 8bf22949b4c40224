package lvs

import (
	"fmt"
	"strings"
)

// vrrpSingle is the tutorial's VRRP instance for a lone director: it holds
// the VIP on the front LAN.
func vrrpSingle() string {
	return `global_defs {
	router_id LVS_1
}
vrrp_instance VI_1 {
	state MASTER
	interface eth0
	virtual_router_id 51
	priority 100
	advert_int 1
	authentication {
		auth_type PASS
		auth_pass 1111
	}
	virtual_ipaddress {
		` + vip + `
	}
}
`
}

// vrrpPair is the classic LVS-NAT director pair: the front VIP and the web
// servers' gateway address on the back LAN move together (a sync group).
// The tutorial's MASTER has priority 100, its BACKUP a lower one.
func vrrpPair(routerID, state string, priority int) string {
	inst := func(name, ifname string, vrid int, addr string) string {
		return fmt.Sprintf(`vrrp_instance %s {
	state %s
	interface %s
	virtual_router_id %d
	priority %d
	advert_int 1
	authentication {
		auth_type PASS
		auth_pass 1111
	}
	virtual_ipaddress {
		%s
	}
}
`, name, state, ifname, vrid, priority, addr)
	}
	return `global_defs {
	router_id ` + routerID + `
}
vrrp_sync_group VG_1 {
	group {
		VI_1
		VI_2
	}
}
` + inst("VI_1", "eth0", 51, vip) + inst("VI_2", "eth1", 52, backVIP)
}

// vs renders a virtual_server block on the VIP.
type vs struct {
	port      int
	delayLoop string
	algo      string // default rr
	extra     []string
	reals     []rs
}

// rs renders a real_server block (port 80).
type rs struct {
	addr    string
	weight  int
	extra   []string
	checker string // the checker block, e.g. tcpCheck(...)
}

func (v vs) String() string {
	var b strings.Builder
	algo := v.algo
	if algo == "" {
		algo = "rr"
	}
	fmt.Fprintf(&b, "virtual_server %s %d {\n\tdelay_loop %s\n\tlb_algo %s\n\tlb_kind NAT\n\tprotocol TCP\n", vip, v.port, v.delayLoop, algo)
	for _, e := range v.extra {
		fmt.Fprintf(&b, "\t%s\n", e)
	}
	for _, r := range v.reals {
		w := r.weight
		if w == 0 {
			w = 1
		}
		fmt.Fprintf(&b, "\treal_server %s 80 {\n\t\tweight %d\n", r.addr, w)
		for _, e := range r.extra {
			fmt.Fprintf(&b, "\t\t%s\n", e)
		}
		b.WriteString(indent(r.checker, "\t\t"))
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func indent(s, pre string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if l != "" {
			b.WriteString(pre + l)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// tcpCheck is the tutorial's TCP_CHECK.
func tcpCheck(connectTimeout string, retry int, delayBeforeRetry string) string {
	return fmt.Sprintf("TCP_CHECK {\n\tconnect_timeout %s\n\tretry %d\n\tdelay_before_retry %s\n\tconnect_port 80\n}\n", connectTimeout, retry, delayBeforeRetry)
}
