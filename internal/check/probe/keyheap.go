package probe

// keyHeap is a binary min-heap of items by an int64 key. Each slot holds its
// item's key, so a sift through a 10,000-item heap compares int64s in one
// array instead of loading every item it passes (and calls no interface
// methods, as container/heap does). Each item's index in the heap is kept
// current through heapPos (-1 once it left), so an item can be removed from
// the middle. The Runner's timetable and the pollers' deadlines use it.
type keyHeap[T heapItem] []keySlot[T]

// heapItem is an item of a keyHeap: a pointer whose heapPos is where the
// heap keeps its index.
type heapItem interface{ heapPos() *int }

type keySlot[T heapItem] struct {
	key int64
	v   T
}

func (h *keyHeap[T]) push(key int64, v T) {
	*h = append(*h, keySlot[T]{key, v})
	h.up(len(*h) - 1)
}

// pop removes and returns the item with the least key; h must not be empty.
func (h *keyHeap[T]) pop() T {
	v := (*h)[0].v
	h.remove(0)
	return v
}

// remove takes out the slot at i.
func (h *keyHeap[T]) remove(i int) {
	a := *h
	n := len(a) - 1
	*a[i].v.heapPos() = -1
	if i != n {
		a[i] = a[n]
		*a[i].v.heapPos() = i
	}
	a[n] = keySlot[T]{}
	*h = a[:n]
	if i < n {
		h.down(i)
		h.up(i)
	}
}

func (h keyHeap[T]) up(i int) {
	s := h[i]
	for i > 0 {
		p := (i - 1) / 2
		if h[p].key <= s.key {
			break
		}
		h[i] = h[p]
		*h[i].v.heapPos() = i
		i = p
	}
	h[i] = s
	*s.v.heapPos() = i
}

func (h keyHeap[T]) down(i int) {
	s := h[i]
	n := len(h)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].key < h[c].key {
			c = r
		}
		if s.key <= h[c].key {
			break
		}
		h[i] = h[c]
		*h[i].v.heapPos() = i
		i = c
	}
	h[i] = s
	*s.v.heapPos() = i
}
