package chaos

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Change is one address added to or removed from a node, as its netlink
// event arrived.
type Change struct {
	At    time.Time
	Node  int
	Addr  netip.Addr
	Added bool
}

// Applied is a fault as it ran: when it started and healed.
type Applied struct {
	Fault
	Start, Heal time.Time
	Targets     []int  // nodes it acted on
	Skipped     string // why it did not run ("" when it ran)
}

// Request is one client request through the VIP.
type Request struct {
	At, End time.Time
	Err     string // "" when answered
	By      string // the real server that answered
}

// Crash is a daemon that exited or panicked without being told to.
type Crash struct {
	At   time.Time
	Node int
	What string
}

// ConfigChange says from when an address is configured on every node (On)
// or on none.
type ConfigChange struct {
	At   time.Time
	Addr netip.Addr
	On   bool
}

// Input is everything a run recorded, for Check.
type Input struct {
	Nodes      []string
	Advert     time.Duration
	Bound      time.Duration // Master_Down_Interval + 100 ms
	Tol        time.Duration // event delivery tolerance on two-holder stretches
	ReqTimeout time.Duration
	Start, End time.Time // the checked period
	VIPs       []netip.Addr
	Initial    map[netip.Addr][]bool // holders at Start
	Config     []ConfigChange        // addresses configured from a time on (an address without changes always is)
	Changes    []Change
	Faults     []Applied
	Requests   []Request
	Crashes    []Crash
	Leftovers  []string
	// Keepalived lists the nodes running keepalived 2.2.7 (indexes into
	// Nodes); see KeepalivedKnown.
	Keepalived []int
}

// KeepalivedKnown lists the fault kinds keepalived 2.2.7 is known to
// mishandle, and what it does. A broken invariant around one of them in
// which the keepalived node holds an address is keepalived's, reported
// apart from vigil's (Violation.Keepalived).
var KeepalivedKnown = map[Kind]string{
	// A reload that changes the address list restarts the instance's
	// state: keepalived takes the VIP as if the master were gone and
	// holds it beside the master until it hears an advert (two holders).
	ReloadVIPs: "a reload that changes the VIP list takes the VIP beside the master",
	// keepalived does not notice an address deleted by hand and does not
	// add it back until its next transition.
	VIPDelete: "a VIP deleted by hand is not added back",
}

// Violation is one broken invariant.
type Violation struct {
	At        time.Time
	Invariant string // two-holders, one-holder, request, crash, leftover
	Faults    []int  // the faults around it (numbers)
	Kinds     []Kind
	Msg       string
	// Keepalived: the keepalived node held the address and a fault it is
	// known to mishandle (KeepalivedKnown) was under way; the break is
	// keepalived's, not vigil's.
	Keepalived bool
}

// KindStats is one row of the table.
type KindStats struct {
	Kind      Kind
	Count     int
	Skipped   int
	ToOne     []time.Duration // time to one holder after the group it was in healed; -1: never
	TwoHolder time.Duration   // two or more holders inside its windows
	Failed    int             // failed requests inside its windows
	Broken    int             // violations attributed to it, vigil's
	ByKA      int             // violations attributed to it, keepalived's
}

// Result is Check's verdict.
type Result struct {
	Violations []Violation // vigil's and keepalived's, in time order
	Kinds      []*KindStats
	Requests   int
	Failed     int
	Groups     int
}

// seg is a stretch of time with a constant number of holders of one address.
type seg struct {
	from, to time.Time
	held     []bool
}

func (s seg) count() int {
	n := 0
	for _, h := range s.held {
		if h {
			n++
		}
	}
	return n
}

func (s seg) who(names []string) string {
	var w []string
	for i, h := range s.held {
		if h {
			w = append(w, names[i])
		}
	}
	if len(w) == 0 {
		return "none"
	}
	return strings.Join(w, " ")
}

// Segments returns the holder segments of addr between in.Start and in.End.
func (in *Input) Segments(addr netip.Addr) []seg {
	cur := make([]bool, len(in.Nodes))
	copy(cur, in.Initial[addr])
	var chs []Change
	for _, c := range in.Changes {
		if c.Addr == addr {
			chs = append(chs, c)
		}
	}
	slices.SortStableFunc(chs, func(a, b Change) int { return a.At.Compare(b.At) })
	var out []seg
	from := in.Start
	for _, c := range chs {
		if c.At.After(in.End) {
			break
		}
		if c.At.After(from) {
			out = append(out, seg{from: from, to: c.At, held: slices.Clone(cur)})
			from = c.At
		}
		cur[c.Node] = c.Added
	}
	if in.End.After(from) {
		out = append(out, seg{from: from, to: in.End, held: slices.Clone(cur)})
	}
	return out
}

// stretch is a maximal run of segments satisfying a predicate.
type stretch struct {
	from, to time.Time
	who      string
	held     []bool // every node that held the address in it
}

func stretches(segs []seg, names []string, pred func(seg) bool) []stretch {
	var out []stretch
	for _, s := range segs {
		if !pred(s) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].to.Equal(s.from) {
			out[n-1].to = s.to
			for i, h := range s.held {
				out[n-1].held[i] = out[n-1].held[i] || h
			}
			if w := s.who(names); !strings.Contains(out[n-1].who, w) {
				out[n-1].who += ", " + w
			}
			continue
		}
		out = append(out, stretch{from: s.from, to: s.to, who: s.who(names), held: slices.Clone(s.held)})
	}
	return out
}

// window is a fault's span, extended by the time the cluster may take to
// settle after it heals.
func (in *Input) window(f Applied) (time.Time, time.Time) {
	end := f.Heal.Add(in.Bound)
	if f.Kind == RSFlap {
		end = end.Add(RSRecovery)
	}
	return f.Start, end
}

// covered returns how much of [a, b) lies inside the union of spans.
func covered(a, b time.Time, spans [][2]time.Time) time.Duration {
	var cut [][2]time.Time
	for _, s := range spans {
		lo, hi := maxTime(a, s[0]), minTime(b, s[1])
		if hi.After(lo) {
			cut = append(cut, [2]time.Time{lo, hi})
		}
	}
	slices.SortFunc(cut, func(x, y [2]time.Time) int { return x[0].Compare(y[0]) })
	var total time.Duration
	var end time.Time
	for _, c := range cut {
		if c[0].Before(end) {
			c[0] = end
		}
		if c[1].After(c[0]) {
			total += c[1].Sub(c[0])
			end = c[1]
		}
	}
	return total
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// configured reports whether addr is configured at t: the last Config
// change at or before t says; with none, it is.
func (in *Input) configured(addr netip.Addr, t time.Time) bool {
	on := true
	for _, c := range in.Config {
		if c.Addr == addr && !c.At.After(t) {
			on = c.On
		}
	}
	return on
}

// Check evaluates the invariants over a recorded run.
func Check(in Input) Result {
	var res Result
	stats := map[Kind]*KindStats{}
	for _, k := range AllKinds {
		stats[k] = &KindStats{Kind: k}
	}
	var faults []Applied
	for _, f := range in.Faults {
		st := stats[f.Kind]
		if f.Skipped != "" {
			st.Skipped++
			continue
		}
		st.Count++
		if f.Heal.IsZero() || f.Heal.After(in.End) {
			f.Heal = in.End
		}
		faults = append(faults, f)
	}
	slices.SortStableFunc(faults, func(a, b Applied) int { return a.Start.Compare(b.Start) })
	var splitSpans [][2]time.Time
	for _, f := range faults {
		if f.Kind.splits() {
			a, b := in.window(f)
			splitSpans = append(splitSpans, [2]time.Time{a, b})
		}
	}
	// around returns the faults whose windows meet [a, b].
	around := func(a, b time.Time) ([]int, []Kind) {
		var ns []int
		var ks []Kind
		for _, f := range faults {
			fa, fb := in.window(f)
			if !fb.Before(a) && !fa.After(b) {
				ns = append(ns, f.N)
				if !slices.Contains(ks, f.Kind) {
					ks = append(ks, f.Kind)
				}
			}
		}
		return ns, ks
	}
	// violateBy records a broken invariant; who are the holders involved
	// (nil when none), which decide whether keepalived is to blame.
	violateBy := func(who []bool, at time.Time, inv string, ns []int, ks []Kind, format string, args ...any) {
		ka := in.keepalivedBreak(who, ns, faults)
		res.Violations = append(res.Violations, Violation{At: at, Invariant: inv, Faults: ns, Kinds: ks, Msg: fmt.Sprintf(format, args...), Keepalived: ka})
		for _, k := range ks {
			if ka {
				stats[k].ByKA++
			} else {
				stats[k].Broken++
			}
		}
	}
	violate := func(at time.Time, inv string, ns []int, ks []Kind, format string, args ...any) {
		violateBy(nil, at, inv, ns, ks, format, args...)
	}
	rel := func(t time.Time) string { return fmt.Sprintf("+%.3fs", t.Sub(in.Start).Seconds()) }

	// Never two holders for longer than one advert interval outside a
	// fault that splits the cluster.
	segs := map[netip.Addr][]seg{}
	for _, v := range in.VIPs {
		segs[v] = in.Segments(v)
		for _, s := range stretches(segs[v], in.Nodes, func(s seg) bool { return s.count() >= 2 }) {
			ns, ks := around(s.from, s.to)
			for _, k := range ks {
				stats[k].TwoHolder += s.to.Sub(s.from)
			}
			outside := s.to.Sub(s.from) - covered(s.from, s.to, splitSpans)
			if outside > in.Advert+in.Tol {
				violateBy(s.held, s.from, "two-holders", ns, ks, "%s held by %s from %s for %v (%v outside split faults; bound one advert interval %v)",
					v, s.who, rel(s.from), s.to.Sub(s.from).Round(time.Millisecond), outside.Round(time.Millisecond), in.Advert)
			}
		}
	}

	// After each group of overlapping faults heals, exactly one holder
	// within the bound, until the next group starts.
	type group struct {
		faults     []Applied
		start, end time.Time
	}
	var groups []group
	for _, f := range faults {
		if n := len(groups); n > 0 && f.Start.Before(groups[n-1].end.Add(in.Bound)) {
			g := &groups[n-1]
			g.faults = append(g.faults, f)
			g.end = maxTime(g.end, f.Heal)
			continue
		}
		groups = append(groups, group{faults: []Applied{f}, start: f.Start, end: f.Heal})
	}
	res.Groups = len(groups)
	// The warm-up before the first fault is checked as a group of none.
	groups = append([]group{{start: in.Start, end: in.Start}}, groups...)
	for gi, g := range groups {
		next := in.End
		if gi+1 < len(groups) {
			next = groups[gi+1].start
		}
		var ns []int
		var ks []Kind
		for _, f := range g.faults {
			ns = append(ns, f.N)
			if !slices.Contains(ks, f.Kind) {
				ks = append(ks, f.Kind)
			}
		}
		worst := time.Duration(0)
		var late []bool // the holders of the stretches that settled late
		for _, v := range in.VIPs {
			want := 0
			if in.configured(v, g.end) {
				want = 1
			}
			bad := stretches(segs[v], in.Nodes, func(s seg) bool {
				if !s.to.After(g.end) || !s.from.Before(next) {
					return false
				}
				return s.count() != want
			})
			for _, s := range bad {
				if s.count2(segs[v], want) && s.to.Sub(s.from) <= in.Advert+in.Tol {
					continue // a hand-off overlap (one may straddle the next fault's start), checked above
				}
				if !s.to.Before(next) {
					worst = -1
					what := "the next fault"
					if gi+1 == len(groups) {
						what = "the end of the run"
					}
					violateBy(s.held, maxTime(s.from, g.end), "one-holder", ns, ks, "%s: %s held by %s (want %d holder) from %s until %s at %s",
						groupName(g.faults), v, s.who, want, rel(maxTime(s.from, g.end)), what, rel(next))
					break
				}
				if t := s.to.Sub(g.end); worst >= 0 && t > worst {
					worst = t
				}
				if s.to.Sub(g.end) > in.Bound {
					if late == nil {
						late = make([]bool, len(s.held))
					}
					for i, h := range s.held {
						late[i] = late[i] || h
					}
				}
			}
			if worst < 0 {
				break
			}
		}
		if worst > in.Bound {
			violateBy(late, g.end, "one-holder", ns, ks, "%s: healed at %s, one holder only after %v (bound Master_Down_Interval + 100 ms = %v)",
				groupName(g.faults), rel(g.end), worst.Round(time.Millisecond), in.Bound)
		}
		for _, k := range ks {
			stats[k].ToOne = append(stats[k].ToOne, worst)
		}
	}

	// Requests fail only inside a fault window.
	lastReq, reqRun, firstErr, lastReqAt := -1, 0, "", time.Time{}
	for _, r := range in.Requests {
		res.Requests++
		if r.Err == "" {
			continue
		}
		res.Failed++
		var hit []Kind
		for _, f := range faults {
			a, b := in.window(f)
			a = a.Add(-in.ReqTimeout)
			if !r.End.Before(a) && !r.At.After(b) && !slices.Contains(hit, f.Kind) {
				hit = append(hit, f.Kind)
			}
		}
		for _, k := range hit {
			stats[k].Failed++
		}
		if len(hit) == 0 {
			// A run of failures (each starting within a second of the
			// last) is one broken invariant.
			if n := len(res.Violations); n > 0 && lastReq == n-1 && r.At.Sub(lastReqAt) < time.Second {
				reqRun++
				v := &res.Violations[n-1]
				why := ""
				if i := strings.Index(v.Msg, " ["); v.Keepalived && i >= 0 {
					why = v.Msg[i:]
				}
				v.Msg = fmt.Sprintf("%d requests from %s to %s failed outside any fault window (first: %s)%s", reqRun, rel(v.At), rel(r.At), firstErr, why)
			} else {
				reqRun, firstErr = 1, r.Err
				msg := fmt.Sprintf("request at %s failed outside any fault window after %v: %s", rel(r.At), r.End.Sub(r.At).Round(time.Millisecond), r.Err)
				if f, ok := in.keepalivedStaleARP(r.At, faults, segs[in.VIPs[0]]); ok {
					// Keepalived's: it is counted against the split fault
					// that made the client follow the keepalived node.
					res.Violations = append(res.Violations, Violation{At: r.At, Invariant: "request", Faults: []int{f.N}, Kinds: []Kind{f.Kind}, Keepalived: true,
						Msg: fmt.Sprintf("%s [%s held the VIP when #%d %s healed; %s]", msg, in.Nodes[in.Keepalived[0]], f.N, f.Kind, keepalivedYield)})
					stats[f.Kind].ByKA++
				} else {
					violate(r.At, "request", nil, nil, "%s", msg)
				}
				lastReq = len(res.Violations) - 1
			}
			lastReqAt = r.At
		}
	}
	for _, c := range in.Crashes {
		ns, ks := around(c.At, c.At)
		violate(c.At, "crash", ns, ks, "%s at %s: %s", in.Nodes[c.Node], rel(c.At), c.What)
	}
	for _, l := range in.Leftovers {
		violate(in.End, "leftover", nil, nil, "%s", l)
	}
	slices.SortStableFunc(res.Violations, func(a, b Violation) int { return a.At.Compare(b.At) })
	for _, k := range AllKinds {
		res.Kinds = append(res.Kinds, stats[k])
	}
	return res
}

// keepalivedBreak reports whether a broken invariant is keepalived's: a
// fault keepalived is known to mishandle is among the faults around it (ns),
// and the keepalived node is among the holders, or nobody holds the address
// and that fault acted on the keepalived node (a VIP it did not add back).
func (in *Input) keepalivedBreak(held []bool, ns []int, faults []Applied) bool {
	isKA := func(n int) bool { return slices.Contains(in.Keepalived, n) }
	holds, anyone := false, false
	for i, h := range held {
		holds = holds || (h && isKA(i))
		anyone = anyone || h
	}
	for _, f := range faults {
		if _, ok := KeepalivedKnown[f.Kind]; !ok || !slices.Contains(ns, f.N) {
			continue
		}
		if holds || (!anyone && slices.ContainsFunc(f.Targets, isKA)) {
			return true
		}
	}
	return false
}

// staleARP is how long after a split heals a client may still send to the
// MAC of a node that held the VIP during it: Linux keeps using a neighbour
// entry for delay_first_probe_time (5 s) before it checks it.
const staleARP = 5 * time.Second

// keepalivedYield is what keepalived 2.2.7 does that leaves such a client
// behind.
const keepalivedYield = "keepalived yields to the winner without an advert of its own (higher_prio_send_advert is off by default), " +
	"so the winner sends no lower-priority gratuitous ARP and clients that followed keepalived keep its MAC"

// keepalivedStaleARP reports whether a request failing at at outside any
// fault window is keepalived's: the last split fault healed less than
// staleARP before, the keepalived node held the VIP (segs) when it healed,
// and holds it no longer.
func (in *Input) keepalivedStaleARP(at time.Time, faults []Applied, segs []seg) (Applied, bool) {
	var last *Applied
	for i := range faults {
		f := &faults[i]
		if f.Kind.splits() && !f.Heal.After(at) && at.Sub(f.Heal) <= staleARP && (last == nil || f.Heal.After(last.Heal)) {
			last = f
		}
	}
	if last == nil {
		return Applied{}, false
	}
	heldAt := func(t time.Time, n int) bool {
		for _, s := range segs {
			if !s.from.After(t) && s.to.After(t) {
				return n < len(s.held) && s.held[n]
			}
		}
		return false
	}
	for _, n := range in.Keepalived {
		if heldAt(last.Heal, n) && !heldAt(at, n) {
			return *last, true
		}
	}
	return Applied{}, false
}

// VigilBroken returns the broken invariants that are not keepalived's.
func (r Result) VigilBroken() []Violation {
	var out []Violation
	for _, v := range r.Violations {
		if !v.Keepalived {
			out = append(out, v)
		}
	}
	return out
}

// count2 reports whether every segment of the stretch that lies inside it
// has more holders than want (an overlap, not a gap).
func (s stretch) count2(segs []seg, want int) bool {
	for _, x := range segs {
		if x.from.Before(s.from) || !x.to.After(x.from) || x.from.After(s.to) || !x.from.Before(s.to) {
			continue
		}
		if x.count() <= want {
			return false
		}
	}
	return want == 1
}

func groupName(fs []Applied) string {
	if len(fs) == 0 {
		return "warm-up"
	}
	var s []string
	for _, f := range fs {
		s = append(s, fmt.Sprintf("#%d %s", f.N, f.Kind))
	}
	return strings.Join(s, " + ")
}
