package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/status"
)

// Kind says which daemon a Node runs.
type Kind string

const (
	Vigil      Kind = "vigil"
	Keepalived Kind = "keepalived"
)

// KeepalivedBin is Debian's keepalived 2.2.7.
const KeepalivedBin = "/usr/sbin/keepalived"

// KeepalivedArgs is how tests run keepalived: in the foreground (-n),
// logging in detail (-D) to its stderr (-l) and not through syslog (-G),
// then args. With -l and without -G, keepalived opens syslog with
// LOG_CONS, and where nothing listens on /dev/log (a test machine, a
// container) glibc writes every message to /dev/console instead. On a
// virtual machine whose console is an emulated serial port, the port's
// interrupt handler then runs with interrupts off for as long as the
// hypervisor takes to emulate the bytes: traced on the CI machine, it
// kept one CPU from scheduling for 22 ms at a time, and the real-time
// daemons woken on that CPU waited (README, "Chaos and soak").
func KeepalivedArgs(args ...string) []string {
	return append([]string{"-n", "-l", "-D", "-G"}, args...)
}

// Node is one VRRP daemon inside a lab host. Its files (configuration, pid
// files, vigil's API socket, the TMPDIR dumps) live in Dir.
type Node struct {
	Kind Kind
	Host *lab.Host
	Bin  string
	Dir  string
	// Args are extra command-line arguments (vigil: e.g. --log-level debug).
	Args []string
	// AsKeepalived runs vigil in keepalived's place: through a link named
	// keepalived, with the command line keepalived.service gives keepalived
	// (--dont-fork) and the node's pid file and API socket.
	AsKeepalived bool
	// Env is extra environment for the daemon (NAME=value), for example
	// GODEBUG=gctrace=1.
	Env []string

	mu    sync.Mutex
	proc  *lab.Proc
	older []string // output of earlier runs

	apiOnce sync.Once
	api     *api.Client
}

// NewNode prepares a node; Start runs it. dir must exist and be private to
// the node.
func NewNode(kind Kind, h *lab.Host, bin, dir string) *Node {
	return &Node{Kind: kind, Host: h, Bin: bin, Dir: dir}
}

// ConfPath is the node's configuration file.
func (n *Node) ConfPath() string { return filepath.Join(n.Dir, "keepalived.conf") }

// Socket is vigil's API socket.
func (n *Node) Socket() string { return filepath.Join(n.Dir, "vigil.sock") }

// PidFile is the main pid file (-p).
func (n *Node) PidFile() string { return filepath.Join(n.Dir, "main.pid") }

// WriteConfig writes the configuration file.
func (n *Node) WriteConfig(c string) error {
	if err := os.WriteFile(n.ConfPath(), []byte(c), 0o644); err != nil {
		return fmt.Errorf("e2e: %w", err)
	}
	return nil
}

// Name is "<host>/<kind>", for messages.
func (n *Node) Name() string { return n.Host.Name() + "/" + string(n.Kind) }

// Start runs the daemon in the foreground inside its host, logging to its
// output (keepalived: KeepalivedArgs; vigil logs to stderr).
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		select {
		case <-n.proc.Done():
			n.older = append(n.older, n.proc.Output())
		default:
			return fmt.Errorf("e2e: %s already runs (pid %d)", n.Name(), n.proc.PID())
		}
	}
	var name string
	var args []string
	switch n.Kind {
	case Vigil:
		name = n.Bin
		args = append([]string{"run", "-f", n.ConfPath(), "--api-socket", n.Socket(), "-p", n.PidFile()}, n.Args...)
		if n.AsKeepalived {
			name = filepath.Join(n.Dir, "keepalived")
			if err := os.Symlink(n.Bin, name); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("e2e: %w", err)
			}
			// keepalived's pid files, in Dir as a real keepalived's.
			args = append([]string{"--dont-fork", "-D", "-f", n.ConfPath(), "-p", n.PidFile(),
				"-r", filepath.Join(n.Dir, "vrrp.pid"), "-c", filepath.Join(n.Dir, "checkers.pid"), "--api-socket", n.Socket()}, n.Args...)
		}
		// The dumps (SIGUSR1, SIGUSR2, signal 36) go to Dir, as keepalived's.
		args = append(append(append([]string{"TMPDIR=" + n.Dir}, n.Env...), name), args...)
		name = "env"
	case Keepalived:
		// keepalived writes its dumps to $TMPDIR (/tmp otherwise) and its pid
		// files to /run unless told: keep everything in Dir. -P: VRRP only
		// (the checker process exits without IPVS).
		name = "env"
		args = append(append([]string{"TMPDIR=" + n.Dir}, n.Env...), n.Bin)
		args = append(args, KeepalivedArgs("-P", "-f", n.ConfPath(),
			"-p", n.PidFile(), "-r", filepath.Join(n.Dir, "vrrp.pid"), "-c", filepath.Join(n.Dir, "checkers.pid"))...)
		args = append(args, n.Args...)
	default:
		return fmt.Errorf("e2e: unknown kind %q", n.Kind)
	}
	p, err := n.Host.Start(name, args...)
	if err != nil {
		return err
	}
	n.proc = p
	return nil
}

// Proc is the current process (nil before Start).
func (n *Node) Proc() *lab.Proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Pid is the main process's pid, 0 before Start.
func (n *Node) Pid() int {
	if p := n.Proc(); p != nil {
		return p.PID()
	}
	return 0
}

// VRRPPid is the process that runs VRRP: vigil's only process, or
// keepalived's VRRP child (read from its -r pid file).
func (n *Node) VRRPPid() (int, error) {
	if n.Kind == Vigil {
		return n.Pid(), nil
	}
	b, err := os.ReadFile(filepath.Join(n.Dir, "vrrp.pid"))
	if err != nil {
		return 0, fmt.Errorf("e2e: %s: %w", n.Name(), err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Running reports whether the process runs.
func (n *Node) Running() bool {
	p := n.Proc()
	if p == nil {
		return false
	}
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

// Log is the output of the current run.
func (n *Node) Log() string {
	if p := n.Proc(); p != nil {
		return p.Output()
	}
	return ""
}

// AllLogs is the output of every run, oldest first, for failure messages.
func (n *Node) AllLogs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var b strings.Builder
	for i, o := range n.older {
		fmt.Fprintf(&b, "--- %s run %d ---\n%s", n.Name(), i+1, o)
	}
	if n.proc != nil {
		fmt.Fprintf(&b, "--- %s run %d ---\n%s", n.Name(), len(n.older)+1, n.proc.Output())
	}
	return b.String()
}

// Kill is kill -9 of the whole daemon (keepalived's parent and VRRP child
// together: they share a process group) and waits for the exit.
//
// keepalived's VRRP child, orphaned, is reparented to PID 1, and until PID 1
// reaps it a kill(pid, 0) still succeeds: a restarted keepalived would read
// the child's pid file and refuse to start ("daemon is already running").
// Kill removes keepalived's pid files, as an operator cleaning up after a
// crash would.
func (n *Node) Kill() {
	p := n.Proc()
	if p == nil {
		return
	}
	p.Kill()
	if n.Kind == Keepalived {
		for _, f := range []string{n.PidFile(), filepath.Join(n.Dir, "vrrp.pid"), filepath.Join(n.Dir, "checkers.pid")} {
			os.Remove(f)
		}
	}
}

// Term sends SIGTERM and waits up to timeout for the exit. It returns the
// exit code (-1 if killed by a signal).
func (n *Node) Term(timeout time.Duration) (int, error) {
	p := n.Proc()
	if p == nil {
		return 0, fmt.Errorf("e2e: %s not started", n.Name())
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("e2e: %s: SIGTERM: %w", n.Name(), err)
	}
	if !p.Wait(timeout) {
		return 0, fmt.Errorf("e2e: %s still running %v after SIGTERM", n.Name(), timeout)
	}
	return exitCode(p.Err()), nil
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Status is vigil's status snapshot through its API socket.
func (n *Node) Status(ctx context.Context) (status.Snapshot, error) {
	if n.Kind != Vigil {
		return status.Snapshot{}, fmt.Errorf("e2e: %s has no vigil API", n.Name())
	}
	return n.API().Status(ctx)
}

// API is the client of the node's API socket: one for the node's life, so
// that polling reuses its kept-alive connection (a client per call left
// one connection, and its goroutines, open per call until the daemon
// exited). The socket is Dir's, fixed when the node is made.
func (n *Node) API() *api.Client {
	n.apiOnce.Do(func() { n.api = api.NewClient(n.Socket()) })
	return n.api
}

// InstanceStatus is one instance of Status.
func (n *Node) InstanceStatus(ctx context.Context, name string) (status.Instance, error) {
	s, err := n.Status(ctx)
	if err != nil {
		return status.Instance{}, err
	}
	for _, in := range s.Instances {
		if in.Name == name {
			return in, nil
		}
	}
	return status.Instance{}, fmt.Errorf("e2e: %s: no instance %s", n.Name(), name)
}

// kaEntering matches keepalived 2.2.7's transition log lines:
// "Keepalived_vrrp[77]: (VI_1) Entering MASTER STATE", and those of an
// instance that starts in FAULT: "(VI_1): entering FAULT state (interface
// eth0 down)", "(VI_1) entering FAULT state (no IPv4 address for
// interface)".
var kaEntering = regexp.MustCompile(`\(([^)\s]+)\):? (?:Entering (\w+) STATE|entering (FAULT) state)`)

// State returns the instance's state: from vigil's API, or from the last
// "Entering X STATE" line of keepalived's log. "" when unknown (not started
// or, for keepalived, no transition logged yet).
func (n *Node) State(ctx context.Context, instance string) (string, error) {
	switch n.Kind {
	case Vigil:
		in, err := n.InstanceStatus(ctx, instance)
		if err != nil {
			return "", err
		}
		return in.State, nil
	default:
		return KeepalivedState(n.Log(), instance), nil
	}
}

// States returns the state of every instance the node reports: vigil's API,
// or every instance keepalived's log shows entering a state.
func (n *Node) States(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	if n.Kind == Vigil {
		s, err := n.Status(ctx)
		if err != nil {
			return nil, err
		}
		for _, in := range s.Instances {
			out[in.Name] = in.State
		}
		return out, nil
	}
	for _, m := range kaEntering.FindAllStringSubmatch(n.Log(), -1) {
		out[m[1]] = m[2] + m[3]
	}
	return out, nil
}

// KeepalivedState is the state keepalived's log last entered for instance.
func KeepalivedState(log, instance string) string {
	state := ""
	for _, m := range kaEntering.FindAllStringSubmatch(log, -1) {
		if m[1] == instance {
			state = m[2] + m[3]
		}
	}
	return state
}

// WaitState polls until the instance is in state (MASTER, BACKUP, FAULT),
// the process exits, or timeout passes.
func (n *Node) WaitState(instance, state string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last, lastErr = n.State(ctx, instance)
		cancel()
		if lastErr == nil && last == state {
			return nil
		}
		if !n.Running() {
			return fmt.Errorf("e2e: %s exited while waiting for %s %s (%v)", n.Name(), instance, state, n.Proc().Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e: %s: %s not %s after %v (state %q, err %v)", n.Name(), instance, state, timeout, last, lastErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitLog polls until the log contains s, the process exits, or timeout
// passes.
func (n *Node) WaitLog(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(n.Log(), s) {
		if !n.Running() {
			// Its whole output is copied once it has exited: it may have
			// logged s just before.
			if strings.Contains(n.Log(), s) {
				return nil
			}
			return fmt.Errorf("e2e: %s exited before logging %q", n.Name(), s)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e: %s did not log %q within %v", n.Name(), s, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// WaitReady waits until the daemon answers: vigil's API socket, keepalived's
// VRRP child pid file and first transition.
func (n *Node) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if !n.Running() {
			return fmt.Errorf("e2e: %s exited at start: %v", n.Name(), n.Proc().Err())
		}
		switch n.Kind {
		case Vigil:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := n.Status(ctx)
			cancel()
			if err == nil {
				return nil
			}
		default:
			if _, err := n.VRRPPid(); err == nil && kaEntering.MatchString(n.Log()) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e: %s not ready within %v", n.Name(), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
