package e2e_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// TestForgedAdvertFlood: a host on the LAN floods the master with forged
// adverts it must answer or report: lower priorities (answer, then
// garp_lower_prio_repeat announcements) and priority 0 with an address list
// that changes every packet. The master stays MASTER with its VIP, sends
// answers and announcement bursts at most once per vrrp.AnswerGap each, not
// one per packet, and logs the changing address lists in one line, not one
// per packet.
func TestForgedAdvertFlood(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "flood", 1)
	in := fast("MASTER", 100)
	in.Extra = append(in.Extra, "garp_lower_prio_repeat 2")
	r1 := e.start(e2e.Vigil, 0, conf(in))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	j, err := e2e.NewInjector(e.net.Client, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	group := netip.MustParseAddr("224.0.0.18")
	advert := func(prio uint8, addr netip.Addr) []byte {
		a := packet.Advert{Version: 3, Type: 1, VRID: 55, Priority: prio, CountIPAddrs: 1, AdvertInt: 10,
			Addrs: []netip.Addr{addr}}
		b, err := a.Marshal(e2e.Client4, group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	before := status_(t, r1, "VI_1")
	start := time.Now()
	const n = 2000
	for k := range n {
		if err := j.Send(e2e.Client4, group, 255, 112, advert(50, e2e.VIP4)); err != nil {
			t.Fatal(err)
		}
		other := netip.AddrFrom4([4]byte{10, 0, byte(k >> 8), byte(k)})
		if err := j.Send(e2e.Client4, group, 255, 112, advert(0, other)); err != nil {
			t.Fatal(err)
		}
		if k%200 == 199 {
			time.Sleep(5 * time.Millisecond) // let the socket drain: the test wants the packets read
		}
	}
	time.Sleep(time.Second)
	after := status_(t, r1, "VI_1")
	elapsed := time.Since(start)
	received := after.Counters.AdvertsReceived - before.Counters.AdvertsReceived
	if received < n {
		t.Fatalf("only %d of %d forged adverts reached the master: the test would prove nothing", received, 2*n)
	}
	// Per AnswerGap: one answer to a lower priority, one to a priority 0;
	// plus the regular adverts (advert_int 0.1), and slack for the edges.
	gaps := uint64(elapsed/vrrp.AnswerGap) + 1
	sent := after.Counters.AdvertsSent - before.Counters.AdvertsSent
	if max := 2*gaps + uint64(elapsed/(100*time.Millisecond)) + 4; sent > max {
		t.Errorf("the master sent %d adverts in %v for %d forged ones, want at most %d (one answer of each kind per %v)",
			sent, elapsed.Round(time.Millisecond), received, max, vrrp.AnswerGap)
	}
	if garps, max := after.Counters.Announcements-before.Counters.Announcements, 2*gaps; garps > max {
		t.Errorf("%d gratuitous ARPs for the flood, want at most %d (a burst of 2 per %v)", garps, max, vrrp.AnswerGap)
	}
	if after.State != "MASTER" || after.Counters.Transitions != before.Counters.Transitions || !e.holds(e.node(0), e2e.VIP4) {
		t.Errorf("after the flood: %s, transitions %d -> %d, holds the VIP %v",
			after.State, before.Counters.Transitions, after.Counters.Transitions, e.holds(e.node(0), e2e.VIP4))
	}
	if lines := strings.Count(r1.Log(), "address list differs"); lines > 1 {
		t.Errorf("%d log lines for %d adverts with changing address lists, want 1", lines, n)
	}
}
