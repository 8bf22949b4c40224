// Package hblab runs Debian's heartbeat 3.0.6 daemon inside a lab host (a
// network namespace) with its own mount and UTS namespaces, so that several
// heartbeat nodes run on one machine without touching the real /etc/ha.d,
// /run or /var/lib/heartbeat. It is used by the interop and capture tests.
//
// Concurrency: a Node is used by one test goroutine.
package hblab

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// Binary is where Debian installs the heartbeat daemon.
const Binary = "/usr/libexec/heartbeat/heartbeat"

// Files are the three configuration files of a heartbeat node.
type Files struct {
	HaCf, HaResources, AuthKeys string
	// Extra files, by path relative to /etc/ha.d (e.g.
	// "resource.d/web"), written mode 0755.
	Extra map[string]string
}

// Node is one heartbeat daemon in a lab host.
type Node struct {
	Host *lab.Host
	Name string // uname -n inside the node
	Dir  string // per-node root: etc/ (=/etc/ha.d), run/ (=/run), lib/ (=/var/lib/heartbeat)
	Iso  lab.Isolation
	Proc *lab.Proc
	t    testing.TB
}

// Require gates a test on the heartbeat binary (and root, through netnstest).
func Require(t testing.TB) {
	t.Helper()
	netnstest.RequireRoot(t)
	if _, err := os.Stat(Binary); err != nil {
		netnstest.Unavailable(t, "heartbeat is not installed (%s; scripts/setup installs it)", Binary)
	}
	netnstest.RequireCommand(t, "cl_status")
	netnstest.RequireCommand(t, "unshare")
	netnstest.RequireCommand(t, "nsenter")
}

// New prepares (does not start) a heartbeat node called name in host h.
func New(t testing.TB, h *lab.Host, name string, f Files) *Node {
	t.Helper()
	dir := t.TempDir()
	n := &Node{Host: h, Name: name, Dir: dir, t: t}
	etc, run, lib := filepath.Join(dir, "etc"), filepath.Join(dir, "run"), filepath.Join(dir, "lib")
	if err := copyTree("/etc/ha.d", etc); err != nil {
		t.Fatalf("hblab: %v", err)
	}
	for name, body := range map[string]string{"ha.cf": f.HaCf, "haresources": f.HaResources, "authkeys": f.AuthKeys} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o600); err != nil {
			t.Fatalf("hblab: %v", err)
		}
	}
	for rel, body := range f.Extra {
		p := filepath.Join(etc, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatalf("hblab: %v", err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatalf("hblab: %v", err)
		}
	}
	uid, gid := hacluster(t)
	for _, d := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{
		{run, 0o755, 0, 0},
		{filepath.Join(run, "heartbeat"), 0o750, uid, gid},
		{filepath.Join(run, "heartbeat", "ccm"), 0o750, uid, gid},
		{filepath.Join(run, "heartbeat", "crm"), 0o750, uid, gid},
		{filepath.Join(run, "heartbeat", "dopd"), 0o750, uid, gid},
		{filepath.Join(run, "crm"), 0o750, uid, gid},
		{lib, 0o755, 0, 0},
		{filepath.Join(lib, "api"), 0o755, 0, 0},
		{filepath.Join(lib, "casual"), 0o755, 0, 0},
		{filepath.Join(lib, "ccm"), 0o750, uid, gid},
		{filepath.Join(lib, "ckpt"), 0o755, 0, 0},
		{filepath.Join(lib, "cores"), 0o755, 0, 0},
		{filepath.Join(lib, "cores", "root"), 0o700, 0, 0},
		{filepath.Join(lib, "cores", "hacluster"), 0o700, uid, gid},
		{filepath.Join(lib, "cores", "nobody"), 0o700, 65534, 65534},
		{filepath.Join(lib, "crm"), 0o750, uid, gid},
		{filepath.Join(lib, "lrm"), 0o755, 0, 0},
		{filepath.Join(lib, "pengine"), 0o750, uid, gid},
	} {
		if err := lab.MkdirOwned(d.path, d.mode, d.uid, d.gid); err != nil {
			t.Fatalf("hblab: %v", err)
		}
	}
	// The temp dir itself must be traversable by hacluster's children.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("hblab: %v", err)
	}
	n.Iso = lab.Isolation{
		Hostname: name,
		Binds: []lab.Bind{
			{Source: etc, Target: "/etc/ha.d"},
			{Source: run, Target: "/run"},
			{Source: lib, Target: "/var/lib/heartbeat"},
		},
	}
	t.Cleanup(n.Kill)
	return n
}

func hacluster(t testing.TB) (int, int) {
	u, err := user.Lookup("hacluster")
	if err != nil {
		t.Fatalf("hblab: user hacluster: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// Start starts heartbeat in the foreground (-f) and waits until cl_status
// answers.
func (n *Node) Start() {
	n.t.Helper()
	p, err := n.Host.StartIsolated(n.Iso, Binary, "-f")
	if err != nil {
		n.t.Fatalf("hblab: %v", err)
	}
	n.Proc = p
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := n.ClStatus("hbstatus"); err == nil && strings.Contains(out, "running") {
			return
		}
		if p.Wait(200 * time.Millisecond) {
			n.t.Fatalf("hblab: heartbeat on %s exited: %v\n%s\n%s", n.Name, p.Err(), p.Output(), n.Log())
		}
	}
	n.t.Fatalf("hblab: heartbeat on %s: cl_status never answered\n%s", n.Name, n.Log())
}

// ClStatus runs cl_status beside the daemon.
func (n *Node) ClStatus(args ...string) (string, error) {
	if n.Proc == nil {
		return "", fmt.Errorf("hblab: %s not started", n.Name)
	}
	return lab.RunBeside(n.Proc, "cl_status", args...)
}

// Stop stops heartbeat gracefully (SIGTERM, as `heartbeat -k` does) and
// waits for it to exit (it releases its resources first).
func (n *Node) Stop(timeout time.Duration) error {
	if n.Proc == nil {
		return nil
	}
	_ = n.Proc.Signal(syscall.SIGTERM)
	if !n.Proc.Wait(timeout) {
		return fmt.Errorf("hblab: heartbeat on %s did not stop within %v", n.Name, timeout)
	}
	return nil
}

// Kill kills heartbeat and every process of its group.
func (n *Node) Kill() {
	if n.Proc != nil {
		n.Proc.Kill()
		// Children (ccm, resource scripts) live in their own groups too.
		killNamespaceLeftovers(n.Host)
	}
}

func killNamespaceLeftovers(h *lab.Host) {
	out, err := exec.Command("ip", "netns", "pids", h.NS()).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			if comm, err := os.ReadFile("/proc/" + f + "/comm"); err == nil && strings.HasPrefix(string(comm), "heartbeat") {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// Log returns heartbeat's log file (ha.cf must say `logfile /var/lib/heartbeat/ha-log`).
func (n *Node) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "lib", "ha-log"))
	d, _ := os.ReadFile(filepath.Join(n.Dir, "lib", "ha-debug"))
	return string(b) + string(d)
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}
