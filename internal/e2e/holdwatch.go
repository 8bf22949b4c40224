package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/netif"
)

// HoldWatch measures what a client of a VIP sees, from the kernel's own
// address events (netlink RTM_NEWADDR / RTM_DELADDR, each stamped when it
// was read), not by polling `ip addr`: how long no host held the address,
// and how long two or more did. Polling manages about one sample per 60 ms
// here; an event arrives microseconds after the kernel changed the address.
type HoldWatch struct {
	Addr  netip.Addr
	names []string

	mu     sync.Mutex
	held   []bool
	begun  bool
	begin  time.Time
	last   time.Time // of the last change of the holder count, or begin
	count  int
	stats  HoldFigures
	events []string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   []error
}

// HoldFigures are a HoldWatch's results over its window.
type HoldFigures struct {
	Window time.Duration
	// None is the total time no host held the address, NoneMax its longest
	// stretch; Two and TwoMax the same for two or more holders.
	None, NoneMax, Two, TwoMax time.Duration
	// Changes counts address events for Addr seen in the window.
	Changes int
}

func (f HoldFigures) String() string {
	return fmt.Sprintf("no holder %.3f ms (longest %.3f ms), two holders %.3f ms (longest %.3f ms), %d address events in %.0f ms",
		ms(f.None), ms(f.NoneMax), ms(f.Two), ms(f.TwoMax), f.Changes, ms(f.Window))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WatchHolders starts watching addr on the hosts of addrs (names for
// messages). The window starts with Begin, once the initial state is known.
func WatchHolders(addr netip.Addr, names []string, addrs ...*Addrs) *HoldWatch {
	w := &HoldWatch{Addr: addr, names: names, held: make([]bool, len(addrs))}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for i, a := range addrs {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			if err := a.Watch(ctx, func(at time.Time, ev netif.AddrEvent) {
				if ev.Addr.Prefix.Addr() == addr {
					w.note(at, i, !ev.Deleted, ev.Initial)
				}
			}); err != nil {
				w.mu.Lock()
				w.errs = append(w.errs, err)
				w.mu.Unlock()
			}
		}()
	}
	return w
}

func (w *HoldWatch) note(at time.Time, i int, held, initial bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held[i] == held {
		return
	}
	w.held[i] = held
	if !w.begun {
		return
	}
	if at.Before(w.last) {
		at = w.last // two sockets: keep time monotonic
	}
	w.stats.Changes++
	verb := "-"
	if held {
		verb = "+"
	}
	w.events = append(w.events, fmt.Sprintf("%+9.3f ms %s%s", ms(at.Sub(w.begin)), verb, w.names[i]))
	w.account(at)
}

// account closes the stretch since w.last with the previous count.
func (w *HoldWatch) account(at time.Time) {
	d := at.Sub(w.last)
	switch {
	case w.count == 0:
		w.stats.None += d
		w.stats.NoneMax = max(w.stats.NoneMax, d)
	case w.count >= 2:
		w.stats.Two += d
		w.stats.TwoMax = max(w.stats.TwoMax, d)
	}
	n := 0
	for _, h := range w.held {
		if h {
			n++
		}
	}
	w.count = n
	w.last = at
}

// Begin starts the measured window: call it after the initial addresses
// had time to be reported (a few ms after WatchHolders).
func (w *HoldWatch) Begin() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.begun = true
	w.begin = time.Now()
	w.last = w.begin
	n := 0
	for _, h := range w.held {
		if h {
			n++
		}
	}
	w.count = n
}

// Holders returns how many hosts hold the address now, as events told.
func (w *HoldWatch) Holders() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, h := range w.held {
		if h {
			n++
		}
	}
	return n
}

// Stop ends the window and the watches and returns the figures, with the
// events of the window for messages.
func (w *HoldWatch) Stop() (HoldFigures, string, error) {
	w.mu.Lock()
	now := time.Now()
	w.account(now)
	w.stats.Window = now.Sub(w.begin)
	st, evs := w.stats, strings.Join(w.events, "\n")
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
	if len(w.errs) > 0 {
		return st, evs, fmt.Errorf("e2e: watching %v: %v", w.Addr, w.errs)
	}
	return st, evs, nil
}
