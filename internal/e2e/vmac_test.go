package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
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
	// extra lines for the instance (vmac_xmit_base).
	extra []string
}

var vmacFamilies = []vmacFamily{
	{"ipv4", false, 55, e2e.VIP4, "vrrp.55", "00:00:5e:00:01:37", nil},
	{"ipv6", true, 56, e2e.VIP6, "vrrp.56", "00:00:5e:00:02:38", nil},
}

// instance is a VRRPv3 instance at advert_int 0.1 with use_vmac and the
// family's VIP on the instance's interface (so on the VMAC).
func (f vmacFamily) instance(state string, prio int, extra ...string) e2e.Instance {
	in := e2e.Instance{Name: "VI_1", State: state, Interface: "eth0", VRID: f.vrid, Priority: prio,
		AdvertInt: "0.1", Version: 3, Extra: append(append([]string{"use_vmac"}, f.extra...), extra...)}
	if f.v6 {
		in.VIPs = []string{"fd00::100/64"}
	} else {
		in.VIPs = []string{"192.168.1.100/24"}
	}
	return in
}

// holdsOn reports whether h has addr on dev (false when dev is missing). It
// looks the interface up every time (Addrs.Has caches the index, and a
// VMAC is made again with a new one).
func (e *env) holdsOn(h *lab.Host, dev string, addr netip.Addr) bool {
	_, ok, _ := e.addrsOf(h).Find(dev, addr)
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
//   - the same with vmac_xmit_base (adverts from eth0, VIPs on the VMAC);
//   - a client that ignores gratuitous ARP (arp_accept 0 and a permanent
//     neighbour entry) still reaches the VIP after the master returns and
//     preempts.
func TestVMACInterop(t *testing.T) {
	t.Parallel()
	fams := slices.Clone(vmacFamilies)
	for _, f := range vmacFamilies {
		f.name += "-xmit_base"
		f.extra = []string{"vmac_xmit_base"}
		fams = append(fams, f)
	}
	for _, f := range fams {
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
	e.waitHoldsOn(r1, f.dev, f.vip, true, 15*time.Second)
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
	xmitBase := len(f.extra) > 0
	if xmitBase {
		// A killed daemon leaves its VIP on its VMAC, which then answers the
		// client's ARP with the same MAC as the new master's: with adverts
		// leaving from eth0 nothing re-teaches the switch, and the switch
		// follows whoever answered last (keepalived and vigil alike). So
		// here the master's host dies with it: its link goes down.
		if out, err := r1.Run("ip", "link", "set", "eth0", "down"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	e.waitState(backup, "VI_1", "MASTER", 15*time.Second)
	e.waitHoldsOn(r2, f.dev, f.vip, true, 15*time.Second)
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
	if xmitBase {
		if out, err := r1.Run("ip", "link", "set", "eth0", "up"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if err := e2e.WaitReady(e.net.Lab, r1); err != nil {
			t.Fatal(err)
		}
	}
	e.restart(master)
	e.waitState(master, "VI_1", "MASTER", 15*time.Second)
	e.waitState(backup, "VI_1", "BACKUP", 10*time.Second)
	e.waitHoldsOn(r1, f.dev, f.vip, true, 15*time.Second)
	e.waitHoldsOn(r2, f.dev, f.vip, false, 15*time.Second)
	e.waitAnswer(f.vip, "r1", 10*time.Second)
	if mac, state := neighMAC(client, f.vip); mac != f.mac || state != "PERMANENT" {
		t.Errorf("the client's entry is %s %s, want %s PERMANENT", mac, state, f.mac)
	}
}

// sysctl reads one value in h.
func sysctl(t *testing.T, h *lab.Host, key string) string {
	t.Helper()
	out, err := h.Run("sysctl", "-n", key)
	if err != nil {
		t.Fatalf("%s: sysctl %s: %v: %s", h.Name(), key, err, out)
	}
	return strings.TrimSpace(out)
}

// TestVMACLifecycle follows vigil's VMAC through a node's life (IPv4):
//
//   - vmac_xmit_base: the master's adverts leave from eth0's MAC while its
//     gratuitous ARPs and the VIP's ARP replies carry the virtual MAC;
//   - a backup's VMAC sends nothing on the LAN (its IGMP join is dropped by
//     table inet vigil_vrrp), so no switch learns the virtual MAC on its port;
//   - the kernel parameters keepalived sets on the VMAC and its parent;
//   - the parent going down and up: FAULT, the peer takes over, then back;
//   - kill -9 leaves the VMAC; the next start replaces it; SIGTERM removes
//     it and the firewall table, and restores the parent's parameters.
func TestVMACLifecycle(t *testing.T) {
	t.Parallel()
	f := vmacFamilies[0]
	e := newEnv(t, "vmaclife", 2)
	r1, r2, client := e.node(0), e.node(1), e.net.Client
	sn, err := e2e.StartSniffer(client, "eth0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Stop()
	eth0MAC := func(h *lab.Host) string {
		l, err := showLink(h, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		return l.Address
	}
	mac1 := eth0MAC(r1)

	master := e.start(e2e.Vigil, 0, conf(f.instance("MASTER", 100, "vmac_xmit_base")))
	e.waitState(master, "VI_1", "MASTER", 10*time.Second)
	e.waitHoldsOn(r1, f.dev, f.vip, true, 15*time.Second)
	backup := e.start(e2e.Vigil, 1, conf(f.instance("BACKUP", 99)))
	e.waitState(backup, "VI_1", "BACKUP", 10*time.Second)
	e.checkVMACLink(r1, f)
	l2 := e.checkVMACLink(r2, f)
	if l2.Alias != "vigil-vmac arp_ignore=0 arp_filter=0 arp_announce=0" {
		t.Errorf("r2: %s alias %q, want the vigil-vmac mark with eth0's parameters", f.dev, l2.Alias)
	}
	for key, want := range map[string]string{
		"net.ipv4.conf.vrrp/55.arp_ignore":          "1",
		"net.ipv4.conf.vrrp/55.accept_local":        "1",
		"net.ipv4.conf.vrrp/55.rp_filter":           "0",
		"net.ipv4.conf.vrrp/55.promote_secondaries": "1",
		"net.ipv6.conf.vrrp/55.disable_ipv6":        "1",
		"net.ipv4.conf.eth0.arp_ignore":             "1",
		"net.ipv4.conf.eth0.arp_filter":             "1",
		"net.ipv4.conf.eth0.arp_announce":           "2",
		"net.ipv4.conf.all.rp_filter":               "0",
	} {
		if got := sysctl(t, r2, key); got != want {
			t.Errorf("r2: %s = %s, want %s", key, got, want)
		}
	}
	time.Sleep(time.Second)
	var adverts int
	for _, fr := range sn.Frames() {
		if v, ok := e2e.ParseVRRP(fr.Data); ok {
			if v.Priority != 100 {
				continue // r2's, were it to flap on a loaded machine
			}
			adverts++
			if v.SrcMAC.String() != mac1 {
				t.Fatalf("with vmac_xmit_base an advert left from %s, want eth0's %s", v.SrcMAC, mac1)
			}
			continue
		}
		if a, ok := e2e.ParseAnnouncement(fr.Data); ok && a.Addr == f.vip {
			if a.SrcMAC.String() != f.mac {
				t.Errorf("a gratuitous ARP for %v from %s, want the virtual MAC", f.vip, a.SrcMAC)
			}
			continue
		}
		if len(fr.Data) >= 12 && fmt.Sprintf("%x", fr.Data[6:12]) == strings.ReplaceAll(f.mac, ":", "") {
			t.Errorf("a frame from the virtual MAC that is neither advert nor announcement: % x", fr.Data[:min(len(fr.Data), 64)])
		}
	}
	if adverts == 0 {
		t.Fatal("no advert seen")
	}
	if out, _ := r2.Run("nft", "list", "table", "inet", "vigil_vrrp"); !strings.Contains(out, `oifname "vrrp.55"`) {
		t.Errorf("r2: no VMAC rule in table inet vigil_vrrp:\n%s", out)
	}

	t.Log("r1's eth0 down: FAULT, r2 takes over; up: r1 back")
	if out, err := r1.Run("ip", "link", "set", "eth0", "down"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	e.waitState(master, "VI_1", "FAULT", 15*time.Second)
	e.waitState(backup, "VI_1", "MASTER", 15*time.Second)
	e.waitHoldsOn(r2, f.dev, f.vip, true, 15*time.Second)
	if out, err := r1.Run("ip", "link", "set", "eth0", "up"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := e2e.WaitReady(e.net.Lab, r1); err != nil {
		t.Fatal(err)
	}
	e.waitState(master, "VI_1", "MASTER", 10*time.Second)
	e.waitState(backup, "VI_1", "BACKUP", 10*time.Second)
	e.waitHoldsOn(r1, f.dev, f.vip, true, 15*time.Second)
	e.waitHoldsOn(r2, f.dev, f.vip, false, 15*time.Second)
	e.checkVMACLink(r1, f)

	t.Log("kill -9 of r2 leaves its VMAC; a new start replaces it; SIGTERM removes it")
	backup.Kill()
	if _, err := showLink(r2, f.dev); err != nil {
		t.Fatalf("after kill -9: %v", err)
	}
	e.restart(backup)
	e.waitState(backup, "VI_1", "BACKUP", 10*time.Second)
	if !waitLogged(backup, "removed stale VMAC interface") {
		t.Errorf("the restarted vigil did not report the stale VMAC:\n%s", backup.Log())
	}
	e.checkVMACLink(r2, f)
	if code, err := backup.Term(10 * time.Second); err != nil || code != 0 {
		t.Fatalf("SIGTERM: exit %d, %v", code, err)
	}
	if _, err := showLink(r2, f.dev); err == nil {
		t.Errorf("r2: %s still there after SIGTERM", f.dev)
	}
	if out, err := r2.Run("nft", "list", "table", "inet", "vigil_vrrp"); err == nil {
		t.Errorf("r2: table inet vigil_vrrp still there after SIGTERM:\n%s", out)
	}
	for key, want := range map[string]string{"net.ipv4.conf.eth0.arp_ignore": "0", "net.ipv4.conf.eth0.arp_filter": "0", "net.ipv4.conf.eth0.arp_announce": "0"} {
		if got := sysctl(t, r2, key); got != want {
			t.Errorf("r2 after SIGTERM: %s = %s, want %s restored", key, got, want)
		}
	}
}

// TestVMACReload adds use_vmac to a running master by reload (SIGHUP): the
// VMAC appears and the VIP moves onto it; removing it again by reload takes
// the VIP back to eth0 and removes the VMAC.
func TestVMACReload(t *testing.T) {
	t.Parallel()
	f := vmacFamilies[0]
	e := newEnv(t, "vmacrld", 1)
	r1 := e.node(0)
	plain := f.instance("MASTER", 100)
	plain.Extra = nil
	nd := e.start(e2e.Vigil, 0, conf(plain))
	e.waitState(nd, "VI_1", "MASTER", 10*time.Second)
	e.waitHoldsOn(r1, "eth0", f.vip, true, 15*time.Second)

	reload := func(c e2e.Conf) {
		t.Helper()
		c.RouterID = r1.Name()
		if err := nd.WriteConfig(c.String()); err != nil {
			t.Fatal(err)
		}
		if err := nd.Proc().Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	reload(conf(f.instance("MASTER", 100)))
	e.waitHoldsOn(r1, f.dev, f.vip, true, 10*time.Second)
	e.waitHoldsOn(r1, "eth0", f.vip, false, 15*time.Second)
	e.checkVMACLink(r1, f)

	reload(conf(plain))
	e.waitHoldsOn(r1, "eth0", f.vip, true, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := showLink(r1, f.dev); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after the reload that removed use_vmac", f.dev)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
