package hb_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hblab"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestInteropSplitBrainHeartbeatHome runs the migration's other half:
// Debian's heartbeat stays on the home node (ha1) while ha2 already runs
// vigil, with the seed's md5 authkeys. Both links of ha1 are cut, vigil
// takes the group over after deadtime (both hold it), the links come back:
// the pair must end with exactly one holder, and keep it.
func TestInteropSplitBrainHeartbeatHome(t *testing.T) {
	hblab.Require(t)
	t.Parallel()
	l := netnstest.New(t, "hbsb")
	ha1 := netnstest.AddHost(t, l, "ha1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.168.0.161/24"}}, lab.Iface{Name: "eth1", LAN: "hb", Addrs: []string{"10.0.0.1/24"}})
	ha2 := netnstest.AddHost(t, l, "ha2", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.168.0.162/24"}}, lab.Iface{Name: "eth1", LAN: "hb", Addrs: []string{"10.0.0.2/24"}})
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
	holder := func() string {
		a, b := hblab.HasAddr(ha1, vip), hblab.HasAddr(ha2, vip)
		switch {
		case a && b:
			return "both"
		case a:
			return "ha1"
		case b:
			return "ha2"
		}
		return ""
	}
	wait := func(want string, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < limit {
			if holder() == want {
				return time.Since(start)
			}
			time.Sleep(25 * time.Millisecond)
		}
		t.Fatalf("VIP holder %q after %v, want %q\nvigil:\n%s\nheartbeat:\n%s", holder(), limit, want, v.Output(), h.Log())
		return 0
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
	start := time.Now()
	for holder() == "both" && time.Since(start) < 30*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	one := holder()
	t.Logf("after the links came back: holder %q in %v", one, time.Since(start).Round(time.Millisecond))
	if one == "both" || one == "" {
		t.Fatalf("holder %q after the links came back\nvigil:\n%s\nheartbeat:\n%s", one, v.Output(), h.Log())
	}
	// It stays settled.
	time.Sleep(8 * time.Second)
	if got := holder(); got != one {
		t.Fatalf("holder moved from %q to %q\nvigil:\n%s\nheartbeat:\n%s", one, got, v.Output(), h.Log())
	}
	t.Logf("vigil:\n%s\nheartbeat:\n%s", v.Output(), h.Log())
}
