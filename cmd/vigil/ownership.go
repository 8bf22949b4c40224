package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/owner"
	"github.com/vigil-ha/vigil/internal/runspec"
)

// claimOwnership makes this daemon the one owner of the virtual routers of
// spec in its network namespace, or says who already is: another vigil
// (by its lock, naming its pid and command line) or a keepalived whose
// configuration uses one of them. The caller closes the registry at exit,
// which gives the routers up. A router whose owner is stopping (an init
// script's restart that does not wait for the old daemon) is waited for,
// bounded, and the wait logged on log; it ends with ctx (the daemon is
// told to stop meanwhile).
func claimOwnership(ctx context.Context, spec runspec.Spec, configID string, log *slog.Logger) (*owner.Registry, error) {
	keys := engine.OwnerKeys(spec)
	procs, err := owner.Keepalived("")
	if err != nil {
		return nil, err
	}
	if err := owner.CheckKeepalived(procs, keys, func(path string) ([]owner.Key, error) {
		return keepalivedKeys(path, configID)
	}); err != nil {
		return nil, err
	}
	dir := os.Getenv("VIGIL_RUN_DIR") // tests; the default is /run/vigil
	reg, err := owner.Open(dir)
	if err != nil {
		return nil, err
	}
	reg.OnWait(func(w owner.Wait) { logOwnerWait(log, w) })
	if err := reg.ClaimContext(ctx, keys); err != nil {
		reg.Close()
		return nil, err
	}
	return reg, nil
}

// logOwnerWait says that this daemon waits for a predecessor that is
// stopping (it hands its addresses over before it exits), and how the wait
// ended.
func logOwnerWait(log *slog.Logger, w owner.Wait) {
	switch {
	case w.Took == 0:
		log.Warn("a previous vigil is stopping and still holds the virtual router: waiting for it to exit before starting",
			"router", w.Key.String(), "pid", w.PID, "up_to", w.Bound)
	case w.Canceled:
		log.Info("told to stop while waiting for the previous vigil: not starting", "router", w.Key.String(), "pid", w.PID, "waited", w.Took.Round(time.Millisecond))
	case w.Done:
		log.Info("the previous vigil exited: taking the virtual router over", "router", w.Key.String(), "pid", w.PID, "waited", w.Took.Round(time.Millisecond))
	default:
		log.Error("the previous vigil is still stopping: giving up the wait", "router", w.Key.String(), "pid", w.PID, "waited", w.Took.Round(time.Millisecond))
	}
}

// keepalivedKeys reads the virtual routers of a keepalived configuration
// file with vigil's own parser.
func keepalivedKeys(path, configID string) ([]owner.Key, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, err
	}
	cfg, ds := config.Load(os.DirFS("/"), abs, config.Options{ConfigID: configID, Root: "/"})
	if cfg == nil {
		return nil, fmt.Errorf("%s: %v", abs, ds)
	}
	var keys []owner.Key
	for _, in := range cfg.Instances {
		keys = append(keys, owner.Key{Interface: in.Interface, IPv6: in.Family == config.Inet6, VRID: uint8(in.VRID)})
	}
	return keys, nil
}
