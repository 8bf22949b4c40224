package lb

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestNormalize checks keepalived 2.2.7's corrections from check_data.c
// validate_check_config, each with the message keepalived logs.
func TestNormalize(t *testing.T) {
	base := func() VirtualServer {
		return VirtualServer{Where: "k.conf:3", Addr: netip.MustParseAddr("10.1.1.1"), Port: 80, Proto: TCP, Scheduler: "rr", Method: NAT, Quorum: 1,
			Reals: []RealServer{{Where: "k.conf:5", Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080}}}
	}
	tests := []struct {
		name  string
		in    func() VirtualServer
		check func(t *testing.T, vs []VirtualServer)
		diags []string
	}{
		{
			name:  "no real servers: ignored",
			in:    func() VirtualServer { v := base(); v.Reals = nil; return v },
			check: func(t *testing.T, vs []VirtualServer) { want(t, len(vs), 0) },
			diags: []string{"k.conf:3: error: virtual server [10.1.1.1]:tcp:80: has no real servers - ignoring"},
		},
		{
			name:  "no protocol: UDP, as the kernel takes 0",
			in:    func() VirtualServer { v := base(); v.Proto = 0; return v },
			check: func(t *testing.T, vs []VirtualServer) { want(t, vs[0].Proto, UDP) },
			diags: []string{"k.conf:3: warning: virtual server [10.1.1.1]:none:80: no protocol set - defaulting to UDP"},
		},
		{
			name:  "no scheduler: wlc",
			in:    func() VirtualServer { v := base(); v.Scheduler = ""; return v },
			check: func(t *testing.T, vs []VirtualServer) { want(t, vs[0].Scheduler, "wlc") },
			diags: []string{"k.conf:3: warning: virtual server [10.1.1.1]:tcp:80: no scheduler set, setting default 'wlc'"},
		},
		{
			name:  "no lb_kind: NAT",
			in:    func() VirtualServer { v := base(); v.Method = MethodDefault; return v },
			check: func(t *testing.T, vs []VirtualServer) { want(t, vs[0].Method, NAT) },
			diags: []string{"k.conf:3: warning: virtual server [10.1.1.1]:tcp:80: no forwarding method set, setting default NAT"},
		},
		{
			name:  "zero port needs persistence",
			in:    func() VirtualServer { v := base(); v.Port = 0; return v },
			check: func(t *testing.T, vs []VirtualServer) { want(t, vs[0].PersistenceTimeout, uint32(360)) },
			diags: []string{"k.conf:3: warning: virtual server [10.1.1.1]:tcp:0: zero port only valid for persistent services - setting"},
		},
		{
			name:  "quorum above the total weight is reduced",
			in:    func() VirtualServer { v := base(); v.Quorum = 5; return v },
			check: func(t *testing.T, vs []VirtualServer) { want(t, vs[0].Quorum, uint32(1)) },
			diags: []string{"k.conf:3: warning: virtual server [10.1.1.1]:tcp:80: quorum 5 exceeds total weight of real servers 1, reducing quorum to 1"},
		},
		{
			name: "hysteresis below the quorum",
			in: func() VirtualServer {
				v := base()
				v.Reals = append(v.Reals, RealServer{Addr: netip.MustParseAddr("10.0.0.2"), Port: 8080, Weight: u32(4)})
				v.Quorum, v.Hysteresis = 3, 3
				return v
			},
			check: func(t *testing.T, vs []VirtualServer) { want(t, vs[0].Hysteresis, uint32(2)) },
			diags: []string{"k.conf:3: warning: virtual server [10.1.1.1]:tcp:80: hysteresis 3 >= quorum 3; setting hysteresis to 2"},
		},
		{
			name: "duplicate real server removed",
			in: func() VirtualServer {
				v := base()
				v.Reals = append(v.Reals, RealServer{Where: "k.conf:9", Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080})
				return v
			},
			check: func(t *testing.T, vs []VirtualServer) { want(t, len(vs[0].Reals), 1) },
			diags: []string{"k.conf:9: warning: virtual server [10.1.1.1]:tcp:80: real server [10.0.0.1]:tcp:8080 is duplicated - removing second rs"},
		},
		{
			name: "NAT real server without port takes the virtual port",
			in:   func() VirtualServer { v := base(); v.Reals[0].Port = 0; return v },
			check: func(t *testing.T, vs []VirtualServer) {
				want(t, vs[0].Reals[0].Port, uint16(80))
			},
		},
		{
			name: "DR real server port reset to the virtual port",
			in:   func() VirtualServer { v := base(); v.Method = DR; return v },
			check: func(t *testing.T, vs []VirtualServer) {
				want(t, vs[0].Reals[0].Port, uint16(80))
			},
			diags: []string{"k.conf:5: warning: virtual server [10.1.1.1]:tcp:80: virtual server and real server 10.0.0.1 ports don't match - resetting"},
		},
		{
			name: "fwmark: protocol ignored, DR port cleared, ha_suspend cleared",
			in: func() VirtualServer {
				v := base()
				v.Addr, v.Port, v.FWMark, v.Method, v.HASuspend = netip.Addr{}, 0, 3, DR, true
				return v
			},
			check: func(t *testing.T, vs []VirtualServer) {
				want(t, vs[0].Proto, Protocol(0))
				want(t, vs[0].Reals[0].Port, uint16(0))
				want(t, vs[0].HASuspend, false)
				want(t, vs[0].Keys()[0], ServiceKey{Family: IPv4, FWMark: 3})
			},
			diags: []string{
				"k.conf:3: warning: virtual server FWM 3: cannot use ha_suspend with fwmarks - clearing ha_suspend",
				"k.conf:3: warning: virtual server FWM 3: protocol specified for fwmark - protocol will be ignored",
				"k.conf:5: warning: virtual server FWM 3: fwmark virtual server, real server 10.0.0.1 has port specified - clearing",
			},
		},
		{
			name: "real server of another family skipped",
			in: func() VirtualServer {
				v := base()
				v.Reals = append(v.Reals, RealServer{Where: "k.conf:7", Addr: netip.MustParseAddr("fd00::1"), Port: 80})
				return v
			},
			check: func(t *testing.T, vs []VirtualServer) { want(t, len(vs[0].Reals), 1) },
			diags: []string{"k.conf:7: warning: virtual server [10.1.1.1]:tcp:80: address family of virtual server and real server fd00::1 don't match - skipping real server"},
		},
		{
			name: "sorry server duplicating a real server takes its inhibit",
			in: func() VirtualServer {
				v := base()
				v.Inhibit = true
				v.Sorry = &RealServer{Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080}
				return v
			},
			check: func(t *testing.T, vs []VirtualServer) { want(t, vs[0].SorryInhibit, true) },
			diags: []string{"k.conf:5: warning: virtual server [10.1.1.1]:tcp:80: real server [10.0.0.1]:tcp:8080 matches sorry server, but inhibit setting differs, setting on sorry server"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, diags := Normalize([]VirtualServer{tt.in()})
			var got []string
			for _, d := range diags {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tt.diags, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			tt.check(t, out)
		})
	}
}

func want[T any](t *testing.T, got, w T) {
	t.Helper()
	if diff := cmp.Diff(w, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Two virtual servers must not claim the same kernel service.
func TestNormalizeDuplicateService(t *testing.T) {
	v := VirtualServer{Where: "a:1", Addr: netip.MustParseAddr("10.1.1.1"), Port: 80, Proto: TCP, Scheduler: "rr", Method: NAT, Quorum: 1,
		Reals: []RealServer{{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}}}
	g := VirtualServer{Where: "a:9", Group: &Group{Name: "g", Ranges: []GroupRange{{First: netip.MustParseAddr("10.1.1.0"), Last: netip.MustParseAddr("10.1.1.3"), Port: 80}}},
		Proto: TCP, Scheduler: "rr", Method: NAT, Quorum: 1, Reals: v.Reals}
	out, diags := Normalize([]VirtualServer{v, g})
	if len(out) != 1 || len(diags) != 1 || !strings.Contains(diags[0].String(), "a:9: error: virtual server [g]:0: service TCP  10.1.1.1:80 is also defined by [10.1.1.1]:tcp:80") {
		t.Errorf("got %d specs, diagnostics %v", len(out), diags)
	}
}

func TestCapabilitiesCheck(t *testing.T) {
	caps := Capabilities{
		Backend:    "nftables",
		Schedulers: map[string]Support{"rr": {As: "rr"}, "wlc": {As: "wrr", Note: "no connection counts"}},
		Methods:    []Method{NAT},
	}
	specs := []VirtualServer{
		{Where: "k:1", Addr: netip.MustParseAddr("10.1.1.1"), Port: 80, Proto: TCP, Scheduler: "wlc", Method: NAT,
			Reals: []RealServer{{Where: "k:2", Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, UThreshold: 5}}},
		{Where: "k:5", Addr: netip.MustParseAddr("10.1.1.2"), Port: 80, Proto: TCP, Scheduler: "lblc", Method: DR,
			Reals: []RealServer{{Where: "k:6", Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}}},
	}
	var got []string
	diags := caps.Check(specs)
	for _, d := range diags {
		got = append(got, d.String())
	}
	w := []string{
		"k:1: warning: virtual server [10.1.1.1]:tcp:80: lb_algo wlc is applied as wrr: no connection counts (lvs_backend nftables)",
		"k:2: warning: virtual server [10.1.1.1]:tcp:80: real server 10.0.0.1:80: uthreshold/lthreshold are ignored (lvs_backend nftables)",
		"k:5: error: virtual server [10.1.1.2]:tcp:80: lb_algo lblc is not supported (lvs_backend nftables)",
		"k:6: error: virtual server [10.1.1.2]:tcp:80: real server 10.0.0.1:80: lb_kind DR is not supported; supported: NAT (lvs_backend nftables)",
	}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := Err(diags); err == nil || !strings.Contains(err.Error(), "k:5: error") {
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
