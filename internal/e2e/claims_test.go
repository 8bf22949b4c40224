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

	s, ifindex := openSender(t, attacker, "eth0")
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

// TestNAPoisoningIsAnswered is TestGARPPoisoningIsAnswered for IPv6: a
// host on the LAN sends unsolicited NAs (override flag, to ff02::1) for the
// master's IPv6 VIP with its own MAC as the target link-layer address. A
// client's neighbour entry follows it; the master counts the claim
// (vip_conflicts), logs it and sends its unsolicited NA again, and the
// client's entry is back on the master's MAC. A flood of 1,000 such NAs then
// gets one more answer, not one per packet. With use_vmac the VIP lives on
// the VMAC, whose virtual MAC is the master's: its own NAs are no conflict.
func TestNAPoisoningIsAnswered(t *testing.T) {
	t.Parallel()
	for _, vmac := range []bool{false, true} {
		name := "eth0"
		if vmac {
			name = "vmac"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "na"+name[:1], 2)
			in := e2e.Instance{Name: "VI_6", State: "MASTER", Interface: "eth0", VRID: 56, Priority: 100,
				AdvertInt: "0.1", Version: 3, VIPs: []string{"fd00::100/64"},
				// No second burst: only an answer puts the client back.
				Extra: []string{"garp_master_delay 0"}}
			dev := "eth0"
			masterMAC := macOf(t, e.node(0), "eth0").String()
			if vmac {
				in.Extra = append(in.Extra, "use_vmac")
				dev, masterMAC = "vrrp.56", "00:00:5e:00:02:38"
			}
			r1 := e.start(e2e.Vigil, 0, conf(in))
			e.waitState(r1, "VI_6", "MASTER", 10*time.Second)
			e.waitHoldsOn(e.node(0), dev, e2e.VIP6, true, 10*time.Second)

			client, attacker := e.net.Client, e.node(1)
			attackerMAC := macOf(t, attacker, "eth0")
			clientMAC := func() string { m, _ := neighMAC(client, e2e.VIP6); return m }
			if out, err := client.Run("ping", "-6", "-c", "1", "-W", "2", e2e.VIP6.String()); err != nil {
				t.Fatalf("client pinging the VIP: %v\n%s", err, out)
			}
			if got := clientMAC(); got != masterMAC {
				t.Fatalf("client's neighbour entry for the VIP: %q, want the master's %s", got, masterMAC)
			}
			if n := status_(t, r1, "VI_6").Counters.VIPConflicts; n != 0 {
				t.Fatalf("master counts %d conflicts before any attack (its own NAs?)", n)
			}

			s, ifindex := openSender(t, attacker, "eth0")
			defer s.Close()
			poisoned := false
			for i := 0; i < 3; i++ {
				if err := s.SendNA(ifindex, attackerMAC, e2e.VIP6, false); err != nil {
					t.Fatal(err)
				}
				if clientMAC() == attackerMAC.String() {
					poisoned = true
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !poisoned {
				t.Fatalf("the client's cache never followed the attacker's NA: %s", clientMAC())
			}
			waitMAC := func(what string) {
				t.Helper()
				deadline := time.Now().Add(8 * time.Second)
				for clientMAC() != masterMAC {
					if time.Now().After(deadline) {
						t.Fatalf("%s: client's neighbour entry for the VIP still %s; want the master's %s back", what, clientMAC(), masterMAC)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			waitMAC("after the attack")
			st := status_(t, r1, "VI_6")
			if st.Counters.VIPConflicts == 0 {
				t.Errorf("master counts no VIP conflict")
			}
			if !strings.Contains(r1.Log(), "address conflict") || !strings.Contains(r1.Log(), attackerMAC.String()) {
				t.Errorf("no log line naming the conflicting MAC:\n%s", r1.Log())
			}

			// A flood: 1,000 NAs as fast as the attacker sends them.
			conflicts, answers := st.Counters.VIPConflicts, st.Counters.Announcements
			u0, uerr := r1.Usage()
			for i := 0; i < 1000; i++ {
				if err := s.SendNA(ifindex, attackerMAC, e2e.VIP6, false); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(8 * time.Second)
			for status_(t, r1, "VI_6").Counters.VIPConflicts == conflicts {
				if time.Now().After(deadline) {
					t.Fatal("the flood was not counted")
				}
				time.Sleep(100 * time.Millisecond)
			}
			if u1, err := r1.Usage(); err == nil && uerr == nil {
				t.Logf("vigil's CPU time from the flood's start to its count: %v", u1.CPU-u0.CPU)
			}
			waitMAC("after the flood")
			time.Sleep(2 * garp.DefendDelay) // an answer too many would be sent by now
			st = status_(t, r1, "VI_6")
			t.Logf("flood of 1,000 NAs: %d conflicts counted, %d answers sent", st.Counters.VIPConflicts-conflicts, st.Counters.Announcements-answers)
			if a := st.Counters.Announcements - answers; a < 1 || a >= garp.MaxAnswers {
				t.Errorf("the flood got %d answers, want 1 (at most %d)", a, garp.MaxAnswers-1)
			}
			if got := strings.Count(r1.Log(), "address conflict"); got > garp.MaxAnswers {
				t.Errorf("%d conflict log lines, want at most %d", got, garp.MaxAnswers)
			}
			if st.State != "MASTER" {
				t.Errorf("master is %s after the attack", st.State)
			}
		})
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

// openSender opens a claim sender in h's namespace and returns it with the
// index of h's interface dev.
func openSender(t *testing.T, h *lab.Host, dev string) (*garp.Sender, int) {
	t.Helper()
	var s *garp.Sender
	var ifindex int
	if err := h.Do(func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		ifindex = ifc.Index
		s, err = garp.Open()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s, ifindex
}
