package director

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/status"
)

// TestAddCountersSumsKernelServices: a virtual server sums the counters of
// its kernel services (a group has several), a real server its
// destinations in them, a port-less destination matching too; servers the
// kernel does not list get none.
func TestAddCountersSumsKernelServices(t *testing.T) {
	k1 := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("10.0.0.100"), Port: 80}
	k2 := lb.ServiceKey{Family: lb.IPv4, FWMark: 3}
	rs := netip.MustParseAddrPort("10.0.1.1:80")
	st := lb.NewStats()
	st.Services[k1] = lb.Counters{Conns: 2, InPkts: 10, OutPkts: 8, InBytes: 100, OutBytes: 900}
	st.Services[k2] = lb.Counters{Conns: 1, InPkts: 5}
	st.Dests[lb.DestKey{Service: k1, Addr: rs}] = lb.Counters{Conns: 2, InPkts: 10, OutPkts: 8, InBytes: 100, OutBytes: 900}
	st.Dests[lb.DestKey{Service: k2, Addr: netip.AddrPortFrom(rs.Addr(), 0)}] = lb.Counters{Conns: 1, InPkts: 5}
	vss := []status.VirtualServer{
		{Name: "[g]:0", RealServers: []status.RealServer{{Addr: rs.String()}, {Addr: "10.0.1.2:80"}}},
		{Name: "FWM 9", RealServers: []status.RealServer{{Addr: rs.String()}}},
	}
	addCounters(vss, serviceKeys{{k1, k2}, {{Family: lb.IPv4, FWMark: 9}}}, st)
	want := &status.Kernel{Connections: 3, PacketsIn: 15, PacketsOut: 8, BytesIn: 100, BytesOut: 900}
	if diff := cmp.Diff(want, vss[0].Kernel); diff != "" {
		t.Errorf("virtual server (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(want, vss[0].RealServers[0].Kernel); diff != "" {
		t.Errorf("real server (-want +got)\n%s", diff)
	}
	if vss[0].RealServers[1].Kernel != nil || vss[1].Kernel != nil || vss[1].RealServers[0].Kernel != nil {
		t.Error("counters for servers the kernel does not list")
	}
}
