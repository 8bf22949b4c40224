package lb

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFormatShowListsEveryDestinationWithStateAndCounters(t *testing.T) {
	k := ServiceKey{Family: IPv4, Proto: TCP, Addr: netip.MustParseAddr("10.0.0.100"), Port: 80}
	a, b := netip.MustParseAddrPort("10.0.1.1:80"), netip.MustParseAddrPort("10.0.1.2:80")
	s := NewState()
	s.Services[k] = Service{Scheduler: "wrr", Netmask: 0xffffffff}
	s.Dests[DestKey{Service: k, Addr: a}] = Dest{Weight: 2, Method: NAT}
	s.Dests[DestKey{Service: k, Addr: b}] = Dest{Weight: 0, Method: NAT}
	st := NewStats()
	st.Services[k] = Counters{Conns: 12, InPkts: 120, OutPkts: 100, InBytes: 9000, OutBytes: 150000}
	st.Dests[DestKey{Service: k, Addr: a}] = Counters{Conns: 12, InPkts: 120, OutPkts: 100, InBytes: 9000, OutBytes: 150000}
	var out strings.Builder
	err := s.FormatShow(&out, ShowOptions{Stats: &st, DestState: func(dk DestKey, d Dest) string {
		if d.Weight == 0 {
			return "down"
		}
		return "up"
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"Prot LocalAddress:Port Scheduler Flags",
		"  -> RemoteAddress:Port Forward Weight State Conns InPkts OutPkts InBytes OutBytes",
		"TCP  10.0.0.100:80 wrr                       12    120    100     9000    150000",
		"  -> 10.0.1.1:80        Masq    2      up    12    120    100     9000    150000",
		"  -> 10.0.1.2:80        Masq    0      down  -     -      -       -       -",
		"",
	}, "\n")
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}
