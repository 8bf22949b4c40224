package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// startSleep starts an unrelated long-lived process (sleep) and returns its
// pid; the test kills it at the end.
func startSleep(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep to start: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// TestStalePidFileOfAnotherProgram: a daemon killed with SIGKILL leaves its
// pid file; when another program has taken the pid since, vigil must start
// (writing its own pid) and the heartbeat persona must neither report it
// running nor signal it (`heartbeat -k` used to SIGTERM it and wait for it
// for ever, `-r` to SIGHUP it). heartbeat checks /proc/PID/exe the same way.
func TestStalePidFileOfAnotherProgram(t *testing.T) {
	other := startSleep(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "vigil.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(other)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid := runningPid(pidFile); pid != 0 {
		t.Errorf("runningPid = %d, the pid of sleep; want 0", pid)
	}
	var out, errb bytes.Buffer
	if code := heartbeatStop(pidFile, &out, &errb); code != 0 || !strings.Contains(out.String(), "stopped") {
		t.Errorf("heartbeat -k: exit %d, %q %q", code, out.String(), errb.String())
	}
	if !alive(other) {
		t.Fatal("heartbeat -k signalled the unrelated process named in the stale pid file")
	}
	cleanup, err := writePidFiles([]string{pidFile})
	if err != nil {
		t.Fatalf("writePidFiles over a stale pid file: %v", err)
	}
	defer cleanup()
	if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file holds %q, want this process's pid %d", b, os.Getpid())
	}
}

// TestPidFileOfRunningDaemon: a pid file naming a live vigil (here this test
// binary, a build of vigil) still counts as a running daemon.
func TestPidFileOfRunningDaemon(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "heartbeat.pid")
	self := strconv.Itoa(os.Getpid())
	if err := os.WriteFile(pidFile, []byte(self+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid := runningPid(pidFile); pid != os.Getpid() {
		t.Errorf("runningPid = %d, want %d (this vigil)", pid, os.Getpid())
	}
}

// TestPidFilePlantedSymlink: a pid file path in a world-writable directory
// may hold a symlink planted by another user; root writing the pid through
// it would overwrite any file. The link is replaced by a regular file.
func TestPidFilePlantedSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "vigil.pid")
	if err := os.Symlink(victim, pidFile); err != nil {
		t.Fatal(err)
	}
	cleanup, err := writePidFiles([]string{pidFile})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("pid written through the planted symlink: victim holds %q", b)
	}
	fi, err := os.Lstat(pidFile)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Fatalf("pid file: %v, %v; want a regular file of mode 0644", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file holds %q", b)
	}
}

// TestHeartbeatStatusNodeName: `heartbeat -s` names the node as heartbeat
// does, in lower case (seed 004's hosts are HA1 and HA2: heartbeat says
// "is running on ha1 [ha1]...").
func TestHeartbeatStatusNodeName(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "heartbeat.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	want := "heartbeat OK [pid " + strconv.Itoa(os.Getpid()) + " et al] is running on ha1 [ha1]...\n"
	if code := heartbeatStatus(pidFile, "HA1", &out); code != 0 || out.String() != want {
		t.Errorf("heartbeat -s: exit %d, %q, want %q", code, out.String(), want)
	}
}
