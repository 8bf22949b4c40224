package lvs

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

// syncPair is a running NAT director pair with conntrack_sync and
// long-lived client connections through the VIP.
type syncPair struct {
	tp             *topo
	master, backup *director
	flows          []*flow
	stop           chan struct{}
	wg             sync.WaitGroup
}

func newSyncPair(t *testing.T, name string, nflows int) *syncPair {
	tp := newTopo(t, name, topoOpts{directors: 2, gateway: backVIP, syncLink: true})
	p := &syncPair{tp: tp, master: tp.dirs[0], backup: tp.dirs[1], stop: make(chan struct{})}
	p.master.writeConfig(connSyncConf(0, true, false))
	p.backup.writeConfig(connSyncConf(1, true, false))
	startPair(t, p.master, p.backup)
	waitChecked(t, p.master, patience)
	waitChecked(t, p.backup, patience)
	for _, d := range tp.dirs {
		waitFor(t, patience, d.host.Name()+": conntrackd runs and hears its peer", func() (bool, string) {
			cs := d.mustStatus().ConnSync
			if cs == nil {
				return false, "no conn_sync in the status"
			}
			return cs.Alive && len(cs.Warnings) == 0 && cs.Role != "INIT", fmt.Sprintf("%+v", *cs)
		})
	}
	p.flows = startFlows(t, tp.client.host, vip+":80", nflows, p.stop, &p.wg)
	t.Cleanup(func() {
		select {
		case <-p.stop:
		default:
			close(p.stop)
		}
		p.wg.Wait()
	})
	waitFor(t, patience, "the BACKUP's external cache holds the flows", func() (bool, string) {
		cs := p.backup.mustStatus().ConnSync
		return cs.External >= int64(nflows), fmt.Sprintf("external %d, internal %d", cs.External, cs.Internal)
	})
	return p
}

// settle waits until every flow has answered after now or failed, and
// returns the number failed and their errors.
func (p *syncPair) settle(t *testing.T, what string) (broken int, errs []string) {
	t.Helper()
	since := time.Now()
	waitFor(t, patience, what+": every long-lived connection answers or fails", func() (bool, string) {
		waiting := 0
		for _, f := range p.flows {
			f.mu.Lock()
			if f.err == nil && f.last.Before(since) {
				waiting++
			}
			f.mu.Unlock()
		}
		return waiting == 0, fmt.Sprintf("%d still waiting", waiting)
	})
	var longest time.Duration
	for _, f := range p.flows {
		f.mu.Lock()
		if f.err != nil {
			broken++
			errs = append(errs, errString(f.err))
		}
		longest = max(longest, f.maxGap)
		f.mu.Unlock()
	}
	t.Logf("%s: %d of %d connections broken, longest stall %v %v", what, broken, len(p.flows), longest.Round(time.Millisecond), errs)
	return broken, errs
}

// killMaster kills the MASTER's vigil with SIGKILL and unplugs it.
func (p *syncPair) killMaster(t *testing.T) {
	p.master.kill9()
	for _, ifc := range []string{"eth0", "eth1", "eth2"} {
		if err := p.master.host.SetCable(ifc, false); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, patience, "BACKUP becomes MASTER", func() (bool, string) {
		s := p.backup.mustStatus()
		return states(s) == "MASTER MASTER", states(s)
	})
}

// TestNATConnSyncFailback: the MASTER dies, the BACKUP takes over with
// the replicated flows, then the old MASTER comes back (rebooted: an
// empty connection tracking table) and, with preempt, takes its role
// back. The flows must survive both moves.
func TestNATConnSyncFailback(t *testing.T) {
	t.Parallel()
	netnstest.RequireCommand(t, "conntrackd")
	netnstest.RequireCommand(t, "conntrack")
	p := newSyncPair(t, "csfb", 20)
	p.killMaster(t)
	if n, errs := p.settle(t, "failover"); n > 0 {
		t.Errorf("failover: %d broken: %v", n, errs)
	}
	// The old MASTER reboots: nothing of its kernel state survives.
	mustRun(t, p.master.host, "nft", "flush", "ruleset")
	mustRun(t, p.master.host, "conntrack", "-F")
	for _, ifc := range []string{"eth0", "eth1", "eth2"} {
		if err := p.master.host.SetCable(ifc, true); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{vip, backVIP} {
		_, _ = p.master.host.Run("ip", "addr", "del", a+"/32", "dev", "eth0")
		_, _ = p.master.host.Run("ip", "addr", "del", a+"/32", "dev", "eth1")
	}
	p.master.start()
	waitFor(t, patience, "the old MASTER takes its role back", func() (bool, string) {
		m, b := p.master.mustStatus(), p.backup.mustStatus()
		return states(m) == "MASTER MASTER" && states(b) == "BACKUP BACKUP", states(m) + " / " + states(b)
	})
	if n, errs := p.settle(t, "failback"); n > 0 {
		t.Errorf("failback: %d broken: %v", n, errs)
	}
}

// TestNATConnSyncHungConntrackd: the BACKUP's conntrackd stops answering
// (SIGSTOP: its process and its socket stay, its external cache could
// never be committed). vigil kills it, a new one asks the MASTER for a
// resync, and the failover that follows keeps the connections.
func TestNATConnSyncHungConntrackd(t *testing.T) {
	t.Parallel()
	netnstest.RequireCommand(t, "conntrackd")
	const nflows = 20
	p := newSyncPair(t, "cshung", nflows)
	old := p.backup.mustStatus().ConnSync
	if err := syscall.Kill(old.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, patience, "the hung conntrackd is killed, restarted and resynchronised", func() (bool, string) {
		cs := p.backup.mustStatus().ConnSync
		return cs.Restarts == 1 && cs.Alive && cs.PID != old.PID && cs.External >= nflows, fmt.Sprintf("%+v", *cs)
	})
	cs := p.backup.mustStatus().ConnSync
	t.Logf("conntrackd replaced and resynchronised %v after SIGSTOP; warnings %v", took.Round(time.Millisecond), cs.Warnings)
	if !strings.Contains(p.backup.output(), "conntrackd does not answer; killing it") {
		t.Error("no log line for the hung conntrackd")
	}
	p.killMaster(t)
	if n, errs := p.settle(t, "failover after a hung conntrackd"); n > 0 {
		t.Errorf("%d broken: %v", n, errs)
	}
}

// TestNATConnSyncLinkCut: the sync link fails while traffic flows and new
// connections open; it comes back, then the MASTER dies. The cut is a
// warning in the status (which kept answering: the supervisor's link-down
// log line took its own lock twice and hung the status API and every
// later conntrackd command), and the connections opened during the cut
// reach the BACKUP once the link is back.
func TestNATConnSyncLinkCut(t *testing.T) {
	t.Parallel()
	netnstest.RequireCommand(t, "conntrackd")
	const nflows = 10
	p := newSyncPair(t, "cscut", nflows)
	if err := p.backup.host.SetCable("eth2", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, patience, "the cut link is a warning", func() (bool, string) {
		w := p.backup.mustStatus().ConnSync.Warnings
		return strings.Contains(strings.Join(w, "; "), "nothing heard from the sync peer"), fmt.Sprint(w)
	})
	late := startFlows(t, p.tp.client.host, vip+":80", nflows, p.stop, &p.wg)
	p.flows = append(p.flows, late...)
	time.Sleep(2 * time.Second)
	if err := p.backup.host.SetCable("eth2", true); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, patience, "the BACKUP's external cache holds the flows opened during the cut", func() (bool, string) {
		cs := p.backup.mustStatus().ConnSync
		return cs.External >= 2*nflows && len(cs.Warnings) == 0, fmt.Sprintf("external %d, warnings %v", cs.External, cs.Warnings)
	})
	t.Logf("the flows opened during the cut reached the BACKUP %v after the link came back", took.Round(time.Millisecond))
	p.killMaster(t)
	if n, errs := p.settle(t, "failover after a sync link cut"); n > 0 {
		t.Errorf("%d broken: %v", n, errs)
	}
}

// TestNATConnSyncMasterConntrackdRestart: the MASTER's conntrackd dies and
// is restarted by vigil (an empty cache); the MASTER then dies. The new
// conntrackd's resync of the kernel table and bulk send must have refilled
// the BACKUP.
func TestNATConnSyncMasterConntrackdRestart(t *testing.T) {
	t.Parallel()
	netnstest.RequireCommand(t, "conntrackd")
	const nflows = 10
	p := newSyncPair(t, "csmrs", nflows)
	old := p.master.mustStatus().ConnSync
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, patience, "the MASTER's conntrackd restarted", func() (bool, string) {
		cs := p.master.mustStatus().ConnSync
		return cs.Restarts == 1 && cs.Alive && cs.PID != old.PID && cs.LastResync.After(old.LastResync), fmt.Sprintf("%+v", *cs)
	})
	// New connections after the restart, too.
	p.flows = append(p.flows, startFlows(t, p.tp.client.host, vip+":80", nflows, p.stop, &p.wg)...)
	time.Sleep(3 * time.Second)
	cs := p.backup.mustStatus().ConnSync
	t.Logf("BACKUP's external cache before the failover: %d (%d flows)", cs.External, 2*nflows)
	p.killMaster(t)
	if n, errs := p.settle(t, "failover after the MASTER's conntrackd restarted"); n > 0 {
		t.Errorf("%d broken: %v", n, errs)
	}
}
