package probe

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/cmdline"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/script"
)

// writeScript writes an executable script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// scriptMisc is a Misc that runs argv as the daemon does: prepared by
// script.Prepare as vigil's own user, run by a script.Runner.
func scriptMisc(t *testing.T, timeout time.Duration, argv ...string) *Misc {
	t.Helper()
	return &Misc{Argv: argv, Timeout: timeout, Run: ScriptRun(script.NewRunner(script.RunnerOptions{}), mustPrepare(t, argv...))}
}

// tutorialScript is the seed tutorial's MISC_CHECK script, with bash's
// /dev/tcp instead of nmap: two arguments, host and port; exit 0 when the
// port is open, 1 otherwise.
const tutorialScript = `#!/bin/bash
if [ $# -ne 2 ]; then
    echo "Error: Usage: $0 <host> <port>"
    exit 1
fi
host="$1"
port="$2"
if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    exit 0
else
    exit 1
fi
`

func TestMiscTutorialScript(t *testing.T) {
	noLeak(t)
	netnstest.RequireCommand(t, "bash")
	dir := t.TempDir()
	script := writeScript(t, dir, "test.sh", tutorialScript)
	l := listen(t, "127.0.0.1:0")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx := ctxT(t)
	// misc_path "/etc/keepalived/test.sh 192.168.118.131 80" as in the
	// tutorial: one quoted word, split into the command and its arguments.
	argv, err := cmdline.Split(fmt.Sprintf("%s 127.0.0.1 %d", script, ap(l.Addr()).Port()))
	if err != nil {
		t.Fatal(err)
	}
	if r := scriptMisc(t, 3*time.Second, argv...).Check(ctx); !r.OK {
		t.Fatalf("open port: %s", r.Reason)
	}
	closed := closedPort(t)
	r := scriptMisc(t, 3*time.Second, script, "127.0.0.1", strconv.Itoa(int(closed.Port()))).Check(ctx)
	if r.OK {
		t.Fatal("closed port: check succeeded")
	}
	wantReason(t, r.Reason, "exited with status 1")
	if r := scriptMisc(t, 3*time.Second, script).Check(ctx); r.OK {
		t.Fatal("missing arguments: check succeeded")
	}
}

// TestMiscExitCodes is check_misc.c's reading of an exit status, over a
// fake runner returning it.
func TestMiscExitCodes(t *testing.T) {
	type res struct {
		OK     bool
		Weight *int
	}
	w := func(v int) *int { return &v }
	tests := []struct {
		code    int
		dynamic bool
		want    res
	}{
		{0, false, res{OK: true}},
		{1, false, res{}},
		{2, false, res{}},
		{255, false, res{}},
		// keepalived.conf(5) misc_dynamic: 0 success, weight unchanged;
		// 1 failure; 2-255 success with weight exit status - 2.
		{0, true, res{OK: true}},
		{1, true, res{}},
		{2, true, res{OK: true, Weight: w(0)}},
		{12, true, res{OK: true, Weight: w(10)}},
		{255, true, res{OK: true, Weight: w(253)}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("exit %d dynamic %v", tt.code, tt.dynamic), func(t *testing.T) {
			run := func(context.Context, []string) (int, error) { return tt.code, nil }
			r := (&Misc{Argv: []string{"/x"}, Timeout: time.Second, Dynamic: tt.dynamic, Run: run}).Check(context.Background())
			if diff := cmp.Diff(tt.want, res{r.OK, r.Weight}); diff != "" {
				t.Errorf("(-want +got) [%s]:\n%s", r.Reason, diff)
			}
		})
	}
}

// TestMiscScriptRun runs real scripts through ScriptRun: the exit status
// reaches the check, a script killed by a signal or gone since it was
// prepared fails it with a reason, and a Misc without a runner fails.
func TestMiscScriptRun(t *testing.T) {
	noLeak(t)
	dir := t.TempDir()
	exit := writeScript(t, dir, "exit.sh", "#!/bin/sh\nexit \"$1\"\n")
	ctx := ctxT(t)
	m := scriptMisc(t, 5*time.Second, exit, "12")
	m.Dynamic = true
	if r := m.Check(ctx); !r.OK || r.Weight == nil || *r.Weight != 10 {
		t.Errorf("exit 12 with misc_dynamic: %+v, want OK with weight 10", r)
	}
	kill := writeScript(t, dir, "kill.sh", "#!/bin/sh\nkill -KILL $$\n")
	r := scriptMisc(t, 5*time.Second, kill).Check(ctx)
	if r.OK {
		t.Fatal("script killed by a signal succeeded")
	}
	wantReason(t, r.Reason, "killed by signal 9")
	gone := writeScript(t, dir, "gone.sh", "#!/bin/sh\nexit 0\n")
	m = scriptMisc(t, 5*time.Second, gone)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	r = m.Check(ctx)
	if r.OK {
		t.Fatal("script removed after Prepare succeeded")
	}
	wantReason(t, r.Reason, gone)
	if r := (&Misc{Argv: []string{exit, "0"}}).Check(ctx); r.OK {
		t.Fatal("Misc without Run succeeded")
	}
}

func mustPrepare(t *testing.T, argv ...string) *script.Prepared {
	t.Helper()
	p, err := script.Prepare(script.Command{Args: argv, Cred: script.Self(), What: "misc_path"}, script.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	st := s[i+2]
	return st != 'Z' && st != 'X'
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMiscTimeoutKillsGroup: misc_timeout ends the run through the context
// ScriptRun passes on, and the runner kills the script's whole group
// (script's own tests cover the SIGTERM-then-SIGKILL grace and the user).
func TestMiscTimeoutKillsGroup(t *testing.T) {
	noLeak(t)
	dir := t.TempDir()
	hang := writeScript(t, dir, "hang.sh", "#!/bin/sh\nsleep 1000 &\necho $! > \"$1/child\"\necho $$ > \"$1/self\"\nwait\n")
	start := time.Now()
	r := scriptMisc(t, 500*time.Millisecond, hang, dir).Check(ctxT(t))
	took := time.Since(start)
	if r.OK {
		t.Fatal("hanging script succeeded")
	}
	wantReason(t, r.Reason, "timed out after 500ms")
	if took < 500*time.Millisecond {
		t.Errorf("check returned after %v, before misc_timeout", took)
	}
	self, child := readPID(t, filepath.Join(dir, "self")), readPID(t, filepath.Join(dir, "child"))
	deadline := time.Now().Add(5 * time.Second)
	for alive(self) || alive(child) {
		if time.Now().After(deadline) {
			t.Fatalf("after the timeout: script %d alive %v, its child %d alive %v", self, alive(self), child, alive(child))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMiscCancel(t *testing.T) {
	noLeak(t)
	sleep := writeScript(t, t.TempDir(), "sleep.sh", "#!/bin/sh\nexec sleep 1000\n")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	r := scriptMisc(t, time.Minute, sleep).Check(ctx)
	if r.OK {
		t.Fatal("canceled script succeeded")
	}
	wantReason(t, r.Reason, context.Canceled.Error())
	// Well under the 1 min timeout: the cancel ended it.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Check returned %v after cancel", d)
	}
}

func TestMiscRunFunc(t *testing.T) {
	var got []string
	m := &Misc{Argv: []string{"/x", "a"}, Timeout: time.Second, Dynamic: true, Run: func(ctx context.Context, argv []string) (int, error) {
		got = argv
		if _, ok := ctx.Deadline(); !ok {
			t.Error("no deadline on the run's context")
		}
		return 7, nil
	}}
	r := m.Check(context.Background())
	if !r.OK || r.Weight == nil || *r.Weight != 5 {
		t.Errorf("result %+v, want OK with weight 5", r)
	}
	if diff := cmp.Diff([]string{"/x", "a"}, got); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
}
