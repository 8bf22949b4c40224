package engine

import (
	"container/heap"
	"math"
	"slices"
	"strings"
	"time"
)

// deadlines is a min-heap of instances by their next deadline (the state
// machine's timer, a handover grace, the gratuitous ARP schedule), so that
// the loop finds the next timer and the due instances without scanning
// every instance: with 1,000 instances at advert_int 0.1 the loop turns
// some 20,000 times a second. An instance with no deadline sorts last.
//
// Each entry carries its instance's key, so that the comparisons of a
// sift (a backup's every advert moves its Master_Down deadline down the
// heap) read the heap's own array rather than one instance each: they
// were 8 % of a 1,000-instance backup's CPU samples.
type deadlines []deadline

type deadline struct {
	key int64 // in.nextKey when the entry was last placed
	in  *instance
}

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].key < h[j].key }

// deadlineKey orders deadlines as integers (a backup's every advert moves
// its deadline through the heap: some twenty comparisons): the monotonic
// time from epoch, none last.
func deadlineKey(t, epoch time.Time) int64 {
	if t.IsZero() {
		return math.MaxInt64
	}
	return int64(t.Sub(epoch))
}
func (h deadlines) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].in.hidx, h[j].in.hidx = i, j
}
func (h *deadlines) Push(x any) {
	in := x.(*instance)
	in.hidx = len(*h)
	*h = append(*h, deadline{in.nextKey, in})
}
func (h *deadlines) Pop() any {
	old := *h
	in := old[len(old)-1].in
	old[len(old)-1] = deadline{}
	*h = old[:len(old)-1]
	in.hidx = -1
	return in
}

// nextOf is an instance's earliest deadline, zero for none.
func nextOf(in *instance) time.Time {
	var next time.Time
	min := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if !in.pending {
		min(in.m.Deadline())
	}
	min(in.releaseAt)
	min(in.attachAt)
	if in.garp != nil {
		min(in.garp.Next())
	}
	return next
}

// mark notes that an instance's deadlines may have changed; flush updates
// the heap before it is read.
func (e *Engine) mark(in *instance) {
	if !in.dirty {
		in.dirty = true
		e.dirty = append(e.dirty, in)
	}
}

func (e *Engine) flush() {
	for _, in := range e.dirty {
		in.dirty = false
		in.next = nextOf(in)
		in.nextKey = deadlineKey(in.next, e.epoch)
		switch {
		case in.gone:
			if in.hidx >= 0 {
				heap.Remove(&e.dl, in.hidx)
			}
		case in.hidx >= 0:
			e.dl[in.hidx].key = in.nextKey
			heap.Fix(&e.dl, in.hidx)
		default:
			heap.Push(&e.dl, in)
		}
	}
	e.dirty = e.dirty[:0]
}

// due returns the instances whose next deadline is at or before now. The
// slice is the engine's (e.dueBuf), valid until the next call: the timer's
// turns reuse it and allocate nothing.
func (e *Engine) due(now time.Time) []*instance {
	e.flush()
	clear(e.dueBuf)
	e.dueBuf = e.dueBuf[:0]
	e.collectDue(0, now)
	out := e.dueBuf
	// The heap's order among equal deadlines changes as it is fixed up;
	// instances due together (one phase of the advert interval, vrrp's
	// phase.go) are served in a fixed order instead, so that each one's
	// adverts keep their place in the burst from one interval to the next.
	slices.SortFunc(out, func(a, b *instance) int {
		if c := a.next.Compare(b.next); c != 0 {
			return c
		}
		if c := strings.Compare(a.spec.SockIf(), b.spec.SockIf()); c != 0 {
			return c
		}
		if a.spec.IPv6 != b.spec.IPv6 {
			if b.spec.IPv6 {
				return -1
			}
			return 1
		}
		return int(a.spec.VRRP.VRID) - int(b.spec.VRRP.VRID)
	})
	return out
}

// collectDue appends the due instances of the heap below index i to
// e.dueBuf.
func (e *Engine) collectDue(i int, now time.Time) {
	if i >= len(e.dl) {
		return
	}
	in := e.dl[i].in
	if in.next.IsZero() || now.Before(in.next) {
		return // heap order: nothing below is due either
	}
	e.dueBuf = append(e.dueBuf, in)
	e.collectDue(2*i+1, now)
	e.collectDue(2*i+2, now)
}
