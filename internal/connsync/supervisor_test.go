package connsync

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeConntrackd stands in for conntrackd: without a command it serves
// the control socket (python3) until killed; every command is appended to
// LOG, and -s prints statistics in conntrackd's layout, or never answers
// while the file HANG exists.
const fakeConntrackd = `#!/bin/sh
LOG=%LOG%
conf=$2
cmd=$3
if [ -z "$cmd" ]; then
	echo "start $$" >> $LOG
	exec python3 -c '
import socket, sys, os, signal, time
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.bind(p); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
' %SOCK%
fi
printf "%s\n" "$cmd" >> $LOG
if [ "$cmd" = "-s" ]; then
	[ -e %HANG% ] && exec sleep 60
	cat <<EOS
cache internal:
current active connections:	          12
connections created:		           0	failed:	           0

cache external:
current active connections:	           7
connections created:		           0	failed:	           0

UDP traffic (active device=eth9):
                   8 Bytes sent                    $(date +%s%N | cut -c1-12) Bytes recv
                   1 Pckts sent                    0 Pckts recv
                   0 Error send                    3 Error recv
EOS
fi
`

func TestSupervisor(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("python3 serves the fake control socket")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log")
	spec := Spec{Interface: "lo", Peer: netip.MustParseAddr("127.0.0.2"), Source: netip.MustParseAddr("127.0.0.1"),
		Port: 3780, Dir: filepath.Join(dir, "run"), Timeout: 5 * time.Second, Follow: "VI_1"}
	script := strings.NewReplacer("%LOG%", logPath, "%SOCK%", spec.SocketPath(), "%HANG%", filepath.Join(dir, "hang")).Replace(fakeConntrackd)
	spec.Conntrackd = filepath.Join(dir, "conntrackd")
	if err := os.WriteFile(spec.Conntrackd, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s := New(spec, slog.New(slog.DiscardHandler))
	s.PollEvery, s.RestartDelay = 100*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if st := s.Status(); st.Alive {
			t.Error("conntrackd still alive after Run returned")
		}
	}()
	commands := func() []string {
		b, _ := os.ReadFile(logPath)
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "-s" && l != "" {
				out = append(out, strings.Fields(l)[0])
			}
		}
		return out
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("%s: commands %v, status %+v", what, commands(), s.Status())
	}
	has := func(want string) func() bool {
		return func() bool { return strings.Join(commands(), " ") == want }
	}

	s.SetRole(RoleBackup)
	waitFor("BACKUP: shorten timeouts, then request a resync", has("start -t -n"))
	s.SetRole(RoleMaster)
	waitFor("MASTER: commit, flush, resync, bulk send", has("start -t -n -c -f -R -B"))
	waitFor("statistics read", func() bool { st := s.Status(); return st.StatsOK && st.Stats.Internal == 12 && st.Stats.External == 7 })
	st := s.Status()
	if st.LastResync.IsZero() || st.Role != RoleMaster || !st.Alive || st.Stats.RecvErrors != 3 {
		t.Errorf("status after MASTER: %+v", st)
	}
	if w := st.Warnings(time.Now()); len(w) != 0 {
		t.Errorf("warnings with a live conntrackd: %v", w)
	}

	// conntrackd dies: restarted, counted, and the role applied again.
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor("restart re-applies MASTER", has("start -t -n -c -f -R -B start -c -f -R -B"))
	if st := s.Status(); st.Restarts != 1 || !strings.Contains(st.LastExit, "killed") {
		t.Errorf("after a SIGKILL: restarts %d, last exit %q", st.Restarts, st.LastExit)
	}
	s.SetRole(RoleFault)
	waitFor("FAULT: shorten timeouts", has("start -t -n -c -f -R -B start -c -f -R -B -t"))

	// A reload that changes nothing restarts nothing.
	if s.SetSpec(spec) {
		t.Error("SetSpec with the running spec reports a change")
	}
	// A changed peer: the configuration is written again, conntrackd alone
	// restarts (not counted as a death) and, as BACKUP, asks the peer for
	// a full resync.
	s.SetRole(RoleBackup)
	waitFor("BACKUP again", has("start -t -n -c -f -R -B start -c -f -R -B -t -t -n"))
	pid := s.Status().PID
	changed := spec
	changed.Peer, changed.Port = netip.MustParseAddr("127.0.0.3"), 3781
	if !s.SetSpec(changed) {
		t.Fatal("SetSpec with a new peer reports no change")
	}
	waitFor("a new conntrackd that asks for a resync", has("start -t -n -c -f -R -B start -c -f -R -B -t -t -n start -t -n"))
	conf, _ := os.ReadFile(spec.ConfPath())
	if !strings.Contains(string(conf), "IPv4_Destination_Address 127.0.0.3\n\t\tPort 3781") {
		t.Errorf("conntrackd.conf after the reload:\n%s", conf)
	}
	if st := s.Status(); st.Restarts != 1 || st.PID == pid || st.Spec.Peer != changed.Peer {
		t.Errorf("after SetSpec: restarts %d (want 1: a reload is no death), pid %d (was %d), peer %s", st.Restarts, st.PID, pid, st.Spec.Peer)
	}
}

// A conntrackd that stops answering (stopped, deadlocked) keeps its
// process: the supervisor kills it after hungPolls unanswered statistics
// reads, says why, and the new one follows the role again (a BACKUP asks
// its peer for a resync).
func TestSupervisorKillsHungConntrackd(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("python3 serves the fake control socket")
	}
	dir := t.TempDir()
	logPath, hang := filepath.Join(dir, "log"), filepath.Join(dir, "hang")
	spec := Spec{Interface: "lo", Peer: netip.MustParseAddr("127.0.0.2"), Source: netip.MustParseAddr("127.0.0.1"),
		Port: 3780, Dir: filepath.Join(dir, "run"), Timeout: 300 * time.Millisecond}
	script := strings.NewReplacer("%LOG%", logPath, "%SOCK%", spec.SocketPath(), "%HANG%", hang).Replace(fakeConntrackd)
	spec.Conntrackd = filepath.Join(dir, "conntrackd")
	if err := os.WriteFile(spec.Conntrackd, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s := New(spec, slog.New(slog.DiscardHandler))
	s.PollEvery, s.RestartDelay = 100*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, cond func(Status) bool) Status {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if st := s.Status(); cond(st) {
				return st
			}
		}
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%s: status %+v, commands %q", what, s.Status(), b)
		return Status{}
	}
	s.SetRole(RoleBackup)
	st := waitFor("BACKUP applied, statistics read", func(st Status) bool { return st.Role == RoleBackup && st.StatsOK })
	if err := os.WriteFile(hang, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := waitFor("the hung conntrackd is killed and restarted", func(got Status) bool {
		return got.Restarts == 1 && got.Alive && got.PID != st.PID
	})
	if !strings.Contains(got.LastExit, "did not answer on its control socket 2 times in a row") {
		t.Errorf("last exit %q", got.LastExit)
	}
	if err := os.Remove(hang); err != nil {
		t.Fatal(err)
	}
	waitFor("the new conntrackd asks for a resync", func(Status) bool {
		b, _ := os.ReadFile(logPath)
		l := string(b)
		i := strings.LastIndex(l, "start ")
		return i > 0 && strings.Contains(strings.ReplaceAll(l[i:], "-s\n", ""), "-t\n-n\n")
	})
}

func TestWarnings(t *testing.T) {
	now := time.Now()
	st := Status{Spec: Spec{Interface: "eth2"}, Restarts: 3, LastExit: "signal: killed"}
	if got := strings.Join(st.Warnings(now), "; "); got != "conntrackd is not running (signal: killed); restarted 3 times" {
		t.Errorf("dead: %q", got)
	}
	st = Status{Spec: Spec{Interface: "eth2"}, Alive: true, LinkKnown: true, Started: now.Add(-time.Minute), PeerHeard: now.Add(-20 * time.Second), StatsOK: true}
	if got := strings.Join(st.Warnings(now), "; "); got != "sync link eth2 is down; nothing heard from the sync peer for 20s" {
		t.Errorf("link down: %q", got)
	}
}

func TestRender(t *testing.T) {
	s := Spec{Interface: "eth2", Peer: netip.MustParseAddr("10.9.0.2"), Source: netip.MustParseAddr("10.9.0.1"), Port: 3780,
		Dir: "/run/vigil/conntrackd", Accept: []netip.Addr{netip.MustParseAddr("192.168.40.131"), netip.MustParseAddr("fd00::2")}}
	got := Render(s)
	for _, want := range []string{"Mode FTFW {", "UDP {\n\t\tIPv4_address 10.9.0.1\n\t\tIPv4_Destination_Address 10.9.0.2\n\t\tPort 3780\n\t\tInterface eth2",
		"LockFile /run/vigil/conntrackd/conntrackd.lock", "Path /run/vigil/conntrackd/conntrackd.ctl",
		"Protocol Accept {\n\t\t\tTCP\n\t\t\tUDP\n", "Address Accept {\n\t\t\tIPv4_address 192.168.40.131\n\t\t\tIPv6_address fd00::2\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("conntrackd.conf lacks %q:\n%s", want, got)
		}
	}
	s.Peer, s.McastGroup = netip.Addr{}, netip.MustParseAddr("225.0.0.50")
	if got := Render(s); !strings.Contains(got, "Multicast {\n\t\tIPv4_address 225.0.0.50\n\t\tGroup 3780\n\t\tIPv4_interface 10.9.0.1\n") {
		t.Errorf("multicast:\n%s", got)
	}
}

func TestParseStats(t *testing.T) {
	out := "cache internal:\ncurrent active connections:\t          31\nconnections created:\t\t  40\tfailed:\t 0\n\n" +
		"cache external:\ncurrent active connections:\t           2\n\ntraffic processed:\n                   0 Bytes                         0 Pckts\n\n" +
		"UDP traffic (active device=eth9):\n                  32 Bytes sent                  128 Bytes recv\n" +
		"                   4 Pckts sent                    0 Pckts recv\n                   1 Error send                    0 Error recv\n\n" +
		"message tracking:\n                   0 Malformed msgs                    5 Lost msgs\n"
	st, ok := ParseStats(out)
	want := Stats{Internal: 31, External: 2, BytesSent: 32, BytesRecv: 128, SendErrors: 1, LostMsgs: 5}
	if !ok || st != want {
		t.Errorf("ParseStats = %+v, %v; want %+v", st, ok, want)
	}
	if _, ok := ParseStats("connect: no such file"); ok {
		t.Error("ParseStats accepts an error message")
	}
}
