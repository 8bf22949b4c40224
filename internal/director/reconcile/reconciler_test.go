package reconcile

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/lb"
)

var (
	svcA = lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.1.1"), Port: 80}
	rs1  = netip.MustParseAddrPort("10.0.0.1:80")
)

// fakeBackend is a Backend whose kernel is a State.
type fakeBackend struct {
	mu      sync.Mutex
	kernel  lb.State
	cache   *lb.State
	fail    error
	applies int
	batches []int // number of changes per successful Apply
}

func (f *fakeBackend) Name() string                  { return "fake" }
func (f *fakeBackend) Capabilities() lb.Capabilities { return lb.Capabilities{Backend: "fake"} }
func (f *fakeBackend) Close() error                  { return nil }

func (f *fakeBackend) Observe(context.Context) (lb.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return lb.State{}, f.fail
	}
	c := f.kernel.Clone()
	f.cache = &c
	return c.Clone(), nil
}

func (f *fakeBackend) Apply(_ context.Context, want lb.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	if f.fail != nil {
		f.cache = nil
		return f.fail
	}
	if f.cache == nil {
		c := f.kernel.Clone()
		f.cache = &c
	}
	cs := lb.Diff(*f.cache, want)
	f.kernel = lb.ApplyChanges(f.kernel, cs)
	c := want.Clone()
	f.cache = &c
	f.batches = append(f.batches, len(cs))
	return nil
}

func (f *fakeBackend) set(fn func(*fakeBackend)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeBackend) get() (lb.State, int, []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kernel.Clone(), f.applies, append([]int(nil), f.batches...)
}

func oneService(weight uint32) lb.State {
	s := lb.NewState()
	s.Services[svcA] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
	s.Dests[lb.DestKey{Service: svcA, Addr: rs1}] = lb.Dest{Weight: weight, Method: lb.NAT}
	return s
}

func TestReconciler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &fakeBackend{kernel: lb.NewState()}
		r := New(fb, Options{Resync: 10 * time.Second, MinBackoff: time.Second, MaxBackoff: 8 * time.Second})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()

		// A new desired state is applied at once, as one change set.
		r.Set(oneService(1))
		synctest.Wait()
		k, applies, batches := fb.get()
		if !k.Equal(oneService(1)) || applies != 1 || len(batches) != 1 || batches[0] != 2 {
			t.Fatalf("after Set: kernel %v applies %d batches %v", k, applies, batches)
		}

		// A weight change sends only the difference.
		r.Set(oneService(3))
		synctest.Wait()
		if _, _, batches = fb.get(); batches[len(batches)-1] != 1 {
			t.Fatalf("weight change: batches %v, want a last batch of 1 change", batches)
		}

		// Drift: the table deleted by hand comes back at the next resync.
		fb.set(func(f *fakeBackend) { f.kernel = lb.NewState() })
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if k, _, _ := fb.get(); len(k.Services) != 0 {
			t.Fatal("repaired before the resync interval")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if k, _, _ := fb.get(); !k.Equal(oneService(3)) {
			t.Fatalf("not repaired after the resync interval: %v", k)
		}
		if st := r.Stats(); st.Repairs != 1 || st.Resyncs != 1 {
			t.Fatalf("stats %+v, want 1 resync that repaired", st)
		}

		// A resync that finds nothing to do applies nothing.
		_, applies, _ = fb.get()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if _, a, _ := fb.get(); a != applies {
			t.Fatalf("idle resync applied (%d -> %d)", applies, a)
		}

		// A persistent error is retried with backoff 1, 2, 4, 8, 8 s: no
		// busy loop.
		fb.set(func(f *fakeBackend) { f.fail = errors.New("netlink: EPERM") })
		_, before, _ := fb.get()
		r.Set(oneService(5))
		synctest.Wait()
		time.Sleep(23 * time.Second) // 1+2+4+8 = 15, +8 = 23
		synctest.Wait()
		_, after, _ := fb.get()
		st := r.Stats()
		// Apply attempts: the Set, and Observe failures at retries do not
		// reach Apply; errors count every failed call.
		if after-before != 1 || st.Errors != 6 || st.LastError == "" {
			t.Fatalf("during failure: %d applies, stats %+v", after-before, st)
		}
		// More Sets during the failure do not hammer the backend.
		for range 100 {
			r.Set(oneService(5))
		}
		synctest.Wait()
		if _, a, _ := fb.get(); a != after {
			t.Fatalf("Set during backoff applied immediately (%d -> %d)", after, a)
		}

		// Recovery: the next retry applies the latest state.
		fb.set(func(f *fakeBackend) { f.fail = nil })
		time.Sleep(8 * time.Second)
		synctest.Wait()
		if k, _, _ := fb.get(); !k.Equal(oneService(5)) {
			t.Fatalf("not recovered: %v", k)
		}
		if st := r.Stats(); st.LastError != "" {
			t.Fatalf("LastError after recovery: %q", st.LastError)
		}

		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}
