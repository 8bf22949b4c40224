package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
)

// A read that hangs is abandoned at the deadline, a second reload is
// refused while it still reads, and reloads work again once it ends.
func TestReloaderDeadlineAndRefusal(t *testing.T) {
	r := &reloader{deadline: 100 * time.Millisecond}
	release := make(chan struct{})
	hung := func(func()) (loaded, diag.Diagnostics) { <-release; return loaded{}, nil }
	applied := 0
	apply := func(context.Context, loaded) ([]string, []string, error) { applied++; return []string{"x"}, nil, nil }

	_, err := within(t, func() (any, error) { return r.run(context.Background(), hung, apply) })
	if err == nil || !strings.Contains(err.Error(), "reload abandoned") || !strings.Contains(err.Error(), "the running configuration stays") {
		t.Fatalf("hung read: %v", err)
	}
	_, err = within(t, func() (any, error) { return r.run(context.Background(), hung, apply) })
	if err == nil || !strings.Contains(err.Error(), "another reload is still reading") {
		t.Fatalf("second reload: %v", err)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for r.reading.Load() != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	res, err := r.run(context.Background(), func(func()) (loaded, diag.Diagnostics) { return loaded{}, nil }, apply)
	if err != nil || !res.Applied || applied != 1 {
		t.Fatalf("reload after the hung read ended: %+v %v (applied %d)", res, err, applied)
	}
	if applied != 1 {
		t.Fatalf("applied %d times", applied)
	}
}

// A daemon that stops (its context ends) does not wait for a read.
func TestReloaderStopsWithItsContext(t *testing.T) {
	r := &reloader{deadline: time.Hour}
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := within(t, func() (any, error) {
		return r.run(ctx, func(func()) (loaded, diag.Diagnostics) { <-release; return loaded{}, nil },
			func(context.Context, loaded) ([]string, []string, error) { return nil, nil, errors.New("applied") })
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// An empty file is refused; a file with nothing to run is applied with a
// warning.
func TestReloadEmptyFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keepalived.conf")
	r := &reloader{}
	applied := false
	apply := func(context.Context, loaded) ([]string, []string, error) { applied = true; return nil, nil, nil }
	read := func(large func()) (loaded, diag.Diagnostics) {
		return loadConfig(runFlags{file: file, configID: "n1", vrrpOnly: true}, large)
	}

	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := r.run(context.Background(), read, apply)
	if err != nil || res.Applied || applied || len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0], "error: the file is empty") {
		t.Fatalf("empty file: %+v %v", res, err)
	}
	if err := os.WriteFile(file, []byte("global_defs {\n router_id a\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = r.run(context.Background(), read, apply)
	if err != nil || !res.Applied || !applied || len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0], "warning: no vrrp_instance and no virtual_server") {
		t.Fatalf("nothing to run: %+v %v", res, err)
	}
}

// within runs f and fails the test when it does not return in 10 s.
func within(t *testing.T, f func() (any, error)) (any, error) {
	t.Helper()
	type out struct {
		v   any
		err error
	}
	c := make(chan out, 1)
	go func() { v, err := f(); c <- out{v, err} }()
	select {
	case o := <-c:
		return o.v, o.err
	case <-time.After(10 * time.Second):
		t.Fatal("does not return")
		return nil, nil
	}
}

// A reload's read keeps the runtime's settings while it is small; once
// it is large (config.LargeRead bytes, here from a small main file that
// includes a large one) it raises GOMAXPROCS and GOGC for the rest of the
// read, and the reload restores both.
func TestReloadTunesLargeReads(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" || os.Getenv("GOGC") != "" {
		t.Skip("GOMAXPROCS or GOGC set in the environment: readTuning leaves them")
	}
	procs, gc := runtime.GOMAXPROCS(0), debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	dir := t.TempDir()
	mainFile := filepath.Join(dir, "keepalived.conf")
	big := filepath.Join(dir, "big.conf")
	filler := "global_defs {\n router_id a\n}\n"
	if err := os.WriteFile(mainFile, []byte(filler+"include "+big+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	line := "# " + strings.Repeat("x", 61) + "\n"
	apply := func(context.Context, loaded) ([]string, []string, error) { return nil, nil, nil }
	for _, tc := range []struct {
		name  string
		size  int
		tuned bool
	}{
		{"small include", 1 << 10, false},
		{"large include", config.LargeRead, true},
	} {
		if err := os.WriteFile(big, []byte(strings.Repeat(line, tc.size/len(line)+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		var duringProcs, duringGC int
		var r reloader
		_, err := r.run(context.Background(), func(large func()) (loaded, diag.Diagnostics) {
			l, ds := loadConfig(runFlags{file: mainFile, configID: "n1", vrrpOnly: true}, large)
			duringProcs = runtime.GOMAXPROCS(0)
			duringGC = debug.SetGCPercent(-1)
			debug.SetGCPercent(duringGC)
			return l, ds
		}, apply)
		if err != nil {
			t.Fatal(err)
		}
		// The read's goroutine restores the settings after handing
		// its result over, and holds tuning until it has.
		r.tuning.Lock()
		r.tuning.Unlock()
		afterProcs := runtime.GOMAXPROCS(0)
		afterGC := debug.SetGCPercent(gc)
		wantProcs, wantGC := procs, gc
		if tc.tuned {
			wantProcs, wantGC = max(procs, 8), max(gc, 400)
		}
		if duringProcs != wantProcs || duringGC != wantGC {
			t.Errorf("%s: while reading GOMAXPROCS %d, GOGC %d; want %d and %d", tc.name, duringProcs, duringGC, wantProcs, wantGC)
		}
		if afterProcs != procs || afterGC != gc {
			t.Errorf("%s: after the reload GOMAXPROCS %d, GOGC %d; want %d and %d", tc.name, afterProcs, afterGC, procs, gc)
		}
	}
}

// A reload that changes nothing logs changes=0, the count vigil reload
// prints: the engine's "= N vrrp_instance(s) unchanged" line is no change.
func TestReloadLogCountsChanges(t *testing.T) {
	var logged bytes.Buffer
	r := &reloader{log: slog.New(slog.NewTextHandler(&logged, nil))}
	for _, c := range []struct {
		changes []string
		want    int
	}{
		{[]string{"= 2 vrrp_instance(s) unchanged"}, 0},
		{[]string{"~ vrrp_instance VI_1: priority 100 -> 150", "= 1 vrrp_instance(s) unchanged"}, 1},
	} {
		logged.Reset()
		res, err := r.run(context.Background(), func(func()) (loaded, diag.Diagnostics) { return loaded{}, nil },
			func(context.Context, loaded) ([]string, []string, error) { return c.changes, nil, nil })
		if err != nil || !res.Applied {
			t.Fatalf("%q: %+v %v", c.changes, res, err)
		}
		if res.ChangeCount() != c.want || !strings.Contains(logged.String(), fmt.Sprintf("msg=\"configuration reloaded\" changes=%d ", c.want)) {
			t.Errorf("%q: ChangeCount %d, log %q; want %d", c.changes, res.ChangeCount(), logged.String(), c.want)
		}
	}
}

// reloadFailure is what status says of a reload that did not apply.
func TestReloadFailure(t *testing.T) {
	for _, tc := range []struct {
		res  api.ReloadResult
		err  error
		want string
	}{
		{api.ReloadResult{Diagnostics: []string{"a.conf:1:1: warning: w", "a.conf:2:1: error: e1"}}, nil, "a.conf:2:1: error: e1"},
		{api.ReloadResult{Diagnostics: []string{"a.conf:2:1: error: e1", "a.conf:3:1: error: e2", "a.conf:4:1: error: e3"}}, nil, "a.conf:2:1: error: e1 (and 2 more errors)"},
		{api.ReloadResult{Diagnostics: []string{"a.conf:2:1: error: e1"}}, errors.New("reload: starting the virtual servers: x"), "reload: starting the virtual servers: x"},
	} {
		if got := reloadFailure(tc.res, tc.err); got != tc.want {
			t.Errorf("%+v %v: %q, want %q", tc.res, tc.err, got, tc.want)
		}
	}
}
