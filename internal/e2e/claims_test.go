package e2e_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/lab"
)

// TestGARPPoisoningIsAnswered: a third host on the LAN announces the
// master's VIP with its own MAC (gratuitous ARP, as arpspoof or a
// misconfigured host would). The backup's ARP cache follows it; the master
// sees the claim, counts it (vip_conflicts), logs it and announces the VIP
// again, so the cache points at the master once more without any traffic
// to revalidate it. The backup, which does not hold the VIP, counts
// nothing.
func TestGARPPoisoningIsAnswered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "claim", 2)
	r1 := e.start(e2e.Vigil, 0, conf(e2e.Tutorial(true)))
	r2 := e.start(e2e.Vigil, 1, conf(e2e.Tutorial(false)))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 10*time.Second)
	e.waitHolds(e.node(0), e2e.VIP4, true, 5*time.Second)

	masterMAC := macOf(t, e.node(0), "eth0")
	mac1 := func() string { m, _ := neighMAC(e.node(1), e2e.VIP4); return m }
	attacker := e.net.Client
	attackerMAC := macOf(t, attacker, "eth0")
	// The backup learns the VIP's MAC as a client of the VIP would.
	if out, err := e.node(1).Run("ping", "-c", "1", "-W", "2", e2e.VIP4.String()); err != nil {
		t.Fatalf("backup pinging the VIP: %v\n%s", err, out)
	}
	if got := mac1(); got != masterMAC.String() {
		t.Fatalf("backup's ARP entry for the VIP: %q, want the master's %s", got, masterMAC)
	}

	// Past the master's second burst (garp_master_delay 5 s), after which
	// it announces nothing more by itself; and Linux takes an ARP update of
	// an entry only when its last change is older than locktime (1 s).
	for status_(t, r1, "VI_1").Since.After(time.Now().Add(-6 * time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)

	var s *garp.Sender
	var ifindex int
	if err := attacker.Do(func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		ifindex = ifc.Index
		s, err = garp.Open()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	poisoned := false
	for i := 0; i < 3; i++ {
		if err := s.SendARP(ifindex, attackerMAC, e2e.VIP4); err != nil {
			t.Fatal(err)
		}
		// The backup's cache follows the claim before the master's answer
		// (1.2 s later) puts it back.
		if mac1() == attackerMAC.String() {
			poisoned = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !poisoned {
		t.Fatalf("the backup's cache never followed the attacker's claim: %s", mac1())
	}

	deadline := time.Now().Add(8 * time.Second)
	for mac1() != masterMAC.String() {
		if time.Now().After(deadline) {
			t.Fatalf("backup's ARP entry for the VIP still %s after the claim; want the master's %s back",
				mac1(), masterMAC)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := status_(t, r1, "VI_1").Counters.VIPConflicts; n == 0 {
		t.Errorf("master counts %d VIP conflicts, want ≥ 1", n)
	}
	if n := status_(t, r2, "VI_1").Counters.VIPConflicts; n != 0 {
		t.Errorf("backup counts %d VIP conflicts, want 0 (it does not hold the VIP)", n)
	}
	if !strings.Contains(r1.Log(), "address conflict") || !strings.Contains(r1.Log(), attackerMAC.String()) {
		t.Errorf("no log line naming the conflicting MAC:\n%s", r1.Log())
	}
	if st := status_(t, r1, "VI_1"); st.State != "MASTER" {
		t.Errorf("master is %s after the claim", st.State)
	}
}

func macOf(t *testing.T, h *lab.Host, dev string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	if err := h.Do(func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		mac = ifc.HardwareAddr
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}
