package script

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/track"
)

// DefaultInterval is a vrrp_script's default interval (keepalived
// VRRP_SCRIPT_DI, 1 s).
const DefaultInterval = time.Second

// TrackOptions is one vrrp_script.
type TrackOptions struct {
	// Name is the vrrp_script's name.
	Name   string
	Script *Prepared
	// Interval between run starts; 0 means DefaultInterval.
	Interval time.Duration
	// Timeout of one run; 0 means Interval (keepalived: VRRP_SCRIPT_DT is 0
	// and system_call_script gets `timeout ? timeout : interval`).
	Timeout time.Duration
	// Rise and Fall are the counts of successes and failures needed to change
	// state (keepalived default 1).
	Rise, Fall int
	// InitFail starts the script in the failed state (init_fail).
	InitFail bool
	// Logger receives state changes and failures; nil discards.
	Logger *slog.Logger
}

// TrackStats is a snapshot of a TrackScript.
type TrackStats struct {
	Status   track.Status
	Last     string // outcome of the last run
	Runs     uint64
	Failures uint64 // runs that failed, including time-outs
	TimeOuts uint64
	Skipped  uint64 // interval ticks skipped because the previous run was still going
	// NotRun counts runs that could not start for lack of the daemon's
	// resources (Result.NotRun): no result, the status stays.
	NotRun uint64
}

// TrackScript runs one vrrp_script every interval and applies keepalived's
// rise/fall counting (track.ScriptCounter). Status changes are reported
// through the callback given to NewTrackScript, from the TrackScript's own
// goroutine; the callback must not block for long. Status and Stats are safe
// to call from any goroutine.
//
// Unlike keepalived 2.2.7, which logs "Track script ... is already running,
// expect idle - skipping run" and then starts a second instance anyway, a
// TrackScript never runs the same script twice at once: a tick that finds
// the previous run still going is skipped and counted.
type TrackScript struct {
	o        TrackOptions
	r        *Runner
	onChange func(name string, s track.Status)
	log      *slog.Logger

	mu      sync.Mutex
	counter track.ScriptCounter
	stats   TrackStats
	// notRunStreak counts the runs in a row that could not start: the
	// first is logged, then the one that starts again.
	notRunStreak uint64
}

// NewTrackScript returns a TrackScript; it starts nothing. onChange may be
// nil.
func NewTrackScript(o TrackOptions, r *Runner, onChange func(name string, s track.Status)) *TrackScript {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = o.Interval
	}
	t := &TrackScript{o: o, r: r, onChange: onChange, log: o.Logger}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.counter = track.NewScriptCounter(o.Rise, o.Fall, o.InitFail)
	t.stats.Status = t.counter.Status()
	return t
}

// Name is the vrrp_script's name.
func (t *TrackScript) Name() string { return t.o.Name }

// Status is the script's current state: Unknown until the first result
// (Down from the start with init_fail).
func (t *TrackScript) Status() track.Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counter.Status()
}

// Stats returns a snapshot of the script's counters.
func (t *TrackScript) Stats() TrackStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// Run runs the script at once (keepalived starts every vrrp_script as soon as
// it starts) and then every interval until ctx ends; a run in progress is
// killed then. Run returns nil once the last run has been reaped.
func (t *TrackScript) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		start := time.Now()
		res := t.r.Run(ctx, t.o.Script, t.o.Timeout)
		if ctx.Err() != nil {
			return nil
		}
		t.observe(res)

		next := start.Add(t.o.Interval)
		now := time.Now()
		var skipped uint64
		for !next.After(now) {
			next = next.Add(t.o.Interval)
			skipped++
		}
		if skipped > 0 {
			t.mu.Lock()
			t.stats.Skipped += skipped
			t.mu.Unlock()
			t.log.Debug("vrrp_script still running at next interval, skipping run", "script", t.o.Name, "skipped", skipped)
		}
		timer.Reset(next.Sub(now))
	}
}

func (t *TrackScript) observe(res Result) {
	if res.NotRun() {
		// The daemon is short of descriptors or memory: that says
		// nothing of what the script checks, and turning it into a
		// failure would fault instances and drop their addresses
		// because of the host, on every node alike. The status stays
		// until a run gives a result, as keepalived reschedules a script
		// it could not fork.
		t.mu.Lock()
		t.stats.NotRun++
		first := t.notRunStreak == 0
		t.notRunStreak++
		t.stats.Last = res.String()
		t.mu.Unlock()
		if first {
			t.log.Warn("vrrp_script could not start; its status stays until it runs again", "script", t.o.Name, "status", t.Status().String(), "err", res.Err)
		}
		return
	}
	t.mu.Lock()
	if n := t.notRunStreak; n > 0 {
		t.notRunStreak = 0
		t.mu.Unlock()
		t.log.Info("vrrp_script runs again", "script", t.o.Name, "not_run", n)
	} else {
		t.mu.Unlock()
	}
	ok := res.OK()
	t.mu.Lock()
	changed := t.counter.Observe(ok)
	status := t.counter.Status()
	t.stats.Status = status
	t.stats.Last = res.String()
	t.stats.Runs++
	if !ok {
		t.stats.Failures++
	}
	if res.TimedOut {
		t.stats.TimeOuts++
	}
	t.mu.Unlock()

	if res.Err != nil {
		t.log.Warn("vrrp_script could not run", "script", t.o.Name, "err", res.Err)
	}
	if !changed {
		return
	}
	// keepalived's own words ride along, for alerting that greps for them.
	if ok {
		t.log.Info("VRRP_Script succeeded", "script", t.o.Name, "keepalived", "VRRP_Script("+t.o.Name+") succeeded")
	} else {
		t.log.Info("VRRP_Script failed", "script", t.o.Name, "result", res.String(), "keepalived", "VRRP_Script("+t.o.Name+") failed")
	}
	if t.onChange != nil {
		t.onChange(t.o.Name, status)
	}
}
