package probe

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/check"
)

// fake is a checker whose outcome the test sets.
type fake struct {
	ok     atomic.Bool
	weight atomic.Pointer[int]
	calls  atomic.Int32
	delay  time.Duration
}

func (f *fake) Check(ctx context.Context) check.Result {
	f.calls.Add(1)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return check.Result{Reason: "canceled"}
		}
	}
	if f.ok.Load() {
		return check.Result{OK: true, Reason: "fine", Weight: f.weight.Load()}
	}
	return check.Result{Reason: "broken"}
}

type evRec struct {
	mu sync.Mutex
	ev []Event
}

func (r *evRec) add(e Event) { r.mu.Lock(); r.ev = append(r.ev, e); r.mu.Unlock() }
func (r *evRec) get() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.ev...)
}

func TestRunnerTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		// The seed tutorial's TCP_CHECK timing, warmup off.
		p := check.Defaults(check.KindTCP, 6*time.Second)
		p.Retry, p.DelayBeforeRetry, p.Warmup = 3, 3*time.Second, 0
		web := &fake{}
		web.ok.Store(true)
		misc, always := &fake{}, &fake{}
		misc.ok.Store(true)
		always.ok.Store(true)
		mp := check.Defaults(check.KindMisc, 10*time.Second)
		mp.Warmup = 0
		var rec evRec
		r, err := NewRunner(Options{
			Servers: []RealServer{
				{ID: "web", Weight: 1, Checkers: []Checker{{Name: "TCP_CHECK web", Check: web, Policy: p}}},
				{ID: "app", Weight: 5, Checkers: []Checker{
					{Name: "MISC_CHECK app", Check: misc, Policy: mp},
					{Name: "TCP_CHECK app", Check: always, Policy: p},
				}},
			},
			OnEvent: rec.add,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()

		// web: checks at 1, 7, 13, 19, 25, ... fail from 20 s: 25, 28,
		// 31, 34 -> down at 34 (retry 3); recovered at 38, probed at 40.
		time.Sleep(20 * time.Second)
		web.ok.Store(false)
		// app: misc_dynamic weight 7 from 30 s (checks at 1, 11, 21, 31).
		time.Sleep(10 * time.Second)
		w := 7
		misc.weight.Store(&w)
		time.Sleep(8 * time.Second)
		web.ok.Store(true)
		time.Sleep(5 * time.Second)
		snap := r.Snapshot()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		type ev struct {
			Server    string
			At        time.Duration
			Up        bool
			Weight    int
			Checker   string
			WasWeight int
			First     bool
		}
		var got []ev
		for _, e := range rec.get() {
			got = append(got, ev{e.Server, e.At.Sub(t0), e.Up, e.Weight, e.CheckerName, e.WasWeight, e.FirstVerdict})
		}
		// Attempts due at the same instant finish in any order.
		slices.SortStableFunc(got, func(a, b ev) int {
			switch {
			case a.At != b.At:
				return int(a.At - b.At)
			case a.Server != b.Server:
				return strings.Compare(a.Server, b.Server)
			}
			return strings.Compare(a.Checker, b.Checker)
		})
		// Each checker's first verdict is an event, though it changes
		// nothing here.
		want := []ev{
			{"app", time.Second, true, 5, "MISC_CHECK app", 5, true},
			{"app", time.Second, true, 5, "TCP_CHECK app", 5, true},
			{"web", time.Second, true, 1, "TCP_CHECK web", 1, true},
			{"app", 31 * time.Second, true, 7, "MISC_CHECK app", 5, false},
			{"web", 34 * time.Second, false, 1, "TCP_CHECK web", 1, false},
			{"web", 40 * time.Second, true, 1, "TCP_CHECK web", 1, false},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if len(snap) != 2 || !snap[0].Up || snap[1].Weight != 7 || snap[1].ConfiguredWeight != 5 {
			t.Errorf("snapshot %+v", snap)
		}
		c := snap[0].Checkers[0]
		if c.Name != "TCP_CHECK web" || c.Kind != check.KindTCP || !c.Up || !c.Last.OK || c.Next.Sub(t0) != 46*time.Second {
			t.Errorf("checker snapshot %+v, want up, last OK, next at 46s", c)
		}
	})
}

// stepper records the steps it is asked for.
type stepper struct {
	mu    sync.Mutex
	steps []int
}

func (s *stepper) Check(ctx context.Context) check.Result { return check.Result{OK: true} }
func (s *stepper) Steps() int                             { return 3 }
func (s *stepper) CheckStep(ctx context.Context, i int) check.Result {
	s.mu.Lock()
	s.steps = append(s.steps, i)
	s.mu.Unlock()
	return check.Result{OK: true}
}

func TestRunnerSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &stepper{}
		p := check.Defaults(check.KindHTTP, time.Second)
		p.Warmup = 0
		r, err := NewRunner(Options{Servers: []RealServer{{ID: "rs", Checkers: []Checker{{Name: "HTTP_GET", Check: st, Policy: p}}}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(5*time.Second + time.Millisecond)
		cancel()
		<-done
		// Checks at 1..5 s: one url per delay_loop, in order.
		if diff := cmp.Diff([]int{0, 1, 2, 0, 1}, st.steps); diff != "" {
			t.Errorf("steps (-want +got):\n%s", diff)
		}
	})
}

func TestRunnerConcurrencyBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inflight, peak atomic.Int32
		var servers []RealServer
		p := check.Defaults(check.KindTCP, time.Second)
		p.Warmup, p.Bootstrap = 0, 0
		for i := 0; i < 10; i++ {
			servers = append(servers, RealServer{ID: string(rune('a' + i)), Checkers: []Checker{{Name: "slow", Policy: p, Check: checkFunc(func(ctx context.Context) check.Result {
				n := inflight.Add(1)
				for {
					old := peak.Load()
					if n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				time.Sleep(500 * time.Millisecond)
				inflight.Add(-1)
				return check.Result{OK: true}
			})}}})
		}
		r, err := NewRunner(Options{Servers: servers, Concurrency: 3})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(5 * time.Second)
		cancel()
		<-done
		if peak.Load() != 3 {
			t.Errorf("peak attempts in flight %d, want the bound 3", peak.Load())
		}
	})
}

type checkFunc func(ctx context.Context) check.Result

func (f checkFunc) Check(ctx context.Context) check.Result { return f(ctx) }

func TestRunnerErrors(t *testing.T) {
	p := check.Defaults(check.KindTCP, time.Second)
	if _, err := NewRunner(Options{Servers: []RealServer{{ID: "a"}, {ID: "a"}}}); err == nil {
		t.Error("duplicate real server accepted")
	}
	if _, err := NewRunner(Options{Servers: []RealServer{{ID: "a", Checkers: []Checker{{Policy: p}}}}}); err == nil {
		t.Error("checker without Check accepted")
	}
	bad := p
	bad.DelayLoop = 0
	if _, err := NewRunner(Options{Servers: []RealServer{{ID: "a", Checkers: []Checker{{Check: &fake{}, Policy: bad}}}}}); err == nil {
		t.Error("invalid policy accepted")
	}
	r, _ := NewRunner(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Errorf("first Run: %v", err)
	}
	if err := r.Run(ctx); err == nil {
		t.Error("second Run accepted")
	}
}

// TestRunnerTCPLoopback runs real TCP_CHECKs against loopback listeners,
// closes half of them, then reopens them.
func TestRunnerTCPLoopback(t *testing.T) {
	noLeak(t)
	const n = 20
	p := check.Defaults(check.KindTCP, 100*time.Millisecond)
	p.Retry, p.DelayBeforeRetry, p.Warmup, p.Bootstrap = 1, 50*time.Millisecond, 100*time.Millisecond, 0
	var listeners [n]net.Listener
	var servers []RealServer
	serve := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	for i := range listeners {
		listeners[i] = listen(t, "127.0.0.1:0")
		go serve(listeners[i])
		a := ap(listeners[i].Addr())
		servers = append(servers, RealServer{ID: a.String(), Weight: 1, Checkers: []Checker{{
			Name: "TCP_CHECK " + a.String(), Policy: p, Check: &TCP{Conn: Conn{Addr: a, Timeout: time.Second}},
		}}})
	}
	events := make(chan Event, 4*n)
	r, err := NewRunner(Options{Servers: servers, OnEvent: func(e Event) { events <- e }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < n; i += 2 {
		listeners[i].Close()
	}
	wait := func(up bool) map[string]bool {
		got := map[string]bool{}
		timeout := time.After(20 * time.Second)
		for len(got) < n/2 {
			select {
			case e := <-events:
				if e.FirstVerdict {
					continue
				}
				if e.Up != up {
					t.Fatalf("unexpected event %+v", e)
				}
				got[e.Server] = true
			case <-timeout:
				t.Fatalf("%d of %d real servers reported %v", len(got), n/2, up)
			}
		}
		return got
	}
	down := wait(false)
	for i := 0; i < n; i += 2 {
		if !down[servers[i].ID] {
			t.Errorf("%s not reported down", servers[i].ID)
		}
		l, err := net.Listen("tcp", servers[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go serve(l)
	}
	wait(true)
	for _, s := range r.Snapshot() {
		if !s.Up {
			t.Errorf("%s down in the snapshot after recovery", s.ID)
		}
	}
}

// TestRunnerResume hands a down checker with a dynamic weight over to a new
// Runner, as a reload does: the real server starts down, no event fires
// for the state it already had, and the weight is kept.
func TestRunnerResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := check.Defaults(check.KindMisc, 10*time.Second)
		p.Warmup = 0
		f := &fake{}
		w := 4
		f.weight.Store(&w)
		f.ok.Store(true)
		old, err := NewRunner(Options{Servers: []RealServer{{ID: "rs", Weight: 1, Checkers: []Checker{{Name: "m", Check: f, Policy: p}}}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- old.Run(ctx) }()
		time.Sleep(2 * time.Second)
		cancel()
		<-done
		hs := old.Healths()["rs"]
		if len(hs) != 1 || !hs[0].Up() || hs[0].Weight() == nil || *hs[0].Weight() != 4 {
			t.Fatalf("old state %+v", hs)
		}
		var rec evRec
		p.DelayLoop = 5 * time.Second // the reload changed delay_loop
		nr, err := NewRunner(Options{OnEvent: rec.add, Servers: []RealServer{{ID: "rs", Weight: 1, Checkers: []Checker{{Name: "m", Check: f, Policy: p, Resume: &hs[0]}}}}})
		if err != nil {
			t.Fatal(err)
		}
		snap := nr.Snapshot()
		if !snap[0].Up || snap[0].Weight != 4 {
			t.Errorf("resumed server: up %v weight %d, want up with weight 4", snap[0].Up, snap[0].Weight)
		}
		ctx, cancel = context.WithCancel(context.Background())
		go func() { done <- nr.Run(ctx) }()
		time.Sleep(8 * time.Second)
		cancel()
		<-done
		if ev := rec.get(); len(ev) != 0 {
			t.Errorf("events after resuming an unchanged checker: %+v", ev)
		}
	})
}

// TestEntryHeap pops entries in key order and keeps every entry's heapIdx
// pointing at its slot.
func TestEntryHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h keyHeap[*entry]
	check := func() {
		for i, s := range h {
			if e := s.v; e.heapIdx != i || e.key != s.key {
				t.Fatalf("entry at %d (slot key %d) has heapIdx %d, key %d", i, s.key, e.heapIdx, e.key)
			}
		}
	}
	var want []int64
	for range 500 {
		k := rng.Int64N(100)
		want = append(want, k)
		h.push(k, &entry{key: k})
		check()
	}
	slices.Sort(want)
	for i, k := range want[:250] {
		e := h.pop()
		check()
		if e.key != k || e.heapIdx != -1 {
			t.Fatalf("pop %d: key %d heapIdx %d, want key %d heapIdx -1", i, e.key, e.heapIdx, k)
		}
	}
	// Pushes between pops keep the order.
	for range 250 {
		k := rng.Int64N(100)
		want = append(want, k)
		h.push(k, &entry{key: k})
	}
	want = want[250:]
	slices.Sort(want)
	for i, k := range want {
		if e := h.pop(); e.key != k {
			t.Fatalf("second round, pop %d: key %d, want %d", i, e.key, k)
		}
		check()
	}
	if len(h) != 0 {
		t.Fatalf("%d entries left", len(h))
	}
}

// TestRunnerRounds: at thousands of checks a second the timetable runs in
// rounds at least dispatchQuantum apart, and still no attempt starts before
// it is due or later than one quantum after (in a synctest bubble, where
// only the Runner's own waits move the clock); the first check comes within
// bootstrap + warmup, and a checker never runs more often than delay_loop.
func TestRunnerRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 5000
		p := check.Defaults(check.KindTCP, time.Second)
		p.Bootstrap = 0
		ok := checkFunc(func(context.Context) check.Result { return check.Result{OK: true} })
		servers := make([]RealServer, n)
		for i := range servers {
			servers[i] = RealServer{ID: strconv.Itoa(i), Checkers: []Checker{{Name: "c", Check: ok, Policy: p}}}
		}
		var mu sync.Mutex
		starts := map[string][]time.Time{}
		rounds := map[time.Time]bool{}
		var bad []string
		t0 := time.Now()
		// Warmups spread evenly: 5 checks a millisecond, which the
		// token bucket lets through untouched.
		k := 0
		spread := func() float64 { k++; return float64(k) / n }
		r, err := NewRunner(Options{Servers: servers, Rand: spread, OnCheck: func(d CheckDone) {
			mu.Lock()
			defer mu.Unlock()
			if late := d.Started.Sub(d.Scheduled); late < 0 || late > dispatchQuantum {
				bad = append(bad, fmt.Sprintf("%s due %v started %v", d.Server, d.Scheduled.Sub(t0), d.Started.Sub(t0)))
			}
			starts[d.Server] = append(starts[d.Server], d.Started)
			rounds[d.Dispatched] = true
		}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(3 * time.Second)
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(bad) > 0 {
			t.Errorf("%d attempts early or more than %v late, first: %s", len(bad), dispatchQuantum, bad[0])
		}
		checks := 0
		for id, s := range starts {
			checks += len(s)
			if first := s[0].Sub(t0); first > p.Warmup+dispatchQuantum {
				t.Errorf("%s: first check at %v, want within warmup %v", id, first, p.Warmup)
			}
			for i := 1; i < len(s); i++ {
				if d := s[i].Sub(s[i-1]); d < p.DelayLoop {
					t.Errorf("%s: checks %v apart, delay_loop %v", id, d, p.DelayLoop)
				}
			}
		}
		if len(starts) != n || checks < 2*n {
			t.Errorf("%d checkers ran %d checks in 3 s, want all %d at least twice", len(starts), checks, n)
		}
		// 3 s at one round a millisecond at most.
		if len(rounds) > 3100 {
			t.Errorf("%d rounds for %d checks in 3 s, want at most one a millisecond", len(rounds), checks)
		}
	})
}

// TestRunnerSpreadsBursts: 5,000 checkers all due at the same instant
// start no faster than the token bucket allows, the first within one
// delay_loop; the next rounds, spread by the first, start on time; no
// checker runs more often than delay_loop.
func TestRunnerSpreadsBursts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 5000
		p := check.Defaults(check.KindTCP, time.Second)
		p.Bootstrap, p.Warmup = 0, 0
		ok := checkFunc(func(context.Context) check.Result { return check.Result{OK: true} })
		servers := make([]RealServer, n)
		for i := range servers {
			servers[i] = RealServer{ID: strconv.Itoa(i), Checkers: []Checker{{Name: "c", Check: ok, Policy: p}}}
		}
		var mu sync.Mutex
		starts := map[string][]time.Time{}
		var lastFirst time.Time
		var early, lateLater []string
		t0 := time.Now()
		r, err := NewRunner(Options{Servers: servers, OnCheck: func(d CheckDone) {
			mu.Lock()
			defer mu.Unlock()
			if d.Started.Before(d.Scheduled) {
				early = append(early, d.Server)
			}
			if len(starts[d.Server]) == 0 && d.Started.After(lastFirst) {
				lastFirst = d.Started
			}
			if d.Scheduled.Sub(t0) > 1500*time.Millisecond && d.Started.Sub(d.Scheduled) > 2*dispatchQuantum {
				lateLater = append(lateLater, fmt.Sprintf("%s due %v started %v", d.Server, d.Scheduled.Sub(t0), d.Started.Sub(t0)))
			}
			starts[d.Server] = append(starts[d.Server], d.Started)
		}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(4 * time.Second)
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		// 5,000 at 1.5 × 5,000 a second: the last first check about
		// 0.66 s after the start, within delay_loop.
		if d := lastFirst.Sub(t0); d < 500*time.Millisecond || d > p.DelayLoop {
			t.Errorf("last first check %v after the start, want the burst spread over 0.5 s-%v", d, p.DelayLoop)
		}
		if len(early) > 0 {
			t.Errorf("%d attempts started before due, first %s", len(early), early[0])
		}
		if len(lateLater) > 0 {
			t.Errorf("%d attempts of the later rounds more than %v late, first: %s", len(lateLater), 2*dispatchQuantum, lateLater[0])
		}
		for id, s := range starts {
			for i := 1; i < len(s); i++ {
				if d := s[i].Sub(s[i-1]); d < p.DelayLoop {
					t.Fatalf("%s: checks %v apart, delay_loop %v", id, d, p.DelayLoop)
				}
			}
			if len(s) < 3 {
				t.Fatalf("%s ran %d checks in 4 s", id, len(s))
			}
		}
	})
}
