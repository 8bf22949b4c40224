package director

import (
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/runspec"
)

// eventLog records the policy events a director makes.
type eventLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *eventLog) observe(ev lb.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ev.Kind.String()
	if ev.Real.IsValid() {
		s += " " + ev.Real.String()
	}
	l.evs = append(l.evs, s)
}

// take returns the events recorded since the last take.
func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.evs
	l.evs = nil
	return out
}

// oneReal is one NAT virtual server with one real server (weight 1) and one
// TCP checker whose key is key.
func oneReal(v *verdict, alpha bool, key string) runspec.DirectorSpec {
	vs := lb.VirtualServer{
		Addr: netip.MustParseAddr("192.168.118.110"), Port: 80, Proto: lb.TCP, Family: lb.IPv4, Scheduler: "rr", Method: lb.NAT, Quorum: 1,
		Reals: []lb.RealServer{{Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080, Weight: 1, Method: lb.NAT, Alpha: alpha}},
	}
	pol := check.Policy{Kind: check.KindTCP, DelayLoop: 5 * time.Second, DelayBeforeRetry: time.Second, Retry: 1, Alpha: alpha}
	return runspec.DirectorSpec{VirtualServers: []lb.VirtualServer{vs}, Checks: []runspec.RealCheck{{
		ID:       lb.RealID{VS: vs.ID(), Addr: vs.Reals[0].AddrPort()},
		Weight:   1,
		Checkers: []runspec.CheckerSpec{{Name: "TCP_CHECK 10.0.0.1:8080", Key: key, Policy: pol, Checker: v}},
	}}}
}

// A checker's first verdict reaches the policy even when it does not change
// the checker's state (keepalived 2.2.7 ipwrapper.c
// update_svr_checker_state: "if (checker->is_up == alive) { if
// (!checker->has_run) { if (checker->alpha || !alive) do_rs_notifies"):
//   - alpha: the real server starts down and a first failure runs its
//     notify_down;
//   - reload: a real server that was down when its checker was replaced
//     comes back at the new checker's first success (keepalived
//     migrate_checkers: "If there are no failed checkers, the RS needs to
//     be up"); it stayed out of the service forever.
func TestDirectorFirstVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, d *Director, v *verdict, be *kernelBackend, log *eventLog, settle func())
		spec func(v *verdict) runspec.DirectorSpec
	}{
		{
			name: "alpha first failure notifies down",
			spec: func(v *verdict) runspec.DirectorSpec { return oneReal(v, true, "tcp") },
			run: func(t *testing.T, d *Director, v *verdict, be *kernelBackend, log *eventLog, settle func()) {
				settle()
				if got := be.dests(); len(got) != 0 {
					t.Errorf("alpha, failing: dests %v", got)
				}
				if diff := cmp.Diff([]string{"real-down 10.0.0.1:8080"}, log.take()); diff != "" {
					t.Errorf("alpha first failure: events (-want +got):\n%s", diff)
				}
				settle()
				if got := log.take(); len(got) != 0 {
					t.Errorf("alpha, second failure: events %v, want none", got)
				}
				v.set(true)
				settle()
				if diff := cmp.Diff([]string{"10.0.0.1:8080 NAT w1"}, be.dests()); diff != "" {
					t.Errorf("alpha, back (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{"real-up 10.0.0.1:8080", "quorum-up"}, log.take()); diff != "" {
					t.Errorf("alpha back: events (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "down real server comes back after its checker changed on reload",
			spec: func(v *verdict) runspec.DirectorSpec { return oneReal(v, false, "tcp") },
			run: func(t *testing.T, d *Director, v *verdict, be *kernelBackend, log *eventLog, settle func()) {
				settle()
				if diff := cmp.Diff([]string{"quorum-up", "real-down 10.0.0.1:8080", "quorum-down"}, log.take()); diff != "" {
					t.Errorf("first failure: events (-want +got):\n%s", diff)
				}
				v.set(true)
				if _, err := d.Apply(t.Context(), oneReal(v, false, "tcp connect_timeout 2")); err != nil {
					t.Fatal(err)
				}
				settle()
				if diff := cmp.Diff([]string{"10.0.0.1:8080 NAT w1"}, be.dests()); diff != "" {
					t.Errorf("new checker succeeds (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{"real-up 10.0.0.1:8080", "quorum-up"}, log.take()); diff != "" {
					t.Errorf("new checker succeeds: events (-want +got):\n%s", diff)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				v := &verdict{}
				d, be, log, _, stop := startDirector(t, tc.spec(v))
				settle := func() { time.Sleep(10 * time.Second); synctest.Wait() }
				tc.run(t, d, v, be, log, settle)
				stop()
			})
		})
	}
}

// A reload that changes only a checker's timing keeps its state under the
// new timing (keepalived 2.2.7 ipwrapper.c migrate_checkers: the checkers'
// compare functions look at what is checked, not at retry or delay_loop).
func TestDirectorReloadTimingKeepsCheckerState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &verdict{ok: true}
		spec := func(delayLoop time.Duration) runspec.DirectorSpec {
			s := oneReal(v, false, "tcp")
			s.Checks[0].Checkers[0].Policy.DelayLoop = delayLoop
			s.Checks[0].Checkers[0].Policy.Bootstrap = time.Second
			return s
		}
		d, _, _, ctx, stop := startDirector(t, spec(5*time.Second))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if _, err := d.Apply(ctx, spec(7*time.Second)); err != nil {
			t.Fatal(err)
		}
		var hs []check.Health
		if err := d.do(ctx, func() { hs = d.runner.Healths()["[192.168.118.110]:tcp:80 10.0.0.1:8080"] }); err != nil {
			t.Fatal(err)
		}
		if len(hs) != 1 || !hs[0].HasRun() || !hs[0].Up() || hs[0].Policy().DelayLoop != 7*time.Second {
			t.Errorf("after a reload of delay_loop: %+v, want the checker's state kept (has run, up) under delay_loop 7s", hs)
		}
		stop()
	})
}

// A checker a reload adds to a real server that is up starts with all its
// retries (keepalived 2.2.7 check_api.c queue_checker: retry_it 0; the
// start-up "one failure is enough" is skipped on a reload): one failure
// does not take the real server out.
func TestDirectorReloadNewCheckerRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &verdict{ok: true}
		d, be, log, ctx, stop := startDirector(t, oneReal(v, false, "tcp"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		log.take()
		v.set(false)
		if _, err := d.Apply(ctx, oneReal(v, false, "tcp connect_port 81")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // the first attempt failed; its retry is due after 1 s
		synctest.Wait()
		if diff := cmp.Diff([]string{"10.0.0.1:8080 NAT w1"}, be.dests()); diff != "" {
			t.Errorf("after one failure of the new checker (-want +got):\n%s", diff)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := be.dests(); len(got) != 0 {
			t.Errorf("after the retry failed too: dests %v, want none", got)
		}
		if diff := cmp.Diff([]string{"real-down 10.0.0.1:8080", "quorum-down"}, log.take()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		stop()
	})
}
