package ipvs

import (
	"net/netip"
	"testing"

	cfipvs "github.com/cloudflare/ipvs"

	"github.com/vigil-ha/vigil/internal/lb"
)

// TestStatsReadsKernelCounters: the reader maps IPVS's service and
// destination statistics onto service and destination keys, preferring the
// 64-bit counters and falling back to the 32-bit ones of old kernels.
func TestStatsReadsKernelCounters(t *testing.T) {
	for _, only32 := range []bool{false, true} {
		f := newFake()
		f.only32 = only32
		b, err := New(Options{Client: f})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Apply(t.Context(), tutorialState()); err != nil {
			t.Fatal(err)
		}
		big := uint64(1) << 40
		if only32 {
			big = 1 << 30
		}
		f.svcStats = map[svcID]cfipvs.Stats{idOf(cfipvs.Service{Family: cfipvs.INET, Protocol: cfipvs.TCP, Address: web.Addr, Port: web.Port}): {
			Connections: 7, IncomingPackets: 70, OutgoingPackets: 60, IncomingBytes: big, OutgoingBytes: 6000}}
		f.destStats = map[netip.AddrPort]cfipvs.Stats{rs1: {Connections: 4, IncomingPackets: 40, OutgoingPackets: 30, IncomingBytes: 4000, OutgoingBytes: 3000}}
		st, err := StatsReader{Client: f}.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.Services[web], (lb.Counters{Conns: 7, InPkts: 70, OutPkts: 60, InBytes: big, OutBytes: 6000}); got != want {
			t.Errorf("32-bit only %v: service %+v, want %+v", only32, got, want)
		}
		if got, want := st.Dests[lb.DestKey{Service: web, Addr: rs1}], (lb.Counters{Conns: 4, InPkts: 40, OutPkts: 30, InBytes: 4000, OutBytes: 3000}); got != want {
			t.Errorf("32-bit only %v: rs1 %+v, want %+v", only32, got, want)
		}
		if _, ok := st.Dests[lb.DestKey{Service: web, Addr: rs2}]; !ok || len(st.Services) != 3 {
			t.Errorf("every service and destination should be listed: %+v", st)
		}
	}
}
