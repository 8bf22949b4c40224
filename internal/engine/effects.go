package engine

import (
	"sync"

	"github.com/vigil-ha/vigil/internal/netif"
)

// effects runs the engine's slow side effects (netlink address changes,
// gratuitous ARP / NA frames, log lines) on one worker goroutine, so that
// the VRRP loop itself only computes and sends adverts. Closing it drains
// what is queued: a stopping daemon removes its VIPs before exit.
//
// Effects run in the order the loop queued them, with one exception that
// serves a mass takeover: announcements and log lines give way to
// installations queued after them. When thousands of backups take over in
// the same few milliseconds, every address is then added (many to a
// netlink message) before the gratuitous ARPs of the burst go out, instead
// of the last addresses waiting behind the earlier instances' ARPs. The
// classes:
//
//   - a barrier (add: address removals, reloads, VMAC removal) runs after
//     everything queued before it and before everything queued after it;
//   - an install (install, installVIPs: addresses, routes, rules, the
//     firewall) keeps its order with barriers and other installs; it
//     runs before the announcements and log lines queued since the last
//     barrier, even those queued earlier;
//   - announcements (first, later) never run before an install or a
//     barrier queued before them, so no address is announced before it is
//     added or after it was removed. The first announcement of each
//     address (first) goes before the repeats and the log lines (later),
//     so that a client learns the last address of a burst a few
//     milliseconds after it is added, not after the other addresses'
//     garp_master_repeat rounds. The rounds of one instance keep their
//     order; only their spacing, which keepalived leaves unspecified when
//     vrrp_garp_interval is 0 (it sends them back to back), changes.
//
// While the loop holds the queue (hold, release: one loop turn) and the
// turn has queued an install, announcements and log lines wait; installs
// and barriers run as far as no waiting announcement is ahead of them. The
// addresses of every instance that took over in one turn are thus added
// before any announcement of the turn goes out, and the first of them while
// the loop is still handling the others. A turn that installs nothing (an
// advert received, the kernel's notification of an address just added)
// holds nothing back: during a mass takeover the loop goes from turn to
// turn, and the announcements must not wait for it to fall idle.
//
// Concurrency: add, install, installVIPs, first, later, hold, release and
// close may be called from the loop only; the queued functions run on the worker
// and must not touch loop state.
type effects struct {
	// addVIPs installs addresses (Net.AddVIPs): the worker hands it the
	// addresses of consecutive installVIPs together.
	addVIPs func([]netif.VIPAt) []error

	mu   sync.Mutex
	segs []*segment // segs[0] runs first
	// holding is set from the first install a turn queues to the end of
	// the turn: announcements wait.
	holding bool
	// woken is false when announcements were queued while holding and the
	// worker was not told; parked is set when the worker found only held
	// work. release then wakes it.
	woken  bool
	parked bool
	closed bool
	// inTurn and held belong to the loop (no lock): a turn is open; it
	// set holding. A turn that installs nothing takes no lock at its start
	// or end.
	inTurn, held bool
	wake         chan struct{}
	done         chan struct{}
}

// lane is where an effect waits within a segment.
type lane uint8

const (
	laneInstall lane = iota
	laneFirst
	laneLater
	nLanes
)

// segment is a barrier (nil for the first segment) and what was queued
// after it, before the next barrier.
type segment struct {
	barrier func()
	lanes   [nLanes][]effect
}

func (s *segment) empty() bool {
	if s.barrier != nil {
		return false
	}
	for _, l := range s.lanes {
		if len(l) > 0 {
			return false
		}
	}
	return true
}

// effect is a function, or addresses to install and the function that
// receives the results (one per address).
type effect struct {
	fn    func()
	vips  []netif.VIPAt
	added func(errs []error)
}

func newEffects(addVIPs func([]netif.VIPAt) []error) *effects {
	f := &effects{addVIPs: addVIPs, woken: true, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go f.run()
	return f
}

func (f *effects) run() {
	defer close(f.done)
	for {
		f.mu.Lock()
		batch, ok := f.next()
		for !ok {
			if f.closed && len(f.segs) == 0 {
				f.mu.Unlock()
				return
			}
			f.mu.Unlock()
			<-f.wake
			f.mu.Lock()
			batch, ok = f.next()
		}
		f.mu.Unlock()
		f.runBatch(batch)
	}
}

// next takes what runs next (f.mu held): the first segment's barrier, else
// all of its installs, else (unless held) its first announcement, else its
// first repeat or log line. One announcement at a time: installs queued
// meanwhile go before the next.
func (f *effects) next() ([]effect, bool) {
	for len(f.segs) > 0 {
		s := f.segs[0]
		var batch []effect
		switch {
		case s.barrier != nil:
			batch = []effect{{fn: s.barrier}}
			s.barrier = nil
		case len(s.lanes[laneInstall]) > 0:
			batch = s.lanes[laneInstall]
			s.lanes[laneInstall] = nil
		case f.holding:
			f.parked = true
			return nil, false
		default:
			for l := laneFirst; l < nLanes; l++ {
				if q := s.lanes[l]; len(q) > 0 {
					batch = q[:1:1]
					if len(q) == 1 {
						s.lanes[l] = nil
					} else {
						s.lanes[l] = q[1:]
					}
					break
				}
			}
		}
		if s.empty() {
			f.segs[0] = nil
			f.segs = f.segs[1:]
		}
		if batch != nil {
			return batch, true
		}
	}
	return nil, false
}

// runBatch runs effects in order; the addresses of consecutive
// installVIPs go to the kernel in one call.
func (f *effects) runBatch(batch []effect) {
	for i := 0; i < len(batch); {
		if batch[i].fn != nil {
			batch[i].fn()
			i++
			continue
		}
		j := i
		var vips []netif.VIPAt
		for ; j < len(batch) && batch[j].fn == nil; j++ {
			vips = append(vips, batch[j].vips...)
		}
		errs := f.addVIPs(vips)
		for ; i < j; i++ {
			n := len(batch[i].vips)
			batch[i].added(errs[:n:n])
			errs = errs[n:]
		}
	}
}

// queue appends e to lane l of the last segment.
func (f *effects) queue(l lane, e effect) {
	f.mu.Lock()
	if len(f.segs) == 0 {
		f.segs = append(f.segs, &segment{})
	}
	s := f.segs[len(f.segs)-1]
	s.lanes[l] = append(s.lanes[l], e)
	if f.inTurn && l == laneInstall {
		f.holding, f.held = true, true
	}
	wait := f.holding && l != laneInstall
	if wait {
		f.woken = false
	}
	f.mu.Unlock()
	if !wait {
		f.signal()
	}
}

func (f *effects) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// add queues fn as a barrier. A nil effects runs it at once (before Run or
// after it), as it does every other kind.
func (f *effects) add(fn func()) {
	if f == nil {
		fn()
		return
	}
	f.mu.Lock()
	f.segs = append(f.segs, &segment{barrier: fn})
	f.mu.Unlock()
	f.signal()
}

// install queues fn as an install.
func (f *effects) install(fn func()) {
	if f == nil {
		fn()
		return
	}
	f.queue(laneInstall, effect{fn: fn})
}

// installVIPs queues the addition of vips (an install); added receives one
// result per address. The effects must not be nil (Engine.installVIPs).
func (f *effects) installVIPs(vips []netif.VIPAt, added func(errs []error)) {
	f.queue(laneInstall, effect{vips: vips, added: added})
}

// first queues fn, the first announcement of addresses.
func (f *effects) first(fn func()) {
	if f == nil {
		fn()
		return
	}
	f.queue(laneFirst, effect{fn: fn})
}

// later queues fn: repeated announcements, log lines.
func (f *effects) later(fn func()) {
	if f == nil {
		fn()
		return
	}
	f.queue(laneLater, effect{fn: fn})
}

// hold opens a turn: from its first install on, announcements and log
// lines wait for release. The loop holds the queue during one turn.
func (f *effects) hold() {
	if f != nil {
		f.inTurn = true
	}
}

func (f *effects) release() {
	if f == nil {
		return
	}
	f.inTurn = false
	if !f.held {
		return
	}
	f.held = false
	f.mu.Lock()
	wake := !f.woken || f.parked
	f.holding, f.woken, f.parked = false, true, false
	f.mu.Unlock()
	if wake {
		f.signal()
	}
}

// close runs what is queued and stops the worker (after the loop's last
// turn).
func (f *effects) close() {
	f.mu.Lock()
	f.closed = true
	f.holding = false
	f.mu.Unlock()
	f.signal()
	<-f.done
}
