package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/bgp"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/director"
	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/mail"
	"github.com/vigil-ha/vigil/internal/metrics"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/owner"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/sched"
	"github.com/vigil-ha/vigil/internal/script"
	"github.com/vigil-ha/vigil/internal/sdnotify"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/textpages"
	"github.com/vigil-ha/vigil/internal/translate"
	"github.com/vigil-ha/vigil/internal/web"
)

// daemon wires the engine (keepalived.conf) and the heartbeat node (ha.d)
// to the API, signals, systemd, dumps, metrics and the status page. It
// implements api.Daemon.
type daemon struct {
	flags runFlags
	log   *slog.Logger
	eng   *engine.Engine // nil in heartbeat-only mode and with -C
	// notifier runs the notify scripts (nil when keepalived.conf is not
	// read); its Closing is called when the parts begin to stop.
	notifier *notify.Notifier
	// owner holds the virtual routers' locks (nil without VRRP).
	owner *owner.Registry
	// dirp holds the director: nil without virtual servers and with -P;
	// a reload that adds the first virtual servers sets it (startDir).
	dirp     atomic.Pointer[director.Director]
	startDir func(runspec.DirectorSpec) (*director.Director, error)
	// dirOpts are the options of every director (newDirector).
	dirOpts director.Options
	// dirGuard is the running director's SyncedConntrack.
	dirGuard bool
	// held is the last set of VIPs the engine reported, for a director
	// started by a reload.
	heldMu sync.Mutex
	held   map[netip.Addr]bool
	// quiet returns the memory of the snapshots and transitions once they
	// stop (gc.go).
	quiet  *quietRelease
	hb     *hb.Node     // nil without --ha-dir
	bgp    *bgp.Runtime // nil without a bgp block
	bgpCfg bgp.Config
	hbCfg  *hb.Config
	sd     *sdnotify.Notifier
	// csp is the conntrack_sync running (nil: none); states feeds a
	// conntrack_sync a reload starts with the state it follows.
	csp    atomic.Pointer[connSync]
	syncd  atomic.Pointer[syncDaemon] // lvs_sync_daemon (nil: none)
	states vrrpStates
	// startBG runs a part a reload starts beside the daemon's; the
	// function it returns stops it and waits (group.Start; nil with -C).
	startBG func(name string, run func(context.Context) error) (stop func())

	// pages releases the binary's text and rodata after the start and
	// each reload (nil in a daemon built without readConfigs: Kick then
	// does nothing).
	pages *textpages.Releaser

	reloader reloader
	sched    sched.Scheduler
	// mu guards the counters only; it is never held across I/O.
	mu         sync.Mutex
	reloads    uint64
	lastReload time.Time
	// failedReloads counts reloads that did not apply; reloadError says
	// why the last one did not, "" once one applies.
	failedReloads uint64
	reloadError   string
	reloadFailed  time.Time
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
	// tuning is held by a read while it may change the Go runtime's
	// settings (readTuning) and until it has set them back.
	tuning   sync.Mutex
	deadline time.Duration
	log      *slog.Logger
}

// run reads with read and, when the result has no errors, applies it
// with apply, which returns the changes and any further diagnostics. read
// calls large when the read becomes large (config.Options.Large): the rest
// of the read runs with readTuning's settings.
func (r *reloader) run(ctx context.Context, read func(large func()) (loaded, diag.Diagnostics), apply func(context.Context, loaded) ([]string, []string, error)) (api.ReloadResult, error) {
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
		// The runtime settings of one read are restored before the
		// next read changes them.
		r.tuning.Lock()
		defer r.tuning.Unlock()
		var tune readTuning
		defer tune.restore()
		l, ds := read(tune.large)
		// The slot is freed when the read ends, even when the reload
		// was abandoned: at most one read runs.
		r.reading.Store(nil)
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
	readTook := time.Since(start)
	changes, notes, err := apply(ctx, got.l)
	if r.log != nil {
		r.log.Debug("reload phases", "read", readTook.Round(time.Millisecond).String(), "apply", (time.Since(start) - readTook).Round(time.Millisecond).String())
	}
	res.Diagnostics = append(res.Diagnostics, notes...)
	if err != nil {
		return res, err
	}
	res.Applied, res.Changes, res.Duration = true, changes, time.Since(start).String()
	if r.log != nil {
		// The count vigil reload prints.
		r.log.Info("configuration reloaded", "changes", res.ChangeCount(), "took", res.Duration)
	}
	return res, nil
}

// readTuning sets the Go runtime up for the rest of a reload's read once
// the read is large (config.Options.Large: config.LargeRead bytes of files
// and expansions, however few the main file holds), and sets it back when
// the read is over. Reading a large file (50 MB: 2.2 million addresses)
// allocates gigabytes, and with the runtime's defaults the VRRP loop
// stalled up to 1.6 s at advert_int 0.1 on a 2-CPU host (four failovers of
// its backup; TestReloadLargeAddressFile in internal/e2e/ops). Execution
// traces showed two causes, each addressed here for the read only:
//   - the garbage collector ran back to back, and its dedicated mark
//     worker and the parser held both processors: the VRRP timer's
//     goroutine waited for one until the mark phase ended. More
//     processors than CPUs (at least 8) let the kernel share the CPUs
//     between the threads instead.
//   - the VRRP loop, allocating a few bytes to send an advert during a
//     mark phase, owed assist work behind the parser's huge debt and was
//     parked until the phase ended. A GOGC of at least 400 while reading
//     makes the cycles fewer and the assist ratio lower; a collection at
//     the end of the read, still at that GOGC, measures the new live heap
//     before the default comes back, so restoring it starts no cycle with
//     the heap far past its goal.
//
// Smaller reads keep the defaults: a forced collection and more
// processors cost a busy host more than such a read
// (TestReloadUnderLoadWithoutFlaps reloads small files every 200 ms).
// GOMAXPROCS or GOGC set in the environment are left as set. The read
// takes one more collection and its peak memory grows a little (that
// reload: 2.10 GB peak RSS instead of 1.97 GB); its longest advert gap
// went from 0.5-1.6 s to 0.11-0.22 s (GOGC alone: 0.16-0.22 s; with 8
// processors: 0.12-0.18 s).
//
// The zero value changes nothing until large is called; large and
// restore are called from the reading goroutine.
type readTuning struct {
	tuned bool
	procs bool // GOMAXPROCS raised
	gc    int  // GOGC to restore (-1: untouched)
}

// large applies the settings (once).
func (t *readTuning) large() {
	if t.tuned {
		return
	}
	t.tuned, t.gc = true, -1
	if os.Getenv("GOMAXPROCS") == "" {
		t.procs = true
		runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 8))
	}
	if os.Getenv("GOGC") == "" {
		if prev := debug.SetGCPercent(400); prev < 0 || prev > 400 {
			debug.SetGCPercent(prev)
		} else {
			t.gc = prev
		}
	}
}

// restore sets back what large changed.
func (t *readTuning) restore() {
	if !t.tuned {
		return
	}
	if t.gc >= 0 {
		runtime.GC()
		debug.SetGCPercent(t.gc)
	}
	if t.procs {
		runtime.SetDefaultGOMAXPROCS()
	}
	*t = readTuning{}
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
	spec runspec.Spec
	dir  runspec.DirectorSpec
}

// loadConfig reads the configuration file and resolves it. -P drops the
// virtual servers, -C the VRRP instances. large (nil: none) is called
// when the read becomes large (config.Options.Large).
func loadConfig(f runFlags, large func()) (loaded, diag.Diagnostics) {
	var l loaded
	abs, err := filepath.Abs(f.file)
	if err != nil {
		var ds diag.Diagnostics
		ds.Errorf(diag.Pos{File: f.file}, "%v", err)
		return l, ds
	}
	cfg, ds := readConfig(abs, configID(f.configID), f.limits, large)
	l.cfg = cfg
	if ds.HasErrors() {
		return l, ds
	}
	if !f.checkOnly {
		spec, more := translate.FromConfig(cfg)
		l.spec = spec
		ds = append(ds, more...)
	}
	if !f.vrrpOnly {
		dspec, more := translate.DirectorFromConfig(cfg)
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
	case d.dirp.Load() != nil:
		_, err := d.dirp.Load().Snapshot(ctx)
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
	defer d.quiet.busy()
	var s status.Snapshot
	if d.eng != nil {
		var err error
		if s, err = d.eng.Snapshot(ctx); err != nil {
			return s, err
		}
	} else {
		s.Daemon = status.Daemon{Version: version, PID: os.Getpid(), ConfigFile: d.flags.file}
		if d.hb != nil && d.dirp.Load() == nil {
			s.Daemon.ConfigFile = d.flags.haDir
		}
	}
	if dir := d.dirp.Load(); dir != nil {
		vss, err := dir.Snapshot(ctx)
		if err != nil {
			return s, err
		}
		s.VirtualServers = vss
		if rs, err := dir.ReconcilerStats(ctx); err == nil {
			s.Reconciler = &status.Reconciler{Backend: dir.BackendName(), Applies: rs.Applies, Errors: rs.Errors,
				Resyncs: rs.Resyncs, Repairs: rs.Repairs, LastApply: rs.LastApply, LastError: rs.LastError}
		}
		trs, err := dir.Transitions(ctx)
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
	if cs := d.csp.Load(); cs != nil {
		s.ConnSync = connSyncStatus(cs.sup, time.Now())
	}
	d.mu.Lock()
	s.Daemon.Reloads, s.Daemon.LastReload = d.reloads, d.lastReload
	s.Daemon.ReloadFailures, s.Daemon.LastReloadError, s.Daemon.LastReloadFailed = d.failedReloads, d.reloadError, d.reloadFailed
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
	if d.eng == nil && d.dirp.Load() == nil {
		return api.ReloadResult{}, errors.New("reload: only keepalived.conf configurations reload; restart for ha.d changes")
	}
	_ = d.sd.Reloading()
	defer d.notifyReadyLater()
	readingConfig(d.flags.gcPercent)
	defer d.pages.Kick()
	defer releaseConfigMemory(d.flags.gcPercent)
	d.reloader.log = d.log
	res, err := d.reloader.run(ctx, func(large func()) (loaded, diag.Diagnostics) { return loadConfig(d.flags, large) }, d.apply)
	d.mu.Lock()
	if res.Applied {
		d.reloads++
		d.lastReload = time.Now()
		d.reloadError = ""
	} else {
		d.failedReloads++
		d.reloadFailed = time.Now()
		d.reloadError = reloadFailure(res, err)
	}
	d.mu.Unlock()
	return res, err
}

// reloadFailure says why a reload did not apply: its error, or the first
// error diagnostic of the file and how many others it had.
func reloadFailure(res api.ReloadResult, err error) string {
	if err != nil {
		return err.Error()
	}
	var first string
	n := 0
	for _, x := range res.Diagnostics {
		if strings.Contains(x, ": error: ") {
			if n == 0 {
				first = x
			}
			n++
		}
	}
	switch n {
	case 0:
		return "the configuration was not applied"
	case 1:
		return first
	}
	return fmt.Sprintf("%s (and %d more errors)", first, n-1)
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
	if dir := d.dirp.Load(); dir != nil {
		c, err := dir.Apply(ctx, l.dir)
		if err != nil {
			return changes, notes, err
		}
		changes = append(changes, c...)
	} else if len(l.dir.VirtualServers) > 0 {
		if d.startDir == nil {
			return changes, notes, errors.New("reload: virtual servers cannot start here (-P runs VRRP only)")
		}
		if _, err := d.startDir(l.dir); err != nil {
			return changes, notes, fmt.Errorf("reload: starting the virtual servers: %w", err)
		}
		for _, vs := range l.dir.VirtualServers {
			changes = append(changes, "+ virtual_server "+vs.ID())
		}
	}
	if !d.flags.checkOnly {
		changes = append(changes, d.syncDaemonReload(l.cfg.Global)...)
		c, err := d.connSyncReload(l.cfg)
		changes = append(changes, c...)
		if err != nil {
			return changes, notes, err
		}
		if d.dirp.Load() != nil && d.dirGuard != l.dir.SyncedConntrack {
			notes = append(notes, "the nftables guard for conntrack_sync (TCP without SYN dropped before NAT) follows at the next restart")
		}
	}
	if p := sched.FromConfig(l.cfg.Global, d.flags.vrrpOnly, d.flags.checkOnly); p != d.sched.Policy() {
		d.sched.Set(p)
		if _, err := d.sched.Apply(); err != nil {
			notes = append(notes, fmt.Sprintf("scheduling %s: %v", p, err))
		}
		if d.eng != nil {
			d.eng.TimerOnThread(p.RTPriority > 0)
		}
		changes = append(changes, "~ scheduling: "+p.String())
		if d.bgp != nil {
			if err := d.bgp.SetSched(ctx, p); err != nil {
				notes = append(notes, fmt.Sprintf("scheduling of vigil-bgp %s: %v", p, err))
			}
		}
	}
	c, note, err := d.bgpReload(ctx, l)
	changes = append(changes, c...)
	if note != "" {
		notes = append(notes, note)
	}
	if err != nil {
		return changes, notes, err
	}
	return changes, notes, nil
}

// setHeld is the engine's VIPsChanged hook: the director learns which
// virtual addresses this host holds; the set is kept for a director a
// reload starts.
func (d *daemon) setHeld(held map[netip.Addr]bool) {
	d.heldMu.Lock()
	defer d.heldMu.Unlock()
	d.held = held
	if dir := d.dirp.Load(); dir != nil {
		dir.SetLocal(held)
	}
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
// names; timeout bounds one notify script (0: notify.DefaultTimeout), grace
// is how long one runs alone (0: notify.DefaultGrace). The FIFOs are
// returned so the caller runs and closes them.
func newNotifier(g config.Global, log *slog.Logger, timeout, grace time.Duration) (*notify.Notifier, []*notify.FIFO, error) {
	runner := script.NewRunner(script.RunnerOptions{Logger: log})
	opts := notify.Options{Runner: runner, Logger: log, Timeout: timeout, Grace: grace}
	var fifos []*notify.FIFO
	open := func(f config.FIFO, what string) (*notify.FIFO, error) {
		if f.Path == "" {
			return nil, nil
		}
		fo := notify.FIFOOptions{Path: f.Path, Runner: runner, Logger: log}
		if f.User != "" {
			c, err := script.LookupUser(f.User, f.Group)
			if err != nil {
				// keepalived 2.2.7: "Invalid user/group for fifo - ignoring",
				// and runs without the FIFO.
				log.Warn("invalid user/group for the FIFO: it is ignored, as keepalived does", "where", f.Pos.String(), "what", what, "err", err)
				return nil, nil
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
			// keepalived 2.2.7 (lib/notify.c fifo_open): "Unable to create
			// notify fifo", and it runs without it.
			log.Warn("unable to open the notify FIFO: running without it, as keepalived does", "where", f.Pos.String(), "what", what, "err", err)
			return nil, nil
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
