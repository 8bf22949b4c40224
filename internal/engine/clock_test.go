package engine

import (
	"testing"
	"time"
)

// TestFDTimer: the timerfd timer fires after its duration, not before;
// Reset re-arms it (the last Reset wins); Close returns.
func TestFDTimer(t *testing.T) {
	ft, err := newFDTimer()
	if err != nil {
		t.Skipf("no timerfd: %v", err)
	}
	defer ft.Close()
	start := time.Now()
	ft.Reset(time.Hour)
	ft.Reset(20 * time.Millisecond) // replaces the hour
	select {
	case at := <-ft.C():
		if d := at.Sub(start); d < 20*time.Millisecond {
			t.Fatalf("fired after %v, before its 20ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire")
	}
	ft.Reset(0) // at once
	select {
	case <-ft.C():
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
		mk   func() wakeTimer
	}{
		{"go", func() wakeTimer { return newGoTimer() }},
		{"timerfd", func() wakeTimer {
			t, err := newFDTimer()
			if err != nil {
				b.Skip(err)
			}
			return t
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tm := tc.mk()
			defer tm.Close()
			var late time.Duration
			for range b.N {
				start := time.Now()
				tm.Reset(3600 * time.Microsecond)
				<-tm.C()
				late += time.Since(start) - 3600*time.Microsecond
			}
			b.ReportMetric(float64(late.Microseconds())/float64(b.N), "µs-late/op")
		})
	}
}

// A timerfd the kernel refuses to arm (here: no fd at all) still wakes the
// loop, through the runtime's timer, and Close does not hang.
func TestFDTimerSettimeFails(t *testing.T) {
	ft := &fdTimer{fd: -1, c: make(chan time.Time, 1)}
	ft.Reset(time.Millisecond)
	select {
	case <-ft.C():
	case <-time.After(30 * time.Second):
		t.Fatal("no wake-up after a refused settime")
	}
	if n := ft.fallbacks.Load(); n != 1 {
		t.Errorf("fallbacks = %d, want 1", n)
	}
	ft.Close()
}
