package nft

import (
	"net/netip"

	"github.com/vigil-ha/vigil/internal/lb"
)

// How each IPVS scheduler is realised without connection counts. nftables
// sees only the first packet of a connection (NAT chains), so schedulers that
// weigh active connections (lc, wlc, sed, nq, twos, ovf, lblc, lblcr) fall
// back to the closest stateless one; Capabilities reports each substitution
// and `vigil check` reports it as a configuration warning.
var schedulers = map[string]lb.Support{
	"rr":    {As: "rr"},
	"wrr":   {As: "wrr"},
	"sh":    {As: "sh"},
	"dh":    {As: "dh"},
	"fo":    {As: "fo"},
	"mh":    {As: "sh", Note: "maglev hashing is approximated by source hashing over a 256-bucket table"},
	"lc":    {As: "wrr", Note: "connection counts are not visible to nftables; weighted round robin is used"},
	"wlc":   {As: "wrr", Note: "connection counts are not visible to nftables; weighted round robin is used"},
	"sed":   {As: "wrr", Note: "connection counts are not visible to nftables; weighted round robin is used"},
	"nq":    {As: "wrr", Note: "connection counts are not visible to nftables; weighted round robin is used"},
	"twos":  {As: "wrr", Note: "connection counts are not visible to nftables; weighted round robin is used"},
	"ovf":   {As: "fo", Note: "connection counts are not visible to nftables; the highest weight server takes all (fo)"},
	"lblc":  {As: "dh", Note: "connection counts are not visible to nftables; destination hashing is used"},
	"lblcr": {As: "dh", Note: "connection counts are not visible to nftables; destination hashing is used"},
}

// hashBuckets is the size of the sh/dh tables (IP_VS_SH_TAB_SIZE and
// IP_VS_DH_TAB_SIZE are 256 in the kernel).
const hashBuckets = 256

// maxRotation bounds the weighted round robin table; larger weight sums are
// scaled down proportionally (every server keeps at least one slot).
const maxRotation = 1024

type destW struct {
	addr   netip.AddrPort
	weight uint32
}

// pickKind is how the index into the pick table is computed.
type pickKind uint8

const (
	pickNumgen pickKind = iota + 1 // numgen inc mod N
	pickSaddr                      // jhash(ip saddr [. sport]) mod N
	pickDaddr                      // jhash(ip daddr) mod N
)

// pickTable returns how to index the table and the table itself for a
// scheduler over destinations in address order; destinations with weight 0
// never appear. An empty table means no server may take new connections.
func pickTable(sched string, ds []destW) (pickKind, []netip.AddrPort) {
	var live []destW
	for _, d := range ds {
		if d.weight > 0 {
			live = append(live, d)
		}
	}
	if len(live) == 0 {
		return pickNumgen, nil
	}
	switch schedulers[sched].As {
	case "rr":
		out := make([]netip.AddrPort, len(live))
		for i, d := range live {
			out[i] = d.addr
		}
		return pickNumgen, out
	case "fo":
		// ip_vs_fo.c: the first server with the highest weight.
		best := live[0]
		for _, d := range live[1:] {
			if d.weight > best.weight {
				best = d
			}
		}
		return pickNumgen, []netip.AddrPort{best.addr}
	case "sh":
		return pickSaddr, shTable(live)
	case "dh":
		return pickDaddr, dhTable(live)
	}
	return pickNumgen, wrrSequence(live)
}

// wrrSequence is one period of IPVS's weighted round robin (ip_vs_wrr.c):
// the current weight starts at the maximum and drops by the weights' gcd each
// pass; a pass takes every server whose weight reaches it.
func wrrSequence(ds []destW) []netip.AddrPort {
	ws := make([]uint64, len(ds))
	var sum uint64
	for i, d := range ds {
		ws[i] = uint64(d.weight)
		sum += ws[i]
	}
	g := ws[0]
	for _, w := range ws[1:] {
		g = gcd(g, w)
	}
	if sum/g > maxRotation {
		// Scale down, keeping every server.
		for i := range ws {
			ws[i] = max(1, ws[i]*maxRotation/sum)
		}
		g = ws[0]
		for _, w := range ws[1:] {
			g = gcd(g, w)
		}
	}
	var mx uint64
	for _, w := range ws {
		mx = max(mx, w)
	}
	var out []netip.AddrPort
	for cw := mx; cw > 0; cw -= min(cw, g) {
		for i, d := range ds {
			if ws[i] >= cw {
				out = append(out, d.addr)
			}
		}
	}
	return out
}

// shTable fills the 256 buckets as ip_vs_sh.c ip_vs_sh_reassign does: each
// server in turn takes as many consecutive buckets as its weight.
func shTable(ds []destW) []netip.AddrPort {
	out := make([]netip.AddrPort, hashBuckets)
	i, n := 0, uint32(0)
	for b := range out {
		out[b] = ds[i].addr
		n++
		if n >= ds[i].weight {
			i, n = (i+1)%len(ds), 0
		}
	}
	return out
}

// dhTable fills the buckets round robin, as ip_vs_dh.c ip_vs_dh_reassign.
func dhTable(ds []destW) []netip.AddrPort {
	out := make([]netip.AddrPort, hashBuckets)
	for b := range out {
		out[b] = ds[b%len(ds)].addr
	}
	return out
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
