package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// RealServer is one real server as the Runner checks it.
type RealServer struct {
	// ID names the real server in events and snapshots; the caller's key
	// (for example "10.0.0.1:80/10.0.0.2:80").
	ID string
	// Weight is the configured weight.
	Weight int
	// Checkers are its health checks; a real server is up only when all
	// of them are up (one with none is always up).
	Checkers []Checker
}

// Checker is one scheduled health check.
type Checker struct {
	// Name identifies the checker in events and snapshots, for example
	// "TCP_CHECK 10.0.0.2:80".
	Name string
	// Check runs one attempt; a check.Stepper (HTTP_GET, SSL_GET) runs
	// the step Health asks for.
	Check check.Checker
	// Policy holds the timing knobs; Policy.Steps is taken from the
	// Stepper when there is one.
	Policy check.Policy
	// Resume, when set, is the state this checker had in a previous Runner
	// (Runner.Healths), kept across a reload as keepalived's
	// migrate_checkers() keeps an unchanged checker's state; the new Policy
	// applies. nil starts from NewHealth.
	Resume *check.Health
}

// Event reports a change of a real server's state or effective weight.
type Event struct {
	Server string
	At     time.Time
	check.ServerTransition
	// CheckerName names the checker whose result caused the change.
	CheckerName string
	// FirstVerdict marks the event of a checker's first verdict that
	// changed neither the real server's state nor its weight: a failure
	// (an alpha checker failing), or a success that leaves the server up
	// (a checker new after a reload confirming the state it started in). keepalived 2.2.7 acts on it too (ipwrapper.c
	// update_svr_checker_state: a first failure runs notify_down), and a
	// caller that kept its own view of the real server across a reload
	// learns the state the new checkers see.
	FirstVerdict bool
}

// CheckDone describes one finished attempt (for metrics and benchmarks).
type CheckDone struct {
	Server  string
	Checker int
	// Scheduled is when the attempt was due, Dispatched when the Runner
	// took it from its timetable, Started when it began (after waiting
	// for a free worker).
	Scheduled, Dispatched, Started time.Time
	Result                         check.Result
}

// Options configure a Runner.
type Options struct {
	Servers []RealServer
	// Concurrency bounds the worker goroutines, hence the attempts in
	// flight that need one; 0 means 1024. Plain HTTP_GET attempts (no
	// TLS) need none: they wait in the Runner's poller, unbounded but for
	// each checker having at most one attempt in flight.
	Concurrency int
	// Pollers is the number of goroutines (and threads) running the plain
	// HTTP_GET attempts; 0 means 4, or GOMAXPROCS if more. A poller spends
	// most of its time in system calls (on loopback, connect, write and
	// close also run the server's side of TCP), so several of them share
	// that work, and on a busy machine each thread gets its own share of
	// the processors.
	Pollers int
	// OnEvent receives real-server transitions, one at a time, in the
	// order they happen; it must not block for long.
	OnEvent func(Event)
	// OnCheck, when set, is called after every attempt, possibly from
	// several goroutines at once.
	OnCheck func(CheckDone)
	// Rand returns numbers in [0, 1] for the warmup delays; nil draws them
	// from math/rand/v2.
	Rand func() float64
	// Logger logs transitions; nil logs nothing.
	Logger *slog.Logger
}

// Runner schedules many checkers, each on its own Health's timetable, with
// a bounded number of attempts in flight. One goroutine keeps the
// timetable (a heap); workers, started on demand up to Concurrency and kept
// until Run returns, run the attempts and apply their results. Plain
// HTTP_GET attempts go to pollers instead (see poller), one goroutine per
// processor driving all of their sockets.
//
// Concurrency: Run may be called once; Snapshot may be called at any time
// from any goroutine.
type Runner struct {
	opt     Options
	servers []*server

	mu      sync.Mutex // guards due, the heap and each entry's due
	due     keyHeap[*entry]
	epoch   time.Time // origin of the entries' heap keys
	wake    chan struct{}
	started atomic.Bool
	evMu    sync.Mutex

	workers, inflight, peak atomic.Int64
	log                     *slog.Logger
}

type server struct {
	id       string
	mu       sync.Mutex // guards agg and every entry's state below
	agg      check.Server
	checkers []*entry
}

type entry struct {
	srv  *server
	idx  int
	name string
	c    check.Checker
	step check.Stepper
	// get is c when it is a plain HTTP_GET, which a poller runs: the
	// seq'th checker's goes to poller seq % len(pollers).
	get *HTTP
	seq int

	// guarded by srv.mu
	health  check.Health
	last    check.Result
	lastAt  time.Time
	lastDur time.Duration // how long the last attempt took
	fails   int           // consecutive failed attempts
	// lastNoVerdict: the last attempt could not be made (check.Result
	// NoVerdict); the streak is logged once.
	lastNoVerdict bool
	running       bool

	// guarded by Runner.mu
	at      time.Time
	key     int64 // at as nanoseconds since Runner.epoch: the heap's order
	heapIdx int
}

func (e *entry) heapPos() *int { return &e.heapIdx }

type job struct {
	e                 *entry
	sched, dispatched time.Time
	step              int
}

// NewRunner checks the options and builds the runner; it starts nothing.
func NewRunner(o Options) (*Runner, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 1024
	}
	if o.Pollers <= 0 {
		o.Pollers = max(defaultPollers, runtime.GOMAXPROCS(0))
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	r := &Runner{opt: o, wake: make(chan struct{}, 1), log: o.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	seqs := 0
	for _, rs := range o.Servers {
		if seen[rs.ID] {
			return nil, fmt.Errorf("probe: real server %q listed twice", rs.ID)
		}
		seen[rs.ID] = true
		s := &server{id: rs.ID}
		ups := make([]bool, len(rs.Checkers))
		for i, c := range rs.Checkers {
			if c.Check == nil {
				return nil, fmt.Errorf("probe: real server %s: checker %d (%s) has no Check", rs.ID, i, c.Name)
			}
			p := c.Policy
			st, _ := c.Check.(check.Stepper)
			if st != nil {
				p.Steps = st.Steps()
			}
			if err := p.Validate(); err != nil {
				return nil, fmt.Errorf("probe: real server %s: checker %s: %w", rs.ID, c.Name, err)
			}
			e := &entry{srv: s, idx: i, name: c.Name, c: c.Check, step: st, health: check.NewHealth(p)}
			if h, ok := c.Check.(*HTTP); ok && !h.SSL {
				e.get, e.seq = h, seqs
				seqs++
			}
			if c.Resume != nil {
				e.health = *c.Resume
				e.health.Reconfigure(p)
			}
			ups[i] = e.health.Up()
			s.checkers = append(s.checkers, e)
		}
		s.agg = check.NewServer(rs.Weight, ups)
		for i, e := range s.checkers {
			if e.health.Weight() != nil || e.health.WeightDelta() != nil {
				s.agg.Apply(i, check.Transition{Up: e.health.Up(), Weight: e.health.Weight(), WeightDelta: e.health.WeightDelta()})
			}
		}
		r.servers = append(r.servers, s)
	}
	return r, nil
}

// Run schedules the checks until ctx is done, then cancels the attempts in
// flight and returns once every goroutine it started has exited. It returns
// nil after a cancellation.
func (r *Runner) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("probe: Runner.Run called twice")
	}
	now := time.Now()
	r.mu.Lock()
	r.epoch = now
	for _, s := range r.servers {
		s.mu.Lock()
		for _, e := range s.checkers {
			r.schedule(e, e.health.Start(now, r.opt.Rand()))
		}
		s.mu.Unlock()
	}
	r.mu.Unlock()

	jobs := make(chan job)
	var wg sync.WaitGroup
	var pollers []*poller
	if r.wantsPoller() {
		for range r.opt.Pollers {
			pl, err := newPoller(r.finish)
			if err != nil {
				// The workers can run these attempts too.
				r.log.Warn("checkers: no poller, HTTP_GET attempts use worker goroutines", "err", err)
				break
			}
			pollers = append(pollers, pl)
			wg.Add(1)
			go func() {
				defer wg.Done()
				pl.run(ctx)
			}()
		}
	}
	workers := 0
	// busy counts the jobs handed out and not finished; a new worker
	// starts only when every worker is busy, so the pool grows to the
	// concurrency the checks really need.
	var busy atomic.Int64
	work := func(ctx context.Context, j job) {
		r.attempt(ctx, j)
		busy.Add(-1)
	}
	dispatch := func(j job) bool {
		n := busy.Add(1)
		select {
		case jobs <- j:
			return true
		default:
		}
		if n > int64(workers) && workers < r.opt.Concurrency {
			workers++
			r.workers.Store(int64(workers))
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A context of its own: the checkers' context.AfterFunc
				// (closing a socket on cancel) then registers here, not
				// in ctx, which a thousand workers would contend for.
				wctx, cancel := context.WithCancel(ctx)
				defer cancel()
				work(wctx, j)
				for j := range jobs {
					work(wctx, j)
				}
			}()
			return true
		}
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			busy.Add(-1)
			return false
		}
	}

	// The attempts for the pollers are handed over once a round, each
	// poller woken at most once.
	pending := make([][]pollTask, len(pollers))
	flush := func() {
		for k, ts := range pending {
			if len(ts) > 0 {
				pollers[k].submit(ts...)
				clear(ts)
				pending[k] = ts[:0]
			}
		}
	}
	// A token bucket spreads bursts: attempts start at most at
	// spreadFactor times the rate the checkers can ask for at most. A
	// burst (thousands of checks finishing together after a stall, each
	// due again delay_loop later) would otherwise come back every
	// delay_loop, as dense as the pollers could start it, and wait in
	// their queues each time; spread once, it stays spread.
	rate := r.maxRate() * spreadFactor
	burst := max(minBurst, rate*dispatchQuantum.Seconds()*5)
	tokens, refilled := burst, time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		r.mu.Lock()
		round := time.Now()
		now := round
		tokens = min(burst, tokens+round.Sub(refilled).Seconds()*rate)
		refilled = round
		for len(r.due) > 0 && tokens >= 1 && r.due[0].key <= now.Sub(r.epoch).Nanoseconds() {
			tokens--
			e := r.due.pop()
			r.mu.Unlock()
			e.srv.mu.Lock()
			e.running = true
			j := job{e: e, sched: e.at, dispatched: now, step: e.health.Step()}
			e.srv.mu.Unlock()
			if e.get != nil && len(pollers) > 0 {
				r.begin()
				k := e.seq % len(pollers)
				pending[k] = append(pending[k], pollTask{h: e.get, step: j.step, j: j})
			} else {
				flush() // dispatch may wait for a worker
				if !dispatch(j) {
					r.mu.Lock()
					break
				}
			}
			r.mu.Lock()
			now = time.Now()
		}
		wait := time.Hour
		if len(r.due) > 0 {
			// Rounds at most every dispatchQuantum: at thousands of
			// checks a second, a round per check would wake this
			// goroutine and a poller for each one.
			wait = max(r.due[0].v.at.Sub(now), round.Add(dispatchQuantum).Sub(now))
			if tokens < 1 {
				wait = max(wait, time.Duration((1-tokens)/rate*float64(time.Second)))
			}
		}
		r.mu.Unlock()
		flush()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-r.wake:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return nil
}

// spreadFactor and minBurst shape the token bucket that spreads bursts of
// attempts: at most spreadFactor times maxRate a second, minBurst at once
// at least (five quanta's worth when more).
const (
	spreadFactor = 1.5
	minBurst     = 16
)

// maxRate returns the most attempts a second the checkers can ask for:
// each at most once per delay_loop or delay_before_retry, whichever is
// shorter, and at least 1,000.
func (r *Runner) maxRate() float64 {
	rate := 0.0
	for _, s := range r.servers {
		for _, e := range s.checkers {
			p := e.health.Policy()
			d := p.DelayLoop
			if p.DelayBeforeRetry > 0 && p.DelayBeforeRetry < d {
				d = p.DelayBeforeRetry
			}
			if d <= 0 {
				return math.Inf(1)
			}
			rate += float64(time.Second) / float64(d)
		}
	}
	return max(rate, 1000)
}

// defaultPollers is the smallest default Options.Pollers.
var defaultPollers = 4

// dispatchQuantum is the shortest time between two rounds of the
// timetable: an attempt starts at most this late for the sake of batching.
const dispatchQuantum = time.Millisecond

// wantsPoller reports whether a checker is a plain HTTP_GET.
func (r *Runner) wantsPoller() bool {
	for _, s := range r.servers {
		for _, e := range s.checkers {
			if e.get != nil {
				return true
			}
		}
	}
	return false
}

// attempt runs one check and applies its result.
func (r *Runner) attempt(ctx context.Context, j job) {
	e := j.e
	r.begin()
	started := time.Now()
	var res check.Result
	if e.step != nil {
		res = e.step.CheckStep(ctx, j.step)
	} else {
		res = e.c.Check(ctx)
	}
	if ctx.Err() != nil {
		r.inflight.Add(-1)
		return // shutting down: the result says nothing about the server
	}
	r.finish(j, started, res)
}

// begin counts an attempt in flight.
func (r *Runner) begin() {
	n := r.inflight.Add(1)
	for p := r.peak.Load(); n > p && !r.peak.CompareAndSwap(p, n); p = r.peak.Load() {
	}
}

// finish applies the result of the attempt of j that began at started and
// puts its checker back in the timetable.
func (r *Runner) finish(j job, started time.Time, res check.Result) {
	r.inflight.Add(-1)
	e := j.e
	end := time.Now()
	s := e.srv
	s.mu.Lock()
	ran := e.health.HasRun()
	next, tr := e.health.Observe(end, res)
	verdict1 := !ran && e.health.HasRun()
	e.last, e.lastAt, e.running = res, end, false
	e.lastDur = end.Sub(started)
	noVerdict := res.NoVerdict && !e.lastNoVerdict
	e.lastNoVerdict = res.NoVerdict
	switch {
	case res.OK:
		e.fails = 0
	case res.NoVerdict:
		// The daemon's shortage, not the server's: no failure, the
		// state stays (Health); said once per streak.
	default:
		e.fails++
	}
	var ev *Event
	if tr != nil {
		if st, changed := s.agg.Apply(e.idx, *tr); changed {
			ev = &Event{Server: s.id, At: end, ServerTransition: st, CheckerName: e.name}
		}
	}
	// A first success while another checker still holds the server down
	// tells nothing (keepalived: no notification either).
	if ev == nil && verdict1 && (!e.health.Up() || s.agg.Up()) {
		st := check.ServerTransition{WasUp: s.agg.Up(), Up: s.agg.Up(), WasWeight: s.agg.Weight(), Weight: s.agg.Weight(), Checker: e.idx, Reason: res.Reason}
		ev = &Event{Server: s.id, At: end, ServerTransition: st, CheckerName: e.name, FirstVerdict: true}
	}
	if tr != nil && tr.StateChanged() {
		r.log.Info("checker "+upDown(tr.Up), "server", s.id, "checker", e.name, "reason", tr.Reason)
	}
	s.mu.Unlock()
	if noVerdict {
		r.log.Warn("checker could not run (daemon out of resources); the server keeps its state", "server", s.id, "checker", e.name, "reason", res.Reason)
	}
	if ev != nil {
		switch {
		case ev.StateChanged():
			r.log.Info("real server "+upDown(ev.Up), "server", s.id, "weight", ev.Weight, "reason", ev.Reason)
		case ev.FirstVerdict:
		default:
			r.log.Info("real server weight changed", "server", s.id, "from", ev.WasWeight, "to", ev.Weight, "reason", ev.Reason)
		}
		if r.opt.OnEvent != nil {
			r.evMu.Lock()
			r.opt.OnEvent(*ev)
			r.evMu.Unlock()
		}
	}
	if r.opt.OnCheck != nil {
		r.opt.OnCheck(CheckDone{Server: s.id, Checker: e.idx, Scheduled: j.sched, Dispatched: j.dispatched, Started: started, Result: res})
	}
	r.mu.Lock()
	r.schedule(e, next)
	first := r.due[0].v == e
	r.mu.Unlock()
	if first {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// Healths returns every checker's state by real server ID, in checker
// order, to resume them in the Runner that replaces this one after a reload
// (Checker.Resume).
func (r *Runner) Healths() map[string][]check.Health {
	out := make(map[string][]check.Health, len(r.servers))
	for _, s := range r.servers {
		s.mu.Lock()
		hs := make([]check.Health, len(s.checkers))
		for i, e := range s.checkers {
			hs[i] = e.health
		}
		s.mu.Unlock()
		out[s.id] = hs
	}
	return out
}

// Stats describes the Runner's load.
type Stats struct {
	// Workers is the number of worker goroutines started so far.
	Workers int
	// InFlight is the number of attempts running; PeakInFlight the most
	// seen at once.
	InFlight, PeakInFlight int
}

// Stats returns the Runner's load figures.
func (r *Runner) Stats() Stats {
	return Stats{Workers: int(r.workers.Load()), InFlight: int(r.inflight.Load()), PeakInFlight: int(r.peak.Load())}
}

// ServerStatus is a real server in a Snapshot.
type ServerStatus struct {
	ID                       string
	Up                       bool
	Weight, ConfiguredWeight int
	Checkers                 []CheckerStatus
}

// CheckerStatus is a checker in a Snapshot.
type CheckerStatus struct {
	Name string
	Kind check.Kind
	Up   bool
	// HasRun reports whether a verdict was reached since start.
	HasRun bool
	// Retries counts the retries in progress; Step is the url due next.
	Retries, Step int
	// Failures counts the consecutive failed attempts (0 after a success);
	// unlike Retries it keeps counting once the checker is down.
	Failures int
	// Running reports an attempt in flight.
	Running bool
	// Last is the last result, finished at LastAt (zero before the first).
	Last   check.Result
	LastAt time.Time
	// Duration is how long the last attempt took.
	Duration time.Duration
	// Next is when the next attempt is due (zero while one runs).
	Next time.Time
}

// Snapshot returns the state of every real server and checker, in the
// order of Options.Servers.
func (r *Runner) Snapshot() []ServerStatus {
	out := make([]ServerStatus, 0, len(r.servers))
	for _, s := range r.servers {
		s.mu.Lock()
		ss := ServerStatus{ID: s.id, Up: s.agg.Up(), Weight: s.agg.Weight(), ConfiguredWeight: s.agg.ConfiguredWeight()}
		for _, e := range s.checkers {
			ss.Checkers = append(ss.Checkers, CheckerStatus{
				Name: e.name, Kind: e.health.Policy().Kind, Up: e.health.Up(), HasRun: e.health.HasRun(),
				Retries: e.health.Retries(), Step: e.health.Step(), Failures: e.fails, Running: e.running,
				Last: e.last, LastAt: e.lastAt, Duration: e.lastDur,
			})
		}
		s.mu.Unlock()
		r.mu.Lock()
		for i, e := range s.checkers {
			if e.heapIdx >= 0 && e.heapIdx < len(r.due) && r.due[e.heapIdx].v == e {
				ss.Checkers[i].Next = e.at
			}
		}
		r.mu.Unlock()
		out = append(out, ss)
	}
	return out
}

// schedule puts e in the timetable at at; r.mu is held.
func (r *Runner) schedule(e *entry, at time.Time) {
	e.at, e.key = at, at.Sub(r.epoch).Nanoseconds()
	r.due.push(e.key, e)
}
