package procwatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		netnstest.Unavailable(t, "procwatch tests need root (the proc connector needs CAP_NET_ADMIN before Linux 6.6, and one test switches to user nobody)")
	}
}

// uniqueSleep copies /bin/sleep under a name no other process on the
// machine has, so that tests on a shared machine count only their own.
func uniqueSleep(t testing.TB) (path, comm string) {
	t.Helper()
	comm = fmt.Sprintf("vgs%d", rand.IntN(1e9))
	path = filepath.Join(t.TempDir(), comm)
	src, err := os.Open("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path, comm
}

type stamped struct {
	Change
	at time.Time
}

func startWatcher(t testing.TB, specs []Spec) (*Watcher, chan stamped) {
	t.Helper()
	ch := make(chan stamped, 1000)
	w, err := New(Options{Specs: specs, OnChange: func(name string, up bool) {
		ch <- stamped{Change{name, up}, time.Now()}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Watcher.Run did not return")
		}
	})
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Watcher not ready")
	}
	return w, ch
}

func expectChange(t testing.TB, ch chan stamped, want ...Change) []stamped {
	t.Helper()
	var got []stamped
	for range want {
		select {
		case c := <-ch:
			got = append(got, c)
		case <-time.After(10 * time.Second):
			t.Fatalf("waiting for %v, got %v", want, got)
		}
	}
	// Changes from one event come in spec order; compare as sets per call.
	g := make([]string, len(got))
	w := make([]string, len(want))
	for i := range got {
		g[i] = fmt.Sprint(got[i].Change)
		w[i] = fmt.Sprint(want[i])
	}
	sort.Strings(g)
	sort.Strings(w)
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("changes %v, want %v", g, w)
	}
	return got
}

func expectQuiet(t testing.TB, ch chan stamped, d time.Duration) {
	t.Helper()
	select {
	case c := <-ch:
		t.Fatalf("unexpected change %v", c.Change)
	case <-time.After(d):
	}
}

func startProc(t testing.TB, path string, args ...string) *osexec.Cmd {
	t.Helper()
	cmd := osexec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func kill(t testing.TB, cmd *osexec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// TestWatcherRealProcesses follows real processes through the proc
// connector: an initial scan, starts (fork+exec), exits, parameters.
func TestWatcherRealProcesses(t *testing.T) {
	requireRoot(t)
	bin, comm := uniqueSleep(t)
	pre := startProc(t, bin, "600") // running before the watcher: found by the scan

	pair := NewSpec("pair", comm)
	pair.Quorum = 2
	byArgs := NewSpec("byargs", bin)
	byArgs.Params = []string{"777"} // exact parameters, full_command implied
	_, ch := startWatcher(t, []Spec{pair, byArgs})
	expectChange(t, ch, Change{"pair", false}, Change{"byargs", false})

	p2 := startProc(t, bin, "777")
	expectChange(t, ch, Change{"pair", true}, Change{"byargs", true})
	p3 := startProc(t, bin, "7777") // counts for pair, not for byargs
	expectQuiet(t, ch, 300*time.Millisecond)

	kill(t, p2)
	expectChange(t, ch, Change{"byargs", false})
	kill(t, pre)
	expectChange(t, ch, Change{"pair", false})
	kill(t, p3)
	expectQuiet(t, ch, 300*time.Millisecond)
}

// TestWatcherTerminateDelay: a restart within terminate_delay is not a flap.
func TestWatcherTerminateDelay(t *testing.T) {
	requireRoot(t)
	bin, comm := uniqueSleep(t)
	s := NewSpec("svc", comm)
	s.TerminateDelay = 500 * time.Millisecond
	p := startProc(t, bin, "600")
	_, ch := startWatcher(t, []Spec{s})
	expectChange(t, ch, Change{"svc", true})
	kill(t, p)
	p2 := startProc(t, bin, "600")
	expectQuiet(t, ch, time.Second)
	kill(t, p2)
	start := time.Now()
	expectChange(t, ch, Change{"svc", false})
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Errorf("quorum lost %v after the exit, before terminate_delay 500ms", el)
	}
}

// renameEnv makes the test binary rename itself with prctl(PR_SET_NAME) on
// its main thread (init runs there) and sleep: the kernel reports the
// rename as a PROC_EVENT_COMM. (Writing /proc/self/comm sends no event.)
const renameEnv = "VIGIL_PROCWATCH_RENAME"

func init() {
	if name := os.Getenv(renameEnv); name != "" {
		b := append([]byte(name), 0)
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0); err != nil {
			os.Exit(3)
		}
		time.Sleep(time.Hour)
		os.Exit(0)
	}
}

// TestWatcherComm: a process renaming itself joins the tracker of its new
// name (the man page's firefox "Web Content" case) and leaves at exit.
func TestWatcherComm(t *testing.T) {
	requireRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("vgr%d", rand.IntN(1e9))
	_, ch := startWatcher(t, []Spec{NewSpec("renamed", name)})
	expectChange(t, ch, Change{"renamed", false})
	cmd := osexec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), renameEnv+"="+name)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	expectChange(t, ch, Change{"renamed", true})
	kill(t, cmd)
	expectChange(t, ch, Change{"renamed", false})
}

// dialEnv makes the test binary run a Watcher until it is ready and print
// the outcome.
const dialEnv = "VIGIL_PROCWATCH_DIAL"

func init() {
	if os.Getenv(dialEnv) != "" {
		w, err := New(Options{Specs: []Spec{NewSpec("x", "x")}, OnChange: func(n string, up bool) {
			fmt.Println("INITIAL", n, up)
		}})
		if err == nil {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			select {
			case <-w.Ready():
				cancel()
				err = <-done
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("timed out")
			}
			cancel()
		}
		fmt.Println("RESULT:", err)
		os.Exit(0)
	}
}

// TestWatcherUnprivileged runs a Watcher as nobody. Linux 6.6 opened the
// proc connector to unprivileged users ("connector/cn_proc: Allow non-root
// users access"); on older kernels the subscription is refused and the
// Watcher falls back to rescanning /proc. Either way it reports the
// initial state and runs.
func TestWatcherUnprivileged(t *testing.T) {
	requireRoot(t)
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(uts.Release[:])

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A copy nobody may execute.
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(d, "procwatch.test")
	src, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := osexec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), dialEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s := string(out)
	t.Logf("kernel %s, as nobody: %s", release, strings.TrimSpace(s))
	// From Linux 6.6 through process events; before, through the /proc
	// polling fallback: either way the Watcher works.
	if !strings.Contains(s, "INITIAL x false") || !strings.Contains(s, "RESULT: <nil>") {
		t.Errorf("unprivileged Watcher on Linux %s: %q; want it to work", release, s)
	}
}
