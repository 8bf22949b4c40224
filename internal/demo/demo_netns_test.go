package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/demo"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// demoCmd prepares `vigil demo args...` and registers a sweep of whatever a
// failed run leaves behind.
func demoCmd(t *testing.T, ctx context.Context, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	netnstest.RequireRoot(t)
	bin := netnstest.VigilBinary(t)
	cmd := exec.CommandContext(ctx, bin, append([]string{"demo"}, args...)...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		if removed, err := lab.Sweep(); err != nil || len(removed) > 0 {
			t.Logf("sweep after the demo: removed %v, err %v", removed, err)
		}
	})
	return cmd, &stdout, &stderr
}

// checkGone fails the test if anything of the demo with the given PID
// remains: namespaces, daemons, its temporary directory.
func checkGone(t *testing.T, pid int, bin, story string) {
	t.Helper()
	prefix := fmt.Sprintf("%s%d-", lab.Prefix, pid)
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("namespace %s is left after the demo", e.Name())
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 1 && args[0] == bin && args[1] == "run" {
			t.Errorf("a daemon of the demo still runs: %s: %s", p, strings.Join(args, " "))
		}
	}
	m := regexp.MustCompile(`(/\S*/vigil-demo-[0-9]+-[0-9]+)/node1/keepalived\.conf`).FindStringSubmatch(story)
	if m == nil {
		t.Errorf("the story does not name the demo's directory")
		return
	}
	if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo's directory %s is left (stat: %v)", m[1], err)
	}
}

// TestDemoFast runs `vigil demo --fast --json` as a newcomer would (with
// the fast timers) and checks that every step is told and measured, that
// the graceful stop lost no request, and that nothing is left afterwards.
func TestDemoFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd, stdout, stderr := demoCmd(t, ctx, "--fast", "--json")
	if err := cmd.Run(); err != nil {
		t.Fatalf("vigil demo --fast: %v", err)
	}
	story := stderr.String()
	checkGone(t, cmd.Process.Pid, cmd.Path, story)

	var sum demo.Summary
	if err := json.Unmarshal([]byte(stdout.String()), &sum); err != nil {
		t.Fatalf("summary: %v", err)
	}
	if !sum.OK || sum.VRRPVersion != 3 || sum.AdvertIntervalMS != 100 {
		t.Errorf("summary: ok %v, VRRPv%d, advert %v ms; want ok, VRRPv3, 100 ms", sum.OK, sum.VRRPVersion, sum.AdvertIntervalMS)
	}
	if want := fmt.Sprintf("%s%d-", lab.Prefix, cmd.Process.Pid); !strings.HasPrefix(sum.Namespaces, want) {
		t.Errorf("namespaces %q, want them named %s...", sum.Namespaces, want)
	}
	// RFC 5798 §6.1: 3 × 100 ms + (256−99) × 100 ms / 256.
	if got, want := sum.MasterDownBackupMS, 361.328; got != want {
		t.Errorf("Master_Down_Interval %v ms, want %v", got, want)
	}
	phases := map[string]demo.Phase{}
	for _, p := range sum.Phases {
		phases[p.Name] = p
	}
	for _, name := range []string{"power_cut", "preemption", "graceful_stop"} {
		p, ok := phases[name]
		if !ok {
			t.Errorf("no %s phase in the summary", name)
			continue
		}
		if p.MasterMS <= 0 || p.ClientMS <= 0 || p.Requests == 0 {
			t.Errorf("%s: new master after %v ms, client after %v ms, %d requests: not measured", name, p.MasterMS, p.ClientMS, p.Requests)
		}
	}
	if p := phases["power_cut"]; p.NewMaster != "node2" || p.FailedRequests == 0 {
		// With node1's cable pulled, requests go unanswered until node2 has
		// taken over: a demo that measured none did not cut the power.
		t.Errorf("power cut: new master %q, %d failed requests; want node2 and some failures", p.NewMaster, p.FailedRequests)
	}
	if p := phases["preemption"]; p.NewMaster != "node1" {
		t.Errorf("preemption: new master %q, want node1", p.NewMaster)
	}
	g := phases["graceful_stop"]
	if g.NewMaster != "node2" || g.ExitCode == nil || *g.ExitCode != 0 {
		t.Errorf("graceful stop: new master %q, exit code %v; want node2, 0", g.NewMaster, g.ExitCode)
	}
	// vigil's make-before-break: the VIP is never without a holder, so no
	// request goes unanswered. A request whose connection was opened with
	// node1 just before the switch can still be reset (no VRRP daemon
	// can move a TCP connection); a handful at most.
	//
	// Make before break: the old master keeps the VIP until it has heard
	// the new master and a grace after (engine.handoverGrace), so the new
	// master's gratuitous ARP is out before the VIP leaves node1. No
	// request may go unanswered.
	if n := g.Unanswered(); n != 0 {
		t.Errorf("graceful stop: %d of %d requests went unanswered (%v, failures %+v); make-before-break should leave none",
			n, g.Requests, g.Errors, g.Failures)
	}
	if g.CutRequests > 3 {
		t.Errorf("graceful stop: %d requests cut in flight; more than the few in flight at the switch", g.CutRequests)
	} else if g.CutRequests > 0 {
		t.Logf("graceful stop: %d requests cut in flight at the switch", g.CutRequests)
	}

	// The story a person reads tells each step with its numbers.
	if i := strings.Index(story, "=== Step 5"); i < 0 {
		t.Errorf("the story has no step 5")
	} else if want := fmt.Sprintf("Of the %d requests the client sent meanwhile, %d went unanswered", g.Requests, g.Unanswered()); !strings.Contains(story[i:], want) {
		t.Errorf("step 5 of the story does not say %q", want)
	}
	for _, re := range []string{
		`=== Step 1: start keepalived \(here: vigil\) on both nodes ===`,
		`node1 is MASTER, [0-9.]+ s after it started`,
		`node1# ip addr show eth0\n(?:      .*\n)*?      \s+inet 192\.168\.1\.100/24 .*eth0:1\n`,
		`=== Step 2: the client opens http://192\.168\.1\.100/ ===\n(.*\n)*.*client# curl http://192\.168\.1\.100/\n\s+Hello from node1 \(192\.168\.1\.105\)`,
		`=== Step 3: power cut on node1 ===\n(.*\n)*.*node1# kill -9 [0-9]+`,
		`node2 is MASTER: [0-9.]+ s after the power cut`,
		`Takeover measured: [0-9.]+ s from the cut to node2's MASTER \(expected 0\.261 s to 0\.361 s`,
		`=== Step 4: node1 comes back and takes the VIP back \(preemption\) ===`,
		`Preemption measured: [0-9.]+ s from node1's start to its MASTER`,
		`=== Step 5: graceful stop of node1 \(service keepalived stop\) ===\n(.*\n)*.*node1# kill -TERM [0-9]+`,
		`Handover measured: node2 MASTER [0-9.]+ s after SIGTERM`,
		`node1's vigil has exited with status 0`,
		`=== Cleaning up ===\n(.*\n)*.*deleted the namespaces`,
	} {
		if !regexp.MustCompile(re).MatchString(story) {
			t.Errorf("the story does not match %q", re)
		}
	}
}

// TestDemoInterrupted interrupts the demo in the middle of step 3, as
// Ctrl-C does, and checks that it cleans up and says so.
func TestDemoInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, stdout, stderr := demoCmd(t, ctx)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stdout, "=== Step 3")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit: %v, want status 130", err)
	}
	if want := "vigil demo: interrupted during step 3 (power cut on node1); everything it built has been removed"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not say %q", stderr.String(), want)
	}
	checkGone(t, cmd.Process.Pid, cmd.Path, stdout.String())
}

// TestDemoKeep checks that --keep leaves a working lab up until Ctrl-C: the
// client namespace it names reaches node1's page on the VIP.
func TestDemoKeep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd, stdout, _ := demoCmd(t, ctx, "--fast", "--keep")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stdout, "Press Ctrl-C")
	m := regexp.MustCompile(`ip netns exec (\S+client) curl`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("--keep does not say how to reach the client")
	}
	c := demo.NewClient(m[1], "http://"+demo.VIP+"/", 2*time.Second)
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.HasPrefix(body, "Hello from node1") && time.Now().Before(deadline) {
		// node1's vigil was started again: it preempts within
		// Master_Down_Interval.
		time.Sleep(100 * time.Millisecond)
		_, body = c.Fetch(ctx)
	}
	if !strings.HasPrefix(body, "Hello from node1") {
		t.Errorf("the kept lab's VIP answers %q, want node1's page", body)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("vigil demo --keep after Ctrl-C: %v, want exit status 0", err)
	}
	checkGone(t, cmd.Process.Pid, cmd.Path, stdout.String())
}

// TestDemoNeedsRoot runs the demo as nobody: it must refuse with a clear
// message before building anything.
func TestDemoNeedsRoot(t *testing.T) {
	netnstest.RequireRoot(t) // to switch to another user
	bin := netnstest.VigilBinary(t)
	dir, err := os.MkdirTemp("", "vigil-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	exe := filepath.Join(dir, "vigil")
	if err := copyFile(bin, exe); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "demo", "--fast")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	if want := "vigil demo: needs root"; !strings.Contains(string(out), want) {
		t.Errorf("output %q does not say %q", out, want)
	}
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// waitFor waits until out contains s.
func waitFor(t *testing.T, out *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the demo never printed %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
