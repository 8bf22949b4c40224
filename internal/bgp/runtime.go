package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/sched"
	"github.com/vigil-ha/vigil/internal/status"
)

// Config is the whole BGP configuration of a daemon.
type Config struct {
	Speaker SpeakerConfig
	Policy  Policy
}

// Runtime runs the planner against the speaker: state changes come in
// from the VRRP engine and the director (without blocking them), the
// planner decides, the speaker (in the vigil-bgp helper process)
// announces.
//
// Concurrency: Run owns the planner; InstanceState, QuorumState,
// Reconfigure, SetSched, Shutdown and Status are safe for concurrent use;
// UseHelper is called before Run.
type Runtime struct {
	cfg Config
	log *slog.Logger
	sp  *Speaker
	now func() time.Time

	mu      sync.Mutex   // guards pending, reconf, sp, cfg, helper, pol and the status fields
	helper  string       // the vigil-bgp helper; "" finds it at start
	pol     sched.Policy // the helper's scheduling
	pending []Event
	reconf  []reconfig
	wake    chan struct{}
	routes  []Route
	counts  struct{ announce, withdraw uint64 }
	lastErr string
	drained chan struct{} // closed when a Stop has withdrawn everything
	stopped bool
	done    chan struct{} // closed when Run returns
}

// New prepares a runtime; Run starts it.
func New(cfg Config, log *slog.Logger) *Runtime {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runtime{cfg: cfg, log: log, now: time.Now, wake: make(chan struct{}, 1), drained: make(chan struct{}), done: make(chan struct{})}
	r.sp = NewSpeaker(cfg.Speaker, "", sched.Policy{}, log)
	r.routes = NewPlanner(cfg.Policy).Routes()
	return r
}

// UseHelper sets the vigil-bgp helper to run (see FindHelper; "" finds
// it at start) and its scheduling policy. It is called before Run.
func (r *Runtime) UseHelper(path string, pol sched.Policy) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.helper, r.pol = path, pol
	r.sp = NewSpeaker(r.cfg.Speaker, path, pol, r.log)
}

// SetSched gives the running helper, and those started later, the
// daemon's new scheduling policy (a reload).
func (r *Runtime) SetSched(ctx context.Context, pol sched.Policy) error {
	r.mu.Lock()
	r.pol = pol
	sp := r.sp
	r.mu.Unlock()
	return sp.SetSched(ctx, pol)
}

// InstanceState tells the runtime a VRRP instance's new state. It never
// blocks.
func (r *Runtime) InstanceState(name, state string) { r.post(InstanceState{Name: name, State: state}) }

// QuorumState tells the runtime whether a virtual server (by its
// lb.VirtualServer ID) has its quorum. It never blocks.
func (r *Runtime) QuorumState(vs string, up bool) { r.post(QuorumState{VS: vs, Up: up}) }

func (r *Runtime) post(ev Event) {
	r.mu.Lock()
	r.pending = append(r.pending, ev)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// reconfig is a Reconfigure waiting for Run.
type reconfig struct {
	cfg   Config
	reply chan reconfigResult
}

type reconfigResult struct {
	changes []string
	err     error
}

// Reconfigure applies a reloaded configuration to the running runtime and
// returns one line per change. Neighbours added, removed or changed are
// added to or deleted from the running server (only their sessions start,
// close or reset); a changed router id, local AS or listen port restarts
// the BGP server, which resets every session (logged); changed
// announcements are planned again from the states already reported, so an
// unchanged route is not sent again. It waits for Run (or ctx).
func (r *Runtime) Reconfigure(ctx context.Context, cfg Config) ([]string, error) {
	rc := reconfig{cfg: cfg, reply: make(chan reconfigResult, 1)}
	r.mu.Lock()
	r.reconf = append(r.reconf, rc)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	select {
	case res := <-rc.reply:
		return res.changes, res.err
	case <-r.done:
		return nil, errors.New("bgp: not running")
	case <-ctx.Done():
		return nil, fmt.Errorf("bgp: reconfigure: %w", ctx.Err())
	}
}

// Shutdown drains every route with the GRACEFUL_SHUTDOWN community, waits
// the policy's delay and withdraws them (RFC 8326), then returns; after it,
// nothing is announced again. It returns early when ctx ends.
func (r *Runtime) Shutdown(ctx context.Context) error {
	r.post(Stop{})
	select {
	case <-r.drained:
		return nil
	case <-r.done:
		return nil // not running: the sessions are closed, nothing is announced
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Hold drains and withdraws every route until Release (maintenance); it
// returns at once.
func (r *Runtime) Hold() { r.post(Hold{}) }

// Release announces again what the sources say after a Hold.
func (r *Runtime) Release() { r.post(Release{}) }

// Run runs the speaker and the planner until ctx ends.
func (r *Runtime) Run(ctx context.Context) error {
	defer close(r.done)
	var spErr chan error
	var stopSp context.CancelFunc
	start := func(sp *Speaker) error {
		spCtx, cancel := context.WithCancel(ctx)
		stopSp, spErr = cancel, make(chan error, 1)
		go func() { spErr <- sp.Run(spCtx) }()
		select {
		case <-sp.Ready():
			return nil
		case err := <-spErr:
			return err
		}
	}
	defer func() { stopSp() }()
	r.mu.Lock()
	sp, pol := r.sp, r.cfg.Policy
	r.mu.Unlock()
	if err := start(sp); err != nil {
		return err
	}
	pl := NewPlanner(pol)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	retry := false
	for {
		due := pl.Deadline()
		if retry {
			if d := r.now().Add(time.Second); due.IsZero() || d.Before(due) {
				due = d
			}
		}
		if !due.IsZero() {
			timer.Reset(max(due.Sub(r.now()), 0))
		} else {
			timer.Stop()
		}
		var evs []Event
		var rcs []reconfig
		select {
		case <-ctx.Done():
			stopSp()
			return <-spErr
		case err := <-spErr:
			return err
		case <-r.wake:
			r.mu.Lock()
			evs, r.pending = r.pending, nil
			rcs, r.reconf = r.reconf, nil
			r.mu.Unlock()
		case <-timer.C:
			evs = []Event{Tick{}}
		}
		var changed []Route
		for _, ev := range evs {
			changed = append(changed, pl.Step(r.now(), ev)...)
		}
		for _, rc := range rcs {
			var res reconfigResult
			var restarted bool
			res.changes, restarted, res.err = r.reconfigure(ctx, rc.cfg, start, func() error { stopSp(); return <-spErr })
			if restarted && res.err != nil {
				// The new server did not start: BGP stops, as it
				// would at start.
				rc.reply <- res
				return res.err
			}
			if restarted {
				// A new server has sent nothing yet.
				changed = nil
				retry = true
			}
			if !reflect.DeepEqual(pol, rc.cfg.Policy) {
				changed = append(changed, pl.SetPolicy(r.now(), rc.cfg.Policy)...)
				pol = rc.cfg.Policy
				res.changes = append(res.changes, "~ bgp announcements")
			}
			rc.reply <- res
		}
		if retry {
			changed, retry = pl.Routes(), false
		}
		if err := r.apply(changed); err != nil {
			r.log.Error("bgp: announcing failed; retrying", "err", err)
			retry = true
		}
		r.mu.Lock()
		r.routes = pl.Routes()
		if hasStop(evs) || r.stopped {
			r.stopped = true
			if !pl.Announcing() {
				select {
				case <-r.drained:
				default:
					close(r.drained)
				}
			}
		}
		r.mu.Unlock()
	}
}

// reconfigure applies a new speaker configuration from Run: the
// neighbours on the running server, or a new server when its identity
// changed (restarted true).
func (r *Runtime) reconfigure(ctx context.Context, cfg Config, start func(*Speaker) error, stop func() error) (changes []string, restarted bool, err error) {
	r.mu.Lock()
	old, sp := r.cfg.Speaker, r.sp
	r.mu.Unlock()
	if old.SameServer(cfg.Speaker) {
		changes, err = sp.SetNeighbors(ctx, cfg.Speaker.Neighbors)
		r.mu.Lock()
		r.cfg = Config{Speaker: cfg.Speaker, Policy: cfg.Policy}
		r.mu.Unlock()
		return changes, false, err
	}
	what := fmt.Sprintf("~ bgp speaker: router id %s -> %s, local AS %d -> %d, listen port %d -> %d (the BGP server restarts; every session resets)",
		old.RouterID, cfg.Speaker.RouterID, old.LocalAS, cfg.Speaker.LocalAS, old.ListenPort, cfg.Speaker.ListenPort)
	r.log.Warn("bgp: restarting the BGP server for a new router id, local AS or listen port; every session resets",
		"router_id", cfg.Speaker.RouterID.String(), "local_as", cfg.Speaker.LocalAS, "listen_port", cfg.Speaker.ListenPort)
	if err := stop(); err != nil {
		r.log.Warn("bgp: stopping the old server", "err", err)
	}
	r.mu.Lock()
	nsp := NewSpeaker(cfg.Speaker, r.helper, r.pol, r.log)
	r.sp, r.cfg = nsp, cfg
	r.mu.Unlock()
	return []string{what}, true, start(nsp)
}

func hasStop(evs []Event) bool {
	for _, ev := range evs {
		if _, ok := ev.(Stop); ok {
			return true
		}
	}
	return false
}

// apply hands changed routes to the speaker and logs them.
func (r *Runtime) apply(changed []Route) error {
	if len(changed) == 0 {
		return nil
	}
	r.mu.Lock()
	sp := r.sp
	r.mu.Unlock()
	err := sp.Apply(changed)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.lastErr = err.Error()
		return err
	}
	r.lastErr = ""
	for _, c := range changed {
		if c.Phase == Withdrawn {
			r.counts.withdraw++
		} else {
			r.counts.announce++
		}
		r.log.Info("bgp route", "prefix", c.Prefix.String(), "state", string(c.Phase), "med", c.MED, "reason", c.Reason)
	}
	return nil
}

// Status reports the sessions and routes.
func (r *Runtime) Status(ctx context.Context) (*status.BGP, error) {
	r.mu.Lock()
	sp, sc := r.sp, r.cfg.Speaker
	r.mu.Unlock()
	ss, err := sp.Sessions(ctx)
	if err != nil {
		return nil, fmt.Errorf("bgp: sessions: %w", err)
	}
	out := &status.BGP{RouterID: sc.RouterID.String(), LocalAS: sc.LocalAS}
	for _, s := range ss {
		out.Sessions = append(out.Sessions, status.BGPSession{
			Neighbor: s.Neighbor.String(), RemoteAS: s.RemoteAS, State: s.State, Since: s.Since,
			PrefixesSent: s.Sent, PrefixesReceived: s.Received, HoldTime: status.Duration(s.HoldTime), LastError: s.LastError, BFD: s.BFD,
		})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rt := range r.routes {
		br := status.BGPRoute{Prefix: rt.Prefix.String(), State: string(rt.Phase), Reason: rt.Reason, Since: rt.Since, Until: rt.Until}
		if rt.Phase != Withdrawn {
			med := rt.MED
			br.MED = &med
			for _, c := range rt.Communities {
				br.Communities = append(br.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xFFFF))
			}
		}
		out.Routes = append(out.Routes, br)
	}
	out.Announcements, out.Withdrawals, out.LastError = r.counts.announce, r.counts.withdraw, r.lastErr
	return out, nil
}
