package runspec

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/netif"
)

// The VRRP socket is on the VMAC unless vmac_xmit_base keeps it on the
// configured interface.
func TestSockIf(t *testing.T) {
	for _, tc := range []struct {
		name string
		vmac netif.VMAC
		want string
	}{
		{"no vmac", netif.VMAC{}, "eth0"},
		{"vmac", netif.VMAC{Name: "vrrp.51"}, "vrrp.51"},
		{"vmac_xmit_base", netif.VMAC{Name: "vrrp.51", XmitBase: true}, "eth0"},
	} {
		if got := (InstanceSpec{Interface: "eth0", VMAC: tc.vmac}).SockIf(); got != tc.want {
			t.Errorf("%s: SockIf = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// CheckerKeys lists every checker of every real server, in order.
func TestCheckerKeys(t *testing.T) {
	a := lb.RealID{VS: "[10.0.0.1]:tcp:80", Addr: netip.MustParseAddrPort("10.0.0.2:80")}
	b := lb.RealID{VS: "[10.0.0.1]:tcp:80", Addr: netip.MustParseAddrPort("10.0.0.3:80")}
	s := DirectorSpec{Checks: []RealCheck{
		{ID: a, Checkers: []CheckerSpec{{Key: "tcp"}, {Key: "http"}}},
		{ID: b},
	}}
	want := []CheckerKey{{a, "tcp"}, {a, "http"}}
	if got := s.CheckerKeys(); !reflect.DeepEqual(got, want) {
		t.Errorf("CheckerKeys = %v, want %v", got, want)
	}
}
