package lb

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCapabilitiesCheck(t *testing.T) {
	caps := Capabilities{
		Backend:    "nftables",
		Schedulers: map[string]Support{"rr": {As: "rr"}, "wlc": {As: "wrr", Note: "no connection counts"}},
		Methods:    []Method{NAT},
	}
	specs := []VirtualServer{
		{Addr: netip.MustParseAddr("10.1.1.1"), Port: 80, Proto: TCP, Family: IPv4, Scheduler: "wlc", Method: NAT,
			Reals: []RealServer{{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Method: NAT, UThreshold: 5}}},
		{Addr: netip.MustParseAddr("10.1.1.2"), Port: 80, Proto: TCP, Family: IPv4, Scheduler: "lblc", Method: DR,
			Reals: []RealServer{{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Method: DR}}},
		// An IPv6 real server behind an IPv4 service needs TUN: one
		// finding, not a second one for the family.
		{Addr: netip.MustParseAddr("10.1.1.3"), Port: 80, Proto: TCP, Family: IPv4, Scheduler: "rr", Method: TUN,
			Reals: []RealServer{{Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, Method: TUN}}},
	}
	// Where each virtual server and its real server are declared.
	where := [][2]string{{"k:1", "k:2"}, {"k:5", "k:6"}, {"k:9", "k:10"}}
	var got []string
	diags := caps.Check(specs)
	for _, d := range diags {
		w := where[d.VS][0]
		if d.Real >= 0 {
			w = where[d.VS][1+d.Real]
		}
		got = append(got, w+": "+d.String())
	}
	w := []string{
		"k:1: warning: virtual server [10.1.1.1]:tcp:80: lb_algo wlc is applied as wrr: no connection counts (lvs_backend nftables)",
		"k:2: warning: virtual server [10.1.1.1]:tcp:80: real server 10.0.0.1:80: uthreshold/lthreshold are ignored (lvs_backend nftables)",
		"k:5: error: virtual server [10.1.1.2]:tcp:80: lb_algo lblc is not supported (lvs_backend nftables)",
		"k:6: error: virtual server [10.1.1.2]:tcp:80: real server 10.0.0.1:80: lb_kind DR is not supported; supported: NAT (lvs_backend nftables)",
		"k:10: error: virtual server [10.1.1.3]:tcp:80: real server [2001:db8::1]:80: lb_kind TUN is not supported; supported: NAT (lvs_backend nftables)",
	}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := Err(diags); err == nil || !strings.Contains(err.Error(), "error: virtual server [10.1.1.2]:tcp:80: lb_algo lblc is not supported") || strings.Contains(err.Error(), "warning") {
		t.Errorf("Err = %v", err)
	}
}

func TestChooseBackend(t *testing.T) {
	for _, tt := range []struct {
		kw   string
		ipvs bool
		want string
		err  bool
	}{
		{"", false, "nftables", false},
		{"auto", true, "ipvs", false},
		{"nftables", true, "nftables", false},
		{"ipvs", true, "ipvs", false},
		{"ipvs", false, "", true},
		{"iptables", true, "", true},
	} {
		got, err := ChooseBackend(tt.kw, tt.ipvs)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ChooseBackend(%q, %v) = %q, %v", tt.kw, tt.ipvs, got, err)
		}
	}
}

// A data plane that cannot mix lb_kinds, or NAT real servers with and
// without a port in a service without one, says so at load time (each
// would otherwise be refused by the data plane when applied, with every
// other service of the batch).
func TestCapabilitiesCheckMixes(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	specs := []VirtualServer{
		{FWMark: 7, Family: IPv4, Scheduler: "rr", Method: NAT, Reals: []RealServer{
			{Addr: a("10.0.0.1"), Port: 80, Method: NAT}, {Addr: a("10.0.0.2"), Method: NAT}}},
		{Addr: a("10.1.1.1"), Port: 80, Proto: TCP, Family: IPv4, Scheduler: "rr", Method: NAT, Reals: []RealServer{
			{Addr: a("10.0.0.1"), Port: 80, Method: NAT}, {Addr: a("10.0.0.2"), Port: 80, Method: DR}}},
		// All with a port, all without, and a port-80 service: fine.
		{FWMark: 8, Family: IPv4, Scheduler: "rr", Method: NAT, Reals: []RealServer{
			{Addr: a("10.0.0.1"), Port: 80, Method: NAT}, {Addr: a("10.0.0.2"), Port: 81, Method: NAT}}},
		{FWMark: 9, Family: IPv4, Scheduler: "rr", Method: NAT, Reals: []RealServer{
			{Addr: a("10.0.0.1"), Method: NAT}, {Addr: a("10.0.0.2"), Method: NAT}}},
		{Addr: a("10.1.1.2"), Port: 80, Proto: TCP, Family: IPv4, Scheduler: "rr", Method: NAT, Reals: []RealServer{
			{Addr: a("10.0.0.1"), Port: 80, Method: NAT}, {Addr: a("10.0.0.2"), Method: NAT}}},
	}
	caps := Capabilities{Backend: "nftables", Schedulers: map[string]Support{"rr": {As: "rr"}}, Methods: []Method{NAT, DR}}
	var got []string
	for _, d := range caps.Check(specs) {
		got = append(got, fmt.Sprintf("%d/%d: %s", d.VS, d.Real, d))
	}
	w := []string{
		"0/1: error: virtual server FWM 7: real server 10.0.0.2:0: NAT real servers with a port (10.0.0.1:80) and without one (10.0.0.2:0) in one service without a port are not supported; give them all a port, or none (lvs_backend nftables)",
		"1/1: error: virtual server [10.1.1.1]:tcp:80: real server 10.0.0.2:80: lb_kind DR beside lb_kind NAT (real server 10.0.0.1:80) in one virtual server is not supported (lvs_backend nftables)",
	}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	caps.MixedMethods, caps.MixedPorts = true, true
	if ds := caps.Check(specs); len(ds) != 0 {
		t.Errorf("a data plane that mixes them: %v", ds)
	}
}
