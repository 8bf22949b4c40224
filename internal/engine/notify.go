package engine

import (
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// setNotifyScripts registers every instance's and group's scripts.
func (e *Engine) setNotifyScripts() {
	n := e.opts.Notifier
	if n == nil {
		return
	}
	for _, in := range e.all() {
		n.SetScripts(notify.Instance, in.spec.VRRP.Name, in.spec.Notify)
	}
	for _, g := range e.groups {
		n.SetScripts(notify.Group, g.spec.Name, g.spec.Notify)
	}
}

func notifyState(s vrrp.State) (notify.State, bool) {
	switch s {
	case vrrp.StateMaster:
		return notify.Master, true
	case vrrp.StateBackup:
		return notify.Backup, true
	case vrrp.StateFault:
		return notify.Fault, true
	case vrrp.StateStopped:
		return notify.Stop, true
	}
	return 0, false
}

func (e *Engine) notifyInstance(in *instance, to vrrp.State, prio int) {
	st, ok := notifyState(to)
	if !ok {
		return
	}
	if st == notify.Stop && in.deleted {
		st = notify.Deleted
	}
	name := in.spec.VRRP.Name
	if n := e.opts.Notifier; n != nil {
		n.Notify(notify.Event{Kind: notify.Instance, Name: name, State: st, Priority: uint8(prio)})
	}
	// keepalived 2.2.7 vrrp_smtp_notifier mails "Stopping" and "Deleted"
	// too; the daemon gives the mailer a moment at exit (mail.Drain).
	if m := e.opts.Mailer; m != nil && in.spec.SMTPAlert {
		mst := st
		if mst == notify.Deleted && !in.spec.Notify.NotifyDeleted {
			mst = notify.Fault // as the scripts see it without notify_deleted
		}
		m.Instance(name, mst.String())
	}
}

func (e *Engine) notifyGroup(g *group, to vrrp.State) {
	st, ok := notifyState(to)
	if !ok {
		return
	}
	if n := e.opts.Notifier; n != nil {
		n.Notify(notify.Event{Kind: notify.Group, Name: g.spec.Name, State: st})
	}
	if m := e.opts.Mailer; m != nil && g.spec.SMTPAlert {
		m.Group(g.spec.Name, st.String())
	}
}

// notifyPriority reports an effective priority change on the FIFO
// (notify_priority_changes: MASTER_PRIORITY / BACKUP_PRIORITY lines).
func (e *Engine) notifyPriority(in *instance) {
	n := e.opts.Notifier
	if n == nil || !in.spec.NotifyPriorityChanges {
		return
	}
	var st notify.State
	switch in.m.State() {
	case vrrp.StateMaster:
		st = notify.MasterPriority
	case vrrp.StateBackup:
		st = notify.BackupPriority
	default:
		return
	}
	n.Notify(notify.Event{Kind: notify.Instance, Name: in.spec.VRRP.Name, State: st, Priority: uint8(in.prio)})
}

// notifyLowerPriority runs notify_master_rx_lower_pri.
func (e *Engine) notifyLowerPriority(in *instance) {
	if n := e.opts.Notifier; n != nil {
		n.Notify(notify.Event{Kind: notify.Instance, Name: in.spec.VRRP.Name, State: notify.MasterRxLowerPri, Priority: uint8(in.prio)})
	}
}
