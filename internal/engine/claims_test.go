package engine

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"golang.org/x/sys/unix"
)

// claimHost is a fakeHost whose ARP watch reports the claims sent on
// claims, and its NA watch those sent on claims6.
type claimHost struct {
	*fakeHost
	claims, claims6 chan garp.Claim
}

func (h *claimHost) WatchClaims(ctx context.Context, ifindex int, ipv6 bool, f func(garp.Claim), drop func(string)) error {
	ch := h.claims
	if ipv6 {
		ch = h.claims6
	}
	for {
		select {
		case c := <-ch:
			if c.MAC == nil { // stands for an NA that is no claim
				drop(garp.DropNANoLLAddr)
				continue
			}
			f(c)
		case <-ctx.Done():
			return nil
		}
	}
}

// runClaimHost runs an engine with the one instance inst on host "a" of
// lan, whose claim channels hold buf claims each; stop ends the run.
func runClaimHost(t *testing.T, lan *fakeLAN, inst runspec.InstanceSpec, buf int) (h *claimHost, e *Engine, stop func()) {
	t.Helper()
	h = &claimHost{fakeHost: newFakeHost(lan, "a", map[string]string{"eth0": "192.168.1.105/24"}), claims: make(chan garp.Claim, buf), claims6: make(chan garp.Claim, buf)}
	e, err := New(runspec.Spec{Instances: []runspec.InstanceSpec{inst}}, Options{Net: h})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	return h, e, func() { cancel(); <-done }
}

func (lan *fakeLAN) announcements(host string) int {
	lan.mu.Lock()
	defer lan.mu.Unlock()
	n := 0
	for _, a := range lan.announced {
		if a.host == host {
			n++
		}
	}
	return n
}

// TestClaimsAreAnsweredThenLeftToASecondMaster: another MAC's claim of the
// master's VIP is counted and answered with one gratuitous ARP after
// garp.DefendDelay; the master's own MAC is not a conflict; a claim that
// keeps coming back is answered garp.MaxAnswers times in garp.Window and
// then only counted (a second master would otherwise swing the LAN's caches
// between the two), and answered again once the window has passed.
func TestClaimsAreAnsweredThenLeftToASecondMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		h, e, stop := runClaimHost(t, lan, tutorialInstance(vrrp.StateMaster, 100), 0)
		defer stop()

		// Master, past its second burst (garp_master_delay 5 s).
		time.Sleep(12 * time.Second)
		conflicts := func() uint64 {
			s, err := e.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if s.Instances[0].State != "MASTER" {
				t.Fatalf("instance is %s, want MASTER", s.Instances[0].State)
			}
			return s.Instances[0].Counters.VIPConflicts
		}
		vipAddr := netip.MustParseAddr("192.168.1.100")
		other := garp.Claim{Addr: vipAddr, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x66}}
		own := garp.Claim{Addr: vipAddr, MAC: h.links["eth0"].MAC}
		stranger := garp.Claim{Addr: netip.MustParseAddr("192.168.1.7"), MAC: other.MAC}
		base := lan.announcements("a")

		h.claims <- own
		h.claims <- stranger
		time.Sleep(2 * time.Second)
		if n, a := conflicts(), lan.announcements("a")-base; n != 0 || a != 0 {
			t.Fatalf("own MAC and another address: %d conflicts, %d announcements; want none", n, a)
		}

		h.claims <- other
		h.claims <- other // while the answer is pending: counted only
		time.Sleep(garp.DefendDelay / 2)
		if a := lan.announcements("a") - base; a != 0 {
			t.Fatalf("answered %d times before garp.DefendDelay", a)
		}
		time.Sleep(garp.DefendDelay)
		if n, a := conflicts(), lan.announcements("a")-base; n != 2 || a != 1 {
			t.Fatalf("after a claim: %d conflicts, %d announcements; want 2 and 1", n, a)
		}

		// A second master answering back: garp.MaxAnswers answers, then
		// silence for the rest of the window.
		for range 2 * garp.MaxAnswers {
			h.claims <- other
			time.Sleep(2 * garp.DefendDelay)
		}
		if n, a := conflicts(), lan.announcements("a")-base; n != 2+2*garp.MaxAnswers || a != garp.MaxAnswers {
			t.Fatalf("persistent claims: %d conflicts, %d announcements; want %d and %d", n, a, 2+2*garp.MaxAnswers, garp.MaxAnswers)
		}
		time.Sleep(garp.Window)
		h.claims <- other
		time.Sleep(2 * garp.DefendDelay)
		if a := lan.announcements("a") - base; a != garp.MaxAnswers+1 {
			t.Fatalf("after the window: %d announcements, want %d", a, garp.MaxAnswers+1)
		}
	})
}

// mixedInstance is the tutorial instance with an IPv6 excluded VIP
// beside its IPv4 VIP: one instance whose addresses are watched by ARP and
// by neighbour advertisements.
func mixedInstance(state vrrp.State, prio uint8) runspec.InstanceSpec {
	in := tutorialInstance(state, prio)
	in.ExcludedVIPs = []netif.VIP{{Prefix: netip.MustParsePrefix("fd00::100/64"), Dev: "eth0"}}
	return in
}

// TestNewMastersClaimIsNotAConflict: a preempting master's gratuitous ARP
// or unsolicited NA can be read before its advert (two sockets). The old
// master then steps down before its answer is due; the claim was the new
// master's, not a conflict: nothing is counted, logged as a conflict or
// announced (seen in the HAProxy dual-master tutorial: a warning and
// vip_conflicts 1 on every ordinary preemption).
func TestNewMastersClaimIsNotAConflict(t *testing.T) {
	for _, vip := range []string{"192.168.1.100", "fd00::100"} {
		t.Run(vip, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lan := &fakeLAN{}
				h, e, stop := runClaimHost(t, lan, mixedInstance(vrrp.StateMaster, 100), 1024)
				defer stop()
				time.Sleep(12 * time.Second) // master, past its second burst
				base := lan.announcements("a")

				// b preempts at its Master_Down_Interval (3 s + Skew_Time of 150).
				b := startNode(t, lan, "b", "192.168.1.106/24", mixedInstance(vrrp.StateBackup, 150))
				time.Sleep(3300 * time.Millisecond)
				if st := b.state(t, "VI_1"); st != "BACKUP" {
					t.Fatalf("b is %s before its takeover, want BACKUP", st)
				}
				c := garp.Claim{Addr: netip.MustParseAddr(vip), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x66}} // b's
				if c.Addr.Is6() {
					h.claims6 <- c
				} else {
					h.claims <- c
				}
				time.Sleep(2 * garp.DefendDelay)
				if st := b.state(t, "VI_1"); st != "MASTER" {
					t.Fatalf("b is %s, want MASTER", st)
				}
				s, err := e.Snapshot(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				in := s.Instances[0]
				if in.State != "BACKUP" || in.Counters.VIPConflicts != 0 || lan.announcements("a") != base {
					t.Fatalf("a is %s with %d conflicts and %d announcements; want BACKUP, none and none", in.State, in.Counters.VIPConflicts, lan.announcements("a")-base)
				}
			})
		})
	}
}

// TestPeersLeftoverClaimIsNotAConflict: a returns with a higher priority
// and preempts b, whose claim of a VIP (a gratuitous ARP or NA of its
// master period read late) reaches a right after b's last advert. b then
// advertises no more: the claim is b's leftover, answered but counted
// apart (vip_claims_leftover), not as a conflict. The same MAC claiming
// the address seconds later (the address configured on b for good) is a
// conflict again, counted and answered as before.
func TestPeersLeftoverClaimIsNotAConflict(t *testing.T) {
	for _, vip := range []string{"192.168.1.100", "fd00::100"} {
		t.Run(vip, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lan := &fakeLAN{}
				b := startNode(t, lan, "b", "192.168.1.106/24", mixedInstance(vrrp.StateMaster, 99))
				time.Sleep(8 * time.Second) // b master, past its second burst
				h, e, stop := runClaimHost(t, lan, mixedInstance(vrrp.StateBackup, 100), 16)
				defer stop()
				time.Sleep(4 * time.Second) // a preempts at its Master_Down_Interval (3.6 s)
				if st := b.state(t, "VI_1"); st != "BACKUP" {
					t.Fatalf("b is %s after a's return, want BACKUP", st)
				}
				counters := func() (conflicts, leftovers uint64) {
					s, err := e.Snapshot(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					in := s.Instances[0]
					if in.State != "MASTER" {
						t.Fatalf("a is %s, want MASTER", in.State)
					}
					return in.Counters.VIPConflicts, in.Counters.VIPClaimsLeft
				}
				claim := func() {
					c := garp.Claim{Addr: netip.MustParseAddr(vip), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x66}} // b's
					if c.Addr.Is6() {
						h.claims6 <- c
					} else {
						h.claims <- c
					}
				}
				base := lan.announcements("a")
				claim()
				time.Sleep(2 * garp.DefendDelay)
				if c, l := counters(); c != 0 || l != 1 || lan.announcements("a") != base+1 {
					t.Fatalf("b's leftover: %d conflicts, %d leftovers, %d announcements; want 0, 1 and 1 (the answer)", c, l, lan.announcements("a")-base)
				}

				time.Sleep(5 * time.Second) // past a's second burst
				base = lan.announcements("a")
				claim()
				time.Sleep(2 * garp.DefendDelay)
				if c, l := counters(); c != 1 || l != 1 || lan.announcements("a") != base+1 {
					t.Fatalf("the same MAC later: %d conflicts, %d leftovers, %d announcements; want 1, 1 and 1", c, l, lan.announcements("a")-base)
				}
			})
		})
	}
}

// TestNAClaimsAreAnswered: neighbour advertisements go through the same
// rule as ARP: the master's own MAC and another address are no conflict; a
// flood of 1,000 claims of its IPv6 VIP by another MAC is counted whole and
// answered with one unsolicited NA after DefendDelay, apart from a claim of
// its IPv4 VIP, answered on its own.
func TestNAClaimsAreAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		h, e, stop := runClaimHost(t, lan, mixedInstance(vrrp.StateMaster, 100), 1024)
		defer stop()
		time.Sleep(12 * time.Second) // master, past its second burst
		conflicts := func() uint64 {
			s, err := e.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return s.Instances[0].Counters.VIPConflicts
		}
		answers := func(addr netip.Addr) (n int) {
			lan.mu.Lock()
			defer lan.mu.Unlock()
			for _, a := range lan.announced {
				if a.host == "a" && a.vip == addr {
					n++
				}
			}
			return n
		}
		vip6, vip4 := netip.MustParseAddr("fd00::100"), netip.MustParseAddr("192.168.1.100")
		them := net.HardwareAddr{2, 0, 0, 0, 0, 0x66}
		base6, base4 := answers(vip6), answers(vip4)

		h.claims6 <- garp.Claim{Addr: vip6, MAC: h.links["eth0"].MAC}
		h.claims6 <- garp.Claim{Addr: netip.MustParseAddr("fd00::7"), MAC: them}
		time.Sleep(2 * time.Second)
		if n, a := conflicts(), answers(vip6)-base6; n != 0 || a != 0 {
			t.Fatalf("own MAC and another address: %d conflicts, %d answers; want none", n, a)
		}

		h.claims6 <- garp.Claim{Addr: vip6} // no target link-layer address
		for range 1000 {
			h.claims6 <- garp.Claim{Addr: vip6, MAC: them}
		}
		h.claims <- garp.Claim{Addr: vip4, MAC: them}
		time.Sleep(garp.DefendDelay / 2)
		if a := answers(vip6) - base6; a != 0 {
			t.Fatalf("answered %d times before DefendDelay", a)
		}
		time.Sleep(garp.DefendDelay)
		if n, a6, a4 := conflicts(), answers(vip6)-base6, answers(vip4)-base4; n != 1001 || a6 != 1 || a4 != 1 {
			t.Fatalf("after 1,000 NA claims and one ARP claim: %d conflicts, %d NAs, %d gratuitous ARPs; want 1001, 1 and 1", n, a6, a4)
		}
		s, err := e.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if d := s.Daemon.NADropped; len(d) != 1 || d[garp.DropNANoLLAddr] != 1 {
			t.Errorf("NAs dropped: %v, want one %s", d, garp.DropNANoLLAddr)
		}
	})
}

// BenchmarkClaimWatchFlood: what each packet of a flood costs the watch
// goroutine once it is parsed, while the loop has not taken the box: a
// claim of a VIP (added up in the box) and a claim of another address
// (dropped), alternately. The loop sees one event per batch.
func BenchmarkClaimWatchFlood(b *testing.B) {
	vip := netip.MustParseAddr("fd00::100")
	w := &claimWatch{addrs: map[netip.Addr]bool{vip: true}, box: map[netip.Addr]*claimBatch{}, dropped: map[string]uint64{},
		ours: []net.HardwareAddr{{2, 0, 0, 0, 0, 1}}}
	claims := []garp.Claim{
		{Addr: vip, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x66}},
		{Addr: netip.MustParseAddr("fd00::7"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x66}},
	}
	posts := 0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if w.add(claims[i&1]) {
			posts++
		}
		i++
	}
	if posts != 1 {
		b.Fatalf("%d events for the loop, want 1", posts)
	}
}

// TestReloadedVIPsAreWatched: a reload that gives a master an IPv6 VIP on
// an interface it had only IPv4 VIPs on starts the NA watch there; a claim
// of the new VIP is answered.
func TestReloadedVIPsAreWatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		h, e, stop := runClaimHost(t, lan, tutorialInstance(vrrp.StateMaster, 100), 16)
		defer stop()
		time.Sleep(12 * time.Second) // master, past its second burst
		if _, err := e.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{mixedInstance(vrrp.StateMaster, 100)}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(12 * time.Second) // the new VIP's bursts are over
		base := lan.announcements("a")
		h.claims6 <- garp.Claim{Addr: netip.MustParseAddr("fd00::100"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x66}}
		time.Sleep(2 * garp.DefendDelay)
		s, err := e.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n, a := s.Instances[0].Counters.VIPConflicts, lan.announcements("a")-base; n != 1 || a != 1 {
			t.Fatalf("a claim of the reloaded VIP: %d conflicts, %d announcements; want 1 and 1", n, a)
		}
	})
}

// TestDADFailedVIPClaimIsNotAnswered: once the kernel reports an IPv6 VIP
// dadfailed (another host on the link has it), that host's NAs are counted
// but not answered: answering would draw the traffic to an address that
// accepts none here.
func TestDADFailedVIPClaimIsNotAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		h, _, stop := runClaimHost(t, lan, mixedInstance(vrrp.StateMaster, 100), 16)
		defer stop()
		time.Sleep(12 * time.Second) // master, past its second burst
		vip6 := netip.MustParseAddr("fd00::100")
		before := lan.announcements("a")
		h.mu.Lock()
		ws, idx := h.awatch, h.links["eth0"].Index
		h.mu.Unlock()
		for _, w := range ws {
			w <- netif.AddrEvent{Addr: netif.Addr{Prefix: netip.PrefixFrom(vip6, 64), LinkIndex: idx,
				Flags: unix.IFA_F_NODAD | unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED}}
		}
		synctest.Wait()
		h.claims6 <- garp.Claim{Addr: vip6, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x66}}
		time.Sleep(2 * garp.DefendDelay)
		if a := lan.announcements("a") - before; a != 0 {
			t.Fatalf("%d announcements for a VIP that failed DAD, want none", a)
		}
	})
}
