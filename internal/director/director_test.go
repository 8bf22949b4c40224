package director

import (
	"context"
	"maps"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/runspec"
)

// fakeBackend is a data plane that holds nothing.
type fakeBackend struct{}

func (fakeBackend) Name() string                              { return "fake" }
func (fakeBackend) Capabilities() lb.Capabilities             { return lb.Capabilities{Backend: "fake"} }
func (fakeBackend) Observe(context.Context) (lb.State, error) { return lb.NewState(), nil }
func (fakeBackend) Apply(context.Context, lb.State) error     { return nil }
func (fakeBackend) Close() error                              { return nil }

// SetLocal never blocks and starts no goroutine, however far behind the
// loop is; the loop then takes the last address set, never an older one.
func TestDirectorSetLocalCoalesces(t *testing.T) {
	d, err := New(runspec.DirectorSpec{}, Options{Backend: fakeBackend{}, Resync: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	var last netip.Addr
	for i := range 5000 { // the loop is not running: every call finds it stalled
		last = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		d.SetLocal(map[netip.Addr]bool{last: true})
	}
	if n := runtime.NumGoroutine(); n > before+5 {
		t.Errorf("goroutines: %d before, %d after 5000 calls to SetLocal", before, n)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; {
		var got map[netip.Addr]bool
		if err := d.do(ctx, func() { got = maps.Clone(d.local) }); err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 {
			if len(got) != 1 || !got[last] {
				t.Fatalf("local addresses %v, want only the last set, %v", got, last)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the loop never took the address set")
		}
		time.Sleep(time.Millisecond)
	}
}
