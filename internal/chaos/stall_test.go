package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

func TestMain(m *testing.M) {
	CanaryMain() // startCanary re-executes the test binary
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

func msd(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// gap is VRID's gap that ended at endMS and lasted lenMS.
func gap(vrid int, endMS, lenMS float64) Gap { return Gap{End: at(endMS), VRID: vrid, Len: msd(lenMS)} }

func TestStalls(t *testing.T) {
	tests := []struct {
		name string
		gaps []Gap
		want []Stall // Start, End, Longest, Instances, Gaps
	}{
		{
			name: "instances stalled together make one stall",
			gaps: []Gap{gap(1, 1120, 118), gap(2, 1121, 118), gap(3, 1119, 115)},
			want: []Stall{{Start: at(1002), End: at(1121), Longest: msd(118), Instances: 3, Gaps: 3}},
		},
		{
			// The second batch begins just after the first batch's adverts
			// (as after a SIGSTOP, when the resumed master is stalled again).
			name: "stalls that only touch stay apart",
			gaps: []Gap{gap(1, 1160, 160), gap(2, 1161, 160), gap(1, 1250, 89.5), gap(2, 1251, 90)},
			want: []Stall{
				{Start: at(1000), End: at(1161), Longest: msd(160), Instances: 2, Gaps: 2},
				{Start: at(1160.5), End: at(1251), Longest: msd(90), Instances: 2, Gaps: 2},
			},
		},
		{
			// Instance 3 stalled while 1 still did, but after 2 had sent
			// again: the three never stalled together.
			name: "a gap beginning after the first end starts a new stall",
			gaps: []Gap{gap(1, 1100, 100), gap(2, 1030, 30), gap(3, 1060, 20)},
			want: []Stall{
				{Start: at(1000), End: at(1100), Longest: msd(100), Instances: 2, Gaps: 2},
				{Start: at(1040), End: at(1060), Longest: msd(20), Instances: 1, Gaps: 1},
			},
		},
		{name: "none", gaps: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Stalls(tt.gaps)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d stalls %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if !g.Start.Equal(w.Start) || !g.End.Equal(w.End) || g.Longest != w.Longest || g.Instances != w.Instances || g.Gaps != w.Gaps {
					t.Errorf("stall %d: got %v-%v longest %v, %d instances, %d gaps; want %v-%v longest %v, %d instances, %d gaps",
						i, g.Start.Sub(t0), g.End.Sub(t0), g.Longest, g.Instances, g.Gaps, w.Start.Sub(t0), w.End.Sub(t0), w.Longest, w.Instances, w.Gaps)
				}
			}
		})
	}
}

// stat is a /proc/stat sample at ms with cumulative times in ms.
func stat(ms, steal, irq, softirq, total float64) StatSample {
	return StatSample{At: at(ms), Steal: msd(steal), IRQ: msd(irq), SoftIRQ: msd(softirq), Total: msd(total), Running: 3}
}

func TestCorrelate(t *testing.T) {
	stall := Stall{Start: at(1000), End: at(1118), Longest: msd(118), Instances: 100, Gaps: 100}
	// Samples every 100 ms from 900 to 1300 ms, 2 CPUs: Total grows by 200 ms each.
	quiet := []StatSample{stat(900, 0, 0, 0, 0), stat(1000, 0, 0, 0, 200), stat(1100, 0, 0, 0, 400), stat(1200, 0, 0, 0, 600), stat(1300, 0, 0, 0, 800)}
	// 100 ms of steal in each of 1000-1100 and 1100-1200: 100 + 18 in the stall.
	stolen := []StatSample{stat(900, 0, 0, 0, 0), stat(1000, 0, 0, 0, 200), stat(1100, 100, 0, 0, 400), stat(1200, 200, 0, 10, 600), stat(1300, 200, 0, 10, 800)}
	proc := func(runPer100 float64) []ProcSample {
		var ps []ProcSample
		for i := range 5 {
			ps = append(ps, ProcSample{At: at(900 + 100*float64(i)), Run: msd(runPer100 * float64(i))})
		}
		return ps
	}
	rtLate := func(endMS, lenMS float64) Late { return Late{Class: "rt", End: at(endMS), Len: msd(lenMS)} }
	canary := map[string]*CanaryStats{"rt": {Wakes: 1000}, "normal": {Wakes: 1000}}
	tests := []struct {
		name string
		h    Host
		want string
	}{
		{
			name: "host: the canary at the daemons' priority was late through the stall",
			h:    Host{Peer: "rt", Canary: canary, Lates: []Late{rtLate(1112, 110)}, Stat: stolen},
			want: "host: rt canary late 110.0 ms, steal 118.0 ms",
		},
		{
			name: "daemons' own work: the canary was late while the daemons used the CPUs",
			h: Host{Peer: "rt", Canary: canary, Lates: []Late{rtLate(1112, 110)}, Stat: quiet, Nodes: []string{"r1", "r2"},
				Proc: map[string][]ProcSample{"r1": proc(60), "r2": proc(50)}},
			want: "daemons' own work: r1 ran 70.8 ms, r2 ran 59.0 ms of 236.0 ms CPU time, rt canary late 110.0 ms",
		},
		{
			name: "a daemon's collector stopped the world",
			h:    Host{Peer: "rt", Canary: canary, Stat: quiet, Nodes: []string{"r1", "r2"}, GC: []GCPause{{Node: "r1", Start: at(1005), Pause: msd(100), Mark: msd(2)}}},
			want: "daemon: r1 GC pause 100.0 ms",
		},
		{
			name: "the backup's collector does not explain the master's gaps",
			h:    Host{Peer: "rt", Canary: canary, Stat: quiet, Nodes: []string{"r1", "r2"}, GC: []GCPause{{Node: "r2", Start: at(1005), Pause: msd(100)}}},
			want: "daemon only: rt canary late 0.0 ms",
		},
		{
			name: "daemon only, with a thread at another policy",
			h: Host{Peer: "rt", Canary: canary, Stat: quiet, Nodes: []string{"r1", "r2"},
				Proc: map[string][]ProcSample{"r1": {{At: at(900)}, {At: at(1000), Astray: 1}, {At: at(1100)}, {At: at(1200)}}}},
			want: "daemon only: r1 had 1 thread(s) at another policy, rt canary late 0.0 ms",
		},
		{
			name: "daemon only: the canary woke on time",
			h:    Host{Peer: "rt", Canary: canary, Stat: quiet, GC: []GCPause{{Node: "r1", Start: at(500), Pause: msd(100)}}, Nodes: []string{"r1"}},
			want: "daemon only: rt canary late 0.0 ms",
		},
		{
			// A long lateness that only touches the stall's end does not
			// explain it.
			name: "a late wake-up at the edge is not the cause",
			h:    Host{Peer: "rt", Canary: canary, Lates: []Late{rtLate(1200, 90)}, Stat: quiet},
			want: "daemon only: rt canary late 8.0 ms",
		},
		{
			name: "the other class's canary is mentioned",
			h:    Host{Peer: "rt", Canary: canary, Lates: []Late{{Class: "normal", End: at(1110), Len: msd(100)}}, Stat: quiet},
			want: "daemon only: rt canary late 0.0 ms (normal canary late 100.0 ms)",
		},
		{
			name: "daemons at normal priority",
			h:    Host{Peer: "normal", Canary: map[string]*CanaryStats{"normal": {}}, Lates: []Late{{Class: "normal", End: at(1110), Len: msd(100)}}},
			want: "host: normal canary late 100.0 ms",
		},
		{
			name: "delivery: the master sent on time, the LAN got the adverts late",
			h: Host{Peer: "rt", Canary: canary, SentCaptured: true, Nodes: []string{"r1", "r2"}, Stat: stolen,
				Sent:  []Gap{gap(1, 990, 20), gap(2, 1100, 19)}, // 19 ms < half of 118
				Lates: []Late{{Class: "normal", End: at(1110), Len: msd(100)}}},
			want: "delivery: r1 sent on time (longest send gap 19.0 ms), the LAN got the adverts late, normal canary late 100.0 ms",
		},
		{
			name: "the master's own send gap: not delivery",
			h: Host{Peer: "rt", Canary: canary, SentCaptured: true, Nodes: []string{"r1", "r2"}, Stat: quiet,
				Sent: []Gap{gap(1, 1117, 117)}, Lates: []Late{rtLate(1112, 110)}},
			want: "host: rt canary late 110.0 ms",
		},
		{
			name: "no canary",
			h:    Host{Peer: "rt"},
			want: "unknown: no canary",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Correlate(stall, &tt.h)
			if got.Verdict != tt.want {
				t.Errorf("verdict\n got %q\nwant %q", got.Verdict, tt.want)
			}
		})
	}
}

func TestSpread(t *testing.T) {
	xs := []StatSample{stat(0, 0, 0, 0, 0), stat(100, 50, 0, 0, 0), stat(200, 40, 0, 0, 0), stat(300, 140, 0, 0, 0)}
	v := func(x StatSample) []time.Duration { return []time.Duration{x.Steal} }
	a := func(x StatSample) time.Time { return x.At }
	for _, tt := range []struct {
		from, to float64
		want     []time.Duration
	}{
		{50, 100, []time.Duration{msd(25)}}, // half of the first interval
		{50, 250, []time.Duration{msd(75)}}, // 25, a shrinking counter counts zero, then 50
		{0, 300, []time.Duration{msd(150)}}, // everything that grew
		{120, 180, []time.Duration{msd(0)}}, // inside the shrinking interval
		{-10, 100, nil},                     // before the first sample
		{250, 310, nil},                     // after the last
	} {
		got := spread(xs, a, v, at(tt.from), at(tt.to))
		if len(got) != len(tt.want) || (got != nil && got[0] != tt.want[0]) {
			t.Errorf("spread(%v-%v ms) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

func TestGroupFailovers(t *testing.T) {
	stalls := []Stall{{Start: at(1000), End: at(1118)}, {Start: at(5000), End: at(5020)}}
	fs := []Failover{
		{At: at(1040), VRID: 3, How: "backup advert"},
		{At: at(1036), VRID: 1, How: "VIP added on the backup"},
		{At: at(1037), VRID: 2, How: "VIP added on the backup"},
		{At: at(1100), VRID: 5, How: "VIP added on the backup"},
		{At: at(3000), VRID: 9, How: "backup advert"},
	}
	got := GroupFailovers(fs, stalls)
	if len(got) != 2 {
		t.Fatalf("got %d groups %+v, want 2", len(got), got)
	}
	g := got[0]
	if !g.At.Equal(at(1036)) || !g.Last.Equal(at(1100)) || vridRanges(g.VRIDs) != "1-3,5" || g.How["VIP added on the backup"] != 3 || g.How["backup advert"] != 1 || g.Stall != 1 {
		t.Errorf("first group %+v (VRIDs %s), want 1036-1100 ms, VRIDs 1-3,5, 3 VIPs added + 1 advert, stall 1", g, vridRanges(g.VRIDs))
	}
	if g := got[1]; !g.At.Equal(at(3000)) || g.Stall != 0 {
		t.Errorf("second group %+v, want 3000 ms and no stall", g)
	}
}

func TestParseProcStat(t *testing.T) {
	in := "cpu  1732170 3989 638300 1716770 7436 12 86236 4080 0 0\ncpu0 869124 1859 311060 876865 5085 0 43341 1648 0 0\nintr 1 2 3\nprocs_running 7\nprocs_blocked 1\n"
	s, err := parseProcStat([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	tick := 10 * time.Millisecond
	if s.Steal != 4080*tick || s.IRQ != 12*tick || s.SoftIRQ != 86236*tick || s.Running != 7 || s.BlockedProcs != 1 {
		t.Errorf("got %+v", s)
	}
	if want := time.Duration(1732170+3989+638300+1716770+7436+12+86236+4080) * tick; s.Total != want {
		t.Errorf("total %v, want %v", s.Total, want)
	}
	for _, bad := range []string{"", "cpu 1 2 3\n", "cpu 1 2 3 4 5 6 x 8\n"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
}

func TestParseSchedStat(t *testing.T) {
	run, wait, ok := parseSchedStat("87390954 264144954 317\n")
	if !ok || run != 87390954 || wait != 264144954 {
		t.Errorf("got %v %v %v", run, wait, ok)
	}
	if _, _, ok := parseSchedStat("12"); ok {
		t.Error("a short line parsed")
	}
}

func TestParseGCTrace(t *testing.T) {
	l, ok := parseGCTrace("gc 3 @12.321s 4%: 0.71+11+0.003 ms clock, 1.4+0.12/0.77/0.95+0.006 ms cpu, 3->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P")
	if !ok || l.Since != msd(12321) || l.STW1 != msd(0.71) || l.Mark != msd(11) || l.STW2 != msd(0.003) {
		t.Errorf("got %+v, %v", l, ok)
	}
	for _, bad := range []string{"time=... level=INFO msg=\"gc 3\"", "gc 3 @x.1s 4%: 1+1+1 ms clock", ""} {
		if _, ok := parseGCTrace(bad); ok {
			t.Errorf("parseGCTrace(%q) accepted", bad)
		}
	}
}

func TestPlaceGC(t *testing.T) {
	started := at(0)
	// The runtime started 5 ms after the harness launched it; lines are
	// read 1 to 20 ms after their collection ends.
	origin := at(5)
	mk := func(sinceMS, readAfterMS float64) gcLine {
		l := gcLine{Since: msd(sinceMS), STW1: msd(0.5), Mark: msd(3), STW2: msd(0.5)}
		l.Seen = origin.Add(l.Since + l.STW1 + l.Mark + l.STW2 + msd(readAfterMS))
		return l
	}
	got := placeGC("r1", []gcLine{mk(100, 20), mk(600, 1), mk(900, 7)}, started)
	if len(got) != 3 {
		t.Fatalf("got %d", len(got))
	}
	// The best bound is the line read 1 ms late.
	if want := origin.Add(msd(600 + 1)); !got[1].Start.Equal(want) || got[1].Pause != msd(1) || got[1].Mark != msd(3) || got[1].Node != "r1" {
		t.Errorf("got %+v, want start %v", got[1], want.Sub(t0))
	}
	// A bound before the launch is replaced by the launch.
	early := []gcLine{{Since: msd(100), Seen: at(50)}}
	if g := placeGC("r1", early, started); !g[0].Start.Equal(at(100)) {
		t.Errorf("got start %v, want 100 ms", g[0].Start.Sub(t0))
	}
	if placeGC("r1", nil, started) != nil {
		t.Error("no lines gave pauses")
	}
}

func TestParseCanaryLine(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want canaryRecord
		err  bool
	}{
		{in: "ready rt", want: canaryRecord{Kind: "ready", Class: "rt"}},
		{in: "late normal 1796630400000000000 110000000", want: canaryRecord{Kind: "late", Class: "normal", At: time.Unix(0, 1796630400000000000), Late: msd(110)}},
		{in: "tick rt 1796630400000000000 1000 250000", want: canaryRecord{Kind: "tick", Class: "rt", At: time.Unix(0, 1796630400000000000), Wakes: 1000, Late: msd(0.25)}},
		{in: "error canary rt: SCHED_RR 60: operation not permitted", want: canaryRecord{Kind: "error", Msg: "canary rt: SCHED_RR 60: operation not permitted"}},
		{in: "late rt 12", err: true},
		{in: "late rt x 1", err: true},
		{in: "tick rt 1 2 -3", err: true},
		{in: "ready", err: true},
		{in: "hello rt", err: true},
	} {
		got, err := parseCanaryLine(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("%q: error %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && (got.Kind != tt.want.Kind || got.Class != tt.want.Class || !got.At.Equal(tt.want.At) || got.Late != tt.want.Late || got.Wakes != tt.want.Wakes || got.Msg != tt.want.Msg) {
			t.Errorf("%q: got %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseCanaryClass(t *testing.T) {
	for in, want := range map[string]canaryClass{"rt=60": {"rt", 60}, "normal=-5": {"normal", -5}} {
		c, err := parseCanaryClass(in)
		if err != nil || c != want || c.String() != in {
			t.Errorf("parseCanaryClass(%q) = %v, %v", in, c, err)
		}
	}
	if p := (canaryClass{"rt", 60}).policy(); p.RTPriority != 60 || p.Nice != 0 {
		t.Errorf("rt=60 policy %v", p)
	}
	if p := (canaryClass{"normal", -5}).policy(); p.RTPriority != 0 || p.Nice != -5 {
		t.Errorf("normal=-5 policy %v", p)
	}
	for _, bad := range []string{"", "rt=0", "rt=100", "normal=20", "idle=1", "rt", "rt=60 normal=0"} {
		if _, err := parseCanaryClass(bad); err == nil {
			t.Errorf("parseCanaryClass(%q): no error", bad)
		}
	}
}

func TestParseProvocations(t *testing.T) {
	ps, err := ParseProvocations("stop@20s:150ms, rthog@40s:100ms,lowrthog@1m:1s")
	if err != nil || len(ps) != 3 || ps[0] != (Provocation{"stop", 20 * time.Second, 150 * time.Millisecond}) || ps[1] != (Provocation{"rthog", 40 * time.Second, 100 * time.Millisecond}) ||
		ps[2] != (Provocation{"lowrthog", time.Minute, time.Second}) {
		t.Errorf("got %v, %v", ps, err)
	}
	if ps, err := ParseProvocations(""); err != nil || len(ps) != 0 {
		t.Errorf("empty: %v, %v", ps, err)
	}
	for _, bad := range []string{"kill@1s:1s", "stop@1s", "stop:1s", "stop@-1s:1s", "stop@1s:0s", "stop@x:1s"} {
		if _, err := ParseProvocations(bad); err == nil {
			t.Errorf("ParseProvocations(%q): no error", bad)
		}
	}
}

// failWriter takes lines until one starts with stopAt.
type failWriter struct {
	lines  []string
	stopAt string
}

func (w *failWriter) Write(b []byte) (int, error) {
	w.lines = append(w.lines, strings.TrimSpace(string(b)))
	if strings.HasPrefix(string(b), w.stopAt) {
		return 0, errors.New("done")
	}
	return len(b), nil
}

// TestCanaryLoop runs the canary's loop for its first second (it ends
// when its writer fails at the first tick line).
func TestCanaryLoop(t *testing.T) {
	w := &failWriter{stopAt: "tick"}
	if err := runCanary(canaryClass{"normal", 0}, w); err == nil {
		t.Fatal("the canary ended without an error")
	}
	if len(w.lines) < 2 || w.lines[0] != "ready normal" {
		t.Fatalf("lines %q", w.lines)
	}
	tick, err := parseCanaryLine(w.lines[len(w.lines)-1])
	if err != nil || tick.Kind != "tick" {
		t.Fatalf("last line %q: %v", w.lines[len(w.lines)-1], err)
	}
	// 1 ms sleeps for a second: far fewer wake-ups only if the machine
	// stood still for most of it.
	if tick.Wakes < 100 || tick.Wakes > 1001 {
		t.Errorf("%d wake-ups in the first second", tick.Wakes)
	}
	for _, l := range w.lines[1 : len(w.lines)-1] {
		if r, err := parseCanaryLine(l); err != nil || r.Kind != "late" || r.Late < canaryLate {
			t.Errorf("line %q (%v)", l, err)
		}
	}
}

// tickWriter counts tick lines and fails at the first line written more
// than after past the first tick.
type tickWriter struct {
	mu    sync.Mutex
	after time.Duration
	first time.Time
	ticks int
}

func (w *tickWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.first.IsZero() && time.Since(w.first) > w.after {
		return 0, errors.New("done")
	}
	if strings.HasPrefix(string(b), "tick ") {
		if w.first.IsZero() {
			w.first = time.Now()
		}
		w.ticks++
	}
	return len(b), nil
}

// TestCanaryLoopPerCPU checks that the canary runs one loop on each CPU
// the process may use: each prints its first tick a second after they
// all started, so that many ticks arrive together.
func TestCanaryLoopPerCPU(t *testing.T) {
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		t.Fatal(err)
	}
	w := &tickWriter{after: 500 * time.Millisecond}
	if err := runCanary(canaryClass{"normal", 0}, w); err == nil {
		t.Fatal("the canary ended without an error")
	}
	if w.ticks != cpus.Count() {
		t.Errorf("%d first ticks within 500 ms, want one per CPU (%d)", w.ticks, cpus.Count())
	}
}

// TestStartCanary runs the canary as the soak does, in a process of its
// own, for about a second.
func TestStartCanary(t *testing.T) {
	ks, err := startCanaries([]canaryClass{{"normal", 0}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	ks.stop()
	ks.stop() // a second stop is harmless
	stats, _, _, errs := ks.results()
	if len(errs) > 0 {
		t.Errorf("errors: %q", errs)
	}
	if st := stats["normal"]; st == nil || st.Wakes == 0 {
		t.Errorf("no tick from the canary: %+v", stats)
	}
}

func TestWriteSoakStalls(t *testing.T) {
	r := &SoakResult{
		Options:  SoakOptions{Instances: 100, Advert: 10 * time.Millisecond, RTPriority: 60},
		Start:    at(0), // the collection at -2 s, while the daemons started, is left out of the totals
		GapFloor: msd(18),
		GapList:  []Gap{gap(1, 1118, 118), gap(2, 1118.5, 118), gap(1, 5030, 25)},
		FailoverList: []Failover{
			{At: at(1040), VRID: 1, How: "VIP added on the backup"},
			{At: at(1041), VRID: 2, How: "VIP added on the backup"},
		},
		Host: Host{
			Peer:   "rt",
			Canary: map[string]*CanaryStats{"rt": {Wakes: 600000, Late: 3, Max: msd(110)}, "normal": {Wakes: 590000}},
			Lates:  []Late{{Class: "rt", End: at(1112), Len: msd(110)}},
			Nodes:  []string{"r1", "r2"},
			GC:     []GCPause{{Node: "r1", Start: at(3000), Pause: msd(0.3), Mark: msd(2)}, {Node: "r1", Start: at(-2000), Pause: msd(60)}},
		},
		Provoked: []Provoked{{Start: at(995), End: at(1145), What: "SCHED_RR 60 busy loop on each of 2 CPUs for 150ms"}},
	}
	r.Analyze()
	var b bytes.Buffer
	writeStalls(&b, r)
	out := b.String()
	for _, want := range []string{
		"3 gaps in 2 stall(s)",
		"  1  08:00:01.000  118.0 ms  2          110.0 ms   0.0 ms",
		"host: rt canary late 110.0 ms\n",
		"  2  08:00:05.005  25.0 ms   1          0.0 ms",
		"daemon only: rt canary late 0.0 ms\n",
		"08:00:01.040  2 instances (VRID 1-2) within 1.0 ms: VIP added on the backup 2; after stall 1 (host: rt canary late 110.0 ms)",
		"provoked: 08:00:00.995-08:00:01.145  SCHED_RR 60 busy loop",
		"canary rt (SCHED_RR 60, 1ms sleeps): 600000 wake-ups, 3 at least 2.0 ms late, worst 110.0 ms",
		"GC r1 during the soak: 1 collections, longest stop-the-world 0.3 ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	var ev bytes.Buffer
	WriteSoakEvents(&ev, r)
	lines := strings.Split(strings.TrimSpace(ev.String()), "\n")
	if len(lines) != 9 || !strings.HasPrefix(lines[1], "08:00:00.995000 provoked") || !strings.Contains(lines[len(lines)-1], "gap      VRID 1 25.0 ms") {
		t.Errorf("events:\n%s", ev.String())
	}
}

// TestRTCanaryProcess checks that a real-time canary process is scheduled
// as vigil is: its loops' threads (one per CPU) at its priority, as
// vigil's VRRP timer's thread, and the others SCHED_OTHER.
func TestRTCanaryProcess(t *testing.T) {
	netnstest.RequireRoot(t)
	ks, err := startCanaries([]canaryClass{{"rt", 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.stop()
	pid := ks[0].cmd.Process.Pid
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(ents) < 2 {
		t.Fatalf("threads of %d: %v, %v", pid, ents, err)
	}
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil { // what the canary inherited
		t.Fatal(err)
	}
	rt := 0
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		a, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // ended
		}
		switch {
		case a.Policy == unix.SCHED_RR && a.Priority == 1:
			rt++
		case a.Policy != unix.SCHED_NORMAL:
			t.Errorf("thread %d: policy %d priority %d, want SCHED_RR 1 or SCHED_OTHER", tid, a.Policy, a.Priority)
		}
	}
	if rt != cpus.Count() {
		t.Errorf("%d threads at SCHED_RR 1, want one loop per CPU (%d)", rt, cpus.Count())
	}
}
