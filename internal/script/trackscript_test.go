package script

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/track"
)

type statusLog struct {
	mu  sync.Mutex
	got []track.Status
	ch  chan struct{}
}

func newStatusLog() *statusLog { return &statusLog{ch: make(chan struct{}, 100)} }

func (l *statusLog) add(_ string, s track.Status) {
	l.mu.Lock()
	l.got = append(l.got, s)
	l.mu.Unlock()
	l.ch <- struct{}{}
}

func (l *statusLog) wait(t *testing.T, n int) []track.Status {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		if len(l.got) >= n {
			got := append([]track.Status(nil), l.got...)
			l.mu.Unlock()
			return got
		}
		l.mu.Unlock()
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %d status changes, have %v", n, l.got)
		}
	}
}

// TestTrackScriptRiseFall runs a real script whose result follows a flag
// file, with rise 2 and fall 3.
func TestTrackScriptRiseFall(t *testing.T) {
	d := t.TempDir()
	flag := d + "/up"
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := writeScript(t, d+"/chk.sh", "#!/bin/sh\ntest -e "+flag+"\n", 0o755)
	p := mustPrepare(t, Command{Args: []string{s}, Cred: Self()}, Policy{})
	log := newStatusLog()
	var lines syncBuf
	ts := NewTrackScript(TrackOptions{Name: "chk", Script: p, Interval: 30 * time.Millisecond, Rise: 2, Fall: 3, Logger: slog.New(slog.NewTextHandler(&lines, nil))},
		NewRunner(RunnerOptions{}), log.add)
	if s := ts.Status(); s != track.Unknown {
		t.Fatalf("status before the first run %v, want unknown", s)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- ts.Run(ctx) }()

	// One success is enough at start.
	log.wait(t, 1)
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	runsAtRemove := ts.Stats().Runs
	log.wait(t, 2)
	if n := ts.Stats().Runs - runsAtRemove; n < 3 {
		t.Errorf("went down after %d runs since the flag went, want at least fall=3", n)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	runsAtCreate := ts.Stats().Runs
	got := log.wait(t, 3)
	if n := ts.Stats().Runs - runsAtCreate; n < 2 {
		t.Errorf("went up after %d runs since the flag came back, want at least rise=2", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if diff := cmp.Diff([]track.Status{track.Up, track.Down, track.Up}, got); diff != "" {
		t.Errorf("status changes (-want +got):\n%s", diff)
	}
	// keepalived's words, which alerting greps for, are in the lines.
	out := lines.String()
	if strings.Count(out, `keepalived="VRRP_Script(chk) succeeded"`) != 2 || strings.Count(out, `keepalived="VRRP_Script(chk) failed"`) != 1 {
		t.Errorf("log lines lack keepalived's words:\n%s", out)
	}
}

// syncBuf is a log sink for one test.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTrackScriptHang: a script that hangs times out every run, counts as a
// failure, and the runner keeps going; cancelling stops it promptly.
func TestTrackScriptHang(t *testing.T) {
	p := mustPrepare(t, Command{Args: []string{"/bin/sleep", "600"}, Cred: Self()}, Policy{})
	log := newStatusLog()
	r := NewRunner(RunnerOptions{KillGrace: 100 * time.Millisecond})
	ts := NewTrackScript(TrackOptions{Name: "hang", Script: p, Interval: 50 * time.Millisecond, Timeout: 80 * time.Millisecond}, r, log.add)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- ts.Run(ctx) }()
	if got := log.wait(t, 1); got[0] != track.Down {
		t.Fatalf("first change %v, want down", got[0])
	}
	deadline := time.Now().Add(20 * time.Second)
	for ts.Stats().TimeOuts < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("runner stopped after a hang: %+v", ts.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := ts.Stats()
	if st.Skipped == 0 {
		t.Errorf("a run outlasting the interval skipped no tick: %+v", st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if zs := zombieChildren(t); len(zs) > 0 {
		t.Errorf("zombie children: %v", zs)
	}
}

func TestTrackScriptInitFail(t *testing.T) {
	p := mustPrepare(t, Command{Args: []string{"/bin/true"}, Cred: Self()}, Policy{})
	ts := NewTrackScript(TrackOptions{Name: "x", Script: p, InitFail: true, Rise: 2}, NewRunner(RunnerOptions{}), nil)
	if s := ts.Status(); s != track.Down {
		t.Fatalf("init_fail status before any run: %v, want down", s)
	}
}

// TestTrackScriptOutOfDescriptors: when the daemon has no descriptor left
// (os/exec needs some to start a process), the script cannot start. That
// is no failure of what it checks: the status stays up (no change
// reported), the runs are counted as not run, and the script runs again
// once descriptors are back. Not parallel: it lowers this process's
// RLIMIT_NOFILE for a moment.
func TestTrackScriptOutOfDescriptors(t *testing.T) {
	p := mustPrepare(t, Command{Args: []string{"/bin/true"}, Cred: Self()}, Policy{})
	log := newStatusLog()
	var out syncBuf
	r := NewRunner(RunnerOptions{})
	ts := NewTrackScript(TrackOptions{Name: "fds", Script: p, Interval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&out, nil))}, r, log.add)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- ts.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if got := log.wait(t, 1); got[0] != track.Up {
		t.Fatalf("first change %v, want up", got[0])
	}

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// Every descriptor open now (the directory's own is closed again):
	// none is left to open.
	low := lim
	low.Cur = uint64(len(ents) - 1)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	deadline := time.Now().Add(20 * time.Second)
	for ts.Stats().NotRun < 3 {
		if time.Now().After(deadline) {
			restore()
			t.Fatalf("no run found the descriptors exhausted: %+v", ts.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	restore()
	st := ts.Stats()
	if ts.Status() != track.Up || st.Failures != 0 {
		t.Errorf("out of descriptors: status %v, %d failures; want up, none (%+v)", ts.Status(), st.Failures, st)
	}
	for runs := st.Runs; ts.Stats().Runs < runs+2; {
		if time.Now().After(deadline) {
			t.Fatalf("the script did not run again with descriptors back: %+v", ts.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.mu.Lock()
	changes := slices.Clone(log.got)
	log.mu.Unlock()
	if len(changes) != 1 {
		t.Errorf("status changes %v, want only the first up", changes)
	}
	if s := out.String(); strings.Count(s, "could not start") != 1 || !strings.Contains(s, "runs again") {
		t.Errorf("log: want one 'could not start' line and one 'runs again':\n%s", s)
	}
}
