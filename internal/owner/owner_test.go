package owner

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClaimIsExclusivePerNamespace(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !a.Alone() {
		t.Fatal("the first daemon is not alone")
	}
	k55, k56 := Key{"eth0", false, 55}, Key{"eth0", false, 56}
	if err := a.Claim([]Key{k55}); err != nil {
		t.Fatal(err)
	}
	// A daemon that is alone keeps the namespace until it has cleaned up.
	opened := make(chan error, 1)
	var b *Registry
	go func() {
		var err error
		b, err = Open(dir)
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("a second daemon opened before the first settled: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	a.Settle()
	err = <-opened
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Alone() {
		t.Fatal("the second daemon thinks it is alone")
	}
	err = b.Claim([]Key{k56, k55})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Key != k55 || ce.PID != os.Getpid() || !strings.Contains(err.Error(), "eth0 inet VRID 55 is already managed by vigil pid") {
		t.Fatalf("second claim: %v", err)
	}
	if len(b.Held()) != 0 {
		t.Fatalf("a failed claim kept %v", b.Held())
	}
	// Another family or VRID is another router.
	if err := b.Claim([]Key{k56, {"eth0", true, 55}}); err != nil {
		t.Fatal(err)
	}
	a.Release([]Key{k55})
	if err := b.Claim([]Key{k55}); err != nil {
		t.Fatalf("after the release: %v", err)
	}
}

func TestConfArg(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keepalived", "-n"}, KeepalivedConf},
		{[]string{"keepalived", "-f", "/x/k.conf", "-n"}, "/x/k.conf"},
		{[]string{"keepalived", "--use-file=/y.conf"}, "/y.conf"},
		{[]string{"keepalived", "--use-file", "/z.conf"}, "/z.conf"},
		{[]string{"/usr/sbin/keepalived", "-f/w.conf"}, "/w.conf"},
	} {
		if got := confArg(tc.args); got != tc.want {
			t.Errorf("confArg(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestCheckKeepalived(t *testing.T) {
	p := Process{PID: 42, Conf: "/etc/keepalived/keepalived.conf"}
	theirs := []Key{{"eth0", false, 55}, {"eth1", false, 9}}
	load := func(string) ([]Key, error) { return theirs, nil }
	if err := CheckKeepalived([]Process{p}, []Key{{"eth0", false, 56}}, load); err != nil {
		t.Fatalf("different VRIDs: %v", err)
	}
	err := CheckKeepalived([]Process{p}, []Key{{"eth0", false, 55}}, load)
	if err == nil || !strings.Contains(err.Error(), "keepalived (pid 42, /etc/keepalived/keepalived.conf) runs in this network namespace and manages eth0 inet VRID 55") {
		t.Fatalf("shared VRID: %v", err)
	}
	err = CheckKeepalived([]Process{p}, []Key{{"eth0", false, 55}}, func(string) ([]Key, error) { return nil, os.ErrNotExist })
	if err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("unreadable configuration: %v", err)
	}
}

// TestKeepalivedIsNotThisProgram: a process named keepalived that runs
// this program's executable (vigil installed as /usr/sbin/keepalived, and
// the parent that forked it) is not a keepalived in the way; one running
// another executable under that name is.
func TestKeepalivedIsNotThisProgram(t *testing.T) {
	if os.Getenv("OWNER_TEST_SLEEP") != "" {
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	dir := t.TempDir()
	start := func(target string, args ...string) int {
		t.Helper()
		sub := filepath.Join(dir, filepath.Base(target))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(sub, "keepalived")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(link, args...)
		cmd.Env = append(os.Environ(), "OWNER_TEST_SLEEP=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd.Process.Pid
	}
	vigil := start(self, "-test.run=^TestKeepalivedIsNotThisProgram$")
	other := start(sleep, "60")
	var procs []Process
	for deadline := time.Now().Add(10 * time.Second); ; {
		procs, err = Keepalived("")
		if err != nil {
			t.Fatal(err)
		}
		if found(procs, other) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !found(procs, other) {
		t.Errorf("keepalived (another executable, pid %d) not listed: %+v", other, procs)
	}
	if found(procs, vigil) {
		t.Errorf("this program named keepalived (pid %d) listed as a keepalived: %+v", vigil, procs)
	}
}

func found(procs []Process, pid int) bool {
	for _, p := range procs {
		if p.PID == pid {
			return true
		}
	}
	return false
}

// TestKeepalivedSkipsScriptsAndExitingProcesses: while vigil installed as
// /usr/sbin/keepalived starts under /etc/init.d/keepalived, the init script
// runs, named keepalived by the kernel (a script's process is named after
// the script) with the default configuration on no -f: the daemon refused
// to start, naming the script as a keepalived on its VRID. The persona's
// foreground parent, exiting once the pid file is written, keeps its name
// and namespace a moment after its executable link and command line are
// gone. Neither is a keepalived; another executable reached as keepalived
// is.
func TestKeepalivedSkipsScriptsAndExitingProcesses(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := NetnsID()
	if err != nil {
		t.Fatal(err)
	}
	proc := t.TempDir()
	link := func(target string, path ...string) {
		t.Helper()
		p := filepath.Join(append([]string{proc}, path...)...)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	write := func(data string, path ...string) {
		t.Helper()
		p := filepath.Join(append([]string{proc}, path...)...)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link(self, "self", "exe")
	other := "/bin/sh"
	for pid, exe := range map[string]string{"100": "", "200": other, "300": self, "400": "/usr/bin/dash"} {
		write("keepalived\n", pid, "comm")
		link("net:["+ns+"]", pid, "ns", "net")
		write(pid+" (keepalived) S 1 1 1 0", pid, "stat")
		switch pid {
		case "100": // exiting: no executable link, empty command line
			write("", pid, "cmdline")
		case "400": // the init script
			link(exe, pid, "exe")
			write("/bin/sh\x00/etc/init.d/keepalived\x00start\x00", pid, "cmdline")
		default:
			link(exe, pid, "exe")
			write("/usr/sbin/keepalived\x00-f\x00/etc/k.conf\x00", pid, "cmdline")
		}
	}
	procs, err := Keepalived(proc)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 || procs[0].PID != 200 || procs[0].Conf != "/etc/k.conf" {
		t.Errorf("Keepalived = %+v, want only pid 200 (another executable reached as keepalived) with /etc/k.conf", procs)
	}
}

// TestClaimWaitsForAStoppingOwner: /etc/init.d/keepalived restart sends
// SIGTERM, sleeps one second and starts the daemon again; a vigil master
// still handing over then held its virtual router, and the new daemon
// refused, leaving none once the old one exited. A daemon that claims a
// router whose owner is stopping waits for it; a live owner still makes it
// refuse at once, and a stopping owner that outlasts the wait too.
func TestClaimWaitsForAStoppingOwner(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	k := Key{"eth0", false, 55}
	if err := a.Claim([]Key{k}); err != nil {
		t.Fatal(err)
	}
	a.Settle()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.stoppingWait = 10 * time.Second
	var waits []Wait
	b.OnWait(func(w Wait) { waits = append(waits, w) })
	start := time.Now()
	var ce *ConflictError
	if err := b.Claim([]Key{k}); !errors.As(err, &ce) || time.Since(start) > 2*time.Second {
		t.Fatalf("claim beside a running owner: %v after %v, want a conflict at once", err, time.Since(start))
	}
	a.Stopping()
	claimed := make(chan error, 1)
	go func() { claimed <- b.Claim([]Key{k}) }()
	select {
	case err := <-claimed:
		t.Fatalf("claimed while the stopping owner still holds the router: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	a.Close()
	select {
	case err := <-claimed:
		if err != nil {
			t.Fatalf("after the stopping owner exited: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the claim still waits after the stopping owner exited")
	}
	// The wait is told as it begins (for the log: who, how long at
	// most) and as it ends; a running owner is no wait.
	if len(waits) != 2 || waits[0] != (Wait{Key: k, PID: os.Getpid(), Bound: 10 * time.Second}) ||
		waits[1].Key != k || waits[1].PID != os.Getpid() || !waits[1].Done || waits[1].Took < 200*time.Millisecond {
		t.Errorf("waits told: %+v; want its start (pid %d, bound 10s) and its end (done, 200 ms or more)", waits, os.Getpid())
	}
	// A stopping owner that outlasts the wait: a conflict naming it.
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b.Stopping()
	c.stoppingWait = 100 * time.Millisecond
	waits = nil
	c.OnWait(func(w Wait) { waits = append(waits, w) })
	if err := c.Claim([]Key{k}); !errors.As(err, &ce) || ce.PID != os.Getpid() {
		t.Fatalf("claim past the wait: %v, want a conflict naming pid %d", err, os.Getpid())
	}
	if len(waits) != 2 || waits[1].Done || waits[1].Took < 100*time.Millisecond {
		t.Errorf("waits told past the bound: %+v; want its start and an end not done", waits)
	}
}

// TestClaimStopsWaitingWithItsContext: a daemon told to stop while it
// waits for a stopping owner (a second restart within the first one's
// handover) gives up at once instead of waiting out the handover, so that
// its pid file does not refuse the start that follows.
func TestClaimStopsWaitingWithItsContext(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	k := Key{"eth0", false, 56}
	if err := a.Claim([]Key{k}); err != nil {
		t.Fatal(err)
	}
	a.Settle()
	a.Stopping()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.stoppingWait = 20 * time.Second
	var waits []Wait
	b.OnWait(func(w Wait) { waits = append(waits, w) })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	err = b.ClaimContext(ctx, []Key{k})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("claim whose context ends while it waits: %v after %v, want context.Canceled within 2 s", err, time.Since(start))
	}
	if len(b.Held()) != 0 {
		t.Errorf("keys held after a canceled claim: %v", b.Held())
	}
	if len(waits) != 2 || !waits[1].Canceled || waits[1].Done {
		t.Errorf("waits told: %+v; want its start and a canceled end", waits)
	}
}
