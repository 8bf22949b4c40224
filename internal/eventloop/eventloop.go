// Package eventloop holds what the runtimes' event loops (internal/engine,
// internal/director) share: each owns its state in one goroutine that takes
// events from a channel, and other goroutines reach that state by sending a
// Request to run in the loop.
package eventloop

import "context"

// Request is a function for a loop to run; the loop runs it when it takes
// the Request from its events channel.
type Request struct{ F func() }

// Do sends f to a loop that runs each Request it receives on events, and
// waits until f has run or ctx is done.
func Do(ctx context.Context, events chan<- any, f func()) error {
	done := make(chan struct{})
	select {
	case events <- Request{func() { f(); close(done) }}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
