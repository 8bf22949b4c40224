package nft

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// A NAT service of hundreds of real servers, persistent or not: its
// scheduling table and destination map run past the 64 KiB a netlink
// attribute holds. The kernel refused it (ENOENT: the attribute length
// wrapped: 300 persistent real servers, 3000 without persistence) and,
// since one batch carries every service, every other service with it. Now
// the elements go in chunks, and Observe reads back what was applied.
func TestNATLargeService(t *testing.T) {
	l := netnstest.New(t, "lbbig")
	h := netnstest.AddHost(t, l, "dir")
	small := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}
	for _, tc := range []struct {
		reals   int
		persist uint32
	}{{300, 300}, {600, 300}, {1000, 0}, {3000, 0}} {
		t.Run(fmt.Sprintf("%d reals, persistence %d", tc.reals, tc.persist), func(t *testing.T) {
			var be *Backend
			if err := h.Do(func() error { var err error; be, err = New(Options{}); return err }); err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			s := lb.NewState()
			s.Services[small] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
			s.Dests[lb.DestKey{Service: small, Addr: netip.MustParseAddrPort("10.0.0.2:8080")}] = lb.Dest{Weight: 1, Method: lb.NAT}
			k := lb.ServiceKey{Family: lb.IPv6, Proto: lb.TCP, Addr: netip.MustParseAddr("fd01::100"), Port: 80}
			s.Services[k] = lb.Service{Scheduler: "wrr", Netmask: 128, Timeout: tc.persist}
			for i := range tc.reals {
				a := netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("fd00::%x", i+2)), 8080)
				s.Dests[lb.DestKey{Service: k, Addr: a}] = lb.Dest{Weight: uint32(1 + i%7), Method: lb.NAT}
			}
			if err := be.Apply(t.Context(), s); err != nil {
				t.Fatalf("apply: %v", err)
			}
			var got lb.State
			if err := h.Do(func() error {
				fresh, err := New(Options{})
				if err != nil {
					return err
				}
				defer fresh.Close()
				got, err = fresh.Observe(t.Context())
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(s, got); diff != "" {
				t.Errorf("read back (-applied +kernel):\n%s", diff)
			}
		})
	}
}
