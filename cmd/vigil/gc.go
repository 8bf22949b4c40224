package main

import (
	"log/slog"
	"runtime"
	"runtime/debug"
)

// releaseConfigMemory collects what reading and translating the
// configuration left behind, at start and after each reload, and returns
// those pages to the kernel at once rather than over the minutes the
// runtime's background scavenger takes: a daemon that allocates little once
// running would otherwise keep that peak resident (vigil-bench's scale mode
// at 1,000 instances: the master's anonymous memory 19.5 -> 14.1 MB).
func releaseConfigMemory() { debug.FreeOSMemory() }

// daemonGCPercent is the daemon's GOGC unless the environment sets GOGC or
// GOMEMLIMIT. The daemon allocates little once running (its adverts and
// timers: about 0.6 MB/s at 1,000 instances) and holds a few MB, so the
// heap the collector lets grow between cycles is most of its resident
// memory. Measured with 1,000 VRRP instances (vigil-bench's scale mode, on
// a 2-core VM): GOGC 100 keeps 14.0 / 12.8 MB anonymous (master / backup)
// with 0.03 / 0.04 % of a core in GC; 50 keeps 11.8 / 10.6 MB for 0.05 /
// 0.08 %; 25 keeps 10.6 / 9.5 MB for 0.09 / 0.17 % and more assists on
// the engine's goroutine in a mass failover's burst of allocation.
const daemonGCPercent = 50

// tuneGC sets the collector's target for the daemon, leaving it as the
// environment says when GOGC or GOMEMLIMIT is set there (the runtime has
// read them already). It returns the GOGC set, 0 if none.
func tuneGC(getenv func(string) string, log *slog.Logger) int {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return 0
	}
	debug.SetGCPercent(daemonGCPercent)
	log.Debug("garbage collector", "gogc", daemonGCPercent)
	return daemonGCPercent
}

// sampleHeap keeps the runtime's heap profile sampling only when
// --debug-listen can serve the profile (profiling true); otherwise it turns
// it off before the configuration is read, since nothing could read the
// profile. Each sampled allocation site costs a bucket off the heap, and
// the first one maps the profiler's hash table (1.4 MB of address space,
// runtime/metrics' /memory/classes/profiling/buckets, a page of it
// resident for each bucket that lands there): reading a configuration of
// 1,000 VRRP instances sampled some hundred sites.
func sampleHeap(profiling bool) {
	if !profiling {
		runtime.MemProfileRate = 0
	}
}
