package garp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var (
	vipA  = Target{Addr: netip.MustParseAddr("192.168.1.100"), Dev: "eth0"}
	vipB  = Target{Addr: netip.MustParseAddr("192.168.1.101"), Dev: "eth0"}
	vip6  = Target{Addr: netip.MustParseAddr("fd00::100"), Dev: "eth0"}
	vip6b = Target{Addr: netip.MustParseAddr("fd00::101"), Dev: "eth0"}
)

// sent is one packet as the tests record it: when, what, why.
type sent struct {
	At     time.Duration
	Addr   string
	Reason string
}

// burstOf returns n rounds over targets at offset at.
func burstOf(at time.Duration, reason Reason, n int, targets ...Target) []sent {
	var out []sent
	for range n {
		for _, t := range targets {
			out = append(out, sent{at, t.Addr.String(), reason.String()})
		}
	}
	return out
}

func cat(parts ...[]sent) []sent {
	var out []sent
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// runSchedule drives a schedule the way the engine does (timer at Next(),
// then Due) up to the horizon; lowerPrio lists when lower-priority adverts
// arrive.
func runSchedule(cfg Config, targets []Target, horizon time.Duration, lowerPrio ...time.Duration) []sent {
	s := NewSchedule(cfg, targets, t0)
	var out []sent
	for {
		next := s.Next()
		if len(lowerPrio) > 0 && (next.IsZero() || t0.Add(lowerPrio[0]).Before(next)) {
			s.LowerPriority(t0.Add(lowerPrio[0]))
			lowerPrio = lowerPrio[1:]
			continue
		}
		if next.IsZero() || next.Sub(t0) > horizon {
			return out
		}
		for _, d := range s.Due(next) {
			out = append(out, sent{next.Sub(t0), d.Addr.String(), d.Reason.String()})
		}
	}
}

func TestSchedule(t *testing.T) {
	// keepalived 2.2.7's defaults (vrrp.h VRRP_GARP_REP, VRRP_GARP_DELAY;
	// the lower-priority knobs default to the master ones).
	def := Config{Repeat: 5, Delay: 5 * time.Second, RefreshRepeat: 1, LowerPrioRepeat: 5, LowerPrioDelay: 5 * time.Second}
	tests := []struct {
		name      string
		cfg       Config
		targets   []Target
		horizon   time.Duration
		lowerPrio []time.Duration
		want      []sent
	}{
		{
			name: "defaults: 5 rounds now and 5 more after 5s", cfg: def, targets: []Target{vipA, vipB}, horizon: time.Hour,
			want: cat(burstOf(0, ReasonMaster, 5, vipA, vipB), burstOf(5*time.Second, ReasonMasterDelay, 5, vipA, vipB)),
		},
		{
			name: "garp_master_delay 0: no second burst", cfg: Config{Repeat: 3, RefreshRepeat: 1}, targets: []Target{vipA, vip6}, horizon: time.Hour,
			want: burstOf(0, ReasonMaster, 3, vipA, vip6),
		},
		{
			name:    "vrrp_min_garp: one packet per VIP",
			cfg:     Config{Repeat: 1, Delay: 0, Refresh: 0, RefreshRepeat: 0},
			targets: []Target{vipA, vipB}, horizon: time.Hour,
			want: burstOf(0, ReasonMaster, 1, vipA, vipB),
		},
		{
			name:    "garp_master_refresh 10 with refresh_repeat 2",
			cfg:     Config{Repeat: 1, Delay: 5 * time.Second, Refresh: 10 * time.Second, RefreshRepeat: 2},
			targets: []Target{vipA}, horizon: 35 * time.Second,
			want: cat(
				burstOf(0, ReasonMaster, 1, vipA),
				burstOf(5*time.Second, ReasonMasterDelay, 1, vipA),
				burstOf(10*time.Second, ReasonRefresh, 2, vipA),
				burstOf(20*time.Second, ReasonRefresh, 2, vipA),
				burstOf(30*time.Second, ReasonRefresh, 2, vipA),
			),
		},
		{
			name:    "lower priority advert: burst now and after garp_lower_prio_delay",
			cfg:     Config{Repeat: 1, Delay: 5 * time.Second, LowerPrioRepeat: 2, LowerPrioDelay: 3 * time.Second},
			targets: []Target{vipA, vip6}, horizon: time.Hour, lowerPrio: []time.Duration{2 * time.Second},
			want: cat(
				burstOf(0, ReasonMaster, 1, vipA, vip6),
				burstOf(2*time.Second, ReasonLowerPrio, 2, vipA, vip6),
				burstOf(5*time.Second, ReasonMasterDelay, 1, vipA, vip6),
				burstOf(5*time.Second, ReasonLowerPrioDelay, 2, vipA, vip6),
			),
		},
		{
			name:    "each lower priority advert adds bursts",
			cfg:     Config{Repeat: 1, LowerPrioRepeat: 1, LowerPrioDelay: 10 * time.Second},
			targets: []Target{vipA}, horizon: time.Hour, lowerPrio: []time.Duration{time.Second, 2 * time.Second},
			want: cat(
				burstOf(0, ReasonMaster, 1, vipA),
				burstOf(time.Second, ReasonLowerPrio, 1, vipA),
				burstOf(2*time.Second, ReasonLowerPrio, 1, vipA),
				burstOf(11*time.Second, ReasonLowerPrioDelay, 1, vipA),
				burstOf(12*time.Second, ReasonLowerPrioDelay, 1, vipA),
			),
		},
		{
			name:    "garp_lower_prio_repeat 0: nothing on lower priority",
			cfg:     Config{Repeat: 1, LowerPrioRepeat: 0, LowerPrioDelay: 5 * time.Second},
			targets: []Target{vipA}, horizon: time.Hour, lowerPrio: []time.Duration{time.Second},
			want: burstOf(0, ReasonMaster, 1, vipA),
		},
		{
			name: "no targets: nothing", cfg: def, horizon: time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runSchedule(tt.cfg, tt.targets, tt.horizon, tt.lowerPrio...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sends (-want +got):\n%s", diff)
			}
		})
	}
}

// TestScheduleLateTimer: a timer that fires late sends everything due by
// then, in order, and the refresh re-arms from when it was sent.
func TestScheduleLateTimer(t *testing.T) {
	s := NewSchedule(Config{Repeat: 1, Delay: 2 * time.Second, Refresh: 3 * time.Second, RefreshRepeat: 1}, []Target{vipA}, t0)
	var reasons []string
	for _, d := range s.Due(t0.Add(4 * time.Second)) {
		reasons = append(reasons, d.Reason.String())
	}
	if diff := cmp.Diff([]string{"master", "master-delay", "refresh"}, reasons); diff != "" {
		t.Errorf("late Due (-want +got):\n%s", diff)
	}
	if got, want := s.Next(), t0.Add(7*time.Second); !got.Equal(want) {
		t.Errorf("Next() = %v, want %v (refresh re-armed from the send)", got.Sub(t0), want.Sub(t0))
	}
}

// runPacer offers a burst at offset 0 and drains the pacer; it returns what
// goes when.
func runPacer(p *Pacer, offers map[time.Duration][]Send) []sent {
	var out []sent
	var times []time.Duration
	for at := range offers {
		times = append(times, at)
	}
	for len(times) > 0 || p.Pending() > 0 {
		// earliest of: next offer, pacer's next
		var now time.Duration = -1
		idx := -1
		for i, at := range times {
			if now < 0 || at < now {
				now, idx = at, i
			}
		}
		if n := p.Next(); !n.IsZero() && (now < 0 || n.Sub(t0) < now) {
			for _, s := range p.Due(n) {
				out = append(out, sent{n.Sub(t0), s.Addr.String(), s.Reason.String()})
			}
			continue
		}
		for _, s := range p.Offer(t0.Add(now), offers[now]) {
			out = append(out, sent{now, s.Addr.String(), s.Reason.String()})
		}
		times = append(times[:idx], times[idx+1:]...)
	}
	return out
}

func sends(reason Reason, n int, targets ...Target) []Send {
	var out []Send
	for range n {
		for i, t := range targets {
			out = append(out, Send{Target: t, Index: i, Reason: reason})
		}
	}
	return out
}

func TestPacer(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name       string
		garp, gna  time.Duration
		offers     map[time.Duration][]Send
		wantPacked []sent
	}{
		{
			name:   "no interval: everything at once",
			offers: map[time.Duration][]Send{0: sends(ReasonMaster, 2, vipA, vip6)},
			wantPacked: []sent{
				{0, "192.168.1.100", "master"}, {0, "fd00::100", "master"},
				{0, "192.168.1.100", "master"}, {0, "fd00::100", "master"},
			},
		},
		{
			// keepalived's pending flag: the repeats of a waiting
			// address collapse; 5 rounds over A and B send A, A, B.
			name: "vrrp_garp_interval: one per interval, repeats collapse", garp: 100 * ms,
			offers: map[time.Duration][]Send{0: sends(ReasonMaster, 5, vipA, vipB)},
			wantPacked: []sent{
				{0, "192.168.1.100", "master"},
				{100 * ms, "192.168.1.100", "master"},
				{200 * ms, "192.168.1.101", "master"},
			},
		},
		{
			name: "garp and gna intervals are separate", garp: 100 * ms, gna: 50 * ms,
			offers: map[time.Duration][]Send{0: sends(ReasonMaster, 1, vipA, vipB, vip6, vip6b)},
			wantPacked: []sent{
				{0, "192.168.1.100", "master"},
				{0, "fd00::100", "master"},
				{50 * ms, "fd00::101", "master"},
				{100 * ms, "192.168.1.101", "master"},
			},
		},
		{
			name: "only IPv4 paced", garp: 100 * ms,
			offers: map[time.Duration][]Send{0: sends(ReasonMaster, 2, vipA, vip6)},
			wantPacked: []sent{
				{0, "192.168.1.100", "master"},
				{0, "fd00::100", "master"},
				{0, "fd00::100", "master"},
				{100 * ms, "192.168.1.100", "master"},
			},
		},
		{
			name: "a later offer after the interval goes at once", garp: 100 * ms,
			offers: map[time.Duration][]Send{
				0:        sends(ReasonMaster, 1, vipA),
				500 * ms: sends(ReasonRefresh, 1, vipA, vipB),
			},
			wantPacked: []sent{
				{0, "192.168.1.100", "master"},
				{500 * ms, "192.168.1.100", "refresh"},
				{600 * ms, "192.168.1.101", "refresh"},
			},
		},
		{
			name: "a waiting packet goes before a new one", garp: 100 * ms,
			offers: map[time.Duration][]Send{
				0:        sends(ReasonMaster, 1, vipA, vipB),
				150 * ms: sends(ReasonLowerPrio, 1, vipA),
			},
			wantPacked: []sent{
				{0, "192.168.1.100", "master"},
				{100 * ms, "192.168.1.101", "master"},
				// B went at 100 ms, so A offered at 150 ms waits until 200 ms.
				{200 * ms, "192.168.1.100", "lower-prio"},
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runPacer(NewPacer(tt.garp, tt.gna), tt.offers)
			if diff := cmp.Diff(tt.wantPacked, got); diff != "" {
				t.Errorf("sends (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPacerCancel(t *testing.T) {
	p := NewPacer(time.Second, time.Second)
	now := p.Offer(t0, sends(ReasonMaster, 1, vipA, vipB, vip6, vip6b))
	if len(now) != 2 || p.Pending() != 2 {
		t.Fatalf("sent %d now, %d pending; want 2, 2", len(now), p.Pending())
	}
	p.Cancel(func(s Send) bool { return s.Addr.Is4() })
	if p.Pending() != 1 || !p.Next().Equal(t0.Add(time.Second)) {
		t.Fatalf("after cancel: %d pending, next %v", p.Pending(), p.Next())
	}
	got := p.Due(t0.Add(time.Second))
	if len(got) != 1 || got[0].Target != vip6b {
		t.Errorf("Due = %v, want only %v", got, vip6b)
	}
	if !p.Next().IsZero() {
		t.Errorf("Next() = %v with nothing pending", p.Next())
	}
}

func TestReasonString(t *testing.T) {
	for r := ReasonMaster; r <= ReasonMACChanged+1; r++ {
		if s := r.String(); s == "" || (r <= ReasonMACChanged && s == "unknown") {
			t.Errorf("Reason(%d).String() = %q", r, s)
		}
	}
}

// TestScheduleMACChanged: a MAC change on an interface of the targets
// announces every target again at once (Repeat rounds); one on another
// interface announces nothing.
func TestScheduleMACChanged(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := NewSchedule(Config{Repeat: 2}, []Target{vipA, {Addr: vipB.Addr, Dev: "eth1"}}, t0)
	s.Due(t0)
	at := t0.Add(time.Minute)
	if s.MACChanged(at, "eth9") || !s.Next().IsZero() {
		t.Fatalf("a MAC change on eth9 scheduled a burst (next %v)", s.Next())
	}
	if !s.MACChanged(at, "eth1") || !s.Next().Equal(at) {
		t.Fatalf("a MAC change on eth1: next %v, want %v", s.Next(), at)
	}
	var got []sent
	for _, d := range s.Due(at) {
		got = append(got, sent{0, d.Addr.String(), d.Reason.String()})
	}
	want := burstOf(0, ReasonMACChanged, 2, vipA, Target{Addr: vipB.Addr, Dev: "eth1"})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("burst (-want +got):\n%s", diff)
	}
}
