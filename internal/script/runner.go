package script

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// DefaultKillGrace is how long a timed-out script has between SIGTERM and
// SIGKILL: keepalived 2.2.7 gives a vrrp_script 2 s (vrrp_scheduler.c
// vrrp_script_child_thread, SCRIPT_STATE_REQUESTING_TERMINATION).
const DefaultKillGrace = 2 * time.Second

// RunnerOptions configures a Runner.
type RunnerOptions struct {
	// Env is the complete environment of every script; nil means
	// DefaultEnv().
	Env []string
	// KillGrace is the time between SIGTERM and SIGKILL to a timed-out
	// script's process group; 0 means DefaultKillGrace.
	KillGrace time.Duration
	// Logger receives debug records of each run; nil discards.
	Logger *slog.Logger
}

// DefaultEnv is the fixed environment vigil gives scripts: only PATH. (
// keepalived passes its own environment through; under systemd that is
// systemd's default PATH plus the manager's locale and a few variables of
// its own. vigil scrubs it so a script sees the same thing however the
// daemon was started.)
func DefaultEnv() []string { return []string{"PATH=" + DefaultPath} }

// Runner runs prepared scripts. It is safe for concurrent use; each Run
// blocks only its caller's goroutine.
type Runner struct {
	env   []string
	grace time.Duration
	log   *slog.Logger
	self  Cred
	root  bool
}

// NewRunner returns a Runner. It starts nothing.
func NewRunner(o RunnerOptions) *Runner {
	r := &Runner{env: o.Env, grace: o.KillGrace, log: o.Logger}
	if r.env == nil {
		r.env = DefaultEnv()
	}
	if r.grace <= 0 {
		r.grace = DefaultKillGrace
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.self = Cred{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	r.root = r.self.UID == 0
	return r
}

// Result is the outcome of one run.
type Result struct {
	PID int
	// ExitCode is the exit status, or -1 when the script was killed by a
	// signal or did not start.
	ExitCode int
	// Signal is the signal that killed the script, if any.
	Signal syscall.Signal
	// TimedOut is set when the timeout expired and the group was killed.
	TimedOut bool
	// Err is set when the script could not start or was refused, or when
	// the run was cancelled through its context.
	Err      error
	Duration time.Duration
}

// OK reports success: exit status 0, in time. keepalived counts a timed-out
// script, one killed by a signal and one exiting non-zero as failures.
func (r Result) OK() bool { return r.Err == nil && !r.TimedOut && r.ExitCode == 0 }

func (r Result) String() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.TimedOut:
		return fmt.Sprintf("timed out after %v", r.Duration.Round(time.Millisecond))
	case r.Signal != 0:
		return "killed by signal " + r.Signal.String()
	}
	return fmt.Sprintf("exit status %d", r.ExitCode)
}

// ErrCancelled is wrapped in Result.Err when the context ended the run.
var ErrCancelled = errors.New("script: run cancelled")

// ErrNoResources is wrapped in Result.Err when the script could not start
// because the daemon itself ran short (descriptors: os/exec needs a few to
// start a process; memory; processes): the run says nothing about what the
// script checks. keepalived forks without new descriptors, and when its
// fork fails it reschedules the script without a result.
var ErrNoResources = errors.New("daemon out of resources")

// NotRun reports that the script did not start for lack of the daemon's
// resources (ErrNoResources): neither success nor failure of the script.
func (r Result) NotRun() bool { return errors.Is(r.Err, ErrNoResources) }

// Run runs p with the extra arguments appended, as p's user, in a new
// process group (keepalived: setpgid(0, 0)), with working directory "/",
// stdin, stdout and stderr on /dev/null, the Runner's environment, and
// SIGTERM as parent-death signal (keepalived: PR_SET_PDEATHSIG). Run returns
// when the script has exited and been reaped.
//
// When timeout (if > 0) expires, or ctx ends, the whole process group gets
// SIGTERM, then SIGKILL after the kill grace; when the script itself dies of
// that SIGTERM, the group gets SIGKILL at once so no child outlives it
// (keepalived does the same). A script that exits by itself may leave
// background children running (notify_master "start-daemon &" works).
func (r *Runner) Run(ctx context.Context, p *Prepared, timeout time.Duration, extra ...string) Result {
	if err := p.Recheck(); err != nil {
		return Result{ExitCode: -1, Err: err}
	}
	argv := make([]string, 0, len(p.argv)+len(extra))
	argv = append(argv, p.argv...)
	argv = append(argv, extra...)
	cmd := &exec.Cmd{
		Path: p.path,
		Args: argv,
		Env:  r.env,
		Dir:  "/",
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGTERM,
		},
	}
	if c := p.cmd.Cred; r.root || c.UID != r.self.UID || c.GID != r.self.GID {
		// keepalived set_script_env: setgid, setgroups(1, &gid), setuid.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: []uint32{c.GID}}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		if check.OutOfResources(err) { // not the script's fault (missing, not executable)
			err = fmt.Errorf("%w: %w", ErrNoResources, err)
		}
		return Result{ExitCode: -1, Err: &Error{What: p.cmd.What, Err: fmt.Errorf("cannot run %s: %w", p.path, err)}}
	}
	pid := cmd.Process.Pid
	r.log.Debug("script started", "what", p.cmd.What, "pid", pid, "argv", argv)

	var (
		mu        sync.Mutex
		exited    bool
		graceT    *time.Timer
		timedOut  atomic.Bool
		cancelled atomic.Bool
		once      sync.Once
	)
	killGroup := func(sig syscall.Signal) {
		mu.Lock()
		defer mu.Unlock()
		if !exited {
			_ = syscall.Kill(-pid, sig)
		}
	}
	escalate := func() {
		once.Do(func() {
			killGroup(syscall.SIGTERM)
			mu.Lock()
			if !exited {
				graceT = time.AfterFunc(r.grace, func() { killGroup(syscall.SIGKILL) })
			}
			mu.Unlock()
		})
	}
	var timeoutT *time.Timer
	if timeout > 0 {
		timeoutT = time.AfterFunc(timeout, func() { timedOut.Store(true); escalate() })
	}
	stopCtx := context.AfterFunc(ctx, func() { cancelled.Store(true); escalate() })

	waitErr := cmd.Wait()

	stopCtx()
	if timeoutT != nil {
		timeoutT.Stop()
	}
	mu.Lock()
	exited = true
	if graceT != nil {
		graceT.Stop()
	}
	mu.Unlock()

	res := Result{PID: pid, ExitCode: -1, Duration: time.Since(start), TimedOut: timedOut.Load()}
	if cancelled.Load() && !res.TimedOut {
		res.Err = fmt.Errorf("%w: %v", ErrCancelled, context.Cause(ctx))
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited():
			res.ExitCode = ws.ExitStatus()
		case ws.Signaled():
			res.Signal = ws.Signal()
		}
	} else if waitErr != nil && res.Err == nil {
		res.Err = waitErr
	}
	if res.TimedOut || cancelled.Load() {
		// The leader has gone after our signal: make sure its children go
		// too (keepalived: kill(-pid, SIGKILL) once the script died of
		// SIGTERM). The process group id stays reserved while any member
		// lives, so this cannot hit another group.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	r.log.Debug("script finished", "what", p.cmd.What, "pid", pid, "result", res.String(), "duration", res.Duration)
	return res
}
