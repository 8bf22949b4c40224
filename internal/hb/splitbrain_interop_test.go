package hb_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hblab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestInteropSplitBrainHeartbeatHome runs the migration's other half:
// Debian's heartbeat stays on the home node (ha1) while ha2 already runs
// vigil, with the seed's md5 authkeys. Both links of ha1 are cut, vigil
// takes the group over after deadtime (both hold it), the links come back:
// the pair must settle on one holder. Then vigil boots while its links
// are down (it never heard heartbeat): it takes the group after initdead,
// and when the links come up the pair must again settle (heartbeat sent
// no report of what it held, and both kept the group, until vigil asked
// again with t=starting).
func TestInteropSplitBrainHeartbeatHome(t *testing.T) {
	hblab.Require(t)
	t.Parallel()
	l := netnstest.New(t, "hbsb")
	ha1, ha2 := addPair(t, l)
	files := func(name, peerHB, peerLAN string) hblab.Files {
		return hblab.Files{
			HaCf:        fmt.Sprintf("logfile /var/lib/heartbeat/ha-log\nlogfacility none\nkeepalive 500ms\ndeadtime 3\nwarntime 2\ninitdead 6\nudpport 694\nucast eth1 %s\nucast eth0 %s\nauto_failback on\nnode ha1\nnode ha2\n", peerHB, peerLAN),
			HaResources: "ha1 IPaddr2::" + vip + "/24/eth0 web\n",
			AuthKeys:    "auth 3\n3 md5 hello!\n",
			Extra:       map[string]string{"resource.d/web": hblab.WebScript(vip), "www/index.html": name + "\n"},
		}
	}
	h := hblab.New(t, ha1, "ha1", files("ha1", "10.0.0.2", "10.168.0.162"))
	v := hblab.NewVigil(t, ha2, "ha2", files("ha2", "10.0.0.1", "10.168.0.161"))
	holder := func() string { return vipHolder(ha1, ha2) }
	wait := func(want string, limit time.Duration) time.Duration {
		t.Helper()
		return waitVIPHolder(t, ha1, ha2, want, limit, func() string { return "vigil:\n" + v.Output() + "\nheartbeat:\n" + h.Log() })
	}
	// settle waits until one node alone has held the group for 8 s
	// (heartbeat may restart itself after a partition, moving the group
	// away and back) and returns it and when that began.
	settle := func(what string) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		cur, since := holder(), time.Now()
		for time.Since(start) < 60*time.Second {
			if x := holder(); x != cur {
				cur, since = x, time.Now()
			}
			if cur != "both" && cur != "" && time.Since(since) >= 8*time.Second {
				return cur, since.Sub(start)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: no single holder for 8 s within 60 s (now %q)\nvigil:\n%s\nheartbeat:\n%s", what, cur, v.Output(), h.Log())
		return "", 0
	}
	h.Start()
	v.Start()
	wait("ha1", 20*time.Second)
	for i := 0; ; i++ {
		if o, _ := h.ClStatus("nodestatus", "ha2"); strings.TrimSpace(o) == "active" {
			break
		}
		if i == 200 {
			t.Fatalf("heartbeat never saw vigil\n%s", h.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	ha1.SetCable("eth0", false)
	ha1.SetCable("eth1", false)
	d := wait("both", 15*time.Second)
	t.Logf("vigil took the group %v after the cut (deadtime 3 s)", d.Round(time.Millisecond))
	ha1.SetCable("eth0", true)
	ha1.SetCable("eth1", true)
	one, at := settle("links back")
	t.Logf("links back: %s alone holds the group from %v on", one, at.Round(time.Millisecond))
	// vigil powered off, and booted with its cables unplugged.
	v.Kill()
	ha2.Run("ip", "addr", "del", vip+"/24", "dev", "eth0")
	wait("ha1", 20*time.Second)
	ha2.SetCable("eth0", false)
	ha2.SetCable("eth1", false)
	v.Start()
	d = wait("both", 20*time.Second)
	t.Logf("vigil, booted cut off, took the group after %v (initdead 6 s)", d.Round(time.Millisecond))
	ha2.SetCable("eth0", true)
	ha2.SetCable("eth1", true)
	one, at = settle("links up after vigil booted cut off")
	t.Logf("links up: %s alone holds the group from %v on", one, at.Round(time.Millisecond))
}
