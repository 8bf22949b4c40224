package lb

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// inhibitAll and alphaAll set inhibit_on_failure or alpha on every real
// server, as a virtual server's setting reaches them through the
// configuration.
func inhibitAll(v VirtualServer) VirtualServer {
	v.Reals = append([]RealServer(nil), v.Reals...)
	for i := range v.Reals {
		v.Reals[i].Inhibit = true
	}
	return v
}

func alphaAll(v VirtualServer) VirtualServer {
	v.Reals = append([]RealServer(nil), v.Reals...)
	for i := range v.Reals {
		v.Reals[i].Alpha = true
	}
	return v
}

func real(addr string, weight uint32) RealServer {
	return RealServer{Addr: netip.MustParseAddr(addr), Port: 80, Weight: weight, Method: NAT,
		NotifyUp: "/up " + addr, NotifyDown: "/down " + addr}
}

func web(reals ...RealServer) VirtualServer {
	return VirtualServer{
		Addr: netip.MustParseAddr("192.168.118.110"), Port: 80, Proto: TCP, Family: IPv4,
		Scheduler: "rr", Method: NAT, Quorum: 1, QuorumUp: "/qup", QuorumDown: "/qdown", Reals: reals,
	}
}

// dests renders the destinations of a state: "ADDR:PORT wN".
func dests(st State) []string {
	var out []string
	for _, k := range sortedDestKeys(st.Dests) {
		out = append(out, fmt.Sprintf("%v w%d", k.Addr, st.Dests[k].Weight))
	}
	return out
}

// events renders events: "kind target script [init|stop]".
func events(evs []Event) []string {
	var out []string
	for _, e := range evs {
		s := fmt.Sprintf("%v %s", e.Kind, e.VS)
		if e.Kind == RealUp || e.Kind == RealDown {
			s = fmt.Sprintf("%v %s", e.Kind, e.Real)
		}
		s += " " + e.Script
		if e.Init {
			s += " init"
		}
		if e.Stopping {
			s += " stop"
		}
		out = append(out, s)
	}
	return out
}

type step struct {
	name   string
	health map[string]HealthState // real server address -> state
	weight map[string]int64       // dynamic weights
	local  func(netip.Addr) bool
	dests  []string
	events []string
}

// run normalises spec, feeds the steps to one Policy and compares each
// step's destinations and events.
func run(t *testing.T, opts PolicyOptions, spec VirtualServer, steps []step) *Policy {
	t.Helper()
	specs := []VirtualServer{spec}
	p := NewPolicy(opts)
	id := specs[0].ID()
	for _, s := range steps {
		h := Health{}
		for a, st := range s.health {
			h[RealID{VS: id, Addr: netip.MustParseAddrPort(a + ":80")}] = RealHealth{State: st}
		}
		for a, w := range s.weight {
			k := RealID{VS: id, Addr: netip.MustParseAddrPort(a + ":80")}
			v := h[k]
			v.Weight, v.HasWeight = w, true
			h[k] = v
		}
		res := p.Desired(specs, h, s.local)
		if err := res.State.Validate(); err != nil {
			t.Fatalf("%s: invalid state: %v", s.name, err)
		}
		if diff := cmp.Diff(s.dests, dests(res.State)); diff != "" {
			t.Errorf("%s: destinations (-want +got):\n%s", s.name, diff)
		}
		if diff := cmp.Diff(s.events, events(res.Events)); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", s.name, diff)
		}
	}
	return p
}

const (
	a = "10.0.0.1"
	b = "10.0.0.2"
	c = "10.0.0.3"
	d = "10.0.0.4"
	s = "10.0.0.9" // sorry server
)

func hs(kv ...any) map[string]HealthState {
	m := map[string]HealthState{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(HealthState)
	}
	return m
}

func TestPolicy(t *testing.T) {
	const vsid = "[192.168.118.110]:tcp:80"
	withSorry := func(vs VirtualServer) VirtualServer {
		vs.Sorry = &RealServer{Addr: netip.MustParseAddr(s), Port: 8080, Method: NAT}
		return vs
	}
	tests := []struct {
		name  string
		opts  PolicyOptions
		spec  VirtualServer
		steps []step
		stop  []string // events of Stop after the steps
	}{
		{
			// ipwrapper.c init_service_rs: a real server without failed
			// checkers is added at start; update_quorum_state(init) then
			// reports "Starting with quorum up".
			name: "real servers start alive and quorum starts up",
			spec: web(real(a, 1), real(b, 1)),
			steps: []step{{
				name:   "start",
				dests:  []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"},
				events: []string{"quorum-up " + vsid + " /qup init"},
			}},
		},
		{
			// perform_svr_state: a failed real server is removed from the
			// pool (LVS_CMD_DEL_DEST) and notify_down runs; it comes back
			// with notify_up.
			name: "failed real server is removed and comes back",
			spec: web(real(a, 1), real(b, 1)),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "a down", health: hs(a, Down, b, Up), dests: []string{"10.0.0.2:80 w1"}, events: []string{"real-down 10.0.0.1:80 /down 10.0.0.1"}},
				{name: "a still down", health: hs(a, Down, b, Up), dests: []string{"10.0.0.2:80 w1"}},
				{name: "a up", health: hs(a, Up, b, Up), dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"}, events: []string{"real-up 10.0.0.1:80 /up 10.0.0.1"}},
			},
		},
		{
			// ipvswrapper.c ipvs_cmd: "Does the service use inhibit flag?"
			// DEL_DEST becomes EDIT_DEST with weight 0.
			name: "inhibit_on_failure keeps a failed server at weight 0",
			spec: func() VirtualServer { return inhibitAll(web(real(a, 3), real(b, 1))) }(),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w3", "10.0.0.2:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "a down", health: hs(a, Down), dests: []string{"10.0.0.1:80 w0", "10.0.0.2:80 w1"}, events: []string{"real-down 10.0.0.1:80 /down 10.0.0.1"}},
				{name: "a up", health: hs(a, Up), dests: []string{"10.0.0.1:80 w3", "10.0.0.2:80 w1"}, events: []string{"real-up 10.0.0.1:80 /up 10.0.0.1"}},
			},
		},
		{
			// Per real server inhibit_on_failure overrides the virtual
			// server's default (check_data.c: rs->inhibit == -1 inherits).
			name: "real server inhibit overrides the default",
			spec: func() VirtualServer { r := real(a, 1); r.Inhibit = true; return web(r, real(b, 1)) }(),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "both down", health: hs(a, Down, b, Down), dests: []string{"10.0.0.1:80 w0"},
					events: []string{"real-down 10.0.0.1:80 /down 10.0.0.1", "real-down 10.0.0.2:80 /down 10.0.0.2", "quorum-down " + vsid + " /qdown"}},
			},
		},
		{
			// check_data.c validate_check_config: alpha checkers start
			// failed; check_api.c update_svr_checker_state: the first
			// success is a transition (notify_up), a first failure notifies
			// down although nothing changed.
			name: "alpha: servers start down",
			spec: func() VirtualServer { return alphaAll(web(real(a, 1), real(b, 1))) }(),
			steps: []step{
				{name: "start: no server, no quorum, no event without a sorry server", dests: nil},
				{name: "a up: quorum", health: hs(a, Up), dests: []string{"10.0.0.1:80 w1"},
					events: []string{"real-up 10.0.0.1:80 /up 10.0.0.1", "quorum-up " + vsid + " /qup"}},
				{name: "b first check fails", health: hs(a, Up, b, Down), dests: []string{"10.0.0.1:80 w1"},
					events: []string{"real-down 10.0.0.2:80 /down 10.0.0.2"}},
				{name: "b fails again: silent", health: hs(a, Up, b, Down), dests: []string{"10.0.0.1:80 w1"}},
			},
		},
		{
			// Without alpha the first success is silent, the first failure
			// is a transition.
			name: "no alpha: first success silent, first failure notifies",
			spec: web(real(a, 1), real(b, 1)),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "a ok, b fails", health: hs(a, Up, b, Down), dests: []string{"10.0.0.1:80 w1"}, events: []string{"real-down 10.0.0.2:80 /down 10.0.0.2"}},
			},
		},
		{
			// update_quorum_state: losing the quorum with a sorry server
			// removes the alive real servers (perform_quorum_state(false))
			// and adds the sorry server, whose weight is 1 (alloc_ssvr);
			// regaining it reverses both.
			name: "sorry server replaces the pool while the quorum is lost",
			spec: func() VirtualServer { v := withSorry(web(real(a, 1), real(b, 1))); v.Quorum = 2; return v }(),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "b down: 1 < 2", health: hs(a, Up, b, Down), dests: []string{"10.0.0.9:8080 w1"},
					events: []string{"real-down 10.0.0.2:80 /down 10.0.0.2", "quorum-down " + vsid + " /qdown"}},
				{name: "b up: quorum back", health: hs(a, Up, b, Up), dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"},
					events: []string{"real-up 10.0.0.2:80 /up 10.0.0.2", "quorum-up " + vsid + " /qup"}},
			},
		},
		{
			// Without a sorry server the alive servers stay when the
			// quorum is lost; only quorum_down runs.
			name: "quorum lost without sorry server keeps alive servers",
			spec: func() VirtualServer { v := web(real(a, 1), real(b, 1)); v.Quorum = 2; return v }(),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "b down", health: hs(b, Down), dests: []string{"10.0.0.1:80 w1"},
					events: []string{"real-down 10.0.0.2:80 /down 10.0.0.2", "quorum-down " + vsid + " /qdown"}},
			},
		},
		{
			// ipvs_cmd with inhibit: while the sorry server serves, the
			// alive inhibited servers stay at weight 0.
			name: "inhibited servers stay at weight 0 beside the sorry server",
			spec: func() VirtualServer {
				v := inhibitAll(withSorry(web(real(a, 1), real(b, 1))))
				v.Quorum = 2
				return v
			}(),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "b down", health: hs(b, Down), dests: []string{"10.0.0.1:80 w0", "10.0.0.2:80 w0", "10.0.0.9:8080 w1"},
					events: []string{"real-down 10.0.0.2:80 /down 10.0.0.2", "quorum-down " + vsid + " /qdown"}},
			},
		},
		{
			// init_service_vs: "If we have a sorry server with inhibit, add
			// it now" with weight 0.
			name: "sorry_server_inhibit keeps the sorry server at weight 0",
			spec: func() VirtualServer { v := withSorry(web(real(a, 1))); v.SorryInhibit = true; return v }(),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1", "10.0.0.9:8080 w0"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "a down", health: hs(a, Down), dests: []string{"10.0.0.9:8080 w1"},
					events: []string{"real-down 10.0.0.1:80 /down 10.0.0.1", "quorum-down " + vsid + " /qdown"}},
			},
		},
		{
			// update_quorum_state(init): "We are starting up and need to
			// add the sorry server" - "Starting with quorum down".
			name: "alpha with sorry server starts with quorum down",
			spec: func() VirtualServer { return alphaAll(withSorry(web(real(a, 1)))) }(),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.9:8080 w1"}, events: []string{"quorum-down " + vsid + " /qdown init"}},
				{name: "a up", health: hs(a, Up), dests: []string{"10.0.0.1:80 w1"},
					events: []string{"real-up 10.0.0.1:80 /up 10.0.0.1", "quorum-up " + vsid + " /qup"}},
			},
		},
		{
			// update_quorum_state: threshold = quorum ± hysteresis; up at
			// >= 3+1, down below 3-1.
			name: "hysteresis band",
			spec: func() VirtualServer {
				v := web(real(a, 1), real(b, 1), real(c, 1), real(d, 1))
				v.Quorum, v.Hysteresis = 3, 1
				return v
			}(),
			steps: []step{
				{name: "start 4 >= 4", dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1", "10.0.0.3:80 w1", "10.0.0.4:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "3 >= 2 stays up", health: hs(a, Down), dests: []string{"10.0.0.2:80 w1", "10.0.0.3:80 w1", "10.0.0.4:80 w1"}, events: []string{"real-down 10.0.0.1:80 /down 10.0.0.1"}},
				{name: "2 >= 2 stays up", health: hs(a, Down, b, Down), dests: []string{"10.0.0.3:80 w1", "10.0.0.4:80 w1"}, events: []string{"real-down 10.0.0.2:80 /down 10.0.0.2"}},
				{name: "1 < 2 down", health: hs(a, Down, b, Down, c, Down), dests: []string{"10.0.0.4:80 w1"},
					events: []string{"real-down 10.0.0.3:80 /down 10.0.0.3", "quorum-down " + vsid + " /qdown"}},
				{name: "3 < 4 stays down", health: hs(a, Up, b, Up, c, Down), dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1", "10.0.0.4:80 w1"},
					events: []string{"real-up 10.0.0.1:80 /up 10.0.0.1", "real-up 10.0.0.2:80 /up 10.0.0.2"}},
				{name: "4 >= 4 up", health: hs(a, Up, b, Up, c, Up), dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1", "10.0.0.3:80 w1", "10.0.0.4:80 w1"},
					events: []string{"real-up 10.0.0.3:80 /up 10.0.0.3", "quorum-up " + vsid + " /qup"}},
			},
		},
		{
			// update_svr_wgt: a dynamic weight (MISC_CHECK misc_dynamic)
			// changes the destination and may move the quorum.
			name: "dynamic weight moves the quorum",
			spec: func() VirtualServer { v := web(real(a, 2), real(b, 2)); v.Quorum = 3; return v }(),
			steps: []step{
				{name: "start 4 >= 3", dests: []string{"10.0.0.1:80 w2", "10.0.0.2:80 w2"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "a weight 0: 2 < 3", health: hs(a, Up, b, Up), weight: map[string]int64{a: 0}, dests: []string{"10.0.0.1:80 w0", "10.0.0.2:80 w2"},
					events: []string{"quorum-down " + vsid + " /qdown"}},
				{name: "a weight 198", health: hs(a, Up, b, Up), weight: map[string]int64{a: 198}, dests: []string{"10.0.0.1:80 w198", "10.0.0.2:80 w2"},
					events: []string{"quorum-up " + vsid + " /qup"}},
				{name: "negative weights count as 0", health: hs(a, Up, b, Up), weight: map[string]int64{a: -5}, dests: []string{"10.0.0.1:80 w0", "10.0.0.2:80 w2"},
					events: []string{"quorum-down " + vsid + " /qdown"}},
			},
		},
		{
			// check_api.c update_checker_activity: with ha_suspend and no
			// local virtual address the checkers are suspended; the service
			// stays installed with the states it had.
			name: "ha_suspend freezes real server states",
			spec: func() VirtualServer { v := web(real(a, 1), real(b, 1)); v.HASuspend = true; return v }(),
			steps: []step{
				{name: "vip not local: start", local: func(netip.Addr) bool { return false }, dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"},
					events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "vip not local: failures ignored", local: func(netip.Addr) bool { return false }, health: hs(a, Down),
					dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"}},
				{name: "vip local: failure applies", local: func(netip.Addr) bool { return true }, health: hs(a, Down),
					dests: []string{"10.0.0.2:80 w1"}, events: []string{"real-down 10.0.0.1:80 /down 10.0.0.1"}},
			},
		},
		{
			// ipwrapper.c clear_services/clear_service_rs with omega: the
			// down notifiers run "all the way down the exit".
			name: "omega notifies at stop",
			spec: func() VirtualServer { v := web(real(a, 1), real(b, 1)); v.Omega = true; return v }(),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
				{name: "b down", health: hs(b, Down), dests: []string{"10.0.0.1:80 w1"}, events: []string{"real-down 10.0.0.2:80 /down 10.0.0.2"}},
			},
			stop: []string{"real-down 10.0.0.1:80 /down 10.0.0.1 stop", "quorum-down " + vsid + " /qdown stop"},
		},
		{
			// lvs_flush_on_stop: the services go whole (clear_services
			// with LVS_FLUSH_FULL/VS -> update_vs_notifies): with omega
			// only the quorum goes down.
			name: "omega with lvs_flush_on_stop",
			opts: PolicyOptions{FlushOnStop: true},
			spec: func() VirtualServer { v := web(real(a, 1), real(b, 1)); v.Omega = true; return v }(),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1", "10.0.0.2:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
			},
			stop: []string{"quorum-down " + vsid + " /qdown stop"},
		},
		{
			// Without omega keepalived only sends SNMP traps at stop.
			name: "no omega: silent stop",
			spec: web(real(a, 1)),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1"}, events: []string{"quorum-up " + vsid + " /qup init"}},
			},
			stop: nil,
		},
		{
			// global_defs rs_init_notifies: notify_up for servers that
			// start alive (init_service_rs).
			name: "rs_init_notifies",
			opts: PolicyOptions{RSInitNotifies: true},
			spec: web(real(a, 1)),
			steps: []step{
				{name: "start", dests: []string{"10.0.0.1:80 w1"}, events: []string{"real-up 10.0.0.1:80 /up 10.0.0.1 init", "quorum-up " + vsid + " /qup init"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := run(t, tt.opts, tt.spec, tt.steps)
			if diff := cmp.Diff(tt.stop, events(p.Stop())); diff != "" {
				t.Errorf("stop events (-want +got):\n%s", diff)
			}
		})
	}
}

// A reload that drops a real server notifies it down (ipwrapper.c
// clear_diff_rs -> clear_service_rs) and may lose the quorum; one that drops
// the whole virtual server notifies every alive server and the quorum down
// (clear_service_vs, stopping=false: omega not required).
func TestPolicyReload(t *testing.T) {
	v1 := web(real(a, 1), real(b, 1), real(c, 1))
	v1.Quorum = 2
	specs := []VirtualServer{v1}
	p := NewPolicy(PolicyOptions{})
	p.Desired(specs, nil, nil)
	id := specs[0].ID()
	p.Desired(specs, Health{{VS: id, Addr: netip.MustParseAddrPort(c + ":80")}: {State: Down}}, nil)

	// Reload without b: the configured weights (a, c) still reach the
	// quorum, so it is not clamped, but only a is alive.
	v2 := web(real(a, 1), real(c, 1))
	v2.Quorum = 2
	specs2 := []VirtualServer{v2}
	res := p.Desired(specs2, Health{{VS: id, Addr: netip.MustParseAddrPort(c + ":80")}: {State: Down}}, nil)
	want := []string{"real-down 10.0.0.2:80 /down 10.0.0.2", "quorum-down [192.168.118.110]:tcp:80 /qdown"}
	if diff := cmp.Diff(want, events(res.Events)); diff != "" {
		t.Errorf("drop a real server: events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"10.0.0.1:80 w1"}, dests(res.State)); diff != "" {
		t.Errorf("drop a real server: dests (-want +got):\n%s", diff)
	}
	// Dropping the virtual server notifies its alive server; the quorum was
	// already down.
	res = p.Desired(nil, nil, nil)
	want = []string{"real-down 10.0.0.1:80 /down 10.0.0.1"}
	if diff := cmp.Diff(want, events(res.Events)); diff != "" {
		t.Errorf("drop the virtual server: events (-want +got):\n%s", diff)
	}
	if len(res.State.Services) != 0 {
		t.Errorf("drop the virtual server: services left: %v", res.State.Services)
	}
}

// Dropping a virtual server whose quorum is up also notifies the quorum down
// (clear_service_vs -> update_vs_notifies).
func TestPolicyDropVirtualServer(t *testing.T) {
	specs := []VirtualServer{web(real(a, 1))}
	p := NewPolicy(PolicyOptions{})
	p.Desired(specs, nil, nil)
	res := p.Desired(nil, nil, nil)
	want := []string{"real-down 10.0.0.1:80 /down 10.0.0.1", "quorum-down [192.168.118.110]:tcp:80 /qdown"}
	if diff := cmp.Diff(want, events(res.Events)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// The quorum state survives an unchanged reload: no event, no flap.
func TestPolicyReloadUnchanged(t *testing.T) {
	specs := []VirtualServer{web(real(a, 1), real(b, 1))}
	p := NewPolicy(PolicyOptions{})
	p.Desired(specs, nil, nil)
	specs2 := []VirtualServer{web(real(a, 1), real(b, 1))}
	res := p.Desired(specs2, nil, nil)
	if len(res.Events) != 0 {
		t.Errorf("events on an unchanged reload: %v", events(res.Events))
	}
}

func TestPolicyServiceAttributes(t *testing.T) {
	vs := web(real(a, 1))
	vs.PersistenceTimeout = 300
	vs.PersistenceGranularity = 0xffffff00
	vs.Scheduler = "sh"
	vs.Flags = FlagSHPort
	specs := []VirtualServer{vs}
	res := NewPolicy(PolicyOptions{}).Desired(specs, nil, nil)
	k := ServiceKey{Family: IPv4, Proto: TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}
	want := State{
		Services: map[ServiceKey]Service{k: {Scheduler: "sh", Flags: FlagSHPort, Timeout: 300, Netmask: 0xffffff00}},
		Dests:    map[DestKey]Dest{{Service: k, Addr: netip.MustParseAddrPort("10.0.0.1:80")}: {Weight: 1, Method: NAT}},
	}
	if diff := cmp.Diff(want, res.State); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
}

// A virtual_server_group expands to one service per address and per fwmark;
// DR destinations take the service's port, 0 for fwmarks (ipvswrapper.c
// ipvs_group_cmd).
func TestPolicyGroup(t *testing.T) {
	vs := VirtualServer{
		Group: &Group{Name: "web", Ranges: []GroupRange{{First: netip.MustParseAddr("192.168.1.10"), Last: netip.MustParseAddr("192.168.1.11"), Port: 443}},
			FWMarks: []GroupMark{{Mark: 7}}},
		Proto: TCP, Family: IPv4, Scheduler: "wrr", Method: DR, Quorum: 1,
		Reals: []RealServer{{Addr: netip.MustParseAddr("192.168.1.20"), Weight: 2, Method: DR}},
	}
	specs := []VirtualServer{vs}
	res := NewPolicy(PolicyOptions{}).Desired(specs, nil, nil)
	var got []string
	for _, k := range sortedDestKeys(res.State.Dests) {
		got = append(got, fmt.Sprintf("%v -> %v %v w%d", k.Service, k.Addr, res.State.Dests[k].Method, res.State.Dests[k].Weight))
	}
	want := []string{
		"TCP  192.168.1.10:443 -> 192.168.1.20:443 DR w2",
		"TCP  192.168.1.11:443 -> 192.168.1.20:443 DR w2",
		"FWM  7 -> 192.168.1.20:0 DR w2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if id := specs[0].ID(); id != "[web]:0" {
		t.Errorf("ID = %q, want keepalived's FMT_VS [web]:0", id)
	}
}

func TestEventFIFOLine(t *testing.T) {
	vs := web(real(a, 1))
	specs := []VirtualServer{vs}
	p := NewPolicy(PolicyOptions{})
	p.Desired(specs, nil, nil)
	res := p.Desired(specs, Health{{VS: specs[0].ID(), Addr: netip.MustParseAddrPort("10.0.0.1:80")}: {State: Down}}, nil)
	var got []string
	for _, e := range res.Events {
		got = append(got, e.FIFOLine())
	}
	want := []string{"RS [10.0.0.1]:tcp:80 [192.168.118.110]:tcp:80 DOWN", "VS [192.168.118.110]:tcp:80 DOWN"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
