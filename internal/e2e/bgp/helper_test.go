package bgp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/bgp"
	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// helperPID returns the pid of the vigil-bgp child of pid, 0 when it has
// none.
func helperPID(pid int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		j := strings.IndexByte(s, '(')
		if i < 0 || j < 0 || s[j+1:i] != bgp.HelperName {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			return child
		}
	}
	return 0
}

// alive reports whether pid names a process that has not ended (a zombie
// has ended).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

// TestBGPHelper checks the vigil-bgp helper process against BIRD: started
// without it, vigil refuses to run and names where it looked; the helper's
// log reaches vigil's; kill -9 of the helper while the VIP is announced is
// logged, the helper is restarted and BIRD has the route again over a new
// session; kill -9 of vigil ends the helper, which closes the session at
// BIRD (hold time 90 s: only the closed connection ends it in time).
func TestBGPHelper(t *testing.T) {
	netnstest.RequireCommand(t, "birdc")
	birdBin := netnstest.RequireCommand(t, "bird")
	bin := netnstest.VigilBinary(t)
	l := netnstest.New(t, "bgphl")
	dir := t.TempDir()
	bh := netnstest.AddHost(t, l, "bird1", lab.Iface{Name: "eth0", LAN: "dc", Addrs: []string{reloadPeers[0] + "/24"}})
	d1 := netnstest.AddHost(t, l, "dir1", lab.Iface{Name: "eth0", LAN: "dc", Addrs: []string{dirAddrs[0] + "/24"}})
	netnstest.WaitLANReady(t, l, bh, d1)
	b := &birdPeer{host: bh, ctl: filepath.Join(dir, "bird.ctl")}
	// vrrp_rt_priority 20: vigil's threads SCHED_RR 20, the helper's 19.
	conf := "global_defs {\n    vrrp_rt_priority 20\n}\n" + strings.ReplaceAll(reloadConf(dirAddrs[0], 10, reloadPeers[0]), "hold_time 3", "hold_time 90")

	t.Run("no helper: vigil refuses to start and says where it looked", func(t *testing.T) {
		if _, err := os.Stat(bgp.DefaultHelper); err == nil {
			t.Skipf("%s is installed on this host", bgp.DefaultHelper)
		}
		// vigil alone in a directory: nothing beside it.
		alone := filepath.Join(t.TempDir(), "vigil")
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(alone, data, 0o755); err != nil {
			t.Fatal(err)
		}
		cf := filepath.Join(t.TempDir(), "keepalived.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := d1.Run("env", "-u", bgp.HelperEnv, alone, "run", "-f", cf, "--api-socket", filepath.Join(dir, "none.sock"), "-p", filepath.Join(dir, "none.pid"))
		if err == nil {
			t.Fatalf("vigil ran without its helper:\n%s", out)
		}
		for _, w := range []string{"vigil-bgp was not found", "$VIGIL_BGP_HELPER (unset)", filepath.Join(filepath.Dir(alone), "vigil-bgp"), bgp.DefaultHelper} {
			if !strings.Contains(out, w) {
				t.Errorf("vigil's error lacks %q:\n%s", w, out)
			}
		}
		if strings.Contains(out, "vigil started") {
			t.Errorf("vigil started before it refused:\n%s", out)
		}
	})

	birdConf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(birdConf, []byte(strings.ReplaceAll(birdReloadConf(reloadPeers[0]), "hold time 3", "hold time 90")), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if b.proc, err = bh.Start(birdBin, "-f", "-c", birdConf, "-s", b.ctl, "-P", filepath.Join(dir, "bird.pid")); err != nil {
		t.Fatal(err)
	}
	nd := e2e.NewNode(e2e.Vigil, d1, bin, t.TempDir())
	// Debug: the helper's release of its binary's pages is logged there.
	nd.Args = []string{"--log-level", "debug"}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vigil output:\n%s", nd.AllLogs())
			t.Logf("bird output:\n%s", b.proc.Output())
		}
	})
	if err := nd.WriteConfig(conf); err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "BIRD's route to the VIP via dir1", hopsAre(bh, vrrpVIP, dirAddrs[0]))
	if !strings.Contains(nd.Log(), "bgp speaker running") || !strings.Contains(nd.Log(), "component=vigil-bgp") {
		t.Errorf("the helper's log did not reach vigil's")
	}
	if !regexp.MustCompile(`released the binary's pages"? component=vigil-bgp .*mappings=[1-9]`).MatchString(nd.Log()) {
		t.Errorf("the helper did not release its binary's pages at start")
	}
	// Only vigil's VRRP timer thread runs at SCHED_RR 20 (reset-on-fork);
	// the helper does not inherit it, vigil gives it 19.
	waitFor(t, 10*time.Second, "SCHED_RR 20 with reset-on-fork on vigil's timer thread, SCHED_RR 19 on the helper's", func() bool {
		h, err := unix.SchedGetAttr(helperPID(nd.Pid()), 0)
		if err != nil || h.Policy != unix.SCHED_RR || h.Priority != 19 {
			return false
		}
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", nd.Pid()))
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil {
				continue
			}
			if d, err := unix.SchedGetAttr(tid, 0); err == nil && d.Policy == unix.SCHED_RR && d.Priority == 20 && d.Flags&unix.SCHED_FLAG_RESET_ON_FORK != 0 {
				return true
			}
		}
		return false
	})

	if du, err1 := e2e.ReadProc(nd.Pid()); err1 == nil {
		if hu, err2 := e2e.ReadProc(helperPID(nd.Pid())); err2 == nil {
			t.Logf("FIGURE RSS with one neighbour and one route: vigil %.1f MB (anonymous %.1f), vigil-bgp %.1f MB (anonymous %.1f)",
				float64(du.RSS)/1e6, float64(du.Anon)/1e6, float64(hu.RSS)/1e6, float64(hu.Anon)/1e6)
		}
	}
	if !t.Run("kill -9 of the helper: restarted, the route back at BIRD", func(t *testing.T) {
		pid := helperPID(nd.Pid())
		if pid == 0 {
			t.Fatalf("vigil (pid %d) has no %s child", nd.Pid(), bgp.HelperName)
		}
		_, since, _ := b.session()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, 20*time.Second, "vigil to log the helper's death", func() bool { return strings.Contains(nd.Log(), "vigil-bgp helper died; restarting it") })
		var again int
		waitFor(t, 30*time.Second, "a new helper", func() bool { again = helperPID(nd.Pid()); return again != 0 && again != pid })
		waitFor(t, 30*time.Second, "BIRD's new session", func() bool { _, s, info := b.session(); return info == "Established" && s != since })
		waitFor(t, 30*time.Second, "BIRD's route to the VIP via dir1 again", hopsAre(bh, vrrpVIP, dirAddrs[0]))
		t.Logf("FIGURE helper kill -9 -> route back at BIRD over a new session: %v", time.Since(start).Round(time.Millisecond))
		st, err := nd.Status(context.Background())
		if err != nil || st.BGP == nil || len(st.BGP.Sessions) != 1 || st.BGP.Sessions[0].State != "established" || st.BGP.Sessions[0].PrefixesSent != 1 {
			t.Errorf("status after the restart: %+v, %v", st.BGP, err)
		}
		if s, err := nd.State(context.Background(), "VI_1"); err != nil || s != "MASTER" {
			t.Errorf("VI_1 after the helper's restart: %s, %v", s, err)
		}
	}) {
		return
	}

	t.Run("kill -9 of vigil: the helper exits, BIRD's session closes", func(t *testing.T) {
		pid := helperPID(nd.Pid())
		if pid == 0 {
			t.Fatalf("vigil (pid %d) has no %s child", nd.Pid(), bgp.HelperName)
		}
		if !b.established() {
			t.Fatal("BIRD's session is not established")
		}
		// vigil alone: the helper runs in a process group of its own.
		if err := syscall.Kill(nd.Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		nd.Proc().Wait(10 * time.Second)
		start := time.Now()
		waitFor(t, 10*time.Second, "the helper to exit", func() bool { return !alive(pid) })
		waitFor(t, 20*time.Second, "BIRD's session to close (hold time 90 s)", func() bool { return !b.established() })
		waitFor(t, 20*time.Second, "BIRD's route to go", hopsAre(bh, vrrpVIP))
		t.Logf("FIGURE vigil kill -9 -> BIRD's session closed: %v", time.Since(start).Round(time.Millisecond))
	})
}
