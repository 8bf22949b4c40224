package director

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/runspec"
)

// kernelBackend is a data plane whose kernel is a State the test reads.
type kernelBackend struct {
	mu     sync.Mutex
	kernel lb.State
	closed bool
	// ever are the destinations any Apply installed, as dests renders them.
	ever map[string]bool
}

func (b *kernelBackend) Name() string                  { return "fake" }
func (b *kernelBackend) Capabilities() lb.Capabilities { return caps }
func (b *kernelBackend) Observe(context.Context) (lb.State, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.kernel.Clone(), nil
}
func (b *kernelBackend) Apply(_ context.Context, want lb.State) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kernel = want.Clone()
	if b.ever == nil {
		b.ever = map[string]bool{}
	}
	for k, d := range want.Dests {
		b.ever[fmt.Sprintf("%s %v w%d", k.Addr, d.Method, d.Weight)] = true
	}
	return nil
}

// everDests lists every destination an Apply installed, sorted.
func (b *kernelBackend) everDests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Sorted(maps.Keys(b.ever))
}
func (b *kernelBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// dests renders the kernel's destinations: "ADDR:PORT METHOD wWEIGHT".
func (b *kernelBackend) dests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for k, d := range b.kernel.Dests {
		out = append(out, fmt.Sprintf("%s %v w%d", k.Addr, d.Method, d.Weight))
	}
	slices.Sort(out)
	return out
}

var caps = lb.Capabilities{Backend: "fake", Schedulers: map[string]lb.Support{"rr": {As: "rr"}}, Methods: []lb.Method{lb.NAT, lb.DR}}

// verdict is a checker whose result the test sets.
type verdict struct {
	mu sync.Mutex
	ok bool
}

func (v *verdict) set(ok bool) { v.mu.Lock(); v.ok = ok; v.mu.Unlock() }
func (v *verdict) Check(context.Context) check.Result {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ok {
		return check.Result{OK: true}
	}
	return check.Result{Reason: "connect: connection refused"}
}

// scenarioSpec is one NAT virtual server with a quorum of 2, a DR sorry
// server and two real servers, each with one checker.
func scenarioSpec(a, b *verdict, weightB uint32) runspec.DirectorSpec {
	vs := lb.VirtualServer{
		Addr: netip.MustParseAddr("192.168.118.110"), Port: 80, Proto: lb.TCP, Family: lb.IPv4, Scheduler: "rr", Method: lb.NAT, Quorum: 2,
		Sorry: &lb.RealServer{Addr: netip.MustParseAddr("10.0.0.9"), Port: 80, Method: lb.DR},
		Reals: []lb.RealServer{
			{Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080, Weight: 1, Method: lb.NAT},
			{Addr: netip.MustParseAddr("10.0.0.2"), Port: 8080, Weight: weightB, Method: lb.NAT},
		},
	}
	pol := check.Policy{Kind: check.KindTCP, DelayLoop: 5 * time.Second}
	spec := runspec.DirectorSpec{VirtualServers: []lb.VirtualServer{vs}}
	for i, v := range []*verdict{a, b} {
		spec.Checks = append(spec.Checks, runspec.RealCheck{
			ID:       lb.RealID{VS: vs.ID(), Addr: vs.Reals[i].AddrPort()},
			Weight:   int(vs.Reals[i].Weight),
			Checkers: []runspec.CheckerSpec{{Name: fmt.Sprintf("TCP_CHECK %s", vs.Reals[i].AddrPort()), Key: "tcp", Policy: pol, Checker: v}},
		})
	}
	return spec
}

// The director against a fake data plane: checker verdicts reach the
// kernel through the policy and the reconciler (the sorry server with its
// own method when the quorum is lost), a reload applies only a changed
// spec, and stopping closes the backend.
func TestDirectorScenario(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &verdict{ok: true}, &verdict{ok: true}
		be := &kernelBackend{kernel: lb.NewState()}
		d, err := New(scenarioSpec(a, b, 1), Options{Backend: be, Resync: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()

		settle := func() { time.Sleep(30 * time.Second); synctest.Wait() }
		settle()
		if diff := cmp.Diff([]string{"10.0.0.1:8080 NAT w1", "10.0.0.2:8080 NAT w1"}, be.dests()); diff != "" {
			t.Errorf("both up (-want +got):\n%s", diff)
		}

		b.set(false)
		settle()
		if diff := cmp.Diff([]string{"10.0.0.9:80 DR w1"}, be.dests()); diff != "" {
			t.Errorf("10.0.0.2 down, quorum lost (-want +got):\n%s", diff)
		}
		vss, err := d.Snapshot(ctx)
		if err != nil || len(vss) != 1 {
			t.Fatalf("Snapshot: %v %v", vss, err)
		}
		if vs := vss[0]; vs.QuorumUp || !vs.SorryActive || vs.RealServers[1].Healthy || vs.RealServers[1].Reason != "connect: connection refused" {
			t.Errorf("snapshot %+v", vs)
		}
		trs, err := d.Transitions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tr := range trs {
			got = append(got, tr.Kind+" "+tr.From+">"+tr.To)
		}
		want := []string{"virtual_server INIT>UP", "real_server UP>DOWN", "virtual_server UP>DOWN"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("transitions (-want +got):\n%s", diff)
		}

		if changes, err := d.Apply(ctx, scenarioSpec(a, b, 1)); err != nil || len(changes) != 0 {
			t.Errorf("reload of the same spec: %v %v", changes, err)
		}
		b.set(true)
		changes, err := d.Apply(ctx, scenarioSpec(a, b, 3))
		if err != nil || !slices.Equal(changes, []string{"~ virtual_server [192.168.118.110]:tcp:80"}) {
			t.Errorf("reload with a new weight: %v %v", changes, err)
		}
		settle()
		if diff := cmp.Diff([]string{"10.0.0.1:8080 NAT w1", "10.0.0.2:8080 NAT w3"}, be.dests()); diff != "" {
			t.Errorf("after the reload (-want +got):\n%s", diff)
		}
		if rs, err := d.ReconcilerStats(ctx); err != nil || rs.Applies == 0 || rs.LastError != "" {
			t.Errorf("reconciler stats %+v %v", rs, err)
		}

		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !be.closed {
			t.Error("backend not closed after Run")
		}
	})
}

// startDirector runs a director for spec on a fake kernel, recording its
// policy events; stop ends Run and fails t on its error.
func startDirector(t *testing.T, spec runspec.DirectorSpec) (d *Director, be *kernelBackend, log *eventLog, ctx context.Context, stop func()) {
	t.Helper()
	be, log = &kernelBackend{kernel: lb.NewState()}, &eventLog{}
	d, err := New(spec, Options{Backend: be, Resync: time.Hour, Observe: log.observe})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return d, be, log, ctx, func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
