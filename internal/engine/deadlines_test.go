package engine

import (
	"container/heap"
	"math/rand/v2"
	"testing"
)

// refHeap is container/heap over the same entries, the reference the
// deadline heap's own sifts must match step for step.
type refHeap []deadline

func (h refHeap) Len() int           { return len(h) }
func (h refHeap) Less(i, j int) bool { return h[i].key < h[j].key }
func (h refHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *refHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *refHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// TestDeadlinesMatchContainerHeap: pushes, key changes and removals in
// random order leave the entries where container/heap leaves them, every
// instance's hidx naming its entry and every removed one's -1.
func TestDeadlinesMatchContainerHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h deadlines
	var ref refHeap
	var live []*instance
	where := func(in *instance) int {
		for i, d := range ref {
			if d.in == in {
				return i
			}
		}
		t.Fatal("instance missing from the reference heap")
		return -1
	}
	for step := range 20000 {
		switch op := r.IntN(10); {
		case op < 4 || len(live) == 0:
			in := &instance{hidx: -1, nextKey: r.Int64N(1000)}
			live = append(live, in)
			h.push(in)
			heap.Push(&ref, deadline{in.nextKey, in})
		case op < 8:
			in := live[r.IntN(len(live))]
			in.nextKey = r.Int64N(1000)
			h[in.hidx].key = in.nextKey
			h.fix(in.hidx)
			i := where(in)
			ref[i].key = in.nextKey
			heap.Fix(&ref, i)
		default:
			k := r.IntN(len(live))
			in := live[k]
			live = append(live[:k], live[k+1:]...)
			h.remove(in.hidx)
			heap.Remove(&ref, where(in))
			if in.hidx != -1 {
				t.Fatalf("step %d: removed instance has hidx %d", step, in.hidx)
			}
		}
		if len(h) != len(ref) {
			t.Fatalf("step %d: %d entries, reference %d", step, len(h), len(ref))
		}
		for i := range h {
			if h[i] != ref[i] {
				t.Fatalf("step %d: entry %d is %v, reference %v", step, i, h[i], ref[i])
			}
			if h[i].in.hidx != i {
				t.Fatalf("step %d: entry %d's instance has hidx %d", step, i, h[i].in.hidx)
			}
		}
	}
}
