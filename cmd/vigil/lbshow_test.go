package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/lb/nft"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// `vigil lb show` prints what the nftables backend holds, and changes
// nothing.
func TestLBShow(t *testing.T) {
	bin := netnstest.VigilBinary(t)
	l := netnstest.New(t, "lbshow")
	h := netnstest.AddHost(t, l, "dir", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.0.0.1/24"}})
	var be *nft.Backend
	if err := h.Do(func() error { var err error; be, err = nft.New(nft.Options{}); return err }); err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	k := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}
	st := lb.NewState()
	st.Services[k] = lb.Service{Scheduler: "rr", Timeout: 50, Netmask: 0xffffffff}
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("192.168.118.129:80")}] = lb.Dest{Weight: 1, Method: lb.NAT}
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("192.168.118.131:80")}] = lb.Dest{Weight: 0, Method: lb.NAT}
	// A direct-routing service, with its flow counts.
	dk := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("10.0.0.100"), Port: 80}
	st.Services[dk] = lb.Service{Scheduler: "wrr", Netmask: 0xffffffff}
	st.Dests[lb.DestKey{Service: dk, Addr: netip.MustParseAddrPort("10.0.0.2:80")}] = lb.Dest{Weight: 2, Method: lb.DR}
	if err := be.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	before, err := h.Run("nft", "list", "table", "inet", "vigil")
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Run(bin, "lb", "show", "--backend", "nftables")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"Backend nftables (table inet vigil, direct routing in table netdev vigil_dr)",
		"Prot LocalAddress:Port Scheduler Flags",
		"  -> RemoteAddress:Port           Forward Weight",
		"TCP  10.0.0.100:80 wrr flows 0",
		"  -> 10.0.0.2:80                  Route   2      flows 0",
		"TCP  192.168.118.110:80 rr persistent 50",
		"  -> 192.168.118.129:80           Masq    1",
		"  -> 192.168.118.131:80           Masq    0",
		"",
	}, "\n")
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if after, _ := h.Run("nft", "list", "table", "inet", "vigil"); after != before {
		t.Errorf("lb show changed the table")
	}
	if out, err := h.Run(bin, "lb", "show", "--backend", "ipvs"); err == nil || !strings.Contains(out, "no IPVS") {
		t.Errorf("--backend ipvs without IPVS: %q %v", out, err)
	}
}
