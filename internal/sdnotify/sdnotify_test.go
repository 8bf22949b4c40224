package sdnotify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func listen(t *testing.T, addr string) *Listener {
	t.Helper()
	l, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func next(t *testing.T, l *Listener) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := l.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify") }},
		{"abstract", func(t *testing.T) string {
			return fmt.Sprintf("@vigil-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, tc.addr(t))
			n := FromEnv(func(k string) string {
				if k == "NOTIFY_SOCKET" {
					return l.Addr()
				}
				return ""
			})
			n.Monotonic = func() (time.Duration, error) { return 1234567 * time.Microsecond, nil }
			steps := []struct {
				send func() error
				want map[string]string
			}{
				{func() error { return n.Ready("2 instances, 1 MASTER") }, map[string]string{"READY": "1", "STATUS": "2 instances, 1 MASTER"}},
				{func() error { return n.Reloading() }, map[string]string{"RELOADING": "1", "MONOTONIC_USEC": "1234567"}},
				{func() error { return n.Ready("") }, map[string]string{"READY": "1"}},
				{func() error { return n.Status("line one\nline two") }, map[string]string{"STATUS": "line one line two"}},
				{func() error { return n.Ping() }, map[string]string{"WATCHDOG": "1"}},
				{func() error { return n.Stopping() }, map[string]string{"STOPPING": "1"}},
			}
			for i, s := range steps {
				if err := s.send(); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if diff := cmp.Diff(s.want, next(t, l)); diff != "" {
					t.Errorf("step %d (-want +got)\n%s", i, diff)
				}
			}
		})
	}
}

func TestReloadingUsesTheMonotonicClock(t *testing.T) {
	l := listen(t, filepath.Join(t.TempDir(), "notify"))
	n := New(l.Addr())
	before, err := Monotonic()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	m := next(t, l)
	after, _ := Monotonic()
	if err := CheckReloading(m, after); err != nil {
		t.Fatal(err)
	}
	var us int64
	fmt.Sscan(m["MONOTONIC_USEC"], &us)
	if got := time.Duration(us) * time.Microsecond; got < before.Truncate(time.Microsecond) {
		t.Fatalf("MONOTONIC_USEC %v is before the clock read before sending (%v): not CLOCK_MONOTONIC", got, before)
	}
}

func TestDisabledSendsNothingAndSucceeds(t *testing.T) {
	n := FromEnv(func(string) string { return "" })
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	for _, err := range []error{n.Ready("x"), n.Reloading(), n.Stopping(), n.Status("x"), n.Ping()} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Watchdog(context.Background(), time.Second, func(context.Context) bool { return true }, nil); err != nil {
		t.Fatal(err)
	}
}

func TestBadAddressesAndAssignments(t *testing.T) {
	if err := New("relative/path").Ready(""); err == nil {
		t.Error("relative NOTIFY_SOCKET accepted")
	}
	if err := New(filepath.Join(t.TempDir(), "nobody-listens")).Ready(""); err == nil {
		t.Error("send to a missing socket succeeded")
	}
	l := listen(t, filepath.Join(t.TempDir(), "notify"))
	if err := New(l.Addr()).Send("READY=1\nSTOPPING=1"); err == nil {
		t.Error("assignment with a newline accepted")
	}
	if err := New(l.Addr()).Send("READY"); err == nil {
		t.Error("assignment without '=' accepted")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    time.Duration
		wantErr bool
	}{
		{"unset", nil, 0, false},
		{"set", map[string]string{"WATCHDOG_USEC": "30000000"}, 30 * time.Second, false},
		{"for us", map[string]string{"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"}, 2 * time.Second, false},
		{"for another process", map[string]string{"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "43"}, 0, false},
		{"garbage", map[string]string{"WATCHDOG_USEC": "soon"}, 0, true},
		{"zero", map[string]string{"WATCHDOG_USEC": "0"}, 0, true},
		{"bad pid", map[string]string{"WATCHDOG_USEC": "1", "WATCHDOG_PID": "-1"}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WatchdogInterval(func(k string) string { return tc.env[k] }, 42)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestWatchdogPingsOnlyWhileHealthy runs the loop with a 200 ms interval
// (pings every 100 ms), healthy for a while, then unhealthy, then healthy
// again. It counts pings per phase rather than timing them: the machine is
// shared and slow.
func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	l := listen(t, filepath.Join(t.TempDir(), "notify"))
	n := New(l.Addr())
	var healthy atomic.Bool
	var checks atomic.Int64
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.Watchdog(ctx, 200*time.Millisecond, func(context.Context) bool {
			checks.Add(1)
			return healthy.Load()
		}, func(err error) { t.Errorf("report: %v", err) })
	}()
	// Healthy: pings arrive.
	for range 3 {
		if m := next(t, l); m["WATCHDOG"] != "1" {
			t.Fatalf("got %v, want WATCHDOG=1", m)
		}
	}
	// Unhealthy: the loop keeps asking but sends nothing.
	healthy.Store(false)
	// Once health has answered false twice, a ping decided before the flip
	// has been sent (pings are sent on the loop before the next check):
	// drain it, then expect silence.
	c0 := checks.Load()
	for checks.Load() < c0+2 {
		time.Sleep(10 * time.Millisecond)
	}
	for {
		dctx, dc := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := l.Next(dctx)
		dc()
		if err != nil {
			break
		}
	}
	c0 = checks.Load()
	quiet, qc := context.WithTimeout(context.Background(), 600*time.Millisecond)
	m, err := l.Next(quiet)
	qc()
	if err == nil {
		t.Fatalf("pinged while unhealthy: %v", m)
	}
	if checks.Load() == c0 {
		t.Fatal("health was not asked while unhealthy: the loop stopped instead of waiting")
	}
	// Healthy again: pings resume.
	healthy.Store(true)
	if m := next(t, l); m["WATCHDOG"] != "1" {
		t.Fatalf("got %v after recovery, want WATCHDOG=1", m)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watchdog did not return after cancel")
	}
}
