package vrrp

import (
	"crypto/subtle"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/internal/pace"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// Instance is one VRRP instance's state machine. It is not safe for
// concurrent use: one goroutine (the engine's) calls Step, Deadline and
// Status. It holds no references to the outside world and reads no clock.
type Instance struct {
	cfg   Config
	is6   bool
	state State
	// want is keepalived's wantstate: the state the instance would be in
	// disregarding its sync group. A backup whose timer expired while its
	// group could not go master keeps want == StateMaster.
	want State

	base, prio uint8 // base (lowered on an owner conflict) and effective priority
	// The one-byte fields sit together: with its 8-byte allocation
	// header the struct stays in the 640-byte size class (one per
	// instance).
	linkDown, trackFault bool
	vipSet               bool
	masterPrio           uint8
	txChecksum           packet.ChecksumMode
	rxOldSum             bool // accept only the multicast-pseudo-header checksum on unicast (old_unicast_checksum, or after the fallback)
	handover             bool // sent priority 0, holding the addresses
	handoverStop         bool // finish in Stopped instead of Backup
	yielding             bool

	masterAdvertInt time.Duration
	// msDown is keepalived's ms_down_timer: the down interval last armed in
	// Backup (Master_Down_Interval, Skew_Time after a priority-0 advert, or
	// what was left of it when an advert was ignored). PriorityChanged
	// shifts the deadline by the change of this value, as keepalived does.
	msDown      time.Duration
	sands       time.Time // the deadline; zero when no timer runs
	downCause   downCause // why the Backup timer would fire, for the Transition
	preemptTime time.Time // preempt_delay: when preemption becomes allowed; zero if not started

	faultReason string

	masterAddr netip.Addr
	nonPeer    netip.Addr // the last non-peer source reported (NonPeerAdvert)
	// ahSeq and ahCycle are keepalived's AH seq_counter_t (ah.go).
	ahSeq   uint32
	ahCycle bool
	// ahMAC checks received AH adverts with the auth_pass it was built
	// with (checkAH builds it anew when the configuration's differs).
	ahMAC *packet.AHMAC

	// zeroAnsweredAt and lowerAt are when the master last answered a
	// priority-0 advert and reacted to a lower-priority one (AnswerGap).
	zeroAnsweredAt, lowerAt time.Time

	handoverUntil time.Time

	lastTransition time.Time
	lastReason     string
	counters       Counters

	group    *SyncGroup
	groupIdx int
	// out holds the actions of the Step in progress; its array is reused
	// from one Step to the next (see Step).
	out []Action
	// sent is the last SendAdvert emitted, boxed: a master emits the same
	// advert every interval, and emitting the boxed value again costs no
	// allocation (see sendAdvert).
	sent Action
}

// Counters are keepalived's per-instance statistics (vrrp_stats), kept by the
// instance because only it knows which adverts were valid. What happens
// before an advert reaches an instance (socket errors, packet.Parse
// rejections, unknown VRIDs) the engine counts itself.
type Counters struct {
	AdvertsReceived      uint64 // adverts that passed every check
	AdvertsSent          uint64 // SendAdvert actions
	PriorityZeroReceived uint64
	PriorityZeroSent     uint64
	BecomeMaster         uint64
	ReleaseMaster        uint64
	// AddrMismatch counts adverts accepted from a better master although
	// their address list differs from ours (see AddrMismatch).
	AddrMismatch uint64
	// IntervalMismatch counts v2 adverts accepted from a better master
	// although their interval differs from ours (see IntervalMismatch).
	IntervalMismatch uint64
	Dropped          [dropReasonEnd]uint64 // by DropReason; see DroppedFor
}

// DroppedFor returns the number of adverts dropped for r.
func (c Counters) DroppedFor(r DropReason) uint64 {
	if r >= dropReasonEnd {
		return 0
	}
	return c.Dropped[r]
}

// Status is a snapshot of an instance for the status API and metrics.
type Status struct {
	Name    string
	VRID    uint8
	Version uint8
	State   State
	// WantMaster: a Backup whose Master_Down_Timer expired but whose sync
	// group holds it back (keepalived's wantstate MASTER).
	WantMaster      bool
	Priority        uint8 // effective priority
	BasePriority    uint8
	MasterAddr      netip.Addr // the current master as last heard; our Source when we are master
	MasterPriority  uint8
	MasterAdvertInt time.Duration // learned from the master (VRRPv3, RFC 5798 §6.4.2)
	VIPsHeld        bool
	Handover        bool // sent priority 0, holding addresses until HandoverUntil
	HandoverUntil   time.Time
	Yielding        bool // after a Handover: not preempting until Reclaim
	LinkUp          bool
	TrackFault      bool
	TxChecksum      packet.ChecksumMode
	AHSequence      uint32 // AH: the sequence number last sent or accepted (ah.go)
	Deadline        time.Time
	LastTransition  time.Time
	LastReason      string
	Counters        Counters
}

// New returns an instance in Init. It starts nothing: Step(now, Start{}) does.
func New(cfg Config) (*Instance, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	i := &Instance{
		cfg:             c,
		is6:             c.Source.Is6(),
		state:           StateInit,
		want:            c.InitialState,
		base:            c.Priority,
		prio:            c.Priority,
		masterAdvertInt: c.AdvertInt,
	}
	i.msDown = i.masterDownInterval()
	switch {
	case c.Version != packet.Version3 || i.is6:
	case c.V3ChecksumAsV2:
		i.txChecksum = packet.ChecksumNoPseudoHeader
	case c.Unicast && c.OldUnicastChecksum == OldChecksumAlways:
		i.txChecksum = packet.ChecksumMulticastPseudoHeader
		i.rxOldSum = true
	}
	return i, nil
}

// Config returns the normalised configuration.
func (i *Instance) Config() Config { return i.cfg }

// State returns the current state.
func (i *Instance) State() State { return i.state }

// Deadline returns when the engine must deliver Timeout: the Master_Down_Timer
// in Backup, the Adver_Timer in Master, the handover bound while handing
// over; zero when no timer runs (Init, Fault, Stopped).
func (i *Instance) Deadline() time.Time { return i.sands }

// Status returns a snapshot of the instance.
func (i *Instance) Status() Status {
	return Status{
		Name:            i.cfg.Name,
		VRID:            i.cfg.VRID,
		Version:         i.cfg.Version,
		State:           i.state,
		WantMaster:      i.state == StateBackup && i.want == StateMaster,
		Priority:        i.prio,
		BasePriority:    i.base,
		MasterAddr:      i.masterAddr,
		MasterPriority:  i.masterPrio,
		MasterAdvertInt: i.masterAdvertInt,
		VIPsHeld:        i.vipSet,
		Handover:        i.handover,
		HandoverUntil:   i.handoverUntil,
		Yielding:        i.yielding,
		LinkUp:          !i.linkDown,
		TrackFault:      i.trackFault,
		TxChecksum:      i.txChecksum,
		AHSequence:      i.ahSeq,
		Deadline:        i.sands,
		LastTransition:  i.lastTransition,
		LastReason:      i.lastReason,
		Counters:        i.counters,
	}
}

// Step feeds one event to the instance at time now and returns what the
// engine must do, in order. An instance that belongs to a SyncGroup must be
// driven through SyncGroup.Step instead, or its group will not follow.
//
// The returned slice belongs to the instance and is valid until its next
// Step: the instance reuses its array, so that the steady state (a master's
// Timeout, a backup's Received) allocates nothing. A caller that keeps the
// actions past the next Step copies them (slices.Clone); the Action values
// themselves stay valid.
func (i *Instance) Step(now time.Time, ev Event) []Action {
	clear(i.out)
	i.out = i.out[:0]
	i.handle(now, ev)
	return i.out
}

func (i *Instance) emit(a Action) {
	if i.group != nil {
		i.group.emit(i.groupIdx, a)
		return
	}
	i.out = append(i.out, a)
}

func (i *Instance) handle(now time.Time, ev Event) {
	switch e := ev.(type) {
	case Start:
		i.start(now)
	case Stop:
		i.stop(now)
	case Timeout:
		i.timeout(now)
	case Received:
		i.receive(now, e)
	case PriorityChanged:
		if i.setPriority(e.Priority) && i.state == StateMaster && !i.handover {
			// vigil, not keepalived (which waits for the next Adver_Timer):
			// a master advertises a new priority at once, so backups see
			// it without up to one advert interval of delay. An extra
			// advert is harmless to RFC 5798 receivers.
			i.sendAdvert(i.prio)
			i.sands = i.nextAdvert(now)
		}
	case LinkChanged:
		reason := "interface up"
		if !e.Up {
			reason = "interface down"
		}
		i.setFault(now, !e.Up, i.trackFault, reason)
	case FaultChanged:
		reason := e.Reason
		switch {
		case reason != "":
		case e.Fault:
			reason = "tracker failed"
		default:
			reason = "trackers recovered"
		}
		i.setFault(now, i.linkDown, e.Fault, reason)
	case Handover:
		i.startHandover(now, false)
	case Reclaim:
		i.yielding = false
	case SourceChanged:
		if a := e.Addr.Unmap(); a.IsValid() && a.Is6() == i.is6 {
			i.cfg.Source = a
		}
	case Reconfigure:
		i.reconfigure(now, e.Config)
	}
}

// SameIdentity reports whether two configurations are the same virtual
// router: VRID, VRRP version and address family. Only such a change needs a
// new Instance; everything else Reconfigure applies in place.
func SameIdentity(a, b Config) bool {
	return a.VRID == b.VRID && a.Version == b.Version && a.Source.Unmap().Is6() == b.Source.Unmap().Is6()
}

// CheckConfig validates cfg as New does.
func CheckConfig(cfg Config) error {
	_, err := cfg.validate()
	return err
}

// reconfigure applies a new configuration in place (keepalived's reload
// keeps an instance whose interface and VRID are unchanged, with its state).
// The state, the timers and the master last heard stay; a master whose
// advert changes (priority, addresses, interval, authentication) sends the
// new one at once and re-arms its Adver_Timer.
func (i *Instance) reconfigure(now time.Time, cfg Config) {
	if !cfg.Source.IsValid() {
		cfg.Source = i.cfg.Source
	}
	c, err := cfg.validate()
	if err != nil || !SameIdentity(c, i.cfg) {
		return // the engine checks both first (CheckConfig, SameIdentity)
	}
	if c.Name != i.cfg.Name {
		c.Name = i.cfg.Name
	}
	before := i.advert(i.prio)
	old := i.cfg
	i.cfg = c
	// The effective priority keeps the trackers' offset from the base;
	// the engine sends PriorityChanged afterwards if the weights changed.
	switch {
	case c.Priority == old.Priority:
		// An owner conflict may have lowered base: keep it.
	case c.Priority == PriorityOwner:
		i.base = PriorityOwner
		i.applyPriority(PriorityOwner)
	default:
		off := 0
		if i.base != PriorityOwner {
			off = int(i.prio) - int(i.base)
		}
		i.base = c.Priority
		i.applyPriority(uint8(min(max(int(c.Priority)+off, 1), PriorityOwner-1)))
	}
	if i.state == StateMaster || c.Version == packet.Version2 {
		i.masterAdvertInt = c.AdvertInt
	}
	i.msDown = i.masterDownInterval()
	if c.PreemptDelay == 0 {
		i.preemptTime = time.Time{}
	}
	if i.state != StateMaster && i.state != StateBackup {
		i.want = c.InitialState
	}
	i.txChecksum, i.rxOldSum = 0, false
	switch {
	case c.Version != packet.Version3 || i.is6:
	case c.V3ChecksumAsV2:
		i.txChecksum = packet.ChecksumNoPseudoHeader
	case c.Unicast && c.OldUnicastChecksum == OldChecksumAlways:
		i.txChecksum = packet.ChecksumMulticastPseudoHeader
		i.rxOldSum = true
	}
	if i.state == StateMaster && !i.handover && !sameAdvert(before, i.advert(i.prio)) {
		// As for a tracked priority change: backups learn it at once.
		i.masterPrio = i.prio
		i.sendAdvert(i.prio)
		i.sands = i.nextAdvert(now)
	}
}

func sameAdvert(a, b packet.Advert) bool {
	return a.Priority == b.Priority && a.AdvertInt == b.AdvertInt && a.AuthType == b.AuthType &&
		a.AuthData == b.AuthData && a.ChecksumMode == b.ChecksumMode && slices.Equal(a.Addrs, b.Addrs)
}

func (i *Instance) faulted() bool { return i.linkDown || i.trackFault }

func (i *Instance) masterDownInterval() time.Duration {
	return masterDown(i.cfg.Version, i.prio, i.masterAdvertInt, i.cfg.DownTimerAdverts)
}

func (i *Instance) skew() time.Duration {
	return SkewTime(i.cfg.Version, i.prio, i.masterAdvertInt)
}

func (i *Instance) transition(now time.Time, to State, reason string) {
	from := i.state
	i.state = to
	i.lastTransition = now
	i.lastReason = reason
	i.emit(Transition{From: from, To: to, Reason: reason})
}

func (i *Instance) drop(r DropReason, src netip.Addr, format string, args ...any) {
	i.counters.Dropped[r]++
	d := Dropped{Reason: r, Src: src}
	if format != "" {
		d.Detail = fmt.Sprintf(format, args...)
	}
	i.emit(d)
}

// advert builds our advertisement with priority prio (vrrp_build_vrrp_v2/v3).
func (i *Instance) advert(prio uint8) packet.Advert {
	a := packet.Advert{
		Version:      i.cfg.Version,
		Type:         packet.TypeAdvertisement,
		VRID:         i.cfg.VRID,
		Priority:     prio,
		CountIPAddrs: uint8(len(i.cfg.VIPs)),
		Addrs:        i.cfg.VIPs,
		ChecksumMode: i.txChecksum,
	}
	if i.cfg.Version == packet.Version2 {
		a.AdvertInt = uint16(i.cfg.AdvertInt / time.Second)
		a.AuthType = i.cfg.AuthType
		if i.cfg.AuthType == packet.AuthPass {
			a.AuthData = i.cfg.AuthPass
		}
	} else {
		a.AdvertInt = uint16(i.cfg.AdvertInt / (10 * time.Millisecond))
	}
	return a
}

func (i *Instance) sendAdvert(prio uint8) {
	i.counters.AdvertsSent++
	if prio == 0 {
		i.counters.PriorityZeroSent++
	}
	s := SendAdvert{Priority: prio, Advert: i.advert(prio)}
	if s.Advert.AuthType == packet.AuthAH {
		s.AHSeq = i.nextAHSeq()
	}
	// Boxing s in an Action allocates; the advert of a master is the same
	// every interval (an AH sequence number aside), so the box of the last
	// one is emitted again while it holds an equal value.
	if last, ok := i.sent.(SendAdvert); !ok || !sameSend(last, s) {
		i.sent = s
	}
	i.emit(i.sent)
}

// sameSend reports whether two SendAdverts are equal in every field.
func sameSend(a, b SendAdvert) bool {
	x, y := &a.Advert, &b.Advert
	return a.Priority == b.Priority && a.AHSeq == b.AHSeq &&
		x.Version == y.Version && x.Type == y.Type && x.VRID == y.VRID && x.Priority == y.Priority &&
		x.CountIPAddrs == y.CountIPAddrs && x.AuthType == y.AuthType && x.Reserved == y.Reserved &&
		x.AdvertInt == y.AdvertInt && x.Checksum == y.Checksum && x.AuthData == y.AuthData &&
		x.ChecksumMode == y.ChecksumMode && slices.Equal(x.Addrs, y.Addrs)
}

// downCause says why a Backup's timer will fire; it is formatted only when
// it does, to keep the receive path free of allocations.
type downCause struct {
	src  netip.Addr
	kind causeKind
	prio uint8
}

type causeKind uint8

const (
	causeStart       causeKind = iota // no advert since start
	causeLeftFault                    // no advert since leaving fault
	causeLeftMaster                   // no advert from the master that displaced us
	causeMasterQuiet                  // the master we heard went quiet
	causePriority0                    // the master sent priority 0
	causePreempt                      // we preempt a lower priority master
)

func (c downCause) String() string {
	switch c.kind {
	case causeLeftFault:
		return "no advert since leaving fault"
	case causeLeftMaster:
		return "no advert from the new master"
	case causeMasterQuiet:
		return fmt.Sprintf("no advert from master %v", c.src)
	case causePriority0:
		return fmt.Sprintf("master %v sent priority 0", c.src)
	case causePreempt:
		return fmt.Sprintf("preempting lower priority master %v (priority %d)", c.src, c.prio)
	}
	return "no advert since start"
}

// armBackup (re)starts the Master_Down_Timer with d.
func (i *Instance) armBackup(now time.Time, d time.Duration, cause downCause) {
	i.msDown = d
	i.sands = now.Add(d)
	i.downCause = cause
}

// ignore is keepalived's vrrp_state_backup ignore_advert path: the timer
// keeps running, and ms_down_timer becomes what is left of it.
func (i *Instance) ignore(now time.Time) {
	if i.state != StateBackup {
		return
	}
	i.msDown = max(i.sands.Sub(now), 0)
}

func (i *Instance) start(now time.Time) {
	if i.state != StateInit && i.state != StateStopped {
		return
	}
	i.masterAdvertInt = i.cfg.AdvertInt
	i.preemptTime = time.Time{}
	i.handover, i.handoverStop = false, false
	i.want = i.cfg.InitialState
	if i.faulted() || (i.group != nil && i.group.state == StateFault) {
		// keepalived vrrp_init_state: "Entering FAULT STATE (init)".
		i.want = StateFault
		i.sands = time.Time{}
		reason := "fault at start"
		if i.faulted() {
			reason = "fault at start: " + i.currentFaultReason()
		}
		i.transition(now, StateFault, reason)
		return
	}
	if i.cfg.InitialState == StateMaster && i.base == PriorityOwner &&
		(i.group == nil || i.group.state == StateMaster) {
		// RFC 5798 §6.4.1: the address owner sends an advert, takes the
		// addresses and becomes master at once. keepalived 2.2.7
		// vrrp_init_state does it through a 1 µs Backup timer without a
		// BACKUP notification; the outcome is the same.
		i.gotoMaster(now, "address owner at startup")
		return
	}
	// RFC 5798 §6.4.1: otherwise Backup with Master_Down_Timer set to
	// Master_Down_Interval. keepalived 2.2.7 does this for `state MASTER`
	// below priority 255 as well.
	i.want = StateBackup
	i.transition(now, StateBackup, "start")
	i.armBackup(now, i.masterDownInterval(), downCause{kind: causeStart})
}

// gotoMaster is keepalived's vrrp_state_goto_master + vrrp_state_master_tx:
// send an advert first (so the old master drops the addresses before our
// gratuitous ARPs), take the addresses, arm the Adver_Timer. It returns false
// if the sync group holds the instance back.
func (i *Instance) gotoMaster(now time.Time, reason string) bool {
	if i.group != nil && !i.group.canGotoMaster(i) {
		// keepalived vrrp_sync_can_goto_master: wait for the other members.
		i.want = StateMaster
		i.armBackup(now, i.masterDownInterval(), i.downCause)
		return false
	}
	i.want = StateMaster
	i.yielding = false
	i.ahResetIfCycled()
	i.masterAdvertInt = i.cfg.AdvertInt
	i.masterAddr, i.masterPrio = i.cfg.Source, i.prio
	i.sendAdvert(i.prio)
	if !i.vipSet {
		i.vipSet = true
		i.counters.BecomeMaster++
		i.emit(TakeOver{})
	}
	i.sands = i.nextAdvert(now)
	i.transition(now, StateMaster, reason)
	return true
}

// leaveMaster is keepalived's vrrp_state_leave_master + vrrp_restore_interface.
func (i *Instance) leaveMaster(now time.Time, to State, reason string, prio0 bool) {
	if prio0 {
		i.sendAdvert(0)
	}
	if i.vipSet {
		i.vipSet = false
		i.emit(Release{})
	}
	i.counters.ReleaseMaster++
	i.handover, i.handoverStop = false, false
	i.handoverUntil = time.Time{}
	i.want = to
	i.transition(now, to, reason)
	switch to {
	case StateBackup:
		i.preemptTime = time.Time{}
		i.armBackup(now, i.masterDownInterval(), downCause{kind: causeLeftMaster})
	default:
		i.msDown = i.masterDownInterval()
		i.sands = time.Time{}
	}
}

func (i *Instance) timeout(now time.Time) {
	if i.sands.IsZero() || now.Before(i.sands) {
		return
	}
	switch {
	case i.handover && i.handoverStop:
		i.finishHandover(now, "handover: no new master heard before the timeout")
	case i.handover:
		i.abortHandover(now)
	case i.state == StateBackup:
		// RFC 5798 §6.4.2: Master_Down_Timer fired.
		i.gotoMaster(now, "master down timer expired: "+i.downCause.String())
	case i.state == StateMaster:
		// RFC 5798 §6.4.3: Adver_Timer fired.
		i.sendAdvert(i.prio)
		i.sands = i.rearmAdvert(now)
	}
}

func (i *Instance) stop(now time.Time) {
	switch i.state {
	case StateMaster:
		if i.cfg.HandoverOnStop {
			i.startHandover(now, true)
			return
		}
		// RFC 5798 §6.4.3 Shutdown: send priority 0 and leave. keepalived
		// restore_vrrp_interfaces: vrrp_restore_interface(vrrp, true, ...).
		i.leaveMaster(now, StateStopped, "stop", !i.handover)
	case StateBackup, StateFault, StateInit:
		// RFC 5798 §6.4.2 Shutdown: cancel the timer.
		i.want = StateStopped
		i.sands = time.Time{}
		i.transition(now, StateStopped, "stop")
	}
}

func (i *Instance) startHandover(now time.Time, stop bool) {
	if i.state != StateMaster {
		i.yielding = true
		if stop {
			i.stop(now)
		}
		return
	}
	if stop {
		i.handoverStop = true
	} else {
		i.yielding = true
	}
	if i.handover {
		return
	}
	// Toward peers this is a graceful stop: priority 0, they take over after
	// Skew_Time (RFC 5798 §6.4.2). The addresses stay until finishHandover.
	i.handover = true
	i.handoverUntil = now.Add(i.cfg.HandoverTimeout)
	i.sendAdvert(0)
	i.sands = i.handoverUntil
	i.emit(HandoverStarted{Until: i.handoverUntil})
}

func (i *Instance) finishHandover(now time.Time, reason string) {
	to := StateBackup
	if i.handoverStop {
		to = StateStopped
	}
	i.leaveMaster(now, to, reason, false)
}

// abortHandover ends a Handover no router answered (see HandoverAborted).
// A backup that heard the priority-0 advert would have taken over within
// Skew_Time and been heard; one that took over unheard (a one-way link)
// hears this advert and yields to a higher priority, as it would when this
// instance took the addresses back after its Master_Down_Timer.
func (i *Instance) abortHandover(now time.Time) {
	i.handover, i.yielding = false, false
	i.handoverUntil = time.Time{}
	i.sendAdvert(i.prio)
	i.sands = i.nextAdvert(now)
	i.emit(HandoverAborted{})
}

// setPriority applies a tracked priority and reports whether the effective
// priority changed.
func (i *Instance) setPriority(p int) bool {
	// keepalived vrrp_set_effective_priority: "Don't change priority if
	// address owner"; otherwise clamp to 1..254.
	if i.base == PriorityOwner {
		return false
	}
	return i.applyPriority(uint8(min(max(p, 1), PriorityOwner-1)))
}

// applyPriority sets the effective priority and moves a Backup's timer by
// the change of the down interval, as keepalived does.
func (i *Instance) applyPriority(np uint8) bool {
	if np == i.prio {
		return false
	}
	i.prio = np
	old := i.msDown
	i.msDown = i.masterDownInterval()
	if i.state == StateBackup && !i.sands.IsZero() {
		// keepalived: sands moves by the change of ms_down_timer.
		i.sands = i.sands.Add(i.msDown - old)
	}
	return true
}

func (i *Instance) currentFaultReason() string {
	switch {
	case i.linkDown && i.trackFault:
		return "interface down, " + i.faultReason
	case i.linkDown:
		return "interface down"
	}
	return i.faultReason
}

// setFault is keepalived's down_instance / try_up_instance.
func (i *Instance) setFault(now time.Time, linkDown, trackFault bool, reason string) {
	was := i.faulted()
	if trackFault && !i.trackFault {
		i.faultReason = reason
	}
	i.linkDown, i.trackFault = linkDown, trackFault
	if was == i.faulted() {
		return
	}
	if i.faulted() {
		i.down(now, "fault: "+i.currentFaultReason())
	} else {
		i.up(now, "fault cleared: "+reason)
	}
}

func (i *Instance) down(now time.Time, reason string) {
	switch i.state {
	case StateMaster, StateBackup:
		i.enterFault(now, reason)
	}
	if i.group != nil && i.group.faultCount() == 1 {
		i.group.syncFault(now, i, reason)
	}
}

// enterFault moves a running instance to Fault. keepalived's
// vrrp_state_leave_master with wantstate FAULT sends a priority-0 advert
// and then vrrp_restore_interface(advF=true) sends a second one; vigil sends
// one.
func (i *Instance) enterFault(now time.Time, reason string) {
	switch i.state {
	case StateMaster:
		i.leaveMaster(now, StateFault, reason, !i.handover)
	case StateBackup:
		i.want = StateFault
		i.sands = time.Time{}
		i.transition(now, StateFault, reason)
	}
}

func (i *Instance) up(now time.Time, reason string) {
	if i.state != StateFault {
		return
	}
	// keepalived 2.2.7 try_up_instance: down_instance left wantstate FAULT,
	// so even an address owner comes back as BACKUP ("wantstate ==
	// VRRP_STATE_MAST && base_priority == VRRP_PRIO_OWNER" is false) and
	// waits Master_Down_Interval.
	i.want = StateBackup
	if i.group != nil && i.group.faultCount() > 0 {
		return // another member is still down: the group stays in Fault
	}
	i.leaveFault(now, reason)
	if i.group != nil {
		i.group.syncBackup(now, i, reason)
	}
}

// leaveFault is keepalived's vrrp_state_leave_fault towards BACKUP.
func (i *Instance) leaveFault(now time.Time, reason string) {
	i.want = StateBackup
	i.preemptTime = time.Time{}
	i.masterAdvertInt = i.cfg.AdvertInt
	i.transition(now, StateBackup, reason)
	i.armBackup(now, i.masterDownInterval(), downCause{kind: causeLeftFault})
}

func (i *Instance) receive(now time.Time, e Received) {
	src := e.Src.Unmap().WithZone("")
	switch {
	case i.state == StateBackup:
		i.receiveBackup(now, e, src)
	case i.state == StateMaster && i.handover:
		i.receiveHandover(now, e, src)
	case i.state == StateMaster:
		i.receiveMaster(now, e, src)
	default:
		// keepalived vrrp_dispatcher_read: "We just ignore a message received
		// when we are in fault state or not yet fully initialised".
		i.drop(DropInactive, src, "")
	}
}

// check is keepalived 2.2.7's vrrp_check_packet for what the codec did not
// check. checkAddr enables the address list and unicast source checks.
func (i *Instance) check(e Received, src netip.Addr, checkAddr bool) (DropReason, string) {
	a := &e.Advert
	if a.VRID != i.cfg.VRID {
		return DropVRID, fmt.Sprintf("VRID %d", a.VRID)
	}
	if !src.IsValid() || src.Is6() != i.is6 {
		return DropFamily, fmt.Sprintf("source %v", e.Src)
	}
	if ah := i.cfg.AuthType == packet.AuthAH; (e.AH != nil) != ah {
		// keepalived vrrp_check_packet: "Received AH header but auth type
		// not AH" / "No AH header but auth type is AH" (authtype_mismatch).
		// Its sockets are per IP protocol, so only a VRID shared by an AH
		// and a plain instance on one interface gets here.
		if ah {
			return DropAuthType, "no AH header, ours is auth_type AH"
		}
		return DropAuthType, "AH header, ours is not auth_type AH"
	}
	// RFC 3768 §7.1 / RFC 5798 §7.1, §5.1.1.3, §5.1.2.3: TTL / hop limit
	// must be 255. keepalived does not check it for unicast (routed peers).
	if !i.cfg.Unicast && e.TTL >= 0 && e.TTL != packet.TTL {
		if i.is6 {
			return DropTTL, fmt.Sprintf("hop limit %d, want %d", e.TTL, packet.TTL)
		}
		return DropTTL, fmt.Sprintf("TTL %d, want %d", e.TTL, packet.TTL)
	}
	if a.Version != i.cfg.Version {
		return DropVersion, fmt.Sprintf("version %d, ours %d", a.Version, i.cfg.Version)
	}
	if a.Version == packet.Version2 {
		switch {
		case a.AuthType != i.cfg.AuthType:
			return DropAuthType, fmt.Sprintf("auth type %v, ours %v", a.AuthType, i.cfg.AuthType)
		case a.AuthType == packet.AuthPass && !i.is6 &&
			subtle.ConstantTimeCompare(a.AuthData[:], i.cfg.AuthPass[:]) != 1:
			return DropAuthFailure, ""
		case a.AuthType == packet.AuthAH:
			if r, d := i.checkAH(e, src); r != 0 {
				return r, d
			}
		}
	} else if a.AdvertInt == 0 {
		// RFC 9568 erratum 8301. keepalived 2.2.7 would accept it and
		// time out at once; no keepalived sends it.
		return DropZeroInterval, ""
	}
	// keepalived checks the source against unicast_peer last, after the
	// checksum, whose old-variant fallback switches what we send: a forged
	// packet from a non-peer would switch it and then be dropped. vigil
	// checks the source first, so a packet from a non-peer changes nothing.
	if checkAddr && i.cfg.Unicast && i.cfg.CheckUnicastSrc {
		n := slices.IndexFunc(i.cfg.Peers, func(p Peer) bool { return p.Addr == src })
		if n < 0 {
			return DropNotPeer, ""
		}
		if p := i.cfg.Peers[n]; e.TTL >= 0 && (e.TTL < p.MinTTL || e.TTL > p.MaxTTL) {
			return DropTTL, fmt.Sprintf("TTL %d outside %d..%d", e.TTL, p.MinTTL, p.MaxTTL)
		}
	}
	if r, d := i.checkChecksum(e, src); r != 0 {
		return r, d
	}
	if e.Unicast != i.cfg.Unicast {
		// keepalived: "Expected multicast but received unicast packet".
		return DropCastMismatch, fmt.Sprintf("unicast %v on a unicast=%v instance", e.Unicast, i.cfg.Unicast)
	}
	if checkAddr && i.cfg.Unicast && !i.cfg.CheckUnicastSrc && src != i.nonPeer &&
		!slices.ContainsFunc(i.cfg.Peers, func(p Peer) bool { return p.Addr == src }) {
		// keepalived 2.2.7 accepts it (check_unicast_src is off): a peer
		// that sends from another address than the one listed still
		// makes one master. Reported once per source.
		i.nonPeer = src
		i.emit(NonPeerAdvert{Src: src})
	}
	return 0, ""
}

// addrDiff is RFC 3768 / RFC 5798 §7.1's address check, done last: the
// advert's count and list against our VIPs. It returns 0 when they match.
// The callers decide whether a mismatch drops the advert (see AddrMismatch).
func (i *Instance) addrDiff(a *packet.Advert) (DropReason, string) {
	if int(a.CountIPAddrs) != len(i.cfg.VIPs) {
		return DropAddrCount, fmt.Sprintf("%d addresses, ours %d", a.CountIPAddrs, len(i.cfg.VIPs))
	}
	for _, v := range i.cfg.VIPs {
		if !slices.Contains(a.Addrs, v) {
			return DropAddrList, fmt.Sprintf("%v missing", v)
		}
	}
	return 0, ""
}

// intervalDiff is RFC 3768 §7.1's advert interval check (VRRPv2; keepalived
// "advertisement interval mismatch", VRRP_PACKET_DROP), done after check.
// It returns 0 when the interval is ours. As for addrDiff, the callers
// decide whether a mismatch drops the advert (see IntervalMismatch).
func (i *Instance) intervalDiff(a *packet.Advert) (DropReason, string) {
	if a.Version == packet.Version2 && a.Interval() != i.cfg.AdvertInt {
		return DropInterval, fmt.Sprintf("interval %v, ours %v", a.Interval(), i.cfg.AdvertInt)
	}
	return 0, ""
}

// intervalMismatch records an accepted v2 advert whose interval differs.
func (i *Instance) intervalMismatch(src netip.Addr, a *packet.Advert) {
	i.counters.IntervalMismatch++
	i.emit(IntervalMismatch{Src: src, Priority: a.Priority, Theirs: a.Interval(), Ours: i.cfg.AdvertInt})
}

// mismatch records an accepted advert whose address list differs.
func (i *Instance) mismatch(src netip.Addr, a *packet.Advert) {
	i.counters.AddrMismatch++
	i.emit(AddrMismatch{Src: src, Priority: a.Priority, Theirs: a.Addrs, Ours: len(i.cfg.VIPs)})
}

// checkChecksum applies the checksum-variant policy to what packet.Parse
// matched.
func (i *Instance) checkChecksum(e Received, src netip.Addr) (DropReason, string) {
	m := e.Advert.ChecksumMode
	if i.cfg.Version != packet.Version3 || i.is6 {
		if m != packet.ChecksumDefault {
			return DropChecksumMode, m.String()
		}
		return 0, ""
	}
	switch {
	case i.cfg.V3ChecksumAsV2:
		if m != packet.ChecksumNoPseudoHeader {
			return DropChecksumMode, m.String() + ", v3_checksum_as_v2 set"
		}
	case m == packet.ChecksumNoPseudoHeader:
		return DropChecksumMode, m.String() + ", v3_checksum_as_v2 not set"
	case !i.cfg.Unicast || !e.Unicast:
		if m != packet.ChecksumDefault {
			return DropChecksumMode, m.String()
		}
	case i.rxOldSum:
		// keepalived: with compatibility on, the pseudo-header always
		// holds the multicast group.
		if m != packet.ChecksumMulticastPseudoHeader {
			return DropChecksumMode, m.String() + ", old unicast checksum in use"
		}
	case m == packet.ChecksumMulticastPseudoHeader:
		if i.cfg.OldUnicastChecksum == OldChecksumNever {
			return DropChecksumMode, m.String() + ", old_unicast_checksum never"
		}
		// keepalived vrrp_check_packet: "Setting unicast VRRPv3 checksum to
		// old version" (CHKSUM_COMPATIBILITY_AUTO), for sending too.
		i.rxOldSum = true
		i.txChecksum = packet.ChecksumMulticastPseudoHeader
		i.emit(ChecksumFallback{Src: src})
	}
	return 0, ""
}

// receiveBackup is keepalived 2.2.7's vrrp_state_backup (RFC 5798 §6.4.2).
func (i *Instance) receiveBackup(now time.Time, e Received, src netip.Addr) {
	checkAddr := !i.cfg.SkipCheckAdvAddr || src != i.masterAddr
	if r, d := i.check(e, src, checkAddr); r != 0 {
		i.drop(r, src, "%s", d)
		i.ignore(now)
		return
	}
	a := e.Advert
	discard := a.Priority != 0 && !i.cfg.NoPreempt && !i.yielding && a.Priority < i.prio &&
		(i.cfg.PreemptDelay == 0 || (!i.preemptTime.IsZero() && !i.preemptTime.After(now)))
	// A master we would preempt anyway whose advert differs from our
	// configuration: RFC 3768 / 5798 §7.1 and keepalived drop it, and
	// the timer runs on.
	dropPreempted := func(r DropReason, d string) {
		i.drop(r, src, "%s", d)
		i.ignore(now)
		i.downCause = downCause{kind: causePreempt, src: src, prio: a.Priority}
	}
	if r, d := i.intervalDiff(&a); r != 0 {
		if discard {
			dropPreempted(r, d)
			return
		}
		// vigil, not keepalived: as for the address list, a master that
		// keeps us Backup stays our master during a rolling change of
		// advert_int; its interval times our Master_Down_Timer, as in v3.
		i.intervalMismatch(src, &a)
	}
	if checkAddr {
		if r, d := i.addrDiff(&a); r != 0 {
			if discard {
				dropPreempted(r, d)
				return
			}
			// vigil, not keepalived: a master that keeps us Backup stays
			// our master whatever addresses it lists (RFC 5798 §7.1 would
			// drop it and we would become a second master).
			i.mismatch(src, &a)
		}
	}
	i.counters.AdvertsReceived++
	switch {
	case a.Priority == 0:
		// RFC 5798 §6.4.2: "If the Priority in the ADVERTISEMENT is zero,
		// then: Set the Master_Down_Timer to Skew_Time".
		i.counters.PriorityZeroReceived++
		i.armBackup(now, i.skew(), downCause{kind: causePriority0, src: src})
	case i.cfg.NoPreempt || i.yielding || a.Priority >= i.prio ||
		(i.cfg.PreemptDelay > 0 && (i.preemptTime.IsZero() || i.preemptTime.After(now))):
		// RFC 5798 §6.4.2: not preempting, or the master is at least as
		// good: learn its interval (v3; v2 only differs when
		// intervalMismatch accepted it) and reset the timer. keepalived
		// also accepts a lower priority while preempt_delay runs.
		i.masterAdvertInt = a.Interval()
		i.masterAddr, i.masterPrio = src, a.Priority
		if i.cfg.PreemptDelay > 0 {
			// keepalived: the delay starts at the first lower-priority
			// advert and is cancelled by an advert at least as good.
			if a.Priority >= i.prio {
				i.preemptTime = time.Time{}
			} else if i.preemptTime.IsZero() {
				i.preemptTime = now.Add(i.cfg.PreemptDelay)
			}
		}
		i.want = StateBackup
		i.armBackup(now, i.masterDownInterval(), downCause{kind: causeMasterQuiet, src: src})
	default:
		// RFC 5798 §6.4.2 "Discard the ADVERTISEMENT"; keepalived "received
		// lower priority (%d) advert from %s - discarding". The timer runs
		// on and we take over when it fires.
		i.drop(DropLowerPriority, src, "priority %d, ours %d", a.Priority, i.prio)
		i.masterAddr = src // keepalived records it (SNMP)
		i.ignore(now)
		i.downCause = downCause{kind: causePreempt, src: src, prio: a.Priority}
	}
}

// receiveMaster is keepalived 2.2.7's vrrp_state_master_rx (RFC 5798 §6.4.3).
// keepalived re-arms the Adver_Timer after any packet, valid or not; vigil
// re-arms it only when it has sent an advert.
func (i *Instance) receiveMaster(now time.Time, e Received, src netip.Addr) {
	if r, d := i.check(e, src, true); r != 0 {
		i.drop(r, src, "%s", d)
		i.rival(r, src, e.Advert.Priority, d)
		return
	}
	a := e.Advert
	cmp := src.Compare(i.cfg.Source.WithZone(""))
	higher := a.Priority > i.prio || (a.Priority == i.prio && cmp > 0)
	if r, d := i.intervalDiff(&a); r != 0 {
		if !higher && a.Priority != 0 {
			i.drop(r, src, "%s", d)
			i.rival(r, src, a.Priority, d)
			return
		}
		// As for the address list below: a better master takes over,
		// a leaving one is answered.
		i.intervalMismatch(src, &a)
	}
	if r, d := i.addrDiff(&a); r != 0 {
		if !higher && a.Priority != 0 {
			i.drop(r, src, "%s", d)
			i.rival(r, src, a.Priority, d)
			return
		}
		// vigil: a better master takes over whatever addresses it lists
		// (see receiveBackup); a leaving one (priority 0) is answered.
		i.mismatch(src, &a)
	}
	i.counters.AdvertsReceived++
	if a.Priority == 0 || (higher && (i.cfg.HigherPrioSendAdvert || !i.cfg.LowerPrioNoAdvert)) {
		// RFC 5798 §6.4.3: "If the Priority in the ADVERTISEMENT is zero,
		// then: Send an ADVERTISEMENT; Reset the Adver_Timer". Yielding to
		// a better master: vigil sends one advert too unless strict, so
		// the winner announces the addresses (see the package doc;
		// keepalived only with higher_prio_send_advert).
		if a.Priority == 0 {
			if paced(&i.zeroAnsweredAt, now) {
				i.sendAdvert(i.prio)
				i.sands = i.nextAdvert(now)
			}
			i.counters.PriorityZeroReceived++
			return
		}
		i.sendAdvert(i.prio)
		i.sands = i.nextAdvert(now)
	}
	reason := ""
	if a.Priority == i.prio {
		if cmp == 0 {
			i.drop(DropOwnAddress, src, "equal priority advert from our own address")
			return
		}
		if i.prio == PriorityOwner {
			// keepalived: "CONFIGURATION ERROR: local instance and a remote
			// instance are both configured as address owner, please fix -
			// reducing local priority".
			i.base, i.prio = PriorityOwner-1, PriorityOwner-1
			reason = fmt.Sprintf("address owner conflict with %v: priority lowered to %d", src, i.prio)
		}
	}
	if a.Priority < i.prio || (a.Priority == i.prio && cmp < 0) {
		// RFC 9568 §6.4.3 and keepalived: answer a lower priority at once
		// (RFC 5798 only discards it), unless lower_prio_no_advert; once
		// per AnswerGap, and so are the announcements and the notify that
		// follow LowerPriorityAdvert. The AH sequence follows every one.
		i.ahSyncLower(e)
		if !paced(&i.lowerAt, now) {
			return
		}
		if !i.cfg.LowerPrioNoAdvert {
			i.sendAdvert(i.prio)
			i.sands = i.nextAdvert(now)
		}
		i.emit(LowerPriorityAdvert{Src: src, Priority: a.Priority})
		return
	}
	// RFC 5798 §6.4.3: higher priority, or equal priority and a greater
	// primary address: learn the interval, go Backup.
	i.ahCycle = false
	if i.cfg.Version == packet.Version3 {
		i.masterAdvertInt = a.Interval()
	}
	i.masterAddr, i.masterPrio = src, a.Priority
	if reason == "" {
		if a.Priority > i.prio {
			reason = fmt.Sprintf("higher priority advert from %v (%d > %d)", src, a.Priority, i.prio)
		} else {
			reason = fmt.Sprintf("equal priority %d advert from higher address %v", a.Priority, src)
		}
	}
	i.leaveMaster(now, StateBackup, reason, false)
}

// rival reports a master's drop of an advert from a router that advertises
// as master too, when the reason is a difference of configuration that
// makes that router drop our adverts as well (see RivalMaster).
func (i *Instance) rival(r DropReason, src netip.Addr, prio uint8, detail string) {
	if prio == 0 || src == i.cfg.Source.WithZone("") {
		return
	}
	if rivalReason(r) {
		i.emit(RivalMaster{Src: src, Priority: prio, Reason: r, Detail: detail})
	}
}

// rivalReason reports whether r is a difference of configuration that makes
// the sender drop our adverts too.
func rivalReason(r DropReason) bool {
	switch r {
	case DropAddrCount, DropAddrList, DropInterval, DropVersion, DropAuthType, DropAuthFailure:
		return true
	}
	return false
}

// authReason reports whether r is a failed authentication: the advert's
// sender is not known to be one of ours.
func authReason(r DropReason) bool {
	return r == DropAuthType || r == DropAuthFailure
}

// AnswerGap is the least time between two answers of a master to
// priority-0 adverts, and between two reactions to lower-priority adverts
// (the answer, and the LowerPriorityAdvert action that makes the engine
// send garp_lower_prio_repeat announcements and run
// notify_master_rx_lower_pri). keepalived reacts to every packet, so a
// flood of forged adverts made it send one multicast advert, and a burst
// of gratuitous ARPs, per packet. One answer reaches every router on the
// LAN (or every unicast peer), and a real lower-priority router goes
// Backup when it hears it, so the ones skipped would tell no one anything.
const AnswerGap = 100 * time.Millisecond

// paced is the AnswerGap gate (pace.Allow).
func paced(last *time.Time, now time.Time) bool { return pace.Allow(last, now, AnswerGap) }

// receiveHandover: a master that sent priority 0 waits for a new master.
func (i *Instance) receiveHandover(now time.Time, e Received, src netip.Addr) {
	if r, d := i.check(e, src, true); r != 0 {
		i.drop(r, src, "%s", d)
		if e.Advert.Priority != 0 && src != i.cfg.Source.WithZone("") && i.handoverStop && rivalReason(r) && !authReason(r) {
			// A master whose version, interval or addresses differ
			// dropped our priority 0 and holds the addresses already. A
			// stopping master releases its addresses at the bound
			// anyway: it ends the wait, where waiting for an advert we
			// accept would last the bound. An advert that failed
			// authentication ends nothing: any host can send one, and
			// releasing early for it would leave a gap until the backup
			// we wait for takes over.
			if d == "" {
				d = r.String()
			}
			i.masterAddr, i.masterPrio = src, e.Advert.Priority
			i.finishHandover(now, fmt.Sprintf("handover: new master %v (priority %d, %s)", src, e.Advert.Priority, d))
		}
		return
	}
	a := e.Advert
	if r, _ := i.intervalDiff(&a); r != 0 && a.Priority != 0 {
		// Another v2 advert_int (a rolling change): it dropped our
		// priority 0, holds the addresses already, and is the one we hand
		// over to.
		i.intervalMismatch(src, &a)
	}
	if r, _ := i.addrDiff(&a); r != 0 && a.Priority != 0 {
		// The new master may already list other addresses (a rolling
		// change): it is still the one we hand over to.
		i.mismatch(src, &a)
	}
	i.counters.AdvertsReceived++
	switch {
	case src == i.cfg.Source.WithZone(""):
		i.drop(DropOwnAddress, src, "advert from our own address")
	case a.Priority == 0:
		i.counters.PriorityZeroReceived++ // another router leaving too
	default:
		if i.cfg.Version == packet.Version3 {
			i.masterAdvertInt = a.Interval()
		}
		i.masterAddr, i.masterPrio = src, a.Priority
		i.finishHandover(now, fmt.Sprintf("handover: new master %v (priority %d)", src, a.Priority))
	}
}
