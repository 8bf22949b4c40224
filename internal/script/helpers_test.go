package script

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

// requireRoot gates tests that change file ownership or run scripts as
// another user: skipped outside CI when not root, failed under CI=true.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		netnstest.Unavailable(t, "this test needs root")
	}
}

// secureDir returns a fresh directory that passes keepalived's
// check_security: root-owned, mode 0755, under root-owned directories.
// t.TempDir lives under /tmp, which is root-owned and sticky.
func secureDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	// t.TempDir and its parent are created 0700; open them so that a script
	// user other than root can reach the directory.
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p := d; p != "/"; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
			t.Fatalf("%s is group/world writable: cannot build a secure test directory", p)
		}
	}
	return d
}

func writeScript(t *testing.T, path, body string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
	return path
}

func rootCred() Cred { return Cred{UID: 0, GID: 0, Name: "root"} }

func mustPrepare(t *testing.T, c Command, pol Policy) *Prepared {
	t.Helper()
	p, err := Prepare(c, pol)
	if err != nil {
		t.Fatalf("Prepare(%q): %v", c.Args, err)
	}
	return p
}

// processGone reports whether pid has exited: it no longer exists, or is a
// zombie waiting for a parent that is not us (init in a container may not
// reap promptly).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running after %v", pid, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zombieChildren lists this process's children that are zombies: a Runner
// must reap every script.
func zombieChildren(t *testing.T) []int {
	t.Helper()
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var zs []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if ppid == self && f[0] == "Z" {
			zs = append(zs, pid)
		}
	}
	return zs
}

func readInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

func runCmd(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
