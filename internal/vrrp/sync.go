package vrrp

import (
	"errors"
	"fmt"
	"time"
)

// SyncGroup is keepalived's vrrp_sync_group: instances that change state
// together (vrrp_sync.c, and the transition matrix VRRP_TSM in
// vrrp_scheduler.c):
//
//   - a member whose Master_Down_Timer fires becomes master only if every
//     other member also wants to (its own timer has fired too); otherwise it
//     stays Backup and re-arms its timer (vrrp_sync_can_goto_master: "prefer
//     backup state to avoid thrashing");
//   - a member going Backup→Master or Master→Master while the group is not
//     Master takes the others to Master (vrrp_sync_master);
//   - a member going Master→Backup takes the others to Backup, releasing
//     their addresses without a priority-0 advert (vrrp_sync_backup);
//   - a member entering Fault takes the others to Fault, masters sending
//     priority 0 (vrrp_sync_fault); the group leaves Fault, every member to
//     Backup, when no member has a fault of its own left.
//
// Group notify scripts are the engine's: it gets a GroupTransition action.
// Like Instance, a SyncGroup is pure and not safe for concurrent use; once an
// instance is in a group, drive it only through the group's Step.
type SyncGroup struct {
	name    string
	members []*Instance
	state   State
	out     []MemberAction
}

// MemberAction is an action of a group member (Member indexes the slice given
// to NewSyncGroup), or of the group itself (Member == -1, a GroupTransition).
type MemberAction struct {
	Member int
	Action Action
}

// GroupTransition reports the group's state change (notify_master /
// notify_backup / notify_fault of the vrrp_sync_group).
type GroupTransition struct {
	Group    string
	From, To State
	Reason   string
}

func (GroupTransition) action() {}

// NewSyncGroup binds members, which must be new (in Init) and in no other
// group. Its initial state is keepalived's vrrp_sync_set_group: MASTER if
// every member is an address owner starting as MASTER, otherwise BACKUP.
func NewSyncGroup(name string, members []*Instance) (*SyncGroup, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("vrrp: sync group %q has no members", name)
	}
	g := &SyncGroup{name: name, members: members, state: StateMaster}
	var errs []error
	for n, m := range members {
		switch {
		case m == nil:
			errs = append(errs, fmt.Errorf("member %d is nil", n))
			continue
		case m.group != nil:
			errs = append(errs, fmt.Errorf("instance %q is already in a sync group", m.cfg.Name))
		case m.state != StateInit:
			errs = append(errs, fmt.Errorf("instance %q has already started", m.cfg.Name))
		}
		if m.cfg.InitialState != StateMaster || m.base != PriorityOwner {
			g.state = StateBackup
		}
	}
	for _, m := range members {
		if m != nil && m.faulted() {
			g.state = StateFault // vrrp_sync_set_group: group_member_down
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("vrrp: sync group %q: %w", name, errors.Join(errs...))
	}
	for n, m := range members {
		m.group, m.groupIdx = g, n
	}
	return g, nil
}

// Name returns the group's name.
func (g *SyncGroup) Name() string { return g.name }

// State returns the group's state.
func (g *SyncGroup) State() State { return g.state }

// Members returns the members, in the order given to NewSyncGroup.
func (g *SyncGroup) Members() []*Instance { return g.members }

// Deadline is the earliest member deadline; zero when no member has a timer.
func (g *SyncGroup) Deadline() time.Time {
	var d time.Time
	for _, m := range g.members {
		if t := m.Deadline(); !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Step feeds ev to member (an index into Members), or with member == -1 to
// every member in turn (a Timeout only to the members whose deadline has
// passed), and returns every member's actions in the order they happened.
// As with Instance.Step, the slice is the group's and valid until its next
// Step.
func (g *SyncGroup) Step(now time.Time, member int, ev Event) []MemberAction {
	clear(g.out)
	g.out = g.out[:0]
	switch {
	case member == -1:
		if _, ok := ev.(Start); ok {
			if g.state == StateStopped {
				g.state = StateBackup // started again: vrrp_sync_set_group
			}
			if g.faultCount() > 0 {
				// keepalived vrrp_complete_init: "Set all sync group members to
				// fault state if sync group is in fault state".
				g.setState(StateFault, "member fault at start")
			} else if g.state == StateBackup {
				// keepalived 2.2.7 vrrp_init_state: "Do notifications for any
				// sync groups in fault or backup state" (notify_backup, the
				// generic notify, the FIFO line and the mail at start).
				g.emit(-1, GroupTransition{Group: g.name, From: StateInit, To: StateBackup, Reason: "start"})
			}
		}
		for _, m := range g.members {
			if _, ok := ev.(Timeout); ok {
				if d := m.Deadline(); d.IsZero() || now.Before(d) {
					continue
				}
			}
			g.stepMember(now, m, ev)
		}
	case member >= 0 && member < len(g.members):
		g.stepMember(now, g.members[member], ev)
	}
	// keepalived 2.2.7 notify_shutdown: once its members have stopped, the
	// group is STOP too (its notify_stop, the generic notify "GROUP G STOP
	// 0", the FIFO line, the "Stopping" mail). A member handing over stops
	// later than the others: the group follows the last one.
	if g.state != StateStopped && g.allStopped() {
		g.setState(StateStopped, "stop")
	}
	return g.out
}

func (g *SyncGroup) allStopped() bool {
	for _, m := range g.members {
		if m.state != StateStopped {
			return false
		}
	}
	return true
}

func (g *SyncGroup) stepMember(now time.Time, m *Instance, ev Event) {
	prev := m.state
	m.handle(now, ev)
	// VRRP_TSM_HANDLE: B→M, M→M and F→M run vrrp_sync_master, M→B runs
	// vrrp_sync_backup. Fault entry and exit are handled where they happen
	// (down_instance / try_up_instance).
	switch {
	case m.state == StateMaster && (prev == StateBackup || prev == StateMaster || prev == StateFault):
		g.syncMaster(now, m)
	case prev == StateMaster && m.state == StateBackup:
		g.syncBackup(now, m, fmt.Sprintf("member %s went BACKUP", m.cfg.Name))
	}
}

func (g *SyncGroup) emit(member int, a Action) {
	g.out = append(g.out, MemberAction{Member: member, Action: a})
}

func (g *SyncGroup) setState(to State, reason string) {
	if g.state == to {
		return
	}
	from := g.state
	g.state = to
	g.emit(-1, GroupTransition{Group: g.name, From: from, To: to, Reason: reason})
}

// running reports whether a member takes part in syncing (started, not
// stopped).
func running(m *Instance) bool {
	return m.state == StateBackup || m.state == StateMaster || m.state == StateFault
}

// faultCount is keepalived's num_member_fault: members with a fault of their
// own.
func (g *SyncGroup) faultCount() int {
	n := 0
	for _, m := range g.members {
		if m.faulted() {
			n++
		}
	}
	return n
}

// canGotoMaster is keepalived's vrrp_sync_can_goto_master.
func (g *SyncGroup) canGotoMaster(m *Instance) bool {
	if g.state == StateMaster {
		return true
	}
	for _, o := range g.members {
		if o != m && running(o) && o.want != StateMaster {
			return false
		}
	}
	return true
}

// syncMaster is keepalived's vrrp_sync_master.
func (g *SyncGroup) syncMaster(now time.Time, m *Instance) {
	if g.state == StateMaster || !g.canGotoMaster(m) {
		return
	}
	reason := fmt.Sprintf("sync group %s: member %s went MASTER", g.name, m.cfg.Name)
	for _, o := range g.members {
		if o != m && running(o) && o.state != StateMaster && !o.faulted() {
			o.want = StateMaster
			o.gotoMaster(now, reason)
		}
	}
	g.setState(StateMaster, fmt.Sprintf("member %s went MASTER", m.cfg.Name))
}

// syncBackup is keepalived's vrrp_sync_backup.
func (g *SyncGroup) syncBackup(now time.Time, m *Instance, why string) {
	if g.state == StateBackup {
		return
	}
	reason := fmt.Sprintf("sync group %s: %s", g.name, why)
	for _, o := range g.members {
		if o == m || !running(o) || o.state == StateBackup || o.faulted() {
			continue
		}
		o.want = StateBackup
		if o.state == StateFault {
			o.leaveFault(now, reason)
		} else {
			o.leaveMaster(now, StateBackup, reason, false)
		}
	}
	g.setState(StateBackup, why)
}

// syncFault is keepalived's vrrp_sync_fault.
func (g *SyncGroup) syncFault(now time.Time, m *Instance, why string) {
	if g.state == StateFault {
		return
	}
	reason := fmt.Sprintf("sync group %s: member %s %s", g.name, m.cfg.Name, why)
	for _, o := range g.members {
		if o != m && running(o) && o.state != StateFault {
			o.enterFault(now, reason)
		}
	}
	g.setState(StateFault, fmt.Sprintf("member %s %s", m.cfg.Name, why))
}

// Regroup binds instances that already run into a new group, without a
// restart: a reload that changed sync-group membership but not the
// members' identities (keepalived's reload keeps such instances too). Each
// member leaves the group it was in; the caller discards those groups. The
// group starts MASTER when every member is master, FAULT when a member has
// a fault of its own, BACKUP otherwise. The members keep their states; the
// group's rules apply from their next transition.
func Regroup(name string, members []*Instance) (*SyncGroup, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("vrrp: sync group %q has no members", name)
	}
	g := &SyncGroup{name: name, members: members, state: StateMaster}
	for n, m := range members {
		if m == nil {
			return nil, fmt.Errorf("vrrp: sync group %q: member %d is nil", name, n)
		}
		if m.state != StateMaster {
			g.state = StateBackup
		}
	}
	for _, m := range members {
		if m.faulted() {
			g.state = StateFault
		}
	}
	for n, m := range members {
		m.group, m.groupIdx = g, n
	}
	return g, nil
}

// LeaveGroup takes the instance out of its sync group (a reload removed it
// from the group); it keeps its state and is driven by Instance.Step again.
func (i *Instance) LeaveGroup() { i.group, i.groupIdx = nil, 0 }
