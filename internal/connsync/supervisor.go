package connsync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Role is the VRRP state conntrackd follows.
type Role int

// Roles, named after keepalived's states.
const (
	RoleNone Role = iota
	RoleMaster
	RoleBackup
	RoleFault
)

func (r Role) String() string {
	switch r {
	case RoleMaster:
		return "MASTER"
	case RoleBackup:
		return "BACKUP"
	case RoleFault:
		return "FAULT"
	}
	return "INIT"
}

// step is one conntrackd command of a transition.
type step struct {
	flag string
	what string
}

// Steps are conntrackd's primary-backup script's commands for a role, in
// its order. MASTER: commit the external cache into the kernel, flush
// both caches, resynchronise the internal cache with the kernel table,
// send a bulk update to the backups. BACKUP: shorten the kernel's
// timeouts of entries it no longer forwards, then ask the master for a
// resynchronisation. FAULT: shorten the timeouts only.
func Steps(r Role) []step {
	switch r {
	case RoleMaster:
		return []step{{"-c", "commit the external cache"}, {"-f", "flush the caches"},
			{"-R", "resync the internal cache with the kernel"}, {"-B", "send a bulk update"}}
	case RoleBackup:
		return []step{{"-t", "shorten kernel timeouts"}, {"-n", "request a resync from the master"}}
	case RoleFault:
		return []step{{"-t", "shorten kernel timeouts"}}
	}
	return nil
}

// Status is the supervisor's view, for status and metrics.
type Status struct {
	Spec       Spec
	Role       Role
	Alive      bool
	PID        int
	Restarts   uint64
	LastExit   string
	Stats      Stats
	StatsOK    bool
	StatsAt    time.Time
	LastResync time.Time // end of the last MASTER sequence (commit + resync + bulk)
	LastSteps  time.Time // end of the last sequence, any role
	Failures   map[string]uint64
	LinkUp     bool
	LinkKnown  bool
	// PeerHeard is the last time conntrackd's received bytes grew (FTFW
	// sends alive messages every second).
	PeerHeard time.Time
	Started   time.Time
}

// Warnings lists what an operator must see, at now.
func (s Status) Warnings(now time.Time) []string {
	var w []string
	if !s.Alive {
		msg := "conntrackd is not running"
		if s.LastExit != "" {
			msg += " (" + s.LastExit + ")"
		}
		w = append(w, msg+fmt.Sprintf("; restarted %d times", s.Restarts))
	}
	if s.LinkKnown && !s.LinkUp {
		w = append(w, "sync link "+s.Spec.Interface+" is down")
	}
	if s.Alive && !s.Started.IsZero() && now.Sub(s.Started) > peerSilence {
		since := s.PeerHeard
		if since.IsZero() {
			since = s.Started
		}
		if now.Sub(since) > peerSilence {
			w = append(w, fmt.Sprintf("nothing heard from the sync peer for %v", now.Sub(since).Round(time.Second)))
		}
	}
	if s.Alive && !s.StatsOK && !s.StatsAt.IsZero() {
		w = append(w, "conntrackd does not answer on its control socket")
	}
	return w
}

// peerSilence is how long without a message from the peer counts as a
// failed sync link: FTFW sends an alive message every second.
const peerSilence = 5 * time.Second

// Supervisor runs one conntrackd. SetRole and Status may be called from
// any goroutine; Run owns the child and the goroutines.
type Supervisor struct {
	log *slog.Logger
	// PollEvery is the statistics period (default 2 s).
	PollEvery time.Duration
	// RestartDelay is the pause before restarting a dead conntrackd
	// (default 1 s).
	RestartDelay time.Duration

	wake chan struct{}

	mu sync.Mutex
	// cur is the spec the next child runs with (SetSpec); stopChild ends
	// the running child, respec says why it ended.
	cur       Spec
	stopChild context.CancelFunc
	respec    bool
	st        Status
	want      Role
	applied   Role
	ready     bool // the child answers on its socket
	gen       int  // child generation: a restart re-applies the role
	appliedG  int
	// unanswered counts the child's consecutive statistics reads that
	// timed out; hung says why the supervisor killed the child.
	unanswered int
	hung       string
}

// hungPolls is how many statistics reads in a row may time out before
// conntrackd counts as hung and is killed: a stopped or deadlocked
// conntrackd keeps its process and its socket's backlog, so nothing else
// ends it, and its external cache could never be committed at a takeover.
// The new one asks its peer for a resync like any restarted conntrackd.
const hungPolls = 2

// errTimedOut marks a conntrackd command that did not answer in time.
var errTimedOut = errors.New("timed out")

// New returns a supervisor; it starts nothing.
func New(spec Spec, log *slog.Logger) *Supervisor {
	if spec.Timeout <= 0 {
		spec.Timeout = 5 * time.Second
	}
	return &Supervisor{cur: spec, log: log.With("conntrackd", spec.Interface), PollEvery: 2 * time.Second,
		RestartDelay: time.Second, wake: make(chan struct{}, 1),
		st: Status{Spec: spec, Failures: map[string]uint64{}}}
}

// SetRole records the role to follow; it never blocks (engine hooks call
// it). Only the latest role is applied.
func (s *Supervisor) SetRole(r Role) {
	s.mu.Lock()
	s.want = r
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// SetSpec replaces the configuration (a reload). When it differs from
// the running one, conntrackd's configuration is written again and
// conntrackd alone restarts; the role is then applied again as after any
// restart, so a BACKUP asks its peer for a full resync (-n) and a MASTER
// sends a bulk update (-B). It reports whether the spec changed; it never
// blocks on the child.
func (s *Supervisor) SetSpec(spec Spec) bool {
	if spec.Timeout <= 0 {
		spec.Timeout = 5 * time.Second
	}
	s.mu.Lock()
	if reflect.DeepEqual(spec, s.cur) {
		s.mu.Unlock()
		return false
	}
	s.cur, s.st.Spec, s.respec = spec, spec, true
	stop := s.stopChild
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	return true
}

// specNow is the spec in force.
func (s *Supervisor) specNow() Spec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Status returns a copy of the current state.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Failures = make(map[string]uint64, len(s.st.Failures))
	for k, v := range s.st.Failures {
		st.Failures[k] = v
	}
	return st
}

// Run writes the configuration, runs conntrackd until ctx ends and
// restarts it when it dies or its spec changes (SetSpec). It returns when
// the child has exited.
func (s *Supervisor) Run(ctx context.Context) error {
	if err := s.specNow().Check(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.applyLoop(ctx) }()
	go func() { defer wg.Done(); s.pollLoop(ctx) }()
	defer wg.Wait()
	for ctx.Err() == nil {
		spec := s.specNow()
		if err := spec.Check(); err != nil {
			return err
		}
		if err := privateDir(spec.Dir); err != nil {
			return err
		}
		if err := os.WriteFile(spec.ConfPath(), []byte(Render(spec)), 0o600); err != nil {
			return fmt.Errorf("connsync: %w", err)
		}
		childCtx, stop := context.WithCancel(ctx)
		s.mu.Lock()
		s.stopChild, s.respec = stop, false
		s.mu.Unlock()
		err := s.runChild(childCtx)
		stop()
		if ctx.Err() != nil {
			break
		}
		s.mu.Lock()
		s.stopChild = nil
		respec := s.respec
		if !respec {
			s.st.Restarts++
			s.st.LastExit = errString(err)
			if s.hung != "" {
				s.st.LastExit = s.hung
			}
		}
		n, last := s.st.Restarts, s.st.LastExit
		s.mu.Unlock()
		if respec {
			s.log.Info("conntrackd restarts with its new configuration")
			continue
		}
		s.log.Warn("conntrackd died; restarting it", "err", last, "restarts", n)
		select {
		case <-ctx.Done():
		case <-time.After(s.RestartDelay):
		}
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return "exited with status 0"
	}
	return err.Error()
}

// runChild runs one conntrackd until it exits or ctx ends.
func (s *Supervisor) runChild(ctx context.Context) error {
	// A lock file left by a conntrackd that died keeps the next from
	// starting; no conntrackd of this run directory is alive here (the
	// child dies with vigil: Pdeathsig), as primary-backup.sh removes it.
	if err := os.Remove(s.specNow().LockPath()); err == nil {
		s.log.Info("removed a stale conntrackd lock file", "path", s.specNow().LockPath())
	}
	_ = os.Remove(s.specNow().SocketPath())
	// Pdeathsig fires when the thread that started the child ends, not
	// the process: keep this goroutine on its thread until the child
	// has exited, so no other goroutine's locked thread ending kills it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(s.specNow().Conntrackd, "-C", s.specNow().ConfPath())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		return fmt.Errorf("connsync: starting %s: %w", s.specNow().Conntrackd, err)
	}
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			lvl := slog.LevelDebug
			if strings.Contains(line, "[ERROR]") || strings.Contains(line, "[WARNING]") {
				lvl = slog.LevelWarn
			}
			s.log.Log(context.Background(), lvl, "conntrackd: "+line)
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	pid := cmd.Process.Pid
	s.mu.Lock()
	s.gen++
	s.st.Alive, s.st.PID, s.st.Started, s.ready = true, pid, time.Now(), false
	s.st.PeerHeard, s.st.Stats = time.Time{}, Stats{}
	s.unanswered, s.hung = 0, ""
	s.mu.Unlock()
	s.log.Info("conntrackd started", "pid", pid, "config", s.specNow().ConfPath())

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	var err error
	select {
	case err = <-exited:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			err = <-exited
		}
	}
	<-logDone
	s.mu.Lock()
	s.st.Alive, s.st.PID, s.ready = false, 0, false
	s.mu.Unlock()
	_ = os.Remove(s.specNow().LockPath())
	return err
}

// run runs one conntrackd command against the child, bounded by the
// spec's timeout.
func (s *Supervisor) run(ctx context.Context, flag string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.specNow().Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.specNow().Conntrackd, "-C", s.specNow().ConfPath(), flag)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%w after %v", errTimedOut, s.specNow().Timeout)
	}
	return string(out), err
}

// applyLoop applies the wanted role whenever it or the child changes.
func (s *Supervisor) applyLoop(ctx context.Context) {
	retry := time.NewTicker(200 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-retry.C:
		}
		s.mu.Lock()
		want, gen, alive := s.want, s.gen, s.st.Alive
		due := alive && want != RoleNone && (want != s.applied || gen != s.appliedG)
		s.mu.Unlock()
		if !due {
			continue
		}
		if !s.waitReady(ctx) {
			continue
		}
		s.apply(ctx, want, gen)
	}
}

// waitReady waits until the child answers on its control socket.
func (s *Supervisor) waitReady(ctx context.Context) bool {
	s.mu.Lock()
	ok := s.ready
	s.mu.Unlock()
	if ok {
		return true
	}
	deadline := time.Now().Add(s.specNow().Timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if c, err := net.DialTimeout("unix", s.specNow().SocketPath(), 200*time.Millisecond); err == nil {
			c.Close()
			s.mu.Lock()
			s.ready = true
			s.mu.Unlock()
			return true
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

func (s *Supervisor) apply(ctx context.Context, r Role, gen int) {
	start := time.Now()
	failed := 0
	for _, st := range Steps(r) {
		t0 := time.Now()
		out, err := s.run(ctx, st.flag)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failed++
			s.mu.Lock()
			s.st.Failures[st.flag]++
			s.mu.Unlock()
			s.log.Warn("conntrackd "+st.flag+" failed", "role", r.String(), "step", st.what, "err", err, "output", strings.TrimSpace(out))
		} else {
			s.log.Debug("conntrackd "+st.flag, "role", r.String(), "step", st.what, "took", time.Since(t0))
		}
		if st.flag == "-c" {
			// conntrackd answers -c before it clears its "commit in
			// progress" flag and ignores a flush that comes at once.
			time.Sleep(100 * time.Millisecond)
		}
	}
	now := time.Now()
	s.mu.Lock()
	s.applied, s.appliedG = r, gen
	s.st.Role = r
	s.st.LastSteps = now
	if r == RoleMaster {
		s.st.LastResync = now
	}
	s.mu.Unlock()
	s.log.Info("conntrackd follows the VRRP state", "role", r.String(), "follows", s.specNow().Follow, "took", now.Sub(start).Round(time.Millisecond), "failed_steps", failed)
}

// pollLoop reads conntrackd's statistics and the sync link's state.
func (s *Supervisor) pollLoop(ctx context.Context) {
	t := time.NewTicker(s.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.poll(ctx)
	}
}

func (s *Supervisor) poll(ctx context.Context) {
	linkUp, linkKnown := false, false
	if ifi, err := net.InterfaceByName(s.specNow().Interface); err == nil {
		linkKnown = true
		linkUp = ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0
	}
	s.mu.Lock()
	alive, pid, gen := s.st.Alive, s.st.PID, s.gen
	s.mu.Unlock()
	var st Stats
	ok, timedOut := false, false
	if alive {
		out, err := s.run(ctx, "-s")
		if err == nil {
			st, ok = ParseStats(out)
		} else if !errors.Is(ctx.Err(), context.Canceled) {
			timedOut = errors.Is(err, errTimedOut)
			s.log.Debug("conntrackd -s failed", "err", err)
		}
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if alive && s.gen == gen && s.st.Alive && s.hung == "" {
		if !timedOut {
			s.unanswered = 0
		} else if s.unanswered++; s.unanswered >= hungPolls {
			s.hung = fmt.Sprintf("killed: did not answer on its control socket %d times in a row (timeout %v)", s.unanswered, s.cur.Timeout)
			s.log.Warn("conntrackd does not answer; killing it", "pid", pid, "unanswered", s.unanswered, "timeout", s.cur.Timeout)
			// The whole process group: conntrackd's own children too.
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	if linkKnown != s.st.LinkKnown || linkUp != s.st.LinkUp {
		if linkKnown && !linkUp {
			s.log.Warn("sync link down", "interface", s.cur.Interface)
		}
	}
	s.st.LinkUp, s.st.LinkKnown = linkUp, linkKnown
	if ok && st.BytesRecv > s.st.Stats.BytesRecv {
		s.st.PeerHeard = now
	}
	if ok {
		s.st.Stats = st
	}
	s.st.StatsOK, s.st.StatsAt = ok, now
}

// privateDir creates dir (mode 0700) if needed and checks that it is a
// directory, not a symbolic link, owned by this process's user and writable
// by no one else: conntrackd's configuration is written there as root, and
// a directory someone else can write to (beside an --api-socket in /tmp)
// would let them plant a symbolic link there or rewrite the file before
// conntrackd reads it.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("connsync: %w", err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return fmt.Errorf("connsync: %w", err)
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFDIR:
		return fmt.Errorf("connsync: run directory %s is not a directory (a symbolic link?); refusing to write conntrackd's configuration there", dir)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("connsync: run directory %s is owned by uid %d, not by vigil's uid %d; refusing to write conntrackd's configuration there", dir, st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0:
		return fmt.Errorf("connsync: run directory %s is writable by group or others (mode %04o); refusing to write conntrackd's configuration there", dir, st.Mode&0o7777)
	}
	return nil
}
