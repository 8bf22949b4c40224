package lvs

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/status"
)

// The classic LVS-NAT pair: two directors run VRRP (a sync group moving
// the front VIP and the web servers' gateway address on the back LAN
// together) and the same virtual server. keepalived installs the virtual
// servers on both directors whatever their VRRP state (without
// ha_suspend), so the BACKUP serves as soon as it holds the VIPs: vigil
// must do the same. The MASTER's vigil is killed with SIGKILL while a
// client requests the VIP continuously; the BACKUP takes both VIPs and
// serves. The failed requests are counted and reported.
func TestDirectorPairFailover(t *testing.T) {
	t.Parallel()
	tp := newNATPair(t, "pair")
	master, backup := tp.dirs[0], tp.dirs[1]
	// The BACKUP has its table too (keepalived installs the LVS rules on
	// both directors).
	if dests, ok, err := nftDests(backup.host, 80); err != nil || !ok || len(dests) != 2 {
		t.Errorf("BACKUP's nftables service before the failover: %v (present %v, %v); want both real servers installed", dests, ok, err)
	} else {
		t.Logf("BACKUP already holds the virtual service: %v", dests)
	}
	waitChecked(t, master, patience)
	waitChecked(t, backup, patience)
	if per := tp.client.spread(80, 10); per[web1] != 5 || per[web2] != 5 {
		t.Fatalf("through the MASTER: %v", per)
	}
	backupMAC := backup.host.Iface("eth0").MAC
	if mac := neighbour(t, tp.client.host, vip); mac == backupMAC {
		t.Fatalf("the client reaches the VIP at the BACKUP's MAC %s before the failover", mac)
	}

	p := tp.client.startPoller(80, 2, 20*time.Millisecond)
	time.Sleep(time.Second)
	killed := time.Now()
	master.kill9()
	if out, err := master.host.Run("ip", "-o", "-4", "addr", "show"); err == nil && strings.Contains(out, " "+vip+"/32") {
		t.Logf("after the SIGKILL the old MASTER still holds %s (and its nftables table): nothing removed them, as with keepalived", vip)
	}
	took := waitFor(t, patience, "BACKUP becomes MASTER", func() (bool, string) {
		s := backup.mustStatus()
		return states(s) == "MASTER MASTER", states(s)
	})
	t.Logf("BACKUP is MASTER of both instances %v after the SIGKILL", took.Round(time.Millisecond))
	// Its gratuitous ARPs move the client's and the web servers' traffic.
	waitFor(t, patience, "the client sends VIP traffic to the new MASTER", func() (bool, string) {
		mac := neighbour(t, tp.client.host, vip)
		return mac == backupMAC, mac
	})
	backMAC := backup.host.Iface("eth1").MAC
	for _, a := range []string{web1, web2} {
		h := tp.web[a].host
		waitFor(t, patience, a+" routes replies through the new MASTER", func() (bool, string) {
			mac := neighbour(t, h, backVIP)
			return mac == backMAC, mac
		})
	}
	switched := time.Now()
	time.Sleep(2 * time.Second)
	// SIGKILL left the old MASTER's VIPs and nftables table in its kernel
	// (as it does keepalived's): unplug it, as a dead host, to show the new
	// MASTER alone carries the traffic.
	for _, ifc := range []string{"eth0", "eth1"} {
		if err := master.host.SetCable(ifc, false); err != nil {
			t.Fatal(err)
		}
	}
	unplugged := time.Now()
	time.Sleep(3 * time.Second)
	res := p.halt()

	var before, during, after, alone []result
	for _, r := range res {
		switch {
		case r.start.Before(killed):
			before = append(before, r)
		case r.start.Before(switched):
			during = append(during, r)
		case r.start.Before(unplugged):
			after = append(after, r)
		default:
			alone = append(alone, r)
		}
	}
	for _, g := range []struct {
		name string
		rs   []result
	}{
		{"before the SIGKILL", before},
		{fmt.Sprintf("from the SIGKILL until the client and web servers use the new MASTER (%v)", switched.Sub(killed).Round(time.Millisecond)), during},
		{"through the new MASTER", after},
		{"with the old MASTER unplugged", alone},
	} {
		per, failed := tally(g.rs)
		t.Logf("requests %s: %d %v, failed %d%s", g.name, len(g.rs), per, len(failed), summarize(failed))
	}
	for _, g := range [][]result{before, after, alone} {
		if _, failed := tally(g); len(failed) > 0 {
			t.Errorf("%d requests failed outside the failover window:%s", len(failed), summarize(failed))
		}
	}
	if per, _ := tally(alone); per[web1] == 0 || per[web2] == 0 {
		t.Errorf("through the new MASTER alone: %v, want both web servers", per)
	}
}

// A MASTER director stopped with SIGTERM hands its addresses over make
// before break: it keeps them until the BACKUP's first advert, a Skew_Time
// (0.65 s at priority 90) after its priority-0 advert. Its virtual servers
// stay in its kernel until it has let them go: a table removed earlier
// leaves the VIP to the host's own stack, which refuses new connections
// (a TCP reset for every SYN: "connection refused", 62 of 440 requests
// before the daemon stopped its parts in that order). keepalived releases
// the addresses at once, and clients then retransmit their SYN to the new
// MASTER; no request may be refused.
func TestDirectorPairGracefulStopRefusesNothing(t *testing.T) {
	t.Parallel()
	tp := newNATPair(t, "pairterm")
	master, backup := tp.dirs[0], tp.dirs[1]
	waitChecked(t, master, patience)
	waitChecked(t, backup, patience)
	p := tp.client.startPoller(80, 2, 20*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	master.signal(syscall.SIGTERM)
	took := waitFor(t, patience, "BACKUP becomes MASTER", func() (bool, string) {
		s := backup.mustStatus()
		return states(s) == "MASTER MASTER", states(s)
	})
	if !master.proc.Wait(patience) {
		t.Fatal("the old MASTER did not exit on SIGTERM")
	}
	time.Sleep(time.Second)
	res := p.halt()
	per, failed := tally(res)
	t.Logf("BACKUP is MASTER %v after the SIGTERM; requests %d %v, failed %d%s", took.Round(time.Millisecond), len(res), per, len(failed), summarize(failed))
	var refused []result
	for _, r := range failed {
		if errors.Is(r.err, syscall.ECONNREFUSED) {
			refused = append(refused, r)
		}
	}
	if len(refused) > 0 {
		t.Errorf("%d connections refused during the handover%s: the old MASTER removed its virtual servers while it still held the VIP", len(refused), summarize(refused))
	}
	if per[web1] == 0 || per[web2] == 0 {
		t.Errorf("requests answered: %v, want both web servers", per)
	}
}

// states lists a snapshot's VRRP instance states, VI_1 then VI_2.
// newNATPair builds the LVS-NAT pair of directors (MASTER priority 100,
// BACKUP 90, a sync group moving the front VIP and the back LAN's
// gateway), both serving port 80 over web1 and web2 with a TCP_CHECK, and
// starts them (startPair).
func newNATPair(t *testing.T, name string) *topo {
	tp := newTopo(t, name, topoOpts{directors: 2, gateway: backVIP})
	master, backup := tp.dirs[0], tp.dirs[1]
	check := tcpCheck("1", 1, "1")
	server := vs{port: 80, delayLoop: "1", reals: []rs{{addr: web1, checker: check}, {addr: web2, checker: check}}}.String()
	master.writeConfig(vrrpPair("LVS_1", "MASTER", 100) + server)
	backup.writeConfig(vrrpPair("LVS_2", "BACKUP", 90) + server)
	startPair(t, master, backup)
	return tp
}

// startPair starts a pair's BACKUP, then its MASTER, and returns once both
// have settled (every instance of each in its configured state) and the
// MASTER serves port 80.
func startPair(t *testing.T, master, backup *director) {
	t.Helper()
	backup.start()
	master.start()
	waitFor(t, patience, "MASTER and BACKUP settle", func() (bool, string) {
		m, b := master.mustStatus(), backup.mustStatus()
		return states(m) == "MASTER MASTER" && states(b) == "BACKUP BACKUP", states(m) + " / " + states(b)
	})
	waitServing(t, master, 80)
}

func states(s status.Snapshot) string {
	var out []string
	for _, name := range []string{"VI_1", "VI_2"} {
		for _, in := range s.Instances {
			if in.Name == name {
				out = append(out, in.State)
			}
		}
	}
	return strings.Join(out, " ")
}

// neighbour returns the MAC address host h holds for addr ("" when none).
func neighbour(t testing.TB, h *lab.Host, addr string) string {
	t.Helper()
	out, err := h.Run("ip", "neigh", "show", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}
