package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netif"
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
