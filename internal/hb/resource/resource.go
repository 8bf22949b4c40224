// Package resource runs the resources of a haresources group: IPaddr and
// IPaddr2 (an address plus gratuitous ARP), the bare ip/prefix/dev
// shorthand, LSB scripts from <ha.d>/resource.d and /etc/init.d, systemd
// units, and Filesystem mounts. A Group starts its resources in order and
// stops them in reverse; a resource that fails to start makes the group stop
// what it had started, in reverse, and report the failure.
//
// Concurrency: a Group is used by one goroutine at a time (the Node's
// resource worker).
package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hbconf"
)

// AddressManager adds and removes interface addresses; the node uses
// IPCommand unless given another.
type AddressManager interface {
	Add(ctx context.Context, p netip.Prefix, dev, label string) error
	Del(ctx context.Context, p netip.Prefix, dev string) error
	// Find returns the interface (and its prefix length) whose network
	// contains ip, as heartbeat's findif does, for IPaddr without a device.
	Find(ctx context.Context, ip netip.Addr) (dev string, bits int, err error)
}

// Announcer sends gratuitous ARP for an address taken over; the node uses
// RawARP unless given another.
type Announcer interface {
	GARP(ctx context.Context, ip netip.Addr, dev string) error
}

// Runner runs an external command (scripts, systemctl, mount) and returns
// its combined output.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// maxOutput is how much of a command's output ExecRunner keeps (for the
// log); the rest is read and dropped.
const maxOutput = 64 << 10

// outputWaitDelay is how long ExecRunner waits, once the command has
// exited, for the end of its output.
const outputWaitDelay = 2 * time.Second

// ExecRunner runs commands with os/exec and returns their combined output
// (its first maxOutput bytes). It returns when the command exits, as
// heartbeat waits for the script and not for the end of its output: an init
// script's daemon started in the background keeps the script's stdout, and
// is left running with it (the output pipe is closed after outputWaitDelay).
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out boundedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = outputWaitDelay
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // exited 0; a background child holds the output
	}
	return out.b, err
}

// boundedBuffer keeps the first maxOutput bytes written to it.
type boundedBuffer struct{ b []byte }

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - len(w.b); room > 0 {
		w.b = append(w.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// Env is what resources need from the node.
type Env struct {
	Addrs AddressManager
	ARP   Announcer
	Run   Runner
	// HaDir holds resource.d (heartbeat's HA_RESOURCEDIR).
	HaDir string
	// InitDir is /etc/init.d.
	InitDir string
	// Systemctl is the systemctl path, "" when systemd is absent.
	Systemctl string
	// Timeout bounds one start/stop/status call.
	Timeout time.Duration
	Log     *slog.Logger
}

// Agent is one resource.
type Agent interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	// Status reports whether the resource runs here.
	Status(ctx context.Context) (bool, error)
	String() string
}

// New builds the agent for a haresources resource.
func New(r hbconf.Resource, env *Env) (Agent, error) {
	switch r.Agent {
	case "IPaddr", "IPaddr2":
		a, err := hbconf.ParseIPArg(r.Args[0])
		if err != nil {
			return nil, fmt.Errorf("resource: %s: %w", r.Raw, err)
		}
		return &IPAddr{Arg: a, Raw: r.Raw, Kind: r.Agent, env: env}, nil
	case "Filesystem":
		f := &Filesystem{Device: r.Args[0], Dir: r.Args[1], env: env}
		if len(r.Args) > 2 {
			f.FSType = r.Args[2]
		}
		if len(r.Args) > 3 {
			f.Options = r.Args[3]
		}
		return f, nil
	}
	// heartbeat's ResourceManager: resource.d first, then init.d.
	for _, dir := range []string{filepath.Join(env.HaDir, "resource.d"), env.InitDir} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, r.Agent)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return &Script{Path: p, Args: r.Args, env: env}, nil
		}
	}
	if env.Systemctl != "" && len(r.Args) == 0 {
		unit := r.Agent
		if !strings.Contains(unit, ".") {
			unit += ".service"
		}
		return &Unit{Name: unit, env: env}, nil
	}
	return nil, fmt.Errorf("resource: %s: no script %s in %s/resource.d or %s, and %s", r.Raw, r.Agent, env.HaDir, env.InitDir, map[bool]string{true: "it has arguments (not a systemd unit)", false: "systemd is not present"}[env.Systemctl != ""])
}

func (e *Env) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	t := e.Timeout
	if t <= 0 {
		t = 60 * time.Second
	}
	return context.WithTimeout(ctx, t)
}

func (e *Env) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	r := e.Run
	if r == nil {
		r = ExecRunner
	}
	return r(ctx, name, args...)
}

// IPAddr is IPaddr/IPaddr2: the address on an interface, announced with
// gratuitous ARP when added.
type IPAddr struct {
	Arg  hbconf.IPArg
	Raw  string
	Kind string
	env  *Env
	// resolved at start
	prefix netip.Prefix
	dev    string
}

func (a *IPAddr) String() string { return a.Kind + "::" + strings.TrimPrefix(a.Raw, a.Kind+"::") }

func (a *IPAddr) resolve(ctx context.Context) error {
	a.prefix, a.dev = a.Arg.Prefix, a.Arg.Dev
	if a.dev != "" && a.Arg.HasLen {
		return nil
	}
	dev, bits, err := a.env.Addrs.Find(ctx, a.Arg.Prefix.Addr())
	if err != nil {
		return fmt.Errorf("resource: %s: %w", a.Raw, err)
	}
	if a.dev == "" {
		a.dev = dev
	}
	if !a.Arg.HasLen {
		a.prefix = netip.PrefixFrom(a.Arg.Prefix.Addr(), bits)
	}
	return nil
}

func (a *IPAddr) Start(ctx context.Context) error {
	if err := a.resolve(ctx); err != nil {
		return err
	}
	if err := a.env.Addrs.Add(ctx, a.prefix, a.dev, a.Arg.Label); err != nil {
		return fmt.Errorf("resource: %s: %w", a.Raw, err)
	}
	if a.env.ARP != nil {
		if err := a.env.ARP.GARP(ctx, a.prefix.Addr(), a.dev); err != nil && a.env.Log != nil {
			a.env.Log.Warn("gratuitous ARP failed", "resource", a.Raw, "err", err)
		}
	}
	return nil
}

func (a *IPAddr) Stop(ctx context.Context) error {
	if a.dev == "" {
		if err := a.resolve(ctx); err != nil {
			return err
		}
	}
	if err := a.env.Addrs.Del(ctx, a.prefix, a.dev); err != nil {
		return fmt.Errorf("resource: %s: %w", a.Raw, err)
	}
	return nil
}

func (a *IPAddr) Status(ctx context.Context) (bool, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return false, err
	}
	for _, i := range ifs {
		addrs, _ := i.Addrs()
		for _, ad := range addrs {
			if n, ok := ad.(*net.IPNet); ok && n.IP.Equal(net.IP(a.Arg.Prefix.Addr().AsSlice())) {
				return true, nil
			}
		}
	}
	return false, nil
}

// Script is an LSB/heartbeat resource script: `script [args...] start|stop|status`.
type Script struct {
	Path string
	Args []string
	env  *Env
}

func (s *Script) String() string { return strings.Join(append([]string{s.Path}, s.Args...), "::") }

func (s *Script) call(ctx context.Context, op string) error {
	out, err := s.env.run(ctx, s.Path, append(append([]string{}, s.Args...), op)...)
	if err != nil {
		return fmt.Errorf("resource: %s %s: %w: %s", s.Path, op, err, bytes.TrimSpace(out))
	}
	return nil
}

func (s *Script) Start(ctx context.Context) error { return s.call(ctx, "start") }
func (s *Script) Stop(ctx context.Context) error  { return s.call(ctx, "stop") }

// Status: LSB exit 0 is running, anything else is not.
func (s *Script) Status(ctx context.Context) (bool, error) {
	err := s.call(ctx, "status")
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return false, nil
	}
	return err == nil, err
}

// Unit is a systemd unit driven with systemctl.
type Unit struct {
	Name string
	env  *Env
}

func (u *Unit) String() string { return u.Name }

func (u *Unit) call(ctx context.Context, op string) error {
	out, err := u.env.run(ctx, u.env.Systemctl, op, u.Name)
	if err != nil {
		return fmt.Errorf("resource: systemctl %s %s: %w: %s", op, u.Name, err, bytes.TrimSpace(out))
	}
	return nil
}

func (u *Unit) Start(ctx context.Context) error { return u.call(ctx, "start") }
func (u *Unit) Stop(ctx context.Context) error  { return u.call(ctx, "stop") }
func (u *Unit) Status(ctx context.Context) (bool, error) {
	return u.call(ctx, "is-active") == nil, nil
}

// Filesystem mounts Device on Dir (Filesystem::dev::dir[::fstype[::options]]).
type Filesystem struct {
	Device, Dir, FSType, Options string
	env                          *Env
}

func (f *Filesystem) String() string { return "Filesystem::" + f.Device + "::" + f.Dir }

func (f *Filesystem) Start(ctx context.Context) error {
	if ok, _ := f.Status(ctx); ok {
		return nil
	}
	args := []string{}
	if f.FSType != "" {
		args = append(args, "-t", f.FSType)
	}
	if f.Options != "" {
		args = append(args, "-o", f.Options)
	}
	args = append(args, f.Device, f.Dir)
	if out, err := f.env.run(ctx, "mount", args...); err != nil {
		return fmt.Errorf("resource: mount %s %s: %w: %s", f.Device, f.Dir, err, bytes.TrimSpace(out))
	}
	return nil
}

func (f *Filesystem) Stop(ctx context.Context) error {
	if ok, _ := f.Status(ctx); !ok {
		return nil
	}
	if out, err := f.env.run(ctx, "umount", f.Dir); err != nil {
		return fmt.Errorf("resource: umount %s: %w: %s", f.Dir, err, bytes.TrimSpace(out))
	}
	return nil
}

// Status reads /proc/self/mounts.
func (f *Filesystem) Status(ctx context.Context) (bool, error) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if fs := strings.Fields(l); len(fs) > 1 && fs[1] == filepath.Clean(f.Dir) {
			return true, nil
		}
	}
	return false, nil
}

// Group is a haresources line's resources.
type Group struct {
	Name   string
	Agents []Agent
}

// NewGroup builds a group's agents.
func NewGroup(g hbconf.Group, env *Env) (*Group, error) {
	out := &Group{Name: g.Name()}
	for _, r := range g.Resources {
		a, err := New(r, env)
		if err != nil {
			return nil, err
		}
		out.Agents = append(out.Agents, a)
	}
	return out, nil
}

// Start starts the resources in order. When one fails, those already
// started are stopped in reverse order and the start error is returned.
func (g *Group) Start(ctx context.Context) error {
	for i, a := range g.Agents {
		if err := a.Start(ctx); err != nil {
			var errs []error
			for j := i; j >= 0; j-- {
				// heartbeat's ResourceManager also stops the failed one.
				if e := g.Agents[j].Stop(ctx); e != nil && j < i {
					errs = append(errs, e)
				}
			}
			return errors.Join(append([]error{fmt.Errorf("resource: group %s: %s failed to start: %w", g.Name, a, err)}, errs...)...)
		}
	}
	return nil
}

// Stop stops the resources in reverse order; it goes on after a failure
// and returns every error.
func (g *Group) Stop(ctx context.Context) error {
	var errs []error
	for i := len(g.Agents) - 1; i >= 0; i-- {
		if err := g.Agents[i].Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
