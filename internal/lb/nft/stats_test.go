package nft

import (
	"bufio"
	"net/netip"
	"testing"

	"github.com/vigil-ha/vigil/internal/lb"
)

func (tt *tutorial) stats(t *testing.T) lb.Stats {
	t.Helper()
	var st lb.Stats
	if err := tt.dir.Do(func() (err error) { st, err = StatsReader{}.Stats(t.Context()); return err }); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestNATCounters: traffic through the NAT service shows in its counters
// and in each real server's, both ways, from remote and local clients; a
// weight change keeps the counts; a removed server's counters go.
func TestNATCounters(t *testing.T) {
	tt := newTutorial(t)
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, 1))
	want(t, "rr", tt.count(t, 6, src1), map[string]int{"web1": 3, "web2": 3})
	c, err := dial(tt.dir, netip.Addr{}, netip.AddrPortFrom(tutVIP, 80))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(c, bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	c.Close()

	st := tt.stats(t)
	svc := st.Services[tutKey]
	if svc.Conns != 7 || svc.InPkts < 7*3 || svc.OutPkts < 6*3 || svc.InBytes == 0 || svc.OutBytes <= svc.InBytes/4 {
		t.Errorf("service counters %+v: want 7 connections, packets and bytes both ways", svc)
	}
	var sum lb.Counters
	for _, a := range []netip.AddrPort{tutWeb1, tutWeb2} {
		d := st.Dests[lb.DestKey{Service: tutKey, Addr: a}]
		if d.Conns < 3 || d.InPkts == 0 || d.OutPkts == 0 || d.InBytes == 0 || d.OutBytes == 0 {
			t.Errorf("%v counters %+v: want 3 or 4 connections and traffic both ways", a, d)
		}
		sum.Add(d)
	}
	// The service's and the servers' counters are read one after the
	// other: a connection's last ACK may land in between.
	near := func(a, b, by uint64) bool { return a <= b+by && b <= a+by }
	if sum.Conns != svc.Conns || !near(sum.InPkts, svc.InPkts, 2) || !near(sum.OutPkts, svc.OutPkts, 2) ||
		!near(sum.InBytes, svc.InBytes, 200) || !near(sum.OutBytes, svc.OutBytes, 200) {
		t.Errorf("real servers sum to %+v, service %+v", sum, svc)
	}

	// A weight change rebuilds the service's maps, not its counters.
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, 0))
	after := tt.stats(t)
	// (A connection's last FIN or ACK may still pass: packets may grow.)
	if got, was := after.Dests[lb.DestKey{Service: tutKey, Addr: tutWeb2}], st.Dests[lb.DestKey{Service: tutKey, Addr: tutWeb2}]; !kept(got, was) {
		t.Errorf("web2 drained: counters %+v, were %+v", got, was)
	}
	want(t, "drained", tt.count(t, 2, src1), map[string]int{"web1": 2})
	if got := tt.stats(t).Services[tutKey].Conns; got != 9 {
		t.Errorf("%d connections after two more, want 9", got)
	}

	// A removed server's counters go, the others' stay (their rules are
	// rebuilt, not their counters); the table stays coherent.
	web1 := tt.stats(t).Dests[lb.DestKey{Service: tutKey, Addr: tutWeb1}]
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, -1))
	after = tt.stats(t)
	if _, ok := after.Dests[lb.DestKey{Service: tutKey, Addr: tutWeb2}]; ok {
		t.Error("web2 removed but its counters remain")
	}
	if got := after.Dests[lb.DestKey{Service: tutKey, Addr: tutWeb1}]; !kept(got, web1) || got.Conns < 5 {
		t.Errorf("web1's counters after web2 went: %+v, were %+v", got, web1)
	}
	want(t, "web1 alone", tt.count(t, 1, src1), map[string]int{"web1": 1})
	if got := tt.stats(t).Dests[lb.DestKey{Service: tutKey, Addr: tutWeb1}].Conns; got != web1.Conns+1 {
		t.Errorf("web1 counted %d connections after one more, want %d", got, web1.Conns+1)
	}
	obs, err := tt.be.Observe(t.Context())
	if err != nil || len(obs.Dests) != 1 {
		t.Errorf("observe after counters: %v %v", obs, err)
	}
	tt.apply(t, lb.NewState())
	if st := tt.stats(t); len(st.Services)+len(st.Dests) != 0 {
		t.Errorf("counters of removed services remain: %+v", st)
	}
}

// TestCounterNamesRoundTrip: every counter name reads back as the service
// and destination it was made for.
func TestCounterNamesRoundTrip(t *testing.T) {
	keys := []lb.ServiceKey{tutKey,
		{Family: lb.IPv6, Proto: lb.UDP, Addr: netip.MustParseAddr("fd01::110"), Port: 53},
		{Family: lb.IPv6, Proto: lb.SCTP, Addr: netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), Port: 0},
		{Family: lb.IPv6, FWMark: 7}}
	dests := []netip.AddrPort{{}, tutWeb1, netip.MustParseAddrPort("[fd00::2]:8080"), netip.MustParseAddrPort("[::1]:0")}
	for _, k := range keys {
		for _, d := range dests {
			for _, kind := range []string{"conn", "in", "out"} {
				n := counterName(kind, k, d)
				gk, gotK, gotD, ok := parseCounterName(n)
				if !ok || gk != kind || gotK != k || gotD != d {
					t.Errorf("%s: read back %v %q %v %v, want %q %v %v", n, ok, gk, gotK, gotD, kind, k, d)
				}
			}
		}
	}
	for _, bad := range []string{"stat_", "stat_in", "stat_in_tcp", "stat_in_tcp_1_2_3_4", "stat_in_xyz_1_2_3_4_80", "stat_in_fwm4_0", "svc_tcp_1_2_3_4_80"} {
		if _, _, _, ok := parseCounterName(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// kept reports whether counters read later are the same connections' (no
// new connection, no count lost).
func kept(got, was lb.Counters) bool {
	return got.Conns == was.Conns && got.InPkts >= was.InPkts && got.OutPkts >= was.OutPkts &&
		got.InBytes >= was.InBytes && got.OutBytes >= was.OutBytes
}
