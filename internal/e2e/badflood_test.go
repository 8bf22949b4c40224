package e2e_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// TestBadAdvertFloodPair: a host on the LAN floods a healthy vigil pair
// with adverts both must drop: an unknown VRID, a bad checksum, TTL 254, the
// wrong version, all claiming priority 200. Neither node changes state, only
// the master holds the VIP throughout, every drop that reached a node is
// counted by reason, the drop log stays within its budget, and the
// daemons' memory does not grow with the flood. The CPU figures are logged.
func TestBadAdvertFloodPair(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "badflood", 2)
	m := e.start(e2e.Vigil, 0, conf(fast("MASTER", 100)))
	b := e.start(e2e.Vigil, 1, conf(fast("BACKUP", 90)))
	e.waitState(m, "VI_1", "MASTER", 10*time.Second)
	e.waitState(b, "VI_1", "BACKUP", 10*time.Second)
	j, err := e2e.NewInjector(e.net.Client, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	group := netip.MustParseAddr("224.0.0.18")
	advert := func(version, vrid uint8) []byte {
		a := packet.Advert{Version: version, Type: 1, VRID: vrid, Priority: 200, CountIPAddrs: 1, AdvertInt: 10,
			Addrs: []netip.Addr{e2e.VIP4}}
		if version == 2 {
			a.AdvertInt = 1
		}
		p, err := a.Marshal(e2e.Client4, group)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknownVRID := advert(3, 77)
	badSum := advert(3, 55)
	badSum[6] ^= 0xff
	good := advert(3, 55) // sent with TTL 254
	v2 := advert(2, 55)
	type snap struct {
		transitions uint64
		dropped     uint64
		usage       e2e.ProcUsage
	}
	read := func(nd *e2e.Node) snap {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := nd.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var s snap
		for _, n := range st.Daemon.Dropped {
			s.dropped += n
		}
		for _, in := range st.Instances {
			s.transitions += in.Counters.Transitions
			for _, n := range in.Counters.Dropped {
				s.dropped += n
			}
		}
		if s.usage, err = nd.Usage(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A first round warms the daemons up (buffers, maps of reasons): the
	// memory compared is that of the second, ten times larger.
	flood := func(rounds int) {
		for k := range rounds {
			for _, p := range []struct {
				b   []byte
				ttl int
			}{{unknownVRID, 255}, {badSum, 255}, {good, 254}, {v2, 255}} {
				if err := j.Send(e2e.Client4, group, p.ttl, 112, p.b); err != nil {
					t.Fatal(err)
				}
			}
			if k%50 == 49 {
				time.Sleep(5 * time.Millisecond) // let the sockets drain: the test wants the packets read
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	flood(500)
	h := e.holders(e2e.VIP4)
	before := []snap{read(m), read(b)}
	const rounds = 5000
	start := time.Now()
	flood(rounds)
	elapsed := time.Since(start)
	after := []snap{read(m), read(b)}
	st := e.checkOverlap(h, 0)
	if st.MaxNone > 0 {
		t.Errorf("no node held the VIP for %v during the flood", st.MaxNone)
	}
	for i, nd := range []*e2e.Node{m, b} {
		bf, af := before[i], after[i]
		dropped := af.dropped - bf.dropped
		t.Logf("%s: %d of %d bad adverts counted as dropped in %v; CPU %v (%.1f µs a packet); anon RSS %d -> %d KiB",
			nd.Name(), dropped, 4*rounds, elapsed.Round(time.Millisecond), af.usage.CPU-bf.usage.CPU,
			float64((af.usage.CPU-bf.usage.CPU).Microseconds())/float64(max(dropped, 1)), bf.usage.Anon>>10, af.usage.Anon>>10)
		if dropped < rounds {
			t.Errorf("%s: only %d of %d bad adverts counted: the test would prove nothing", nd.Name(), dropped, 4*rounds)
		}
		if af.transitions != bf.transitions {
			t.Errorf("%s: %d transitions during the flood", nd.Name(), af.transitions-bf.transitions)
		}
		if grow := af.usage.Anon - bf.usage.Anon; grow > 16<<20 {
			t.Errorf("%s: anonymous memory grew by %d KiB over %d bad adverts", nd.Name(), grow>>10, 4*rounds)
		}
		// One line per instance and reason per 10 s (3 reasons reach
		// the instance) and one for the daemon's unknown VRID at most.
		if lines := strings.Count(nd.Log(), "packet dropped"); lines > 8 {
			t.Errorf("%s: %d drop log lines for %d bad adverts", nd.Name(), lines, 4*(rounds+500))
		}
	}
	if got := status_(t, m, "VI_1").State; got != "MASTER" {
		t.Errorf("master is %s after the flood", got)
	}
	if got := status_(t, b, "VI_1").State; got != "BACKUP" {
		t.Errorf("backup is %s after the flood", got)
	}
}
