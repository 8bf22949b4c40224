package nft

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/lb"
)

// What `vigil check` reports for direct routing and tunnelling on the
// nftables data plane, at the line of each virtual or real server.
func TestCapabilitiesDR(t *testing.T) {
	rs := func(a string, m lb.Method) []lb.RealServer {
		return []lb.RealServer{{Addr: netip.MustParseAddr(a), Port: 80, Method: m}}
	}
	specs := []lb.VirtualServer{
		// The seed's virtual server: only what DR on nftables never does.
		{Addr: netip.MustParseAddr("192.168.118.110"), Port: 80, Proto: lb.TCP, Family: lb.IPv4, Scheduler: "rr", Method: lb.DR, Reals: rs("192.168.118.131", lb.DR)},
		{Addr: netip.MustParseAddr("192.168.118.111"), Port: 80, Proto: lb.TCP, Family: lb.IPv4, Scheduler: "mh", Method: lb.DR, Reals: rs("192.168.118.131", lb.DR)},
		{Addr: netip.MustParseAddr("192.168.118.112"), Port: 80, Proto: lb.TCP, Family: lb.IPv4, Scheduler: "wlc", Method: lb.DR, Reals: rs("192.168.118.131", lb.DR)},
		{FWMark: 3, Family: lb.IPv4, Scheduler: "rr", Method: lb.DR, Reals: rs("192.168.118.131", lb.DR)},
		{Addr: netip.MustParseAddr("192.168.118.113"), Port: 80, Proto: lb.TCP, Family: lb.IPv4, Scheduler: "rr", Method: lb.TUN, Reals: rs("10.9.9.9", lb.TUN)},
	}
	// Virtual server i is declared on line 2i+1, its real server on 2i+2.
	var got []string
	for _, d := range Capabilities().Check(specs) {
		line := 2*d.VS + 1
		if d.Real >= 0 {
			line += 1 + d.Real
		}
		got = append(got, fmt.Sprintf("k:%d: %s", line, d))
	}
	icmp := "ICMP errors about its connections (path MTU) and IP fragments after the first reach the director, not the real servers (IPVS relays them): keep one MTU on the paths to the clients, or clamp the MSS (lvs_backend nftables)"
	want := []string{
		"k:1: warning: virtual server [192.168.118.110]:tcp:80: lb_kind DR: " + icmp,
		"k:3: warning: virtual server [192.168.118.111]:tcp:80: lb_kind DR: " + icmp,
		"k:5: warning: virtual server [192.168.118.112]:tcp:80: lb_kind DR: " + icmp,
		"k:5: warning: virtual server [192.168.118.112]:tcp:80: lb_algo wlc is applied as wrr: connection counts are not visible to nftables; weighted round robin is used (lvs_backend nftables)",
		"k:7: warning: virtual server FWM 3: lb_kind DR: " + icmp,
		"k:7: warning: virtual server FWM 3: fwmark 3: direct routing on nftables runs at the netdev ingress hook, before iptables and nftables mangle rules: only a mark set at ingress (tc, or a netdev ingress chain with priority below 0) selects this service (lvs_backend nftables)",
		"k:10: error: virtual server [192.168.118.113]:tcp:80: real server 10.9.9.9:80: lb_kind TUN is not supported (nftables cannot encapsulate packets (IP-in-IP, GRE, GUE) and this data plane has no tunnel devices: TUN needs IPVS (lvs_backend ipvs, on a kernel with ip_vs and ipip)); supported: NAT, DR (lvs_backend nftables)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Apply refuses what the DR table cannot hold, saying why.
func TestSplitRefuses(t *testing.T) {
	k := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}
	for _, tt := range []struct {
		name  string
		dests map[string]lb.Method
		want  string
	}{
		{"tun", map[string]lb.Method{"10.0.0.1:80": lb.TUN}, "lb_kind TUN needs IPVS (lvs_backend ipvs): nftables cannot encapsulate packets"},
		{"mixed", map[string]lb.Method{"10.0.0.1:80": lb.NAT, "10.0.0.2:80": lb.DR}, "NAT and DR real servers in one virtual server need IPVS"},
		{"same address", map[string]lb.Method{"10.0.0.1:80": lb.DR, "10.0.0.1:8080": lb.DR}, "direct routing cannot change the port"},
	} {
		s := lb.NewState()
		s.Services[k] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
		for a, m := range tt.dests {
			s.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort(a)}] = lb.Dest{Weight: 1, Method: m}
		}
		b := &Backend{}
		if _, _, err := b.split(s); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// What Apply refuses, `vigil check` (Capabilities) reports first: a
// virtual server the check passes is one Apply takes, so that one of them
// cannot stall every other service of the batch at run time. The mixes
// were accepted by the check and refused by Apply.
func TestCapabilitiesCoverApply(t *testing.T) {
	a := netip.MustParseAddr
	nat := func(addr string, port uint16) lb.RealServer {
		return lb.RealServer{Addr: a(addr), Port: port, Weight: 1, Method: lb.NAT}
	}
	dr := func(addr string, port uint16) lb.RealServer {
		return lb.RealServer{Addr: a(addr), Port: port, Weight: 1, Method: lb.DR}
	}
	vip := func(port uint16, reals ...lb.RealServer) lb.VirtualServer {
		return lb.VirtualServer{Addr: a("192.168.118.110"), Port: port, Proto: lb.TCP, Family: lb.IPv4, Scheduler: "rr", Method: reals[0].Method, Reals: reals}
	}
	mark := func(reals ...lb.RealServer) lb.VirtualServer {
		return lb.VirtualServer{FWMark: 7, Family: lb.IPv4, Scheduler: "rr", Method: reals[0].Method, Reals: reals}
	}
	for _, tt := range []struct {
		name string
		vs   lb.VirtualServer
	}{
		{"nat", vip(80, nat("10.0.0.1", 8080), nat("10.0.0.2", 80))},
		{"dr", vip(80, dr("10.0.0.1", 80), dr("10.0.0.2", 80))},
		{"nat and dr", vip(80, nat("10.0.0.1", 80), dr("10.0.0.2", 80))},
		{"fwmark nat with ports", mark(nat("10.0.0.1", 80), nat("10.0.0.2", 81))},
		{"fwmark nat without ports", mark(nat("10.0.0.1", 0), nat("10.0.0.2", 0))},
		{"fwmark nat with and without", mark(nat("10.0.0.1", 80), nat("10.0.0.2", 0))},
		{"port 0 nat with and without", vip(0, nat("10.0.0.1", 80), nat("10.0.0.2", 0))},
		{"ipv6 real server", vip(80, nat("fd00::1", 80))},
	} {
		specs := []lb.VirtualServer{tt.vs}
		flagged := lb.Err(Capabilities().Check(specs))
		st := lb.NewPolicy(lb.PolicyOptions{}).Desired(specs, lb.Health{}, nil).State
		_, _, refused := (&Backend{}).split(st)
		if (flagged != nil) != (refused != nil) {
			t.Errorf("%s: the check says %v; Apply says %v", tt.name, flagged, refused)
		}
	}
}
