// Package engine is the one place in vigil with long-lived goroutines. It
// drives the pure VRRP state machines (internal/vrrp) with packets from the
// VRRP sockets, link events, trackers and one timer, and carries out their
// actions: adverts on the wire, VIPs through netlink, gratuitous ARP / NA,
// notifications, status.
//
// Concurrency: every state machine and every piece of engine state belongs
// to whoever holds Engine.mu, for one turn. Three kinds of goroutine take
// turns, all started by Run: the loop, which takes events (watchers and
// trackers send them; Snapshot, Handover and Reload are requests it
// answers) and the stop; the timer's, which runs the expiries; and one
// reader per socket, which hands the packets it read to their instances.
// Packets and expiries are thus handled on the goroutine the poller woke,
// with no hand-off to another goroutine (which would wake another thread:
// at a thousand instances, most of the daemon's CPU time). All exported
// methods are safe for concurrent use.
package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/internal/eventloop"
	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/mail"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/owner"
	"github.com/vigil-ha/vigil/internal/pace"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/track"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
	"github.com/vigil-ha/vigil/internal/vrrpfw"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// Options are the engine's injected dependencies.
type Options struct {
	Net        Net
	Logger     *slog.Logger
	Version    string
	ConfigFile string
	// StopTimeout bounds a graceful stop (handover included).
	StopTimeout time.Duration
	// PreciseTimer drives the VRRP timers from a timerfd (tens of
	// microseconds) instead of the Go runtime's timers (a millisecond).
	// The daemon sets it; tests under testing/synctest must not.
	PreciseTimer bool
	// TimerThread, with PreciseTimer and TimerOnThread, is called on the
	// OS thread that waits for the VRRP timer and runs its expiries
	// (adverts are sent from it), before its first wait; the function it
	// returns, if any, when that thread is done. The daemon gives the
	// thread its scheduling there (sched.Scheduler.Enroll). Optional.
	TimerThread func() (done func())
	// Notifier runs notify scripts and writes notify FIFOs; Mailer sends
	// smtp_alert mail. Both optional; the caller runs (and drains) them.
	Notifier *notify.Notifier
	Mailer   *mail.Mailer
	// Hooks observe the engine (tests, metrics). Optional.
	Hooks Hooks
	// Owner claims the virtual routers the engine runs (one owner per
	// namespace, internal/owner). Optional: nil claims nothing.
	Owner Owner
}

// Owner is the registry of virtual routers owned in the namespace
// (*owner.Registry).
type Owner interface {
	Claim(keys []owner.Key) error
	Release(keys []owner.Key)
	// Held lists the keys claimed.
	Held() []owner.Key
	// Alone reports whether no other vigil ran in the namespace at start;
	// Settle tells that the start-up clean-up is over.
	Alone() bool
	Settle()
}

// Hooks are called from the engine loop; they must not block (queue work).
type Hooks struct {
	// InstanceTransition is called after an instance changed state and its
	// addresses are in place.
	InstanceTransition func(name string, from, to vrrp.State, prio int, reason string)
	// GroupTransition is called when a sync group changed state.
	GroupTransition func(name string, from, to vrrp.State, reason string)
	// VIPsChanged is called with the set of virtual addresses this host
	// holds, after it changed (the director's ha_suspend).
	VIPsChanged func(held map[netip.Addr]bool)
	// Announced is called when the engine queues n gratuitous ARPs or
	// unsolicited neighbour advertisements: at a takeover and at each of
	// its later rounds (garp_master_delay, garp_master_refresh, pacing).
	Announced func(n int)
}

// Engine runs the VRRP instances of a Spec.
type Engine struct {
	opts Options
	log  *slog.Logger
	// staticErrors counts static routes and rules the kernel refused;
	// the effects worker adds to it.
	staticErrors atomic.Uint64
	spec         runspec.Spec

	events  chan any
	started time.Time
	// epoch is the origin of the deadline heap's keys.
	epoch time.Time

	// mu is held for a turn; it guards everything below.
	mu sync.Mutex
	// rxTurns counts the readers with packets in hand, about to take mu
	// or in their turn; inputWait is set while inputFirst waits for one of
	// them to end, which inputDone then tells.
	rxTurns   atomic.Int32
	inputWait atomic.Bool
	inputDone chan struct{}

	// timer is set for armed, the earliest deadline (zero once it fired).
	timer wakeTimer
	armed time.Time
	// timerThread is TimerOnThread's setting.
	timerThread bool
	// stopDeadline bounds a stop; finished is closed (finishing set) when
	// the stop is complete, and ended is set once Run's last turn is over:
	// turns that come later do nothing.
	stopDeadline     time.Time
	finished         chan struct{}
	finishing, ended bool
	insts            []*instance
	byName           map[string]*instance
	groups           []*group
	conns            map[connKey]*conn
	links            map[string]netif.LinkInfo
	pacers           map[string]*garp.Pacer // by interface
	timeline         *status.Timeline
	stopping         bool
	// dropLog bounds the drop log lines of all instances (drops.go).
	dropLog dropBudget
	// retiring are instances removed or changed by a reload, stopping.
	retiring []*instance
	// wg and bg are Run's: goroutines started later (readers of sockets
	// opened by a reload) join them.
	wg *sync.WaitGroup
	bg context.Context
	// inputSince is when inputFirst started holding the expiry holdFor back.
	inputSince, holdFor time.Time
	// linkWatchFailed is set when the link watcher ended with an error.
	linkWatchFailed error
	// kernel is the namespace's addresses as the address watch reports
	// them (defend.go).
	kernel    kernelAddrs
	tr        *trackers
	fx        *effects // slow side effects, off the loop (nil when not running)
	vipsDirty bool
	// vipsReportAt is the earliest time the held addresses are reported
	// again (vipsReportGap), vipsReported the size of the last report.
	vipsReportAt time.Time
	vipsReported int
	npending     int       // instances waiting to start
	startAt      time.Time // vrrp_startup_delay: no instance starts before
	// holders indexes the held instances by address (countAnnouncements);
	// nil when it must be built again.
	holders holders
	// dl orders the instances by deadline; dirty lists those to re-place.
	dl    deadlines
	dirty []*instance
	// deferred holds the actions fire postpones until every due advert
	// has been sent; nil outside fire.
	deferred *[]deferredAction
	// deferBuf is the array deferred points to in fire, and dueBuf due's
	// result: both are reused from one turn to the next.
	deferBuf []deferredAction
	dueBuf   []*instance
	// rxAddrs is the array receive parses an advert's addresses into: an
	// advert's addresses are not kept past its turn.
	rxAddrs []netip.Addr
	// batching is set while fire sends the adverts due; sending are the
	// sockets with adverts queued.
	batching bool
	sending  []*conn
	// vmacs are the VMAC interfaces made for the instances; fw the VRRP
	// firewall last queued (vmac.go).
	vmacs map[string]bool
	fw    vrrpfw.State
	// claims are the ARP and NA watches for address conflicts (claims.go).
	claims claimState
}

// instance is the runtime of one vrrp_instance.
type instance struct {
	// spec is the instance's element of Engine.spec.Instances (shared,
	// never written through).
	spec   *runspec.InstanceSpec
	m      *vrrp.Instance
	group  *group
	member int // index in group.g.Members()
	conn   *conn
	src    netip.Addr // resolved source
	garp   *garp.Schedule
	// held is true while the instance's VIPs are on the interfaces.
	held bool
	// ah seals its AH adverts (ahSeal; nil until the first).
	ah *ahSealer
	// primed is set once the machine has been given its initial picture.
	primed       bool
	deleted      bool // removed by a reload: notify DELETED, not STOP
	linkUp       bool
	missing      string // why the instance cannot run (interface missing), "" when it can
	faultMissing bool   // the fault last fed to the machine was missing's
	prio         int    // last priority sent to the machine
	fault        bool
	faultWhy     string
	since        time.Time
	transitions  uint64
	limiter      dropLimiter
	// pending: created by a reload, waiting to start.
	pending bool
	// handingOver is set between HandoverStarted and the release; the
	// release then waits until releaseAt (see handoverGrace).
	handingOver bool
	releaseAt   time.Time
	// attachAt is when to try again to attach an instance whose socket
	// could not be opened (attachRetry).
	attachAt time.Time
	// attachFailing: the last attach failed and was logged; the retries
	// are quiet until one succeeds.
	attachFailing bool
	// mismatch describes the address list difference of the master last
	// heard (vrrp.AddrMismatch), "" when its list matches ours.
	mismatch string
	// oldSumFrom and oldSumAt say which advert switched the instance to
	// the old VRRPv3 unicast checksum (vrrp.ChecksumFallback).
	oldSumFrom netip.Addr
	oldSumAt   time.Time
	// mismatchLogged is what the log last said of it; logMismatch brings
	// the log up to date, one line per dropLogEvery, since adverts whose
	// lists keep changing (forged, or two masters) would log one a packet.
	// mismatchLine logs the current state with extra attributes;
	// mismatchChanges counts the changes since the last line.
	mismatchLogged  string
	mismatchLine    func(extra ...any)
	mismatchChanges uint64
	mismatchLogAt   time.Time
	// rival is the last router heard advertising as master while this
	// instance was MASTER whose adverts it dropped for a difference of
	// configuration (vrrp.RivalMaster), zero when none.
	rival rival
	// restored counts VIPs and routes put back after an outside removal.
	restored uint64
	// conflicts counts claims of its VIPs by other hosts while master
	// (ARP and neighbour advertisements); leftovers those that were
	// another router's leftovers (garp.Leftover).
	conflicts uint64
	leftovers uint64
	// netErrors counts virtual routes and rules the kernel refused to add,
	// replace or remove; the effects worker adds to it.
	netErrors atomic.Uint64
	// ops is what the status shows of peers and history (opsview.go).
	ops opsview
	// next (nextKey its heap order), hidx, dirty and gone place the
	// instance in the deadline heap.
	next    time.Time
	nextKey int64
	hidx    int
	dirty   bool
	gone    bool
}

// handoverGrace is how long a master that handed over keeps its addresses
// after hearing the new master's first advert. The new master sends that
// advert before it adds the addresses and sends its gratuitous ARP
// (keepalived's order, kept toward every peer); without a grace the old
// master's release can reach a client before the new master's ARP does, and
// a connection attempt in that sub-millisecond window is lost. Half the
// advert interval, between 2 and 100 ms: far longer than that race, and
// short enough that the two never hold the VIP together for more than one
// advert interval.
func handoverGrace(advertInt time.Duration) time.Duration {
	return min(max(advertInt/2, 2*time.Millisecond), 100*time.Millisecond)
}

type group struct {
	spec runspec.SyncGroupSpec
	g    *vrrp.SyncGroup
	ins  []*instance
}

type connKey struct {
	ifname  string
	v6      bool
	group   netip.Addr // multicast group, or zero for unicast
	unicast netip.Addr // unicast source
	ah      bool       // IP protocol 51: auth_type AH instances (ah.go)
}

// conn is one VRRP socket shared by the instances on one interface, family
// and group (or unicast source).
type conn struct {
	key   connKey
	c     Conn
	group netip.Addr
	insts vridTable
	stats connStats
	// out are the adverts waiting to be sent (sendAdvert), outFrom their
	// instances; arena holds their bytes.
	out     []vrrpnet.Message
	outFrom []*instance
	arena   []byte
}

type connStats struct {
	received uint64
	dropped  map[string]uint64
}

// Events delivered to the loop.
type (
	linkEvent     struct{ ev netif.LinkEvent }
	linkWatchDone struct{ err error }
)

// New returns an engine for spec. It starts nothing.
func New(spec runspec.Spec, opts Options) (*Engine, error) {
	if opts.Net == nil {
		return nil, errors.New("engine: no Net")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 10 * time.Second
	}
	e := &Engine{
		opts:     opts,
		log:      opts.Logger,
		spec:     spec,
		events:   make(chan any, 1024),
		byName:   map[string]*instance{},
		conns:    map[connKey]*conn{},
		links:    map[string]netif.LinkInfo{},
		pacers:   map[string]*garp.Pacer{},
		timeline: status.NewTimeline(200),
		epoch:    time.Now(),
		tr:       newTrackers(),
	}
	if err := e.build(); err != nil {
		return nil, err
	}
	return e, nil
}

// build creates the state machines of e.spec.
func (e *Engine) build() error {
	var errs []error
	for i := range e.spec.Instances {
		is := &e.spec.Instances[i]
		in, err := e.newInstance(is)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.insts = append(e.insts, in)
		e.byName[is.VRRP.Name] = in
	}
	for _, gs := range e.spec.SyncGroups {
		g := &group{spec: gs}
		var ms []*vrrp.Instance
		for _, name := range gs.Members {
			in := e.byName[name]
			if in == nil {
				errs = append(errs, fmt.Errorf("engine: sync group %s: no instance %s", gs.Name, name))
				continue
			}
			in.group, in.member = g, len(ms)
			g.ins = append(g.ins, in)
			ms = append(ms, in.m)
		}
		sg, err := vrrp.NewSyncGroup(gs.Name, ms)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g.g = sg
		e.groups = append(e.groups, g)
	}
	return errors.Join(errs...)
}

func (e *Engine) newInstance(is *runspec.InstanceSpec) (*instance, error) {
	cfg := is.Machine()
	if !cfg.Source.IsValid() {
		// Resolved when the interface is known: a placeholder of the right
		// family until then.
		cfg.Source = unspecified(is.IPv6)
	}
	m, err := vrrp.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("engine: instance %s: %w", is.VRRP.Name, err)
	}
	in := &instance{spec: is, m: m, prio: int(cfg.Priority), hidx: -1}
	return in, nil
}

func unspecified(v6 bool) netip.Addr {
	if v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// Run runs the instances until ctx is done, then stops them gracefully
// (priority-0 adverts, or a handover, then the VIPs released) and returns
// when every goroutine it started has exited.
func (e *Engine) Run(ctx context.Context) error {
	e.started = time.Now()
	// Last, after the addresses are gone: the VMACs and the firewall.
	defer e.teardownVMACs()
	e.fx = newEffects(e.opts.Net.AddVIPs)
	defer func() {
		e.fx.close() // the last address removals happen before Run returns
		e.fx = nil
	}()
	bg, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	e.wg, e.bg = &wg, bg
	defer func() {
		e.mu.Lock()
		for _, c := range e.conns {
			c.c.Close()
		}
		e.mu.Unlock()
		cancel()
		wg.Wait()
	}()

	e.mu.Lock()
	e.finished = make(chan struct{})
	e.inputDone = make(chan struct{}, 1)
	e.removeStale()
	e.removeStaleVMACs()
	e.startStatic()
	if d := e.spec.StartupDelay; d > 0 {
		e.startAt = e.started.Add(d)
		e.log.Info("vrrp_startup_delay: instances start later", "delay", d)
	}
	e.promoteSecondaries()
	for _, in := range e.insts {
		e.resolveLinks(in)
		e.setPending(in, true)
		e.mark(in)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		for bg.Err() == nil {
			err = e.opts.Net.WatchLinks(bg, func(ev netif.LinkEvent) {
				select {
				case e.events <- linkEvent{ev}:
				case <-bg.Done():
				}
			})
			if !errors.Is(err, netif.ErrOverrun) {
				break
			}
			// Notifications were lost: watch again, which reports every
			// link afresh.
			e.log.Warn("link notifications lost; re-reading links", "err", err)
		}
		select {
		case e.events <- linkWatchDone{err}:
		case <-bg.Done():
		}
	}()
	e.watchAddrs(&wg, bg)
	e.setNotifyScripts()
	e.syncTrackers()
	defer e.stopTrackers()
	e.startWaiting(time.Now())
	e.timer = e.newWakeTimer(e.expired)
	defer e.timer.Close() // after the last turn: Close waits for a running expiry
	if e.timerThread {
		e.setTimerThread()
	}
	e.arm()
	e.mu.Unlock()

	// The loop takes the events and the stop; expiries run on the timer's
	// goroutine (expired), packets on their socket's reader (read).
	done := ctx.Done()
loop:
	for {
		select {
		case <-done:
			done = nil
			e.mu.Lock()
			e.fx.hold()
			e.stopping = true
			e.stopDeadline = time.Now().Add(e.opts.StopTimeout)
			e.log.Info("stopping", "instances", len(e.insts))
			now := time.Now()
			for _, in := range e.insts {
				if in.group == nil {
					e.step(now, in, vrrp.Stop{})
				}
			}
			for _, g := range e.groups {
				e.stepGroup(now, g, -1, vrrp.Stop{})
			}
			e.endTurn(now)
			e.mu.Unlock()
		case ev := <-e.events:
			e.mu.Lock()
			e.fx.hold()
			e.handle(ev, &wg, bg)
			e.endTurn(time.Now())
			e.mu.Unlock()
		case <-e.finished:
			break loop
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ended = true
	// Whatever still holds addresses (a stop that timed out) lets go now.
	for _, in := range e.all() {
		if in.held {
			e.release(in)
		}
	}
	e.stopStatic()
	return nil
}

// expired is the turn of a timer expiry, on the timer's goroutine.
func (e *Engine) expired() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		return
	}
	e.armed = time.Time{}
	now := time.Now()
	if due := e.backupDue(now); !due.IsZero() && e.inputFirst(due) {
		if e.ended {
			return
		}
		// Adverts were waiting: they went first. Masters' timers fire
		// now; the backups' are looked at again on the next turn, with
		// what those adverts told them.
		e.fx.hold()
		e.fire(time.Now(), false)
		e.fx.release()
		e.arm()
		return
	}
	e.fx.hold()
	e.fire(now, true)
	e.endTurn(now)
}

// TimerOnThread moves the VRRP timer's wait and its expiries (the adverts
// due are sent from there) to an OS thread of their own, on which
// Options.TimerThread is called, or (off, the default) back to the
// runtime's network poller, whose wake-ups go to any of its threads. The
// thread is for a real-time priority that no other thread shares; it
// costs a few context switches per expiry more than the poller. It takes
// effect with PreciseTimer, at once or when Run starts.
func (e *Engine) TimerOnThread(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.timerThread == on {
		return
	}
	e.timerThread = on
	if e.timer != nil && !e.ended {
		e.setTimerThread()
	}
}

// setTimerThread applies timerThread to the timer (e.mu held).
func (e *Engine) setTimerThread() {
	t, ok := e.timer.(*fdTimer)
	if !ok {
		return
	}
	if err := t.SetThread(e.timerThread); err != nil {
		e.log.Warn("VRRP timer: cannot change its thread", "thread", e.timerThread, "err", err)
	}
}

// endTurn ends the turn of time now (e.mu held): instances waiting to
// start are looked at, the held addresses reported, the effects the turn
// queued let go, and the timer set for the next deadline.
func (e *Engine) endTurn(now time.Time) {
	if len(e.retiring) > 0 || e.anyPending() {
		e.startWaiting(time.Now())
	}
	e.reportVIPs(now)
	e.fx.release()
	e.arm()
}

// arm sets the timer for the earliest deadline (e.mu held), or, when a stop
// is complete or out of time, tells the loop to finish.
//
// The timer is only ever moved earlier. A backup re-arms its
// Master_Down_Timer at every advert, and with hundreds of instances the
// earliest deadline of all moves later at nearly every advert (the instance
// heard is the one that waited longest): a timer left set for the old
// deadline wakes once, early, finds nothing due and is set for the right
// time, where following every move cost a system call per advert.
func (e *Engine) arm() {
	if e.stopping && (e.allStopped() || !time.Now().Before(e.stopDeadline)) {
		if !e.finishing {
			e.finishing = true
			close(e.finished)
		}
		return
	}
	next := e.nextDeadline()
	if e.stopping && (next.IsZero() || e.stopDeadline.Before(next)) {
		next = e.stopDeadline
	}
	if next.IsZero() {
		next = time.Now().Add(time.Hour)
	}
	if e.armed.IsZero() || next.Before(e.armed) {
		e.timer.Reset(time.Until(next))
		e.armed = next
	}
}

// all returns the running and the retiring instances.
func (e *Engine) all() []*instance {
	if len(e.retiring) == 0 {
		return e.insts
	}
	return append(slices.Clone(e.insts), e.retiring...)
}

func (e *Engine) allStopped() bool {
	for _, in := range e.all() {
		if st := in.m.State(); st != vrrp.StateStopped && st != vrrp.StateInit {
			return false
		}
		if !in.releaseAt.IsZero() {
			return false // a handover's grace runs
		}
	}
	return true
}

// promoteSecondaries sets net.ipv4.conf.IF.promote_secondaries for the
// instances that ask for it (keepalived does the same at start).
func (e *Engine) promoteSecondaries() {
	for _, in := range e.insts {
		if !in.spec.PromoteSecondaries {
			continue
		}
		if err := e.opts.Net.Sysctl("net/ipv4/conf/"+in.spec.Interface+"/promote_secondaries", "1"); err != nil {
			e.log.Warn("promote_secondaries", "interface", in.spec.Interface, "err", err)
		}
	}
}

// removeStale removes what a killed earlier run left behind: only
// addresses vigil marked, only those of virtual routers this daemon owns,
// and the other marked ones only when no other vigil runs in the namespace
// (Options.Owner). An unmarked configured VIP is someone else's: it stays,
// with a warning.
func (e *Engine) removeStale() {
	var vips []netif.VIP
	for _, in := range e.insts {
		vips = append(vips, in.devVIPs()...)
	}
	others := e.opts.Owner == nil || e.opts.Owner.Alone()
	removed, foreign, err := e.opts.Net.RemoveStale(vips, others)
	if e.opts.Owner != nil {
		e.opts.Owner.Settle()
	}
	if err != nil {
		e.log.Warn("removing stale addresses", "err", err)
	}
	for _, a := range removed {
		e.log.Info("removed stale address left by an earlier run", "addr", a.Prefix, "ifindex", a.LinkIndex)
	}
	for _, a := range foreign {
		e.log.Warn("a configured virtual address is already on the interface and was not added by vigil; leaving it (vigil never removes an address it did not add)", "addr", a.Prefix, "ifindex", a.LinkIndex)
	}
}

func (e *Engine) resolveLink(name string) {
	if name == "" {
		return
	}
	li, err := e.opts.Net.Link(name)
	if err != nil {
		delete(e.links, name)
		return
	}
	e.links[name] = li
}

// attach opens (or shares) the instance's socket and resolves its source.
// An instance that cannot attach stays in FAULT with the reason in missing
// (netready.go says what brings it back).
func (e *Engine) attach(in *instance, wg *sync.WaitGroup, bg context.Context) {
	var addrs []netif.Addr
	if _, ok := e.links[in.spec.Interface]; ok {
		var err error
		if addrs, err = e.opts.Net.Addrs(); err != nil {
			in.missing = fmt.Sprintf("reading addresses: %v", err)
			e.attachFailed(in, in.attachFailing, "instance cannot run: FAULT; trying again", "err", err)
			return
		}
	}
	e.attachWith(in, addrs, wg, bg)
}

// attachWith is attach with the addresses of the namespace already read.
func (e *Engine) attachWith(in *instance, addrs []netif.Addr, wg *sync.WaitGroup, bg context.Context) {
	in.missing = ""
	in.attachAt = time.Time{}
	failing := in.attachFailing
	in.attachFailing = false
	li, ok := e.links[in.spec.Interface]
	if !ok {
		in.missing = fmt.Sprintf("interface %s not found", in.spec.Interface)
		e.log.Error("instance cannot run: interface missing, FAULT until it appears", "instance", in.spec.VRRP.Name, "interface", in.spec.Interface)
		return
	}
	if !e.ensureVMAC(in) {
		return
	}
	sockIf := in.spec.SockIf()
	src, why := sourceFor(in.spec, li, addrs)
	if why != "" {
		in.missing = why
		e.log.Warn("instance cannot run: no source address, FAULT until it is usable", "instance", in.spec.VRRP.Name, "interface", in.spec.Interface, "reason", why)
		return
	}
	in.src = src
	key := connKey{ifname: sockIf, v6: in.spec.IPv6, ah: usesAH(in)}
	if in.spec.VRRP.Unicast {
		key.unicast = src
	} else {
		key.group = in.spec.Group
		if !key.group.IsValid() {
			key.group = vrrpnet.DefaultGroup(family(in.spec.IPv6))
		}
	}
	c := e.conns[key]
	if c == nil {
		cfg := vrrpnet.Config{Interface: sockIf, Family: family(in.spec.IPv6), Unicast: in.spec.VRRP.Unicast}
		if key.ah {
			cfg.Protocol = vrrpnet.ProtocolAH
		}
		if in.spec.VRRP.Unicast {
			cfg.Src = src
			cfg.TTL = in.spec.UnicastTTL
		} else {
			cfg.Group = key.group
			cfg.Src = src
		}
		pc, err := e.opts.Net.OpenConn(cfg)
		if err != nil {
			in.missing = fmt.Sprintf("socket on %s: %v", sockIf, err)
			e.attachFailed(in, failing, "instance cannot run: VRRP socket, FAULT; trying again", "interface", sockIf, "err", err)
			return
		}
		c = &conn{key: key, c: pc, group: key.group, stats: connStats{dropped: map[string]uint64{}}}
		e.conns[key] = c
		wg.Add(1)
		go e.read(c, wg, bg)
	}
	if other := c.insts.by[in.spec.VRRP.VRID]; other != nil && other != in {
		in.missing = fmt.Sprintf("VRID %d already used on %s by %s", in.spec.VRRP.VRID, sockIf, other.spec.VRRP.Name)
		e.log.Error("instance cannot run", "instance", in.spec.VRRP.Name, "reason", in.missing)
		return
	}
	c.insts.set(in.spec.VRRP.VRID, in)
	in.conn = c
}

// vridTable holds a conn's instances by VRID. The receive path looks one
// up for every advert: an array slot is one memory access where a map
// lookup was several (4 % of a 1,000-instance backup's CPU samples in
// vigil-bench's scale mode, its data mostly out of the caches between
// bursts).
type vridTable struct {
	by [256]*instance
	n  int // instances held
}

// set puts in (nil: none) in VRID v's slot.
func (t *vridTable) set(v uint8, in *instance) {
	switch {
	case t.by[v] == nil && in != nil:
		t.n++
	case t.by[v] != nil && in == nil:
		t.n--
	}
	t.by[v] = in
}

func (e *Engine) detach(in *instance) {
	c := in.conn
	if c == nil {
		return
	}
	c.insts.set(in.spec.VRRP.VRID, nil)
	in.conn = nil
	if c.insts.n == 0 {
		c.c.Close()
		delete(e.conns, c.key)
	}
}

func family(v6 bool) vrrpnet.Family {
	if v6 {
		return vrrpnet.IPv6
	}
	return vrrpnet.IPv4
}

// readBatch is how many packets a reader takes from its socket at once.
const readBatch = 16

// readBuf is the room for one packet a socket of the family (v6: IPv6)
// receives: the largest VRRP message, 255 addresses (RFC 5798 §5.2.5's
// 8-bit Count IPvX Addr) with VRRPv2's authentication data, and on IPv4,
// whose raw sockets hand over the IP header too, the longest IPv4 header
// (60 bytes, with options) and keepalived's AH header before it: 4,088
// bytes over IPv6, 1,120 over IPv4. A larger datagram is no VRRP
// message; vrrpnet drops it as truncated and counts it.
func readBuf(v6 bool) int {
	if v6 {
		return packet.HeaderLen + 255*16
	}
	return 60 + packet.AHLen + packet.HeaderLen + 255*4 + packet.AuthDataLen
}

// read is a socket's reader goroutine: it takes the packets queued, then the
// engine's state, and hands them to their instances in one turn, until the
// socket is closed.
func (e *Engine) read(c *conn, wg *sync.WaitGroup, bg context.Context) {
	defer wg.Done()
	size := readBuf(c.key.v6)
	mem := make([]byte, readBatch*size)
	bufs := make([][]byte, readBatch)
	for i := range bufs {
		bufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
	}
	pkts := make([]vrrpnet.Packet, readBatch)
	// The turn runs inside the conn's read loop, which then waits for the
	// next packet without a system call that would find the queue empty.
	// detach closes the conn with e.mu held while this may wait for e.mu:
	// the conn's Close does not wait for a turn in progress.
	turn := func(ps []vrrpnet.Packet) error {
		e.rxTurns.Add(1)
		e.mu.Lock()
		if !e.ended {
			e.fx.hold()
			now := time.Now()
			for _, p := range ps {
				e.receive(now, c, p)
			}
			e.endTurn(now)
		}
		e.mu.Unlock()
		e.inputTaken()
		clear(ps)
		return nil
	}
	for {
		err := c.c.ReadLoop(bufs, pkts, turn)
		if errors.Is(err, net.ErrClosed) || bg.Err() != nil {
			return
		}
		select {
		case <-bg.Done():
			return
		case <-time.After(10 * time.Millisecond): // never spin on a persistent error
		}
	}
}

// prime gives a machine its initial picture before Start: source, links,
// trackers.
func (e *Engine) prime(now time.Time, in *instance) {
	if in.src.IsValid() && in.src != in.m.Config().Source {
		e.step(now, in, vrrp.SourceChanged{Addr: in.src})
	}
	in.primed = false
	e.updateTracking(now, in)
}

// resolveLinks reads the instance's interface and tracked interfaces.
func (e *Engine) resolveLinks(in *instance) {
	e.resolveLink(in.spec.Interface)
	if in.spec.VMAC.Name != "" {
		e.resolveLink(in.spec.VMAC.Name)
	}
	for _, t := range in.spec.Trackers {
		if t.Kind == track.Interface {
			e.resolveLink(t.Name)
		}
	}
}

func (e *Engine) handle(ev any, wg *sync.WaitGroup, bg context.Context) {
	now := time.Now()
	switch ev := ev.(type) {
	case linkEvent:
		e.linkChanged(now, ev.ev, wg, bg)
	case addrEvent:
		// What the kernel holds (VIPs defended), then the sources the
		// address concerns (FAULT left or entered).
		e.addrChanged(now, ev.ev)
		e.sourceAddrChanged(now, ev.ev)
	case addrResync:
		e.addrsResynced(now)
	case trackerEvent:
		e.trackerChanged(now, ev)
	case routeEvent:
		e.routeChanged(now, ev.ev)
	case claimsReady:
		e.claimsTaken(now, ev)
	case claimDefend:
		e.defendClaim(now, ev)
	case claimWatchDone:
		e.claimWatchEnded(ev)
	case addrWatchDone:
		if ev.err != nil && !e.stopping {
			e.log.Error(ev.what+" watch ended; what others remove is no longer restored", "err", ev.err)
		}
	case linkWatchDone:
		if ev.err != nil && !e.stopping {
			e.linkWatchFailed = ev.err
			e.log.Error("link watch ended; link changes are no longer seen", "err", ev.err)
		}
	case eventloop.Request:
		ev.F()
	}
}

func (e *Engine) linkChanged(now time.Time, ev netif.LinkEvent, wg *sync.WaitGroup, bg context.Context) {
	name := ev.Link.Name
	if !ev.Deleted {
		e.renamed(now, name, ev.Link.Index, wg, bg)
	}
	old, had := e.links[name]
	if ev.Deleted {
		delete(e.links, name)
	} else {
		e.links[name] = ev.Link
	}
	if ev.Initial && had && old.Usable() == ev.Link.Usable() {
		return
	}
	if e.uses(name) {
		switch {
		case ev.Deleted:
			e.log.Warn("interface removed", "interface", name)
		case !had:
			e.log.Info("interface appeared", "interface", name, "up", ev.Link.Usable())
		case old.Usable() != ev.Link.Usable():
			e.log.Info("link changed", "interface", name, "up", ev.Link.Usable())
		}
	}
	if _, ok := e.pacers[name]; ok && ev.Deleted {
		delete(e.pacers, name)
	}
	if had && !ev.Deleted && old.Index == ev.Link.Index && len(old.MAC) > 0 && !bytes.Equal(old.MAC, ev.Link.MAC) {
		e.macChanged(now, name, old.MAC, ev.Link.MAC)
	}
	if !had && !ev.Deleted {
		e.interfaceAppeared(name)
	}
	for _, in := range e.insts {
		if in.spec.SockIf() == name || (in.spec.VMAC.Name != "" && in.spec.Interface == name) {
			if in.spec.VMAC.Name == name && ev.Deleted {
				delete(e.vmacs, name) // its parent went: made again when the parent is back
			}
			switch {
			case ev.Deleted:
				// The socket is bound to the old ifindex: drop it.
				e.detach(in)
				in.missing = fmt.Sprintf("interface %s removed", name)
			case e.stopping || in.pending:
			case had && old.Index != ev.Link.Index, in.conn == nil:
				// Created again (a new ifindex), or appeared: open the
				// socket on it.
				e.detach(in)
				e.attach(in, wg, bg)
				if in.src.IsValid() && in.src != in.m.Config().Source {
					e.step(now, in, vrrp.SourceChanged{Addr: in.src})
				}
			}
		}
		e.updateTracking(now, in)
	}
}

// attachRetry is how often an instance whose VRRP socket could not be
// opened tries again. The failure may be the host's for a while (no
// descriptor left, memory short) with no link or address event to come
// when it passes: keepalived, which opens its sockets once, would not even
// have noticed.
const attachRetry = time.Second

// attachFailed schedules another attach of in after attachRetry, logging
// msg with args unless the attach before failed too (logged, was true):
// the retries are quiet until one succeeds.
func (e *Engine) attachFailed(in *instance, logged bool, msg string, args ...any) {
	if !logged {
		e.log.Error(msg, append([]any{"instance", in.spec.VRRP.Name}, append(args, "every", attachRetry.String())...)...)
	}
	in.attachFailing = true
	in.attachAt = time.Now().Add(attachRetry)
	e.mark(in)
}

// retryAttach tries again to attach an instance whose socket could not be
// opened.
func (e *Engine) retryAttach(now time.Time, in *instance) {
	if in.conn != nil || in.pending || e.stopping {
		return
	}
	if _, ok := e.links[in.spec.Interface]; !ok {
		return // the interface's return attaches it
	}
	addrs, err := e.opts.Net.Addrs()
	if err != nil {
		in.attachAt = now.Add(attachRetry)
		return
	}
	was := in.attachFailing
	e.reattach(now, in, addrs)
	if in.conn != nil && was {
		e.log.Info("instance attached again", "instance", in.spec.VRRP.Name, "interface", in.spec.Interface)
	}
}

// renamed handles an interface known under another name that now has
// name (`ip link set eth0 name eth1`, udev): the interface the
// configuration names is gone, as keepalived 2.2.7 sees it ("Interface name
// has changed from eth0 to eth1", then FAULT). The instances on it fault
// first, with the old name still in the link table, so that a master's
// priority-0 advert leaves on its socket and its addresses, which went
// along under the new name, are removed by index; then the old name is
// removed as a deleted interface would be. Renamed back, the interface
// appears under the configured name again and the instances come back.
func (e *Engine) renamed(now time.Time, name string, index int, wg *sync.WaitGroup, bg context.Context) {
	var from string
	for n, li := range e.links {
		if n != name && li.Index == index {
			from = n
			break
		}
	}
	if from == "" {
		return
	}
	if e.uses(from) || e.uses(name) {
		e.log.Warn("interface renamed", "from", from, "to", name,
			"keepalived", "Interface name has changed from "+from+" to "+name)
	}
	for _, in := range e.insts {
		if !in.pending && (in.spec.SockIf() == from || in.spec.Interface == from) {
			in.missing = fmt.Sprintf("interface %s renamed to %s", from, name)
			e.updateTracking(now, in)
		}
	}
	gone := e.links[from]
	gone.Name = from
	e.linkChanged(now, netif.LinkEvent{Link: gone, Deleted: true}, wg, bg)
}

// macChanged makes the masters with addresses on the interface announce
// them again from its new MAC address: neighbours would otherwise send to
// the old one until their entries expire.
func (e *Engine) macChanged(now time.Time, name string, from, to net.HardwareAddr) {
	n := 0
	for _, in := range e.insts {
		if in.garp != nil && in.garp.MACChanged(now, name) {
			e.mark(in)
			n++
		}
	}
	if n > 0 || e.uses(name) {
		e.log.Info("MAC address changed", "interface", name, "from", from.String(), "to", to.String(),
			"keepalived", "("+name+") MAC Address changed from "+from.String()+" to "+to.String())
	}
}

// maxInputFirst bounds how long inputFirst may hold a due timer back: a
// socket that never empties (a flood) must not stop the timers.
const maxInputFirst = 50 * time.Millisecond

// inputFirst lets the adverts already queued be handled before due timers
// fire, as keepalived's scheduler serves ready sockets before timeouts.
// Without it a backup that was stalled past its Master_Down_Interval (a
// paused VM, a starved CPU) would act on the expired timer before reading
// the master's adverts that arrived meanwhile, take the VIP and give it
// back a millisecond later. It reports whether it found input; the caller
// then re-evaluates the timers.
//
// It is called with e.mu held, by the timer's goroutine. The packets belong
// to the sockets' readers, which handle them in the order they came:
// inputFirst lets go of e.mu for them until none has packets in hand or
// unread, for a millisecond at most, and takes it back. Events (address
// and link notifications, requests) are not waited for: during a mass
// takeover the notifications of the addresses being added flow all along,
// and must not hold back the timers of the instances still to take over.
func (e *Engine) inputFirst(due time.Time) bool {
	now := time.Now()
	if due != e.holdFor {
		// A new expiry (adverts moved the timer since the last hold).
		e.holdFor, e.inputSince = due, now
	} else if now.Sub(e.inputSince) > maxInputFirst {
		return false
	}
	if e.rxTurns.Load() == 0 && !e.unread() {
		return false
	}
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-e.inputDone: // a turn that nobody waited for
		default:
		}
		e.inputWait.Store(true)
		e.mu.Unlock()
		timeout := false
		select {
		case <-e.inputDone:
		case <-t.C:
			timeout = true
		}
		e.mu.Lock()
		e.inputWait.Store(false)
		if timeout || e.ended || (e.rxTurns.Load() == 0 && !e.unread()) {
			return true
		}
	}
}

// unread reports whether a socket holds a packet no reader has taken.
func (e *Engine) unread() bool {
	for _, c := range e.conns {
		if c.c.Pending() {
			return true
		}
	}
	return false
}

// inputTaken ends a reader's turn (after e.mu is let go): an inputFirst
// waiting for input is told.
func (e *Engine) inputTaken() {
	e.rxTurns.Add(-1)
	if e.inputWait.Load() {
		select {
		case e.inputDone <- struct{}{}:
		default:
		}
	}
}

// uses reports whether an instance runs on or tracks the interface.
func (e *Engine) uses(name string) bool {
	for _, in := range e.all() {
		if in.spec.Interface == name || in.spec.VMAC.Name == name {
			return true
		}
		for _, t := range in.spec.Trackers {
			if t.Kind == track.Interface && t.Name == name {
				return true
			}
		}
	}
	return false
}

// receive parses a packet, counts what the codec rejects and hands the
// advert to the instance with its VRID.
func (e *Engine) receive(now time.Time, c *conn, pkt vrrpnet.Packet) {
	c.stats.received++
	msg, ah, err := openAH(c, pkt)
	var adv packet.Advert
	if err == nil {
		adv, err = packet.ParseInto(msg, pkt.Src, pkt.Dst, e.rxAddrs)
		if cap(adv.Addrs) > cap(e.rxAddrs) {
			e.rxAddrs = adv.Addrs[:0]
		}
	}
	if err != nil {
		reason := "malformed"
		var pe *packet.Error
		if errors.As(err, &pe) {
			reason = pe.Reason().String()
		}
		var target *instance
		if len(msg) > 1 {
			target = c.insts.by[msg[1]]
		}
		if target != nil {
			target.limiter.note(&e.dropLog, e.log, now, target.spec.VRRP.Name, reason, pkt.Src, err.Error())
			target.codecDrops(reason)
		} else {
			c.stats.dropped[reason]++
		}
		return
	}
	in := c.insts.by[adv.VRID]
	if in == nil {
		c.stats.dropped["unknown_vrid"]++
		return
	}
	in.notePeer(now, pkt.Src, adv.Priority)
	if adv.Priority == 0 && in.rival.src == pkt.Src {
		in.rival = rival{} // it leaves (its adverts may still be dropped)
	}
	unicast := c.key.unicast.IsValid() || (pkt.Dst.IsValid() && pkt.Dst != c.group)
	// An address list warning ends with an advert accepted without a
	// mismatch: the counters are read around the step only while one
	// stands (a Status copies the whole instance's view).
	rx := vrrp.Received{Src: pkt.Src, TTL: pkt.TTL, Unicast: unicast, Advert: adv, AH: ah}
	if in.mismatch == "" {
		e.step(now, in, rx)
		e.logMismatch(now, in)
		return
	}
	before := in.m.Status().Counters
	e.step(now, in, rx)
	if after := in.m.Status().Counters; in.mismatch != "" && after.AdvertsReceived > before.AdvertsReceived &&
		after.AddrMismatch == before.AddrMismatch && after.IntervalMismatch == before.IntervalMismatch {
		in.mismatch = ""
		in.mismatchChanges++
		log, name, src := e.log, in.spec.VRRP.Name, pkt.Src
		in.mismatchLine = func(extra ...any) {
			log.Info("the master's advert matches ours again (address list, advert_int)", append([]any{"instance", name, "master", src}, extra...)...)
		}
	}
	e.logMismatch(now, in)
}

// logMismatch logs the instance's address list state (see addrMismatch)
// when the log does not say it yet and the gate lets a line through; the
// line counts the changes it did not log.
func (e *Engine) logMismatch(now time.Time, in *instance) {
	if in.mismatch == in.mismatchLogged || in.mismatchLine == nil {
		return
	}
	if !pace.Allow(&in.mismatchLogAt, now, dropLogEvery) {
		return
	}
	in.mismatchLogged = in.mismatch
	line := in.mismatchLine
	var extra []any
	if n := in.mismatchChanges; n > 1 {
		extra = []any{"changes_since_last_line", n}
	}
	in.mismatchChanges = 0
	e.fx.later(func() { line(extra...) })
}

// addrMismatch describes a vrrp.AddrMismatch for status and prepares its
// log line, which receive's logMismatch writes.
func (e *Engine) addrMismatch(in *instance, a vrrp.AddrMismatch) {
	ours := in.m.Config().VIPs
	var msg string
	if len(a.Theirs) != a.Ours {
		msg = fmt.Sprintf("master %v advertises %d addresses, ours %d", a.Src, len(a.Theirs), a.Ours)
	} else {
		msg = fmt.Sprintf("master %v advertises other addresses (%v), ours (%v)", a.Src, addrList(a.Theirs), addrList(ours))
	}
	if msg == in.mismatch {
		return
	}
	in.mismatch = msg
	in.mismatchChanges++
	log := e.log
	name := in.spec.VRRP.Name
	theirs, mine := addrList(a.Theirs), addrList(ours)
	what := "address list differs from the master's; staying backup (a rolling virtual_ipaddress change?)"
	if e.stopping {
		what = "address list differs from the new master's; handing over to it all the same (a rolling virtual_ipaddress change?)"
	}
	in.mismatchLine = func(extra ...any) {
		log.Warn(what, append([]any{"instance", name, "master", a.Src, "priority", a.Priority, "theirs", theirs, "ours", mine, "detail", msg}, extra...)...)
	}
}

// intervalMismatch describes a vrrp.IntervalMismatch for status and
// prepares its log line, as addrMismatch does.
func (e *Engine) intervalMismatch(in *instance, a vrrp.IntervalMismatch) {
	msg := fmt.Sprintf("master %v advertises every %v, ours %v (advert_int)", a.Src, a.Theirs, a.Ours)
	if msg == in.mismatch {
		return
	}
	in.mismatch = msg
	in.mismatchChanges++
	log, name := e.log, in.spec.VRRP.Name
	what := "advert_int differs from the master's; staying backup, timed by its interval (a rolling advert_int change?)"
	if e.stopping {
		what = "advert_int differs from the new master's; handing over to it all the same (a rolling advert_int change?)"
	}
	in.mismatchLine = func(extra ...any) {
		log.Warn(what, append([]any{"instance", name, "master", a.Src, "priority", a.Priority, "theirs", a.Theirs.String(), "ours", a.Ours.String()}, extra...)...)
	}
}

func addrList(as []netip.Addr) string {
	ss := make([]string, len(as))
	for i, a := range as {
		ss[i] = a.String()
	}
	return strings.Join(ss, " ")
}

// backupDue returns the earliest expired Master_Down_Timer of a Backup, or
// the zero time when none has expired.
func (e *Engine) backupDue(now time.Time) time.Time {
	var due time.Time
	for _, in := range e.due(now) {
		if in.pending || in.m.State() != vrrp.StateBackup {
			continue
		}
		if d := in.m.Deadline(); !d.IsZero() && !now.Before(d) && (due.IsZero() || d.Before(due)) {
			due = d
		}
	}
	return due
}

// fire delivers timeouts and due announcements; with backups false, the
// expired timers of Backup instances (and of sync groups that hold one)
// wait.
func (e *Engine) fire(now time.Time, backups bool) {
	due := e.due(now)
	timerDue := func(in *instance) bool {
		d := in.m.Deadline()
		return !in.pending && !d.IsZero() && !now.Before(d)
	}
	// Adverts of every due instance go out first; the rest (addresses,
	// gratuitous ARP, logs, notifications) follows in each instance's
	// order. When hundreds of backups expire together, the last one's
	// advert then leaves microseconds, not a hundred milliseconds, after
	// its timer.
	e.deferBuf = e.deferBuf[:0]
	e.deferred = &e.deferBuf
	e.batching = true
	groups := map[*group]bool{}
	for _, in := range due {
		if !timerDue(in) {
			continue
		}
		if in.group != nil {
			ok, seen := groups[in.group]
			held := !backups && in.m.State() == vrrp.StateBackup
			groups[in.group] = (!seen || ok) && !held
			continue
		}
		if backups || in.m.State() != vrrp.StateBackup {
			e.step(now, in, vrrp.Timeout{})
		}
	}
	for g, ok := range groups {
		if g.g != nil && ok {
			e.stepGroup(now, g, -1, vrrp.Timeout{})
		}
	}
	e.batching = false
	e.flushAdverts()
	e.deferred = nil
	for _, d := range e.deferBuf {
		e.execute(now, d.in, d.a)
		e.mark(d.in)
	}
	clear(e.deferBuf)
	for _, in := range due {
		if !in.releaseAt.IsZero() && !now.Before(in.releaseAt) {
			in.releaseAt = time.Time{}
			e.release(in)
		}
		if !in.attachAt.IsZero() && !now.Before(in.attachAt) {
			in.attachAt = time.Time{}
			e.retryAttach(now, in)
			e.mark(in)
		}
		if in.garp != nil {
			if n := in.garp.Next(); !n.IsZero() && !now.Before(n) {
				if sends := in.garp.Due(now); !in.leaving() {
					e.announce(now, sends)
				}
				e.mark(in)
			}
		}
	}
	for dev, p := range e.pacers {
		if n := p.Next(); !n.IsZero() && !now.Before(n) {
			e.sendAnnouncements(dev, p.Due(now))
		}
	}
}

// deferredAction is an action fire runs after the adverts.
type deferredAction struct {
	in *instance
	a  vrrp.Action
}

func (e *Engine) nextDeadline() time.Time {
	e.flush()
	var next time.Time
	if len(e.dl) > 0 {
		next = e.dl[0].in.next
	}
	if e.npending > 0 && !e.startAt.IsZero() && time.Now().Before(e.startAt) && (next.IsZero() || e.startAt.Before(next)) {
		next = e.startAt
	}
	for _, p := range e.pacers {
		if t := p.Next(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if e.vipsDirty && e.opts.Hooks.VIPsChanged != nil {
		// A report waits (reportVIPs); none made yet: the next turn's.
		at := e.vipsReportAt
		if at.IsZero() {
			at = time.Now()
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// step feeds one event to an instance (through its sync group if it has
// one) and executes the resulting actions.
func (e *Engine) step(now time.Time, in *instance, ev vrrp.Event) {
	if in.group != nil && in.group.g != nil {
		e.stepGroup(now, in.group, in.member, ev)
		return
	}
	for _, a := range in.m.Step(now, ev) {
		e.execute(now, in, a)
	}
	e.mark(in)
}

func (e *Engine) stepGroup(now time.Time, g *group, member int, ev vrrp.Event) {
	for _, ma := range g.g.Step(now, member, ev) {
		if ma.Member < 0 {
			if gt, ok := ma.Action.(vrrp.GroupTransition); ok {
				attrs := []any{"group", gt.Group, "from", gt.From, "to", gt.To, "reason", gt.Reason}
				if ka := keepalivedSyncing(gt.Group, gt.From, gt.To); ka != "" {
					attrs = append(attrs, "keepalived", ka)
				}
				e.log.Info("sync group transition", attrs...)
				e.timeline.Add(status.Transition{At: now, Kind: "group", Name: gt.Group, From: gt.From.String(), To: gt.To.String(), Reason: gt.Reason})
				e.notifyGroup(g, gt.To)
				if h := e.opts.Hooks.GroupTransition; h != nil {
					h(gt.Group, gt.From, gt.To, gt.Reason)
				}
			}
			continue
		}
		e.execute(now, g.ins[ma.Member], ma.Action)
	}
	for _, in := range g.ins {
		e.mark(in)
	}
}

func (e *Engine) execute(now time.Time, in *instance, a vrrp.Action) {
	if e.deferred != nil {
		if _, ok := a.(vrrp.SendAdvert); !ok {
			*e.deferred = append(*e.deferred, deferredAction{in, a})
			return
		}
	}
	name := in.spec.VRRP.Name
	switch a := a.(type) {
	case vrrp.SendAdvert:
		e.sendAdvert(in, a)
	case vrrp.TakeOver:
		in.releaseAt = time.Time{}
		e.takeOver(now, in)
	case vrrp.Release:
		if in.handingOver && in.held {
			in.handingOver = false
			in.releaseAt = now.Add(handoverGrace(in.spec.VRRP.AdvertInt))
			return
		}
		in.handingOver = false
		in.releaseAt = time.Time{}
		e.release(in)
	case vrrp.Transition:
		in.since = now
		in.transitions++
		lvl := slog.LevelInfo
		if a.To == vrrp.StateFault {
			lvl = slog.LevelWarn
		}
		prio := int(in.m.Status().Priority)
		log := e.log
		e.fx.later(func() {
			attrs := []any{"instance", name, "from", a.From.String(), "to", a.To.String(), "priority", prio, "reason", a.Reason}
			if ka := keepalivedEntering(name, a.From, a.To); ka != "" {
				attrs = append(attrs, "keepalived", ka)
			}
			log.Log(context.Background(), lvl, "transition", attrs...)
		})
		tr := status.Transition{At: now, Kind: "instance", Name: name, From: a.From.String(), To: a.To.String(), Reason: a.Reason, Priority: prio}
		e.timeline.Add(tr)
		in.noteTransition(transition{at: now, reason: a.Reason, from: a.From, to: a.To, prio: uint8(prio)})
		e.notifyInstance(in, a.To, prio)
		if h := e.opts.Hooks.InstanceTransition; h != nil {
			h(name, a.From, a.To, prio, a.Reason)
		}
	case vrrp.Dropped:
		in.limiter.note(&e.dropLog, e.log, now, name, a.Reason.String(), a.Src, a.Detail)
	case vrrp.LowerPriorityAdvert:
		if in.garp != nil {
			in.garp.LowerPriority(now)
		}
		e.notifyLowerPriority(in)
	case vrrp.AddrMismatch:
		e.addrMismatch(in, a)
	case vrrp.IntervalMismatch:
		e.intervalMismatch(in, a)
	case vrrp.RivalMaster:
		e.rivalMaster(now, in, a)
	case vrrp.NonPeerAdvert:
		// The machine reports each change of source: a LAN that sends
		// from two addresses in turn would log every advert.
		if n, ok := in.limiter.allow(&e.dropLog, e.log, now, "non_peer_source"); ok {
			e.log.Warn("unicast advert from an address that is not a unicast_peer, not dropped (as keepalived 2.2.7; check_unicast_src drops such adverts)",
				"instance", name, "src", a.Src, "suppressed", n)
		}
	case vrrp.ChecksumFallback:
		in.oldSumFrom, in.oldSumAt = a.Src, now
		e.log.Warn("an advert used the old VRRPv3 unicast checksum (keepalived <= 1.3.6); sending it from now on, as keepalived 2.2.7 does, until a restart or a reload that changes the instance: peers with old_unicast_checksum never drop this node's adverts",
			"instance", name, "from", a.Src)
	case vrrp.HandoverAborted:
		in.handingOver = false
		e.log.Warn("handover: no router took over before the timeout; still MASTER, keeping the addresses (is the backup running?)", "instance", name)
	case vrrp.HandoverStarted:
		in.handingOver = true
		e.cancelAnnouncements(in)
		e.log.Info("handover: priority 0 sent, holding addresses until the new master is heard", "instance", name, "until", a.Until.Format(time.RFC3339Nano))
	}
}

// sendAdvert sends an advert to the group, or to every unicast peer. While
// fire sends the adverts due (e.batching), they wait in their socket's
// batch for flushAdverts: one system call per socket and burst.
func (e *Engine) sendAdvert(in *instance, sa vrrp.SendAdvert) {
	c := in.conn
	if c == nil {
		return
	}
	var seal vrrpnet.Seal // one for every destination of this advert
	if sa.Advert.AuthType == packet.AuthAH {
		seal = ahSeal(in)
	}
	if !in.spec.VRRP.Unicast {
		e.queueAdvert(c, in, sa, seal, c.group)
	} else {
		for _, p := range in.spec.VRRP.Peers {
			if !e.queueAdvert(c, in, sa, seal, p.Addr) {
				break
			}
		}
	}
	if !e.batching {
		e.flushAdverts()
	}
}

// queueAdvert encodes an advert to dst into its socket's batch; an AH
// advert with its AH header, to be sealed by seal once its IPv4 header is
// built.
func (e *Engine) queueAdvert(c *conn, in *instance, sa vrrp.SendAdvert, seal vrrpnet.Seal, dst netip.Addr) bool {
	start := len(c.arena)
	b := c.arena
	if sa.Advert.AuthType == packet.AuthAH {
		b = packet.NewAH(in.src, sa.AHSeq).Append(b)
	}
	b, err := sa.Advert.Append(b, in.src, dst)
	if err != nil {
		e.log.Error("cannot encode advert", "instance", in.spec.VRRP.Name, "err", err)
		return false
	}
	c.arena = b
	if len(c.out) == 0 {
		e.sending = append(e.sending, c)
	}
	c.out = append(c.out, vrrpnet.Message{Payload: b[start:len(b):len(b)], Src: in.src, Dst: dst, Seal: seal})
	c.outFrom = append(c.outFrom, in)
	return true
}

// flushAdverts sends the adverts queued, counting and logging the failures
// as drops of their instances.
func (e *Engine) flushAdverts() {
	for _, c := range e.sending {
		if c.c.WriteBatch(c.out) > 0 {
			now := time.Now()
			for i, m := range c.out {
				if m.Err != nil {
					in := c.outFrom[i]
					in.codecDrops("send_error")
					in.limiter.note(&e.dropLog, e.log, now, in.spec.VRRP.Name, "send_error", netip.Addr{}, m.Err.Error()) // the error names source and destination
				}
			}
		}
		clear(c.out)
		clear(c.outFrom)
		c.out, c.outFrom, c.arena = c.out[:0], c.outFrom[:0], c.arena[:0]
	}
	clear(e.sending)
	e.sending = e.sending[:0]
}

func (in *instance) allVIPs() []netif.VIP {
	return append(slices.Clone(in.spec.VIPs), in.spec.ExcludedVIPs...)
}

func (e *Engine) takeOver(now time.Time, in *instance) {
	vips := in.devVIPs()
	var targets []garp.Target
	for _, v := range vips {
		targets = append(targets, garp.Target{Addr: v.Addr(), Dev: v.Dev})
	}
	// The interfaces' indexes as the link events told them, read here
	// (the loop owns e.links): the adds need no lookup by name.
	index := make([]int, len(vips))
	for k, v := range vips {
		if li, ok := e.links[v.Dev]; ok {
			index[k] = li.Index
		}
	}
	name, net, log, errs := in.spec.VRRP.Name, e.opts.Net, e.log, &in.netErrors
	routes, rules := in.spec.Routes, in.spec.Rules
	wasHeld := in.held
	in.held = true
	e.heldChanged(in) // accept mode off: the drops go in before the addresses
	adds := make([]netif.VIPAt, len(vips))
	for k, v := range vips {
		adds[k] = netif.VIPAt{Index: index[k], VIP: v}
	}
	e.installVIPs(adds, func(errs []error) {
		for k, err := range errs {
			if err != nil {
				log.Error("cannot add virtual address", "instance", name, "addr", vips[k].String(), "err", err)
			}
		}
	})
	if len(routes) > 0 || len(rules) > 0 {
		e.fx.install(func() {
			for _, r := range routes {
				if err := net.AddRoute(r); err != nil {
					routeFailed(log, errs, "cannot add virtual route", name, "route", r.String(), err)
				}
			}
			for _, r := range rules {
				if err := net.AddRule(r); err != nil {
					routeFailed(log, errs, "cannot add virtual rule", name, "rule", r.String(), err)
				}
			}
		})
	}
	e.mark(in)
	// The addresses' holders gain this instance: the index grows rather
	// than being built again at each of a mass takeover's instances.
	h := e.holders
	e.vipsChanged()
	if h != nil && !wasHeld {
		e.holders = h
		h.add(in)
	}
	in.garp = garp.NewSchedule(in.spec.GARP, targets, now)
	e.announce(now, in.garp.Due(now))
	e.watchClaims(in)
}

// installVIPs queues the addition of vips on the effects worker (an
// install, see effects); added receives one result per address.
func (e *Engine) installVIPs(vips []netif.VIPAt, added func(errs []error)) {
	if e.fx == nil {
		added(e.opts.Net.AddVIPs(vips))
		return
	}
	e.fx.installVIPs(vips, added)
}

func (e *Engine) release(in *instance) {
	vips := in.devVIPs()
	// By the indexes the link events told (the loop owns e.links): an
	// interface just renamed took the addresses along under its new name.
	dels := make([]netif.VIPAt, len(vips))
	for k, v := range vips {
		dels[k].VIP = v
		if li, ok := e.links[v.Dev]; ok {
			dels[k].Index = li.Index
		}
	}
	name, net, log, errs := in.spec.VRRP.Name, e.opts.Net, e.log, &in.netErrors
	routes, rules := in.spec.Routes, in.spec.Rules
	e.fx.add(func() {
		for i := len(rules) - 1; i >= 0; i-- {
			if err := net.DelRule(rules[i]); err != nil {
				routeFailed(log, errs, "cannot remove virtual rule", name, "rule", rules[i].String(), err)
			}
		}
		for i := len(routes) - 1; i >= 0; i-- {
			if err := net.DelRoute(routes[i]); err != nil {
				routeFailed(log, errs, "cannot remove virtual route", name, "route", routes[i].String(), err)
			}
		}
		for _, v := range dels {
			if err := net.DelVIPAt(v); err != nil {
				log.Error("cannot remove virtual address", "instance", name, "addr", v.VIP.String(), "err", err)
			}
		}
	})
	in.held = false
	e.heldChanged(in) // and come out after them
	e.mark(in)
	e.vipsChanged()
	if in.garp != nil {
		e.cancelAnnouncements(in)
		in.garp = nil
	}
}

// cancelAnnouncements forgets the gratuitous ARPs and NAs of in's
// addresses that wait in the pacers.
func (e *Engine) cancelAnnouncements(in *instance) {
	targets := map[garp.Target]bool{}
	for _, v := range in.devVIPs() {
		targets[garp.Target{Addr: v.Addr(), Dev: v.Dev}] = true
	}
	for _, p := range e.pacers {
		p.Cancel(func(s garp.Send) bool { return targets[s.Target] })
	}
}

// leaving reports whether in sent priority 0 and holds its addresses only
// until the new master is heard (and a grace after): it announces them no
// more, or the LAN's caches would follow the leaving node again after the
// new master's announcements (and the new master would take them for an
// address conflict).
func (in *instance) leaving() bool {
	return in.handingOver || !in.releaseAt.IsZero()
}

// vipsChanged notes that the held addresses changed; the loop reports them
// to the hook once per turn (reportVIPs), not once per instance.
func (e *Engine) vipsChanged() { e.vipsDirty, e.holders = true, nil }

// heldChanged brings the VRRP firewall up to date after an instance took or
// released its addresses. Only an instance with accept mode off has drops,
// and VMACs are synced as they come and go: with an empty firewall, another
// instance's change leaves it as it is, and a mass takeover does not build
// the firewall's state again at each of its instances.
func (e *Engine) heldChanged(in *instance) {
	if in.spec.NoAccept || !e.fw.Empty() {
		e.syncFirewall()
	}
}

// vipsReportGap is the least time between two reports of the held
// addresses. A mass takeover of 1,000 instances takes over in about as
// many turns, over about a second; a report per turn built and gave away
// (and the director copied) a set of up to 1,000 addresses each time,
// most of what the takeover allocated. Reports are spaced instead: the
// first change is reported at once, the changes of the next 100 ms in one
// report when they are over. The director's ha_suspend, the one reader,
// acts on checkers whose delay_loop is seconds.
const vipsReportGap = 100 * time.Millisecond

// reportVIPs gives the hook the set of virtual addresses this host holds,
// at the end of the turn of time now when the last report is vipsReportGap
// old (or the engine stops), else at vipsReportAt (nextDeadline).
func (e *Engine) reportVIPs(now time.Time) {
	h := e.opts.Hooks.VIPsChanged
	if !e.vipsDirty || h == nil {
		e.vipsDirty = false
		return
	}
	if now.Before(e.vipsReportAt) && !e.stopping {
		return
	}
	e.vipsDirty = false
	e.vipsReportAt = now.Add(vipsReportGap)
	held := make(map[netip.Addr]bool, e.vipsReported)
	for _, in := range e.all() {
		if in.held {
			for _, v := range in.spec.VIPs {
				held[v.Addr()] = true
			}
			for _, v := range in.spec.ExcludedVIPs {
				held[v.Addr()] = true
			}
		}
	}
	e.vipsReported = len(held)
	h(held)
}

// announce passes due sends through each interface's pacer.
func (e *Engine) announce(now time.Time, sends []garp.Send) {
	byDev := map[string][]garp.Send{}
	for _, s := range sends {
		byDev[s.Dev] = append(byDev[s.Dev], s)
	}
	for dev, ss := range byDev {
		p := e.pacers[dev]
		if p == nil {
			p = garp.NewPacer(e.spec.GARPInterval, e.spec.GNAInterval)
			e.pacers[dev] = p
		}
		e.sendAnnouncements(dev, p.Offer(now, ss))
	}
}

func (e *Engine) sendAnnouncements(dev string, sends []garp.Send) {
	if len(sends) == 0 {
		return
	}
	li, ok := e.links[dev]
	if !ok {
		return
	}
	e.countAnnouncements(sends)
	if h := e.opts.Hooks.Announced; h != nil {
		h(len(sends))
	}
	// The first packet of each address goes ahead of the repeats (see
	// effects): the worker sends the first round of a mass takeover's
	// addresses before the other rounds of any of them.
	seen := make(map[garp.Target]bool, len(sends))
	var first, rest []garp.Send
	for _, s := range sends {
		if seen[s.Target] {
			rest = append(rest, s)
			continue
		}
		seen[s.Target] = true
		first = append(first, s)
	}
	e.fx.first(e.announcer(dev, li, first))
	if len(rest) > 0 {
		e.fx.later(e.announcer(dev, li, rest))
	}
}

// announcer returns the function that sends the packets on the worker.
func (e *Engine) announcer(dev string, li netif.LinkInfo, sends []garp.Send) func() {
	net, log := e.opts.Net, e.log
	return func() {
		router, checked := false, false
		// One line per batch: a link that went down fails every packet
		// of a takeover's burst the same way.
		var failed int
		var firstErr error
		var firstAddr netip.Addr
		for _, s := range sends {
			var err error
			if s.Addr.Is4() {
				err = net.SendARP(li.Index, li.MAC, s.Addr)
			} else {
				if !checked {
					router, checked = net.IPv6Forwarding(dev), true
				}
				err = net.SendNA(li.Index, li.MAC, s.Addr, router)
			}
			if err != nil {
				if failed == 0 {
					firstErr, firstAddr = err, s.Addr
				}
				failed++
			}
		}
		if failed > 0 {
			log.Warn("gratuitous announcement failed", "dev", dev, "addr", firstAddr, "err", firstErr, "failed", failed, "of", len(sends))
		}
	}
}

// do runs f in the loop and waits for it.
func (e *Engine) do(ctx context.Context, f func()) error { return eventloop.Do(ctx, e.events, f) }

// Handover makes the named instance (every master when name is empty) hand
// its addresses over to a backup without a gap (see vrrp.Handover).
func (e *Engine) Handover(ctx context.Context, name string) error {
	var err error
	derr := e.do(ctx, func() {
		now := time.Now()
		if name == "" {
			n := 0
			for _, in := range e.insts {
				if in.m.State() == vrrp.StateMaster {
					e.step(now, in, vrrp.Handover{})
					n++
				}
			}
			if n == 0 {
				err = errors.New("no instance is MASTER on this node: nothing to hand over")
			}
			return
		}
		in := e.byName[name]
		if in == nil {
			err = fmt.Errorf("engine: no instance %q", name)
			return
		}
		if st := in.m.State(); st != vrrp.StateMaster {
			err = fmt.Errorf("instance %q is %s, not MASTER: nothing to hand over", name, st)
			return
		}
		e.step(now, in, vrrp.Handover{})
	})
	if derr != nil {
		return derr
	}
	return err
}

// Reclaim ends the yield a Handover left on the named instance (all when
// empty), so normal preemption applies again.
func (e *Engine) Reclaim(ctx context.Context, name string) error {
	var err error
	derr := e.do(ctx, func() {
		now := time.Now()
		for _, in := range e.insts {
			if name == "" || in.spec.VRRP.Name == name {
				e.step(now, in, vrrp.Reclaim{})
			}
		}
		if name != "" && e.byName[name] == nil {
			err = fmt.Errorf("engine: no instance %q", name)
		}
	})
	if derr != nil {
		return derr
	}
	return err
}

// keepalivedEntering is keepalived 2.2.7's log line for an instance
// entering state to ("(VI_1) Entering MASTER STATE", "(VI_1) Entering
// BACKUP STATE (init)" at the start), carried by vigil's transition line so
// that alerting grepping the journal for keepalived's words keeps working.
// "" for a stop, which keepalived does not log as a state.
func keepalivedEntering(name string, from, to vrrp.State) string {
	switch to {
	case vrrp.StateMaster, vrrp.StateBackup, vrrp.StateFault:
	default:
		return ""
	}
	line := "(" + name + ") Entering " + to.String() + " STATE"
	if from == vrrp.StateInit {
		line += " (init)"
	}
	return line
}

// keepalivedSyncing is keepalived 2.2.7's log line for a sync group moving
// its members to state to ("VRRP_Group(VG_1) Syncing instances to MASTER
// state"); "" at the start and for a stop, which it does not log so.
func keepalivedSyncing(group string, from, to vrrp.State) string {
	if from == vrrp.StateInit {
		return ""
	}
	switch to {
	case vrrp.StateMaster, vrrp.StateBackup, vrrp.StateFault:
		return "VRRP_Group(" + group + ") Syncing instances to " + to.String() + " state"
	}
	return ""
}
