// Package director runs keepalived's virtual servers: health checkers
// (internal/check/probe) feed the virtual-server policy (internal/lb), whose
// desired state the reconciler (director/reconcile) keeps applied to the data
// plane (internal/lb/nft or internal/lb/ipvs).
package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/probe"
	"github.com/vigil-ha/vigil/internal/director/reconcile"
	"github.com/vigil-ha/vigil/internal/eventloop"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/lb/ipvs"
	"github.com/vigil-ha/vigil/internal/lb/nft"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/status"
)

// OpenBackend opens the data plane lvs_backend names ("auto" picks IPVS
// where the kernel has it, else nftables).
// flushOnStop is lvs_flush_on_stop without VS: IPVS removes every service
// at exit; nftables has only vigil's own tables to remove.
func OpenBackend(keyword string, flush, flushOnStop, keep, syncedConntrack bool, log *slog.Logger) (lb.Backend, error) {
	name, err := lb.ChooseBackend(keyword, ipvs.Available())
	if err != nil {
		return nil, err
	}
	if name == lb.BackendIPVS {
		return ipvs.New(ipvs.Options{Keep: keep, Flush: flush, FlushOnStop: flushOnStop, Logger: log})
	}
	return nft.New(nft.Options{Keep: keep, SyncedConntrack: syncedConntrack, Logger: log})
}

// Options are the director's injected dependencies.
type Options struct {
	Logger   *slog.Logger
	Notifier *notify.Notifier
	// Backend overrides the data plane (tests); nil picks it from the spec.
	Backend lb.Backend
	// Keep leaves the kernel's virtual services in place at exit.
	Keep bool
	// Resync is the reconciler's repair interval (default 10 s).
	Resync time.Duration
	// Observe, when set, is called from the director's loop with every
	// policy event (quorum and real server changes); it must not block.
	Observe func(lb.Event)
}

// Director runs the virtual servers: health checkers feed keepalived's
// virtual server policy (internal/lb), whose desired state a reconciler
// applies to nftables or IPVS. It runs beside the VRRP engine in its own
// loop, so checker churn never delays a VRRP timer.
//
// Concurrency: Run owns the state; the other methods are safe for
// concurrent use.
type Director struct {
	opts    Options
	log     *slog.Logger
	spec    runspec.DirectorSpec
	backend lb.Backend

	events chan any
	// reloading is set while Apply recomputes (owned by the loop): the
	// policy's Init events then come from a reload, not the start.
	reloading bool
	// over keeps checker events the full events queue could not take.
	over overflow

	// localNext is the latest address set given to SetLocal and not yet
	// taken by the loop; localWake (capacity 1) tells the loop there is one.
	// Calls coalesce: however many arrive while the loop is busy, it takes
	// the last.
	localMu   sync.Mutex
	localNext map[netip.Addr]bool
	localWake chan struct{}

	// Owned by the loop.
	policy  *lb.Policy
	rec     *reconcile.Reconciler
	runner  *probe.Runner
	health  lb.Health
	local   map[netip.Addr]bool
	last    lb.Result
	byID    map[string]lb.RealID // runner server ID -> real server
	runStop func()
	// timeline records real server and quorum changes for the status
	// page; the daemon merges it with the VRRP engine's.
	timeline *status.Timeline
	// rsSince is when each real server last changed
	// health; stats reads the kernel's counters (director_counters.go).
	rsSince map[lb.RealID]time.Time
	stats   lb.StatsReader
	// startDown are the real servers whose FILE_CHECK reported a fault at
	// start, until the first recompute (seedFileChecks).
	startDown map[lb.RealID]bool
}

type (
	checkEvent struct {
		ev  probe.Event
		gen *probe.Runner
	}
)

// overflow holds, once the events queue was found full, the newest event of
// each real server, until the loop has handled everything queued before it
// and takes them. While it is active every checker event goes here, so an
// event never overtakes an older one of the same server: the director's view
// of a real server's health is never lost, only intermediate transitions of
// a loop that fell that far behind are merged (counted and logged).
type overflow struct {
	mu     sync.Mutex
	active bool
	latest map[string]checkEvent
	order  []string
	merged int
	wake   chan struct{}
}

// post hands a checker event to the loop without blocking.
func (d *Director) post(ce checkEvent) {
	o := &d.over
	o.mu.Lock()
	if !o.active {
		select {
		case d.events <- ce:
			o.mu.Unlock()
			return
		default:
			o.active = true
			d.log.Warn("checker event queue full; keeping each real server's newest event until the director catches up")
		}
	}
	if o.latest == nil {
		o.latest = map[string]checkEvent{}
	}
	if _, ok := o.latest[ce.ev.Server]; ok {
		o.merged++
	} else {
		o.order = append(o.order, ce.ev.Server)
	}
	o.latest[ce.ev.Server] = ce
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// takeOverflow handles what is queued, then the overflow's events in the
// order their servers first overflowed.
func (d *Director) takeOverflow() {
	for {
		select {
		case ev := <-d.events:
			d.handle(ev)
			continue
		default:
		}
		break
	}
	o := &d.over
	o.mu.Lock()
	latest, order, merged := o.latest, o.order, o.merged
	o.active, o.latest, o.order, o.merged = false, nil, nil, 0
	o.mu.Unlock()
	if merged > 0 {
		d.log.Warn("checker events merged while the director was behind", "merged", merged, "servers", len(order))
	}
	for _, id := range order {
		d.handle(latest[id])
	}
}

// New prepares a director; it starts nothing. The backend is
// opened here so that a configuration the kernel cannot carry fails at
// start.
func New(spec runspec.DirectorSpec, opts Options) (*Director, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Director{opts: opts, log: opts.Logger, spec: spec, events: make(chan any, 1024), over: overflow{wake: make(chan struct{}, 1)}, localWake: make(chan struct{}, 1), health: lb.Health{}, local: map[netip.Addr]bool{}, timeline: status.NewTimeline(200)}
	b := opts.Backend
	if b == nil {
		var err error
		if b, err = OpenBackend(spec.Backend, spec.LVSFlush, spec.LVSFlushOnStop == "ALL", opts.Keep, spec.SyncedConntrack, opts.Logger); err != nil {
			return nil, err
		}
	}
	if ds := b.Capabilities().Check(spec.VirtualServers); len(ds) > 0 {
		if err := lb.Err(ds); err != nil {
			b.Close()
			return nil, err
		}
		for _, d := range ds {
			opts.Logger.Warn("virtual server", "diagnostic", d.String())
		}
	}
	d.backend = b
	d.stats = statsReader(b)
	return d, nil
}

// BackendName is the data plane in use ("nftables" or "ipvs").
func (d *Director) BackendName() string { return d.backend.Name() }

// Run checks the real servers and keeps the kernel in the desired state
// until ctx is done; then it runs keepalived's omega notifications, stops
// the checkers and removes what it installed (unless Keep).
func (d *Director) Run(ctx context.Context) error {
	defer d.backend.Close()
	d.policy = lb.NewPolicy(lb.PolicyOptions{RSInitNotifies: d.spec.RSInitNotifies, FlushOnStop: d.spec.LVSFlushOnStop != ""})
	d.rec = reconcile.New(d.backend, reconcile.Options{Resync: d.opts.Resync, Logger: d.log})
	recCtx, stopRec := context.WithCancel(context.Background())
	recDone := make(chan error, 1)
	go func() { recDone <- d.rec.Run(recCtx) }()

	if err := d.startRunner(nil, nil); err != nil {
		stopRec()
		<-recDone
		return err
	}
	d.recompute()
	for {
		select {
		case <-ctx.Done():
			d.runStop()
			for _, ev := range d.policy.Stop() {
				d.event(ev)
			}
			// The last desired state stays applied while the omega scripts
			// run; Close removes the table afterwards.
			stopRec()
			<-recDone
			return nil
		case ev := <-d.events:
			d.handle(ev)
		case <-d.over.wake:
			d.takeOverflow()
		case <-d.localWake:
			d.takeLocal()
		}
	}
}

// takeLocal applies the address set SetLocal last left, if any.
func (d *Director) takeLocal() {
	d.localMu.Lock()
	next := d.localNext
	d.localNext = nil
	d.localMu.Unlock()
	if next == nil {
		return
	}
	d.local = next
	d.recompute()
}

// startRunner starts the checkers of d.spec. On a reload (old holds the
// real servers before it) unchanged checkers resume their state from prev,
// and the others start as keepalived starts a checker a reload adds
// (check.NewHealthOnReload). At the first start a FILE_CHECK reads its file
// before anything reaches the kernel (see seedFileChecks).
func (d *Director) startRunner(prev map[runspec.CheckerKey]check.Health, old map[lb.RealID]bool) error {
	first := prev == nil && old == nil
	seeded := map[string]bool{}
	d.byID = map[string]lb.RealID{}
	alive := map[lb.RealID]bool{}
	for _, ss := range d.last.Status {
		for _, r := range ss.Reals {
			alive[lb.RealID{VS: ss.ID, Addr: r.Addr}] = r.Alive
		}
	}
	var servers []probe.RealServer
	for _, rc := range d.spec.Checks {
		id := rc.ID.String()
		d.byID[id] = rc.ID
		rs := probe.RealServer{ID: id, Weight: rc.Weight}
		// ipwrapper.c migrate_checkers: the real server counts as failed
		// when a resumed checker has failed, or when it is down and none
		// has run.
		failed, ran := false, false
		for _, c := range rc.Checkers {
			if h, ok := prev[runspec.CheckerKey{Real: rc.ID, Key: c.Key}]; ok && h.HasRun() {
				ran = true
				failed = failed || !h.Up()
			}
		}
		failed = failed || (!alive[rc.ID] && !ran)
		for _, c := range rc.Checkers {
			pc := probe.Checker{Name: c.Name, Check: c.Checker, Policy: c.Policy}
			if h, ok := prev[runspec.CheckerKey{Real: rc.ID, Key: c.Key}]; ok {
				pc.Resume = &h
			} else if first && c.Policy.Kind == check.KindFile {
				h := check.NewHealth(c.Policy)
				h.Observe(time.Now(), c.Checker.Check(context.Background()))
				pc.Resume = &h
				seeded[id] = true
			} else if old != nil {
				h := check.NewHealthOnReload(c.Policy, !old[rc.ID], failed)
				pc.Resume = &h
			}
			rs.Checkers = append(rs.Checkers, pc)
		}
		servers = append(servers, rs)
		if len(rc.Checkers) == 0 {
			d.health[rc.ID] = lb.RealHealth{State: lb.Up}
		}
	}
	var r *probe.Runner
	r, err := probe.NewRunner(probe.Options{Servers: servers, Logger: d.log, OnEvent: func(e probe.Event) {
		d.post(checkEvent{ev: e, gen: r})
	}})
	if err != nil {
		return fmt.Errorf("director: %w", err)
	}
	if len(seeded) > 0 {
		d.seedFileChecks(r.Snapshot(), seeded)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	d.runner = r
	d.runStop = func() { cancel(); <-done }
	return nil
}

// seedFileChecks gives the first desired state the real servers' state
// after their FILE_CHECKs' first read, as keepalived 2.2.7 reads its track
// files at start (track_file.c init_track_files, without notification)
// before it installs the real servers: one whose file reports a fault
// starts out of the service, silently, as an alpha one with no verdict yet
// (the policy would notify a first verdict that is down; the checker has
// run, so the next read that agrees reports nothing, and one that
// recovers brings the server up with its notify_up); one that is up starts
// with the weight offset its file gives.
func (d *Director) seedFileChecks(snap []probe.ServerStatus, seeded map[string]bool) {
	down := map[lb.RealID]bool{}
	for _, ss := range snap {
		if !seeded[ss.ID] {
			continue
		}
		id := d.byID[ss.ID]
		if !ss.Up {
			down[id] = true
			continue
		}
		h := lb.RealHealth{State: lb.Up}
		if ss.Weight != ss.ConfiguredWeight {
			h.Weight, h.HasWeight = int64(ss.Weight), true
		}
		d.health[id] = h
	}
	if len(down) > 0 {
		d.startDown = down
	}
}

// firstSpecs returns the virtual servers for the policy: d.spec's, with the
// real servers of startDown marked alpha the first time (the policy reads
// Alpha only when it first sees a real server). d.spec stays as given, so
// a reload of the same configuration finds nothing changed.
func (d *Director) firstSpecs() []lb.VirtualServer {
	if d.startDown == nil {
		return d.spec.VirtualServers
	}
	vss := slices.Clone(d.spec.VirtualServers)
	for i := range vss {
		vs := &vss[i]
		vs.Reals = slices.Clone(vs.Reals)
		for j := range vs.Reals {
			if d.startDown[lb.RealID{VS: vs.ID(), Addr: vs.Reals[j].AddrPort()}] {
				vs.Reals[j].Alpha = true
			}
		}
	}
	d.startDown = nil
	return vss
}

func (d *Director) handle(ev any) {
	switch ev := ev.(type) {
	case checkEvent:
		if ev.gen != d.runner {
			return
		}
		id, ok := d.byID[ev.ev.Server]
		if !ok {
			return
		}
		h := lb.RealHealth{State: lb.Down}
		if ev.ev.Up {
			h.State = lb.Up
		}
		if ev.ev.Weight != ev.ev.WasWeight || d.health[id].HasWeight {
			h.Weight, h.HasWeight = int64(ev.ev.Weight), true
		}
		d.health[id] = h
		d.recompute()
	case eventloop.Request:
		ev.F()
	}
}

// recompute runs the policy and hands the result to the reconciler.
func (d *Director) recompute() {
	res := d.policy.Desired(d.firstSpecs(), d.health, func(a netip.Addr) bool { return d.local[a] })
	d.last = res
	d.rec.Set(res.State)
	for _, ev := range res.Events {
		d.event(ev)
	}
}

// event logs one policy event and runs its notifications.
func (d *Director) event(ev lb.Event) {
	if d.opts.Observe != nil {
		d.opts.Observe(ev)
	}
	up := ev.Kind == lb.RealUp || ev.Kind == lb.QuorumUp
	from, to := "UP", "DOWN"
	if up {
		from, to = to, from
	}
	tr := status.Transition{At: time.Now(), From: from, To: to, Reason: d.reason(ev)}
	switch ev.Kind {
	case lb.RealUp, lb.RealDown:
		tr.Kind, tr.Name = "real_server", ev.RealName+" of "+ev.VS
		d.log.Info("real server", "virtual_server", ev.VS, "real_server", ev.RealName, "up", up, "reason", tr.Reason)
	default:
		tr.Kind, tr.Name = "virtual_server", ev.VS
		d.log.Info("virtual server quorum", "virtual_server", ev.VS, "up", up, "reason", tr.Reason)
	}
	if ev.Init {
		tr.From = "INIT"
	}
	d.timeline.Add(tr)
	d.noteRealTransition(ev, tr.At)
	n := d.opts.Notifier
	if n == nil {
		return
	}
	switch ev.Kind {
	case lb.RealUp, lb.RealDown:
		n.RealServer(ev.RealName, ev.VS, up)
	default:
		n.VirtualServer(ev.VS, up)
	}
	if ev.Script != "" {
		if p := d.spec.Scripts[ev.Script]; p != nil {
			var timeout time.Duration // the notifier's (vigil run --notify-timeout)
			if ev.Stopping {
				timeout = time.Second // keepalived: omega scripts get one second
			}
			// One queue per real server (per virtual server for the
			// quorum scripts): a queue keeps its scripts in order but, when
			// far behind, only the newest, so real servers failing together
			// must not share one. keepalived forks each (notify_exec).
			queue := "vs " + ev.VS
			if ev.Kind == lb.RealUp || ev.Kind == lb.RealDown {
				queue += " rs " + ev.RealName
			}
			n.Exec(queue, p, timeout)
		}
	}
}

// reason explains a policy event for people.
func (d *Director) reason(ev lb.Event) string {
	switch {
	case ev.Stopping:
		return "vigil stopping (omega)"
	case ev.Init && d.reloading:
		return "reload"
	case ev.Init:
		return "start"
	case ev.Kind == lb.QuorumUp:
		return "enough real servers alive for the quorum"
	case ev.Kind == lb.QuorumDown:
		return "too few real servers alive for the quorum"
	}
	id := lb.RealID{VS: ev.VS, Addr: ev.Real}.String()
	if _, ok := d.byID[id]; !ok && ev.Kind == lb.RealDown {
		// A reload dropped it (or its virtual server): startRunner has
		// already forgotten it.
		return "removed from the configuration"
	}
	for _, s := range d.runner.Snapshot() {
		if s.ID == id {
			for _, c := range s.Checkers {
				if c.Last.Reason != "" && c.Up == (ev.Kind == lb.RealUp) {
					return c.Name + ": " + c.Last.Reason
				}
			}
		}
	}
	if ev.Kind == lb.RealUp {
		return "checkers succeed"
	}
	return "a checker failed"
}

// Transitions returns the director's recent changes, oldest first.
func (d *Director) Transitions(ctx context.Context) ([]status.Transition, error) {
	var out []status.Transition
	err := d.do(ctx, func() { out = d.timeline.List() })
	return out, err
}

// SetLocal tells the director which virtual addresses this host holds
// (ha_suspend suspends the checkers of a virtual server whose address is
// not local).
// It never blocks and starts nothing: a set given while the loop is busy
// replaces the one still waiting.
func (d *Director) SetLocal(addrs map[netip.Addr]bool) {
	next := maps.Clone(addrs)
	if next == nil {
		next = map[netip.Addr]bool{}
	}
	d.localMu.Lock()
	d.localNext = next
	d.localMu.Unlock()
	select {
	case d.localWake <- struct{}{}:
	default:
	}
}

func (d *Director) do(ctx context.Context, f func()) error { return eventloop.Do(ctx, d.events, f) }

// Apply replaces the virtual servers with spec's; unchanged checkers keep
// their state (keepalived's migrate_checkers), and the kernel gets one
// incremental change.
func (d *Director) Apply(ctx context.Context, spec runspec.DirectorSpec) ([]string, error) {
	if spec.Backend != d.spec.Backend {
		return nil, errors.New("director: lvs_backend cannot change on reload; restart vigil")
	}
	if ds := d.backend.Capabilities().Check(spec.VirtualServers); len(ds) > 0 {
		if err := lb.Err(ds); err != nil {
			return nil, err
		}
	}
	var changes []string
	var err error
	derr := d.do(ctx, func() {
		old := map[string]lb.VirtualServer{}
		for _, vs := range d.spec.VirtualServers {
			old[vs.ID()] = vs
		}
		for _, vs := range spec.VirtualServers {
			o, ok := old[vs.ID()]
			switch {
			case !ok:
				changes = append(changes, "+ virtual_server "+vs.ID())
			case !reflect.DeepEqual(o, vs):
				changes = append(changes, "~ virtual_server "+vs.ID())
			}
			delete(old, vs.ID())
		}
		for id := range old {
			changes = append(changes, "- virtual_server "+id)
		}
		if reflect.DeepEqual(checkerPolicies(d.spec), checkerPolicies(spec)) && len(changes) == 0 {
			return
		}
		prev := map[runspec.CheckerKey]check.Health{}
		healths := d.runner.Healths()
		for _, rc := range d.spec.Checks {
			for i, c := range rc.Checkers {
				if hs, ok := healths[rc.ID.String()]; ok && i < len(hs) {
					prev[runspec.CheckerKey{Real: rc.ID, Key: c.Key}] = hs[i]
				}
			}
		}
		oldIDs := map[lb.RealID]bool{}
		for _, rc := range d.spec.Checks {
			oldIDs[rc.ID] = true
		}
		d.runStop()
		d.spec = spec
		// Forget the verdicts of real servers that left.
		keep := map[lb.RealID]bool{}
		for _, rc := range spec.Checks {
			keep[rc.ID] = true
		}
		maps.DeleteFunc(d.health, func(id lb.RealID, _ lb.RealHealth) bool { return !keep[id] })
		if err = d.startRunner(prev, oldIDs); err != nil {
			return
		}
		d.reloading = true // the events of this recompute come from the reload
		d.recompute()
		d.reloading = false
	})
	if derr != nil {
		return nil, derr
	}
	slices.Sort(changes)
	return changes, err
}

// checkerPolicies lists each checker's identity with its timing: a reload
// that changes either restarts the checkers (unchanged identities resume
// their state under the new timing).
func checkerPolicies(s runspec.DirectorSpec) []any {
	var out []any
	for _, rc := range s.Checks {
		for _, c := range rc.Checkers {
			out = append(out, runspec.CheckerKey{Real: rc.ID, Key: c.Key}, c.Policy)
		}
	}
	return out
}

// Snapshot returns the virtual servers for the status API.
func (d *Director) Snapshot(ctx context.Context) ([]status.VirtualServer, error) {
	var out []status.VirtualServer
	var keys serviceKeys
	if err := d.do(ctx, func() { out, keys = d.snapshot() }); err != nil {
		return out, err
	}
	d.readCounters(ctx, out, keys)
	return out, nil
}

func (d *Director) snapshot() ([]status.VirtualServer, serviceKeys) {
	checkers := map[string]probe.ServerStatus{}
	for _, s := range d.runner.Snapshot() {
		checkers[s.ID] = s
	}
	specs := map[string]lb.VirtualServer{}
	for _, vs := range d.spec.VirtualServers {
		specs[vs.ID()] = vs
	}
	rs := d.rec.Stats()
	var out []status.VirtualServer
	var keys serviceKeys
	for _, ss := range d.last.Status {
		spec := specs[ss.ID]
		vs := status.VirtualServer{
			Name: ss.ID, Algo: spec.Scheduler, Kind: spec.Method.String(), Backend: d.backend.Name(),
			QuorumUp: ss.QuorumUp, Active: rs.LastError == "" && !rs.LastApply.IsZero(), SorryActive: ss.SorryActive,
		}
		if spec.Sorry != nil {
			vs.Sorry = spec.Sorry.AddrPort().String()
		}
		vsIdentity(&vs, spec)
		keys = append(keys, ss.Keys)
		for _, r := range ss.Reals {
			st := status.RealServer{Addr: r.Addr.String(), Weight: int(r.InstalledWeight), Healthy: r.Alive, Since: d.rsSince[lb.RealID{VS: ss.ID, Addr: r.Addr}]}
			if !r.Installed {
				st.Weight = 0
			}
			cs := checkers[lb.RealID{VS: ss.ID, Addr: r.Addr}.String()]
			var reasons []string
			for _, c := range cs.Checkers {
				sc := status.Checker{Kind: c.Kind.String(), Name: c.Name, OK: c.Up, Reason: c.Last.Reason, LastRun: c.LastAt, Failures: c.Failures, Duration: status.Duration(c.Duration)}
				vs := sc
				if !c.Up && c.Last.Reason != "" {
					reasons = append(reasons, c.Last.Reason)
				}
				st.Checkers = append(st.Checkers, vs)
			}
			st.Reason = strings.Join(reasons, "; ")
			vs.RealServers = append(vs.RealServers, st)
		}
		out = append(out, vs)
	}
	return out, keys
}

// ReconcilerStats are the data plane's apply counters.
func (d *Director) ReconcilerStats(ctx context.Context) (reconcile.Stats, error) {
	var s reconcile.Stats
	err := d.do(ctx, func() { s = d.rec.Stats() })
	return s, err
}
