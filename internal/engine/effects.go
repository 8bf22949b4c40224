package engine

import "sync"

// effects runs the engine's slow side effects (netlink address changes,
// gratuitous ARP / NA frames, log lines) on one worker goroutine, in the
// order the loop queued them, so that the VRRP loop itself only computes
// and sends adverts. When a thousand backups take over at once, each
// advert leaves on time and the addresses follow in order. Closing it
// drains what is queued: a stopping daemon removes its VIPs before exit.
//
// Concurrency: add and close may be called from the loop only; the queued
// functions run on the worker and must not touch loop state.
type effects struct {
	mu     sync.Mutex
	q      []func()
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newEffects() *effects {
	f := &effects{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go f.run()
	return f
}

func (f *effects) run() {
	defer close(f.done)
	for {
		f.mu.Lock()
		for len(f.q) == 0 {
			if f.closed {
				f.mu.Unlock()
				return
			}
			f.mu.Unlock()
			<-f.wake
			f.mu.Lock()
		}
		batch := f.q
		f.q = nil
		f.mu.Unlock()
		for _, fn := range batch {
			fn()
		}
	}
}

// add queues fn. A nil effects runs it at once (before Run or after it).
func (f *effects) add(fn func()) {
	if f == nil {
		fn()
		return
	}
	f.mu.Lock()
	f.q = append(f.q, fn)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// close runs what is queued and stops the worker.
func (f *effects) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	<-f.done
}
