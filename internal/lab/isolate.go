package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Isolation describes a private mount and UTS namespace for a process run
// inside a host, for daemons that keep state at fixed paths (heartbeat's
// /etc/ha.d, /run/heartbeat, /var/lib/heartbeat) or that identify themselves by
// `uname -n`. Nothing in the machine's real file system changes: the binds only
// exist inside the new mount namespace.
type Isolation struct {
	// Hostname is set inside the new UTS namespace (empty: inherited).
	Hostname string
	// Binds are applied in order: Source (a directory or file on the
	// machine, typically under a test's temp dir) is bind-mounted over
	// Target, which must exist.
	Binds []Bind
}

// Bind is one bind mount of an Isolation.
type Bind struct {
	Source, Target string
}

// isolateScript runs inside `unshare --mount --uts --propagation private`:
// it sets the hostname, applies the binds given as "src\ttarget" arguments
// up to "--", then execs the command, so the process keeps the PID.
const isolateScript = `set -e
h=$1; shift
[ -n "$h" ] && hostname "$h"
while [ "$1" != "--" ]; do
  mount --bind "${1%%	*}" "${1#*	}"
  shift
done
shift
exec "$@"`

// IsolatedCommand returns a command that runs inside the host's network
// namespace and in new mount and UTS namespaces set up as iso describes. The
// command execs through `ip netns exec`, `unshare` and `sh`, so its PID is
// the program's; it runs in its own process group.
func (h *Host) IsolatedCommand(ctx context.Context, iso Isolation, name string, args ...string) *exec.Cmd {
	a := []string{"--mount", "--uts", "--propagation", "private", "sh", "-c", isolateScript, "isolate", iso.Hostname}
	for _, b := range iso.Binds {
		a = append(a, b.Source+"\t"+b.Target)
	}
	a = append(a, "--", name)
	a = append(a, args...)
	return h.Command(ctx, "unshare", a...)
}

// StartIsolated starts a long-running command as IsolatedCommand does. The
// lab kills it at Close if it still runs.
func (h *Host) StartIsolated(iso Isolation, name string, args ...string) (*Proc, error) {
	return h.start(h.IsolatedCommand(context.Background(), iso, name, args...), name)
}

// RunIsolated runs a short command as IsolatedCommand does and returns its
// combined output.
func (h *Host) RunIsolated(iso Isolation, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.IsolatedCommand(ctx, iso, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s: %s %s: %w: %s", h.name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// RunBeside runs a short command in the network, mount and UTS namespaces of
// a running process (one started with StartIsolated), e.g. a daemon's client
// tool that talks to it over a unix socket under a bind-mounted /run. It
// returns the combined output.
func RunBeside(p *Proc, name string, args ...string) (string, error) {
	select {
	case <-p.done:
		return "", fmt.Errorf("lab: run beside pid %d: process has exited", p.PID())
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := append([]string{"--target", strconv.Itoa(p.PID()), "--mount", "--uts", "--net", name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", a...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: beside pid %d: %s %s: %w: %s", p.PID(), name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// MkdirOwned creates dir (and parents) with mode and hands it to uid:gid, for
// the private directories a daemon running as a service user expects.
func MkdirOwned(dir string, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}
