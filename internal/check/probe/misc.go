package probe

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/check"
)

// RunFunc runs a command line and returns its exit status. err is set when
// the command could not run or did not exit on its own (it was killed at
// ctx's end, or by a signal); exitCode is then meaningless.
type RunFunc func(ctx context.Context, argv []string) (exitCode int, err error)

// Misc is MISC_CHECK: it runs a program and judges its exit status as
// keepalived 2.2.7 check_misc.c does: 0 is success, 1 failure; with
// Dynamic, 2..255 is success with weight exit status − 2, otherwise any
// status but 0 is failure. A program still running at the timeout fails the
// check.
//
// Concurrency: Check may be called concurrently.
type Misc struct {
	// Argv is the command line (misc_path, split by cmdline.Split).
	Argv []string
	// Timeout bounds a run (misc_timeout). keepalived uses the virtual
	// server's delay_loop when misc_timeout is unset; resolve it before.
	Timeout time.Duration
	// Dynamic makes exit statuses 2..255 set the weight (misc_dynamic).
	Dynamic bool
	// Run runs the command; nil means Exec with Credential.
	Run RunFunc
	// Credential is the user the default runner runs the program as
	// (user USERNAME [GROUPNAME]); nil runs it as vigil's user.
	Credential *syscall.Credential
}

// Check runs the program once.
func (m *Misc) Check(ctx context.Context) check.Result {
	start := time.Now()
	if len(m.Argv) == 0 {
		return check.Result{Reason: "misc_path is empty"}
	}
	to := m.Timeout
	if to <= 0 {
		to = check.DefaultDelayLoop
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	run := m.Run
	if run == nil {
		run = func(ctx context.Context, argv []string) (int, error) {
			return Exec(ctx, argv, m.Credential)
		}
	}
	code, err := run(ctx, m.Argv)
	r := check.Result{Latency: elapsed(start)}
	name := m.Argv[0]
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		r.Reason = fmt.Sprintf("%s timed out after %v", name, to)
	case err != nil:
		r.Reason = fmt.Sprintf("%s: %v", name, err)
	case code == 0:
		r.OK = true
		r.Reason = fmt.Sprintf("%s exited with status 0", name)
	case m.Dynamic && code >= 2 && code <= 255:
		// check_misc.c: "The actual weight set when using misc_dynamic is
		// two less than the exit status returned."
		w := code - 2
		r.OK, r.Weight = true, &w
		r.Reason = fmt.Sprintf("%s exited with status %d (weight %d)", name, code, w)
	default:
		r.Reason = fmt.Sprintf("%s exited with status %d", name, code)
	}
	return r
}

// termGrace is how long a timed-out program has between SIGTERM and
// SIGKILL (check_misc.c: SCRIPT_STATE_REQUESTING_TERMINATION, 2 s).
const termGrace = 2 * time.Second

// Exec is the default RunFunc: it executes argv[0] directly (no shell), as
// keepalived does for an executable script, in its own process group, with
// SIGTERM as parent-death signal (system_call_script: setpgid(0, 0),
// PR_SET_PDEATHSIG). When ctx ends first, the whole group gets SIGTERM, then
// SIGKILL 2 s later if the program is still there, and after the program
// exits SIGKILL again so none of its children survive; Exec then returns
// ctx's error. Stdin, stdout and stderr are /dev/null.
func Exec(ctx context.Context, argv []string, cred *syscall.Credential) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("probe: empty command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM, Credential: cred}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		// Wait for the exit without reaping: while the zombie stays, its
		// PID, which is the group's ID, cannot be reused, so signalling the
		// group stays safe.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		close(exited)
	}()
	var ctxErr error
	select {
	case <-exited:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		t := time.NewTimer(termGrace)
		select {
		case <-exited:
		case <-t.C:
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-exited
		}
		t.Stop()
		// check_misc.c: after a SIGTERM "make sure any children it
		// created have died too".
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	err := cmd.Wait()
	if ctxErr != nil {
		return 0, ctxErr
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 0, fmt.Errorf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// unescape decodes the escape starting at s[i] (just past the backslash).
func unescape(s string, i int) (byte, int) {
	c := s[i]
	isHex := func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
	}
	switch {
	case c == 'x' && i+1 < len(s) && isHex(s[i+1]):
		var v byte
		i++
		for i < len(s) && isHex(s[i]) {
			d := s[i]
			switch {
			case d >= 'a':
				d = d - 'a' + 10
			case d >= 'A':
				d = d - 'A' + 10
			default:
				d -= '0'
			}
			v = v<<4 | d
			i++
		}
		return v, i
	case c == 'c' && i+1 < len(s):
		return s[i+1] & 0x1f, i + 2
	case c >= '0' && c <= '7':
		v := c - '0'
		i++
		for n := 0; n < 2 && i < len(s) && s[i] >= '0' && s[i] <= '7'; n++ {
			v = v<<3 + (s[i] - '0')
			i++
		}
		return v, i
	}
	m := map[byte]byte{'a': '\a', 'b': '\b', 'E': 0x1b, 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}
	if v, ok := m[c]; ok {
		return v, i + 1
	}
	return c, i + 1
}
