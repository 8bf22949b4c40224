package engine

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// claimHost is a fakeHost whose ARP watch reports the claims sent on claims.
type claimHost struct {
	*fakeHost
	claims chan garp.Claim
}

func (h *claimHost) WatchClaims(ctx context.Context, ifindex int, f func(garp.Claim)) error {
	for {
		select {
		case c := <-h.claims:
			f(c)
		case <-ctx.Done():
			return nil
		}
	}
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
// claimDefendDelay; the master's own MAC is not a conflict; a claim that
// keeps coming back is answered claimMaxAnswers times in claimWindow and
// then only counted (a second master would otherwise swing the LAN's caches
// between the two), and answered again once the window has passed.
func TestClaimsAreAnsweredThenLeftToASecondMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		h := &claimHost{fakeHost: newFakeHost(lan, "a", map[string]string{"eth0": "192.168.1.105/24"}), claims: make(chan garp.Claim)}
		e, err := New(runspec.Spec{Instances: []runspec.InstanceSpec{tutorialInstance(vrrp.StateMaster, 100)}}, Options{Net: h})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		defer func() { cancel(); <-done }()

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
		time.Sleep(claimDefendDelay / 2)
		if a := lan.announcements("a") - base; a != 0 {
			t.Fatalf("answered %d times before claimDefendDelay", a)
		}
		time.Sleep(claimDefendDelay)
		if n, a := conflicts(), lan.announcements("a")-base; n != 2 || a != 1 {
			t.Fatalf("after a claim: %d conflicts, %d announcements; want 2 and 1", n, a)
		}

		// A second master answering back: claimMaxAnswers answers, then
		// silence for the rest of the window.
		for range 2 * claimMaxAnswers {
			h.claims <- other
			time.Sleep(2 * claimDefendDelay)
		}
		if n, a := conflicts(), lan.announcements("a")-base; n != 2+2*claimMaxAnswers || a != claimMaxAnswers {
			t.Fatalf("persistent claims: %d conflicts, %d announcements; want %d and %d", n, a, 2+2*claimMaxAnswers, claimMaxAnswers)
		}
		time.Sleep(claimWindow)
		h.claims <- other
		time.Sleep(2 * claimDefendDelay)
		if a := lan.announcements("a") - base; a != claimMaxAnswers+1 {
			t.Fatalf("after the window: %d announcements, want %d", a, claimMaxAnswers+1)
		}
	})
}

// TestNewMastersClaimIsNotAConflict: a preempting master's gratuitous ARP
// can be read before its advert (two sockets). The old master then steps
// down before its answer is due; the claim was the new master's, not a
// conflict: nothing is counted, logged as a conflict or announced (seen
// in the HAProxy dual-master tutorial: a warning and vip_conflicts 1 on
// every ordinary preemption).
func TestNewMastersClaimIsNotAConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		h := &claimHost{fakeHost: newFakeHost(lan, "a", map[string]string{"eth0": "192.168.1.105/24"}), claims: make(chan garp.Claim)}
		e, err := New(runspec.Spec{Instances: []runspec.InstanceSpec{tutorialInstance(vrrp.StateMaster, 100)}}, Options{Net: h})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		defer func() { cancel(); <-done }()
		time.Sleep(12 * time.Second) // master, past its second burst
		base := lan.announcements("a")

		// b preempts at its Master_Down_Interval (3 s + Skew_Time of 150).
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 150))
		time.Sleep(3300 * time.Millisecond)
		if st := b.state(t, "VI_1"); st != "BACKUP" {
			t.Fatalf("b is %s before its takeover, want BACKUP", st)
		}
		h.claims <- garp.Claim{Addr: netip.MustParseAddr("192.168.1.100"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x66}} // b's (the fake hosts' eth0 share one MAC)
		time.Sleep(2 * claimDefendDelay)
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
}
