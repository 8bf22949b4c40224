package hb_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/hb/hblab"
	"github.com/vigil-ha/vigil/internal/hb/machine"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestInteropUppercaseNodeNames runs seed 004's node names (`node HA1`,
// `node HA2`, hosts named HA1 and HA2) with vigil on HA1, home of the
// group, and heartbeat 3.0.6 on HA2. heartbeat lowers the case of ha.cf's
// node names and finds a message's node by its src exactly: vigil sent
// src=HA1, heartbeat dropped every message ("bad node [HA1] in message"),
// kept ha1 dead and held the group, and the home node never got it back.
// Then vigil restarts: the auto_failback standby exchange ends on both
// sides as heartbeat's does.
func TestInteropUppercaseNodeNames(t *testing.T) {
	hblab.Require(t)
	t.Parallel()
	netnstest.RequireCommand(t, "python3")
	l := netnstest.New(t, "hbcase")
	ha1, ha2 := addPair(t, l)
	files := func(name, peer string) hblab.Files {
		return hblab.Files{
			HaCf: fmt.Sprintf("logfile /var/lib/heartbeat/ha-log\nlogfacility none\nkeepalive 500ms\ndeadtime 3\nwarntime 2\ninitdead 6\nudpport 694\nucast eth1 %s\nauto_failback on\nnode HA1\nnode HA2\n", peer),
			// The seed's haresources names the home node in lower case.
			HaResources: "ha1 IPaddr2::" + vip + "/24/eth0 web\n",
			AuthKeys:    "auth 3\n3 md5 hello!\n",
			Extra:       map[string]string{"resource.d/web": hblab.WebScript(vip), "www/index.html": name + "\n"},
		}
	}
	v := hblab.NewVigil(t, ha1, "HA1", files("HA1", "10.0.0.2"))
	h := hblab.New(t, ha2, "HA2", files("HA2", "10.0.0.1"))
	logs := func() string { return "vigil:\n" + v.Output() + "\nheartbeat:\n" + h.Log() }
	clStatus := func(node, want string) {
		t.Helper()
		var out string
		for range 150 {
			o, _ := h.ClStatus("nodestatus", node)
			if out = strings.TrimSpace(o); out == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("cl_status nodestatus %s = %q, want %q\n%s", node, out, want, logs())
	}
	v.Start()
	h.Start()
	clStatus("ha1", "active")
	waitStatus(t, v, func(st hb.Status) bool { return len(st.Peers) == 1 && st.Peers[0].Status == machine.StatusActive })
	waitVIPHolder(t, ha1, ha2, "ha1", 20*time.Second, logs)
	time.Sleep(2 * time.Second)
	if got := vipHolder(ha1, ha2); got != "ha1" {
		t.Fatalf("VIP holder %q, want ha1 alone\n%s", got, logs())
	}
	if strings.Contains(h.Log(), "bad node") {
		t.Errorf("heartbeat dropped vigil's messages:\n%s", h.Log())
	}

	if err := v.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitVIPHolder(t, ha1, ha2, "ha2", 10*time.Second, logs)
	// heartbeat's mach_down must be over before vigil comes back (see
	// TestInteropHeartbeat306).
	for range 100 {
		if o, _ := h.ClStatus("rscstatus"); strings.TrimSpace(o) == "all" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	v.Start()
	waitVIPHolder(t, ha1, ha2, "ha1", 20*time.Second, logs)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.Log(), "Other node completed standby takeover of foreign resources.") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(v.Output(), "Standby resource acquisition done [foreign].") || !strings.Contains(h.Log(), "Other node completed standby takeover of foreign resources.") {
		t.Errorf("the auto_failback standby exchange did not end as heartbeat's does\n%s", logs())
	}
}
