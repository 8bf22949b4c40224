package main

import (
	"context"
	"log/slog"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
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

// startSyncDaemon runs global_defs lvs_sync_daemon (or the deprecated
// lvs_sync_daemon_interface): the kernel's IPVS connection sync daemon in
// the role of its VRRP instance, as keepalived's VRRP process does. It
// returns the engine hook that feeds the instance's transitions, or nil when
// there is nothing to follow.
func startSyncDaemon(g config.Global, log *slog.Logger, goRun func(string, func(context.Context) error)) func(name string, from, to vrrp.State, prio int, reason string) {
	d := g.LVSSyncDaemon
	if d == nil {
		return nil
	}
	if msg := syncDaemonProblem(d); msg != "" {
		log.Warn(msg, "at", d.Pos.String())
		return nil
	}
	conn, err := ipvs.DialSync()
	if err != nil {
		log.Error("lvs_sync_daemon", "err", err)
		return nil
	}
	f := ipvs.NewSyncFollower(ipvs.SyncConfig{
		Interface: d.Interface, SyncID: uint8(d.SyncID), MaxLen: uint16(d.MaxLen),
		Port: uint16(d.Port), TTL: uint8(d.TTL), Group: d.Group,
	}, conn, log)
	goRun("lvs_sync_daemon", func(ctx context.Context) error {
		defer conn.Close()
		return f.Run(ctx)
	})
	inst := d.Instance
	return func(name string, _, to vrrp.State, _ int, _ string) {
		if name == inst {
			f.Set(to == vrrp.StateMaster)
		}
	}
}
