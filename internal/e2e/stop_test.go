package e2e_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// TestStopWithHungNotifyScript: a master whose notify_master hangs (the
// 60 s notify timeout) stops on SIGTERM as keepalived 2.2.7 does: it hands
// over, its notify_stop runs, the hung script is killed, and it exits.
// keepalived exits about 1 s after SIGTERM whatever its scripts do; vigil
// waited for the hung script up to a 5 s drain bound, then exited without
// running notify_stop (it waited behind the hung script).
func TestStopWithHungNotifyScript(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "stophung", 2)
	d := t.TempDir()
	pidFile, stopMark := d+"/hang.pid", d+"/stopped"
	hang := d + "/hang.sh"
	if err := os.WriteFile(hang, []byte("#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := d + "/stop.sh"
	if err := os.WriteFile(rec, []byte("#!/bin/sh\necho stop > "+stopMark+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := e2e.Tutorial(true)
	m.Extra = []string{"notify_master " + hang, "notify_stop " + rec}
	master := e.start(e2e.Vigil, 0, conf(m))
	backup := e.start(e2e.Vigil, 1, conf(e2e.Tutorial(false)))
	e.waitState(master, "VI_1", "MASTER", 10*time.Second)
	e.waitState(backup, "VI_1", "BACKUP", 10*time.Second)
	var pid int
	deadline := time.Now().Add(20 * time.Second)
	for pid == 0 {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if pid == 0 && time.Now().After(deadline) {
			t.Fatal("notify_master did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if code, err := master.Term(30 * time.Second); err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit %d, %v", code, err)
	}
	t.Logf("SIGTERM to exit: %v", time.Since(start).Round(time.Millisecond))
	if b, err := os.ReadFile(stopMark); err != nil || string(b) != "stop\n" {
		t.Errorf("notify_stop did not run: %q, %v\n%s", b, err, master.Log())
	}
	if err := syscall.Kill(pid, 0); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the hung notify_master (pid %d) outlived the daemon", pid)
	}
	e.waitState(backup, "VI_1", "MASTER", 10*time.Second)
}
