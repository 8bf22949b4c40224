package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hblab"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestDispatchAsHeartbeat: installed as heartbeat, vigil answers
// heartbeat's flags instead of "unknown command".
func TestDispatchAsHeartbeat(t *testing.T) {
	var out, errb bytes.Buffer
	// heartbeat 3.0.6 -V prints "3.0.6 (node: HG-CHANGESET)".
	if code := dispatchAs("heartbeat", []string{"-V"}, &out, &errb); code != 0 || !regexp.MustCompile(`^3\.0\.6 \(vigil .+ installed as heartbeat\)\n$`).MatchString(out.String()) {
		t.Errorf("heartbeat -V: exit %d, out %q, err %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := dispatchAs("heartbeat", []string{"-dx"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "invalid option -- 'x'") {
		t.Errorf("heartbeat -dx: exit %d, err %q", code, errb.String())
	}
}

// TestHeartbeatKillallTakeover is seed 004's step 7.5 with vigil in
// heartbeat's place on two nodes, each with its own mount and UTS
// namespace (its /etc/ha.d, /run and host name): `heartbeat` forks and
// returns once /run/heartbeat.pid is written, `heartbeat -s` reports it,
// the daemon is named heartbeat (what killall matches), SIGKILL to it
// (killall -9 heartbeat, sent here by PID) makes the peer take the
// address after deadtime, and `heartbeat -k` stops the peer, which
// releases the address.
func TestHeartbeatKillallTakeover(t *testing.T) {
	bin := netnstest.VigilBinary(t)
	netnstest.RequireCommand(t, "unshare")
	l := netnstest.New(t, "hbname")
	const vip = "10.168.0.160"
	type node struct {
		h        *lab.Host
		iso      lab.Isolation
		run      string
		heartbin string
	}
	mk := func(name, lan, hbAddr, peer string) *node {
		h := netnstest.AddHost(t, l, name, lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{lan}}, lab.Iface{Name: "eth1", LAN: "hb", Addrs: []string{hbAddr}})
		dir := t.TempDir()
		etc, run := filepath.Join(dir, "ha.d"), filepath.Join(dir, "run")
		for _, d := range []string{etc, run} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		files := map[string]string{
			"ha.cf":       fmt.Sprintf("logfile /run/ha-log\nkeepalive 200ms\ndeadtime 1\nwarntime 500ms\ninitdead 5\nudpport 694\nucast eth1 %s\nauto_failback on\nnode ha1\nnode ha2\n", peer),
			"haresources": "ha1 " + vip + "/24/eth0\n",
			"authkeys":    "auth 3\n3 md5 hello!\n",
		}
		for f, body := range files {
			if err := os.WriteFile(filepath.Join(etc, f), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		link := filepath.Join(dir, "heartbeat")
		if err := os.Symlink(bin, link); err != nil {
			t.Fatal(err)
		}
		n := &node{h: h, run: run, heartbin: link, iso: lab.Isolation{Hostname: name, Binds: []lab.Bind{{Source: etc, Target: "/etc/ha.d"}, {Source: run, Target: "/run"}}}}
		t.Cleanup(func() {
			if pid := runningPid(filepath.Join(run, "heartbeat.pid")); pid != 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		})
		return n
	}
	ha1 := mk("ha1", "10.168.0.161/24", "10.0.0.1/24", "10.0.0.2")
	ha2 := mk("ha2", "10.168.0.162/24", "10.0.0.2/24", "10.0.0.1")
	hb := func(n *node, args ...string) (string, error) { return n.h.RunIsolated(n.iso, n.heartbin, args...) }
	waitAddr := func(n *node, want bool, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for hblab.HasAddr(n.h, vip) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s", n.h.Name(), what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	for _, n := range []*node{ha1, ha2} {
		if out, err := hb(n); err != nil {
			t.Fatalf("heartbeat (start) on %s: %v\n%s", n.h.Name(), err, out)
		}
	}
	pid1 := runningPid(filepath.Join(ha1.run, "heartbeat.pid"))
	if pid1 == 0 {
		t.Fatal("ha1: no running process in /run/heartbeat.pid after the start returned")
	}
	if comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid1), "comm")); strings.TrimSpace(string(comm)) != "heartbeat" {
		t.Errorf("daemon %d is named %q, want heartbeat (killall heartbeat)", pid1, strings.TrimSpace(string(comm)))
	}
	if out, err := hb(ha1, "-s"); err != nil || !strings.Contains(out, "running on ha1") {
		t.Errorf("heartbeat -s on ha1: %v\n%s", err, out)
	}
	if out, err := hb(ha1); err == nil || !strings.Contains(out, "already running") {
		t.Errorf("second start on ha1: %v\n%s", err, out)
	}
	waitAddr(ha1, true, "ha1 never took the address of its haresources line")
	// ha.cf's logfile carries heartbeat's tag and line format.
	if b, _ := os.ReadFile(filepath.Join(ha1.run, "ha-log")); !regexp.MustCompile(fmt.Sprintf(`(?m)^heartbeat\[%d\]: \d{4}/\d\d/\d\d_\d\d:\d\d:\d\d info: `, pid1)).Match(b) {
		t.Errorf("ha1's logfile has no line in heartbeat's form \"heartbeat[%d]: YYYY/MM/DD_hh:mm:ss info: ...\":\n%s", pid1, b)
	}

	// killall -9 heartbeat on ha1.
	start := time.Now()
	if err := syscall.Kill(pid1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitAddr(ha2, true, "ha2 did not take the address after the daemon on ha1 was killed")
	t.Logf("takeover on ha2 %v after SIGKILL on ha1 (deadtime 1 s)", time.Since(start).Round(time.Millisecond))
	if out, err := hb(ha1, "-s"); err == nil || !strings.Contains(out, "stopped") {
		t.Errorf("heartbeat -s on ha1 after the kill: %v\n%s", err, out)
	}

	pid2 := runningPid(filepath.Join(ha2.run, "heartbeat.pid"))
	if out, err := hb(ha2, "-k"); err != nil {
		t.Fatalf("heartbeat -k on ha2: %v\n%s", err, out)
	}
	if pid2 == 0 || alive(pid2) {
		t.Errorf("daemon %d on ha2 still runs after heartbeat -k returned", pid2)
	}
	if hblab.HasAddr(ha2.h, vip) {
		t.Error("ha2 kept the address after heartbeat -k")
	}
	if out, err := hb(ha2, "-s"); err == nil || !strings.Contains(out, "stopped") {
		t.Errorf("heartbeat -s on ha2 after -k: %v\n%s", err, out)
	}
}

// TestHeartbeatInitScript: Debian's /etc/init.d/heartbeat, unchanged,
// drives vigil put in the place of heartbeat's binary (bind-mounted over
// /usr/libexec/heartbeat/heartbeat in the node's mount namespace, beside
// its own /etc/ha.d and /run): start takes the node's address, status
// says it runs, restart (seed 004's step 7.1) replaces the daemon, stop
// releases the address and status says it stopped.
func TestHeartbeatInitScript(t *testing.T) {
	bin := netnstest.VigilBinary(t)
	netnstest.RequireCommand(t, "unshare")
	if _, err := os.Stat("/etc/init.d/heartbeat"); err != nil {
		netnstest.Unavailable(t, "heartbeat's init script is not installed (scripts/setup installs heartbeat)")
	}
	if _, err := os.Stat(hblab.Binary); err != nil {
		netnstest.Unavailable(t, "heartbeat is not installed (%s)", hblab.Binary)
	}
	l := netnstest.New(t, "hbinit")
	h := netnstest.AddHost(t, l, "ha1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.168.0.161/24"}}, lab.Iface{Name: "eth1", LAN: "hb", Addrs: []string{"10.0.0.1/24"}})
	const vip = "10.168.0.160"
	dir := t.TempDir()
	etc, run := filepath.Join(dir, "ha.d"), filepath.Join(dir, "run")
	if out, err := exec.Command("cp", "-a", "/etc/ha.d", etc).CombinedOutput(); err != nil {
		t.Fatalf("copy /etc/ha.d: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(run, "lock"), 0o755); err != nil {
		t.Fatal(err)
	}
	for f, body := range map[string]string{
		"ha.cf":       "keepalive 200ms\ndeadtime 1\nwarntime 500ms\ninitdead 2\nudpport 694\nucast eth1 10.0.0.2\nauto_failback on\nnode ha1\nnode ha2\n",
		"haresources": "ha1 " + vip + "/24/eth0\n",
		"authkeys":    "auth 3\n3 md5 hello!\n",
	} {
		if err := os.WriteFile(filepath.Join(etc, f), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	iso := lab.Isolation{Hostname: "ha1", Binds: []lab.Bind{
		{Source: etc, Target: "/etc/ha.d"}, {Source: run, Target: "/run"}, {Source: bin, Target: hblab.Binary},
	}}
	t.Cleanup(func() {
		if pid := runningPid(filepath.Join(run, "heartbeat.pid")); pid != 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	initd := func(op string) (string, error) { return h.RunIsolated(iso, "/etc/init.d/heartbeat", op) }

	if out, err := initd("start"); err != nil {
		t.Fatalf("/etc/init.d/heartbeat start: %v\n%s", err, out)
	}
	pid := runningPid(filepath.Join(run, "heartbeat.pid"))
	if pid == 0 {
		t.Fatal("no running daemon in /run/heartbeat.pid after the start")
	}
	if comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm")); strings.TrimSpace(string(comm)) != "heartbeat" {
		t.Errorf("daemon %d is named %q, want heartbeat", pid, strings.TrimSpace(string(comm)))
	}
	deadline := time.Now().Add(30 * time.Second)
	for !hblab.HasAddr(h, vip) {
		if time.Now().After(deadline) {
			t.Fatal("the address never came up after /etc/init.d/heartbeat start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := initd("status"); err != nil || !strings.Contains(out, "running on ha1") {
		t.Errorf("/etc/init.d/heartbeat status: %v\n%s", err, out)
	}
	// restart: stop, wait deadtime + 10 s for a takeover, start.
	if out, err := initd("restart"); err != nil {
		t.Fatalf("/etc/init.d/heartbeat restart: %v\n%s", err, out)
	}
	if alive(pid) {
		t.Errorf("daemon %d still runs after restart", pid)
	}
	if pid = runningPid(filepath.Join(run, "heartbeat.pid")); pid == 0 {
		t.Fatal("no running daemon after restart")
	}
	deadline = time.Now().Add(30 * time.Second)
	for !hblab.HasAddr(h, vip) {
		if time.Now().After(deadline) {
			t.Fatal("the address never came back after /etc/init.d/heartbeat restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := initd("stop"); err != nil {
		t.Fatalf("/etc/init.d/heartbeat stop: %v\n%s", err, out)
	}
	if alive(pid) {
		t.Errorf("daemon %d still runs after stop", pid)
	}
	if hblab.HasAddr(h, vip) {
		t.Error("the address stayed after /etc/init.d/heartbeat stop")
	}
	if out, err := initd("status"); err == nil || !strings.Contains(out, "stopped") {
		t.Errorf("/etc/init.d/heartbeat status after stop: %v\n%s", err, out)
	}
}
