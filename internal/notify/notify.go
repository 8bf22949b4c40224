// Package notify delivers VRRP and checker state changes the keepalived
// 2.2.7 way (keepalived/vrrp/vrrp_notify.c, keepalived/check/ipwrapper.c):
// notify_master / notify_backup / notify_fault / notify_stop /
// notify_deleted scripts, the generic `notify` script with its four extra
// arguments, notify_master_rx_lower_pri, and lines on the notify FIFOs
// (notify_fifo, vrrp_notify_fifo, lvs_notify_fifo) for a reader such as
// keepalived's sample_notify_fifo.sh.
//
// Ordering: keepalived forks each script and moves on, so two scripts of one
// instance can overtake each other, and a hung one delays none. vigil keeps
// one queue per instance (and per sync group): an instance's scripts start
// one at a time in the order of its transitions, the specific script
// (notify_master, ...) before the generic one, and each runs alone until it
// ends or for Options.Grace (DefaultGrace, 2 s) at most. A script still
// running after the grace is left to finish in the background (its timeout
// still applies; counted in Stats.Background and logged) and the queue moves
// on: quick scripts keep the transition order, and a hung script (a generic
// notify calling curl against an unreachable host) delays the scripts behind
// it by the grace, not by its timeout. At most MaxPending scripts of one
// queue run in the background; beyond, the oldest is killed (the transition
// it reports is over). FIFO lines are written at once, by the caller, in
// call order.
//
// Bounded queues: when an instance flaps faster than its scripts run and its
// queue already holds MaxPending waiting transitions, those waiting
// transitions are discarded (counted in Stats.Coalesced and logged, one line
// per queue every 10 s at most) and only the newest is kept. A script that
// has started is never cut short by coalescing (its timeout still applies).
// So the scripts started for an instance are always a subsequence of its
// transitions, in order, with both scripts of a transition or neither, the
// queue never exceeds MaxPending+1 jobs, and the last script started is
// always for the latest state.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/pace"
	"github.com/vigil-ha/vigil/internal/script"
)

// Kind is what changed state.
type Kind int

const (
	Instance Kind = iota // a vrrp_instance
	Group                // a vrrp_sync_group
)

func (k Kind) String() string {
	if k == Group {
		return "GROUP"
	}
	return "INSTANCE"
}

// State is a state or event as keepalived names it on the FIFO and in the
// generic notify script's arguments.
type State int

const (
	Master State = iota
	Backup
	Fault
	Stop
	Deleted
	// MasterRxLowerPri: a master received an advert with a lower priority
	// (runs notify_master_rx_lower_pri, no arguments).
	MasterRxLowerPri
	// MasterPriority and BackupPriority: the effective priority changed
	// (notify_priority_changes; FIFO only).
	MasterPriority
	BackupPriority
)

func (s State) String() string {
	switch s {
	case Master:
		return "MASTER"
	case Backup:
		return "BACKUP"
	case Fault:
		return "FAULT"
	case Stop:
		return "STOP"
	case Deleted:
		return "DELETED"
	case MasterRxLowerPri:
		return "MASTER_RX_LOWER_PRI"
	case MasterPriority:
		return "MASTER_PRIORITY"
	case BackupPriority:
		return "BACKUP_PRIORITY"
	}
	return "{UNKNOWN}"
}

// Event is one state change of an instance or sync group.
type Event struct {
	Kind Kind
	Name string
	// State is the new state or the event.
	State State
	// Priority is the instance's effective priority; keepalived reports 0
	// for a group whatever is given here.
	Priority uint8
}

func (e Event) prio() int {
	if e.Kind == Group {
		return 0
	}
	return int(e.Priority)
}

// Line is the event's FIFO line, keepalived's `%s "%s" %s %d\n`
// (vrrp_notify.c notify_fifo), e.g. `INSTANCE "VI_1" MASTER 100`.
func (e Event) Line() string {
	// The name is written as is, between double quotes, as keepalived does.
	return e.Kind.String() + ` "` + e.Name + `" ` + e.State.String() + " " + strconv.Itoa(e.prio()) + "\n"
}

// Args are the arguments keepalived appends to the generic `notify` script
// (vrrp_notify.c notify_script_exec): TYPE NAME STATE PRIORITY, e.g.
// INSTANCE VI_1 MASTER 100 (GROUP ... 0 for a sync group).
func (e Event) Args() []string {
	return []string{e.Kind.String(), e.Name, e.State.String(), strconv.Itoa(e.prio())}
}

// VirtualServerLine is a virtual server's quorum change on the FIFO:
// `VS <vs> UP|DOWN` (ipwrapper.c notify_fifo_vs). vs is formatted with
// FormatService, FormatGroupService or FormatFWMark.
func VirtualServerLine(vs string, up bool) string {
	return "VS " + vs + " " + upDown(up) + "\n"
}

// RealServerLine is a real server's change on the FIFO: `RS <rs> <vs>
// UP|DOWN` (ipwrapper.c notify_fifo_rs).
func RealServerLine(rs, vs string, up bool) string {
	return "RS " + rs + " " + vs + " " + upDown(up) + "\n"
}

func upDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}

// FormatService formats a virtual or real server as keepalived's
// inet_sockaddrtotrio: "[192.168.1.10]:tcp:80", "[2001:db8::1]:udp:53";
// proto is "tcp", "udp", "sctp" or "none".
func FormatService(addr netip.Addr, proto string, port uint16) string {
	return "[" + addr.WithZone("").String() + "]:" + proto + ":" + strconv.Itoa(int(port))
}

// FormatGroupService formats a virtual server defined by a
// virtual_server_group: "[name]:port" (check_data.c format_vs).
func FormatGroupService(group string, port uint16) string {
	return "[" + group + "]:" + strconv.Itoa(int(port))
}

// FormatFWMark formats a firewall-mark virtual server: "FWM 12".
func FormatFWMark(mark uint32) string { return "FWM " + strconv.FormatUint(uint64(mark), 10) }

// Scripts are one instance's or sync group's notify scripts; nil fields are
// not configured.
type Scripts struct {
	Master, Backup, Fault, Stop, Deleted *script.Prepared
	// Notify is the generic `notify` script, given TYPE NAME STATE PRIORITY.
	Notify *script.Prepared
	// MasterRxLowerPri is notify_master_rx_lower_pri (instances only).
	MasterRxLowerPri *script.Prepared
	// NotifyDeleted is `notify_deleted`: report DELETED when the instance is
	// removed at reload. Without it keepalived reports FAULT instead
	// (send_instance_notifies: "The old way to notify an instance being
	// deleted was to send FAULT").
	NotifyDeleted bool
}

// Defaults.
const (
	// DefaultTimeout bounds a notify script. keepalived puts no limit on
	// notify scripts (they are forked and forgotten); vigil kills a hung
	// one, with its process group, so that hung scripts do not pile up.
	DefaultTimeout = 60 * time.Second
	// DefaultGrace is how long a script runs alone before the next script
	// of its queue starts beside it (see the package comment).
	DefaultGrace = 2 * time.Second
	// DefaultStopTimeout bounds notify_stop and the generic script for STOP:
	// keepalived kills them after 1 s (TIMER_HZ in notify_script_exec /
	// send_instance_notifies, child_killed_thread).
	DefaultStopTimeout = time.Second
	// DefaultMaxPending is the number of waiting transitions per queue
	// before they are coalesced.
	DefaultMaxPending = 8
)

// Options configures a Notifier.
type Options struct {
	Runner *script.Runner
	// Logger receives failures and coalescing; nil discards.
	Logger *slog.Logger
	// Timeout of one notify script; 0 means DefaultTimeout.
	Timeout time.Duration
	// StopTimeout of a script for the STOP state; 0 means DefaultStopTimeout.
	StopTimeout time.Duration
	// Grace a script runs alone before the next one of its queue starts;
	// 0 means DefaultGrace. A script whose timeout is no longer than the
	// grace always runs alone.
	Grace time.Duration
	// MaxPending waiting transitions per queue, and scripts per queue
	// running in the background; 0 means DefaultMaxPending.
	MaxPending int
	// FIFO is notify_fifo (every line), VRRPFIFO vrrp_notify_fifo
	// (INSTANCE/GROUP lines), LVSFIFO lvs_notify_fifo (VS/RS lines). Any may
	// be nil. The Notifier writes to them but does not own them.
	FIFO, VRRPFIFO, LVSFIFO *FIFO
}

// Stats counts a Notifier's work.
type Stats struct {
	Events    uint64 // events given to Notify
	Started   uint64 // scripts started
	Failed    uint64 // scripts that exited non-zero, were killed, or could not start
	TimedOut  uint64 // scripts killed at their timeout
	Coalesced uint64 // waiting jobs discarded by the queue bound
	Discarded uint64 // jobs still waiting when Closing was called or Run stopped
	// Background counts scripts still running after the grace, left to
	// finish beside the next ones of their queue; BackgroundKilled those of
	// them killed because MaxPending others of their queue ran in the
	// background.
	Background       uint64
	BackgroundKilled uint64
}

// Notifier runs notify scripts, in order per instance, and writes FIFO lines.
// Notify, Exec, SetScripts, Stats and Drain are safe for concurrent use and
// never block on a script; Run owns the goroutines that run scripts.
type Notifier struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	scripts map[key]Scripts
	queues  map[string]*queue
	ctx     context.Context // set while Run runs
	// closing is set by Closing: every run gets StopTimeout at most.
	closing bool
	wg      sync.WaitGroup
	waiters []chan struct{}
	stats   Stats
	// failedBy counts failed scripts by queue ("INSTANCE/VI_1"); one entry
	// per configured instance, group or checker at most.
	failedBy map[string]uint64
}

type key struct {
	kind Kind
	name string
}

type queue struct {
	pending []job
	// running: a worker takes the pending jobs.
	running bool
	// live are the queue's scripts running, oldest first: the worker's
	// and those left in the background.
	live []*proc
	// warnedAt is when coalescing was last logged; skipped counts the jobs
	// discarded since (see coalesceLogEvery).
	warnedAt time.Time
	skipped  int
}

// coalesceLogEvery is the least time between two "falling behind" lines for
// one queue: a flood of events (forged lower-priority adverts with
// notify_master_rx_lower_pri) would otherwise log every MaxPending events.
const coalesceLogEvery = 10 * time.Second

type job struct {
	what string // for logs
	runs []run
}

type run struct {
	p       *script.Prepared
	args    []string
	timeout time.Duration
}

// proc is one script running.
type proc struct {
	cut context.CancelFunc
	// background: left running after the grace; killed: cut because too
	// many others of its queue ran in the background.
	background, killed bool
}

// New returns a Notifier. It starts nothing.
func New(o Options) *Notifier {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Runner == nil {
		o.Runner = script.NewRunner(script.RunnerOptions{Logger: o.Logger})
	}
	n := &Notifier{o: o, log: o.Logger, scripts: map[key]Scripts{}, queues: map[string]*queue{}}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	return n
}

// SetScripts sets (or, on reload, replaces) the scripts of an instance or
// sync group. Transitions already queued keep the scripts they were queued
// with.
func (n *Notifier) SetScripts(kind Kind, name string, s Scripts) {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := key{kind, name}
	if s == (Scripts{}) {
		// Most instances have none: a lookup finds no scripts all the
		// same, without an entry per instance.
		delete(n.scripts, k)
		return
	}
	n.scripts[k] = s
}

// Notify reports an instance's or group's new state, in the order of its
// transitions: the FIFO line is written before Notify returns, and the
// scripts are queued behind the ones the same instance already has.
//
// As keepalived's send_instance_notifies: the specific script for the state
// (notify_master, notify_backup, notify_fault, notify_stop, notify_deleted)
// runs with its configured arguments only; then the generic `notify` script
// runs with TYPE NAME STATE PRIORITY appended. MasterRxLowerPri runs
// notify_master_rx_lower_pri and writes a FIFO line; MasterPriority and
// BackupPriority only write a FIFO line. Suppressing an instance's notifies
// while its sync group is already in that state is the caller's business.
func (n *Notifier) Notify(ev Event) {
	n.mu.Lock()
	s := n.scripts[key{ev.Kind, ev.Name}]
	n.stats.Events++
	n.mu.Unlock()

	if ev.State == Deleted && !s.NotifyDeleted {
		ev.State = Fault
	}
	line := ev.Line()
	n.o.FIFO.Write(line)
	n.o.VRRPFIFO.Write(line)

	timeout := n.o.Timeout
	if ev.State == Stop {
		timeout = n.o.StopTimeout
	}
	var specific *script.Prepared
	generic := true
	switch ev.State {
	case Master:
		specific = s.Master
	case Backup:
		specific = s.Backup
	case Fault:
		specific = s.Fault
	case Stop:
		specific = s.Stop
	case Deleted:
		specific = s.Deleted
	case MasterRxLowerPri:
		specific, generic = s.MasterRxLowerPri, false
	default:
		generic = false
	}
	var j job
	if specific != nil {
		j.runs = append(j.runs, run{p: specific, timeout: timeout})
	}
	if generic && s.Notify != nil {
		j.runs = append(j.runs, run{p: s.Notify, args: ev.Args(), timeout: timeout})
	}
	if len(j.runs) == 0 {
		return
	}
	j.what = fmt.Sprintf("%s %s %s", ev.Kind, ev.Name, ev.State)
	n.enqueue(ev.Kind.String()+"/"+ev.Name, j)
}

// VirtualServer writes a virtual server's quorum change to notify_fifo and
// lvs_notify_fifo (see VirtualServerLine).
func (n *Notifier) VirtualServer(vs string, up bool) {
	line := VirtualServerLine(vs, up)
	n.o.FIFO.Write(line)
	n.o.LVSFIFO.Write(line)
}

// RealServer writes a real server's change to notify_fifo and
// lvs_notify_fifo (see RealServerLine).
func (n *Notifier) RealServer(rs, vs string, up bool) {
	line := RealServerLine(rs, vs, up)
	n.o.FIFO.Write(line)
	n.o.LVSFIFO.Write(line)
}

// Exec queues one script run on the queue named by queueKey (for a real
// server's notify_up/notify_down, a virtual server's quorum_up/quorum_down):
// runs with the same key happen one at a time, in call order, with the same
// coalescing bound as instance notifies. timeout 0 means Options.Timeout.
func (n *Notifier) Exec(queueKey string, p *script.Prepared, timeout time.Duration, args ...string) {
	if p == nil {
		return
	}
	if timeout <= 0 {
		timeout = n.o.Timeout
	}
	n.enqueue("exec/"+queueKey, job{what: queueKey, runs: []run{{p: p, args: args, timeout: timeout}}})
}

func (n *Notifier) enqueue(qk string, j job) {
	n.mu.Lock()
	q := n.queues[qk]
	if q == nil {
		q = &queue{}
		n.queues[qk] = q
	}
	skipped := 0
	if len(q.pending) >= n.o.MaxPending {
		q.skipped += len(q.pending)
		n.stats.Coalesced += uint64(len(q.pending))
		clear(q.pending)
		q.pending = q.pending[:0]
		if pace.Allow(&q.warnedAt, time.Now(), coalesceLogEvery) {
			skipped, q.skipped = q.skipped, 0
		}
	}
	q.pending = append(q.pending, j)
	if n.ctx != nil && !q.running {
		q.running = true
		n.wg.Add(1)
		go n.work(n.ctx, qk, q)
	}
	n.mu.Unlock()
	if skipped > 0 {
		n.log.Warn("notify scripts falling behind; skipping waiting transitions, keeping the newest",
			"queue", qk, "skipped", skipped, "newest", j.what)
	}
}

// Run runs queued scripts until ctx ends. Then the scripts running are
// killed (their process groups get SIGTERM, then SIGKILL), jobs still
// waiting are discarded, and Run returns once every script has been reaped.
// To let queued scripts finish first (say the STOP notifies at shutdown),
// call Drain before ending ctx.
func (n *Notifier) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.ctx != nil {
		n.mu.Unlock()
		return fmt.Errorf("notify: Run called twice")
	}
	n.ctx = ctx
	for qk, q := range n.queues {
		if len(q.pending) > 0 && !q.running {
			q.running = true
			n.wg.Add(1)
			go n.work(ctx, qk, q)
		}
	}
	n.mu.Unlock()

	<-ctx.Done()

	n.mu.Lock()
	n.ctx = nil
	n.mu.Unlock()
	n.wg.Wait()
	return nil
}

func (n *Notifier) work(ctx context.Context, qk string, q *queue) {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		if ctx.Err() != nil {
			n.stats.Discarded += uint64(len(q.pending))
			q.pending = nil
		}
		if len(q.pending) == 0 {
			q.running = false
			n.wakeIdleLocked()
			n.mu.Unlock()
			return
		}
		j := q.pending[0]
		q.pending[0] = job{}
		q.pending = q.pending[1:]
		n.mu.Unlock()

		for _, r := range j.runs {
			n.runOne(ctx, qk, q, j.what, r)
		}
	}
}

// runOne starts r and waits until it ends or, when its timeout is longer,
// for the grace; then a script still running is left in the background.
func (n *Notifier) runOne(ctx context.Context, qk string, q *queue, what string, r run) {
	rctx, cut := context.WithCancel(ctx)
	p := &proc{cut: cut}
	n.mu.Lock()
	if n.closing {
		// Closing cut the scripts live then; this one gets as much.
		r.timeout = min(r.timeout, n.o.StopTimeout)
	}
	q.live = append(q.live, p)
	n.wg.Add(1)
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer n.wg.Done()
		defer close(done)
		res := n.o.Runner.Run(rctx, r.p, r.timeout, r.args...)
		cut()
		n.finish(qk, q, p, what, r, res)
	}()
	if r.timeout <= n.o.Grace {
		<-done
		return
	}
	t := time.NewTimer(n.o.Grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	n.mu.Lock()
	if !slices.Contains(q.live, p) {
		n.mu.Unlock()
		return // ended right at the grace
	}
	p.background = true
	n.stats.Background++
	// The bound counts the scripts not already killed (a killed one may
	// take the kill grace to go): the oldest of them goes, never p.
	var oldest *proc
	running := 0
	for _, o := range q.live {
		if o.background && !o.killed {
			if running++; oldest == nil {
				oldest = o
			}
		}
	}
	if running > n.o.MaxPending {
		oldest.killed = true
		n.stats.BackgroundKilled++
	} else {
		oldest = nil
	}
	n.mu.Unlock()
	c := r.p.Command()
	n.log.Warn("notify script still running; running the next ones beside it until it ends or its timeout kills it",
		"event", what, "script", c.What, "grace", n.o.Grace, "timeout", r.timeout)
	if oldest != nil {
		n.log.Warn("notify scripts: too many running in the background; killing the oldest",
			"queue", qk, "background", n.o.MaxPending)
		oldest.cut()
	}
}

// finish counts and logs a script's end.
func (n *Notifier) finish(qk string, q *queue, p *proc, what string, r run, res script.Result) {
	n.mu.Lock()
	q.live = slices.DeleteFunc(q.live, func(o *proc) bool { return o == p })
	n.stats.Started++
	if !res.OK() {
		n.stats.Failed++
		if n.failedBy == nil {
			n.failedBy = map[string]uint64{}
		}
		n.failedBy[qk]++
	}
	if res.TimedOut {
		n.stats.TimedOut++
	}
	n.wakeIdleLocked()
	n.mu.Unlock()
	if !res.OK() {
		c := r.p.Command()
		n.log.Warn("notify script failed", "event", what, "script", c.What, "result", res.String())
	}
}

// Closing readies the Notifier for the daemon's stop, as keepalived's
// vrrp_terminate_phase1 does (keepalived's VRRP process exits about a second
// after SIGTERM, and the scripts it forked get SIGTERM then, their parent
// death signal): the scripts running get StopTimeout more, then are killed
// with their process groups; the jobs waiting are discarded (counted in
// Stats.Discarded: the transitions they report are over); every run from now
// on gets StopTimeout at most, as notify_stop does. So the stop
// notifications queued next wait for no hung script, and Drain ends about
// StopTimeout after the last of them is queued (plus the kill grace of a
// script that ignores SIGTERM). Closing is idempotent.
func (n *Notifier) Closing() {
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		return
	}
	n.closing = true
	discarded := 0
	for _, q := range n.queues {
		discarded += len(q.pending)
		clear(q.pending)
		q.pending = q.pending[:0]
		for _, p := range q.live {
			time.AfterFunc(n.o.StopTimeout, p.cut)
		}
	}
	n.stats.Discarded += uint64(discarded)
	n.mu.Unlock()
	if discarded > 0 {
		n.log.Warn("stopping: notify scripts still waiting are not run", "discarded", discarded)
	}
}

// FailedFor returns how many scripts of an instance's or sync group's
// notifications failed (exited non-zero, were killed, or could not start).
func (n *Notifier) FailedFor(kind Kind, name string) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.failedBy[kind.String()+"/"+name]
}

// Drain waits until every queue is empty and no script runs, or ctx ends.
func (n *Notifier) Drain(ctx context.Context) error {
	n.mu.Lock()
	if n.idleLocked() {
		n.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	n.waiters = append(n.waiters, ch)
	n.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("notify: drain: %w", ctx.Err())
	}
}

func (n *Notifier) idleLocked() bool {
	for _, q := range n.queues {
		if q.running || len(q.pending) > 0 || len(q.live) > 0 {
			return false
		}
	}
	return true
}

func (n *Notifier) wakeIdleLocked() {
	if len(n.waiters) == 0 || !n.idleLocked() {
		return
	}
	for _, ch := range n.waiters {
		close(ch)
	}
	n.waiters = nil
}

// Stats returns a snapshot of the counters.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}
