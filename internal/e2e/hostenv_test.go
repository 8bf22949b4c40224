package e2e_test

import (
	"bytes"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// TestAddressFlushOnMaster: `ip addr flush dev eth0` on the master (as
// dhclient or NetworkManager do when a lease goes) takes its primary
// address and the VIP at once. The master faults and, as keepalived 2.2.7
// does, sends its priority-0 advert from the address just gone, so the
// backup takes over at once rather than after Master_Down_Interval. A new
// primary address later brings the node back as master, advertising from
// that address.
func TestAddressFlushOnMaster(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "flush", 2)
	r1 := e.start(e2e.Vigil, 0, conf(fast("MASTER", 100)))
	r2 := e.start(e2e.Vigil, 1, conf(fast("BACKUP", 99)))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 10*time.Second)
	e.waitHolds(e.node(0), e2e.VIP4, true, 15*time.Second)

	if err := ipIn(e.node(0), "addr", "flush", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	e.waitState(r1, "VI_1", "FAULT", 10*time.Second)
	e.waitState(r2, "VI_1", "MASTER", 10*time.Second)
	if s := status_(t, r2, "VI_1"); !strings.Contains(s.Reason, "sent priority 0") {
		t.Errorf("the backup took over with reason %q; want the flushed master's priority 0", s.Reason)
	}
	e.waitHolds(e.node(0), e2e.VIP4, false, 15*time.Second)

	if err := ipIn(e.node(0), "addr", "add", "192.168.1.125/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	e.waitState(r1, "VI_1", "MASTER", 15*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 15*time.Second)
	e.waitHolds(e.node(1), e2e.VIP4, false, 15*time.Second)
	e.onlyHolder(e2e.VIP4, e.node(0))
	if s := status_(t, r2, "VI_1"); s.Master != "192.168.1.125" {
		t.Errorf("the backup's master is %s, want the new primary 192.168.1.125", s.Master)
	}
}

// TestMACChangeIsAnnounced: the master's interface changes its MAC address
// (a bond failing over, `ip link set eth0 address`, a re-plugged NIC
// keeping its name). The neighbours still send the VIP's traffic to the
// old address; the master announces the VIP again from the new one, as
// keepalived 2.2.7 does ("MAC Address changed"), and stays master.
func TestMACChangeIsAnnounced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "mac", 2)
	a := fast("MASTER", 100)
	a.Extra = []string{"garp_master_delay 0"} // no second burst after the takeover to mistake for the answer
	r1 := e.start(e2e.Vigil, 0, conf(a))
	r2 := e.start(e2e.Vigil, 1, conf(fast("BACKUP", 99)))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 10*time.Second)
	e.waitHolds(e.node(0), e2e.VIP4, true, 15*time.Second)

	sn, err := e2e.StartSniffer(e.node(1), "eth0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Stop()
	newMAC := net.HardwareAddr{0x02, 0, 0x5e, 0x10, 0, 0x01}
	if err := ipIn(e.node(0), "link", "set", "eth0", "address", newMAC.String()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		announced := slices.ContainsFunc(sn.Frames(), func(f e2e.Frame) bool {
			an, ok := e2e.ParseAnnouncement(f.Data)
			return ok && an.Addr == e2e.VIP4 && bytes.Equal(an.SrcMAC, newMAC)
		})
		if announced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no gratuitous ARP for %v from the new MAC %v within 10 s", e2e.VIP4, newMAC)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.onlyHolder(e2e.VIP4, e.node(0))
	if tr := vigilTransitions(r1.Log(), "VI_1"); len(tr) != 2 {
		t.Errorf("master's transitions %v, want INIT>BACKUP BACKUP>MASTER only", tr)
	}
}

// TestInterfaceRenamed: the master's eth0 is renamed eth1 under it (udev,
// a container runtime). The interface the configuration names is gone, as
// keepalived 2.2.7 sees it: the master faults, sends priority 0 and removes
// the VIP, which went along to eth1 (left there, both nodes would answer
// for it). Renamed back, it returns and preempts.
func TestInterfaceRenamed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "rename", 2)
	r1 := e.start(e2e.Vigil, 0, conf(fast("MASTER", 100)))
	r2 := e.start(e2e.Vigil, 1, conf(fast("BACKUP", 99)))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 10*time.Second)
	e.waitHolds(e.node(0), e2e.VIP4, true, 15*time.Second)

	rename := func(from, to string) {
		t.Helper()
		if err := ipIn(e.node(0), "link", "set", from, "name", to); err != nil {
			t.Fatal(err)
		}
	}
	rename("eth0", "eth1")
	e.waitState(r1, "VI_1", "FAULT", 10*time.Second)
	e.waitState(r2, "VI_1", "MASTER", 10*time.Second)
	if s := status_(t, r2, "VI_1"); !strings.Contains(s.Reason, "sent priority 0") {
		t.Errorf("the backup took over with reason %q; want the renamed master's priority 0", s.Reason)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		held, err := e.addrsOf(e.node(0)).Has("eth1", e2e.VIP4)
		if err != nil {
			t.Fatal(err)
		}
		if !held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the faulted master still holds %v on the renamed eth1", e2e.VIP4)
		}
		time.Sleep(20 * time.Millisecond)
	}

	rename("eth1", "eth0")
	e.waitState(r1, "VI_1", "MASTER", 15*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 15*time.Second)
	e.waitHolds(e.node(1), e2e.VIP4, false, 15*time.Second)
	e.onlyHolder(e2e.VIP4, e.node(0))
}
