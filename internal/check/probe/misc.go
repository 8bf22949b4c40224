package probe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/script"
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
	// Run runs the command: ScriptRun in the daemon, where the script was
	// checked by script.Prepare and runs as every other script does. A
	// Misc without Run fails every check.
	Run RunFunc
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
	if m.Run == nil {
		return check.Result{Reason: "misc: no runner"}
	}
	code, err := m.Run(ctx, m.Argv)
	r := check.Result{Latency: elapsed(start)}
	name := m.Argv[0]
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		r.Reason = fmt.Sprintf("%s timed out after %v", name, to)
	case err != nil:
		r.Reason = fmt.Sprintf("%s: %v", name, err)
		r.NoVerdict = check.OutOfResources(err)
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

// ScriptRun is the RunFunc of a prepared misc_path: r runs p (its own
// process group, its user, SIGTERM then SIGKILL to the group when ctx ends;
// see script.Runner.Run) and the argv Misc passes is ignored, p holds it.
// It returns the exit status, or an error when the script could not run,
// was killed by a signal, or ctx ended (then ctx's error).
func ScriptRun(r *script.Runner, p *script.Prepared) RunFunc {
	return func(ctx context.Context, _ []string) (int, error) {
		res := r.Run(ctx, p, 0)
		switch {
		case errors.Is(res.Err, script.ErrCancelled):
			return 0, ctx.Err()
		case res.Err != nil:
			return 0, res.Err
		case res.Signal != 0:
			return 0, fmt.Errorf("killed by signal %d (%v)", int(res.Signal), res.Signal)
		}
		return res.ExitCode, nil
	}
}
