package e2e_test

import (
	"net"
	"slices"
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

// TestPeersLeftoverIsNotAConflict: vigil takes the VIP over from its peer
// (keepalived 2.2.7 or vigil): it returns with the higher priority and
// preempts the peer, which drops back to BACKUP, or the peer hands over
// (`vigil handover`) or stops (SIGTERM: priority 0). Right after, a
// gratuitous ARP (or unsolicited NA) for the VIP with the peer's MAC reaches
// vigil, as one sent in the peer's master period and read late would. The
// peer advertises no more: vigil counts the claim as a leftover
// (vip_claims_leftover), announces the VIP again and logs no address
// conflict. Seconds later the peer's MAC claims the VIP again (the address
// configured on that box for good): that is a conflict, logged with the
// peer's MAC and counted as before.
func TestPeersLeftoverIsNotAConflict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		peer e2e.Kind
		how  string // preempt, handover, sigterm
		ipv6 bool
	}{
		{"keepalived-preempt", e2e.Keepalived, "preempt", false},
		{"vigil-preempt", e2e.Vigil, "preempt", false},
		{"keepalived-preempt-ipv6", e2e.Keepalived, "preempt", true},
		{"vigil-handover", e2e.Vigil, "handover", false},
		{"keepalived-sigterm", e2e.Keepalived, "sigterm", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "left", 2)
			a, b, name, vip := e2e.Tutorial(true), e2e.Tutorial(false), "VI_1", e2e.VIP4
			if tc.ipv6 {
				a, b, name, vip = ipv6Instance("MASTER", 100), ipv6Instance("BACKUP", 99), "VI_6", e2e.VIP6
				a.AdvertInt, b.AdvertInt = "1", "1"
			}
			if tc.how != "preempt" { // the peer is master first
				a, b = b, a
			}
			var r1, r2 *e2e.Node
			if tc.how == "preempt" {
				r1 = e.start(e2e.Vigil, 0, conf(a))
				r2 = e.start(tc.peer, 1, conf(b))
				e.waitState(r1, name, "MASTER", 10*time.Second)
				e.waitState(r2, name, "BACKUP", 10*time.Second)
				r1.Kill()
			} else {
				r2 = e.start(tc.peer, 1, conf(b))
				e.waitState(r2, name, "MASTER", 10*time.Second)
				r1 = e.start(e2e.Vigil, 0, conf(a))
				e.waitState(r1, name, "BACKUP", 10*time.Second)
			}
			e.waitState(r2, name, "MASTER", 10*time.Second)
			e.waitHolds(e.node(1), vip, true, 5*time.Second)
			time.Sleep(6 * time.Second) // past the peer's second burst

			peerMAC := macOf(t, e.node(1), "eth0")
			s, ifindex := openSender(t, e.node(1), "eth0")
			defer s.Close()
			claim := func() {
				t.Helper()
				var err error
				if tc.ipv6 {
					err = s.SendNA(ifindex, peerMAC, vip, false)
				} else {
					err = s.SendARP(ifindex, peerMAC, vip)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			switch tc.how {
			case "preempt":
				e.restart(r1)
			case "handover":
				vigilCLI(t, "handover", name, "--api-socket", r2.Socket())
			case "sigterm":
				if _, err := r2.Term(15 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
			e.waitState(r1, name, "MASTER", 15*time.Second)
			// Twice (one batch): the first may come before the watch's
			// socket is open.
			for range 2 {
				time.Sleep(300 * time.Millisecond)
				claim()
			}
			if tc.how != "sigterm" {
				e.waitState(r2, name, "BACKUP", 5*time.Second)
			}
			deadline := time.Now().Add(5 * time.Second)
			for status_(t, r1, name).Counters.VIPClaimsLeft == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the peer's leftover claim was not counted as one: %+v", status_(t, r1, name).Counters)
				}
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(garp.DefendDelay) // the second claim, if apart
			left := status_(t, r1, name).Counters.VIPClaimsLeft
			if n := status_(t, r1, name).Counters.VIPConflicts; n != 0 {
				t.Errorf("the peer's leftover counted as %d conflicts", n)
			}
			if strings.Contains(r1.Log(), "address conflict") {
				t.Errorf("the peer's leftover logged as an address conflict:\n%s", r1.Log())
			}

			// The peer's box keeps the address: a conflict, as before.
			time.Sleep(4 * time.Second)
			for range 3 {
				claim()
				time.Sleep(20 * time.Millisecond)
			}
			waitLogged(r1, "address conflict")
			if !slices.ContainsFunc(strings.Split(r1.Log(), "\n"), func(l string) bool {
				return strings.Contains(l, "address conflict") && strings.Contains(l, peerMAC.String())
			}) {
				t.Errorf("no address conflict logged for the peer's MAC claiming the VIP for good:\n%s", r1.Log())
			}
			st := status_(t, r1, name)
			if st.Counters.VIPConflicts == 0 || st.Counters.VIPClaimsLeft != left || st.State != "MASTER" {
				t.Errorf("after the lasting claim: %s, %d conflicts, %d leftovers; want MASTER, ≥ 1 and %d", st.State, st.Counters.VIPConflicts, st.Counters.VIPClaimsLeft, left)
			}
		})
	}
}
