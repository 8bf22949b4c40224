package nft

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
)

// Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
// Network Load Balancer", NSDI 2016, §3.4): every destination walks its own
// permutation of a prime-sized table, and the destinations take turns
// claiming their next free slot until the table is full. The table depends
// only on the ordered pool and the seed, so two directors holding the same
// pool build the same table, and adding or removing one destination moves
// few slots of the others.
//
// Weighted turns: each round a destination earns its weight in credit and
// claims a slot per maximum weight of credit, so slots follow the weights.

// maglevSeed seeds both the destinations' permutations (here) and the
// kernel's jhash of packets (the rules). It is fixed so that every director
// running vigil computes the same tables and packet hashes; nft's jhash
// picks a random seed when none is given.
const maglevSeed = 0x76696731 // "vig1"

// maglevSize is the table size for a pool of n destinations (weight 0
// ones included, so that draining a server does not resize): a prime at
// least 32 times n. The size changes only when the pool crosses 32, 128 or
// 512 destinations.
func maglevSize(n int) int {
	for _, p := range []int{1021, 4093, 16381} {
		if n*32 <= p {
			return p
		}
	}
	return 65521
}

// maglevTable fills a table of m slots (m prime) with the destinations of
// weight > 0, in the order given; nil when none has a weight.
func maglevTable(ds []destW, m int) []netip.AddrPort {
	type perm struct {
		offset, skip, next uint64
		credit, w          uint64
	}
	var live []destW
	var maxW uint64
	for _, d := range ds {
		if d.weight > 0 {
			live = append(live, d)
			maxW = max(maxW, uint64(d.weight))
		}
	}
	if len(live) == 0 {
		return nil
	}
	ps := make([]perm, len(live))
	for i, d := range live {
		ps[i] = perm{offset: maglevHash(d.addr, 1) % uint64(m), skip: maglevHash(d.addr, 2)%uint64(m-1) + 1, w: uint64(d.weight)}
	}
	table := make([]netip.AddrPort, m)
	filled := make([]bool, m)
	n := 0
	for n < m {
		for i := range ps {
			p := &ps[i]
			p.credit += p.w
			for p.credit >= maxW && n < m {
				p.credit -= maxW
				for {
					c := (p.offset + p.next*p.skip) % uint64(m)
					p.next++
					if !filled[c] {
						filled[c] = true
						table[c] = live[i].addr
						n++
						break
					}
				}
			}
		}
	}
	return table
}

// maglevHash is FNV-1a over the seed, a tag and the destination.
func maglevHash(a netip.AddrPort, tag byte) uint64 {
	h := fnv.New64a()
	var b [8 + 1 + 16 + 2]byte
	binary.BigEndian.PutUint64(b[:8], maglevSeed)
	b[8] = tag
	a16 := a.Addr().As16()
	copy(b[9:25], a16[:])
	binary.BigEndian.PutUint16(b[25:], a.Port())
	h.Write(b[:])
	return h.Sum64()
}
