package lb_test

import (
	"fmt"
	"net/netip"

	"github.com/vigil-ha/vigil/internal/lb"
)

// The engine's wiring: specs from the configuration (which has applied
// keepalived's defaults and corrections) are checked against the backend once at load; every checker verdict (and VRRP
// address change) re-runs the policy, whose state goes to the reconciler and
// whose events are notify scripts and FIFO lines.
func Example() {
	specs := []lb.VirtualServer{{
		Addr: netip.MustParseAddr("192.168.118.110"), Port: 80, Proto: lb.TCP, Family: lb.IPv4,
		Scheduler: "rr", Method: lb.NAT, Quorum: 2, QuorumDown: "/etc/keepalived/quorum_down.sh",
		Reals: []lb.RealServer{
			{Addr: netip.MustParseAddr("192.168.118.131"), Port: 80, Weight: 1, Method: lb.NAT},
			{Addr: netip.MustParseAddr("192.168.118.129"), Port: 80, Weight: 1, Method: lb.NAT, NotifyDown: "/etc/keepalived/rs_down.sh"},
		},
	}}
	// At load: lb.Err(backend.Capabilities().Check(specs)) rejects what the
	// chosen backend cannot do.

	p := lb.NewPolicy(lb.PolicyOptions{})
	res := p.Desired(specs, nil, nil) // start-up: no verdict yet
	fmt.Print(res.State)
	for _, e := range res.Events {
		fmt.Println(e.FIFOLine())
	}

	id := specs[0].ID()
	res = p.Desired(specs, lb.Health{
		{VS: id, Addr: netip.MustParseAddrPort("192.168.118.129:80")}: {State: lb.Down},
	}, nil)
	fmt.Print(res.State) // reconciler.Set(res.State)
	for _, e := range res.Events {
		fmt.Printf("%s (script %q)\n", e.FIFOLine(), e.Script)
	}
	// Output:
	// Prot LocalAddress:Port Scheduler Flags
	//   -> RemoteAddress:Port           Forward Weight
	// TCP  192.168.118.110:80 rr
	//   -> 192.168.118.129:80           Masq    1
	//   -> 192.168.118.131:80           Masq    1
	// VS [192.168.118.110]:tcp:80 UP
	// Prot LocalAddress:Port Scheduler Flags
	//   -> RemoteAddress:Port           Forward Weight
	// TCP  192.168.118.110:80 rr
	//   -> 192.168.118.131:80           Masq    1
	// RS [192.168.118.129]:tcp:80 [192.168.118.110]:tcp:80 DOWN (script "/etc/keepalived/rs_down.sh")
	// VS [192.168.118.110]:tcp:80 DOWN (script "/etc/keepalived/quorum_down.sh")
}
