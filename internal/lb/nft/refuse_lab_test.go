package nft

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/lb"
)

// One virtual service the kernel refuses keeps out no other: Apply falls
// back to a batch per service, the good ones answer on the wire, the
// refused one is named in Apply's error (the reconciler logs and counts
// it) and keeps what the kernel had for it. Before, one refused batch left
// every service out (or at its old version).
func TestApplyRefusedServiceKeepsOthers(t *testing.T) {
	tt := newTutorial(t)
	bad := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: tutVIP, Port: 81}
	other := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: tutVIP, Port: 82}
	st := func(badWeight uint32) lb.State {
		s := state(lb.Service{Scheduler: "rr"}, 1, 1)
		for _, k := range []lb.ServiceKey{bad, other} {
			s.Services[k] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
		}
		s.Dests[lb.DestKey{Service: bad, Addr: tutWeb1}] = lb.Dest{Weight: badWeight, Method: lb.NAT}
		s.Dests[lb.DestKey{Service: other, Addr: tutWeb2}] = lb.Dest{Weight: 1, Method: lb.NAT}
		return s
	}
	refusing := true
	tt.be.refuse = func(k lb.ServiceKey) bool { return refusing && k == bad }

	err := tt.be.Apply(t.Context(), st(1))
	if err == nil || !strings.Contains(err.Error(), "refused 1 of 3") || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("apply with one refused service: %v; want an error naming %v", err, bad)
	}
	if got, err := tt.get(src1); err != nil || (got != "web1" && got != "web2") {
		t.Errorf("service :80 beside the refused one: %q, %v", got, err)
	}
	if got, err := tt.getFrom(src1, netip.AddrPortFrom(tutVIP, 82)); err != nil || got != "web2" {
		t.Errorf("service :82 beside the refused one: %q, %v", got, err)
	}
	if _, err := tt.getFrom(src1, netip.AddrPortFrom(tutVIP, 81)); err == nil {
		t.Errorf("the refused service :81 answers")
	}
	have, err := tt.be.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := have.Services[bad]; ok || len(have.Services) != 2 {
		t.Errorf("kernel services %v: want :80 and :82 without :81", have.Services)
	}

	// The kernel takes it now: the next Apply installs it.
	refusing = false
	if err := tt.be.Apply(t.Context(), st(1)); err != nil {
		t.Fatalf("apply once the kernel takes it: %v", err)
	}
	if got, err := tt.getFrom(src1, netip.AddrPortFrom(tutVIP, 81)); err != nil || got != "web1" {
		t.Errorf("service :81 once the kernel takes it: %q, %v", got, err)
	}

	// A change the kernel refuses leaves the service at its old version.
	refusing = true
	if err := tt.be.Apply(t.Context(), st(2)); err == nil {
		t.Fatal("apply of a refused change: no error")
	}
	have, err = tt.be.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d := have.Dests[lb.DestKey{Service: bad, Addr: tutWeb1}]; d.Weight != 1 || len(have.Services) != 3 {
		t.Errorf("after a refused change: %v services, :81 -> web1 weight %d; want 3 services and the old weight 1", len(have.Services), d.Weight)
	}
}
