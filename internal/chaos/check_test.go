package chaos

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPlanSeedReproduces(t *testing.T) {
	o := PlanOptions{Seed: 42, Faults: 300, Advert: 100 * time.Millisecond}
	a, b := Plan(o), Plan(o)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two schedules")
	}
	o.Seed = 43
	if reflect.DeepEqual(a, Plan(o)) {
		t.Fatal("seeds 42 and 43 gave the same schedule")
	}
	kinds := map[Kind]int{}
	overlaps := 0
	for i, f := range a {
		kinds[f.Kind]++
		if i > 0 && f.At < a[i-1].End() {
			overlaps++
		}
		if f.Kind == RSFlap {
			for _, g := range a[:i] {
				if g.Kind == RSFlap && g.RS == f.RS && g.At < f.End() && f.At < g.End() {
					t.Errorf("%v and %v flap one real server at once", g, f)
				}
			}
		}
		if f.Node >= 0 {
			for _, g := range a[:i] {
				if g.Node == f.Node && g.At < f.End() && f.At < g.End() {
					t.Errorf("%v and %v act on one node at once", g, f)
				}
			}
		}
	}
	if len(kinds) < 10 || overlaps == 0 {
		t.Errorf("300 faults: %d kinds, %d overlaps; want most kinds and some overlaps", len(kinds), overlaps)
	}
}

func TestPlanCover(t *testing.T) {
	seen := map[Kind]bool{}
	for _, f := range Plan(PlanOptions{Seed: 5, Faults: len(AllKinds), Advert: 100 * time.Millisecond, Cover: true}) {
		seen[f.Kind] = true
	}
	if len(seen) != len(AllKinds) {
		t.Fatalf("covered %d of %d kinds", len(seen), len(AllKinds))
	}
}

func TestPlanKinds(t *testing.T) {
	ks, err := ParseKinds("kill,partition")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Plan(PlanOptions{Seed: 1, Faults: 30, Kinds: ks, Advert: 100 * time.Millisecond}) {
		if f.Kind != Kill && f.Kind != Partition {
			t.Fatalf("got %v", f)
		}
	}
	if _, err := ParseKinds("kill,meteor"); err == nil || !strings.Contains(err.Error(), "meteor") {
		t.Fatalf("unknown kind: %v", err)
	}
}

// timeline builds an Input over three nodes from a list of changes given
// in milliseconds from the start: "+1 r2" adds the VIP on r2.
type tl struct {
	in Input
	t0 time.Time
}

func newTL(endMS int) *tl {
	t0 := time.Unix(1000, 0)
	v := VIPFront
	return &tl{t0: t0, in: Input{
		Nodes: []string{"r1", "r2", "r3"}, Advert: 100 * time.Millisecond, Bound: 469 * time.Millisecond, Tol: 25 * time.Millisecond,
		ReqTimeout: 500 * time.Millisecond, Start: t0, End: t0.Add(time.Duration(endMS) * time.Millisecond),
		VIPs: []netip.Addr{v}, Initial: map[netip.Addr][]bool{v: {true, false, false}},
	}}
}

func (x *tl) at(ms int) time.Time { return x.t0.Add(time.Duration(ms) * time.Millisecond) }

func (x *tl) ch(ms, node int, added bool) *tl {
	x.in.Changes = append(x.in.Changes, Change{At: x.at(ms), Node: node, Addr: VIPFront, Added: added})
	return x
}

func (x *tl) fault(n int, k Kind, from, to int) *tl {
	x.in.Faults = append(x.in.Faults, Applied{Fault: Fault{N: n, Kind: k}, Start: x.at(from), Heal: x.at(to)})
	return x
}

func (x *tl) req(from, to int, err string) *tl {
	x.in.Requests = append(x.in.Requests, Request{At: x.at(from), End: x.at(to), Err: err})
	return x
}

func invariants(r Result) []string {
	var s []string
	for _, v := range r.Violations {
		s = append(s, v.Invariant)
	}
	return s
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		tl   *tl
		want []string
	}{
		{"quiet run", newTL(5000).req(100, 110, ""), nil},
		{"failover inside a kill", newTL(5000).fault(1, Kill, 1000, 2000).ch(1000, 0, false).ch(1400, 1, true).
			ch(2300, 0, true).ch(2350, 1, false).req(1100, 1600, "timeout"), nil},
		{"failover settles too late", newTL(5000).fault(1, Kill, 1000, 2000).ch(1000, 0, false).ch(2600, 1, true), []string{"one-holder"}},
		{"VIP deleted, never restored", newTL(5000).fault(1, VIPDelete, 1000, 1000).ch(1000, 0, false), []string{"one-holder"}},
		{"VIP deleted, restored at once", newTL(5000).fault(1, VIPDelete, 1000, 1000).ch(1000, 0, false).ch(1010, 0, true), nil},
		{"two masters after a reload", newTL(5000).fault(1, ReloadVIPs, 1000, 1200).ch(1100, 1, true).ch(1500, 1, false), []string{"two-holders"}},
		{"two masters inside a partition", newTL(5000).fault(1, Partition, 1000, 2000).ch(1400, 1, true).ch(2050, 1, false), nil},
		{"hand-off overlap of one interval", newTL(5000).fault(1, Handover, 1000, 2000).ch(1100, 1, true).ch(1180, 0, false), nil},
		// A preempting master's hand-off (40 ms of overlap) that the next
		// fault begins in the middle of: seed 606, #53.
		{"hand-off overlap across the next fault's start", newTL(5000).fault(1, Handover, 1000, 1100).ch(1000, 1, true).ch(1040, 0, false).
			ch(2000, 0, true).fault(2, ReloadVIPs, 2024, 2500).ch(2039, 1, false), nil},
		{"two holders across the next fault's start", newTL(5000).fault(1, Handover, 1000, 1100).ch(1000, 1, true).ch(1040, 0, false).
			ch(2000, 0, true).fault(2, ReloadVIPs, 2024, 2500).ch(2300, 1, false), []string{"two-holders", "one-holder"}},
		{"request failing in quiet time", newTL(5000).fault(1, Kill, 1000, 2000).ch(1000, 0, false).ch(1400, 1, true).req(3500, 3600, "reset"), []string{"request"}},
		{"a run of failing requests is one", newTL(5000).req(3500, 3600, "reset").req(3520, 3620, "reset").req(3540, 3640, "reset"), []string{"request"}},
		{"flap in quiet time", newTL(8000).fault(1, Kill, 1000, 2000).ch(1000, 0, false).ch(1400, 1, true).ch(5000, 1, false).ch(5300, 2, true), []string{"one-holder"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := invariants(Check(tc.tl.in))
			if !reflect.DeepEqual(got, tc.want) {
				r := Check(tc.tl.in)
				t.Errorf("broken invariants %v, want %v: %+v", got, tc.want, r.Violations)
			}
		})
	}
}

// TestCheckKeepalivedAttribution: a break in which the keepalived node holds
// the address around a fault keepalived is known to mishandle is
// keepalived's; the same break by a vigil node, or around another fault, is
// vigil's.
func TestCheckKeepalivedAttribution(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tl    *tl
		ka    []int
		vigil int // broken invariants counted against vigil (two-holders, then one-holder late)
		byKA  int
	}{
		{"keepalived takes the VIP on a VIP reload", newTL(5000).fault(1, ReloadVIPs, 1000, 1200).ch(1100, 2, true).ch(1700, 2, false), []int{2}, 0, 2},
		{"vigil takes the VIP on a VIP reload", newTL(5000).fault(1, ReloadVIPs, 1000, 1200).ch(1100, 1, true).ch(1700, 1, false), []int{2}, 2, 0},
		{"no keepalived node", newTL(5000).fault(1, ReloadVIPs, 1000, 1200).ch(1100, 2, true).ch(1700, 2, false), nil, 2, 0},
		{"keepalived, a fault it handles", newTL(5000).fault(1, ReloadPrio, 1000, 1200).ch(1100, 2, true).ch(1700, 2, false), []int{2}, 2, 0},
		{"keepalived leaves a deleted VIP", func() *tl {
			x := newTL(5000).fault(1, VIPDelete, 1000, 1000).ch(1000, 2, false)
			x.in.Initial[VIPFront] = []bool{false, false, true}
			x.in.Faults[0].Targets = []int{2}
			return x
		}(), []int{2}, 0, 1},
		// A partition with the client on keepalived's side: keepalived
		// holds the VIP when it heals and yields; requests then fail.
		{"requests fail after keepalived yields", newTL(8000).fault(1, Partition, 1000, 3000).ch(1400, 2, true).ch(3010, 2, false).req(3500, 3600, "refused").req(3520, 3620, "refused"), []int{2}, 0, 1},
		{"requests fail after vigil yields", newTL(8000).fault(1, Partition, 1000, 3000).ch(1400, 1, true).ch(3010, 1, false).req(3500, 3600, "refused"), []int{2}, 1, 0},
		{"requests fail long after keepalived yielded", newTL(12000).fault(1, Partition, 1000, 3000).ch(1400, 2, true).ch(3010, 2, false).req(9000, 9100, "refused"), []int{2}, 1, 0},
		{"vigil leaves a deleted VIP", func() *tl {
			x := newTL(5000).fault(1, VIPDelete, 1000, 1000).ch(1000, 0, false)
			x.in.Faults[0].Targets = []int{0}
			return x
		}(), []int{2}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.tl.in.Keepalived = tc.ka
			r := Check(tc.tl.in)
			vigil := len(r.VigilBroken())
			if vigil != tc.vigil || len(r.Violations)-vigil != tc.byKA {
				t.Fatalf("vigil %d, keepalived %d; want %d, %d: %+v", vigil, len(r.Violations)-vigil, tc.vigil, tc.byKA, r.Violations)
			}
			o := &Outcome{Options: Options{Seed: 1}, Input: tc.tl.in, Result: r}
			var tb strings.Builder
			WriteTable(&tb, o)
			if got := strings.Contains(tb.String(), "caused by keepalived 2.2.7"); got != (tc.byKA > 0) {
				t.Errorf("table lists keepalived's breaks: %v, want %v:\n%s", got, tc.byKA > 0, tb.String())
			}
		})
	}
}

func TestCheckCrashAndLeftovers(t *testing.T) {
	x := newTL(3000)
	x.in.Crashes = []Crash{{At: x.at(100), Node: 1, What: "panic: boom"}}
	x.in.Leftovers = []string{"r1 still holds 192.168.1.100"}
	if got := invariants(Check(x.in)); !reflect.DeepEqual(got, []string{"crash", "leftover"}) {
		t.Fatalf("got %v", got)
	}
}

func TestCheckExtraVIPRemoved(t *testing.T) {
	x := newTL(5000)
	x.in.VIPs = append(x.in.VIPs, VIPExtra)
	x.in.Initial[VIPExtra] = []bool{true, false, false}
	x.fault(1, ReloadVIPs, 1000, 1200)
	x.in.Config = []ConfigChange{{At: x.at(1200), Addr: VIPExtra, On: false}}
	if got := invariants(Check(x.in)); !reflect.DeepEqual(got, []string{"one-holder"}) {
		t.Fatalf("a VIP removed from the configuration but kept: got %v", got)
	}
	x.in.Changes = append(x.in.Changes, Change{At: x.at(1100), Node: 0, Addr: VIPExtra, Added: false})
	if got := invariants(Check(x.in)); got != nil {
		t.Fatalf("removed: got %v", got)
	}
}

func TestSoakQuantiles(t *testing.T) {
	r := &SoakResult{Gaps: make([]uint64, gapBuckets)}
	for i := range 98 {
		_ = i
		r.Gaps[100]++ // 10 ms
	}
	r.Gaps[300]++  // 30 ms
	r.Gaps[4000]++ // 400 ms
	if got := r.Quantile(0.5); got != 10*time.Millisecond {
		t.Errorf("median %v, want 10ms", got)
	}
	if got := r.Quantile(0.99); got != 30*time.Millisecond {
		t.Errorf("p99 %v, want 30ms", got)
	}
	if got := r.Max(); got != 400*time.Millisecond {
		t.Errorf("max %v, want 400ms", got)
	}
	if got := r.Over(20 * time.Millisecond); got != 2 {
		t.Errorf("over 20ms: %d, want 2", got)
	}
}

func TestReportOutputs(t *testing.T) {
	x := newTL(5000).fault(1, VIPDelete, 1000, 1000).ch(1000, 0, false)
	o := &Outcome{Options: Options{Seed: 9}, Plan: []Fault{{N: 1, Kind: VIPDelete}}, Input: x.in}
	o.Input.Faults[0].Targets = []int{0}
	o.Result = Check(o.Input)
	var tb, svg, evs strings.Builder
	WriteTable(&tb, o)
	if err := WriteSVG(&svg, o); err != nil {
		t.Fatal(err)
	}
	WriteEvents(&evs, o)
	for _, want := range []string{"vip-delete", "one-holder [#1 vip-delete]", "seed 9"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
	if !strings.HasPrefix(svg.String(), "<svg") || !strings.Contains(svg.String(), "✗1 one-holder") {
		t.Errorf("timeline lacks the broken invariant:\n%.400s", svg.String())
	}
	if !strings.Contains(evs.String(), "+1.000s r1 -192.168.1.100") {
		t.Errorf("events:\n%s", evs.String())
	}
}
