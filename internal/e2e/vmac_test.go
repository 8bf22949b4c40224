package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
)

// vmacFamily is one address family of the VMAC tests.
type vmacFamily struct {
	name string
	v6   bool
	vrid int
	vip  netip.Addr
	// dev and mac are keepalived's defaults: vrrp.VRID, 00:00:5e:00:0{1,2}:VRID.
	dev, mac string
}

var vmacFamilies = []vmacFamily{
	{"ipv4", false, 55, e2e.VIP4, "vrrp.55", "00:00:5e:00:01:37"},
	{"ipv6", true, 56, e2e.VIP6, "vrrp.56", "00:00:5e:00:02:38"},
}

// instance is a VRRPv3 instance at advert_int 0.1 with use_vmac and the
// family's VIP on the instance's interface (so on the VMAC).
func (f vmacFamily) instance(state string, prio int, extra ...string) e2e.Instance {
	in := e2e.Instance{Name: "VI_1", State: state, Interface: "eth0", VRID: f.vrid, Priority: prio,
		AdvertInt: "0.1", Version: 3, Extra: append([]string{"use_vmac"}, extra...)}
	if f.v6 {
		in.VIPs = []string{"fd00::100/64"}
	} else {
		in.VIPs = []string{"192.168.1.100/24"}
	}
	return in
}

// holdsOn reports whether h has addr on dev (false when dev is missing).
func (e *env) holdsOn(h *lab.Host, dev string, addr netip.Addr) bool {
	ok, _ := e.addrsOf(h).Has(dev, addr)
	return ok
}

func (e *env) waitHoldsOn(h *lab.Host, dev string, addr netip.Addr, want bool, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for e.holdsOn(h, dev, addr) != want {
		if time.Now().After(deadline) {
			out, _ := h.Run("ip", "addr")
			e.t.Fatalf("%s: holds %v on %s = %v after %v, want %v\n%s", h.Name(), addr, dev, !want, timeout, want, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// linkDetail is what `ip -d -j link show` says of a macvlan.
type linkDetail struct {
	Name     string `json:"ifname"`
	Address  string `json:"address"`
	Link     string `json:"link"`
	Flags    []string
	LinkInfo struct {
		Kind string `json:"info_kind"`
		Data struct {
			Mode string `json:"mode"`
		} `json:"info_data"`
	} `json:"linkinfo"`
	Alias string `json:"ifalias"`
}

func showLink(h *lab.Host, dev string) (linkDetail, error) {
	out, err := h.Run("ip", "-d", "-j", "link", "show", "dev", dev)
	if err != nil {
		return linkDetail{}, fmt.Errorf("%s: %v: %s", dev, err, out)
	}
	var ls []linkDetail
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		return linkDetail{}, fmt.Errorf("%s: %q: %v", dev, out, err)
	}
	return ls[0], nil
}

// checkVMACLink checks that h has dev as keepalived makes it: a private
// macvlan on eth0 with the virtual MAC, up.
func (e *env) checkVMACLink(h *lab.Host, f vmacFamily) linkDetail {
	e.t.Helper()
	l, err := showLink(h, f.dev)
	if err != nil {
		e.t.Fatalf("%s: %v", h.Name(), err)
	}
	if l.LinkInfo.Kind != "macvlan" || l.LinkInfo.Data.Mode != "private" || l.Address != f.mac || l.Link != "eth0" {
		e.t.Errorf("%s: %s is %s mode %s on %s with %s, want a private macvlan on eth0 with %s",
			h.Name(), f.dev, l.LinkInfo.Kind, l.LinkInfo.Data.Mode, l.Link, l.Address, f.mac)
	}
	return l
}

// neighMAC returns the client's neighbour entry for addr: its MAC and state
// ("" when there is none).
func neighMAC(h *lab.Host, addr netip.Addr) (mac, state string) {
	out, err := h.Run("ip", "-j", "neigh", "show", "to", addr.String(), "dev", "eth0")
	if err != nil {
		return "", ""
	}
	var ns []struct {
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if json.Unmarshal([]byte(out), &ns) != nil || len(ns) == 0 {
		return "", ""
	}
	return ns[0].LLAddr, strings.Join(ns[0].State, ",")
}

// neighWatch samples the client's neighbour entry for addr every 10 ms and
// keeps every MAC it showed.
type neighWatch struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	macs map[string]int
}

func watchNeigh(h *lab.Host, addr netip.Addr) *neighWatch {
	w := &neighWatch{stop: make(chan struct{}), done: make(chan struct{}), macs: map[string]int{}}
	go func() {
		defer close(w.done)
		for {
			if mac, _ := neighMAC(h, addr); mac != "" {
				w.mu.Lock()
				w.macs[mac]++
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *neighWatch) Stop() map[string]int {
	close(w.stop)
	<-w.done
	return w.macs
}

// TestVMACInterop runs vigil and keepalived 2.2.7 in one VRRP group with
// use_vmac, IPv4 and IPv6, each as master with the other as backup:
//
//   - both nodes have keepalived's VMAC (vrrp.VRID, private macvlan on eth0,
//     00:00:5e:00:0{1,2}:VRID) and only the master holds the VIP on it;
//   - the client reaches the VIP and its neighbour entry is the virtual MAC;
//     sampled every 10 ms across a kill -9 failover, it never shows another
//     MAC;
//   - a client that ignores gratuitous ARP (arp_accept 0 and a permanent
//     neighbour entry) still reaches the VIP after the master returns and
//     preempts.
func TestVMACInterop(t *testing.T) {
	t.Parallel()
	for _, f := range vmacFamilies {
		for _, masterKind := range []e2e.Kind{e2e.Keepalived, e2e.Vigil} {
			backupKind := e2e.Vigil
			if masterKind == e2e.Vigil {
				backupKind = e2e.Keepalived
			}
			t.Run(fmt.Sprintf("%s/%s-master", f.name, masterKind), func(t *testing.T) {
				t.Parallel()
				vmacInterop(t, f, masterKind, backupKind)
			})
		}
	}
}

func vmacInterop(t *testing.T, f vmacFamily, masterKind, backupKind e2e.Kind) {
	e := newEnv(t, "vmac", 2)
	e.servers()
	r1, r2, client := e.node(0), e.node(1), e.net.Client
	// keepalived 2.2.7 leaves arp_announce at 0: the master's ARP requests
	// for the client, sent from eth0 with the VIP as sender address, teach
	// the client eth0's MAC for the VIP. vigil sets arp_announce 2 on a
	// VMAC's parent itself; a keepalived node needs it from its
	// administrator (without it this test fails for keepalived as master).
	for i, k := range []e2e.Kind{masterKind, backupKind} {
		if k == e2e.Keepalived {
			if out, err := e.node(i).Run("sysctl", "-qw", "net.ipv4.conf.eth0.arp_announce=2"); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
	}
	master := e.start(masterKind, 0, conf(f.instance("MASTER", 100)))
	backup := e.start(backupKind, 1, conf(f.instance("BACKUP", 99)))
	e.waitState(master, "VI_1", "MASTER", 15*time.Second)
	e.waitState(backup, "VI_1", "BACKUP", 10*time.Second)
	e.waitHoldsOn(r1, f.dev, f.vip, true, 5*time.Second)
	e.checkVMACLink(r1, f)
	e.checkVMACLink(r2, f)
	if e.holdsOn(r2, f.dev, f.vip) || e.holdsOn(r2, "eth0", f.vip) || e.holdsOn(r1, "eth0", f.vip) {
		t.Fatalf("the VIP is on the backup or on eth0")
	}
	e.waitAnswer(f.vip, "r1", 10*time.Second)
	if mac, _ := neighMAC(client, f.vip); mac != f.mac {
		t.Fatalf("the client resolves %v to %q, want the virtual MAC %s", f.vip, mac, f.mac)
	}

	t.Log("kill -9 of the master, the client's neighbour entry watched")
	w := watchNeigh(client, f.vip)
	master.Kill()
	e.waitState(backup, "VI_1", "MASTER", 15*time.Second)
	e.waitHoldsOn(r2, f.dev, f.vip, true, 5*time.Second)
	e.waitAnswer(f.vip, "r2", 10*time.Second)
	macs := w.Stop()
	if len(macs) != 1 || macs[f.mac] == 0 {
		t.Errorf("the client's entry for %v showed %v across the failover, want only %s", f.vip, macs, f.mac)
	}

	t.Log("a client that ignores gratuitous ARP: permanent entry, arp_accept 0")
	if _, err := client.Run("sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=0"); err != nil {
		t.Fatal(err)
	}
	if out, err := client.Run("ip", "neigh", "replace", f.vip.String(), "lladdr", f.mac, "dev", "eth0", "nud", "permanent"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	e.restart(master)
	e.waitState(master, "VI_1", "MASTER", 15*time.Second)
	e.waitState(backup, "VI_1", "BACKUP", 10*time.Second)
	e.waitHoldsOn(r1, f.dev, f.vip, true, 5*time.Second)
	e.waitHoldsOn(r2, f.dev, f.vip, false, 5*time.Second)
	e.waitAnswer(f.vip, "r1", 10*time.Second)
	if mac, state := neighMAC(client, f.vip); mac != f.mac || state != "PERMANENT" {
		t.Errorf("the client's entry is %s %s, want %s PERMANENT", mac, state, f.mac)
	}
}
