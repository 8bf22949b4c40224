package engine

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/track"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

const vip = "192.168.1.100/24"

// tutorialInstance is seed 000's VI_1: VRID 55, advert_int 1, auth PASS 1111.
// testGARP is keepalived 2.2.7's gratuitous ARP schedule, as internal/config
// fills it in when the configuration says nothing.
var testGARP = garp.Config{Repeat: 5, Delay: 5 * time.Second, RefreshRepeat: 1, LowerPrioRepeat: 5, LowerPrioDelay: 5 * time.Second}

func tutorialInstance(state vrrp.State, prio uint8) runspec.InstanceSpec {
	var pass [8]byte
	copy(pass[:], "1111")
	return runspec.InstanceSpec{
		VRRP: vrrp.Config{
			Name: "VI_1", VRID: 55, Version: 2, Priority: prio, AdvertInt: time.Second,
			InitialState: state, AuthType: packet.AuthPass, AuthPass: pass,
			VIPs: []netip.Addr{netip.MustParseAddr("192.168.1.100")},
		},
		Interface: "eth0",
		VIPs:      []netif.VIP{{Prefix: netip.MustParsePrefix(vip), Dev: "eth0", Label: "eth0:1"}},
		GARP:      testGARP,
	}
}

// node is one engine on the fake LAN.
type node struct {
	host   *fakeHost
	eng    *Engine
	cancel context.CancelFunc
	done   chan error
	err    *error
}

func startNode(t *testing.T, lan *fakeLAN, name, addr string, specs ...runspec.InstanceSpec) *node {
	t.Helper()
	h := newFakeHost(lan, name, map[string]string{"eth0": addr})
	e, err := New(runspec.Spec{Instances: specs}, Options{Net: h})
	if err != nil {
		t.Fatal(err)
	}
	return runNode(t, h, e)
}

// runNode runs e, an engine on h, until the test ends.
func runNode(t *testing.T, h *fakeHost, e *Engine) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{host: h, eng: e, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- e.Run(ctx) }()
	t.Cleanup(func() { n.cancel(); n.wait() })
	return n
}

// wait waits for Run to return (once; later calls return its result again).
func (n *node) wait() error {
	if n.err == nil && n.done != nil {
		e := <-n.done
		n.done = nil
		n.err = &e
	}
	if n.err == nil {
		return nil
	}
	return *n.err
}

func (n *node) stop(t *testing.T) {
	t.Helper()
	n.cancel()
	if err := n.wait(); err != nil {
		t.Fatalf("%s: Run: %v", n.host.name, err)
	}
}

func (n *node) state(t *testing.T, inst string) string {
	t.Helper()
	s, err := n.eng.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range s.Instances {
		if in.Name == inst {
			return in.State
		}
	}
	t.Fatalf("%s: no instance %s", n.host.name, inst)
	return ""
}

func (n *node) snapshot(t *testing.T) status.Snapshot {
	t.Helper()
	s, err := n.eng.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTutorialFailoverAndPreempt is seed 000 on the fake LAN: the MASTER
// (priority 100) takes the VIP, the BACKUP (99) takes it over when the
// master's daemon stops, and the master preempts when it comes back.
func TestTutorialFailoverAndPreempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))

		// keepalived 2.2.7: `state MASTER` below 255 starts as backup for a
		// Master_Down_Interval (3 s + skew), then takes over.
		time.Sleep(5 * time.Second)
		if got := a.state(t, "VI_1"); got != "MASTER" {
			t.Fatalf("a is %s, want MASTER", got)
		}
		if got := b.state(t, "VI_1"); got != "BACKUP" {
			t.Fatalf("b is %s, want BACKUP", got)
		}
		if !a.host.holds(vip) || b.host.holds(vip) {
			t.Fatalf("VIP on a=%v b=%v, want only a", a.host.holds(vip), b.host.holds(vip))
		}
		if m := b.snapshot(t).Instances[0].Master; m != "192.168.1.105" {
			t.Fatalf("b sees master %q", m)
		}

		// Graceful stop: a sends priority 0, b takes over after Skew_Time.
		a.stop(t)
		if a.host.holds(vip) {
			t.Fatal("a kept the VIP after stopping")
		}
		time.Sleep(time.Second)
		if got := b.state(t, "VI_1"); got != "MASTER" || !b.host.holds(vip) {
			t.Fatalf("b is %s holding=%v after a stopped", got, b.host.holds(vip))
		}

		// a comes back and preempts (preempt is the default).
		a = startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" || b.state(t, "VI_1") != "BACKUP" {
			t.Fatalf("after restart: a %s, b %s", a.state(t, "VI_1"), b.state(t, "VI_1"))
		}
		if !a.host.holds(vip) || b.host.holds(vip) {
			t.Fatalf("VIP on a=%v b=%v after preemption", a.host.holds(vip), b.host.holds(vip))
		}
		a.stop(t)
		b.stop(t)
	})
}

// TestSilentMasterIsTakenOverAfterMasterDownInterval: a master that stops
// sending (kill -9) is replaced after 3 × advert_int + skew.
func TestSilentMasterIsTakenOverAfterMasterDownInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" {
			t.Fatal("a not master")
		}
		// Silence a's adverts without a graceful stop, remembering when
		// its last advert went out.
		// The drop hook runs on a's engine goroutine, outside lan.mu.
		var mu sync.Mutex
		var lastAdvert time.Time
		silenced := false
		lan.mu.Lock()
		lan.drop = func(src, dst netip.Addr) bool {
			if src != netip.MustParseAddr("192.168.1.105") {
				return false
			}
			mu.Lock()
			defer mu.Unlock()
			if !silenced {
				lastAdvert = time.Now()
			}
			return silenced
		}
		lan.mu.Unlock()
		time.Sleep(1500 * time.Millisecond) // at least one advert recorded
		mu.Lock()
		silenced = true
		last := lastAdvert
		mu.Unlock()
		// RFC 3768 §6.1: Master_Down_Interval = 3 × Advertisement_Interval +
		// Skew_Time, Skew_Time = (256 − Priority) / 256 s.
		mdi := 3*time.Second + time.Duration(256-99)*time.Second/256
		time.Sleep(time.Until(last.Add(mdi - time.Millisecond)))
		if b.state(t, "VI_1") != "BACKUP" {
			t.Fatalf("b took over before Master_Down_Interval")
		}
		time.Sleep(2 * time.Millisecond)
		if b.state(t, "VI_1") != "MASTER" || !b.host.holds(vip) {
			t.Fatalf("b is %s, not master at last advert + Master_Down_Interval", b.state(t, "VI_1"))
		}
		// GARP was sent for the VIP by b.
		lan.mu.Lock()
		var sawGARP bool
		for _, an := range lan.announced {
			if an.host == "b" && an.vip == netip.MustParseAddr("192.168.1.100") {
				sawGARP = true
			}
		}
		lan.mu.Unlock()
		if !sawGARP {
			t.Fatal("b sent no gratuitous ARP for the VIP")
		}
	})
}

// TestHandoverOnStopHasNoGap: with HandoverOnStop the stopping master keeps
// the VIP until the backup's first advert, so the VIP is never unheld.
func TestHandoverOnStopHasNoGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		sa := tutorialInstance(vrrp.StateMaster, 100)
		sa.VRRP.HandoverOnStop = true
		a := startNode(t, lan, "a", "192.168.1.105/24", sa)
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" {
			t.Fatal("a not master")
		}
		a.cancel()
		// Sample who holds the VIP every 1 ms until a has exited.
		gap := false
		for {
			select {
			case err := <-a.done:
				a.done = nil
				if err != nil {
					t.Fatal(err)
				}
				if !b.host.holds(vip) {
					t.Fatal("b does not hold the VIP after the handover")
				}
				if gap {
					t.Fatal("the VIP was held by nobody during the handover")
				}
				if a.host.holds(vip) {
					t.Fatal("a still holds the VIP after exiting")
				}
				// The old master lets go only a grace after the new one
				// took the VIP (and sent its gratuitous ARP).
				added, removed := b.host.lastChange("+", vip), a.host.lastChange("-", vip)
				if grace := removed.Sub(added); grace < handoverGrace(time.Second) {
					t.Fatalf("a released the VIP %v after b took it, want at least %v", grace, handoverGrace(time.Second))
				}
				b.stop(t)
				return
			default:
			}
			if !a.host.holds(vip) && !b.host.holds(vip) {
				gap = true
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// TestLinkDownPutsTheMasterInFault: keepalived tracks the instance's own
// interface; its carrier going down means FAULT and the VIP moves.
func TestLinkDownPutsTheMasterInFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))
		time.Sleep(5 * time.Second)
		a.host.setLink("eth0", false)
		time.Sleep(5 * time.Second)
		if got := a.state(t, "VI_1"); got != "FAULT" {
			t.Fatalf("a is %s after link down, want FAULT", got)
		}
		if a.host.holds(vip) || !b.host.holds(vip) {
			t.Fatalf("VIP a=%v b=%v after a's link went down", a.host.holds(vip), b.host.holds(vip))
		}
		a.host.setLink("eth0", true)
		time.Sleep(5 * time.Second)
		if got := a.state(t, "VI_1"); got != "MASTER" {
			t.Fatalf("a is %s after link up, want MASTER again (preempt)", got)
		}
		a.stop(t)
		b.stop(t)
	})
}

// TestMissingInterfaceIsFaultNotFatal: an instance on an interface that does
// not exist is in FAULT with the reason, the daemon keeps running, and the
// instance starts when the interface appears.
func TestMissingInterfaceIsFaultNotFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		s := tutorialInstance(vrrp.StateMaster, 100)
		s.Interface = "eth9"
		s.VIPs[0].Dev = "eth9"
		a := startNode(t, lan, "a", "192.168.1.105/24", s)
		time.Sleep(time.Second)
		snap := a.snapshot(t)
		if snap.Instances[0].State != "FAULT" || !strings.Contains(snap.Instances[0].Reason, "eth9") {
			t.Fatalf("instance is %s (%q), want FAULT naming eth9", snap.Instances[0].State, snap.Instances[0].Reason)
		}
		a.host.addLink("eth9", "192.168.1.105/24", 9)
		time.Sleep(5 * time.Second)
		if got := a.state(t, "VI_1"); got != "MASTER" {
			t.Fatalf("after eth9 appeared the instance is %s, want MASTER", got)
		}
		a.stop(t)
	})
}

// TestSocketFailureIsRetried: the VRRP socket cannot be opened (the daemon
// is out of descriptors) and no link or address event will come when that
// passes: the instance stays in FAULT with the reason, tries again every
// attachRetry, and runs once the socket opens.
func TestSocketFailureIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		h := newFakeHost(lan, "a", map[string]string{"eth0": "192.168.1.105/24"})
		h.openErr = fmt.Errorf("vrrpnet: socket: %w", syscall.EMFILE)
		e, err := New(runspec.Spec{Instances: []runspec.InstanceSpec{tutorialInstance(vrrp.StateMaster, 100)}}, Options{Net: h})
		if err != nil {
			t.Fatal(err)
		}
		a := runNode(t, h, e)
		time.Sleep(10 * time.Second)
		snap := a.snapshot(t)
		if snap.Instances[0].State != "FAULT" || !strings.Contains(snap.Instances[0].Reason, "too many open files") {
			t.Fatalf("instance is %s (%q), want FAULT naming the socket error", snap.Instances[0].State, snap.Instances[0].Reason)
		}
		h.mu.Lock()
		h.openErr = nil
		h.mu.Unlock()
		time.Sleep(attachRetry + 5*time.Second)
		if got := a.state(t, "VI_1"); got != "MASTER" || !h.holds(vip) {
			t.Fatalf("with the socket back the instance is %s (VIP held %v), want MASTER", got, h.holds(vip))
		}
		a.stop(t)
	})
}

// TestTrackInterfaceWeights: a tracked interface with a negative weight
// lowers the priority so the backup preempts; weight 0 means FAULT.
func TestTrackInterfaceWeights(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		sa := tutorialInstance(vrrp.StateMaster, 100)
		sa.Trackers = []runspec.TrackRef{{Kind: track.Interface, Name: "eth1", Weight: -10}}
		ha := newFakeHost(lan, "a", map[string]string{"eth0": "192.168.1.105/24", "eth1": "10.0.0.1/24"})
		ea, err := New(runspec.Spec{Instances: []runspec.InstanceSpec{sa}}, Options{Net: ha})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ea.Run(ctx) }()
		a := &node{host: ha, eng: ea, cancel: cancel, done: done}
		t.Cleanup(func() { a.cancel(); a.wait() })
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 95))
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" {
			t.Fatal("a not master")
		}
		ha.setLink("eth1", false)
		time.Sleep(5 * time.Second)
		snap := a.snapshot(t)
		if snap.Instances[0].EffectivePriority != 90 {
			t.Fatalf("effective priority %d, want 90", snap.Instances[0].EffectivePriority)
		}
		if b.state(t, "VI_1") != "MASTER" || !b.host.holds(vip) {
			t.Fatalf("b (95) did not preempt a (90): b is %s", b.state(t, "VI_1"))
		}
		a.stop(t)
		b.stop(t)
	})
}

// history returns the VIP adds and removes the host saw.
func (h *fakeHost) vipHistory() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.history...)
}

// TestReloadUnchangedInstanceDoesNotFlap: applying the same configuration
// leaves the master alone: no transition, no VIP removed or re-added.
func TestReloadUnchangedInstanceDoesNotFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		s := tutorialInstance(vrrp.StateMaster, 100)
		a := startNode(t, lan, "a", "192.168.1.105/24", s)
		time.Sleep(5 * time.Second)
		before := a.snapshot(t).Instances[0].Counters.Transitions
		hist := a.host.vipHistory()
		s2 := tutorialInstance(vrrp.StateMaster, 100)
		s3 := tutorialInstance(vrrp.StateBackup, 90)
		s3.VRRP.Name, s3.VRRP.VRID = "VI_2", 56
		s3.VIPs[0].Prefix = netip.MustParsePrefix("192.168.1.101/24")
		s3.VRRP.VIPs = []netip.Addr{netip.MustParseAddr("192.168.1.101")}
		changes, err := a.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{s2, s3}})
		if err != nil {
			t.Fatal(err)
		}
		if want := "+ vrrp_instance VI_2"; !strings.Contains(strings.Join(changes, "\n"), want) {
			t.Fatalf("changes %q lack %q", changes, want)
		}
		time.Sleep(5 * time.Second)
		snap := a.snapshot(t)
		if got := snap.Instances[0].Counters.Transitions; got != before || snap.Instances[0].State != "MASTER" {
			t.Fatalf("VI_1 after reload: %s, transitions %d -> %d", snap.Instances[0].State, before, got)
		}
		if got := a.host.vipHistory()[:len(hist)]; strings.Join(got, ",") != strings.Join(hist, ",") || a.host.vipHistory()[len(hist)] != "+192.168.1.101/24" {
			t.Fatalf("VIP history %v, want %v then only the new instance's VIP", a.host.vipHistory(), hist)
		}
		// Remove VI_2 again: its VIP goes, VI_1 still untouched.
		if _, err := a.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{s2}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if a.host.holds("192.168.1.101/24") || !a.host.holds(vip) {
			t.Fatal("removing VI_2 did not release its VIP, or touched VI_1's")
		}
		if got := a.snapshot(t).Instances; len(got) != 1 || got[0].Counters.Transitions != before {
			t.Fatalf("after removing VI_2: %+v", got)
		}
	})
}

// TestReloadPriorityChangeHasNoGap: a master given a higher priority keeps
// its VIP throughout (the change applies in place), the peer never takes it.
func TestReloadPriorityChangeHasNoGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		old := tutorialInstance(vrrp.StateMaster, 100)
		old.VRRP.HandoverOnStop = true // as FromConfig sets it
		a := startNode(t, lan, "a", "192.168.1.105/24", old)
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))
		time.Sleep(5 * time.Second)
		s := tutorialInstance(vrrp.StateMaster, 110)
		s.VRRP.HandoverOnStop = true
		if _, err := a.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{s}}); err != nil {
			t.Fatal(err)
		}
		gap := false
		for range 8000 {
			if !a.host.holds(vip) && !b.host.holds(vip) {
				gap = true
			}
			time.Sleep(time.Millisecond)
		}
		if gap {
			t.Fatal("the VIP was held by nobody during the reload")
		}
		snap := a.snapshot(t)
		if snap.Instances[0].State != "MASTER" || snap.Instances[0].EffectivePriority != 110 {
			t.Fatalf("a after reload: %s prio %d", snap.Instances[0].State, snap.Instances[0].EffectivePriority)
		}
		if b.host.holds(vip) {
			t.Fatal("b still holds the VIP")
		}
	})
}

// TestStartupDelayAndPromoteSecondaries: vrrp_startup_delay holds every
// instance in INIT for the delay; promote_secondaries sets the sysctl.
func TestStartupDelayAndPromoteSecondaries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		s := tutorialInstance(vrrp.StateMaster, 100)
		s.PromoteSecondaries = true
		h := newFakeHost(lan, "a", map[string]string{"eth0": "192.168.1.105/24"})
		e, err := New(runspec.Spec{Instances: []runspec.InstanceSpec{s}, StartupDelay: 3 * time.Second}, Options{Net: h})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		n := &node{host: h, eng: e, cancel: cancel, done: done}
		t.Cleanup(func() { n.cancel(); n.wait() })
		time.Sleep(2900 * time.Millisecond)
		if got := n.state(t, "VI_1"); got != "INIT" {
			t.Fatalf("instance is %s within vrrp_startup_delay, want INIT", got)
		}
		time.Sleep(200 * time.Millisecond)
		if got := n.state(t, "VI_1"); got != "BACKUP" {
			t.Fatalf("instance is %s after vrrp_startup_delay, want BACKUP", got)
		}
		h.mu.Lock()
		v := h.sysctls["net/ipv4/conf/eth0/promote_secondaries"]
		h.mu.Unlock()
		if v != "1" {
			t.Fatalf("promote_secondaries sysctl = %q, want 1", v)
		}
	})
}

// TestSplitHealAnnouncesTheWinner: two masters after a partition; when it
// heals, the higher one's advert reaches the lower one first, and the lower
// one yields. Clients on the lower one's side still have its MAC for the
// VIP, so the winner must announce the VIP again. It does so on a lower
// priority advert (garp_lower_prio_repeat), which it hears only because the
// loser sends one as it yields (vigil's default; keepalived's only with
// higher_prio_send_advert). With lower_prio_no_advert (vrrp_strict) the
// loser sends none, as keepalived, and the winner stays silent.
func TestSplitHealAnnouncesTheWinner(t *testing.T) {
	for _, send := range []bool{true, false} {
		t.Run(fmt.Sprintf("yield_advert=%v", send), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lan := &fakeLAN{}
				sa, sb := tutorialInstance(vrrp.StateMaster, 100), tutorialInstance(vrrp.StateBackup, 99)
				sa.VRRP.LowerPrioNoAdvert, sb.VRRP.LowerPrioNoAdvert = !send, !send
				a := startNode(t, lan, "a", "192.168.1.105/24", sa)
				b := startNode(t, lan, "b", "192.168.1.106/24", sb)
				time.Sleep(5 * time.Second)
				if a.state(t, "VI_1") != "MASTER" {
					t.Fatal("a not master")
				}
				srcA := netip.MustParseAddr("192.168.1.105")
				healed, aPassed := false, false
				lan.mu.Lock()
				lan.drop = func(src, dst netip.Addr) bool {
					switch {
					case !healed:
						return true // partition
					case src == srcA:
						aPassed = true
						return false
					default:
						return !aPassed // a's advert crosses first
					}
				}
				lan.mu.Unlock()
				time.Sleep(10 * time.Second) // b takes over, and its garp_master_delay burst is over
				if b.state(t, "VI_1") != "MASTER" || a.state(t, "VI_1") != "MASTER" {
					t.Fatalf("partition: a %s, b %s; want two masters", a.state(t, "VI_1"), b.state(t, "VI_1"))
				}
				count := func() int {
					lan.mu.Lock()
					defer lan.mu.Unlock()
					n := 0
					for _, an := range lan.announced {
						if an.host == "a" {
							n++
						}
					}
					return n
				}
				before := count()
				lan.mu.Lock()
				healed = true
				lan.mu.Unlock()
				time.Sleep(1500 * time.Millisecond)
				if b.state(t, "VI_1") != "BACKUP" || b.host.holds(vip) {
					t.Fatalf("after the heal b is %s (holds the VIP: %v); want BACKUP without it", b.state(t, "VI_1"), b.host.holds(vip))
				}
				got := count() - before
				if send && got == 0 {
					t.Fatal("a sent no gratuitous ARP after the partition healed: clients that followed b keep b's MAC")
				}
				if !send && got != 0 {
					t.Fatalf("a sent %d gratuitous ARPs without hearing a lower priority advert", got)
				}
			})
		})
	}
}

// TestAnnouncedHook: the Announced hook hears every batch of gratuitous
// ARPs as the engine queues it, the takeover's and the garp_master_delay
// round 5 s later, and counts the packets the LAN then carries.
func TestAnnouncedHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		h := newFakeHost(lan, "a", map[string]string{"eth0": "192.168.1.105/24"})
		var calls []time.Duration
		total := 0
		start := time.Now()
		e, err := New(runspec.Spec{Instances: []runspec.InstanceSpec{tutorialInstance(vrrp.StateMaster, 100)}},
			Options{Net: h, Hooks: Hooks{Announced: func(n int) {
				calls = append(calls, time.Since(start))
				total += n
			}}})
		if err != nil {
			t.Fatal(err)
		}
		n := runNode(t, h, e)
		time.Sleep(10 * time.Second)
		if n.state(t, "VI_1") != "MASTER" {
			t.Fatal("not master")
		}
		synctest.Wait()
		lan.mu.Lock()
		sent := len(lan.announced)
		lan.mu.Unlock()
		if len(calls) < 2 || calls[len(calls)-1]-calls[0] < testGARP.Delay {
			t.Fatalf("Announced at %v, want the takeover's batch and the round %v later", calls, testGARP.Delay)
		}
		if total != 2*testGARP.Repeat || sent != total {
			t.Errorf("Announced %d packets, the LAN carried %d; want %d", total, sent, 2*testGARP.Repeat)
		}
	})
}

// TestHandoverSendsNoAnnouncementAfterPriorityZero: a master that sent
// priority 0 on stop holds its VIP until the new master is heard, but
// announces it no more: its garp_master_delay burst, due while it holds
// the VIP after the priority-0 advert, would point the LAN back at the
// leaving node (and the new master would see its claims as conflicts).
func TestHandoverSendsNoAnnouncementAfterPriorityZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		sa := tutorialInstance(vrrp.StateMaster, 100)
		sa.VRRP.HandoverOnStop = true
		a := startNode(t, lan, "a", "192.168.1.105/24", sa)
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))
		for a.state(t, "VI_1") != "MASTER" {
			time.Sleep(10 * time.Millisecond)
		}
		// The second burst is due testGARP.Delay after the takeover, inside
		// the hold: b takes over a Skew_Time (0.61 s) after priority 0.
		time.Sleep(testGARP.Delay - 300*time.Millisecond)
		before := lan.announcements("a")
		a.cancel()
		if err := a.wait(); err != nil {
			t.Fatal(err)
		}
		if !b.host.holds(vip) || a.host.holds(vip) {
			t.Fatalf("after the handover a holds the VIP %v, b %v", a.host.holds(vip), b.host.holds(vip))
		}
		if n := lan.announcements("a") - before; n != 0 {
			t.Fatalf("a sent %d gratuitous ARPs after its priority-0 advert, want none", n)
		}
		b.stop(t)
	})
}
