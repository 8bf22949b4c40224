package hb_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/hb/hblab"
	"github.com/vigil-ha/vigil/internal/hb/machine"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestInteropHeartbeat306 puts a vigil node (ha1, home of the VIP group)
// and Debian's heartbeat 3.0.6 (ha2, crm off, haresources) in one cluster:
// each sees the other alive, and the resource group moves between them
// through heartbeat's own resource messages.
func TestInteropHeartbeat306(t *testing.T) {
	hblab.Require(t)
	// Its own namespaces and heartbeat directories: beside the
	// real-timings tutorial test, which mostly waits.
	t.Parallel()
	netnstest.RequireCommand(t, "python3")
	l := netnstest.New(t, "hbiop")
	ha1, ha2 := addPair(t, l)
	cli := netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.168.0.8/24"}})
	hacf := func(peerHB, peerLAN string) string {
		return fmt.Sprintf("logfile /var/lib/heartbeat/ha-log\nlogfacility none\nkeepalive 500ms\ndeadtime 3\nwarntime 2\ninitdead 6\nudpport 694\nucast eth1 %s\nucast eth0 %s\nauto_failback on\nnode ha1\nnode ha2\n", peerHB, peerLAN)
	}
	files := func(name, peerHB, peerLAN string) hblab.Files {
		return hblab.Files{
			HaCf: hacf(peerHB, peerLAN),
			// IPaddr2 (iproute2): heartbeat's ifconfig-based IPaddr agent
			// fails with "Generic error" inside the lab's namespaces.
			HaResources: "ha1 IPaddr2::" + vip + "/24/eth0 web\n",
			AuthKeys:    "auth 1\n1 sha1 interop-key\n",
			Extra:       map[string]string{"resource.d/web": hblab.WebScript(vip), "www/index.html": name + "\n"},
		}
	}
	v := hblab.NewVigil(t, ha1, "ha1", files("ha1", "10.0.0.2", "10.168.0.162"))
	h := hblab.New(t, ha2, "ha2", files("ha2", "10.0.0.1", "10.168.0.161"))
	holder := func() string { return vipHolder(ha1, ha2) }
	wait := func(t *testing.T, want string, limit time.Duration) time.Duration {
		t.Helper()
		return waitVIPHolder(t, ha1, ha2, want, limit, func() string { return "vigil:\n" + v.Output() + "\nheartbeat:\n" + h.Log() })
	}
	curl := func(t *testing.T, want string) {
		t.Helper()
		var out string
		for range 40 {
			o, err := cli.Run("curl", "-s", "--max-time", "1", "http://"+vip+"/")
			if out = strings.TrimSpace(o); err == nil && out == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("client got %q, want %q", out, want)
	}
	clStatus := func(t *testing.T, node, want string) {
		t.Helper()
		var out string
		for range 100 {
			// cl_status exits non-zero for a dead node; the output says it.
			o, _ := h.ClStatus("nodestatus", node)
			if out = strings.TrimSpace(o); out == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("cl_status nodestatus %s = %q, want %q\n%s", node, out, want, h.Log())
	}

	rscStatus := func(t *testing.T, want string) {
		t.Helper()
		var out string
		for range 100 {
			o, _ := h.ClStatus("rscstatus")
			if out = strings.TrimSpace(o); out == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("cl_status rscstatus = %q, want %q", out, want)
	}
	v.Start()
	h.Start()
	t.Run("membership: each sees the other", func(t *testing.T) {
		clStatus(t, "ha1", "active")
		waitStatus(t, v, func(st hb.Status) bool {
			return st.Peers[0].Status == machine.StatusActive && st.Peers[0].Links[0].Up && st.Peers[0].Links[1].Up
		})
		if out, _ := h.ClStatus("hblinkstatus", "ha1", "eth1"); strings.TrimSpace(out) != "up" {
			t.Errorf("cl_status hblinkstatus ha1 eth1 = %q", out)
		}
		if st, _ := v.Status(); len(st.Drops) > 0 {
			t.Errorf("vigil dropped heartbeat's packets: %v", st.Drops)
		}
	})
	t.Run("vigil, home node, holds the group", func(t *testing.T) {
		wait(t, "ha1", 15*time.Second)
		curl(t, "ha1")
		// heartbeat knows vigil holds it: it does not start it too.
		time.Sleep(2 * time.Second)
		if got := holder(); got != "ha1" {
			t.Fatalf("holder %q", got)
		}
	})
	var gen uint64
	t.Run("vigil stops gracefully: heartbeat takes over on t=shutdone", func(t *testing.T) {
		if st, err := v.Status(); err == nil {
			gen = st.Generation
		}
		start := time.Now()
		if err := v.Stop(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		wait(t, "ha2", 10*time.Second)
		t.Logf("heartbeat holds the VIP %v after vigil's SIGTERM", time.Since(start).Round(time.Millisecond))
		curl(t, "ha2")
		// Let heartbeat finish its takeover (mach_down) before vigil comes
		// back: a T_STARTING during a takeover makes heartbeat skip the
		// auto_failback (its own race, "T_STARTING received during takeover").
		rscStatus(t, "all")
	})
	t.Run("vigil restarts: auto_failback from heartbeat", func(t *testing.T) {
		v.Start()
		d := wait(t, "ha1", 20*time.Second)
		t.Logf("VIP back on vigil %v after its restart", d.Round(time.Millisecond))
		curl(t, "ha1")
		// hbgenmethod file (the default): the counter on disk, one up,
		// which heartbeat accepted as a restart.
		if st, err := v.Status(); err != nil || gen == 0 || st.Generation != gen+1 {
			t.Errorf("generation %d after the restart (%v), want %d", st.Generation, err, gen+1)
		}
	})
	t.Run("vigil powered off: heartbeat takes over after deadtime", func(t *testing.T) {
		start := time.Now()
		v.Kill()
		ha1.SetCable("eth0", false)
		ha1.SetCable("eth1", false)
		ha1.Run("ip", "addr", "del", vip+"/24", "dev", "eth0")
		wait(t, "ha2", 15*time.Second)
		t.Logf("heartbeat took over %v after power-off (deadtime 3 s)", time.Since(start).Round(time.Millisecond))
		clStatus(t, "ha1", "dead")
		curl(t, "ha2")
		// As after the SIGTERM above: heartbeat's mach_down must be over
		// before vigil powers on, or heartbeat skips the auto_failback.
		rscStatus(t, "all")
		ha1.SetCable("eth0", true)
		ha1.SetCable("eth1", true)
	})
	t.Run("vigil powered on: auto_failback from heartbeat's mach_down", func(t *testing.T) {
		v.Start()
		d := wait(t, "ha1", 20*time.Second)
		t.Logf("VIP back on vigil %v after power-on", d.Round(time.Millisecond))
		curl(t, "ha1")
	})
	t.Run("heartbeat stops gracefully: vigil keeps the group and sees it go", func(t *testing.T) {
		clStatus(t, "ha1", "active")
		if err := h.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		if got := holder(); got != "ha1" {
			t.Fatalf("holder %q after heartbeat stopped", got)
		}
		waitStatus(t, v, func(st hb.Status) bool { return st.Peers[0].Status == machine.StatusDead })
		curl(t, "ha1")
	})
}
