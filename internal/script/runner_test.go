package script

import (
	"context"
	"errors"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/cmdline"
)

func TestRunExitStatusAndArgs(t *testing.T) {
	d := t.TempDir()
	out := d + "/args"
	s := writeScript(t, d+"/s.sh", `#!/bin/sh
for a in "$@"; do printf '%s\n' "$a"; done > `+out+`
exit "$1"
`, 0o755)
	r := NewRunner(RunnerOptions{})
	args, err := cmdline.Split(s + ` 3 'a b' "it's"`)
	if err != nil {
		t.Fatal(err)
	}
	p := mustPrepare(t, Command{Args: args, Cred: Self()}, Policy{})
	res := r.Run(t.Context(), p, 5*time.Second, "INSTANCE", "VI_1", "MASTER", "100")
	if res.OK() || res.ExitCode != 3 || res.TimedOut || res.Err != nil {
		t.Fatalf("Run = %+v, want exit status 3", res)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"3", "a b", "it's", "INSTANCE", "VI_1", "MASTER", "100"}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")); diff != "" {
		t.Errorf("script arguments (-want +got):\n%s", diff)
	}

	ok := mustPrepare(t, Command{Args: []string{"/bin/true"}, Cred: Self()}, Policy{})
	if res := r.Run(t.Context(), ok, time.Second); !res.OK() {
		t.Errorf("/bin/true: %v", res)
	}
}

// TestRunEnvironment: scripts get only PATH, and start in "/".
func TestRunEnvironment(t *testing.T) {
	t.Setenv("VIGIL_TEST_SECRET", "leaked")
	d := t.TempDir()
	out := d + "/env"
	s := writeScript(t, d+"/s.sh", "#!/bin/sh\n/usr/bin/env > "+out+"\npwd >> "+out+"\n", 0o755)
	p := mustPrepare(t, Command{Args: []string{s}, Cred: Self()}, Policy{})
	if res := NewRunner(RunnerOptions{}).Run(t.Context(), p, 5*time.Second); !res.OK() {
		t.Fatalf("Run: %v", res)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if strings.Contains(got, "VIGIL_TEST_SECRET") {
		t.Errorf("the daemon's environment leaked into the script:\n%s", got)
	}
	if !strings.Contains(got, "PATH="+DefaultPath+"\n") {
		t.Errorf("script environment lacks PATH=%s:\n%s", DefaultPath, got)
	}
	if !strings.HasSuffix(got, "\n/\n") {
		t.Errorf("script did not start in /:\n%s", got)
	}
	// Besides PATH only what /bin/sh itself sets (PWD) may appear.
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && k != "PATH" && k != "PWD" {
			t.Errorf("unexpected variable %q in the script environment", line)
		}
	}
}

// TestRunTimeoutKillsGroup: a script that hangs, with a child that hangs too,
// is killed at its timeout together with the child; the runner returns.
func TestRunTimeoutKillsGroup(t *testing.T) {
	d := t.TempDir()
	pidFile := d + "/child"
	s := writeScript(t, d+"/hang.sh", `#!/bin/sh
sleep 600 &
echo $! > `+pidFile+`
sleep 600
`, 0o755)
	p := mustPrepare(t, Command{Args: []string{s}, Cred: Self()}, Policy{})
	r := NewRunner(RunnerOptions{KillGrace: 500 * time.Millisecond})
	start := time.Now()
	res := r.Run(t.Context(), p, 300*time.Millisecond)
	if !res.TimedOut || res.OK() {
		t.Fatalf("Run = %v, want timed out", res)
	}
	if res.Signal != syscall.SIGTERM {
		t.Errorf("script ended by %v, want SIGTERM", res.Signal)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Fatalf("Run returned after %v", el)
	}
	waitGone(t, res.PID, 5*time.Second)
	waitGone(t, readInt(t, pidFile), 5*time.Second)
}

// TestRunTimeoutIgnoringTerm: a script that ignores SIGTERM gets SIGKILL
// after the grace; a child that ignores SIGTERM is killed too, also when the
// script itself died of the SIGTERM (keepalived: kill(-pid, SIGKILL) then).
func TestRunTimeoutIgnoringTerm(t *testing.T) {
	tests := []struct {
		name       string
		leaderTrap string
		wantSignal syscall.Signal
	}{
		{"script and child ignore TERM", "trap '' TERM", syscall.SIGKILL},
		{"only the child ignores TERM", "", syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			pidFile := d + "/child"
			s := writeScript(t, d+"/stubborn.sh", `#!/bin/sh
`+tt.leaderTrap+`
sh -c 'trap "" TERM; echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; while :; do sleep 1; done' &
while :; do sleep 1; done
`, 0o755)
			p := mustPrepare(t, Command{Args: []string{s}, Cred: Self()}, Policy{})
			r := NewRunner(RunnerOptions{KillGrace: 300 * time.Millisecond})
			res := r.Run(t.Context(), p, 300*time.Millisecond)
			if !res.TimedOut || res.Signal != tt.wantSignal {
				t.Fatalf("Run = %+v, want timed out by %v", res, tt.wantSignal)
			}
			waitGone(t, readInt(t, pidFile), 5*time.Second)
		})
	}
}

// TestRunCancel: cancelling the context kills the script.
func TestRunCancel(t *testing.T) {
	p := mustPrepare(t, Command{Args: []string{"/bin/sleep", "600"}, Cred: Self()}, Policy{})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	res := NewRunner(RunnerOptions{}).Run(ctx, p, 0)
	if !errors.Is(res.Err, ErrCancelled) || res.OK() {
		t.Fatalf("Run = %v, want cancelled", res)
	}
	waitGone(t, res.PID, 5*time.Second)
}

// TestRunNoLeaks: many runs, some timing out, leave no zombie child and no
// goroutine behind.
func TestRunNoLeaks(t *testing.T) {
	r := NewRunner(RunnerOptions{KillGrace: 200 * time.Millisecond})
	ok := mustPrepare(t, Command{Args: []string{"/bin/true"}, Cred: Self()}, Policy{})
	fail := mustPrepare(t, Command{Args: []string{"/bin/false"}, Cred: Self()}, Policy{})
	hang := mustPrepare(t, Command{Args: []string{"/bin/sleep", "600"}, Cred: Self()}, Policy{})
	before := runtime.NumGoroutine()
	for i := 0; i < 30; i++ {
		if res := r.Run(t.Context(), ok, time.Second); !res.OK() {
			t.Fatalf("true: %v", res)
		}
		if res := r.Run(t.Context(), fail, time.Second); res.OK() || res.ExitCode != 1 {
			t.Fatalf("false: %v", res)
		}
	}
	for i := 0; i < 3; i++ {
		if res := r.Run(t.Context(), hang, 50*time.Millisecond); !res.TimedOut {
			t.Fatalf("sleep: %v", res)
		}
	}
	if zs := zombieChildren(t); len(zs) > 0 {
		t.Errorf("zombie children left: %v", zs)
	}
	// Timers' goroutines are gone once stopped; allow the runtime a moment.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestRunAsUser: a script with `user nobody` runs with nobody's uid, gid and
// only that gid as its group list.
func TestRunAsUser(t *testing.T) {
	requireRoot(t)
	nobody, err := LookupUser("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	d := secureDir(t)
	outDir := d + "/out"
	mustMkdir(t, outDir, 0o777)
	s := writeScript(t, d+"/id.sh", "#!/bin/sh\n/usr/bin/id -u > "+outDir+"/uid\n/usr/bin/id -G > "+outDir+"/groups\n", 0o755)
	p := mustPrepare(t, Command{Args: []string{s}, Cred: nobody, Pos: testPos, What: "vrrp_script id"}, Policy{Security: true})
	if res := NewRunner(RunnerOptions{}).Run(t.Context(), p, 5*time.Second); !res.OK() {
		t.Fatalf("Run as nobody: %v", res)
	}
	if uid := readInt(t, outDir+"/uid"); uid != int(nobody.UID) {
		t.Errorf("script ran as uid %d, want %d", uid, nobody.UID)
	}
	b, err := os.ReadFile(outDir + "/groups")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "65534" {
		t.Errorf("script groups %q, want only 65534", got)
	}
}

// TestRunAsCreatedUser: a user made for the test (useradd) runs a script;
// the user is removed afterwards.
func TestRunAsCreatedUser(t *testing.T) {
	requireRoot(t)
	useradd := netnstest.RequireCommand(t, "useradd")
	name := "vgtest" + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	if out, err := runCmd(useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := runCmd("/usr/sbin/userdel", name); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	c, err := DefaultCred(name, "", true) // as `script_user NAME` in global_defs
	if err != nil {
		t.Fatal(err)
	}
	d := secureDir(t)
	outDir := d + "/out"
	mustMkdir(t, outDir, 0o777)
	s := writeScript(t, d+"/who.sh", "#!/bin/sh\n/usr/bin/id -un > "+outDir+"/who\n", 0o755)
	p := mustPrepare(t, Command{Args: []string{s}, Cred: c}, Policy{Security: true})
	if res := NewRunner(RunnerOptions{}).Run(t.Context(), p, 5*time.Second); !res.OK() {
		t.Fatalf("Run: %v", res)
	}
	b, err := os.ReadFile(outDir + "/who")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != name {
		t.Errorf("script ran as %q, want %q", got, name)
	}
}

func TestRunStartFailure(t *testing.T) {
	d := t.TempDir()
	s := writeScript(t, d+"/s.sh", "#!/bin/sh\nexit 0\n", 0o755)
	p := mustPrepare(t, Command{Args: []string{s}, Cred: Self(), Pos: testPos, What: "notify"}, Policy{})
	if err := os.Remove(s); err != nil {
		t.Fatal(err)
	}
	res := NewRunner(RunnerOptions{}).Run(t.Context(), p, time.Second)
	if res.OK() || res.Err == nil || !strings.HasPrefix(res.Err.Error(), "notify: ") {
		t.Fatalf("Run of a removed script = %v; want an error naming the notify script", res)
	}
}
