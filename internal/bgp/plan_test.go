package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testPolicy() Policy {
	return Policy{
		MED: 10, Communities: []uint32{65001<<16 | 7}, ShutdownDelay: 5 * time.Second, ShutdownMED: 1000,
		Sources: []Source{
			{Kind: FromVRRP, Name: "VI_1", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")}},
			{Kind: FromVirtualServer, Name: "[10.0.0.9]:tcp:80", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.9/32")}},
			{Kind: FromVirtualServer, Name: "[10.0.0.9]:tcp:443", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.9/32")}},
		},
	}
}

// show renders routes as "PREFIX PHASE med=N c=[..]" lines.
func show(rs []Route) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %s", r.Prefix, r.Phase)
		if r.Phase != Withdrawn {
			fmt.Fprintf(&b, " med=%d c=%x", r.MED, r.Communities)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestPlanner walks through scenarios; each step lists the routes whose
// announcement changes.
func TestPlanner(t *testing.T) {
	type step struct {
		at   time.Duration
		ev   Event
		want string // changed routes
	}
	for _, tc := range []struct {
		name  string
		pol   func(*Policy)
		steps []step
	}{
		{"master announces its VIPs as host routes, backup withdraws after draining", nil, []step{
			{0, InstanceState{"VI_1", "BACKUP"}, ""},
			{1 * time.Second, InstanceState{"VI_1", "MASTER"}, "10.0.0.1/32 announced med=10 c=[fde90007]\nfd00::1/128 announced med=10 c=[fde90007]\n"},
			// Handover or preemption: RFC 8326 graceful shutdown first.
			{2 * time.Second, InstanceState{"VI_1", "BACKUP"}, "10.0.0.1/32 draining med=1000 c=[fde90007 ffff0000]\nfd00::1/128 draining med=1000 c=[fde90007 ffff0000]\n"},
			{6 * time.Second, Tick{}, ""},
			{7 * time.Second, Tick{}, "10.0.0.1/32 withdrawn\nfd00::1/128 withdrawn\n"},
		}},
		{"fault withdraws at once, also while draining", nil, []step{
			{0, InstanceState{"VI_1", "MASTER"}, "10.0.0.1/32 announced med=10 c=[fde90007]\nfd00::1/128 announced med=10 c=[fde90007]\n"},
			{1 * time.Second, InstanceState{"VI_1", "FAULT"}, "10.0.0.1/32 withdrawn\nfd00::1/128 withdrawn\n"},
			{2 * time.Second, InstanceState{"VI_1", "MASTER"}, "10.0.0.1/32 announced med=10 c=[fde90007]\nfd00::1/128 announced med=10 c=[fde90007]\n"},
			{3 * time.Second, InstanceState{"VI_1", "BACKUP"}, "10.0.0.1/32 draining med=1000 c=[fde90007 ffff0000]\nfd00::1/128 draining med=1000 c=[fde90007 ffff0000]\n"},
			{4 * time.Second, InstanceState{"VI_1", "FAULT"}, "10.0.0.1/32 withdrawn\nfd00::1/128 withdrawn\n"},
		}},
		{"master again while draining announces normally", nil, []step{
			{0, InstanceState{"VI_1", "MASTER"}, "10.0.0.1/32 announced med=10 c=[fde90007]\nfd00::1/128 announced med=10 c=[fde90007]\n"},
			{1 * time.Second, InstanceState{"VI_1", "BACKUP"}, "10.0.0.1/32 draining med=1000 c=[fde90007 ffff0000]\nfd00::1/128 draining med=1000 c=[fde90007 ffff0000]\n"},
			{2 * time.Second, InstanceState{"VI_1", "MASTER"}, "10.0.0.1/32 announced med=10 c=[fde90007]\nfd00::1/128 announced med=10 c=[fde90007]\n"},
			{9 * time.Second, Tick{}, ""},
		}},
		{"anycast: a prefix of two virtual servers needs both quorums; quorum loss withdraws at once", nil, []step{
			{0, QuorumState{"[10.0.0.9]:tcp:80", true}, ""},
			{0, QuorumState{"[10.0.0.9]:tcp:443", true}, "10.0.0.9/32 announced med=10 c=[fde90007]\n"},
			{1 * time.Second, QuorumState{"[10.0.0.9]:tcp:443", false}, "10.0.0.9/32 withdrawn\n"},
			{2 * time.Second, QuorumState{"[10.0.0.9]:tcp:443", true}, "10.0.0.9/32 announced med=10 c=[fde90007]\n"},
		}},
		{"planned stop drains everything, then nothing comes back", nil, []step{
			{0, QuorumState{"[10.0.0.9]:tcp:80", true}, ""},
			{0, QuorumState{"[10.0.0.9]:tcp:443", true}, "10.0.0.9/32 announced med=10 c=[fde90007]\n"},
			{0, InstanceState{"VI_1", "MASTER"}, "10.0.0.1/32 announced med=10 c=[fde90007]\nfd00::1/128 announced med=10 c=[fde90007]\n"},
			{1 * time.Second, Stop{}, "10.0.0.1/32 draining med=1000 c=[fde90007 ffff0000]\n10.0.0.9/32 draining med=1000 c=[fde90007 ffff0000]\nfd00::1/128 draining med=1000 c=[fde90007 ffff0000]\n"},
			// The engine stopping meanwhile does not cut the drain short.
			{2 * time.Second, InstanceState{"VI_1", "STOP"}, ""},
			{6 * time.Second, Tick{}, "10.0.0.1/32 withdrawn\n10.0.0.9/32 withdrawn\nfd00::1/128 withdrawn\n"},
			{7 * time.Second, InstanceState{"VI_1", "MASTER"}, ""},
		}},
		{"handover holds every route back until released", nil, []step{
			{0, QuorumState{"[10.0.0.9]:tcp:80", true}, ""},
			{0, QuorumState{"[10.0.0.9]:tcp:443", true}, "10.0.0.9/32 announced med=10 c=[fde90007]\n"},
			{1 * time.Second, Hold{}, "10.0.0.9/32 draining med=1000 c=[fde90007 ffff0000]\n"},
			{2 * time.Second, QuorumState{"[10.0.0.9]:tcp:443", true}, ""},
			{6 * time.Second, Tick{}, "10.0.0.9/32 withdrawn\n"},
			{7 * time.Second, Release{}, "10.0.0.9/32 announced med=10 c=[fde90007]\n"},
		}},
		{"no delay: a planned move withdraws at once", func(p *Policy) { p.ShutdownDelay = 0 }, []step{
			{0, InstanceState{"VI_1", "MASTER"}, "10.0.0.1/32 announced med=10 c=[fde90007]\nfd00::1/128 announced med=10 c=[fde90007]\n"},
			{1 * time.Second, InstanceState{"VI_1", "BACKUP"}, "10.0.0.1/32 withdrawn\nfd00::1/128 withdrawn\n"},
		}},
		{"unknown sources are ignored", nil, []step{
			{0, InstanceState{"VI_9", "MASTER"}, ""},
			{0, QuorumState{"[10.0.0.8]:tcp:80", true}, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := testPolicy()
			if tc.pol != nil {
				tc.pol(&pol)
			}
			p := NewPlanner(pol)
			for i, s := range tc.steps {
				got := show(p.Step(t0.Add(s.at), s.ev))
				if got != s.want {
					t.Fatalf("step %d (%T %+v):\n got:\n%s want:\n%s", i, s.ev, s.ev, got, s.want)
				}
			}
		})
	}
}

func TestPlannerDeadlineAndReasons(t *testing.T) {
	p := NewPlanner(testPolicy())
	if !p.Deadline().IsZero() || p.Announcing() {
		t.Fatal("a new planner announces or waits")
	}
	p.Step(t0, InstanceState{"VI_1", "MASTER"})
	if !p.Announcing() {
		t.Fatal("master announces nothing")
	}
	p.Step(t0.Add(time.Second), InstanceState{"VI_1", "BACKUP"})
	if d := p.Deadline(); !d.Equal(t0.Add(6 * time.Second)) {
		t.Fatalf("deadline %v, want 6s after t0", d.Sub(t0))
	}
	var reasons []string
	for _, r := range p.Routes() {
		reasons = append(reasons, r.Prefix.String()+": "+r.Reason)
	}
	want := "10.0.0.1/32: vrrp_instance VI_1 is BACKUP; graceful shutdown|10.0.0.9/32: virtual_server [10.0.0.9]:tcp:80: state not known yet; virtual_server [10.0.0.9]:tcp:443: state not known yet|fd00::1/128: vrrp_instance VI_1 is BACKUP; graceful shutdown"
	if got := strings.Join(reasons, "|"); got != want {
		t.Errorf("reasons:\n got %s\nwant %s", got, want)
	}
}

// TestPlannerSetPolicy: a reload that changes the announce block keeps the
// routes it does not touch, announces a new source from the state already
// reported, withdraws a dropped prefix at once and re-announces routes
// whose attributes changed.
func TestPlannerSetPolicy(t *testing.T) {
	vi1 := Source{Kind: FromVRRP, Name: "VI_1", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}
	vi2 := Source{Kind: FromVRRP, Name: "VI_2", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}}
	vs := Source{Kind: FromVirtualServer, Name: "[10.0.0.9]:tcp:80", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.9/32")}}
	p := NewPlanner(Policy{MED: 10, Sources: []Source{vi1, vs}})
	p.Step(t0, InstanceState{"VI_1", "MASTER"})
	// VI_2 is not announced yet, but its state is known.
	p.Step(t0, InstanceState{"VI_2", "MASTER"})
	p.Step(t0, QuorumState{"[10.0.0.9]:tcp:80", true})
	for _, tc := range []struct {
		name string
		pol  Policy
		want string
	}{
		{"unchanged policy: nothing sent", Policy{MED: 10, Sources: []Source{vi1, vs}}, ""},
		{"a MASTER instance added: announced at once", Policy{MED: 10, Sources: []Source{vi1, vi2, vs}}, "10.0.0.2/32 announced med=10 c=[]\n"},
		{"a source dropped: withdrawn at once", Policy{MED: 10, Sources: []Source{vi1, vi2}}, "10.0.0.9/32 withdrawn\n"},
		{"MED changed: every route sent again", Policy{MED: 20, Sources: []Source{vi1, vi2}}, "10.0.0.1/32 announced med=20 c=[]\n10.0.0.2/32 announced med=20 c=[]\n"},
		{"the dropped source back: its last quorum counts", Policy{MED: 20, Sources: []Source{vi1, vi2, vs}}, "10.0.0.9/32 announced med=20 c=[]\n"},
	} {
		if got := show(p.SetPolicy(t0.Add(time.Second), tc.pol)); got != tc.want {
			t.Errorf("%s: changed\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
	rs := p.Routes()
	if len(rs) != 3 || !rs[0].Since.Equal(t0) {
		t.Errorf("routes after the reloads %+v: want three, 10.0.0.1 announced since %v", rs, t0)
	}
}

// BenchmarkPlannerStep1000 is the planner's cost of one quorum change
// among 1,000 announced virtual servers.
func BenchmarkPlannerStep1000(b *testing.B) {
	var pol Policy
	for i := range 1000 {
		a := netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		pol.Sources = append(pol.Sources, Source{Kind: FromVirtualServer, Name: fmt.Sprint(i), Prefixes: []netip.Prefix{Host(a)}})
	}
	p := NewPlanner(pol)
	now := time.Now()
	for i := range 1000 {
		p.Step(now, QuorumState{VS: fmt.Sprint(i), Up: true})
	}
	b.ResetTimer()
	for i := range b.N {
		if len(p.Step(now, QuorumState{VS: "7", Up: i%2 == 1})) != 1 {
			b.Fatal("one quorum change must change one route")
		}
	}
}
