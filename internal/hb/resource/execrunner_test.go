package resource

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An init script that starts a daemon in the background (`daemon &`) and
// exits leaves the daemon holding the script's stdout. The start must
// return when the script exits, as heartbeat waits for the script, not for
// the end of its output; and output is bounded.
func TestExecRunnerBackgroundChild(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "daemon.pid")
	sh := filepath.Join(dir, "init")
	body := "#!/bin/sh\necho starting\nsleep 60 &\necho $! > " + pidFile + "\nhead -c 3000000 /dev/zero\nexit 0\n"
	if err := os.WriteFile(sh, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type res struct {
		out []byte
		err error
	}
	ch := make(chan res, 1)
	start := time.Now()
	go func() { out, err := ExecRunner(ctx, sh, "start"); ch <- res{out, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("ExecRunner: %v", r.err)
		}
		if !strings.HasPrefix(string(r.out), "starting\n") || len(r.out) > maxOutput+len("starting\n") {
			t.Errorf("output: %d bytes, starting %q; want at most %d", len(r.out), r.out[:min(len(r.out), 20)], maxOutput)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("ExecRunner returned after %v, with the background child", d)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("ExecRunner still waits for the background child's end of output")
	}
}
