package chaos

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file holds what a soak records about its stalls and the pure
// functions that turn those records into the report: advert gaps grouped
// into stalls, each stall set beside what the host (canary lateness,
// /proc/stat) and the daemons (Go GC pauses) did in the same window.

// Gap is one advert gap of one instance at least SoakResult.GapFloor
// long: the master's advert for VRID arrived at End, Len after the one
// before it (both kernel receive times on the LAN's bridge).
type Gap struct {
	End  time.Time
	VRID int
	Len  time.Duration
}

// Start is when the gap began (the advert before it).
func (g Gap) Start() time.Time { return g.End.Add(-g.Len) }

// Failover is the first sign that the backup took over one instance: an
// advert from the backup, a VIP added on the backup or released by the
// master.
type Failover struct {
	At   time.Time
	VRID int
	How  string
}

// Late is one wake-up of a canary thread Len after it was due; it woke at
// End.
type Late struct {
	Class string
	End   time.Time
	Len   time.Duration
}

// CanaryStats sums a canary thread's wake-ups.
type CanaryStats struct {
	Wakes uint64
	Max   time.Duration
	Late  uint64 // wake-ups at least canaryLate late
}

// StatSample is the host's cumulative CPU time (all CPUs summed, from
// /proc/stat) read at At, and the runnable threads then.
type StatSample struct {
	At                    time.Time
	Steal, IRQ, SoftIRQ   time.Duration
	Total                 time.Duration
	Running, BlockedProcs int
}

// ProcSample is the time a daemon's threads had run on a CPU and had
// waited runnable for one (/proc/PID/task/*/schedstat), read at At, with
// how many threads it had and how many of them were not scheduled as the
// soak asked (a thread the Go runtime started since vigil last applied
// vrrp_rt_priority runs at normal priority until it does).
type ProcSample struct {
	At              time.Time
	Run, Wait       time.Duration
	Threads, Astray int
}

// parseSchedStat reads /proc/PID/schedstat: run time, wait time (both in
// nanoseconds) and time slices.
func parseSchedStat(s string) (run, wait time.Duration, ok bool) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, 0, false
	}
	r, err1 := strconv.ParseInt(f[0], 10, 64)
	w, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return time.Duration(r), time.Duration(w), true
}

// GCPause is one garbage collection of a daemon's Go runtime (from
// GODEBUG=gctrace=1): the world stood still for Pause in all (sweep
// termination plus mark termination) and marking ran concurrently for
// Mark, between Start and Start+Pause+Mark.
type GCPause struct {
	Node  string
	Start time.Time
	Pause time.Duration
	Mark  time.Duration
}

// End is when the collection finished.
func (g GCPause) End() time.Time { return g.Start.Add(g.Pause + g.Mark) }

// Host is what a soak recorded beside the adverts.
type Host struct {
	// Peer is the canary class scheduled as the daemons are ("rt" with
	// vrrp_rt_priority, "normal" without): its lateness says whether the
	// host would have run the daemons.
	Peer    string
	Canary  map[string]*CanaryStats
	Lates   []Late
	Stat    []StatSample
	Proc    map[string][]ProcSample // by node
	GC      []GCPause
	Nodes   []string // daemon names, for the GC columns
	Dropped int      // records left out to keep memory bounded
	// Sent are the master's own advert gaps of at least the floor, as it
	// handed the adverts to its interface (a capture of its outgoing
	// frames); SentCaptured says that capture ran.
	Sent         []Gap
	SentCaptured bool
}

// Stall is a set of overlapping advert gaps: every instance in it went
// without an advert across part of [Start, End].
type Stall struct {
	Start, End time.Time
	Longest    time.Duration
	Instances  int
	Gaps       int
	// What the host and the daemons did between Start and End.
	Canary              map[string]time.Duration // longest overlapping lateness per class
	Steal, IRQ, SoftIRQ time.Duration
	Running             int                      // most runnable threads in a sample of the window
	Sent                time.Duration            // the master's longest send gap overlapping the stall (0: none at the floor)
	CPU                 time.Duration            // CPU time of the host (all CPUs) in the window
	Run, Wait           map[string]time.Duration // per daemon: time its threads ran, and waited for a CPU
	Astray              map[string]int           // per daemon: most threads not at the soak's policy in a sample of the window
	GCPause             map[string]time.Duration // STW time per daemon
	GCMark              map[string]time.Duration
	Verdict             string
}

// Stalls groups the gaps into stalls, in time order: a stall is the gaps
// that share an instant (every instance in it was without an advert at
// that moment), so two stalls that merely touch, one instance's gap
// ending as another's begins, stay apart.
func Stalls(gaps []Gap) []Stall {
	gs := slices.Clone(gaps)
	sort.Slice(gs, func(i, j int) bool { return gs[i].Start().Before(gs[j].Start()) })
	var out []Stall
	var vrids map[int]bool
	var firstEnd time.Time // the earliest end in the current stall
	for _, g := range gs {
		if n := len(out); n > 0 && g.Start().Before(firstEnd) {
			s := &out[n-1]
			if g.End.After(s.End) {
				s.End = g.End
			}
			if g.End.Before(firstEnd) {
				firstEnd = g.End
			}
			s.Longest = max(s.Longest, g.Len)
			s.Gaps++
			if !vrids[g.VRID] {
				vrids[g.VRID] = true
				s.Instances++
			}
			continue
		}
		vrids, firstEnd = map[int]bool{g.VRID: true}, g.End
		out = append(out, Stall{Start: g.Start(), End: g.End, Longest: g.Len, Instances: 1, Gaps: 1})
	}
	return out
}

// gcSlack widens a stall's window when looking for GC pauses: their times
// come from the daemon's clock since start, placed on the wall clock
// within a few milliseconds (placeGC).
const gcSlack = 10 * time.Millisecond

// Correlate fills in what the host and the daemons did during s, and the
// verdict. Canary lateness counts the part of each late wake-up's wait
// that falls inside the stall; counters sampled every statEvery are
// prorated over the part of each sample interval inside it.
func Correlate(s Stall, h *Host) Stall {
	for _, g := range h.Sent {
		if g.Start().Before(s.End) && g.End.After(s.Start) {
			s.Sent = max(s.Sent, g.Len)
		}
	}
	s.Canary = map[string]time.Duration{}
	var lates = map[string][][2]time.Time{}
	for _, l := range h.Lates {
		lates[l.Class] = append(lates[l.Class], [2]time.Time{l.End.Add(-l.Len), l.End})
	}
	for c, iv := range lates {
		if d := covered(s.Start, s.End, iv); d > 0 {
			s.Canary[c] = d
		}
	}
	st := spread(h.Stat, func(x StatSample) time.Time { return x.At },
		func(x StatSample) []time.Duration { return []time.Duration{x.Steal, x.IRQ, x.SoftIRQ, x.Total} }, s.Start, s.End)
	if st != nil {
		s.Steal, s.IRQ, s.SoftIRQ, s.CPU = st[0], st[1], st[2], st[3]
	}
	if i, j, ok := window(h.Stat, func(x StatSample) time.Time { return x.At }, s.Start, s.End); ok {
		for _, x := range h.Stat[i : j+1] {
			s.Running = max(s.Running, x.Running)
		}
	}
	s.Run, s.Wait, s.Astray = map[string]time.Duration{}, map[string]time.Duration{}, map[string]int{}
	for n, ps := range h.Proc {
		if i, j, ok := window(ps, func(x ProcSample) time.Time { return x.At }, s.Start, s.End); ok {
			for _, x := range ps[i : j+1] {
				s.Astray[n] = max(s.Astray[n], x.Astray)
			}
		}
		if v := spread(ps, func(x ProcSample) time.Time { return x.At },
			func(x ProcSample) []time.Duration { return []time.Duration{x.Run, x.Wait} }, s.Start, s.End); v != nil {
			s.Run[n], s.Wait[n] = v[0], v[1]
		}
	}
	s.GCPause, s.GCMark = map[string]time.Duration{}, map[string]time.Duration{}
	from, to := s.Start.Add(-gcSlack), s.End.Add(gcSlack)
	for _, g := range h.GC {
		if g.Start.Before(to) && g.End().After(from) {
			s.GCPause[g.Node] += g.Pause
			s.GCMark[g.Node] += g.Mark
		}
	}
	s.Verdict = verdict(s, h)
	return s
}

// spread estimates how much each cumulative counter of the samples grew
// within [from, to], spreading each sample interval's growth evenly over
// it. A counter that shrank (threads that ended took their time with
// them) counts zero in that interval. nil when the samples do not cover
// the window.
func spread[T any](xs []T, at func(T) time.Time, val func(T) []time.Duration, from, to time.Time) []time.Duration {
	if len(xs) < 2 || from.Before(at(xs[0])) || to.After(at(xs[len(xs)-1])) {
		return nil
	}
	var out []time.Duration
	for i := 1; i < len(xs); i++ {
		t0, t1 := at(xs[i-1]), at(xs[i])
		a, b := t0, t1
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if !a.Before(b) || !t0.Before(t1) {
			continue
		}
		v0, v1 := val(xs[i-1]), val(xs[i])
		if out == nil {
			out = make([]time.Duration, len(v0))
		}
		frac := float64(b.Sub(a)) / float64(t1.Sub(t0))
		for k := range v0 {
			if d := v1[k] - v0[k]; d > 0 {
				out[k] += time.Duration(float64(d) * frac)
			}
		}
	}
	if out == nil {
		out = make([]time.Duration, len(val(xs[0])))
	}
	return out
}

// window returns the indices of the last sample at or before from and the
// first at or after to (the nearest ones when the samples do not reach
// that far); st is in time order.
func window[T any](st []T, at func(T) time.Time, from, to time.Time) (i, j int, ok bool) {
	if len(st) < 2 {
		return 0, 0, false
	}
	i = sort.Search(len(st), func(i int) bool { return at(st[i]).After(from) }) - 1
	j = sort.Search(len(st), func(i int) bool { return !at(st[i]).Before(to) })
	i, j = max(i, 0), min(j, len(st)-1)
	return i, j, i < j
}

// noteworthy is the least steal or interrupt time a verdict mentions.
const noteworthy = 10 * time.Millisecond

// verdict names what most likely stalled the adverts: their delivery when
// the master sent them on time (its send gaps stayed under half the
// longest gap on the LAN); else the host when the canary scheduled as the
// daemons was overdue for at least half the longest gap (the daemons' own
// work when they used at least half the CPU time of the window), a
// daemon's garbage collector when it stopped the world that long, the
// daemon itself otherwise.
func verdict(s Stall, h *Host) string {
	half := s.Longest / 2
	if h.SentCaptured && s.Sent < half {
		v := fmt.Sprintf("delivery: %s sent on time (longest send gap %s), the LAN got the adverts late", firstNode(h), msStr(s.Sent))
		for _, c := range []string{"normal", "rt"} {
			if late := s.Canary[c]; late >= half {
				v += fmt.Sprintf(", %s canary late %s", c, msStr(late))
			}
		}
		if s.IRQ+s.SoftIRQ >= noteworthy {
			v += ", irq+softirq " + msStr(s.IRQ+s.SoftIRQ)
		}
		return v
	}
	if late, ok := s.Canary[h.Peer]; ok && late >= half {
		var busy time.Duration
		var ran []string
		for _, n := range h.Nodes {
			busy += s.Run[n]
			ran = append(ran, fmt.Sprintf("%s ran %s", n, msStr(s.Run[n])))
		}
		if s.CPU > 0 && busy >= s.CPU/2 {
			return fmt.Sprintf("daemons' own work: %s of %s CPU time, %s canary late %s", strings.Join(ran, ", "), msStr(s.CPU), h.Peer, msStr(late))
		}
		v := fmt.Sprintf("host: %s canary late %s", h.Peer, msStr(late))
		if s.Steal >= noteworthy {
			v += ", steal " + msStr(s.Steal)
		}
		if s.IRQ+s.SoftIRQ >= noteworthy {
			v += ", irq+softirq " + msStr(s.IRQ+s.SoftIRQ)
		}
		return v
	}
	// The gaps are the master's: the backup's collections are in the
	// table, not in the verdict.
	if n := firstNode(h); s.GCPause[n] >= half {
		return fmt.Sprintf("daemon: %s GC pause %s", n, msStr(s.GCPause[n]))
	}
	if _, ok := h.Canary[h.Peer]; !ok {
		return "unknown: no canary"
	}
	if n := firstNode(h); s.Astray[n] > 0 {
		return fmt.Sprintf("daemon only: %s had %d thread(s) at another policy, %s canary late %s", n, s.Astray[n], h.Peer, msStr(s.Canary[h.Peer]))
	}
	v := fmt.Sprintf("daemon only: %s canary late %s", h.Peer, msStr(s.Canary[h.Peer]))
	for c, late := range s.Canary {
		if c != h.Peer && late >= half {
			v += fmt.Sprintf(" (%s canary late %s)", c, msStr(late))
		}
	}
	return v
}

func firstNode(h *Host) string {
	if len(h.Nodes) > 0 {
		return h.Nodes[0]
	}
	return "the master"
}

// FailoverGroup is the false failovers that came together (each within
// failoverGroupGap of the one before).
type FailoverGroup struct {
	At    time.Time // the first
	Last  time.Time
	VRIDs []int
	How   map[string]int
	Stall int // 1-based index of the stall it followed, 0: none
}

const failoverGroupGap = 100 * time.Millisecond

// GroupFailovers groups failovers in time and names the stall each group
// came out of: the one whose window (extended by failoverGroupGap) holds
// the group's first failover.
func GroupFailovers(fs []Failover, stalls []Stall) []FailoverGroup {
	f := slices.Clone(fs)
	sort.Slice(f, func(i, j int) bool { return f[i].At.Before(f[j].At) })
	var out []FailoverGroup
	for _, x := range f {
		if n := len(out); n > 0 && x.At.Sub(out[n-1].Last) <= failoverGroupGap {
			g := &out[n-1]
			g.Last = x.At
			g.VRIDs = append(g.VRIDs, x.VRID)
			g.How[x.How]++
			continue
		}
		out = append(out, FailoverGroup{At: x.At, Last: x.At, VRIDs: []int{x.VRID}, How: map[string]int{x.How: 1}})
	}
	for gi := range out {
		g := &out[gi]
		slices.Sort(g.VRIDs)
		for i, s := range stalls {
			if !g.At.Before(s.Start) && !g.At.After(s.End.Add(failoverGroupGap)) {
				g.Stall = i + 1
				break
			}
		}
	}
	return out
}

// vridRanges prints sorted VRIDs compactly: "1-5,9".
func vridRanges(v []int) string {
	var b strings.Builder
	for i := 0; i < len(v); {
		j := i
		for j+1 < len(v) && v[j+1] == v[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", v[i], v[j])
		} else {
			fmt.Fprintf(&b, "%d", v[i])
		}
		i = j + 1
	}
	return b.String()
}

func msStr(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// userHZ is the unit of /proc/stat's CPU times (USER_HZ, 100 on Linux).
const userHZ = 100

// parseProcStat reads the aggregate "cpu" line and procs_running of
// /proc/stat.
func parseProcStat(b []byte) (StatSample, error) {
	var s StatSample
	found := false
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "cpu":
			// user nice system idle iowait irq softirq steal ...
			if len(f) < 9 {
				return s, fmt.Errorf("chaos: /proc/stat: short cpu line %q", sc.Text())
			}
			var total uint64
			var v [8]uint64
			for i := range v {
				n, err := strconv.ParseUint(f[1+i], 10, 64)
				if err != nil {
					return s, fmt.Errorf("chaos: /proc/stat: %w", err)
				}
				v[i] = n
				total += n
			}
			tick := time.Second / userHZ
			s.IRQ, s.SoftIRQ, s.Steal = time.Duration(v[5])*tick, time.Duration(v[6])*tick, time.Duration(v[7])*tick
			s.Total = time.Duration(total) * tick
			found = true
		case "procs_running":
			s.Running, _ = strconv.Atoi(f[1])
		case "procs_blocked":
			s.BlockedProcs, _ = strconv.Atoi(f[1])
		}
	}
	if !found {
		return s, fmt.Errorf("chaos: /proc/stat: no cpu line")
	}
	return s, nil
}

// gcLine is one line of GODEBUG=gctrace=1: the collection began Since the
// runtime started; the line was read at Seen.
type gcLine struct {
	Since            time.Duration
	STW1, Mark, STW2 time.Duration
	Seen             time.Time
}

var gcTraceRE = regexp.MustCompile(`^gc \d+ @([0-9.]+)s [0-9]+%: ([0-9.]+)\+([0-9.]+)\+([0-9.]+) ms clock`)

// parseGCTrace reads one gctrace line ("gc 12 @3.456s 1%: 0.011+0.52+0.003
// ms clock, ...").
func parseGCTrace(line string) (gcLine, bool) {
	m := gcTraceRE.FindStringSubmatch(line)
	if m == nil {
		return gcLine{}, false
	}
	var v [4]float64
	for i := range v {
		f, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return gcLine{}, false
		}
		v[i] = f
	}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	return gcLine{Since: ms(v[0] * 1000), STW1: ms(v[1]), Mark: ms(v[2]), STW2: ms(v[3])}, true
}

// placeGC puts gctrace lines on the wall clock. A line gives its start
// relative to the runtime's start, which the harness does not see; it
// began after started (when the harness launched the process), and each
// line was printed when its collection ended, before it was read: so the
// runtime started at most Seen-Since-duration, and the smallest such bound
// over the lines is the estimate.
func placeGC(node string, lines []gcLine, started time.Time) []GCPause {
	if len(lines) == 0 {
		return nil
	}
	var origin time.Time
	for i, l := range lines {
		o := l.Seen.Add(-l.Since - l.STW1 - l.Mark - l.STW2)
		if i == 0 || o.Before(origin) {
			origin = o
		}
	}
	if origin.Before(started) {
		origin = started
	}
	out := make([]GCPause, 0, len(lines))
	for _, l := range lines {
		out = append(out, GCPause{Node: node, Start: origin.Add(l.Since), Pause: l.STW1 + l.STW2, Mark: l.Mark})
	}
	return out
}

// WriteSoakEvents prints every record of a soak in time order, one a line
// (advert gaps, false failovers, late canary wake-ups, collections, the
// /proc/stat samples in which steal or interrupt time grew, provocations),
// for reading around a stall the report names.
func WriteSoakEvents(w io.Writer, r *SoakResult) {
	type ev struct {
		at   time.Time
		text string
	}
	var evs []ev
	add := func(at time.Time, format string, args ...any) {
		evs = append(evs, ev{at, fmt.Sprintf(format, args...)})
	}
	for _, g := range r.GapList {
		add(g.Start(), "gap      VRID %d %s (until %s)", g.VRID, msStr(g.Len), g.End.Format("15:04:05.000000"))
	}
	for _, g := range r.Host.Sent {
		add(g.Start(), "sent gap VRID %d %s (until %s)", g.VRID, msStr(g.Len), g.End.Format("15:04:05.000000"))
	}
	for _, f := range r.FailoverList {
		add(f.At, "failover VRID %d: %s", f.VRID, f.How)
	}
	for _, l := range r.Host.Lates {
		add(l.End.Add(-l.Len), "canary   %s late %s (woke %s)", l.Class, msStr(l.Len), l.End.Format("15:04:05.000000"))
	}
	for _, g := range r.Host.GC {
		add(g.Start, "gc       %s stop-the-world %s, mark %s", g.Node, msStr(g.Pause), msStr(g.Mark))
	}
	for i := 1; i < len(r.Host.Stat); i++ {
		a, b := r.Host.Stat[i-1], r.Host.Stat[i]
		if b.Steal != a.Steal || b.IRQ != a.IRQ || b.SoftIRQ != a.SoftIRQ {
			add(a.At, "host     steal %s, irq %s, softirq %s until %s, %d runnable",
				msStr(b.Steal-a.Steal), msStr(b.IRQ-a.IRQ), msStr(b.SoftIRQ-a.SoftIRQ), b.At.Format("15:04:05.000000"), b.Running)
		}
	}
	for _, p := range r.Provoked {
		add(p.Start, "provoked %s (until %s) %s", p.What, p.End.Format("15:04:05.000000"), p.Err)
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	for _, e := range evs {
		fmt.Fprintf(w, "%s %s\n", e.at.Format("15:04:05.000000"), e.text)
	}
}
