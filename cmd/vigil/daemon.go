package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/status"
)

// daemon wires the engine to the API and to signals. It implements
// api.Daemon.
type daemon struct {
	flags runFlags
	log   *slog.Logger
	eng   *engine.Engine

	mu         sync.Mutex // serialises reloads
	reloads    uint64
	lastReload time.Time
}

// configID is keepalived's default config id: the short host name.
func configID(flag string) string {
	if flag != "" {
		return flag
	}
	h, _ := os.Hostname()
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return h
}

// loadConfig reads the configuration file and resolves it into a Spec.
// Warnings are logged; errors are returned as diagnostics.
func loadConfig(path, id string) (engine.Spec, diag.Diagnostics) {
	abs, err := filepath.Abs(path)
	if err != nil {
		var ds diag.Diagnostics
		ds.Errorf(diag.Pos{File: path}, "%v", err)
		return engine.Spec{}, ds
	}
	cfg, ds := config.Load(os.DirFS("/"), abs, config.Options{ConfigID: configID(id), Root: "/"})
	if ds.HasErrors() {
		return engine.Spec{}, ds
	}
	spec, more := engine.FromConfig(cfg)
	return spec, append(ds, more...)
}

func daemonMain(ctx context.Context, f runFlags, log *slog.Logger) error {
	spec, ds := loadConfig(f.file, f.configID)
	for _, d := range ds {
		if d.Severity == diag.Warning {
			log.Warn("configuration", "diagnostic", d.String())
		}
	}
	if ds.HasErrors() {
		for _, d := range ds {
			if d.Severity == diag.Error {
				log.Error("configuration", "diagnostic", d.String())
			}
		}
		return errors.New("the configuration has errors; nothing started")
	}
	if f.checkOnly {
		spec.Instances, spec.SyncGroups = nil, nil
	}

	cleanup, err := writePidFiles(f.pidFiles)
	if err != nil {
		return err
	}
	defer cleanup()

	osnet, err := engine.OpenOSNet()
	if err != nil {
		return fmt.Errorf("opening netlink and packet sockets: %w", err)
	}
	defer osnet.Close()

	eng, err := engine.New(spec, engine.Options{Net: osnet, Logger: log, Version: version, ConfigFile: f.file})
	if err != nil {
		return err
	}
	d := &daemon{flags: f, log: log, eng: eng}

	ln, err := api.Listen(f.apiSocket)
	if err != nil {
		return err
	}
	apiCtx, stopAPI := context.WithCancel(context.Background())
	apiDone := make(chan error, 1)
	go func() { apiDone <- api.Serve(apiCtx, ln, d, log) }()
	defer func() {
		stopAPI()
		<-apiDone
		os.Remove(f.apiSocket)
	}()

	hup, stopHup := hangups()
	defer stopHup()
	go func() {
		for range hup {
			res, err := d.Reload(ctx)
			switch {
			case err != nil:
				log.Error("reload failed", "err", err)
			case !res.Applied:
				log.Error("reload rejected; the running configuration stays", "diagnostics", len(res.Diagnostics))
			}
		}
	}()

	log.Info("vigil started", "version", version, "config", f.file, "instances", len(spec.Instances), "api", f.apiSocket, "pid", os.Getpid())
	err = eng.Run(ctx)
	log.Info("vigil stopped")
	return err
}

func (d *daemon) Snapshot(ctx context.Context) (status.Snapshot, error) {
	s, err := d.eng.Snapshot(ctx)
	d.mu.Lock()
	s.Daemon.Reloads, s.Daemon.LastReload = d.reloads, d.lastReload
	d.mu.Unlock()
	return s, err
}

func (d *daemon) Handover(ctx context.Context, name string) error { return d.eng.Handover(ctx, name) }
func (d *daemon) Reclaim(ctx context.Context, name string) error  { return d.eng.Reclaim(ctx, name) }

// Reload checks the configuration file again and, when it has no errors,
// applies the difference (see engine.Apply).
func (d *daemon) Reload(ctx context.Context) (api.ReloadResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	start := time.Now()
	spec, ds := loadConfig(d.flags.file, d.flags.configID)
	var res api.ReloadResult
	for _, x := range ds {
		res.Diagnostics = append(res.Diagnostics, x.String())
	}
	if ds.HasErrors() {
		res.Duration = time.Since(start).String()
		return res, nil
	}
	if d.flags.checkOnly {
		spec.Instances, spec.SyncGroups = nil, nil
	}
	changes, err := d.eng.Apply(ctx, spec)
	if err != nil {
		return res, err
	}
	d.reloads++
	d.lastReload = time.Now()
	res.Applied, res.Changes, res.Duration = true, changes, time.Since(start).String()
	d.log.Info("configuration reloaded", "changes", len(changes), "took", res.Duration)
	return res, nil
}
