package e2e_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// TestARPStormPair: a host on the LAN sends a storm of gratuitous ARPs, half
// of them claiming the VIP each with another MAC, half announcing other
// addresses. The master keeps its state and the VIP, answers the claims a
// few times rather than once per claim, counts them, logs a few lines, and
// its memory does not grow with the storm; the backup is left alone.
func TestARPStormPair(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "arpstorm", 2)
	m := e.start(e2e.Vigil, 0, conf(fast("MASTER", 100)))
	b := e.start(e2e.Vigil, 1, conf(fast("BACKUP", 90)))
	e.waitState(m, "VI_1", "MASTER", 10*time.Second)
	e.waitState(b, "VI_1", "BACKUP", 10*time.Second)
	s, ifindex := openSender(t, e.net.Client, "eth0")
	defer s.Close()
	before, err := m.Usage()
	if err != nil {
		t.Fatal(err)
	}
	mb, bb := status_(t, m, "VI_1"), status_(t, b, "VI_1")
	h := e.holders(e2e.VIP4)
	const n = 20000
	start := time.Now()
	for k := range n {
		mac := net.HardwareAddr{0x02, 0x42, 0, byte(k >> 16), byte(k >> 8), byte(k)}
		addr := e2e.VIP4
		if k%2 == 1 {
			addr = netip.AddrFrom4([4]byte{192, 168, 1, byte(150 + k%100)})
		}
		if err := s.SendARP(ifindex, mac, addr); err != nil {
			t.Fatal(err)
		}
		if k%100 == 99 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second) // the answers to the last claims
	elapsed := time.Since(start)
	st := e.checkOverlap(h, 0)
	if st.MaxNone > 0 {
		t.Errorf("no node held the VIP for %v during the storm", st.MaxNone)
	}
	after, err := m.Usage()
	if err != nil {
		t.Fatal(err)
	}
	ma, ba := status_(t, m, "VI_1"), status_(t, b, "VI_1")
	conflicts, answers := ma.Counters.VIPConflicts-mb.Counters.VIPConflicts, ma.Counters.Announcements-mb.Counters.Announcements
	t.Logf("master: %d claims counted of %d, %d announcements in %v; CPU %v; anon RSS %d -> %d KiB",
		conflicts, n/2, answers, elapsed.Round(time.Millisecond), after.CPU-before.CPU, before.Anon>>10, after.Anon>>10)
	if conflicts < n/4 {
		t.Errorf("master counted %d of %d claims: the test would prove nothing", conflicts, n/2)
	}
	// An answer (a burst of garp_master_repeat, 5) per claim window of
	// about 1.2 s, with slack for the edges.
	if max := 5 * (uint64(elapsed/time.Second) + 2); answers > max {
		t.Errorf("master sent %d announcements for %d claims in %v, want at most %d", answers, conflicts, elapsed.Round(time.Millisecond), max)
	}
	if ma.State != "MASTER" || ma.Counters.Transitions != mb.Counters.Transitions ||
		ba.State != "BACKUP" || ba.Counters.Transitions != bb.Counters.Transitions {
		t.Errorf("after the storm: master %s (%d transitions), backup %s (%d)", ma.State,
			ma.Counters.Transitions-mb.Counters.Transitions, ba.State, ba.Counters.Transitions-bb.Counters.Transitions)
	}
	if lines := strings.Count(m.Log(), "address conflict"); lines > 10 {
		t.Errorf("%d conflict log lines for %d claims", lines, n/2)
	}
	if grow := after.Anon - before.Anon; grow > 16<<20 {
		t.Errorf("master's anonymous memory grew by %d KiB over the storm", grow>>10)
	}
}
