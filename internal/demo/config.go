package demo

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/vrrp"
)

// The tutorial's addresses (seed 000: "master 192.168.1.105, backup
// 192.168.1.106, vip 192.168.1.100"); the client is the demo's own.
const (
	VIP        = "192.168.1.100"
	ClientAddr = "192.168.1.10"
	// VIPLine is the tutorial's virtual_ipaddress line, verbatim.
	VIPLine = "192.168.1.100/24 dev eth0 label eth0:1"
	// Instance is the tutorial's vrrp_instance name.
	Instance = "VI_1"
	// VRID is the tutorial's virtual_router_id.
	VRID = 55
)

// Node is one of the tutorial's two keepalived hosts.
type Node struct {
	Name     string // lab host name: node1, node2
	Addr     string // eth0 address without prefix length
	RouterID string // global_defs router_id
	State    string // MASTER or BACKUP
	Priority int
}

// Nodes returns the tutorial's MASTER and BACKUP: "router_id wyl01, state
// MASTER, priority 100" becomes "router_id wyl02, state BACKUP, priority 99"
// on the second node.
func Nodes() [2]Node {
	return [2]Node{
		{Name: "node1", Addr: "192.168.1.105", RouterID: "wyl01", State: "MASTER", Priority: 100},
		{Name: "node2", Addr: "192.168.1.106", RouterID: "wyl02", State: "BACKUP", Priority: 99},
	}
}

// Timing is the VRRP flavour the demo runs: the tutorial's VRRPv2 with
// advert_int 1, or VRRPv3 with advert_int 0.1 for --fast.
type Timing struct {
	Version        int
	AdvertInterval time.Duration
}

// Timings for the two modes.
var (
	Tutorial = Timing{Version: 2, AdvertInterval: time.Second}
	Fast     = Timing{Version: 3, AdvertInterval: 100 * time.Millisecond}
)

// MasterDownInterval is how long a backup of the given priority waits
// without hearing the master before it takes over: RFC 3768 §6.1 /
// RFC 5798 §6.1, 3 × Advertisement_Interval + Skew_Time.
func (t Timing) MasterDownInterval(priority int) time.Duration {
	return vrrp.MasterDownInterval(uint8(t.Version), uint8(priority), t.AdvertInterval)
}

// SkewTime is the priority-dependent part of MasterDownInterval.
func (t Timing) SkewTime(priority int) time.Duration {
	return vrrp.SkewTime(uint8(t.Version), uint8(priority), t.AdvertInterval)
}

// Formula spells out MasterDownInterval for a newcomer, e.g.
// "3 × 1s + (256−99)/256 s = 3.613s".
func (t Timing) Formula(priority int) string {
	mdi := t.MasterDownInterval(priority).Round(time.Millisecond)
	if t.Version == 3 {
		return fmt.Sprintf("3 × %s + (256−%d) × %s/256 = %s", t.AdvertInterval, priority, t.AdvertInterval, mdi)
	}
	return fmt.Sprintf("3 × %s + (256−%d)/256 s = %s", t.AdvertInterval, priority, mdi)
}

// advertInt formats advert_int as keepalived.conf writes it: seconds, with a
// fraction for VRRPv3.
func (t Timing) advertInt() string {
	s := fmt.Sprintf("%.2f", t.AdvertInterval.Seconds())
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// Config returns the node's keepalived.conf: the tutorial's file with its
// router_id, state and priority. With VRRPv3 the instance says `version 3`,
// advert_int is a fraction and the authentication block is left out (RFC 5798
// §9 removed authentication, and vigil refuses the block with version 3).
func (n Node) Config(t Timing) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("! Configuration File for keepalived")
	w("global_defs {")
	w("   notification_email {")
	w("     1335234172@qq.com")
	w("   }")
	w("   notification_email_from Alexandre.Cassen@firewall.loc")
	w("   smtp_server 127.0.0.1")
	w("   smtp_connect_timeout 30")
	w("   router_id %s", n.RouterID)
	w("}")
	w("")
	w("vrrp_instance %s {", Instance)
	w("    state %s", n.State)
	w("    interface eth0")
	w("    virtual_router_id %d", VRID)
	if t.Version == 3 {
		w("    version 3")
	}
	w("    priority %d", n.Priority)
	w("    advert_int %s", t.advertInt())
	if t.Version != 3 {
		w("    authentication {")
		w("        auth_type PASS")
		w("        auth_pass 1111")
		w("    }")
	}
	w("    virtual_ipaddress {")
	w("        %s", VIPLine)
	w("    }")
	w("}")
	return b.String()
}
