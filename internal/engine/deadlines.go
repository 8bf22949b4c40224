package engine

import (
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

// deadlineKey orders deadlines as integers (a backup's every advert moves
// its deadline through the heap: some twenty comparisons): the monotonic
// time from epoch, none last.
func deadlineKey(t, epoch time.Time) int64 {
	if t.IsZero() {
		return math.MaxInt64
	}
	return int64(t.Sub(epoch))
}

// The heap's operations are container/heap's, on this type: a sift moves
// each entry it passes over once and writes its instance's hidx once,
// where Swap wrote two instances' (a cache miss each, the instances being
// out of the caches between a backup's bursts: a backup's heap work was
// 9 % of its CPU samples at 1,000 instances).

// up moves the entry at j towards the root to its place.
func (h deadlines) up(j int) {
	x := h[j]
	for j > 0 {
		i := (j - 1) / 2 // parent
		if h[i].key <= x.key {
			break
		}
		h.put(j, h[i])
		j = i
	}
	h.put(j, x)
}

// down moves the entry at i0 towards the leaves to its place; it reports
// whether it moved.
func (h deadlines) down(i0 int) bool {
	n := len(h)
	x := h[i0]
	i := i0
	for {
		j := 2*i + 1 // left child
		if j >= n || j < 0 {
			break
		}
		if r := j + 1; r < n && h[r].key < h[j].key {
			j = r
		}
		if h[j].key >= x.key {
			break
		}
		h.put(i, h[j])
		i = j
	}
	h.put(i, x)
	return i > i0
}

// put places d at index i.
func (h deadlines) put(i int, d deadline) {
	h[i] = d
	d.in.hidx = i
}

// fix restores the order after the key at i changed (heap.Fix).
func (h deadlines) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// push adds in with its key (heap.Push).
func (h *deadlines) push(in *instance) {
	*h = append(*h, deadline{in.nextKey, in})
	h.up(len(*h) - 1)
}

// remove takes out the entry at i (heap.Remove).
func (h *deadlines) remove(i int) {
	old := *h
	n := len(old) - 1
	gone := old[i].in
	if i != n {
		old.put(i, old[n])
	}
	old[n] = deadline{}
	*h = old[:n]
	if i != n {
		h.fix(i)
	}
	gone.hidx = -1
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
				e.dl.remove(in.hidx)
			}
		case in.hidx >= 0:
			e.dl[in.hidx].key = in.nextKey
			e.dl.fix(in.hidx)
		default:
			e.dl.push(in)
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
