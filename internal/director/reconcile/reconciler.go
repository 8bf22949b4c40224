// Package reconcile keeps a data plane (an lb.Backend) at the desired state
// the director computes: the loop, its timers and its retry backoff live
// here, so that package lb stays the model and its backends.
package reconcile

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/lb"
)

// Options configure a Reconciler. Zero values take the defaults.
type Options struct {
	// Resync is how often the kernel is re-read and repaired (default
	// 10s): a table or service deleted by hand comes back within it.
	Resync time.Duration
	// MinBackoff and MaxBackoff bound the retry delay after a failed apply
	// (defaults 200ms and 30s; the delay doubles per failure).
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Stats are the Reconciler's counters.
type Stats struct {
	Applies   uint64 // successful Apply calls
	Errors    uint64 // failed Observe or Apply calls
	Resyncs   uint64 // periodic re-reads of the kernel
	Repairs   uint64 // re-reads that found the kernel differing from the desired state
	LastError string // empty after a success
	LastApply time.Time
}

// Reconciler keeps a Backend at the latest desired State: it applies each new
// State as it is Set, and every Resync interval it observes the kernel and
// repairs any drift. A failing backend is retried with exponential backoff,
// never in a busy loop.
//
// Concurrency: Set and Stats may be called from any goroutine; Run is called
// once and owns the Backend until it returns. The caller closes the Backend
// after Run has returned.
type Reconciler struct {
	b    lb.Backend
	opts Options
	log  *slog.Logger
	kick chan struct{}

	mu      sync.Mutex
	want    lb.State
	hasWant bool
	gen     uint64 // bumped by Set
	stats   Stats
}

// New returns a Reconciler for b; it starts nothing.
func New(b lb.Backend, opts Options) *Reconciler {
	if opts.Resync <= 0 {
		opts.Resync = 10 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{b: b, opts: opts, log: log, kick: make(chan struct{}, 1)}
}

// Set records the desired state; Run applies it soon. The State must not be
// modified afterwards.
func (r *Reconciler) Set(want lb.State) {
	r.mu.Lock()
	r.want, r.hasWant = want, true
	r.gen++
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the counters.
func (r *Reconciler) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Run applies desired states until ctx is done; it returns nil then.
func (r *Reconciler) Run(ctx context.Context) error {
	timer := time.NewTimer(r.opts.Resync)
	defer timer.Stop()
	backoff := time.Duration(0) // 0: healthy
	var appliedGen uint64
	pending := false
	for {
		resync := false
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
			if backoff > 0 {
				pending = true // retried when the backoff timer fires
				continue
			}
		case <-timer.C:
			resync = backoff == 0
		}
		r.mu.Lock()
		want, has, gen := r.want, r.hasWant, r.gen
		r.mu.Unlock()
		if !has {
			timer.Reset(r.opts.Resync)
			continue
		}
		err := r.once(ctx, want, resync || backoff > 0)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if backoff == 0 {
				backoff = r.opts.MinBackoff
			} else {
				backoff = min(2*backoff, r.opts.MaxBackoff)
			}
			r.log.Warn("lb: apply failed", "backend", r.b.Name(), "err", err, "retry_in", backoff)
			timer.Reset(backoff)
			continue
		}
		if backoff > 0 {
			r.log.Info("lb: apply recovered", "backend", r.b.Name())
		}
		backoff = 0
		appliedGen = gen
		r.mu.Lock()
		newer := r.gen != appliedGen
		r.mu.Unlock()
		if pending || newer {
			pending = false
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
		timer.Reset(r.opts.Resync)
	}
}

// once applies want; with observe it first re-reads the kernel so that drift
// is repaired (the Backend diffs against what it observed last).
func (r *Reconciler) once(ctx context.Context, want lb.State, observe bool) error {
	if observe {
		have, err := r.b.Observe(ctx)
		r.mu.Lock()
		r.stats.Resyncs++
		if err != nil {
			r.stats.Errors++
			r.stats.LastError = err.Error()
			r.mu.Unlock()
			return err
		}
		if p, ok := r.b.(lb.Projector); ok {
			want = p.Project(want)
		}
		drift := !have.Equal(want)
		if drift {
			r.stats.Repairs++
		}
		r.mu.Unlock()
		if !drift {
			return nil
		}
		r.log.Info("lb: kernel differs from the desired state, repairing", "backend", r.b.Name(), "changes", len(lb.Diff(have, want)))
	}
	err := r.b.Apply(ctx, want)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.stats.Errors++
		r.stats.LastError = err.Error()
		return err
	}
	r.stats.Applies++
	r.stats.LastError = ""
	r.stats.LastApply = time.Now()
	return nil
}
