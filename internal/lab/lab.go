// Package lab builds small networks out of Linux network namespaces: hosts
// joined by LANs. Each LAN is a bridge inside a private "switch" namespace, and
// each host interface is a veth pair with one end in the host and the other
// enslaved to the LAN's bridge. Nothing is created in the caller's namespace.
//
// It is used by the namespace tests (through internal/netnstest) and by
// `vigil demo`. Every namespace a lab creates is named
// "vg<pid>-<lab>-<host>", so Sweep can recognise and remove what a killed
// earlier run left behind without touching the namespaces of a run that is
// still alive (several test binaries run at once under `go test ./...`).
//
// Concurrency: a Lab is safe for use by one goroutine at a time; Host methods
// that only read (Name, Command, Do) may be called concurrently.
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// Prefix starts the name of every namespace a lab creates.
const Prefix = "vg"

// nameRE matches the namespaces labs create: vg<pid>-<rest>.
var nameRE = regexp.MustCompile(`^` + Prefix + `([0-9]+)-[a-z0-9]+-`)

// Lab is one test network.
type Lab struct {
	name   string // short, unique within this process
	swNS   string // switch namespace
	lans   map[string]string
	hosts  map[string]*Host
	order  []*Host
	nveth  int
	mu     sync.Mutex
	procs  []*Proc
	closed bool
}

// Host is one node of a lab: a network namespace with interfaces.
type Host struct {
	lab  *Lab
	name string // as given by the test, e.g. "r1"
	ns   string // namespace name
	// Ifaces lists the host's interfaces in the order they were added.
	Ifaces []Iface
}

// Iface describes one interface of a host.
type Iface struct {
	Name  string   // inside the host, e.g. "eth0"
	LAN   string   // the LAN (bridge) it plugs into
	Addrs []string // CIDR addresses, e.g. "192.168.1.105/24", "fd00::5/64"
	MAC   string   // optional; a deterministic locally administered MAC when empty
	// Peer is the name of the veth end in the switch namespace (set by AddHost).
	Peer string
}

var labSeq struct {
	sync.Mutex
	n int
}

// New creates an empty lab. name must be short lowercase letters/digits; it is
// made unique within the process.
func New(name string) (*Lab, error) {
	if !regexp.MustCompile(`^[a-z0-9]{1,8}$`).MatchString(name) {
		return nil, fmt.Errorf("lab: name %q: want 1-8 lowercase letters or digits", name)
	}
	labSeq.Lock()
	labSeq.n++
	n := labSeq.n
	labSeq.Unlock()
	l := &Lab{
		name:  fmt.Sprintf("%s%d", name, n),
		lans:  map[string]string{},
		hosts: map[string]*Host{},
	}
	l.swNS = l.nsName("sw")
	if err := addNS(l.swNS); err != nil {
		return nil, err
	}
	if err := l.ip("-n", l.swNS, "link", "set", "lo", "up"); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) nsName(host string) string {
	return fmt.Sprintf("%s%d-%s-%s", Prefix, os.Getpid(), l.name, host)
}

// SwitchNS returns the name of the namespace that holds the LAN bridges. Tests
// use it to drop or delay traffic between hosts (nftables bridge rules).
func (l *Lab) SwitchNS() string { return l.swNS }

// Bridge returns the bridge device of a LAN, inside SwitchNS.
func (l *Lab) Bridge(lan string) string { return l.lans[lan] }

// AddLAN creates a LAN (a bridge with multicast snooping off, so VRRP and
// IPv6 multicast reach every port).
func (l *Lab) AddLAN(name string) error {
	if _, ok := l.lans[name]; ok {
		return fmt.Errorf("lab: LAN %q exists", name)
	}
	br := fmt.Sprintf("br%d", len(l.lans))
	if err := l.ip("-n", l.swNS, "link", "add", br, "type", "bridge",
		"mcast_snooping", "0", "forward_delay", "0", "stp_state", "0"); err != nil {
		return err
	}
	if err := l.ip("-n", l.swNS, "link", "set", br, "up"); err != nil {
		return err
	}
	l.lans[name] = br
	return nil
}

// AddHost creates a host with the given interfaces. LANs named by the
// interfaces are created when missing.
func (l *Lab) AddHost(name string, ifs ...Iface) (*Host, error) {
	if !regexp.MustCompile(`^[a-z0-9]{1,12}$`).MatchString(name) {
		return nil, fmt.Errorf("lab: host name %q: want 1-12 lowercase letters or digits", name)
	}
	if _, ok := l.hosts[name]; ok {
		return nil, fmt.Errorf("lab: host %q exists", name)
	}
	h := &Host{lab: l, name: name, ns: l.nsName(name)}
	if err := addNS(h.ns); err != nil {
		return nil, err
	}
	l.hosts[name] = h
	l.order = append(l.order, h)
	// Quiet, fast IPv6: no DAD delays, no router solicitations.
	for _, kv := range [][2]string{
		{"net/ipv6/conf/all/accept_dad", "0"},
		{"net/ipv6/conf/default/accept_dad", "0"},
		{"net/ipv6/conf/default/router_solicitations", "0"},
		{"net/ipv4/conf/all/arp_announce", "0"},
	} {
		if err := h.Sysctl(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if err := l.ip("-n", h.ns, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	for _, ifc := range ifs {
		if err := l.addIface(h, ifc); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// AddIface adds an interface to an existing host, as when a VLAN, a bond or
// a hot-plugged NIC appears after the daemons on the host started.
func (l *Lab) AddIface(h *Host, ifc Iface) error {
	for _, x := range h.Ifaces {
		if x.Name == ifc.Name {
			return fmt.Errorf("lab: host %s has an interface %s", h.name, ifc.Name)
		}
	}
	return l.addIface(h, ifc)
}

// DelIface deletes one of the host's interfaces (both ends of its veth), as
// when a VLAN or a bond is removed; AddIface can create it again.
func (l *Lab) DelIface(h *Host, name string) error {
	for i, x := range h.Ifaces {
		if x.Name == name {
			if err := l.ip("-n", l.swNS, "link", "del", x.Peer); err != nil {
				return err
			}
			h.Ifaces = append(h.Ifaces[:i], h.Ifaces[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("lab: host %s has no interface %s", h.name, name)
}

func (l *Lab) addIface(h *Host, ifc Iface) error {
	if ifc.LAN == "" {
		return fmt.Errorf("lab: host %s interface %s: no LAN", h.name, ifc.Name)
	}
	if _, ok := l.lans[ifc.LAN]; !ok {
		if err := l.AddLAN(ifc.LAN); err != nil {
			return err
		}
	}
	l.nveth++
	ifc.Peer = fmt.Sprintf("p%d", l.nveth)
	if ifc.MAC == "" {
		// 02:76:67 ("vg") : lab-local host/interface counter.
		ifc.MAC = fmt.Sprintf("02:76:67:%02x:%02x:%02x", (l.nveth>>16)&0xff, (l.nveth>>8)&0xff, l.nveth&0xff)
	}
	if err := l.ip("-n", l.swNS, "link", "add", ifc.Peer, "type", "veth",
		"peer", "name", ifc.Name, "netns", h.ns, "address", ifc.MAC); err != nil {
		return err
	}
	if err := l.ip("-n", l.swNS, "link", "set", ifc.Peer, "master", l.lans[ifc.LAN], "up"); err != nil {
		return err
	}
	for _, a := range ifc.Addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return fmt.Errorf("lab: host %s: %w", h.name, err)
		}
		args := []string{"-n", h.ns, "addr", "add", p.String(), "dev", ifc.Name}
		if p.Addr().Is6() {
			args = append(args, "nodad")
		}
		if err := l.ip(args...); err != nil {
			return err
		}
	}
	if err := l.ip("-n", h.ns, "link", "set", ifc.Name, "up"); err != nil {
		return err
	}
	h.Ifaces = append(h.Ifaces, ifc)
	return nil
}

// Host returns a host by name, or nil.
func (l *Lab) Host(name string) *Host { return l.hosts[name] }

// Close stops every process started through the lab (SIGKILL to its process
// group, by PID) and deletes every namespace. It is safe to call twice.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := l.procs
	l.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	var errs []error
	for i := len(l.order) - 1; i >= 0; i-- {
		errs = append(errs, delNS(l.order[i].ns))
	}
	errs = append(errs, delNS(l.swNS))
	return errors.Join(errs...)
}

// Name returns the host's name within the lab.
func (h *Host) Name() string { return h.name }

// NS returns the host's namespace name (as in /run/netns).
func (h *Host) NS() string { return h.ns }

// Lab returns the lab the host belongs to.
func (h *Host) Lab() *Lab { return h.lab }

// Iface returns the named interface of the host, or the zero Iface.
func (h *Host) Iface(name string) Iface {
	for _, i := range h.Ifaces {
		if i.Name == name {
			return i
		}
	}
	return Iface{}
}

// Command returns a command that runs inside the host (through
// `ip netns exec`, which also bind-mounts /etc/netns/<ns>/ files). The
// command runs in its own process group so Kill reaches its children.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Run runs a command inside the host and returns its combined output.
func (h *Host) Run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s: %s %s: %w: %s", h.name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Proc is a process started inside a host. Its output goes to the Output
// buffer (and to the files given to Start).
type Proc struct {
	Cmd  *exec.Cmd
	Host *Host
	done chan struct{}
	err  error
	mu   sync.Mutex
	out  bytes.Buffer
}

// Start starts a long-running command inside the host. The lab kills it at
// Close if it is still running.
func (h *Host) Start(name string, args ...string) (*Proc, error) {
	return h.start(h.Command(context.Background(), name, args...), name)
}

// start starts cmd, tracks it for Close and reaps it.
func (h *Host) start(cmd *exec.Cmd, name string) (*Proc, error) {
	p := &Proc{Cmd: cmd, Host: h, done: make(chan struct{})}
	cmd.Stdout = (*procWriter)(p)
	cmd.Stderr = (*procWriter)(p)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: %s: start %s: %w", h.name, name, err)
	}
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

type procWriter Proc

func (w *procWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}

// Output returns what the process has written so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// OutputFrom returns what the process has written from byte off on (all
// of it when off is 0), so a reader following a long run copies only what
// is new; off past the end gives "".
func (p *Proc) OutputFrom(off int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.out.Bytes()
	if off < 0 || off >= len(b) {
		if off <= 0 {
			return string(b)
		}
		return ""
	}
	return string(b[off:])
}

// WaitOutput waits until the process has written want or within has
// passed, and reports whether it was written. Output arrives through a
// pipe copied by another goroutine, so a line the process wrote before a
// reply seen elsewhere (a notify socket, a packet) may still be on its way.
func (p *Proc) WaitOutput(want string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !strings.Contains(p.Output(), want) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// PID returns the process ID (the command itself: `ip netns exec` execs it).
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns the process's exit error once Done is closed.
func (p *Proc) Err() error { <-p.done; return p.err }

// Signal sends sig to the process (not its group).
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	return syscall.Kill(p.PID(), sig)
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	_ = syscall.Kill(p.PID(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// Wait waits for the process to exit or the timeout, whichever is first, and
// reports whether it exited.
func (p *Proc) Wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Do runs f on a locked OS thread that has entered the host's network
// namespace. Sockets and netlink handles created inside f stay in that
// namespace after f returns; goroutines started inside f do not inherit it.
func (h *Host) Do(f func() error) error {
	return DoNS(h.ns, f)
}

// DoNS is Do for a namespace given by name.
func DoNS(name string, f func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("lab: open netns %s: %w", name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // the thread is discarded with the goroutine while locked
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("lab: setns %s: %w", name, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime destroys it.
			errc <- errors.Join(ferr, fmt.Errorf("lab: restore netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Sysctl writes a sysctl (path below /proc/sys, with slashes) inside the host.
func (h *Host) Sysctl(key, value string) error {
	return h.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
}

// SetLink sets one of the host's interfaces up or down, as `ip link set`
// does on the host (the peer keeps its carrier).
func (h *Host) SetLink(ifname string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return h.lab.ip("-n", h.ns, "link", "set", ifname, state)
}

// SetCable plugs or unplugs the cable of one of the host's interfaces: the
// switch-side end goes down, so the host sees its carrier drop (as when a
// cable or switch port fails) while its own configuration stays.
func (h *Host) SetCable(ifname string, connected bool) error {
	ifc := h.Iface(ifname)
	if ifc.Peer == "" {
		return fmt.Errorf("lab: host %s has no interface %s", h.name, ifname)
	}
	state := "down"
	if connected {
		state = "up"
	}
	return h.lab.ip("-n", h.lab.swNS, "link", "set", ifc.Peer, state)
}

func (l *Lab) ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func addNS(name string) error {
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: ip netns add %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// delNS kills whatever still runs in the namespace and deletes it.
func delNS(name string) error {
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	out, err := exec.Command("ip", "netns", "del", name).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("No such file")) {
		return fmt.Errorf("lab: ip netns del %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Sweep removes namespaces left by labs whose process no longer runs (a test
// binary killed by a timeout, a demo interrupted by SIGKILL). Namespaces of
// live processes are left alone. It returns the names it removed.
func Sweep() ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: sweep: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		m := nameRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := delNS(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// BuildVigil builds cmd/vigil into dir (CGO off, as released) with its BGP
// helper cmd/vigil-bgp beside it, where vigil looks for it, and returns
// vigil's path. go runs in the current directory, which must lie inside
// vigil's module.
func BuildVigil(dir string) (string, error) {
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/vigil-ha/vigil/cmd/vigil", "github.com/vigil-ha/vigil/cmd/vigil-bgp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cmd/vigil cmd/vigil-bgp: %w\n%s", err, out)
	}
	return filepath.Join(dir, "vigil"), nil
}
