package engine

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"golang.org/x/sys/unix"
)

// TestRouteWatchSkipsKernelRoutes: the route watch's record keeps routes
// of the kinds a virtual route can have and not the kernel's local and
// broadcast routes (one per address); either kind counts as a report.
func TestRouteWatchSkipsKernelRoutes(t *testing.T) {
	e := &Engine{}
	now := time.Now()
	local := netif.RouteKey{Dst: netip.MustParsePrefix("10.1.1.1/32"), Table: 255, Type: "local"}
	e.routeChanged(now, netif.RouteEvent{Key: local, Proto: unix.RTPROT_KERNEL})
	if !e.kernel.routesSeen || len(e.kernel.routes) != 0 {
		t.Fatalf("after a local route: seen %v, %d routes kept, want seen and none", e.kernel.routesSeen, len(e.kernel.routes))
	}
	for _, k := range []netif.RouteKey{
		{Dst: netip.MustParsePrefix("192.168.2.0/24")},
		{Dst: netip.MustParsePrefix("192.168.3.0/24"), Table: 100, Type: "blackhole"},
		{Dst: netip.MustParsePrefix("10.1.1.2/32"), Table: 255, Type: "local"}, // a virtual route of type local
	} {
		e.routeChanged(now, netif.RouteEvent{Key: k})
		if !e.kernel.routes[k] {
			t.Errorf("route %v not kept", k)
		}
	}
	e.routeChanged(now, netif.RouteEvent{Key: netif.RouteKey{Dst: netip.MustParsePrefix("192.168.2.0/24")}, Deleted: true})
	if len(e.kernel.routes) != 2 {
		t.Errorf("%d routes after a deletion, want 2", len(e.kernel.routes))
	}
}

// TestHeldMeansTheAddresses: a master whose addresses are all on its
// interface holds them (vips_held) even when the kernel refused one of its
// virtual routes; the refused route shows in missingRoutes instead, and
// goes from there once the kernel reports it.
func TestHeldMeansTheAddresses(t *testing.T) {
	now := time.Now()
	vip := netif.VIP{Prefix: netip.MustParsePrefix("192.168.1.100/24"), Dev: "eth0"}
	ok := netif.Route{Dst: netip.MustParsePrefix("10.1.0.0/16"), Dev: "eth0"}
	refused := netif.Route{Dst: netip.MustParsePrefix("10.2.0.0/16"), Gw: netip.MustParseAddr("192.168.9.9"), Table: 100}
	in := &instance{held: true, spec: &runspec.InstanceSpec{Interface: "eth0", VIPs: []netif.VIP{vip}, Routes: []netif.Route{ok, refused}}}
	e := &Engine{links: map[string]netif.LinkInfo{"eth0": {Index: 2, Name: "eth0"}}}
	e.kernel.seen = true
	e.kernel.addrs = map[addrKey]bool{{2, vip.Addr()}: true}
	if got := e.missingRoutes(in); got != nil {
		t.Errorf("missing routes before the route watch's first report: %v, want none", got)
	}
	e.routeChanged(now, netif.RouteEvent{Key: ok.Key(), Initial: true})
	if !e.kernelHolds(in) {
		t.Error("kernelHolds: false with every address on its interface and a route refused")
	}
	if got, want := e.missingRoutes(in), []string{refused.String()}; !slices.Equal(got, want) {
		t.Errorf("missing routes %v, want %v", got, want)
	}
	e.routeChanged(now, netif.RouteEvent{Key: refused.Key()})
	if got := e.missingRoutes(in); got != nil {
		t.Errorf("missing routes %v once the kernel has them all", got)
	}
	delete(e.kernel.addrs, addrKey{2, vip.Addr()})
	if e.kernelHolds(in) {
		t.Error("kernelHolds: true with the address gone")
	}
	in.held = false
	if e.kernelHolds(in) || e.missingRoutes(in) != nil {
		t.Error("an instance that does not hold its addresses reports them held or routes missing")
	}
}
