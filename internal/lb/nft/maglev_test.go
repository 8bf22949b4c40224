package nft

import (
	"net/netip"
	"testing"
)

func pool(n int, w func(i int) uint32) []destW {
	var ds []destW
	for i := range n {
		ds = append(ds, destW{addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i + 1)}), 80), weight: w(i)})
	}
	return ds
}

func one(int) uint32 { return 1 }

// The table is a function of the pool: the same on every director, whatever
// the order the pool was listed in.
func TestMaglevDeterministic(t *testing.T) {
	ds := pool(10, one)
	a := maglevTable(ds, 1021)
	b := maglevTable(sortDestW(append([]destW(nil), ds...)), 1021)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("slot %d: %v vs %v", i, a[i], b[i])
		}
	}
}

// Slots follow the weights, and a pool that loses (or gains) a server
// moves few of the other servers' slots.
func TestMaglevBalanceAndDisruption(t *testing.T) {
	for _, n := range []int{2, 10, 31} {
		m := maglevSize(n)
		ds := pool(n, one)
		full := maglevTable(ds, m)
		count := map[netip.AddrPort]int{}
		for _, a := range full {
			count[a]++
		}
		for _, d := range ds {
			if c := count[d.addr]; c < m/n-1 || c > m/n+1 {
				t.Errorf("n=%d: %v has %d slots of %d", n, d.addr, c, m)
			}
		}
		less := maglevTable(ds[1:], m)
		moved := 0
		for i := range full {
			if full[i] != ds[0].addr && less[i] != full[i] {
				moved++
			}
		}
		// Maglev's paper: a removal moves a few percent of the others.
		if frac := float64(moved) / float64(m); frac > 0.10 {
			t.Errorf("n=%d: removing one server moved %d of %d other slots", n, moved, m)
		} else {
			t.Logf("n=%d (M=%d): removing one server moved %d other slots (%.1f%%)", n, m, moved, 100*frac)
		}
	}
	w := maglevTable(pool(2, func(i int) uint32 { return uint32(1 + 2*i) }), 1021)
	count := map[netip.AddrPort]int{}
	for _, a := range w {
		count[a]++
	}
	if c := count[pool(2, one)[1].addr]; c < 760 || c > 770 {
		t.Errorf("weights 1:3: the heavier server has %d of 1021 slots, want about 766", c)
	}
	if maglevTable(pool(3, func(int) uint32 { return 0 }), 1021) != nil {
		t.Error("a pool without weight has a table")
	}
}
