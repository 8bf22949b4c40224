package notify

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/script"
)

func TestLines(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		// vrrp_notify.c notify_fifo: "%s \"%s\" %s %d\n".
		{"instance master", Event{Kind: Instance, Name: "VI_1", State: Master, Priority: 100}.Line(), "INSTANCE \"VI_1\" MASTER 100\n"},
		{"instance backup", Event{Kind: Instance, Name: "VI_1", State: Backup, Priority: 90}.Line(), "INSTANCE \"VI_1\" BACKUP 90\n"},
		{"instance fault", Event{Kind: Instance, Name: "VI_1", State: Fault, Priority: 90}.Line(), "INSTANCE \"VI_1\" FAULT 90\n"},
		{"instance stop", Event{Kind: Instance, Name: "VI_1", State: Stop, Priority: 90}.Line(), "INSTANCE \"VI_1\" STOP 90\n"},
		{"instance deleted", Event{Kind: Instance, Name: "VI_1", State: Deleted, Priority: 90}.Line(), "INSTANCE \"VI_1\" DELETED 90\n"},
		// notify_group_fifo passes priority 0.
		{"group", Event{Kind: Group, Name: "G1", State: Master, Priority: 100}.Line(), "GROUP \"G1\" MASTER 0\n"},
		{"rx lower pri", Event{Kind: Instance, Name: "VI_1", State: MasterRxLowerPri, Priority: 100}.Line(), "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 100\n"},
		{"priority change", Event{Kind: Instance, Name: "VI_1", State: BackupPriority, Priority: 80}.Line(), "INSTANCE \"VI_1\" BACKUP_PRIORITY 80\n"},
		// ipwrapper.c notify_fifo_vs / notify_fifo_rs.
		{"vs", VirtualServerLine(FormatService(netip.MustParseAddr("10.0.0.1"), "tcp", 80), true), "VS [10.0.0.1]:tcp:80 UP\n"},
		{"rs", RealServerLine(FormatService(netip.MustParseAddr("192.168.1.2"), "tcp", 8080), FormatService(netip.MustParseAddr("10.0.0.1"), "tcp", 80), false), "RS [192.168.1.2]:tcp:8080 [10.0.0.1]:tcp:80 DOWN\n"},
		{"vs ipv6", VirtualServerLine(FormatService(netip.MustParseAddr("fe80::1%eth0"), "udp", 53), false), "VS [fe80::1]:udp:53 DOWN\n"},
		{"vs group", VirtualServerLine(FormatGroupService("web", 443), true), "VS [web]:443 UP\n"},
		{"vs fwmark", VirtualServerLine(FormatFWMark(12), true), "VS FWM 12 UP\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// vrrp_notify.c notify_script_exec: TYPE NAME STATE PRIO.
	if diff := cmp.Diff([]string{"INSTANCE", "VI_1", "MASTER", "100"}, Event{Kind: Instance, Name: "VI_1", State: Master, Priority: 100}.Args()); diff != "" {
		t.Errorf("instance args (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"GROUP", "G1", "BACKUP", "0"}, Event{Kind: Group, Name: "G1", State: Backup, Priority: 100}.Args()); diff != "" {
		t.Errorf("group args (-want +got):\n%s", diff)
	}
}

func prep(t *testing.T, path string, args ...string) *script.Prepared {
	t.Helper()
	p, err := script.Prepare(script.Command{Args: append([]string{path}, args...), Cred: script.Self(),
		Pos: diag.Pos{File: "keepalived.conf", Line: 1}, What: "test script"}, script.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeScript(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// appendScript writes a script that sleeps a random 1..9 ms, then appends
// its arguments as one line to out.
func appendScript(t *testing.T, d, name, out string) string {
	return writeScript(t, d+"/"+name, `#!/bin/sh
n=$(od -An -N1 -tu1 /dev/urandom)
sleep 0.00$((n % 9 + 1))
echo "$*" >> `+out+`
`)
}

func startRun(t *testing.T, n *Notifier) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// readFIFO collects a FIFO's lines until stop is called.
func readFIFO(t *testing.T, path string) (lines func() []string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			mu.Lock()
			got = append(got, sc.Text())
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { f.Close(); <-done })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOrderUnderFlapping feeds 200 transitions, interleaved over four
// instances, as fast as possible. Each instance's scripts sleep a random few
// ms and append to the instance's file; every instance's file must list its
// transitions in order (specific script, then generic notify), and the FIFO
// must carry all 200 lines in call order.
func TestOrderUnderFlapping(t *testing.T) {
	d := t.TempDir()
	fifo, err := OpenFIFO(FIFOOptions{Path: d + "/notify_fifo"})
	if err != nil {
		t.Fatal(err)
	}
	defer fifo.Close()
	lines := readFIFO(t, fifo.Path())
	n := New(Options{FIFO: fifo, MaxPending: 1000})
	const instances, perInstance = 4, 50
	states := []State{Master, Backup, Fault}
	want := map[string][]string{}
	var wantFIFO []string
	for i := 0; i < instances; i++ {
		name := fmt.Sprintf("VI_%d", i)
		out := d + "/" + name + ".log"
		n.SetScripts(Instance, name, Scripts{
			Master: prep(t, appendScript(t, d, name+"-master.sh", out), "master"),
			Backup: prep(t, appendScript(t, d, name+"-backup.sh", out), "backup"),
			Fault:  prep(t, appendScript(t, d, name+"-fault.sh", out), "fault"),
			Notify: prep(t, appendScript(t, d, name+"-notify.sh", out), "notify"),
		})
	}
	stop := startRun(t, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for k := 0; k < perInstance; k++ {
		for i := 0; i < instances; i++ {
			name := fmt.Sprintf("VI_%d", i)
			st := states[(k+i)%len(states)]
			prio := uint8(50 + rng.IntN(100))
			ev := Event{Kind: Instance, Name: name, State: st, Priority: prio}
			n.Notify(ev)
			want[name] = append(want[name], strings.ToLower(st.String()), fmt.Sprintf("notify INSTANCE %s %s %d", name, st, prio))
			wantFIFO = append(wantFIFO, strings.TrimSuffix(ev.Line(), "\n"))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	for i := 0; i < instances; i++ {
		name := fmt.Sprintf("VI_%d", i)
		b, err := os.ReadFile(d + "/" + name + ".log")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[name], strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")); diff != "" {
			t.Errorf("%s script order (-want +got):\n%s", name, diff)
		}
	}
	waitFor(t, "200 FIFO lines", func() bool { return len(lines()) >= len(wantFIFO) })
	if diff := cmp.Diff(wantFIFO, lines()); diff != "" {
		t.Errorf("FIFO lines (-want +got):\n%s", diff)
	}
	st := n.Stats()
	if st.Started != 2*instances*perInstance || st.Failed != 0 || st.Coalesced != 0 {
		t.Errorf("stats %+v, want %d started, none failed or coalesced", st, 2*instances*perInstance)
	}
}

// TestCoalescing: with a small bound, a flapping instance's queue stays
// bounded, the scripts run are an in-order subsequence of the transitions,
// and the last one run is for the latest state.
func TestCoalescing(t *testing.T) {
	d := t.TempDir()
	out := d + "/log"
	slow := writeScript(t, d+"/slow.sh", "#!/bin/sh\nsleep 0.05\necho \"$*\" >> "+out+"\n")
	n := New(Options{MaxPending: 4})
	n.SetScripts(Instance, "VI_1", Scripts{Notify: prep(t, slow)})
	stop := startRun(t, n)
	var all []string
	for i := 0; i < 100; i++ {
		st := []State{Master, Backup}[i%2]
		prio := uint8(i + 1)
		n.Notify(Event{Kind: Instance, Name: "VI_1", State: st, Priority: prio})
		all = append(all, fmt.Sprintf("INSTANCE VI_1 %s %d", st, prio))
		n.mu.Lock()
		if q := n.queues["INSTANCE/VI_1"]; len(q.pending) > 4 {
			t.Errorf("queue holds %d waiting jobs, bound 4", len(q.pending))
		}
		n.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ran := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	// In-order subsequence.
	j := 0
	for _, r := range ran {
		for j < len(all) && all[j] != r {
			j++
		}
		if j == len(all) {
			t.Fatalf("ran %q is not an in-order subsequence of the transitions", ran)
		}
		j++
	}
	if ran[len(ran)-1] != all[len(all)-1] {
		t.Errorf("last script run for %q, latest transition %q", ran[len(ran)-1], all[len(all)-1])
	}
	st := n.Stats()
	if st.Coalesced == 0 || int(st.Started)+int(st.Coalesced) != 100 || len(ran) != int(st.Started) {
		t.Errorf("stats %+v with %d runs; want coalescing, started+coalesced = 100", st, len(ran))
	}
}

// TestHungNotifyScript: a notify_master that hangs is killed at the timeout,
// and the instance's next script runs.
func TestHungNotifyScript(t *testing.T) {
	d := t.TempDir()
	out := d + "/log"
	pidFile := d + "/pid"
	hang := writeScript(t, d+"/hang.sh", "#!/bin/sh\necho $$ > "+pidFile+"\nsleep 600\n")
	backup := writeScript(t, d+"/backup.sh", "#!/bin/sh\necho backup >> "+out+"\n")
	n := New(Options{Timeout: 200 * time.Millisecond, StopTimeout: 100 * time.Millisecond,
		Runner: script.NewRunner(script.RunnerOptions{KillGrace: 200 * time.Millisecond})})
	n.SetScripts(Instance, "VI_1", Scripts{Master: prep(t, hang), Backup: prep(t, backup), Stop: prep(t, hang)})
	stop := startRun(t, n)
	defer stop()
	start := time.Now()
	n.Notify(Event{Kind: Instance, Name: "VI_1", State: Master, Priority: 100})
	n.Notify(Event{Kind: Instance, Name: "VI_1", State: Backup, Priority: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "backup\n" {
		t.Fatalf("notify_backup after a hung notify_master: %q, %v", b, err)
	}
	if st := n.Stats(); st.TimedOut != 1 || st.Started != 2 {
		t.Errorf("stats %+v, want 1 timed out of 2", st)
	}
	// notify_stop gets the short stop timeout.
	stopStart := time.Now()
	n.Notify(Event{Kind: Instance, Name: "VI_1", State: Stop, Priority: 100})
	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if st := n.Stats(); st.TimedOut != 2 {
		t.Errorf("notify_stop did not time out: %+v", st)
	}
	t.Logf("master hang handled in %v, stop hang in %v", stopStart.Sub(start), time.Since(stopStart))
}

func TestDeletedReportedAsFault(t *testing.T) {
	d := t.TempDir()
	out := d + "/log"
	fault := writeScript(t, d+"/fault.sh", "#!/bin/sh\necho fault >> "+out+"\n")
	deleted := writeScript(t, d+"/deleted.sh", "#!/bin/sh\necho deleted >> "+out+"\n")
	fifo, err := OpenFIFO(FIFOOptions{Path: d + "/fifo"})
	if err != nil {
		t.Fatal(err)
	}
	defer fifo.Close()
	lines := readFIFO(t, fifo.Path())
	n := New(Options{VRRPFIFO: fifo})
	n.SetScripts(Instance, "old", Scripts{Fault: prep(t, fault), Deleted: prep(t, deleted)})
	n.SetScripts(Instance, "new", Scripts{Fault: prep(t, fault), Deleted: prep(t, deleted), NotifyDeleted: true})
	stop := startRun(t, n)
	defer stop()
	n.Notify(Event{Kind: Instance, Name: "old", State: Deleted, Priority: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	n.Notify(Event{Kind: Instance, Name: "new", State: Deleted, Priority: 100})
	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if string(b) != "fault\ndeleted\n" {
		t.Errorf("scripts ran %q, want fault then deleted", b)
	}
	waitFor(t, "2 lines", func() bool { return len(lines()) == 2 })
	if diff := cmp.Diff([]string{`INSTANCE "old" FAULT 100`, `INSTANCE "new" DELETED 100`}, lines()); diff != "" {
		t.Errorf("FIFO (-want +got):\n%s", diff)
	}
}

// TestFIFOScript: the notify_fifo_script gets the FIFO path as its last
// argument, reads the lines, and is terminated when Run ends.
func TestFIFOScript(t *testing.T) {
	d := t.TempDir()
	out := d + "/got"
	pidFile := d + "/pid"
	reader := writeScript(t, d+"/reader.sh", `#!/bin/sh
echo $$ > `+pidFile+`
while read line; do echo "$line" >> `+out+`; done < "$1"
`)
	p := prep(t, reader)
	fifo, err := OpenFIFO(FIFOOptions{Path: d + "/vrrp_fifo", Script: p})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- fifo.Run(ctx) }()
	n := New(Options{VRRPFIFO: fifo})
	n.Notify(Event{Kind: Instance, Name: "VI_1", State: Master, Priority: 100})
	n.Notify(Event{Kind: Group, Name: "G", State: Master})
	want := "INSTANCE \"VI_1\" MASTER 100\nGROUP \"G\" MASTER 0\n"
	waitFor(t, "the FIFO script to read the lines", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == want
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("FIFO Run did not return")
	}
	if err := fifo.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(d + "/vrrp_fifo"); !os.IsNotExist(err) {
		t.Errorf("created FIFO not removed at Close: %v", err)
	}
}

// TestFIFOFull: with nobody reading, writes never block; lines beyond the
// pipe's capacity are dropped and counted.
func TestFIFOFull(t *testing.T) {
	d := t.TempDir()
	fifo, err := OpenFIFO(FIFOOptions{Path: d + "/fifo"})
	if err != nil {
		t.Fatal(err)
	}
	defer fifo.Close()
	n := New(Options{FIFO: fifo})
	start := time.Now()
	for i := 0; i < 5000; i++ {
		n.Notify(Event{Kind: Instance, Name: "VI_1", State: Master, Priority: 100})
	}
	if fifo.Dropped() == 0 || fifo.Written() == 0 || fifo.Dropped()+fifo.Written() != 5000 {
		t.Errorf("written %d dropped %d, want both > 0 summing to 5000", fifo.Written(), fifo.Dropped())
	}
	t.Logf("5000 notifies with a full FIFO took %v", time.Since(start))
}

// TestFIFOFullLogBounded: a FIFO whose reader stopped, under a flood of
// events, logs its dropped lines once per 10 s, not every 100 drops.
func TestFIFOFullLogBounded(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	fifo, err := OpenFIFO(FIFOOptions{Path: t.TempDir() + "/fifo",
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer fifo.Close()
	const lines = 20000
	for range lines {
		fifo.Write("INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 100\n")
	}
	mu.Lock()
	logged := strings.Count(buf.String(), "dropping lines")
	mu.Unlock()
	if fifo.Dropped() < lines/2 {
		t.Fatalf("only %d of %d lines dropped: the FIFO did not fill, the test proves nothing", fifo.Dropped(), lines)
	}
	if logged != 1 {
		t.Errorf("%d log lines for %d dropped FIFO lines, want 1", logged, fifo.Dropped())
	}
}

func TestOpenFIFOExistingFile(t *testing.T) {
	d := t.TempDir()
	if err := os.WriteFile(d+"/f", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFIFO(FIFOOptions{Path: d + "/f"}); err == nil || !strings.Contains(err.Error(), "not a FIFO") {
		t.Errorf("OpenFIFO on a regular file: %v", err)
	}
	// An existing FIFO is reused and not removed at Close.
	f1, err := OpenFIFO(FIFOOptions{Path: d + "/p"})
	if err != nil {
		t.Fatal(err)
	}
	// Only its owner may read the events (keepalived: 0600 under its
	// umask 0177); a reader of another user would take them.
	if fi, err := os.Lstat(d + "/p"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("created FIFO: %v, %v; want mode 0600", fi.Mode(), err)
	}
	f2, err := OpenFIFO(FIFOOptions{Path: d + "/p"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(d + "/p"); err != nil {
		t.Errorf("reused FIFO removed: %v", err)
	}
	f1.Close()
}

// TestRunStopDiscards: ending Run kills the running script and discards the
// waiting ones.
func TestRunStopDiscards(t *testing.T) {
	d := t.TempDir()
	hang := writeScript(t, d+"/hang.sh", "#!/bin/sh\nsleep 600\n")
	n := New(Options{Runner: script.NewRunner(script.RunnerOptions{KillGrace: 100 * time.Millisecond})})
	n.SetScripts(Instance, "VI_1", Scripts{Master: prep(t, hang)})
	for i := 0; i < 3; i++ {
		n.Notify(Event{Kind: Instance, Name: "VI_1", State: Master})
	}
	stop := startRun(t, n)
	waitFor(t, "a script to start", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return len(n.queues["INSTANCE/VI_1"].pending) == 2
	})
	start := time.Now()
	stop()
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("Run took %v to stop", el)
	}
	if st := n.Stats(); st.Discarded != 2 || st.Started != 1 {
		t.Errorf("stats %+v, want 1 started and 2 discarded", st)
	}
}

// TestFailuresCountedPerInstance: a notify script that exits non-zero
// counts against its instance (and the group's against the group), not
// against another.
func TestFailuresCountedPerInstance(t *testing.T) {
	d := t.TempDir()
	fail := writeScript(t, d+"/fail.sh", "#!/bin/sh\nexit 3\n")
	ok := writeScript(t, d+"/ok.sh", "#!/bin/sh\nexit 0\n")
	n := New(Options{})
	n.SetScripts(Instance, "VI_1", Scripts{Master: prep(t, fail), Backup: prep(t, ok)})
	n.SetScripts(Instance, "VI_2", Scripts{Master: prep(t, ok)})
	n.SetScripts(Group, "G1", Scripts{Master: prep(t, fail)})
	stop := startRun(t, n)
	defer stop()
	for _, ev := range []Event{{Kind: Instance, Name: "VI_1", State: Master}, {Kind: Instance, Name: "VI_1", State: Backup},
		{Kind: Instance, Name: "VI_1", State: Master}, {Kind: Instance, Name: "VI_2", State: Master}, {Kind: Group, Name: "G1", State: Master}} {
		n.Notify(ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := [3]uint64{n.FailedFor(Instance, "VI_1"), n.FailedFor(Instance, "VI_2"), n.FailedFor(Group, "G1")}; got != [3]uint64{2, 0, 1} {
		t.Errorf("failures VI_1, VI_2, G1 = %v, want [2 0 1]", got)
	}
	if st := n.Stats(); st.Failed != 3 {
		t.Errorf("stats %+v, want 3 failed", st)
	}
}

// TestCoalescingLogBounded: a flood of events on one queue (forged
// lower-priority adverts with notify_master_rx_lower_pri) logs coalescing
// once per coalesceLogEvery, not once per MaxPending events.
func TestCoalescingLogBounded(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	d := t.TempDir()
	lower := writeScript(t, d+"/lower.sh", "#!/bin/sh\nexit 0\n")
	n := New(Options{Logger: log})
	n.SetScripts(Instance, "VI_1", Scripts{MasterRxLowerPri: prep(t, lower)})
	// Run is not running: nothing drains the queue, every event queues.
	const events = 10000
	for range events {
		n.Notify(Event{Kind: Instance, Name: "VI_1", State: MasterRxLowerPri, Priority: 100})
	}
	mu.Lock()
	lines := strings.Count(buf.String(), "falling behind")
	mu.Unlock()
	if lines != 1 {
		t.Errorf("%d coalescing log lines for %d events, want 1 (one per 10s)", lines, events)
	}
	if st := n.Stats(); st.Coalesced < events-uint64(DefaultMaxPending)-1 {
		t.Errorf("coalesced %d of %d events; every discarded one must still be counted", st.Coalesced, events)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestClosingCutsHungScripts: at the daemon's stop a notify_master that
// hangs (with the 60 s default timeout) is killed StopTimeout later, the
// transitions waiting behind it are dropped, and notify_stop still runs
// (keepalived forks it beside the hung script and exits about a second
// after SIGTERM). Before Closing, a hung state script made notify_stop wait
// up to its 60 s timeout, past the daemon's exit.
func TestClosingCutsHungScripts(t *testing.T) {
	d := t.TempDir()
	out := d + "/log"
	pidFile := d + "/pid"
	hang := writeScript(t, d+"/hang.sh", "#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 600\n")
	rec := writeScript(t, d+"/rec.sh", "#!/bin/sh\necho \"$1\" >> "+out+"\n")
	n := New(Options{}) // default timeouts: 60 s, 1 s for STOP
	n.SetScripts(Instance, "VI_1", Scripts{Master: prep(t, hang), Backup: prep(t, rec, "backup"), Stop: prep(t, rec, "stop")})
	stop := startRun(t, n)
	defer stop()
	n.Notify(Event{Kind: Instance, Name: "VI_1", State: Master, Priority: 100})
	waitFor(t, "notify_master to start", func() bool { b, _ := os.ReadFile(pidFile); return len(b) > 0 })
	n.Notify(Event{Kind: Instance, Name: "VI_1", State: Backup, Priority: 100}) // waits behind the hung one
	start := time.Now()
	n.Closing()
	n.Notify(Event{Kind: Instance, Name: "VI_1", State: Stop, Priority: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Drain(ctx); err != nil {
		t.Fatalf("drain after Closing: %v (a hung notify_master held notify_stop)", err)
	}
	t.Logf("drained %v after Closing", time.Since(start))
	if b, err := os.ReadFile(out); err != nil || string(b) != "stop\n" {
		t.Errorf("scripts run after Closing: %q, %v; want notify_stop only (the waiting notify_backup dropped)", b, err)
	}
	if st := n.Stats(); st.Discarded != 1 || st.Started != 2 || st.Failed != 1 {
		t.Errorf("stats %+v, want 2 started, 1 failed (the hung one, killed), 1 discarded", st)
	}
}

// pids reads the PIDs a script appended to path, one a line.
func pids(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err != nil {
			t.Fatalf("pid file %s: %q", path, b)
		}
		out = append(out, pid)
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// TestHungGenericNotifyDelaysByGrace: a generic notify script that hangs
// (curl against an unreachable host) holds the next transition's
// notify_backup and notify_master back by the grace, not by its timeout
// (keepalived forks notify scripts and never waits); the hung scripts keep
// running in the background until their timeout kills them, counted.
func TestHungGenericNotifyDelaysByGrace(t *testing.T) {
	d := t.TempDir()
	out := d + "/log"
	pidFile := d + "/pids"
	hang := writeScript(t, d+"/hang.sh", "#!/bin/sh\necho $$ >> "+pidFile+"\nexec sleep 600\n")
	rec := writeScript(t, d+"/rec.sh", "#!/bin/sh\necho \"$1\" >> "+out+"\n")
	const grace, timeout = 200 * time.Millisecond, 5 * time.Second
	var logs bytes.Buffer
	var mu sync.Mutex
	n := New(Options{Timeout: timeout, Grace: grace,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil)),
		Runner: script.NewRunner(script.RunnerOptions{KillGrace: 200 * time.Millisecond})})
	n.SetScripts(Instance, "VI_1", Scripts{Master: prep(t, rec, "master"), Backup: prep(t, rec, "backup"), Notify: prep(t, hang)})
	stop := startRun(t, n)
	defer stop()
	lines := func() string { b, _ := os.ReadFile(out); return string(b) }
	start := time.Now()
	n.Notify(Event{Kind: Instance, Name: "VI_1", State: Master, Priority: 100})
	waitFor(t, "the generic notify for MASTER to hang", func() bool { return len(pids(t, pidFile)) == 1 })
	// Next transitions while it hangs.
	var took [2]time.Duration
	for i, st := range []State{Backup, Master} {
		at := time.Now()
		n.Notify(Event{Kind: Instance, Name: "VI_1", State: st, Priority: 100})
		want := strings.ToLower(st.String()) + "\n"
		waitFor(t, "notify_"+want, func() bool { return strings.HasSuffix(lines(), want) && len(pids(t, pidFile)) == i+2 })
		took[i] = time.Since(at)
	}
	t.Logf("notify_backup ran %v after its transition, the next notify_master %v after its (grace %v, timeout %v)",
		took[0].Round(time.Millisecond), took[1].Round(time.Millisecond), grace, timeout)
	for i, el := range took {
		if el > 4*grace+time.Second {
			t.Errorf("transition %d: its specific script ran %v after it, behind a hung generic notify; want about the %v grace", i+1, el, grace)
		}
	}
	if got := lines(); got != "master\nbackup\nmaster\n" {
		t.Errorf("specific scripts ran %q, want master, backup, master", got)
	}
	hung := pids(t, pidFile)
	for _, pid := range hung {
		if !alive(pid) {
			t.Errorf("hung generic notify %d was killed before its %v timeout (%v)", pid, timeout, time.Since(start))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range hung {
		if alive(pid) {
			t.Errorf("hung generic notify %d still runs after Drain", pid)
		}
	}
	if el := time.Since(start); el < timeout {
		t.Errorf("Drain returned %v after the first script started, before the %v timeout of the hung ones", el, timeout)
	}
	if st := n.Stats(); st.Started != 6 || st.TimedOut != 3 || st.Background != 3 || st.BackgroundKilled != 0 {
		t.Errorf("stats %+v, want 6 started, 3 timed out, 3 in the background", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if c := strings.Count(logs.String(), "notify script still running"); c != 3 {
		t.Errorf("%d \"still running\" log lines, want 3:\n%s", c, logs.String())
	}
}

// TestBackgroundBounded: a generic notify that hangs at every transition
// leaves at most MaxPending scripts of its queue running in the background;
// the oldest are killed.
func TestBackgroundBounded(t *testing.T) {
	d := t.TempDir()
	out := d + "/log"
	pidFile := d + "/pids"
	hang := writeScript(t, d+"/hang.sh", "#!/bin/sh\necho $$ >> "+pidFile+"\nexec sleep 600\n")
	rec := writeScript(t, d+"/rec.sh", "#!/bin/sh\necho \"$1\" >> "+out+"\n")
	n := New(Options{Timeout: time.Minute, Grace: 50 * time.Millisecond, MaxPending: 2,
		Runner: script.NewRunner(script.RunnerOptions{KillGrace: 100 * time.Millisecond})})
	n.SetScripts(Instance, "VI_1", Scripts{Master: prep(t, rec, "master"), Notify: prep(t, hang)})
	stop := startRun(t, n)
	const transitions = 5
	for i := range transitions {
		n.Notify(Event{Kind: Instance, Name: "VI_1", State: Master, Priority: 100})
		waitFor(t, "the generic notify to start", func() bool { return len(pids(t, pidFile)) == i+1 })
	}
	waitFor(t, "the oldest to be killed", func() bool { return n.Stats().BackgroundKilled == 3 && n.Stats().Started == 2*transitions-2 })
	var running []int
	for _, pid := range pids(t, pidFile) {
		if alive(pid) {
			running = append(running, pid)
		}
	}
	if all := pids(t, pidFile); len(running) != 2 || running[0] != all[3] || running[1] != all[4] {
		t.Errorf("generic notifies still running %v of %v, want the newest 2", running, all)
	}
	stop()
	if st := n.Stats(); st.Started != 2*transitions || st.Background != transitions || st.BackgroundKilled != 3 {
		t.Errorf("stats %+v, want %d started, %d in the background, 3 killed", st, 2*transitions, transitions)
	}
}
