package director

import (
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/probe"
)

// A director whose loop falls more than a queue behind its checkers keeps
// each real server's newest health: the events past the queue's capacity are
// merged per server, not dropped, so the kernel ends in the state the
// checkers last reported.
func TestDirectorQueueOverflowKeepsNewestState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &verdict{ok: true}
		spec := oneReal(v, false, "tcp")
		d, be, log, ctx, stop := startDirector(t, spec)
		synctest.Wait()
		if diff := cmp.Diff([]string{"10.0.0.1:8080 NAT w1"}, be.dests()); diff != "" {
			t.Fatalf("start (-want +got):\n%s", diff)
		}
		var gen *probe.Runner
		if err := d.do(ctx, func() { gen = d.runner }); err != nil {
			t.Fatal(err)
		}
		log.take()

		// Hold the loop, then post more events than the queue takes: down,
		// up, down, ... ending down.
		block := make(chan struct{})
		go d.do(ctx, func() { <-block })
		synctest.Wait()
		id := spec.Checks[0].ID.String()
		const n = 1024 + 77
		up := true
		for i := range n {
			next := i%2 == 1
			d.post(checkEvent{gen: gen, ev: probe.Event{Server: id, ServerTransition: check.ServerTransition{WasUp: up, Up: next, WasWeight: 1, Weight: 1}}})
			up = next
		}
		if up {
			t.Fatal("the last event must be a failure")
		}
		close(block)
		synctest.Wait()
		if got := be.dests(); len(got) != 0 {
			t.Errorf("after %d events ending down: dests %v, want none", n, got)
		}
		evs := log.take()
		if len(evs) == 0 || evs[len(evs)-1] != "quorum-down" || evs[len(evs)-2] != "real-down 10.0.0.1:8080" {
			t.Errorf("events end %v, want real-down then quorum-down", evs[max(0, len(evs)-3):])
		}
		stop()
	})
}
