package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
)

// hostileConf is a node of the hostile-reload lab: VRRPv3 every 100 ms,
// so that a stall of a third of a second hands the VIP over. The daemons
// run at vrrp_rt_priority, so that on a loaded machine a gap measures
// vigil and not the run queue.
func hostileConf(routerID, state string, priority int, extra string) string {
	return fmt.Sprintf(`global_defs {
    router_id %s
    vrrp_rt_priority 50
}
vrrp_instance VI_1 {
    state %s
    interface eth0
    version 3
    virtual_router_id 71
    priority %d
    advert_int 0.1
    virtual_ipaddress {
        192.168.51.100/24
    }
}
%s`, routerID, state, priority, extra)
}

// TestHostileReloadsKeepTheMaster: a running master is asked to reload
// files built to hang, exhaust or empty it (an include of /dev/zero, of a
// FIFO nobody writes, an include bomb, a brace bomb, a replicated
// multi-line definition, an empty file). Each reload is refused at once
// with a positioned error; throughout, the master keeps its VIP and its
// adverts (the backup never takes over) and `vigil status` answers (its
// latency is logged).
func TestHostileReloadsKeepTheMaster(t *testing.T) {
	l := netnstest.New(t, "hostile")
	n1 := netnstest.AddHost(t, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.51.1/24"}})
	n2 := netnstest.AddHost(t, l, "n2", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.51.2/24"}})
	netnstest.WaitLANReady(t, l, n1, n2)

	master, backup, adverts := hostilePair(t, n1, n2, hostileConf("n1", "MASTER", 150, ""))
	var mu sync.Mutex // statusErrs, worstStatus

	// `vigil status` through the API, every 50 ms, with its latency.
	var worstStatus time.Duration
	var statusErrs []string
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		c := api.NewClient(master.sock)
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			start := time.Now()
			_, err := c.Status(ctx)
			took := time.Since(start)
			cancel()
			mu.Lock()
			worstStatus = max(worstStatus, took)
			if err != nil {
				statusErrs = append(statusErrs, err.Error())
			}
			mu.Unlock()
		}
	}()

	dir := master.dir
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 33 {
		b := fmt.Sprintf("include bomb%d.conf\ninclude bomb%d.conf\n", i+1, i+1)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("bomb%d.conf", i)), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	multi := "$BIG=\\\n" + strings.Repeat("    192.168.51.200/24 \\\n", 2500) + "    192.168.51.201/24\n"
	good := hostileConf("n1", "MASTER", 150, "")
	phaseStart := time.Now()
	for _, tc := range []struct {
		name, conf, want string
	}{
		{"include /dev/zero", good + "include /dev/zero\n", "/dev/zero is a character device; only regular files are read"},
		{"include of a FIFO", good + "include " + fifo + "\n", "fifo is a FIFO; only regular files are read"},
		{"include bomb", good + "include bomb0.conf\n", "the configuration's budget is 1024 files"},
		{"brace bomb", good + "include /x" + strings.Repeat("{a,b}", 40) + "\n", "expansions"},
		{"replicated multi-line definition", multi + strings.Replace(good, "192.168.51.100/24\n", "192.168.51.100/24\n~SEQ(i,1,100000) $BIG\n", 1), "multi-line definition $BIG adds 2500 lines"},
		{"empty file", "", "the file is empty"},
	} {
		master.write(tc.conf)
		start := time.Now()
		_, errOut, code := master.cli("reload")
		took := time.Since(start)
		t.Logf("%s: refused in %v", tc.name, took.Round(time.Millisecond))
		if code == 0 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "the running one stays") {
			t.Errorf("%s: vigil reload exit %d (%v), want a refusal with %q:\n%s", tc.name, code, took, tc.want, errOut)
		}
	}
	// The same by SIGHUP, as a configuration manager would.
	master.write(good + "include /dev/zero\n")
	master.signal(syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for len(master.logsWith("reload rejected")) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(master.logsWith("reload rejected")) == 0 {
		t.Errorf("no \"reload rejected\" log after SIGHUP")
	}
	master.write("")
	master.signal(syscall.SIGHUP)
	for len(master.logsWith("the file is empty; the running configuration stays")) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(master.logsWith("the file is empty; the running configuration stays")) == 0 {
		t.Errorf("no \"the file is empty; the running configuration stays\" log after SIGHUP of an empty file")
	}
	// What an operator sees now: the daemon runs an older configuration
	// than the file, and why.
	if d := master.status().Daemon; d.ReloadFailures != 8 || !strings.Contains(d.LastReloadError, "the file is empty") {
		t.Errorf("after 8 refused reloads: reload_failures %d, last_reload_error %q", d.ReloadFailures, d.LastReloadError)
	}
	if out, _, _ := master.cli("status"); !strings.Contains(out, "RELOAD FAILED") || !strings.Contains(out, "the file is empty") {
		t.Errorf("vigil status does not say the last reload failed:\n%s", out)
	}
	master.write(good)
	master.signal(syscall.SIGHUP)
	master.waitFor("a good reload clears the failure", 10*time.Second, func(s status.Snapshot) bool {
		return s.Daemon.LastReloadError == "" && s.Daemon.Reloads > 0
	})
	time.Sleep(time.Second) // adverts after the last reload
	close(stopPoll)
	<-pollDone
	phaseEnd := time.Now()

	// The master kept its state and its VIP, the backup never moved.
	s := master.status()
	if stateOf(s, "VI_1") != "MASTER" {
		t.Errorf("n1 is %s after the hostile reloads", stateOf(s, "VI_1"))
	}
	if out := mustRun(t, n1, "ip", "-4", "addr", "show", "dev", "eth0"); !strings.Contains(out, "192.168.51.100/24") {
		t.Errorf("n1 lost its VIP:\n%s", out)
	}
	for _, tr := range backup.status().Transitions {
		if tr.At.After(phaseStart) && tr.Name == "VI_1" {
			t.Errorf("n2 moved during the hostile reloads: %+v", tr)
		}
	}
	inPhase, worstGap := adverts.between(phaseStart, phaseEnd)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("FIGURE %d adverts in %v, longest gap %v; slowest status %v", len(inPhase), phaseEnd.Sub(phaseStart).Round(time.Millisecond), worstGap, worstStatus)
	if len(inPhase) < 10 {
		t.Errorf("only %d adverts from n1 seen during the hostile reloads", len(inPhase))
	}
	// The backup's Master_Down_Interval is 3 × 0.1 s + (256-100)/256 ×
	// 0.1 s: a gap that long is a failover.
	if mdi := 300*time.Millisecond + 156*100*time.Millisecond/256; worstGap >= mdi {
		t.Errorf("an advert gap of %v (advert_int 0.1 s, the backup's Master_Down_Interval %v)", worstGap, mdi)
	}
	// A status request that a reload blocked would time out (5 s) or
	// fail; how slow the slowest one was is a figure (logged above).
	if len(statusErrs) > 0 {
		t.Errorf("vigil status: slowest %v, errors %q", worstStatus, statusErrs)
	}
}

// TestScriptsInheritNoDescriptor: vigil started with a descriptor left
// open (fd 7 on a root-only file, as a careless init script or parent
// would) runs its notify script with stdin, stdout and stderr only.
func TestScriptsInheritNoDescriptor(t *testing.T) {
	l := netnstest.New(t, "fds")
	n1 := netnstest.AddHost(t, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.52.1/24"}})
	netnstest.WaitLANReady(t, l, n1)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "fds")
	script := filepath.Join(dir, "notify.sh")
	// ls runs with the script's descriptors plus the one it opens to
	// read the directory.
	if err := os.WriteFile(script, []byte("#!/bin/sh\nls /proc/self/fd > "+out+".tmp\nmv "+out+".tmp "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, n1, fmt.Sprintf(`global_defs {
    router_id fds
    script_user root
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    version 3
    virtual_router_id 72
    priority 150
    advert_int 0.1
    notify_master %s
    virtual_ipaddress {
        192.168.52.100/24
    }
}
`, script))
	d.prelude = "exec 7<" + secret + ";"
	d.start()
	d.waitFor("MASTER", 20*time.Second, inState("MASTER", "VI_1"))
	// The daemon itself did inherit fd 7.
	if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/7", d.p.PID())); err != nil || target != secret {
		t.Fatalf("the daemon's fd 7 is %q (%v): the test did not leave it a descriptor", target, err)
	}
	var b []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		if b, err = os.ReadFile(out); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the notify script did not run: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fds := strings.Fields(string(b))
	if len(fds) != 4 || slices.Contains(fds, "7") {
		t.Errorf("the notify script's ls saw descriptors %v; want 0 1 2 and ls's own 3", fds)
	}
}

// masterAdverts records the master's adverts as the backup receives them,
// kernel-stamped.
type masterAdverts struct {
	mu sync.Mutex
	at []time.Time
}

// between returns the adverts seen from from to to, in order, and the
// longest gap between two of them.
func (a *masterAdverts) between(from, to time.Time) ([]time.Time, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var in []time.Time
	for _, at := range a.at {
		if !at.Before(from) && !at.After(to) {
			in = append(in, at)
		}
	}
	slices.SortFunc(in, func(a, b time.Time) int { return a.Compare(b) })
	var worst time.Duration
	for i := 1; i < len(in); i++ {
		worst = max(worst, in[i].Sub(in[i-1]))
	}
	return in, worst
}

// hostilePair starts n1 as MASTER with masterConf and n2 as BACKUP of
// hostileConf, waits for both states, and records n1's adverts at n2
// until the test ends.
func hostilePair(t *testing.T, n1, n2 *lab.Host, masterConf string) (master, backup *daemon, adverts *masterAdverts) {
	t.Helper()
	return hostilePairConf(t, n1, n2, masterConf, hostileConf("n2", "BACKUP", 100, ""))
}

// hostilePairConf is hostilePair with the backup's configuration given.
func hostilePairConf(t *testing.T, n1, n2 *lab.Host, masterConf, backupConf string) (master, backup *daemon, adverts *masterAdverts) {
	t.Helper()
	master = newDaemon(t, n1, masterConf)
	backup = newDaemon(t, n2, backupConf)
	master.start()
	backup.start()
	master.waitFor("n1 MASTER", 20*time.Second, inState("MASTER", "VI_1"))
	backup.waitFor("n2 BACKUP", 20*time.Second, inState("BACKUP", "VI_1"))
	adverts = &masterAdverts{}
	sn, err := e2e.StartSniffer(n2, "eth0", func(f e2e.Frame) {
		if v, ok := e2e.ParseVRRP(f.Data); ok && v.VRID == 71 && v.Src.String() == "192.168.51.1" {
			adverts.mu.Lock()
			adverts.at = append(adverts.at, f.At)
			adverts.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sn.Stop() })
	return master, backup, adverts
}
