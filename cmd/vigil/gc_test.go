package main

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
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
			if got := debug.SetGCPercent(-1); got != s.want {
				t.Errorf("environment %v, %s: GOGC %d, want %d", c.env, s.name, got, s.want)
			}
			debug.SetGCPercent(s.want)
		}
	}
}
