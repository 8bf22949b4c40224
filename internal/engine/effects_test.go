package engine

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/netif"
)

// effectsLog records what the worker runs, in order.
type effectsLog struct {
	mu      sync.Mutex
	ran     []string
	batches [][]string // the addresses of each AddVIPs call
}

func (l *effectsLog) rec(s string) func() {
	return func() {
		l.mu.Lock()
		l.ran = append(l.ran, s)
		l.mu.Unlock()
	}
}

func (l *effectsLog) addVIPs(vs []netif.VIPAt) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b []string
	errs := make([]error, len(vs))
	for i, x := range vs {
		l.ran = append(l.ran, "+"+x.VIP.Addr().String())
		b = append(b, x.VIP.Addr().String())
		if x.Index < 0 {
			errs[i] = fmt.Errorf("index %d", x.Index)
		}
	}
	l.batches = append(l.batches, b)
	return errs
}

func (l *effectsLog) got() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ran)
}

// queueVIP queues the addition of one address as the engine does.
func queueVIP(f *effects, addr string, index int, errs *[]error) {
	v := netif.VIP{Prefix: netip.PrefixFrom(netip.MustParseAddr(addr), 32), Dev: "eth0"}
	f.installVIPs([]netif.VIPAt{{Index: index, VIP: v}}, func(e []error) { *errs = append(*errs, e...) })
}

// TestEffectsOrder: within one turn (hold ... release) the worker adds
// every address (consecutive additions in one AddVIPs call) before any
// announcement, sends the first announcement of each address before the
// repeats and log lines, and never moves anything across a barrier (an
// address removal): no address is announced before it is added or after
// it was removed.
func TestEffectsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l effectsLog
		f := newEffects(l.addVIPs)
		// The worker is busy with an earlier barrier while the turn queues:
		// what follows is one batch, whatever the scheduling.
		unblock := make(chan struct{})
		f.add(func() { <-unblock })
		var errs []error
		f.hold()
		// a takes over: firewall drops first (accept mode off), then its
		// address, its first GARP, its repeats, its transition log.
		f.install(l.rec("fw a"))
		queueVIP(f, "10.0.0.1", 2, &errs)
		f.first(l.rec("arp 10.0.0.1"))
		f.later(l.rec("arp 10.0.0.1 x4"))
		f.later(l.rec("log a"))
		// b takes over (its add fails).
		queueVIP(f, "10.0.0.2", -1, &errs)
		f.first(l.rec("arp 10.0.0.2"))
		f.later(l.rec("arp 10.0.0.2 x4"))
		f.later(l.rec("log b"))
		// c leaves master: a barrier.
		f.add(l.rec("-10.0.0.3"))
		f.install(l.rec("fw c"))
		// d takes over after it.
		queueVIP(f, "10.0.0.4", 2, &errs)
		f.first(l.rec("arp 10.0.0.4"))
		close(unblock)
		synctest.Wait()
		if diff := cmp.Diff([]string{"fw a", "+10.0.0.1", "+10.0.0.2"}, l.got()); diff != "" {
			t.Errorf("during the turn (-want +got):\n%s", diff)
		}
		f.release()
		synctest.Wait()
		want := []string{
			"fw a", "+10.0.0.1", "+10.0.0.2",
			"arp 10.0.0.1", "arp 10.0.0.2",
			"arp 10.0.0.1 x4", "log a", "arp 10.0.0.2 x4", "log b",
			"-10.0.0.3", "fw c", "+10.0.0.4", "arp 10.0.0.4",
		}
		if diff := cmp.Diff(want, l.got()); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][]string{{"10.0.0.1", "10.0.0.2"}, {"10.0.0.4"}}, l.batches); diff != "" {
			t.Errorf("AddVIPs calls (-want +got):\n%s", diff)
		}
		if len(errs) != 3 || errs[0] != nil || errs[1] == nil || errs[2] != nil {
			t.Errorf("results %v, want only the second address's add failed", errs)
		}

		// A turn that installs nothing holds nothing back.
		f.hold()
		f.first(l.rec("refresh 10.0.0.1"))
		synctest.Wait()
		if got := l.got(); got[len(got)-1] != "refresh 10.0.0.1" {
			t.Errorf("an announcement waited for the end of a turn without installs: %q", got)
		}
		f.release()
		want = append(want, "refresh 10.0.0.1")

		// Installs queued while announcements wait go first.
		unblock = make(chan struct{})
		f.add(func() { <-unblock })
		f.first(l.rec("arp 10.0.0.5"))
		f.later(l.rec("log e"))
		queueVIP(f, "10.0.0.6", 2, &errs)
		f.add(l.rec("-10.0.0.6"))
		f.first(l.rec("arp after removal"))
		close(unblock)
		f.close() // runs what is queued, then stops the worker
		want = append(want, "+10.0.0.6", "arp 10.0.0.5", "log e", "-10.0.0.6", "arp after removal")
		if diff := cmp.Diff(want, l.got()); diff != "" {
			t.Errorf("after close (-want +got):\n%s", diff)
		}
	})
}
