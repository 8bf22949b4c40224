package main

import (
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// releaseConfigMemory collects what reading and translating the
// configuration left behind, at start and after each reload, and returns
// those pages to the kernel at once rather than over the minutes the
// runtime's background scavenger takes: a daemon that allocates little once
// running would otherwise keep that peak resident (vigil-bench's scale mode
// at 1,000 instances: the master's anonymous memory 19.5 -> 14.1 MB). With
// gcPercent, the GOGC tuneGC set (0: none), the collector's target goes
// from the reading's to the running daemon's (steadyGCPercent).
func releaseConfigMemory(gcPercent int) {
	if gcPercent != 0 {
		debug.SetGCPercent(steadyGCPercent)
	}
	releaseMemory()
}

// releaseMemory collects twice, then returns every free page to the
// kernel: what a sync.Pool holds (encoding/json's buffers, the size of the
// largest document encoded) survives one collection.
//
// The runtime's background scavenger must not run meanwhile. It walks the
// heap down from a position it moves up only once per collection, and
// when it finds nothing to return below that position in a 4 MB chunk it
// marks the whole chunk as having nothing to return, also the pages freed
// above the position since. The forced release (debug.FreeOSMemory)
// skips marked chunks like the background one, so those pages stay
// resident until something else is freed in the chunk: a 1,000-instance
// master (vigil-bench's scale mode) ended its steady window with 1.3-3 MB
// of free heap in one such chunk in about half the runs, the gap between
// its high and low runs (found by listing, after each forced release, the
// chunks holding free pages that were not returned, with a runtime built
// with that listing added).
//
// The scavenger works only while the heap keeps more than its goal, which
// GOGC off (no goal) lifts. GOGC off alone would also set the heap goal
// above 1 GiB, past which the runtime turns on transparent huge pages for
// its own tables, and a 32 MB table (the heap arena index) then takes a
// whole 2 MB huge page: a memory limit below 1 GiB keeps the goal under
// that. Both are set back at once; the limit only if none was set (GOMEMLIMIT).
//
// Chunks the background scavenger marked before the release stay marked
// until a page in them is freed, and the release's collection may free
// none there (a 1,000-instance master kept 3.7 MB so in 1 of 4 runs). When
// free pages remain after the forced release, refill takes every free page
// of the heap, those included, and lets them go: freed, their chunks are
// unmarked, and a second forced release returns them.
func releaseMemory() {
	if limit := debug.SetMemoryLimit(-1); limit == math.MaxInt64 {
		debug.SetMemoryLimit(releaseMemoryLimit)
		defer debug.SetMemoryLimit(limit)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	debug.FreeOSMemory()
	if free, released := heapPages(); free > stuckFreeMin {
		refill(free + released)
		debug.FreeOSMemory()
	}
}

// stuckFreeMin is how much free heap the forced release may leave before
// releaseMemory refills it: a P's page cache (64 pages, 512 KiB), which no
// release reaches, and what other goroutines freed meanwhile.
const stuckFreeMin = 1 << 20

// heapPages returns the heap's free memory still resident and the memory
// returned to the kernel, in bytes (runtime/metrics).
func heapPages() (free, released uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// refill allocates n bytes as page-sized objects, each a span of one page
// that the page allocator takes from the lowest free page up, and drops
// them. The runtime zeroes pages it has used before, returned or not, so
// for a moment the whole free heap is resident again (about 17 MB at 1,000
// instances), until the second forced release; it runs only when the
// first left over stuckFreeMin behind.
func refill(n uint64) {
	const page = 8 << 10 // the runtime's page, and a size class of one object per span
	hold := make([][]byte, n/page+1)
	for i := range hold {
		hold[i] = make([]byte, page)
	}
	runtime.KeepAlive(hold)
}

// releaseMemoryLimit is the memory limit while releaseMemory runs: below
// the 1 GiB heap goal past which the runtime backs its tables with huge
// pages, and far above the heap of any configuration vigil reads (at
// 1,000 VRRP instances, 5 MB).
const releaseMemoryLimit = 768 << 20

// readingConfig sets the reading's GOGC back before a reload reads the
// configuration (gcPercent as for releaseConfigMemory): its garbage is
// collected as at start, not at the running daemon's tighter target.
func readingConfig(gcPercent int) {
	if gcPercent != 0 {
		debug.SetGCPercent(gcPercent)
	}
}

// daemonGCPercent is the daemon's GOGC while it reads its configuration,
// unless the environment sets GOGC or GOMEMLIMIT; steadyGCPercent once it
// runs. Reading allocates much and briefly, from a heap that starts
// nearly empty, where a tight target would run a collection for every few
// hundred KB allocated; the running daemon allocates
// little (at 1,000 instances about 150 KB/s on a master, 25 KB/s on a
// backup) and holds a few MB, so the heap the collector lets grow between
// cycles is much of its resident memory. Measured with 1,000 VRRP
// instances on a 2-core VM (master / backup, anonymous memory and the
// collector's share of a core in steady state): GOGC 50 keeps 10.7-11.0 /
// 9.0-9.2 MB for 0.02-0.04 / 0.01 %; 20 keeps 9.9-10.0 / 8.6-8.9 MB for
// 0.03-0.06 / 0.01 %; 10 keeps no less (10.1 / 8.7 MB: the rest is the
// runtime's, the goroutines' stacks and the live heap). A mass failover
// of the 1,000 instances allocates 19 MB on the backup: its collections
// take 38 ms of CPU at 20 (24 ms at 50), 20 ms of them assists on the
// allocating goroutines (3 ms at 50).
const (
	daemonGCPercent = 50
	steadyGCPercent = 20
)

// tuneGC sets the collector's target for the daemon, leaving it as the
// environment says when GOGC or GOMEMLIMIT is set there (the runtime has
// read them already). It returns the GOGC set, 0 if none.
func tuneGC(getenv func(string) string, log *slog.Logger) int {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return 0
	}
	debug.SetGCPercent(daemonGCPercent)
	log.Debug("garbage collector", "gogc", daemonGCPercent, "running", steadyGCPercent)
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

// A snapshot of the daemon (vigil status, a metrics scrape, the status
// page, a dump) and its encoding are the running daemon's largest
// allocations: about 2 MB at 1,000 VRRP instances. A collection that runs
// meanwhile counts them as live and sets the heap's next target from
// them, and at the few KB a second the daemon allocates otherwise that
// target, and the pages under it, stay for minutes (vigil-bench's scale
// mode, which polls vigil status at 20 Hz until the pair is steady: the
// backup's heap target 7.3 MB for 3.4 MB live, 12.3 MB anonymous memory).
// So once snapshotQuiet has passed without a snapshot, the daemon
// collects and returns the free pages (releaseMemory), as after reading
// the configuration, at most once per releaseGap: the two collections
// at 1,000 instances cost about 10 ms of CPU, so a monitoring loop that
// polls every 2 to 10 s costs the daemon at most 0.1 % of a core more.
// A longer gap lets the pages of the polls that follow a release stay
// resident for that long: vigil-bench polls until the pair is steady,
// and with a 30 s gap, when those polls outlasted the release after the
// takeover, the master ended its steady window with 2.1-2.6 MB of heap
// pages free but not returned (runtime/metrics' heap/free; 3 runs of 3);
// with 10 s, 0 in 2 runs of 3 (3.4 MB in the third: pages freed after
// the last release, which no event armed).
//
// A mass transition leaves the same kind of heap behind (a backup taking
// over 1,000 instances allocates about 19 MB: addresses, gratuitous ARP
// schedules, notifications, log lines), while the steady state after it
// allocates nothing on the VRRP turns: VRRP transitions arm the same
// release (hookQuietRelease), which runs once snapshotQuiet has passed
// without a transition nor a snapshot. So do the gratuitous ARP rounds
// that follow a takeover (garp_master_delay, 5 s later by default, and
// garp_master_refresh): at 1,000 instances the delayed round allocates
// about 1 MB, and when it came after the release the master kept its
// garbage resident (vigil-bench's scale mode at 1,000 instances: the
// master's anonymous memory 11.2-13.5 MB at the end of its steady window,
// 9.4-9.6 MB when the round arms the release). Such events are rare and
// leave MBs behind, so their release waits eventGap after the last
// release rather than releaseGap; eventGap bounds what a flapping
// instance costs.
const (
	snapshotQuiet = 2 * time.Second
	releaseGap    = 10 * time.Second
	eventGap      = 5 * time.Second
)

// quietRelease calls release once the snapshots and events (transitions,
// announcements) stop (see snapshotQuiet), and wake (if not nil) at the
// first of them after a release. A nil *quietRelease does nothing.
//
// Concurrency: safe for concurrent use.
type quietRelease struct {
	quiet, gap, eventGap time.Duration
	wake, release        func()

	mu    sync.Mutex
	t     *time.Timer
	last  time.Time // when release last ran
	awake bool      // wake ran since the last release
	event bool      // an event came since the last release
}

func newQuietRelease(quiet, gap, eventGap time.Duration, wake, release func()) *quietRelease {
	return &quietRelease{quiet: quiet, gap: gap, eventGap: eventGap, wake: wake, release: release}
}

// busyGC and quietGC are a quietRelease's wake and release for the daemon
// (gcPercent as for releaseConfigMemory): while snapshots or transitions
// come the collector runs at the reading's target, and once they stop it
// collects, returns the free pages and goes back to the steady target. A
// mass takeover allocates much in a short time (19 MB for 1,000
// instances): at the steady target the collector charges most of its work
// to the goroutines taking over, as assists (20 ms of CPU against 3 ms at
// 50), and the last VIPs come later.
func busyGC(gcPercent int) func() {
	return func() { readingConfig(gcPercent) }
}

func quietGC(gcPercent int, after func()) func() {
	return func() {
		releaseConfigMemory(gcPercent)
		after()
	}
}

// busy notes a snapshot: it (re)arms the release for quiet from now, or
// for gap after the last release if that is later (eventGap if an event
// came since).
func (q *quietRelease) busy() { q.arm(false) }

// eventful notes a transition or an announcement round: as busy, with
// eventGap in place of gap until the release.
func (q *quietRelease) eventful() { q.arm(true) }

func (q *quietRelease) arm(event bool) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.awake {
		q.awake = true
		if q.wake != nil {
			q.wake()
		}
	}
	q.event = q.event || event
	gap := q.gap
	if q.event {
		gap = q.eventGap
	}
	d := q.quiet
	if !q.last.IsZero() {
		d = max(d, time.Until(q.last.Add(gap)))
	}
	if q.t == nil {
		q.t = time.AfterFunc(d, q.fire)
		return
	}
	q.t.Reset(d)
}

func (q *quietRelease) fire() {
	q.mu.Lock()
	q.last = time.Now()
	q.awake, q.event = false, false
	q.mu.Unlock()
	q.release()
}

// stop disarms the release.
func (q *quietRelease) stop() {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.t != nil {
		q.t.Stop()
	}
}

// hookQuietRelease arms q at every instance and sync group transition and
// every round of gratuitous ARPs or NAs, beside the hooks already set: the
// release waits until a mass transition and the rounds after it are over.
func hookQuietRelease(h *engine.Hooks, q *quietRelease) {
	if q == nil {
		return
	}
	prevI := h.InstanceTransition
	h.InstanceTransition = func(name string, from, to vrrp.State, prio int, reason string) {
		if prevI != nil {
			prevI(name, from, to, prio, reason)
		}
		q.eventful()
	}
	prevG := h.GroupTransition
	h.GroupTransition = func(name string, from, to vrrp.State, reason string) {
		if prevG != nil {
			prevG(name, from, to, reason)
		}
		q.eventful()
	}
	prevA := h.Announced
	h.Announced = func(n int) {
		if prevA != nil {
			prevA(n)
		}
		q.eventful()
	}
}
