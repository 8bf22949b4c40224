package lvs

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
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

// newSyncPair starts the pair with extra lines in both conntrack_sync
// blocks.
func newSyncPair(t *testing.T, name string, nflows int, extra ...string) *syncPair {
	tp := newTopo(t, name, topoOpts{directors: 2, gateway: backVIP, syncLink: true})
	p := &syncPair{tp: tp, master: tp.dirs[0], backup: tp.dirs[1], stop: make(chan struct{})}
	for i, d := range tp.dirs {
		d.writeConfig(strings.Replace(connSyncConf(i, true, false), "conntrack_sync {\n", "conntrack_sync {\n"+strings.Join(extra, ""), 1))
	}
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

// TestNATConnSyncHungConntrackd: the BACKUP's conntrackd stops answering
// (SIGSTOP: its process and its socket stay, its external cache could
// never be committed). vigil kills it, a new one asks the MASTER for a
// resync, and the failover that follows keeps the connections. The
// commands' timeout is 2 s here (default 5 s) to shorten the test.
func TestNATConnSyncHungConntrackd(t *testing.T) {
	t.Parallel()
	netnstest.RequireCommand(t, "conntrackd")
	const nflows = 20
	p := newSyncPair(t, "cshung", nflows, "\ttimeout 2\n")
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
// connections open; it comes back, then the MASTER dies, and at last comes
// back rebooted (an empty connection tracking table) and takes its role
// back with preempt: the connections must survive both moves. The cut is a
// warning in the status (which kept answering: the supervisor's link-down
// log line took its own lock twice and hung the status API and every
// later conntrackd command), and the connections opened during the cut
// reach the BACKUP once the link is back.
func TestNATConnSyncLinkCut(t *testing.T) {
	t.Parallel()
	netnstest.RequireCommand(t, "conntrackd")
	netnstest.RequireCommand(t, "conntrack")
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
	// The count comes before the entries are whole: in one CI run of four
	// (other tests beside it) a failover right then broke the 10 flows
	// opened during the cut. Replication lag, a noted limit: the failover
	// waits for the sync to settle.
	time.Sleep(2 * time.Second)
	p.killMaster(t)
	if n, errs := p.settle(t, "failover after a sync link cut"); n > 0 {
		t.Errorf("%d broken: %v", n, errs)
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

// TestNATConnSyncOperations runs an operator's day on one pair with
// conntrack_sync and live long-lived connections, counting the broken
// ones at each step: a reload changing a real server's weight on both
// directors (none may break), the MASTER's conntrackd dying (restarted with
// an empty cache: its resync with the kernel and bulk send must refill
// the BACKUP, and new connections open after it), a planned stop of the
// MASTER with SIGTERM (none may break), the MASTER's return with preempt
// (none may break), and a real server failing (only its own connections
// may break).
func TestNATConnSyncOperations(t *testing.T) {
	t.Parallel()
	netnstest.RequireCommand(t, "conntrackd")
	const nflows = 20
	p := newSyncPair(t, "csops", nflows)
	broken := func() (n int) {
		for _, f := range p.flows {
			f.mu.Lock()
			if f.err != nil {
				n++
			}
			f.mu.Unlock()
		}
		return n
	}
	// step counts the connections broken since before, at most allowed.
	step := func(what string, before, allowed int) int {
		t.Helper()
		n, errs := p.settle(t, what)
		if n-before > allowed {
			t.Errorf("%s: %d connections broke (at most %d may): %v", what, n-before, allowed, errs)
		}
		return n - before
	}

	// A weight changes on both directors.
	check := tcpCheck("1", 1, "1")
	weighted := func(i int) string {
		return strings.Replace(connSyncConf(i, true, false),
			vs{port: 80, delayLoop: "1", reals: []rs{{addr: web1, checker: check}, {addr: web2, checker: check}}}.String(),
			vs{port: 80, delayLoop: "1", reals: []rs{{addr: web1, weight: 3, checker: check}, {addr: web2, checker: check}}}.String(), 1)
	}
	before := broken()
	for i, d := range []*director{p.master, p.backup} {
		d.writeConfig(weighted(i))
		if out, err := d.vigil("reload", "--api-socket", d.sock()); err != nil || !strings.Contains(out, "~ virtual_server") {
			t.Fatalf("%s: reload: %v\n%s", d.host.Name(), err, out)
		}
	}
	waitFor(t, patience, "web1 has weight 3 on the MASTER", func() (bool, string) {
		dests, ok, err := p.master.kernel().dests(80)
		return err == nil && ok && dests[web1+":80"] == 3, fmt.Sprint(dests, err)
	})
	step("reload of a weight", before, 0)

	// web1 fails: its connections end, the others must not. It comes
	// last; VIGIL_E2E_CONNSYNC_RSFAIL_FIRST=1 puts it before the handover
	// and the failback (the resets once seen in that order came from the
	// old MASTER's gratuitous ARP after priority 0: see the SIGTERM step).
	rsFails := func() {
		before, onWeb1 := broken(), 0
		for _, f := range p.flows {
			f.mu.Lock()
			if f.err == nil && strings.HasPrefix(f.server, web1+" ") {
				onWeb1++
			}
			f.mu.Unlock()
		}
		p.tp.web[web1].stop()
		waitPool(t, p.master, 80, web1, false, patience)
		waitPool(t, p.backup, 80, web1, false, patience)
		lost := step("web1 fails", before, onWeb1)
		t.Logf("web1's failure ended %d connections (%d were on web1)", lost, onWeb1)
	}
	rsFirst := os.Getenv("VIGIL_E2E_CONNSYNC_RSFAIL_FIRST") != ""
	if rsFirst {
		rsFails()
	}

	// The MASTER's conntrackd dies; vigil restarts it.
	old := p.master.mustStatus().ConnSync
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, patience, "the MASTER's conntrackd restarted", func() (bool, string) {
		cs := p.master.mustStatus().ConnSync
		return cs.Restarts == 1 && cs.Alive && cs.PID != old.PID && cs.LastResync.After(old.LastResync), fmt.Sprintf("%+v", *cs)
	})
	p.flows = append(p.flows, startFlows(t, p.tp.client.host, vip+":80", nflows/2, p.stop, &p.wg)...)
	waitFor(t, patience, "the BACKUP's external cache holds the new connections", func() (bool, string) {
		cs := p.backup.mustStatus().ConnSync
		return cs.External >= int64(nflows), fmt.Sprintf("external %d", cs.External)
	})

	// A planned stop of the MASTER, timed so that its garp_master_delay
	// burst (5 s after it became MASTER) is due just after the BACKUP's
	// takeover (a Skew_Time, 0.65 s, after priority 0), while it still
	// holds the VIPs. It must send none: sent, it pointed the client and
	// the web servers back at the leaving director, which forwarded web2's
	// replies without NAT once its state was gone, and the client's RSTs
	// to web2 reset every surviving connection at the failback.
	became := lastMaster(p.master.mustStatus())
	time.Sleep(time.Until(became.Add(4300 * time.Millisecond)))
	before = broken()
	p.master.signal(syscall.SIGTERM)
	waitFor(t, patience, "BACKUP becomes MASTER", func() (bool, string) {
		s := p.backup.mustStatus()
		return states(s) == "MASTER MASTER", states(s)
	})
	step("SIGTERM of the MASTER", before, 0)

	// It returns and takes its role back (preempt).
	waitFor(t, patience, "the old MASTER's vigil exited", func() (bool, string) {
		_, err := p.master.status()
		return err != nil, fmt.Sprint(err)
	})
	before = broken()
	p.master.start()
	waitFor(t, patience, "the old MASTER takes its role back", func() (bool, string) {
		m, b := p.master.mustStatus(), p.backup.mustStatus()
		return states(m) == "MASTER MASTER" && states(b) == "BACKUP BACKUP", states(m) + " / " + states(b)
	})
	step("failback with preempt", before, 0)
	if strings.Contains(p.backup.output(), "address conflict") {
		t.Error("the new MASTER logged an address conflict during the handover: the old MASTER announced a VIP after its priority 0")
	}
	if !rsFirst {
		rsFails()
	}
}

// lastMaster is when the snapshot's last instance transition to MASTER
// happened.
func lastMaster(s status.Snapshot) time.Time {
	var at time.Time
	for _, tr := range s.Transitions {
		if tr.Kind == "instance" && tr.To == "MASTER" {
			at = tr.At
		}
	}
	return at
}
