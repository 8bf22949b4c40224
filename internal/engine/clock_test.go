package engine

import (
	"testing"
	"time"
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
	ft, err := newFDTimer(f)
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
			t, err := newFDTimer(f)
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
	ft := &fdTimer{fd: -1, fn: f}
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
