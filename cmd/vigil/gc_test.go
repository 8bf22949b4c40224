package main

import (
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// TestTuneGC: the daemon's GOGC unless the environment sets GOGC or
// GOMEMLIMIT, whose settings the runtime keeps.
func TestTuneGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	for _, c := range []struct {
		env  map[string]string
		want int // GOGC in force after
	}{
		{nil, daemonGCPercent},
		{map[string]string{"GOGC": "100"}, 100},
		{map[string]string{"GOMEMLIMIT": "64MiB"}, 100},
	} {
		debug.SetGCPercent(100)
		tuneGC(func(k string) string { return c.env[k] }, slog.New(slog.DiscardHandler))
		if got := debug.SetGCPercent(100); got != c.want {
			t.Errorf("environment %v: GOGC %d, want %d", c.env, got, c.want)
		}
	}
}

// TestSampleHeap: heap profile sampling stays on only when the profiler is
// served.
func TestSampleHeap(t *testing.T) {
	old := runtime.MemProfileRate
	defer func() { runtime.MemProfileRate = old }()
	for _, profiling := range []bool{true, false} {
		runtime.MemProfileRate = 512 * 1024
		sampleHeap(profiling)
		if on := runtime.MemProfileRate != 0; on != profiling {
			t.Errorf("sampleHeap(%v): MemProfileRate %d", profiling, runtime.MemProfileRate)
		}
	}
}

// TestReadingAndSteadyGC: a daemon whose GOGC tuneGC set reads its
// configuration at daemonGCPercent and runs at steadyGCPercent; one whose
// environment set it keeps the environment's throughout.
func TestReadingAndSteadyGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	for _, c := range []struct {
		env              map[string]string
		reading, running int
	}{
		{nil, daemonGCPercent, steadyGCPercent},
		{map[string]string{"GOGC": "100"}, 100, 100},
	} {
		debug.SetGCPercent(100)
		gc := tuneGC(func(k string) string { return c.env[k] }, slog.New(slog.DiscardHandler))
		steps := []struct {
			name string
			f    func(int)
			want int
		}{
			{"start", releaseConfigMemory, c.running},
			{"reload reads", readingConfig, c.reading},
			{"reload applied", releaseConfigMemory, c.running},
		}
		for _, s := range steps {
			s.f(gc)
			if got := debug.SetGCPercent(s.want); got != s.want {
				t.Errorf("environment %v, %s: GOGC %d, want %d", c.env, s.name, got, s.want)
			}
		}
	}
}

// TestQuietRelease: the release runs once the snapshots have stopped for
// quiet, not while they keep coming, and not again within gap (in a
// synctest bubble: the clock is the bubble's).
func TestQuietRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const quiet, gap = 2 * time.Second, 30 * time.Second
		var released []time.Time
		q := newQuietRelease(quiet, gap, gap, nil, func() { released = append(released, time.Now()) })
		defer q.stop()
		start := time.Now()
		// A snapshot every second for 10 s: no release meanwhile.
		for range 10 {
			q.busy()
			time.Sleep(time.Second)
		}
		if len(released) != 0 {
			t.Fatalf("released at %v while the snapshots came", released[0].Sub(start))
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if len(released) != 1 || released[0].Sub(start) != 11*time.Second {
			t.Fatalf("releases %v, want one 2 s after the last snapshot (11 s)", released)
		}
		// Another snapshot: its release waits for the gap after the first.
		q.busy()
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(released) != 2 || released[1].Sub(released[0]) != gap {
			t.Errorf("second release %v after the first, want %v", released[len(released)-1].Sub(released[0]), gap)
		}
		var nilQ *quietRelease
		nilQ.busy()
		nilQ.stop()
	})
}

// TestTransitionsArmQuietRelease: VRRP transitions arm the release as
// snapshots do; the hooks set before still run. A mass transition of 1,000
// instances over a second releases once, 2 s after its last transition;
// a later transition releases again eventGap after the first release.
func TestTransitionsArmQuietRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var released []time.Time
		q := newQuietRelease(snapshotQuiet, releaseGap, eventGap, nil, func() { released = append(released, time.Now()) })
		defer q.stop()
		prev := 0
		h := engine.Hooks{InstanceTransition: func(string, vrrp.State, vrrp.State, int, string) { prev++ }}
		hookQuietRelease(&h, q)
		var last time.Time
		for range 1000 {
			last = time.Now()
			h.InstanceTransition("VI_1", vrrp.StateBackup, vrrp.StateMaster, 100, "master down")
			time.Sleep(time.Millisecond)
		}
		synctest.Wait()
		if len(released) != 0 || prev != 1000 {
			t.Fatalf("during the transitions: %d releases, %d calls to the hook before, want 0 and 1000", len(released), prev)
		}
		time.Sleep(snapshotQuiet)
		synctest.Wait()
		if len(released) != 1 || released[0].Sub(last) != snapshotQuiet {
			t.Fatalf("releases %v, want one %v after the last transition (%v)", released, snapshotQuiet, last)
		}
		h.GroupTransition("G", vrrp.StateBackup, vrrp.StateMaster, "member became master")
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(released) != 2 || released[1].Sub(released[0]) != eventGap {
			t.Errorf("releases %v, want a second one %v after the first", released, eventGap)
		}
	})
}

// TestAnnouncementsArmQuietRelease: the garp_master_delay round that
// follows a takeover by 5 s, after the release of the takeover's garbage,
// arms another release 2 s after it (not releaseGap after the first), and
// a snapshot meanwhile does not put that one off to releaseGap. Without an
// event, a snapshot after a release waits for releaseGap.
func TestAnnouncementsArmQuietRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var released []time.Duration
		start := time.Now()
		q := newQuietRelease(snapshotQuiet, releaseGap, eventGap, nil, func() { released = append(released, time.Since(start)) })
		defer q.stop()
		announced := 0
		h := engine.Hooks{Announced: func(n int) { announced += n }}
		hookQuietRelease(&h, q)
		h.InstanceTransition("VI_1", vrrp.StateBackup, vrrp.StateMaster, 100, "master down")
		h.Announced(5)
		time.Sleep(5 * time.Second)
		h.Announced(5) // garp_master_delay
		time.Sleep(time.Second)
		q.busy() // a snapshot
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if want := []time.Duration{2 * time.Second, 8 * time.Second}; !slices.Equal(released, want) || announced != 10 {
			t.Fatalf("releases at %v (hook before: %d packets), want %v (10)", released, announced, want)
		}
		q.busy()
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(released) != 3 || released[2]-released[1] != releaseGap {
			t.Errorf("releases at %v, want a third %v after the second", released, releaseGap)
		}
	})
}

// TestQuietReleaseWakes: the first snapshot or transition after a release
// wakes the daemon's collector to the reading's target once (not at every
// one of a mass transition), and the release sets the steady target back.
func TestQuietReleaseWakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log []string
		q := newQuietRelease(snapshotQuiet, releaseGap, eventGap, func() { log = append(log, "wake") }, func() { log = append(log, "release") })
		defer q.stop()
		for range 1000 {
			q.busy()
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		q.busy()
		q.busy()
		time.Sleep(time.Minute)
		synctest.Wait()
		if want := []string{"wake", "release", "wake", "release"}; !slices.Equal(log, want) {
			t.Errorf("got %v, want %v", log, want)
		}
	})
	old := debug.SetGCPercent(7)
	defer debug.SetGCPercent(old)
	busyGC(daemonGCPercent)()
	if got := debug.SetGCPercent(7); got != daemonGCPercent {
		t.Errorf("busy: GOGC %d, want %d", got, daemonGCPercent)
	}
	quietGC(daemonGCPercent, func() {})()
	if got := debug.SetGCPercent(7); got != steadyGCPercent {
		t.Errorf("quiet: GOGC %d, want %d", got, steadyGCPercent)
	}
	busyGC(0)() // GOGC from the environment: left alone
	if got := debug.SetGCPercent(old); got != 7 {
		t.Errorf("busy with GOGC from the environment: GOGC %d, want 7", got)
	}
}

// TestReleaseMemorySetsBack: releaseMemory leaves GOGC and the memory limit
// as it found them, a limit the environment set included.
func TestReleaseMemorySetsBack(t *testing.T) {
	oldGC := debug.SetGCPercent(steadyGCPercent)
	defer debug.SetGCPercent(oldGC)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(oldLimit)
	for _, limit := range []int64{math.MaxInt64, 64 << 20} {
		debug.SetMemoryLimit(limit)
		releaseMemory()
		if got := debug.SetGCPercent(steadyGCPercent); got != steadyGCPercent {
			t.Errorf("limit %d: GOGC %d after the release, want %d", limit, got, steadyGCPercent)
		}
		if got := debug.SetMemoryLimit(-1); got != limit {
			t.Errorf("limit %d: %d after the release", limit, got)
		}
	}
}

// TestReleaseMemoryNoHugePages: the release's collection does not turn on
// the runtime's huge pages for its tables (which GOGC off alone does: the
// heap goal goes past 1 GiB), so no mapping of the process is marked for
// them (VmFlags "hg" in /proc/self/smaps). The runtime never turns them
// off again, so this holds for every release this test process ran.
func TestReleaseMemoryNoHugePages(t *testing.T) {
	releaseMemory()
	if n := hugePageMappings(t); n > 0 {
		t.Errorf("%d mappings marked for huge pages after the release", n)
	}
}

func hugePageMappings(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmFlags:") && slices.Contains(strings.Fields(l), "hg") {
			n++
		}
	}
	return n
}
