package engine

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// firings returns a function to give a timer and the channel it reports
// each call's time on.
func firings() (func(), chan time.Time) {
	c := make(chan time.Time, 1)
	return func() {
		select {
		case c <- time.Now():
		default:
		}
	}, c
}

// TestFDTimer: the timerfd timer fires after its duration, not before;
// Reset re-arms it (the last Reset wins); Close returns.
func TestFDTimer(t *testing.T) {
	f, c := firings()
	ft, err := newFDTimer(f, nil)
	if err != nil {
		t.Skipf("no timerfd: %v", err)
	}
	defer ft.Close()
	start := time.Now()
	ft.Reset(time.Hour)
	ft.Reset(20 * time.Millisecond) // replaces the hour
	select {
	case at := <-c:
		if d := at.Sub(start); d < 20*time.Millisecond {
			t.Fatalf("fired after %v, before its 20ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire")
	}
	ft.Reset(0) // at once
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatal("Reset(0) did not fire")
	}
}

// BenchmarkTimerLateness compares how late the two timers wake for a 3.6 ms
// deadline (what a VRRP timer error is made of); the result is reported as
// µs-late/op.
func BenchmarkTimerLateness(b *testing.B) {
	for _, tc := range []struct {
		name string
		mk   func(f func()) wakeTimer
	}{
		{"go", func(f func()) wakeTimer { return newGoTimer(f) }},
		{"timerfd", func(f func()) wakeTimer {
			t, err := newFDTimer(f, nil)
			if err != nil {
				b.Skip(err)
			}
			return t
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f, c := firings()
			tm := tc.mk(f)
			defer tm.Close()
			var late time.Duration
			for range b.N {
				start := time.Now()
				tm.Reset(3600 * time.Microsecond)
				<-c
				late += time.Since(start) - 3600*time.Microsecond
			}
			b.ReportMetric(float64(late.Microseconds())/float64(b.N), "µs-late/op")
		})
	}
}

// A timerfd the kernel refuses to arm (here: no fd at all) still wakes the
// engine, through the runtime's timer, and Close does not hang.
func TestFDTimerSettimeFails(t *testing.T) {
	f, c := firings()
	ft := &fdTimer{pfd: -1, fn: f}
	ft.Reset(time.Millisecond)
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatal("no wake-up after a refused settime")
	}
	if n := ft.fallbacks.Load(); n != 1 {
		t.Errorf("fallbacks = %d, want 1", n)
	}
	ft.Close()
}

// On its own thread the timer runs its expiries on the thread onThread was
// called on, the deadline set before the switch carries over both ways,
// and Close ends the thread (onThread's done is called).
func TestFDTimerThread(t *testing.T) {
	tids := make(chan int, 16)
	left := make(chan struct{}, 2)
	ft, err := newFDTimer(func() {
		select {
		case tids <- unix.Gettid():
		default:
		}
	}, func() func() {
		tids <- -unix.Gettid() // the thread, negated
		return func() { left <- struct{}{} }
	})
	if err != nil {
		t.Skipf("no timerfd: %v", err)
	}
	wait := func(what string) int {
		t.Helper()
		select {
		case tid := <-tids:
			return tid
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing", what)
			return 0
		}
	}
	ft.Reset(100 * time.Millisecond)
	if err := ft.SetThread(true); err != nil {
		t.Fatal(err)
	}
	thread := -wait("onThread")
	if tid := wait("the deadline set before the switch"); tid != thread {
		t.Fatalf("expiry on thread %d, want %d", tid, thread)
	}
	for range 3 {
		ft.Reset(time.Millisecond)
		if tid := wait("an expiry on the thread"); tid != thread {
			t.Fatalf("expiry on thread %d, want %d", tid, thread)
		}
	}
	ft.Reset(50 * time.Millisecond)
	if err := ft.SetThread(false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-left:
	case <-time.After(10 * time.Second):
		t.Fatal("the thread did not end on SetThread(false)")
	}
	wait("the deadline carried back to the poller")
	if err := ft.SetThread(true); err != nil {
		t.Fatal(err)
	}
	wait("onThread again")
	done := make(chan struct{})
	go func() { ft.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs with the timer on its thread")
	}
	select {
	case <-left:
	default:
		t.Error("Close did not end the thread")
	}
}

// monoNow reads CLOCK_MONOTONIC, which timerfd's absolute deadlines count
// in, without a system call after the first.
func TestFDTimerMonoNow(t *testing.T) {
	var ft fdTimer
	for range 3 {
		got, err := ft.monoNow()
		if err != nil {
			t.Fatal(err)
		}
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			t.Fatal(err)
		}
		if d := time.Duration(ts.Nano() - got); d < 0 || d > 50*time.Millisecond {
			t.Fatalf("monoNow %d, CLOCK_MONOTONIC %d just after: %v apart", got, ts.Nano(), d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// While the goroutine that waits for the timer is held (here inside an
// earlier expiry; in production, a woken thread left waiting on a CPU that
// a kernel thread holds), the backstop runs the next expiry about
// backstopDelay after its deadline, on a thread pinned to one CPU, and
// counts it; Close ends the backstop's threads.
func TestFDTimerBackstop(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() < 2 {
		t.Skip("a backstop needs two CPUs")
	}
	type call struct {
		tid  int
		at   time.Time
		cpus int
	}
	calls := make(chan call, 4)
	release := make(chan struct{})
	first := true
	var mu sync.Mutex
	ft, err := newFDTimer(func() {
		var s unix.CPUSet
		unix.SchedGetaffinity(0, &s)
		calls <- call{unix.Gettid(), time.Now(), s.Count()}
		mu.Lock()
		hold := first
		first = false
		mu.Unlock()
		if hold {
			<-release
		}
	}, nil)
	if err != nil {
		t.Skipf("no timerfd: %v", err)
	}
	if ft.bfd == 0 {
		t.Fatal("no backstop with two CPUs")
	}
	wait := func(what string) call {
		t.Helper()
		select {
		case c := <-calls:
			return c
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no expiry", what)
			return call{}
		}
	}
	ft.Reset(time.Millisecond)
	held := wait("the first expiry")
	deadline := time.Now().Add(20 * time.Millisecond)
	ft.Reset(20 * time.Millisecond) // the waiting goroutine is held in the first expiry
	c := wait("the backstop's expiry")
	close(release)
	if c.tid == held.tid {
		t.Fatalf("the second expiry ran on the held thread %d", c.tid)
	}
	if c.cpus != 1 {
		t.Errorf("the backstop's thread may run on %d CPUs, want 1", c.cpus)
	}
	if c.at.Before(deadline.Add(backstopDelay - time.Millisecond)) {
		t.Errorf("the backstop ran %v after the deadline, before its %v", c.at.Sub(deadline), backstopDelay)
	}
	if n := ft.backstops.Load(); n != 1 {
		t.Errorf("backstops = %d, want 1", n)
	}
	done := make(chan struct{})
	go func() { ft.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs with the backstop's threads")
	}
}

// A deadline already past fires the poller's fd at once; the backstop is
// not armed for it (it would run the same expiry on a second thread,
// against the reader inputFirst waits for): while the waiting goroutine is
// held, Reset(0) brings no backstop run, a later deadline does.
func TestFDTimerNoBackstopForPastDeadline(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() < 2 {
		t.Skip("a backstop needs two CPUs")
	}
	calls := make(chan struct{}, 4)
	release := make(chan struct{})
	var once sync.Once
	ft, err := newFDTimer(func() {
		calls <- struct{}{}
		once.Do(func() { <-release })
	}, nil)
	if err != nil {
		t.Skipf("no timerfd: %v", err)
	}
	defer ft.Close()
	defer close(release)
	ft.Reset(time.Millisecond)
	select {
	case <-calls: // the poller's goroutine now waits in this expiry
	case <-time.After(10 * time.Second):
		t.Fatal("no first expiry")
	}
	ft.Reset(0)
	select {
	case <-calls:
		t.Fatalf("a past deadline ran on the backstop (%d runs)", ft.backstops.Load())
	case <-time.After(50 * time.Millisecond):
	}
	ft.Reset(5 * time.Millisecond)
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("the backstop did not run a later deadline")
	}
	if n := ft.backstops.Load(); n != 1 {
		t.Errorf("backstops = %d, want 1", n)
	}
}

// The backstop fires at most backstopBurst times at once, then once per
// backstopRefill: while the waiting goroutine is held, the deadlines past
// the budget run on no backstop thread, and one more runs once the budget
// has refilled.
func TestFDTimerBackstopBudget(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() < 2 {
		t.Skip("a backstop needs two CPUs")
	}
	calls := make(chan struct{}, 16)
	release := make(chan struct{})
	var held atomic.Bool
	ft, err := newFDTimer(func() {
		calls <- struct{}{}
		if held.CompareAndSwap(false, true) {
			<-release // only the first expiry: the backstop threads run on
		}
	}, nil)
	if err != nil {
		t.Skipf("no timerfd: %v", err)
	}
	defer ft.Close()
	defer close(release)
	ft.Reset(time.Millisecond)
	select {
	case <-calls: // the poller's goroutine now waits in this expiry
	case <-time.After(10 * time.Second):
		t.Fatal("no first expiry")
	}
	start := time.Now()
	ran := func(within time.Duration) bool {
		select {
		case <-calls:
			return true
		case <-time.After(within):
			return false
		}
	}
	for k := range backstopBurst {
		ft.Reset(2 * time.Millisecond)
		if !ran(5 * time.Second) {
			t.Fatalf("deadline %d within the budget: no backstop run", k+1)
		}
	}
	ft.Reset(2 * time.Millisecond)
	if since := time.Since(start); since < backstopRefill/2 && ran(50*time.Millisecond) {
		t.Fatalf("a backstop run past the budget of %d, %v after the first", backstopBurst, since)
	}
	time.Sleep(backstopRefill)
	ft.Reset(2 * time.Millisecond)
	if !ran(5 * time.Second) {
		t.Fatal("no backstop run once the budget had refilled")
	}
	if n := ft.backstops.Load(); n != backstopBurst+1 {
		t.Errorf("backstops = %d, want %d", n, backstopBurst+1)
	}
}
