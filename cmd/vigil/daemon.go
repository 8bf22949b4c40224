package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/bgp"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/connsync"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/dump"
	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/mail"
	"github.com/vigil-ha/vigil/internal/metrics"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/owner"
	"github.com/vigil-ha/vigil/internal/sched"
	"github.com/vigil-ha/vigil/internal/script"
	"github.com/vigil-ha/vigil/internal/sdnotify"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/web"
)

// daemon wires the engine (keepalived.conf) and the heartbeat node (ha.d)
// to the API, signals, systemd, dumps, metrics and the status page. It
// implements api.Daemon.
type daemon struct {
	flags  runFlags
	log    *slog.Logger
	eng    *engine.Engine   // nil in heartbeat-only mode and with -C
	dir    *engine.Director // nil without virtual servers and with -P
	hb     *hb.Node         // nil without --ha-dir
	bgp    *bgp.Runtime     // nil without a bgp block
	bgpCfg bgp.Config
	hbCfg  *hb.Config
	sd     *sdnotify.Notifier
	cs     *connsync.Supervisor  // nil without conntrack_sync
	csCfg  *config.ConntrackSync // the conntrack_sync block running (nil: none)

	reloader reloader
	sched    sched.Scheduler
	// mu guards the counters only; it is never held across I/O.
	mu         sync.Mutex
	reloads    uint64
	lastReload time.Time
}

// reloadDeadline bounds reading and checking a configuration on reload.
// Past it, the reload is abandoned and the running configuration stays.
const reloadDeadline = 30 * time.Second

// reloader runs reloads: the read and check of the file in a goroutine of
// its own, bounded by a deadline, one at a time; then the apply. It holds
// no lock during the read. The zero value is ready (deadline 0 means
// reloadDeadline).
type reloader struct {
	// reading holds the start time of the reload whose read is running
	// (nil when none): a second reload is refused while it is set. It
	// is cleared when the read ends, also after an abandoned reload.
	reading atomic.Pointer[time.Time]
	// applying serialises the apply step.
	applying sync.Mutex
	deadline time.Duration
	log      *slog.Logger
}

// run reads with read and, when the result has no errors, applies it
// with apply, which returns the changes and any further diagnostics.
func (r *reloader) run(ctx context.Context, read func() (loaded, diag.Diagnostics), apply func(context.Context, loaded) ([]string, []string, error)) (api.ReloadResult, error) {
	start := time.Now()
	if !r.reading.CompareAndSwap(nil, &start) {
		since := "a moment"
		if t := r.reading.Load(); t != nil {
			since = time.Since(*t).Round(time.Millisecond).String()
		}
		return api.ReloadResult{}, fmt.Errorf("reload refused: another reload is still reading the configuration (for %s); the running configuration stays", since)
	}
	type result struct {
		l  loaded
		ds diag.Diagnostics
	}
	done := make(chan result, 1)
	go func() {
		// The slot is freed when the read ends, even when the reload
		// was abandoned: at most one read runs.
		defer r.reading.Store(nil)
		l, ds := read()
		done <- result{l, ds}
	}()
	deadline := r.deadline
	if deadline <= 0 {
		deadline = reloadDeadline
	}
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	var got result
	select {
	case got = <-done:
	case <-timer.C:
		return api.ReloadResult{}, fmt.Errorf("reload abandoned: reading and checking the configuration took longer than %s; the running configuration stays", deadline)
	case <-ctx.Done():
		return api.ReloadResult{}, fmt.Errorf("reload abandoned: %w; the running configuration stays", ctx.Err())
	}
	// The journal gets the diagnostics too: a SIGHUP has no client to
	// print them.
	if r.log != nil {
		logDiagnostics(r.log, got.ds)
	}
	var res api.ReloadResult
	for _, x := range got.ds {
		res.Diagnostics = append(res.Diagnostics, x.String())
	}
	if got.ds.HasErrors() {
		res.Duration = time.Since(start).String()
		if isEmptyFile(got.ds) && r.log != nil {
			r.log.Error("the file is empty; the running configuration stays")
		}
		return res, nil
	}
	r.applying.Lock()
	defer r.applying.Unlock()
	changes, notes, err := apply(ctx, got.l)
	res.Diagnostics = append(res.Diagnostics, notes...)
	if err != nil {
		return res, err
	}
	res.Applied, res.Changes, res.Duration = true, changes, time.Since(start).String()
	return res, nil
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

// loaded is a configuration file resolved for the engine and director.
type loaded struct {
	cfg  *config.Config
	spec engine.Spec
	dir  engine.DirectorSpec
}

// loadConfig reads the configuration file and resolves it. -P drops the
// virtual servers, -C the VRRP instances.
func loadConfig(f runFlags) (loaded, diag.Diagnostics) {
	var l loaded
	abs, err := filepath.Abs(f.file)
	if err != nil {
		var ds diag.Diagnostics
		ds.Errorf(diag.Pos{File: f.file}, "%v", err)
		return l, ds
	}
	cfg, ds := readConfig(abs, configID(f.configID), f.limits)
	l.cfg = cfg
	if ds.HasErrors() {
		return l, ds
	}
	if !f.checkOnly {
		spec, more := engine.FromConfig(cfg)
		l.spec = spec
		ds = append(ds, more...)
	}
	if !f.vrrpOnly {
		dspec, more := engine.DirectorFromConfig(cfg)
		l.dir = dspec
		ds = append(ds, more...)
	}
	ds.Sort()
	return l, ds
}

// logDiagnostics logs warnings and errors and reports whether there were
// errors.
func logDiagnostics(log *slog.Logger, ds diag.Diagnostics) bool {
	for _, d := range ds {
		if d.Severity == diag.Error {
			log.Error("configuration", "diagnostic", d.String())
		} else {
			log.Warn("configuration", "diagnostic", d.String())
		}
	}
	return ds.HasErrors()
}

func daemonMain(ctx context.Context, f runFlags, log *slog.Logger) error {
	// Subscribe the dump signals at once: their default action would kill
	// the daemon when an exporter sends one early.
	dumpSigs := make(chan os.Signal, 4)
	signal.Notify(dumpSigs, syscall.SIGUSR1, syscall.SIGUSR2, dump.SIGJSON)
	defer signal.Stop(dumpSigs)

	d := &daemon{flags: f, log: log, sd: sdnotify.FromEnv(os.Getenv)}
	runKeepalived := f.haDir == "" || f.fileSet
	var l loaded
	if runKeepalived {
		var ds diag.Diagnostics
		l, ds = loadConfig(f)
		if logDiagnostics(log, ds) {
			return errors.New("the configuration has errors; nothing started")
		}
	}
	spec := l.spec
	var hbCfg *hb.Config
	if f.haDir != "" {
		var ds diag.Diagnostics
		hbCfg, ds = hb.Load(f.haDir)
		if logDiagnostics(log, ds) {
			return errors.New("the heartbeat configuration has errors; nothing started")
		}
		hbLog, closeLogs, err := heartbeatLogging(log, hbCfg.LogFile, hbCfg.DebugFile, hbCfg.LogFacility)
		if err != nil {
			return err
		}
		defer closeLogs()
		log = hbLog
		d.log = log
	}

	cleanup, err := writePidFiles(f.pidFiles)
	if err != nil {
		return err
	}
	defer cleanup()

	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(context.Background())
	defer func() {
		stopBG()
		wg.Wait()
	}()
	goRun := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(bg); err != nil {
				log.Error(name+" stopped", "err", err)
			}
		}()
	}

	if runKeepalived {
		// Scheduling first: the threads started from here on are
		// caught by Keep.
		p := sched.FromConfig(l.cfg.Global, f.vrrpOnly, f.checkOnly)
		d.sched.Set(p)
		if _, err := d.sched.Apply(); err != nil {
			log.Error("scheduling", "policy", p.String(), "err", err)
		} else if !p.IsZero() {
			log.Info("scheduling", "policy", p.String())
		}
		goRun("scheduling", func(ctx context.Context) error {
			return d.sched.Keep(ctx, time.Second, func(err error) { log.Warn("scheduling", "err", err) })
		})
	}

	var notifier *notify.Notifier
	var mailer *mail.Mailer
	if runKeepalived {
		var fifos []*notify.FIFO
		notifier, fifos, err = newNotifier(l.cfg.Global, log)
		if err != nil {
			return err
		}
		for _, fi := range fifos {
			defer fi.Close()
			goRun("notify fifo", fi.Run)
		}
		mailer = newMailer(l.cfg.Global, log)
	}
	// The notifier and mailer outlive the engine and director: their stop
	// notifications are drained before they end.
	notifyCtx, stopNotify := context.WithCancel(context.Background())
	notifyDone := make(chan struct{}, 2)
	notifyRunning := 0
	if notifier != nil {
		notifyRunning++
		go func() { notifier.Run(notifyCtx); notifyDone <- struct{}{} }()
	}
	if mailer != nil {
		notifyRunning++
		go func() { mailer.Run(notifyCtx); notifyDone <- struct{}{} }()
	}
	defer func() {
		if notifier != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := notifier.Drain(dctx); err != nil {
				log.Warn("notify scripts still running at exit", "err", err)
			}
			cancel()
		}
		stopNotify()
		for range notifyRunning {
			<-notifyDone
		}
	}()

	if runKeepalived {
		d.bgp, d.bgpCfg = bgpSetup(l, log)
	}
	if runKeepalived && len(l.dir.VirtualServers) > 0 {
		d.dir, err = engine.NewDirector(l.dir, engine.DirectorOptions{Logger: log, Notifier: notifier, Keep: f.keepLB, Observe: bgpObserve(d.bgp)})
		if err != nil {
			return err
		}
		log.Info("virtual servers", "count", len(l.dir.VirtualServers), "backend", d.dir.BackendName())
	}
	var reg *owner.Registry
	if runKeepalived && !f.checkOnly {
		reg, err = claimOwnership(spec, configID(f.configID))
		if err != nil {
			return err
		}
		defer reg.Close()
		osnet, err := engine.OpenOSNet()
		if err != nil {
			return fmt.Errorf("opening netlink and packet sockets: %w", err)
		}
		defer osnet.Close()
		hooks := engine.Hooks{}
		if d.dir != nil {
			hooks.VIPsChanged = d.dir.SetLocal
		}
		hooks.InstanceTransition = startSyncDaemon(l.cfg.Global, log, goRun)
		if cs := l.cfg.ConntrackSync; cs != nil {
			spec, err := connSyncSpec(l.cfg, f.apiSocket)
			if err != nil {
				return err
			}
			d.cs, d.csCfg = connsync.New(spec, log), cs
			hookConnSync(&hooks, cs, d.cs, log)
			goRun("conntrackd", d.cs.Run)
		}
		d.eng, err = engine.New(spec, engine.Options{
			Net: osnet, Logger: log, Version: version, ConfigFile: f.file,
			Notifier: notifier, Mailer: mailer, Hooks: bgpHooks(d.bgp, hooks), PreciseTimer: true, Owner: reg,
		})
		if err != nil {
			return err
		}
	}
	if hbCfg != nil {
		d.hbCfg = hbCfg
		d.hb, err = hb.NewNode(hb.Options{Config: hbCfg, NodeName: f.hbNode, Log: log, StatusFile: f.hbStatus, InitDir: f.hbInitDir})
		if err != nil {
			return err
		}
		for _, r := range hbCfg.Respawn {
			goRun("respawn "+r.Argv[0], func(ctx context.Context) error { return hb.Respawn(ctx, r, log) })
		}
	}

	ln, err := api.Listen(f.apiSocket)
	if err != nil {
		return err
	}
	defer os.Remove(f.apiSocket)
	goRun("api", func(ctx context.Context) error { return api.Serve(ctx, ln, d, log) })
	if f.httpListen != "" {
		hl, err := web.Listen(f.httpListen, log)
		if err != nil {
			return err
		}
		goRun("status page", func(ctx context.Context) error { return web.Serve(ctx, hl, d.Snapshot) })
	}
	if f.metrics != "" {
		if err := d.serveMetrics(f.metrics, goRun); err != nil {
			return err
		}
	}
	if f.debug != "" {
		dl, err := debugListen(f.debug)
		if err != nil {
			return err
		}
		goRun("profiler", func(ctx context.Context) error { return serveDebug(ctx, dl) })
	}
	goRun("dumps", func(ctx context.Context) error {
		return dump.Serve(ctx, dumpSigs, dump.DefaultPaths(os.Getenv), d.Snapshot, log)
	})

	hup, stopHup := hangups()
	defer stopHup()
	goRun("reload", func(ctx context.Context) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				res, err := d.Reload(ctx)
				switch {
				case err != nil:
					log.Error("reload failed", "err", err)
				case !res.Applied:
					log.Error("reload rejected; the running configuration stays", "diagnostics", len(res.Diagnostics))
				}
			}
		}
	})

	// The engine and the heartbeat node run until ctx ends (SIGTERM); the
	// BGP routes drain first.
	if d.bgp != nil {
		goRun("bgp", d.bgp.Run)
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	go func() {
		select {
		case <-ctx.Done():
			d.drainBGP()
		case <-runCtx.Done():
		}
		stopRun()
	}()
	errc := make(chan error, 3)
	running := 0
	if d.dir != nil {
		running++
		go func() { errc <- d.dir.Run(runCtx) }()
	}
	if d.eng != nil {
		running++
		go func() { errc <- d.eng.Run(runCtx) }()
	}
	if d.hb != nil {
		running++
		go func() { errc <- d.hb.Run(runCtx) }()
	}
	log.Info("vigil started", "version", version, "config", f.file, "instances", len(spec.Instances), "virtual_servers", len(l.dir.VirtualServers), "ha_dir", f.haDir, "api", f.apiSocket, "pid", os.Getpid())
	if d.sd.Enabled() {
		d.notifyReady()
		if iv, err := sdnotify.WatchdogInterval(os.Getenv, os.Getpid()); err == nil && iv > 0 {
			goRun("watchdog", func(ctx context.Context) error {
				return d.sd.Watchdog(ctx, iv, d.healthy, func(err error) { log.Warn("watchdog", "err", err) })
			})
		}
	}
	var firstErr error
	for range running {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
			stopRun() // one part failed: stop the other
		}
		if ctx.Err() != nil {
			_ = d.sd.Stopping()
		}
	}
	log.Info("vigil stopped")
	return firstErr
}

func (d *daemon) notifyReady() {
	s, err := d.Snapshot(context.Background())
	msg := "running"
	if err == nil {
		msg = fmt.Sprintf("%d VRRP instances", len(s.Instances))
	}
	if err := d.sd.Ready(msg); err != nil {
		d.log.Warn("systemd notify", "err", err)
	}
}

// healthy tells the watchdog whether the VRRP loop turns (and, without
// VRRP, the director's or heartbeat's): a request through the loop, and
// nothing else. A slow reload, status reader or metrics scrape does not
// make the daemon look hung, and a hung VRRP loop is not hidden by the
// rest answering.
func (d *daemon) healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	switch {
	case d.eng != nil:
		return d.eng.Ping(ctx) == nil
	case d.dir != nil:
		_, err := d.dir.Snapshot(ctx)
		return err == nil
	}
	return true
}

func (d *daemon) serveMetrics(addr string, goRun func(string, func(context.Context) error)) error {
	if w := web.CheckListen(addr); w != "" {
		d.log.Warn(w)
	}
	ln, err := net.Listen("tcp", web.ListenAddr(addr))
	if err != nil {
		return fmt.Errorf("--metrics-listen: %w", err)
	}
	goRun("metrics", func(ctx context.Context) error {
		return web.ServeHandler(ctx, ln, metrics.Handler(d.Snapshot))
	})
	return nil
}

func (d *daemon) Snapshot(ctx context.Context) (status.Snapshot, error) {
	var s status.Snapshot
	if d.eng != nil {
		var err error
		if s, err = d.eng.Snapshot(ctx); err != nil {
			return s, err
		}
	} else {
		s.Daemon = status.Daemon{Version: version, PID: os.Getpid(), ConfigFile: d.flags.file}
		if d.hb != nil && d.dir == nil {
			s.Daemon.ConfigFile = d.flags.haDir
		}
	}
	if d.dir != nil {
		vss, err := d.dir.Snapshot(ctx)
		if err != nil {
			return s, err
		}
		s.VirtualServers = vss
		if rs, err := d.dir.ReconcilerStats(ctx); err == nil {
			s.Reconciler = &status.Reconciler{Backend: d.dir.BackendName(), Applies: rs.Applies, Errors: rs.Errors,
				Resyncs: rs.Resyncs, Repairs: rs.Repairs, LastApply: rs.LastApply, LastError: rs.LastError}
		}
		trs, err := d.dir.Transitions(ctx)
		if err != nil {
			return s, err
		}
		s.Transitions = append(s.Transitions, trs...)
		sort.SliceStable(s.Transitions, func(i, j int) bool { return s.Transitions[i].At.Before(s.Transitions[j].At) })
	}
	if d.hb != nil {
		s.Heartbeat = hbStatus(d.hb.Status(), d.hbCfg)
	}
	if d.bgp != nil {
		b, err := d.bgp.Status(ctx)
		if err != nil {
			return s, err
		}
		s.BGP = b
	}
	if d.cs != nil {
		s.ConnSync = connSyncStatus(d.cs, time.Now())
	}
	d.mu.Lock()
	s.Daemon.Reloads, s.Daemon.LastReload = d.reloads, d.lastReload
	d.mu.Unlock()
	return s, nil
}

// hbStatus converts the heartbeat node's status for the API.
func hbStatus(st hb.Status, cfg *hb.Config) *status.Heartbeat {
	resources := map[string][]string{}
	if cfg != nil {
		for _, g := range cfg.Groups {
			for _, r := range g.Resources {
				resources[g.Name()] = append(resources[g.Name()], r.Raw)
			}
		}
	}
	h := &status.Heartbeat{Node: st.Node}
	h.Nodes = append(h.Nodes, status.HeartbeatNode{Name: st.Node, Status: string(st.Status)})
	for _, p := range st.Peers {
		n := status.HeartbeatNode{Name: p.Name, Status: string(p.Status), LastHeard: map[string]time.Time{}}
		for _, l := range p.Links {
			if !l.LastHeard.IsZero() {
				n.LastHeard[l.Medium] = l.LastHeard
			}
		}
		h.Nodes = append(h.Nodes, n)
	}
	for _, p := range st.PingNodes {
		h.Pings = append(h.Pings, status.HeartbeatPing{Addr: p.Addr.String(), Reachable: !p.LastReply.IsZero() && time.Since(p.LastReply) < time.Minute})
	}
	for _, g := range st.Groups {
		state := "released"
		switch {
		case g.Failed:
			state = "failed"
		case g.Busy:
			state = "changing"
		case g.Held:
			state = "running"
		}
		h.Groups = append(h.Groups, status.HeartbeatGroup{Name: g.Name, Home: g.Home, Owner: g.Owner, State: state, Resources: resources[g.Name]})
	}
	return h
}

func (d *daemon) Handover(ctx context.Context, name string) error {
	bgpDone := d.bgpHandover(name, true)
	if d.eng == nil {
		if bgpDone {
			return nil
		}
		return errors.New("no VRRP instances run here")
	}
	err := d.eng.Handover(ctx, name)
	if err != nil && bgpDone {
		// The BGP routes were the point (e.g. no instance is MASTER).
		d.log.Info("vigil handover: BGP routes done; VRRP: " + err.Error())
		return nil
	}
	return err
}

func (d *daemon) Reclaim(ctx context.Context, name string) error {
	bgpDone := d.bgpHandover(name, false)
	if d.eng == nil {
		if bgpDone {
			return nil
		}
		return errors.New("no VRRP instances run here")
	}
	err := d.eng.Reclaim(ctx, name)
	if err != nil && bgpDone {
		// The BGP routes were the point (e.g. no instance is MASTER).
		d.log.Info("vigil reclaim: BGP routes done; VRRP: " + err.Error())
		return nil
	}
	return err
}

// Reload checks the configuration file again and, when it has no errors,
// applies the difference (see engine.Apply). The file is read and
// checked outside every lock that status, metrics, the API, dumps or the
// watchdog need; a read that outlasts reloadDeadline, or ctx, is
// abandoned and the running configuration stays; a reload asked for
// while another one reads is refused.
func (d *daemon) Reload(ctx context.Context) (api.ReloadResult, error) {
	return d.reload(ctx)
}

func (d *daemon) reload(ctx context.Context) (api.ReloadResult, error) {
	if d.eng == nil && d.dir == nil {
		return api.ReloadResult{}, errors.New("reload: only keepalived.conf configurations reload; restart for ha.d changes")
	}
	_ = d.sd.Reloading()
	defer d.notifyReadyLater()
	d.reloader.log = d.log
	res, err := d.reloader.run(ctx, func() (loaded, diag.Diagnostics) { return loadConfig(d.flags) }, d.apply)
	if res.Applied {
		d.mu.Lock()
		d.reloads++
		d.lastReload = time.Now()
		d.mu.Unlock()
		d.log.Info("configuration reloaded", "changes", len(res.Changes), "took", res.Duration)
	}
	return res, err
}

// apply hands a checked configuration to the engine and the director.
func (d *daemon) apply(ctx context.Context, l loaded) (changes, notes []string, err error) {
	if d.eng != nil {
		c, err := d.eng.Apply(ctx, l.spec)
		if err != nil {
			return changes, notes, err
		}
		changes = append(changes, c...)
	}
	if d.dir != nil {
		c, err := d.dir.Apply(ctx, l.dir)
		if err != nil {
			return changes, notes, err
		}
		changes = append(changes, c...)
	} else if len(l.dir.VirtualServers) > 0 {
		notes = append(notes, "virtual servers added to a configuration that had none start at the next restart")
	}
	if connSyncChanged(d.csCfg, l.cfg.ConntrackSync) {
		notes = append(notes, "conntrack_sync changes take effect at the next restart")
	}
	if p := sched.FromConfig(l.cfg.Global, d.flags.vrrpOnly, d.flags.checkOnly); p != d.sched.Policy() {
		d.sched.Set(p)
		if _, err := d.sched.Apply(); err != nil {
			notes = append(notes, fmt.Sprintf("scheduling %s: %v", p, err))
		}
		changes = append(changes, "~ scheduling: "+p.String())
	}
	if note := d.bgpReloadNote(l); note != "" {
		notes = append(notes, note)
	}
	return changes, notes, nil
}

// isEmptyFile reports whether the diagnostics refuse an empty file.
func isEmptyFile(ds diag.Diagnostics) bool {
	for _, x := range ds {
		if x.Severity == diag.Error && x.Pos.Line == 0 && strings.HasPrefix(x.Msg, "the file is empty") {
			return true
		}
	}
	return false
}

// notifyReadyLater tells systemd the reload is over (outside d.mu).
func (d *daemon) notifyReadyLater() {
	if d.sd.Enabled() {
		go d.notifyReady()
	}
}

// newNotifier builds the notify-script runner with the FIFOs global_defs
// names. The FIFOs are returned so the caller runs and closes them.
func newNotifier(g config.Global, log *slog.Logger) (*notify.Notifier, []*notify.FIFO, error) {
	runner := script.NewRunner(script.RunnerOptions{Logger: log})
	opts := notify.Options{Runner: runner, Logger: log}
	var fifos []*notify.FIFO
	open := func(f config.FIFO, what string) (*notify.FIFO, error) {
		if f.Path == "" {
			return nil, nil
		}
		fo := notify.FIFOOptions{Path: f.Path, Runner: runner, Logger: log}
		if f.User != "" {
			c, err := script.LookupUser(f.User, f.Group)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", f.Pos, what, err)
			}
			fo.Owner = &c
		}
		if f.Script.IsSet() {
			cred, err := script.DefaultCred(g.ScriptUser, g.ScriptGroup, g.EnableScriptSecurity)
			if err == nil && f.Script.User != "" {
				cred, err = script.LookupUser(f.Script.User, f.Script.Group)
			}
			var p *script.Prepared
			if err == nil {
				p, err = script.Prepare(script.Command{Args: f.Script.Args, Cred: cred, Pos: f.Script.Pos, What: what + "_script"}, script.Policy{Security: g.EnableScriptSecurity})
			}
			if err != nil {
				// keepalived disables a script it cannot run as its user
				// (or may not run) and keeps the FIFO; so does vigil.
				log.Warn("script disabled, as keepalived does", "where", f.Script.Pos.String(), "what", what+"_script", "err", err)
			} else {
				fo.Script = p
			}
		}
		fi, err := notify.OpenFIFO(fo)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", f.Pos, what, err)
		}
		fifos = append(fifos, fi)
		return fi, nil
	}
	var err error
	if opts.FIFO, err = open(g.NotifyFIFO, "notify_fifo"); err != nil {
		return nil, nil, err
	}
	if opts.VRRPFIFO, err = open(g.VRRPNotifyFIFO, "vrrp_notify_fifo"); err != nil {
		return nil, nil, err
	}
	if opts.LVSFIFO, err = open(g.LVSNotifyFIFO, "lvs_notify_fifo"); err != nil {
		return nil, nil, err
	}
	return notify.New(opts), fifos, nil
}

// newMailer returns the smtp_alert mailer, or nil when no server and
// recipients are configured.
func newMailer(g config.Global, log *slog.Logger) *mail.Mailer {
	if g.SMTPServer == "" || len(g.NotificationEmail) == 0 {
		return nil
	}
	port := g.SMTPPort
	if port == 0 {
		port = 25
	}
	return mail.New(mail.Options{
		Server:         net.JoinHostPort(g.SMTPServer, strconv.Itoa(int(port))),
		HeloName:       g.SMTPHeloName,
		From:           g.NotificationEmailFrom,
		To:             g.NotificationEmail,
		RouterID:       g.RouterID,
		ConnectTimeout: g.SMTPConnectTimeout,
		NoEmailFaults:  g.NoEmailFaults,
		Logger:         log,
	})
}
