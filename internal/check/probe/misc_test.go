package probe

import (
	"context"
	"fmt"
	"github.com/vigil-ha/vigil/internal/cmdline"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/netnstest"
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
	m := &Misc{Argv: argv, Timeout: 3 * time.Second}
	if r := m.Check(ctx); !r.OK {
		t.Fatalf("open port: %s", r.Reason)
	}
	closed := closedPort(t)
	m.Argv = []string{script, "127.0.0.1", strconv.Itoa(int(closed.Port()))}
	r := m.Check(ctx)
	if r.OK {
		t.Fatal("closed port: check succeeded")
	}
	wantReason(t, r.Reason, "exited with status 1")
	m.Argv = []string{script}
	if r := m.Check(ctx); r.OK {
		t.Fatal("missing arguments: check succeeded")
	}
}

func TestMiscExitCodes(t *testing.T) {
	noLeak(t)
	script := writeScript(t, t.TempDir(), "exit.sh", "#!/bin/sh\nexit \"$1\"\n")
	ctx := ctxT(t)
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
			r := (&Misc{Argv: []string{script, strconv.Itoa(tt.code)}, Timeout: 5 * time.Second, Dynamic: tt.dynamic}).Check(ctx)
			if diff := cmp.Diff(tt.want, res{r.OK, r.Weight}); diff != "" {
				t.Errorf("(-want +got) [%s]:\n%s", r.Reason, diff)
			}
		})
	}
	r := (&Misc{Argv: []string{"/nonexistent/script"}, Timeout: time.Second}).Check(ctx)
	if r.OK {
		t.Fatal("missing program succeeded")
	}
	wantReason(t, r.Reason, "/nonexistent/script")
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

func TestMiscTimeoutKillsGroup(t *testing.T) {
	noLeak(t)
	tests := []struct {
		name, script string
		// min is the least the check may take: misc_timeout, plus
		// keepalived's 2 s between SIGTERM and SIGKILL for a script that
		// ignores SIGTERM.
		min time.Duration
	}{
		{
			name:   "hanging script and its child",
			script: "#!/bin/sh\nsleep 1000 &\necho $! > \"$1/child\"\necho $$ > \"$1/self\"\nwait\n",
			min:    500 * time.Millisecond,
		},
		{
			name:   "script ignoring SIGTERM is killed 2s later",
			script: "#!/bin/sh\ntrap '' TERM\nsleep 1000 &\necho $! > \"$1/child\"\necho $$ > \"$1/self\"\nwhile :; do sleep 0.05; done\n",
			min:    2500 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			script := writeScript(t, dir, "hang.sh", tt.script)
			start := time.Now()
			r := (&Misc{Argv: []string{script, dir}, Timeout: 500 * time.Millisecond}).Check(ctxT(t))
			took := time.Since(start)
			if r.OK {
				t.Fatal("hanging script succeeded")
			}
			wantReason(t, r.Reason, "timed out after 500ms")
			if took < tt.min {
				t.Errorf("check returned after %v, want at least %v", took, tt.min)
			}
			self, child := readPID(t, filepath.Join(dir, "self")), readPID(t, filepath.Join(dir, "child"))
			deadline := time.Now().Add(5 * time.Second)
			for alive(self) || alive(child) {
				if time.Now().After(deadline) {
					t.Fatalf("after the timeout: script %d alive %v, its child %d alive %v", self, alive(self), child, alive(child))
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestMiscCancel(t *testing.T) {
	noLeak(t)
	script := writeScript(t, t.TempDir(), "sleep.sh", "#!/bin/sh\nexec sleep 1000\n")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if r := (&Misc{Argv: []string{script}, Timeout: time.Minute}).Check(ctx); r.OK {
		t.Fatal("canceled script succeeded")
	}
	// Well under the 1 min timeout: the cancel ended it.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Check returned %v after cancel", d)
	}
}

func TestMiscUser(t *testing.T) {
	if os.Geteuid() != 0 {
		netnstest.Unavailable(t, "running a script as another user needs root")
	}
	noLeak(t)
	dir := t.TempDir()
	// The user must reach the script: open up the temporary directories.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o777)
	script := writeScript(t, dir, "id.sh", "#!/bin/sh\nid -u > \"$1/uid\"\n")
	r := (&Misc{Argv: []string{script, dir}, Timeout: 5 * time.Second, Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}).Check(ctxT(t))
	if !r.OK {
		t.Fatalf("check failed: %s", r.Reason)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "uid"))
	if got := strings.TrimSpace(string(b)); got != "65534" {
		t.Errorf("script ran as uid %q, want 65534", got)
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
