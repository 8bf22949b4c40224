package director

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/lb"
)

// A quorum a reload sets (a virtual server the reload adds) is labelled
// "reload" in the timeline and the log; the one set at start-up "start".
func TestDirectorQuorumReasonOnReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &verdict{ok: true}, &verdict{ok: true}
		be := &kernelBackend{kernel: lb.NewState()}
		spec := scenarioSpec(a, b, 1)
		d, err := New(spec, Options{Backend: be, Resync: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		settle := func() { time.Sleep(30 * time.Second); synctest.Wait() }
		settle()

		more := scenarioSpec(a, b, 1)
		vs2 := more.VirtualServers[0]
		vs2.Port = 8443
		more.VirtualServers = append(more.VirtualServers, vs2)
		if _, err := d.Apply(ctx, more); err != nil {
			t.Fatal(err)
		}
		settle()
		trs, err := d.Transitions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tr := range trs {
			got = append(got, tr.Name+" "+tr.From+">"+tr.To+": "+tr.Reason)
		}
		want := []string{
			"[192.168.118.110]:tcp:80 INIT>UP: start",
			"[192.168.118.110]:tcp:8443 INIT>UP: reload",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("transitions (-want +got):\n%s", diff)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
