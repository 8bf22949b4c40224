// Package netnstest gives tests hosts made of network namespaces (see
// internal/lab) and the gates that decide whether a root-only test may run.
//
// Outside CI a test whose prerequisite is missing (not root, no `ip`, no
// keepalived binary) is skipped with the reason. With CI=true the same
// situation fails the test: CI must run every namespace test.
package netnstest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-ha/vigil/internal/lab"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips the test, or fails it under CI, because a prerequisite
// is missing.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("prerequisite missing under CI=true: %s", msg)
	}
	t.Skipf("skipped: %s", msg)
}

// RequireRoot gates a test on root and on the `ip` command.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "namespace tests need root")
	}
	RequireCommand(t, "ip")
	RequireCommand(t, "nft")
}

// RequireCommand gates a test on a program being installed.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/lib/heartbeat"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return filepath.Join(dir, name)
			}
		}
		Unavailable(t, "%s is not installed (scripts/setup installs it)", name)
	}
	return p
}

// IPVS is the one gate for tests that need the kernel's IP virtual server.
// This project's CI kernel has none, so these tests skip everywhere (also in
// CI) with the reason, and run on a host that has it.
func IPVS(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		t.Skip("skipped: the kernel has no IPVS (CONFIG_IP_VS); run on a host that has it")
	}
}

var sweepOnce sync.Once

// New returns an empty lab that is torn down when the test ends, also when it
// fails or panics. Leftovers of earlier killed runs are swept once per test
// binary.
func New(t testing.TB, name string) *lab.Lab {
	t.Helper()
	RequireRoot(t)
	sweepOnce.Do(func() {
		if removed, err := lab.Sweep(); err != nil {
			t.Logf("sweep: %v", err)
		} else if len(removed) > 0 {
			t.Logf("sweep: removed %d leftover namespaces: %v", len(removed), removed)
		}
	})
	l, err := lab.New(name)
	if err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("netnstest: teardown: %v", err)
		}
	})
	return l
}

// AddHost adds a host to the lab or fails the test.
func AddHost(t testing.TB, l *lab.Lab, name string, ifs ...lab.Iface) *lab.Host {
	t.Helper()
	h, err := l.AddHost(name, ifs...)
	if err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	return h
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binPrefix names the directories VigilBinary builds into, one per test
// process: binPrefix and the process's PID.
const binPrefix = "vigil-bin-"

// binDir returns a fresh directory under tmp for the binaries of process
// pid, after removing those of processes that have ended. A test binary
// has no hook that runs after its last test, so each run's binaries (some
// 50 MB) are removed by a later run rather than left behind for good.
func binDir(tmp string, pid int) (string, error) {
	old, _ := filepath.Glob(filepath.Join(tmp, binPrefix+"*"))
	for _, d := range old {
		p, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), binPrefix))
		if err != nil || p == pid {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(p))); errors.Is(err, fs.ErrNotExist) {
			os.RemoveAll(d)
		}
	}
	dir := filepath.Join(tmp, binPrefix+strconv.Itoa(pid))
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.Mkdir(dir, 0o700)
}

// VigilBinary builds cmd/vigil once per test binary (CGO off, as released)
// and returns its path, with the vigil-bgp helper (cmd/vigil-bgp) beside
// it, where vigil looks for it. The go build cache makes repeated builds
// cheap. $VIGIL_BINARY names a binary built beforehand instead (the VM
// tier, which has no toolchain worth running under emulation), with its
// helper beside it.
func VigilBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("VIGIL_BINARY"); p != "" {
			binPath = p
			if _, err := os.Stat(p); err != nil {
				binErr = fmt.Errorf("VIGIL_BINARY: %w", err)
			}
			return
		}
		dir, err := binDir(os.TempDir(), os.Getpid())
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = lab.BuildVigil(dir)
	})
	if binErr != nil {
		t.Fatalf("netnstest: %v", binErr)
	}
	return binPath
}
