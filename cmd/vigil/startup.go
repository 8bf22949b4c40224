package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/director"
	"github.com/vigil-ha/vigil/internal/dump"
	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/mail"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/sched"
	"github.com/vigil-ha/vigil/internal/sdnotify"
	"github.com/vigil-ha/vigil/internal/textpages"
	"github.com/vigil-ha/vigil/internal/web"
)

// daemonMain runs vigil until ctx ends (SIGTERM) or a part fails. Each
// step opens what it names and pushes how to close it on u, which closes
// everything in the reverse order on return.
func daemonMain(ctx context.Context, f runFlags, log *slog.Logger) error {
	var u undo
	defer u.run()
	dumpSigs := subscribeDumps(&u)
	d, l, err := readConfigs(f, log, &u)
	if err != nil {
		return err
	}
	// The release's collections walk stacks and type tables, faulting back
	// binary pages the text releaser dropped: it drops them again.
	d.quiet = newQuietRelease(snapshotQuiet, releaseGap, eventGap, busyGC(f.gcPercent), quietGC(f.gcPercent, d.pages.Kick))
	u.push(d.quiet.stop)
	keepalived := d.runsKeepalived()
	cleanup, err := writePidFiles(f.pidFiles(keepalived && !f.checkOnly && len(l.spec.Instances) > 0, keepalived && !f.vrrpOnly && len(l.dir.VirtualServers) > 0))
	if err != nil {
		return err
	}
	u.push(cleanup)
	bg := newGroup(context.Background(), d.log)
	u.push(bg.stop)
	if d.runsKeepalived() {
		d.startScheduling(l, bg)
	}
	n, err := d.startNotifiers(l, bg, &u)
	if err != nil {
		return err
	}
	if d.runsKeepalived() {
		d.bgp, d.bgpCfg = bgpSetup(l, d.log)
		if err := d.useBGPHelper(); err != nil {
			return err
		}
	}
	d.dirOpts = director.Options{Logger: d.log, Notifier: n.notifier, Keep: f.keepLB, Observe: bgpObserve(d.bgp)}
	if err := d.createDirector(l); err != nil {
		return err
	}
	if err := d.openEngine(ctx, l, n, bg, &u); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// Stopped while waiting for a predecessor that is
			// stopping: nothing ran, the pid files go now.
			return nil
		}
		return err
	}
	if err := d.createHeartbeat(bg); err != nil {
		return err
	}
	if err := d.serve(dumpSigs, bg, &u); err != nil {
		return err
	}
	d.watchHangups(bg, &u)
	// A stopping master hands over before it exits (seconds without a
	// peer). A start that does not wait for the exit (the init script's
	// restart: stop, sleep 1, start) would find the pid file and give up,
	// leaving no daemon once this one is gone: on SIGTERM the virtual
	// routers are marked stopping, so that such a daemon waits for them
	// (owner.Registry.Stopping), and the pid files go at once. Without
	// virtual routers (heartbeat alone, checkers alone) nothing would make
	// a new daemon wait: the pid files stay until the exit.
	stopping := context.AfterFunc(ctx, func() {
		if d.owner == nil {
			return
		}
		d.owner.Stopping()
		cleanup()
	})
	u.push(func() { stopping() })
	return d.run(ctx, l, bg)
}

// undo is the daemon's teardown: each step that opens something pushes
// how to close it; run closes them in the reverse order.
type undo []func()

func (u *undo) push(f func()) { *u = append(*u, f) }

func (u *undo) run() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
	*u = nil
}

// group supervises the daemon's goroutines of one lifetime under one
// context. There are three, stopped in this order: the parts (engine,
// director, heartbeat node, a director a reload starts, the BGP drain);
// the notifier and mailer, once the parts' stop notifications are
// drained; the helpers (API, status page, metrics, dumps, reloads,
// scheduling, FIFOs, conntrackd, the sync daemon, BGP, the watchdog). Its
// methods may be called from any goroutine; stop cancels them all and
// waits for them.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    *slog.Logger
}

func newGroup(parent context.Context, log *slog.Logger) *group {
	ctx, cancel := context.WithCancel(parent)
	return &group{ctx: ctx, cancel: cancel, log: log}
}

// Go runs run until stop, logging the error it returns.
func (b *group) Go(name string, run func(context.Context) error) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := run(b.ctx); err != nil {
			b.log.Error(name+" stopped", "err", err)
		}
	}()
}

// Start runs run like Go and returns a function that stops it alone and
// waits for it.
func (b *group) Start(name string, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan struct{})
	b.Go(name, func(context.Context) error { defer close(done); return run(ctx) })
	return func() { cancel(); <-done }
}

func (b *group) stop() {
	b.cancel()
	b.wg.Wait()
}

// subscribeDumps subscribes the dump signals at once: their default
// action would kill the daemon when an exporter sends one early.
func subscribeDumps(u *undo) <-chan os.Signal {
	c := make(chan os.Signal, 4)
	signal.Notify(c, syscall.SIGUSR1, syscall.SIGUSR2, dump.SIGJSON)
	u.push(func() { signal.Stop(c) })
	return c
}

// runsKeepalived reports whether keepalived.conf is read: always but in
// heartbeat-only mode (--ha-dir without -f).
func (d *daemon) runsKeepalived() bool { return d.flags.haDir == "" || d.flags.fileSet }

// startedAttrs are the attributes of the "vigil started" line: the
// keepalived.conf with its instances and virtual servers when the daemon
// runs one (keepalived), the heartbeat directory when it runs one, never a
// file it did not read.
func startedAttrs(f runFlags, l loaded, keepalived bool, pid int) []any {
	a := []any{"version", version}
	if keepalived {
		a = append(a, "config", f.file, "instances", len(l.spec.Instances), "virtual_servers", len(l.dir.VirtualServers))
	}
	if f.haDir != "" {
		a = append(a, "ha_dir", f.haDir)
	}
	return append(a, "api", f.apiSocket, "pid", pid)
}

// readConfigs reads keepalived.conf and the heartbeat directory the flags
// name and returns the daemon for them; with a heartbeat directory, the
// daemon logs where ha.cf says.
func readConfigs(f runFlags, log *slog.Logger, u *undo) (*daemon, loaded, error) {
	d := &daemon{flags: f, log: log, sd: sdnotify.FromEnv(os.Getenv)}
	d.pages = textpages.NewReleaser(textSettle, func() { textpages.ReleaseAndLog(d.log) })
	var l loaded
	if d.runsKeepalived() {
		var ds diag.Diagnostics
		l, ds = loadConfig(f, nil)
		if logDiagnostics(log, ds) {
			return nil, l, errors.New("the configuration has errors; nothing started")
		}
	}
	if f.haDir != "" {
		hbCfg, ds := hb.Load(f.haDir)
		if logDiagnostics(log, ds) {
			return nil, l, errors.New("the heartbeat configuration has errors; nothing started")
		}
		hbLog, closeLogs, err := heartbeatLogging(log, f.stderrSyslog, f.logIdent, hbCfg.LogFile, hbCfg.DebugFile, hbCfg.LogFacility)
		if err != nil {
			return nil, l, err
		}
		u.push(closeLogs)
		d.log = hbLog
		d.hbCfg = hbCfg
	}
	return d, l, nil
}

// notifiers are the notify-script runner and the smtp_alert mailer (each
// nil when not configured).
type notifiers struct {
	notifier *notify.Notifier
	mailer   *mail.Mailer
}

// startNotifiers starts the notify FIFOs, the notifier and the mailer of
// keepalived.conf. The notifier and mailer outlive the engine and the
// director: their stop notifications are drained before they end.
func (d *daemon) startNotifiers(l loaded, bg *group, u *undo) (notifiers, error) {
	var n notifiers
	if !d.runsKeepalived() {
		return n, nil
	}
	var fifos []*notify.FIFO
	var err error
	n.notifier, fifos, err = newNotifier(l.cfg.Global, d.log, d.flags.notifyTimeout, d.flags.notifyGrace)
	if err != nil {
		return n, err
	}
	for _, fi := range fifos {
		u.push(func() { fi.Close() })
		bg.Go("notify fifo", fi.Run)
	}
	n.mailer = newMailer(l.cfg.Global, d.log)
	ng := newGroup(context.Background(), d.log)
	if n.notifier != nil {
		d.notifier = n.notifier
		ng.Go("notifier", func(ctx context.Context) error { n.notifier.Run(ctx); return nil })
	}
	if n.mailer != nil {
		ng.Go("mailer", func(ctx context.Context) error { n.mailer.Run(ctx); return nil })
	}
	u.push(func() {
		if n.notifier != nil {
			// Closing (when the parts began to stop) cut the scripts
			// of earlier transitions; the stop notifications have
			// notify.DefaultStopTimeout each. Past the bound the
			// notifier's stop kills what still runs.
			dctx, cancel := context.WithTimeout(context.Background(), notifyDrainBound)
			if err := n.notifier.Drain(dctx); err != nil {
				d.log.Warn("notify scripts still running at exit", "err", err)
			}
			cancel()
		}
		if n.mailer != nil {
			// keepalived's VRRP process lives one second past its
			// shutdown notifications; its "Stopping" mails go then.
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if err := n.mailer.Drain(dctx); err != nil {
				d.log.Warn("smtp alerts not sent at exit", "err", err)
			}
			cancel()
		}
		ng.stop()
	})
	return n, nil
}

// notifyDrainBound bounds the wait for the stop notifications at exit:
// notify_stop and the generic script for STOP have notify.DefaultStopTimeout
// (keepalived's 1 s), and the runs they wait behind were cut to that much
// when the stop began (notify.Notifier.Closing).
const notifyDrainBound = 2 * notify.DefaultStopTimeout

// startScheduling applies global_defs' scheduling policy first, so the
// threads started from here on are caught by Keep.
func (d *daemon) startScheduling(l loaded, bg *group) {
	p := sched.FromConfig(l.cfg.Global, d.flags.vrrpOnly, d.flags.checkOnly)
	d.sched.Set(p)
	if _, err := d.sched.Apply(); err != nil {
		d.log.Error("scheduling", "policy", p.String(), "err", err)
	} else if !p.IsZero() {
		d.log.Info("scheduling", "policy", p.String())
	}
	bg.Go("scheduling", func(ctx context.Context) error {
		return d.sched.Keep(ctx, time.Second, func(err error) { d.log.Warn("scheduling", "err", err) })
	})
}

// newDirector builds a director for spec with d.dirOpts.
func (d *daemon) newDirector(spec runspec.DirectorSpec) (*director.Director, error) {
	dir, err := director.New(spec, d.dirOpts)
	if err != nil {
		return nil, err
	}
	d.log.Info("virtual servers", "count", len(spec.VirtualServers), "backend", dir.BackendName())
	d.dirGuard = spec.SyncedConntrack
	return dir, nil
}

// createDirector builds the director of the configuration's virtual
// servers (none without them); run starts it.
func (d *daemon) createDirector(l loaded) error {
	if !d.runsKeepalived() || len(l.dir.VirtualServers) == 0 {
		return nil
	}
	dir, err := d.newDirector(l.dir)
	if err != nil {
		return err
	}
	d.dirp.Store(dir)
	return nil
}

// openEngine claims the configuration's addresses and interfaces, opens
// the kernel's sockets, starts conntrack_sync and lvs_sync_daemon and
// builds the VRRP engine (nothing with -C); run starts it.
func (d *daemon) openEngine(ctx context.Context, l loaded, n notifiers, bg *group, u *undo) error {
	if !d.runsKeepalived() || d.flags.checkOnly {
		return nil
	}
	reg, err := claimOwnership(ctx, l.spec, configID(d.flags.configID), d.log)
	if err != nil {
		return err
	}
	u.push(func() { reg.Close() })
	d.owner = reg
	osnet, err := engine.OpenOSNet()
	if err != nil {
		return fmt.Errorf("opening netlink and packet sockets: %w", err)
	}
	u.push(func() { osnet.Close() })
	hooks := engine.Hooks{VIPsChanged: d.setHeld}
	d.startBG = bg.Start
	if l.cfg.ConntrackSync != nil {
		if _, err := d.startConnSync(l.cfg); err != nil {
			return err
		}
	}
	hookConnSync(&hooks, d.csp.Load, &d.states, d.log)
	d.syncd.Store(d.startSyncDaemon(l.cfg.Global))
	hookSyncDaemon(&hooks, d.syncd.Load)
	hookQuietRelease(&hooks, d.quiet)
	d.eng, err = engine.New(l.spec, engine.Options{
		Net: osnet, Logger: d.log, Version: version, ConfigFile: d.flags.file,
		Notifier: n.notifier, Mailer: n.mailer, Hooks: bgpHooks(d.bgp, hooks), PreciseTimer: true, TimerThread: d.sched.Enroll, Owner: reg,
	})
	if err == nil {
		// The real-time priority goes to the timer's thread only.
		d.eng.TimerOnThread(d.sched.Policy().RTPriority > 0)
	}
	return err
}

// createHeartbeat builds the heartbeat node of ha.d (none without
// --ha-dir) and starts its respawned programs; run starts the node.
func (d *daemon) createHeartbeat(bg *group) error {
	if d.hbCfg == nil {
		return nil
	}
	var err error
	d.hb, err = hb.NewNode(hb.Options{Config: d.hbCfg, NodeName: d.flags.hbNode, Log: d.log, StatusFile: d.flags.hbStatus, InitDir: d.flags.hbInitDir, GenerationFile: d.flags.hbGenFile})
	if err != nil {
		return err
	}
	for _, r := range d.hbCfg.Respawn {
		bg.Go("respawn "+r.Argv[0], func(ctx context.Context) error { return hb.Respawn(ctx, r, d.log) })
	}
	return nil
}

// serve answers the API socket, the status page, the metrics and the
// profiler the flags ask for, and the dump signals.
func (d *daemon) serve(dumpSigs <-chan os.Signal, bg *group, u *undo) error {
	f := d.flags
	ln, err := api.Listen(f.apiSocket)
	if err != nil {
		return err
	}
	u.push(func() { ln.Close() }) // removes the socket file if it is still this daemon's
	bg.Go("api", func(ctx context.Context) error { return api.Serve(ctx, ln, d, d.log) })
	if f.httpListen != "" {
		hl, err := web.Listen(f.httpListen, d.log)
		if err != nil {
			return err
		}
		bg.Go("status page", func(ctx context.Context) error { return web.Serve(ctx, hl, d.Snapshot) })
	}
	if f.metrics != "" {
		if err := d.serveMetrics(f.metrics, bg.Go); err != nil {
			return err
		}
	}
	if f.debug != "" {
		dl, err := debugListen(f.debug)
		if err != nil {
			return err
		}
		bg.Go("profiler", func(ctx context.Context) error { return serveDebug(ctx, dl) })
	}
	bg.Go("dumps", func(ctx context.Context) error {
		return dump.Serve(ctx, dumpSigs, dump.DefaultPaths(os.Getenv), d.Snapshot, d.log)
	})
	return nil
}

// watchHangups reloads on each SIGHUP.
func (d *daemon) watchHangups(bg *group, u *undo) {
	hup, stopHup := hangups()
	u.push(stopHup)
	bg.Go("reload", func(ctx context.Context) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				res, err := d.Reload(ctx)
				switch {
				case err != nil:
					d.log.Error("reload failed", "err", err)
				case !res.Applied:
					d.log.Error("reload rejected; the running configuration stays", "diagnostics", len(res.Diagnostics))
				}
			}
		}
	})
}

// run runs the engine, the director and the heartbeat node until ctx
// ends (SIGTERM), the BGP routes drained first, or until one of them
// fails, which stops the others. A director a reload starts runs until
// they stop.
func (d *daemon) run(ctx context.Context, l loaded, bg *group) error {
	if d.bgp != nil {
		bg.Go("bgp", d.bgp.Run)
	}
	// beside runs the parts (engine, director, heartbeat node) and what
	// runs with them; a SIGTERM drains BGP, then stops them.
	beside := newGroup(context.WithoutCancel(ctx), d.log)
	defer beside.stop()
	stopRun := func() {
		if d.notifier != nil {
			// Scripts of earlier transitions hold back neither the
			// stop notifications nor the exit (notify.Notifier.Closing).
			d.notifier.Closing()
		}
		beside.cancel()
	}
	beside.Go("bgp drain", func(runCtx context.Context) error {
		select {
		case <-ctx.Done():
			d.drainBGP()
		case <-runCtx.Done():
		}
		stopRun()
		return nil
	})
	// The parts: their results come back on errc.
	errc := make(chan error, 3)
	running := 0
	part := func(name string, run func(context.Context) error) {
		running++
		beside.Go(name, func(ctx context.Context) error { errc <- run(ctx); return nil })
	}
	// The virtual servers stop after the VRRP engine has returned: a
	// stopping master keeps its addresses until its peer's first advert
	// (make before break), and a director that removed its table in that
	// time would leave the addresses to the host's own stack, which
	// refuses every new connection to a virtual service (TCP reset)
	// until the peer takes over.
	engineDone := make(chan struct{})
	if d.eng == nil {
		close(engineDone)
	}
	afterEngine := func(run func(context.Context) error) func(context.Context) error {
		return func(ctx context.Context) error {
			dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			defer cancel()
			stop := context.AfterFunc(ctx, func() { <-engineDone; cancel() })
			defer stop()
			return run(dctx)
		}
	}
	if dir := d.dirp.Load(); dir != nil {
		part("virtual servers", afterEngine(dir.Run))
	}
	if d.runsKeepalived() && !d.flags.vrrpOnly && d.dirp.Load() == nil {
		d.startDir = func(spec runspec.DirectorSpec) (*director.Director, error) {
			dir, err := d.newDirector(spec)
			if err != nil {
				return nil, err
			}
			d.heldMu.Lock()
			dir.SetLocal(d.held)
			d.dirp.Store(dir)
			d.heldMu.Unlock()
			beside.Go("virtual servers", afterEngine(dir.Run))
			return dir, nil
		}
	}
	if d.eng != nil {
		part("vrrp", func(ctx context.Context) error {
			defer close(engineDone)
			return d.eng.Run(ctx)
		})
	}
	if d.hb != nil {
		part("heartbeat", d.hb.Run)
	}
	f := d.flags
	releaseConfigMemory(f.gcPercent)
	bg.Go("binary pages", d.pages.Run)
	d.pages.Kick()
	d.log.Info("vigil started", startedAttrs(f, l, d.runsKeepalived(), os.Getpid())...)
	if d.sd.Enabled() {
		d.notifyReady()
		if iv, err := sdnotify.WatchdogInterval(os.Getenv, os.Getpid()); err == nil && iv > 0 {
			bg.Go("watchdog", func(ctx context.Context) error {
				return d.sd.Watchdog(ctx, iv, d.healthy, func(err error) { d.log.Warn("watchdog", "err", err) })
			})
		}
	}
	var firstErr error
	for range running {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
			stopRun() // one part failed: stop the others
		}
		if ctx.Err() != nil {
			_ = d.sd.Stopping()
		}
	}
	d.log.Info("vigil stopped")
	return firstErr
}
