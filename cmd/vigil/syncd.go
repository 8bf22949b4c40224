package main

import (
	"context"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/lb/ipvs"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// syncDaemonProblem says why lvs_sync_daemon cannot run here ("" when it
// can); `vigil check` reports it at the line, the daemon logs it.
func syncDaemonProblem(d *config.LVSSyncDaemon) string {
	switch {
	case d.Instance == "":
		return "lvs_sync_daemon names no vrrp_instance to follow; ignored"
	case !ipvs.Available():
		return "lvs_sync_daemon synchronises IPVS connections and this kernel has no IPVS; ignored"
	}
	return ""
}

// syncDaemonDiagnostics is syncDaemonProblem for `vigil check`.
func syncDaemonDiagnostics(cfg *config.Config) diag.Diagnostics {
	var ds diag.Diagnostics
	if d := cfg.Global.LVSSyncDaemon; d != nil {
		if msg := syncDaemonProblem(d); msg != "" {
			ds.Warnf(d.Pos, "%s", msg)
		}
	}
	return ds
}

// syncDaemon is the running lvs_sync_daemon: the instance it follows and
// its follower.
type syncDaemon struct {
	instance string
	f        *ipvs.SyncFollower
	stop     func()
}

func syncConfig(d *config.LVSSyncDaemon) ipvs.SyncConfig {
	return ipvs.SyncConfig{
		Interface: d.Interface, SyncID: uint8(d.SyncID), MaxLen: uint16(d.MaxLen),
		Port: uint16(d.Port), TTL: uint8(d.TTL), Group: d.Group,
	}
}

// startSyncDaemon runs global_defs lvs_sync_daemon (or the deprecated
// lvs_sync_daemon_interface): the kernel's IPVS connection sync daemon in
// the role of its VRRP instance, as keepalived's VRRP process does; nil
// when there is nothing to run. The follower takes the instance's state
// when it is known (a reload).
func (dm *daemon) startSyncDaemon(g config.Global) *syncDaemon {
	d := g.LVSSyncDaemon
	if d == nil {
		return nil
	}
	if msg := syncDaemonProblem(d); msg != "" {
		dm.log.Warn(msg, "at", d.Pos.String())
		return nil
	}
	conn, err := ipvs.DialSync()
	if err != nil {
		dm.log.Error("lvs_sync_daemon", "err", err)
		return nil
	}
	f := ipvs.NewSyncFollower(syncConfig(d), conn, dm.log)
	if st, ok := dm.states.get(followKey(d.Instance, "")); ok {
		f.Set(st == vrrp.StateMaster)
	}
	sd := &syncDaemon{instance: d.Instance, f: f}
	sd.stop = dm.startBG("lvs_sync_daemon", func(ctx context.Context) error {
		defer conn.Close()
		return f.Run(ctx)
	})
	return sd
}

// hookSyncDaemon makes the engine's instance transitions drive the sync
// daemon running when they come, keeping the hook already set.
func hookSyncDaemon(h *engine.Hooks, cur func() *syncDaemon) {
	prev := h.InstanceTransition
	h.InstanceTransition = func(name string, from, to vrrp.State, prio int, reason string) {
		if prev != nil {
			prev(name, from, to, prio, reason)
		}
		if sd := cur(); sd != nil && sd.instance == name {
			sd.f.Set(to == vrrp.StateMaster)
		}
	}
}

// syncDaemonReload applies a reloaded lvs_sync_daemon: an added one starts
// the kernel's daemon, a removed one stops it, a changed one restarts it
// with its new settings in the same state, and a new instance to follow
// gives it that instance's state.
func (dm *daemon) syncDaemonReload(g config.Global) []string {
	cur := dm.syncd.Load()
	next := g.LVSSyncDaemon
	if next != nil && syncDaemonProblem(next) != "" {
		next = nil // ignored, as at start (logged there and by vigil check)
	}
	switch {
	case cur == nil && next == nil:
		return nil
	case cur == nil:
		sd := dm.startSyncDaemon(g)
		if sd == nil {
			return nil
		}
		dm.syncd.Store(sd)
		return []string{"+ lvs_sync_daemon"}
	case next == nil:
		dm.syncd.Store(nil)
		cur.stop()
		return []string{"- lvs_sync_daemon (the kernel's sync daemon stopped)"}
	}
	var changes []string
	if cur.f.SetConfig(syncConfig(next)) {
		changes = append(changes, "~ lvs_sync_daemon (the kernel's sync daemon restarts with its new settings)")
	}
	if next.Instance != cur.instance {
		sd := &syncDaemon{instance: next.Instance, f: cur.f, stop: cur.stop}
		dm.syncd.Store(sd)
		st, _ := dm.states.get(followKey(next.Instance, ""))
		sd.f.Set(st == vrrp.StateMaster)
		changes = append(changes, "~ lvs_sync_daemon follows "+next.Instance)
	}
	return changes
}
