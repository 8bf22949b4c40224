package track

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// flapAdvert: VRRPv3, fast, so that a flap settles quickly.
const flapAdvert = 100 * time.Millisecond

// fifoStates parses vrrp_notify_fifo lines of one instance,
// `INSTANCE "VI_1" MASTER 100` (keepalived vrrp_notify.c notify_fifo), and
// returns the states in order.
func fifoStates(t *testing.T, lines []fifoLine, name string) []string {
	t.Helper()
	var out []string
	for _, l := range lines {
		f := strings.Fields(l.Line)
		if len(f) != 4 || f[0] != "INSTANCE" || f[1] != strconv.Quote(name) {
			if len(f) == 4 && f[0] == "INSTANCE" {
				continue // another instance
			}
			t.Fatalf("vrrp_notify_fifo line %q: want INSTANCE \"NAME\" STATE PRIORITY", l.Line)
		}
		if _, err := strconv.Atoi(f[3]); err != nil {
			t.Fatalf("vrrp_notify_fifo line %q: priority: %v", l.Line, err)
		}
		out = append(out, f[2])
	}
	return out
}

// writeValue writes a track_file's value.
func writeValue(t *testing.T, path, v string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNotifyOrderUnderFlapping: a track_file toggled many times between 0
// and a fault value (-254 × weight 1) flaps an instance between FAULT,
// BACKUP and MASTER. vrrp_notify_fifo (read by the test) sees every
// transition the daemon made, in order; the notify scripts (notify_master /
// notify_backup / notify_fault, then the generic notify with INSTANCE VI_1
// STATE PRIORITY) see a subsequence of them in order, each specific script
// before the generic one, ending with the final state; smtp_alert mail has
// keepalived's subjects, in order, ending with the final state.
func TestNotifyOrderUnderFlapping(t *testing.T) {
	t.Parallel()
	l := netnstest.New(t, "flap")
	h := netnstest.AddHost(t, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.7.0.1/24"}})
	netnstest.WaitLANReady(t, l, h)
	smtp := startSMTP(t, h)
	n := newNode(t, h)
	fifo := readFIFO(t, n.path("vrrp.fifo"))
	flap := n.write("flap", "0\n", 0o644)
	logf := n.path("notify.log")
	spec := n.write("spec.sh", "#!/bin/sh\necho \"spec $1\" >> "+logf+"\n", 0o755)
	// The generic script is slower than the flapping, so the queue must
	// coalesce.
	gen := n.write("generic.sh", "#!/bin/sh\nsleep 0.02\necho \"generic $*\" >> "+logf+"\n", 0o755)
	n.start(fmt.Sprintf(`global_defs {
    router_id flap1
    script_user root
    vrrp_notify_fifo %s
    notification_email {
        ops@example.com
    }
    notification_email_from vigil@flap.lab
    smtp_server 127.0.0.1 %d
}
track_file flap {
    file %s
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    version 3
    virtual_router_id 1
    priority 100
    advert_int %g
    track_file {
        flap
    }
    notify_master "%s master"
    notify_backup "%s backup"
    notify_fault "%s fault"
    notify %s
    smtp_alert
    virtual_ipaddress {
        10.7.0.100/24
    }
}
`, n.path("vrrp.fifo"), smtp.Port, flap, flapAdvert.Seconds(), spec, spec, spec, gen))
	n.waitState("VI_1", "MASTER", 10*time.Second)

	const flaps = 40
	for i := range flaps {
		for _, v := range []string{"-254", "0"} {
			writeValue(t, flap, v)
			time.Sleep(time.Duration(10+i%3*10) * time.Millisecond)
		}
	}
	n.waitState("VI_1", "MASTER", 10*time.Second)
	// Quiet: the last FIFO line is MASTER and the scripts have caught up.
	var states []string
	waitFor(t, 20*time.Second, "FIFO and scripts to settle on MASTER", func() bool {
		states = fifoStates(t, fifo.lines(), "VI_1")
		ls := readLines(t, logf)
		return len(states) > 0 && states[len(states)-1] == "MASTER" &&
			len(ls) > 0 && ls[len(ls)-1] == "generic INSTANCE VI_1 MASTER 100"
	})
	time.Sleep(500 * time.Millisecond)
	states = fifoStates(t, fifo.lines(), "VI_1")
	t.Logf("%d flaps: %d transitions on the FIFO", flaps, len(states))
	if len(states) < 10 {
		t.Fatalf("only %d transitions for %d flaps: the test did not flap the instance (%q)", len(states), flaps, states)
	}

	// The FIFO has every transition of the daemon's own timeline, in order.
	var timeline []string
	for _, tr := range n.status().Transitions {
		if tr.Kind == "instance" && tr.Name == "VI_1" {
			timeline = append(timeline, tr.To)
		}
	}
	if len(timeline) < 200 && strings.Join(timeline, " ") != strings.Join(states, " ") {
		t.Errorf("vrrp_notify_fifo states differ from the daemon's transitions:\nfifo:     %q\ntimeline: %q", states, timeline)
	}
	for i := 1; i < len(states); i++ {
		if states[i] == states[i-1] {
			t.Errorf("FIFO line %d repeats %s: %q", i, states[i], states)
		}
	}

	// Scripts: pairs (specific, generic) for the same state, a subsequence
	// of the transitions, ending with MASTER.
	ls := readLines(t, logf)
	var ran []string
	for i := 0; i+1 < len(ls); i += 2 {
		st, ok := strings.CutPrefix(ls[i], "spec ")
		f := strings.Fields(ls[i+1])
		if !ok || len(f) != 5 || f[0] != "generic" || f[1] != "INSTANCE" || f[2] != "VI_1" || f[3] != strings.ToUpper(st) {
			t.Fatalf("notify log lines %d-%d: %q, %q; want spec STATE then generic INSTANCE VI_1 STATE PRIO", i, i+1, ls[i], ls[i+1])
		}
		ran = append(ran, f[3])
	}
	if len(ls)%2 != 0 {
		t.Fatalf("notify log has a specific script without its generic one: %q", ls)
	}
	if !isSubsequence(ran, states) {
		t.Errorf("scripts ran for %q, not a subsequence of the transitions %q", ran, states)
	}
	t.Logf("scripts ran for %d of %d transitions (the rest coalesced while the slow generic script ran)", len(ran), len(states))

	// Mail: keepalived's subjects, a subsequence of the transitions.
	var mailed []string
	waitFor(t, 10*time.Second, "last mail to be MASTER", func() bool {
		mailed = nil
		for _, s := range smtp.subjects() {
			st, ok := strings.CutPrefix(s, "[flap1] VRRP Instance VI_1 - Entering ")
			st, ok2 := strings.CutSuffix(st, " state")
			if !ok || !ok2 {
				t.Fatalf("mail subject %q: want \"[flap1] VRRP Instance VI_1 - Entering STATE state\"", s)
			}
			mailed = append(mailed, st)
		}
		return len(mailed) > 0 && mailed[len(mailed)-1] == "MASTER"
	})
	if !isSubsequence(mailed, states) {
		t.Errorf("mail for %q, not a subsequence of the transitions %q", mailed, states)
	}
	sawFault := false
	for _, m := range smtp.messages() {
		if m.Header.Get("Subject") == "[flap1] VRRP Instance VI_1 - Entering FAULT state" {
			sawFault = true
			if !strings.Contains(m.Body, "=> VRRP Instance is no longer owning VRRP VIPs <=") {
				t.Errorf("FAULT mail body %q", m.Body)
			}
			if m.From != "<vigil@flap.lab>" || len(m.To) != 1 || m.To[0] != "<ops@example.com>" {
				t.Errorf("SMTP envelope: MAIL %q RCPT %q", m.From, m.To)
			}
		}
	}
	if !sawFault {
		t.Errorf("no FAULT mail among %q", mailed)
	}
	t.Logf("mail for %d transitions", len(mailed))
}

// hungNotifyTimeout is TestNotifyHungScript's --notify-timeout: long
// enough for the flaps it makes while the script hangs (0.8 s on a loaded
// 2-CPU host), short enough not to wait for the 60 s default.
const hungNotifyTimeout = 5 * time.Second

// TestNotifyHungScript: a notify_master that never returns is killed at the
// notify timeout (--notify-timeout; keepalived forks notify scripts and
// never waits; vigil runs an instance's scripts in order and bounds them).
// With --notify-grace as long as the timeout, every script runs alone:
// meanwhile the daemon keeps running, writes the FIFO at once, runs the
// other instance's scripts, and after the kill runs the hung instance's
// queued scripts in order. A hung notify_stop is killed after 1 s
// (keepalived's TIMER_HZ for STOP) and does not hold up the exit.
func TestNotifyHungScript(t *testing.T) {
	t.Parallel()
	l := netnstest.New(t, "hang")
	h := netnstest.AddHost(t, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.8.0.1/24"}})
	netnstest.WaitLANReady(t, l, h)
	n := newNode(t, h)
	fifo := readFIFO(t, n.path("vrrp.fifo"))
	logf := n.path("notify.log")
	logger := n.write("log.sh", "#!/bin/sh\necho \"$*\" >> "+logf+"\n", 0o755)
	// Hangs the first time only, so VI_1's final MASTER notify returns.
	hang := n.write("hang.sh", `#!/bin/sh
if [ -e `+n.path("hung")+` ]; then echo "VI_1 master" >> `+logf+`; exit 0; fi
touch `+n.path("hung")+`
echo $$ > `+n.path("hang.pid")+`
echo "VI_1 master (hanging)" >> `+logf+`
exec sleep 600
`, 0o755)
	stopHang := n.write("stophang.sh", "#!/bin/sh\necho $$ > "+n.path("stop.pid")+"\nexec sleep 600\n", 0o755)
	f1, f2 := n.write("f1", "0\n", 0o644), n.write("f2", "0\n", 0o644)
	inst := func(name string, vrid int, file, master, stop string) string {
		return fmt.Sprintf(`vrrp_instance %s {
    state MASTER
    interface eth0
    version 3
    virtual_router_id %d
    priority 100
    advert_int %g
    track_file {
        %s
    }
    notify_master "%s"
    notify_backup "%s %s backup"
    notify_fault "%s %s fault"%s
    virtual_ipaddress {
        10.8.0.%d/24
    }
}
`, name, vrid, flapAdvert.Seconds(), file, master, logger, name, logger, name, stop, 100+vrid)
	}
	n.start(fmt.Sprintf(`global_defs {
    router_id hang1
    script_user root
    vrrp_notify_fifo %s
}
track_file f1 {
    file %s
}
track_file f2 {
    file %s
}
`, n.path("vrrp.fifo"), f1, f2)+
		inst("VI_1", 1, "f1", hang, "\n    notify_stop "+stopHang)+
		inst("VI_2", 2, "f2", logger+" VI_2 master", ""), "--notify-timeout", hungNotifyTimeout.String(), "--notify-grace", hungNotifyTimeout.String())
	n.waitState("VI_1", "MASTER", 10*time.Second)
	n.waitState("VI_2", "MASTER", 10*time.Second)
	var hungPID int
	waitFor(t, 10*time.Second, "notify_master of VI_1 to hang", func() bool {
		b, err := os.ReadFile(n.path("hang.pid"))
		if err == nil {
			hungPID, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		return err == nil && hungPID > 0
	})
	// The script wrote its pid file when it started.
	fi, err := os.Stat(n.path("hang.pid"))
	if err != nil {
		t.Fatal(err)
	}
	hungAt := fi.ModTime()

	// VI_1 flaps while its notify_master hangs: the FIFO follows at once,
	// its scripts wait.
	fifoCount := func(state string) int {
		c := 0
		for _, s := range fifoStates(t, fifo.lines(), "VI_1") {
			if s == state {
				c++
			}
		}
		return c
	}
	writeValue(t, f1, "-254")
	n.waitState("VI_1", "FAULT", 5*time.Second)
	waitFor(t, 2*time.Second, "FIFO: VI_1 FAULT", func() bool { return fifoCount("FAULT") == 1 })
	writeValue(t, f1, "0")
	n.waitState("VI_1", "MASTER", 5*time.Second)
	waitFor(t, 2*time.Second, "FIFO: VI_1 MASTER again", func() bool { return fifoCount("MASTER") == 2 })

	// VI_2's scripts are not held up by VI_1's.
	writeValue(t, f2, "-254")
	waitFor(t, 5*time.Second, "VI_2's notify_fault to run", func() bool {
		return strings.Contains(strings.Join(readLines(t, logf), "\n"), "VI_2 fault")
	})
	writeValue(t, f2, "0")
	n.waitState("VI_2", "MASTER", 5*time.Second)
	waitFor(t, 5*time.Second, "VI_2's notify_master to run", func() bool {
		ls := readLines(t, logf)
		return len(ls) > 0 && ls[len(ls)-1] == "VI_2 master"
	})
	if got := strings.Join(readLines(t, logf), "\n"); strings.Contains(got, "VI_1 fault") {
		t.Fatalf("VI_1's notify_fault ran while its notify_master hung:\n%s", got)
	}
	flapsTook := time.Since(hungAt)
	if !processAlive(hungPID) {
		t.Fatalf("the hung notify_master (pid %d) died after %v, before the timeout", hungPID, flapsTook)
	}

	// The hung script is killed at the timeout; VI_1's queued scripts run.
	waitFor(t, hungNotifyTimeout+30*time.Second, "the hung notify_master to be killed", func() bool { return !processAlive(hungPID) })
	killedAfter := time.Since(hungAt)
	t.Logf("hung notify_master killed %v after it started (notify timeout %v; the flaps meanwhile took %v)", killedAfter.Round(100*time.Millisecond), hungNotifyTimeout, flapsTook.Round(100*time.Millisecond))
	// The timeout runs from the script's start, a little before it
	// wrote its pid file (a shell's start on a loaded host): 10 % slack.
	if killedAfter < hungNotifyTimeout-hungNotifyTimeout/10 {
		t.Errorf("killed after %v, before the %v timeout", killedAfter, hungNotifyTimeout)
	}
	waitFor(t, 10*time.Second, "VI_1's queued scripts", func() bool {
		ls := readLines(t, logf)
		return len(ls) > 0 && ls[len(ls)-1] == "VI_1 master"
	})
	var vi1 []string
	for _, l := range readLines(t, logf) {
		if strings.HasPrefix(l, "VI_1 ") {
			vi1 = append(vi1, l)
		}
	}
	want := []string{"VI_1 backup", "VI_1 master (hanging)", "VI_1 fault", "VI_1 backup", "VI_1 master"}
	if strings.Join(vi1, "|") != strings.Join(want, "|") {
		t.Errorf("VI_1's scripts ran: %q, want %q", vi1, want)
	}
	if _, err := n.trySnapshot(); err != nil {
		t.Fatalf("daemon not answering after the hung script: %v", err)
	}

	// A hung notify_stop does not hold up the exit.
	stopAt := time.Now()
	_ = n.proc.Signal(syscall.SIGTERM)
	if !n.proc.Wait(20 * time.Second) {
		t.Fatalf("vigil did not exit within 20s of SIGTERM with a hung notify_stop")
	}
	if err := n.proc.Err(); err != nil {
		t.Errorf("vigil exited with %v", err)
	}
	t.Logf("vigil exited %v after SIGTERM (handover timeout + notify_stop killed after 1 s)", time.Since(stopAt).Round(10*time.Millisecond))
	b, err := os.ReadFile(n.path("stop.pid"))
	if err != nil {
		t.Fatalf("notify_stop did not run: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || processAlive(pid) {
		t.Errorf("notify_stop (pid %d) still runs after vigil exited", pid)
	}
}

// TestNotifyHungGenericScript: a generic notify script that hangs at every
// transition (curl against an unreachable host) delays the next
// transition's notify_master by the notify grace (2 s by default), not by
// the notify timeout: keepalived forks every notify script and never waits.
// The hung scripts run on in the background until the timeout kills them.
// Before the grace, notify_master ran only when the generic script of the
// transition before had been killed at the timeout.
func TestNotifyHungGenericScript(t *testing.T) {
	t.Parallel()
	const grace, timeout = 2 * time.Second, 10 * time.Second
	l := netnstest.New(t, "hanggen")
	h := netnstest.AddHost(t, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.9.0.1/24"}})
	netnstest.WaitLANReady(t, l, h)
	n := newNode(t, h)
	fifo := readFIFO(t, n.path("vrrp.fifo"))
	logf, pidf := n.path("notify.log"), n.path("generic.pids")
	spec := n.write("spec.sh", "#!/bin/sh\necho \"$1 $(date +%s.%N)\" >> "+logf+"\n", 0o755)
	gen := n.write("generic.sh", "#!/bin/sh\necho \"$$ $3\" >> "+pidf+"\nexec sleep 600\n", 0o755)
	f := n.write("f", "0\n", 0o644)
	n.start(fmt.Sprintf(`global_defs {
    router_id hanggen1
    script_user root
    vrrp_notify_fifo %s
}
track_file f {
    file %s
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    version 3
    virtual_router_id 1
    priority 100
    advert_int %g
    track_file {
        f
    }
    notify_master "%s master"
    notify_backup "%s backup"
    notify_fault "%s fault"
    notify %s
    virtual_ipaddress {
        10.9.0.100/24
    }
}
`, n.path("vrrp.fifo"), f, flapAdvert.Seconds(), spec, spec, spec, gen), "--notify-timeout", timeout.String())
	started := time.Now()

	// ran returns when the specific script for state last ran.
	ran := func(state string) (time.Time, bool) {
		var at time.Time
		ok := false
		for _, l := range readLines(t, logf) {
			st, ts, _ := strings.Cut(l, " ")
			if st != state {
				continue
			}
			sec, err := strconv.ParseFloat(ts, 64)
			if err != nil {
				t.Fatalf("notify log line %q", l)
			}
			at, ok = time.Unix(0, int64(sec*1e9)), true
		}
		return at, ok
	}
	// transitioned returns when the FIFO last said state.
	transitioned := func(state string) time.Time {
		var at time.Time
		for _, l := range fifo.lines() {
			if f := strings.Fields(l.Line); len(f) == 4 && f[2] == state {
				at = l.At
			}
		}
		return at
	}
	hung := func() []string { return readLines(t, pidf) }
	// masterDelay waits for the next notify_master and returns how long
	// after the MASTER transition it ran.
	masterDelay := func(after time.Time) time.Duration {
		t.Helper()
		var at time.Time
		waitFor(t, timeout+10*time.Second, "notify_master", func() bool {
			var ok bool
			at, ok = ran("master")
			return ok && at.After(after)
		})
		return at.Sub(transitioned("MASTER"))
	}

	// Start: BACKUP (init), whose generic script hangs, then MASTER.
	n.waitState("VI_1", "MASTER", 10*time.Second)
	d1 := masterDelay(started)
	t.Logf("start: notify_master ran %v after the MASTER transition, behind the hung generic notify of BACKUP", d1.Round(time.Millisecond))

	// Once MASTER's generic script hangs too: FAULT, then BACKUP and
	// MASTER, each with a hung generic script.
	waitFor(t, 10*time.Second, "the generic notify of MASTER to hang", func() bool { return len(hung()) == 2 })
	time.Sleep(grace + 500*time.Millisecond)
	flapAt := time.Now()
	writeValue(t, f, "-254")
	n.waitState("VI_1", "FAULT", 5*time.Second)
	waitFor(t, grace+5*time.Second, "notify_fault", func() bool { at, ok := ran("fault"); return ok && at.After(flapAt) })
	waitFor(t, grace+5*time.Second, "the generic notify of FAULT to hang", func() bool { return len(hung()) == 3 })
	time.Sleep(grace + 500*time.Millisecond)
	writeValue(t, f, "0")
	n.waitState("VI_1", "MASTER", 5*time.Second)
	d2 := masterDelay(flapAt)
	t.Logf("flap: notify_master ran %v after the MASTER transition, behind the hung generic notify of BACKUP (grace %v, timeout %v)",
		d2.Round(time.Millisecond), grace, timeout)
	// notify_master waits for one hung script, for the grace; the slack
	// is for a loaded 2-CPU host.
	for _, d := range []time.Duration{d1, d2} {
		if d > grace+time.Second {
			t.Errorf("notify_master ran %v after its transition, behind a hung generic notify; want the %v grace at most", d, grace)
		}
	}
	var genStates []string
	for _, l := range hung() {
		genStates = append(genStates, strings.Fields(l)[1])
	}
	if got := strings.Join(genStates, " "); !strings.HasPrefix(got, "BACKUP MASTER FAULT BACKUP") {
		t.Errorf("generic notifies started for %q, want BACKUP, MASTER, FAULT, BACKUP (then MASTER)", genStates)
	}
	var pids []int
	for _, l := range hung() {
		pid, _ := strconv.Atoi(strings.Fields(l)[0])
		pids = append(pids, pid)
		if el := time.Since(started); !processAlive(pid) && el < timeout-timeout/10 {
			t.Errorf("hung generic notify %q died %v after the start, before the %v timeout", l, el, timeout)
		}
	}
	// The hung scripts are killed at the timeout, each in turn.
	waitFor(t, timeout+20*time.Second, "the hung generic notifies to be killed", func() bool {
		for _, pid := range pids {
			if processAlive(pid) {
				return false
			}
		}
		return true
	})
	if c := strings.Count(n.proc.Output(), "notify script still running"); c < len(pids) {
		t.Errorf("%d \"notify script still running\" log lines for %d hung scripts", c, len(pids))
	}
}
