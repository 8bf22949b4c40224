package textpages

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// A kick releases at once and again Settle later, then nothing more; a
// kick while the second release waits postpones it; kicks before Run and
// on a nil Releaser are safe.
func TestReleaser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		r := NewReleaser(20*time.Second, func() { n.Add(1) })
		r.Kick() // before Run: waits
		r.Kick() // merged with the first
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		step := func(d time.Duration, want int32) {
			t.Helper()
			time.Sleep(d)
			synctest.Wait()
			if got := n.Load(); got != want {
				t.Fatalf("after %v more: %d releases, want %d", d, got, want)
			}
		}
		step(0, 1)
		step(19*time.Second, 1)
		step(time.Second, 2)
		step(time.Hour, 2)
		r.Kick()
		step(0, 3)
		step(10*time.Second, 3)
		r.Kick()
		step(0, 4)
		step(19*time.Second, 4) // 29 s after the first kick: postponed
		step(time.Second, 5)
		step(time.Hour, 5)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var nilR *Releaser
		nilR.Kick()
	})
}
