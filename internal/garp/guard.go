package garp

import (
	"net"
	"time"
)

// Address conflicts on the LAN: while an instance is master, another host
// that announces one of its VIPs with its own MAC (a poisoning gratuitous
// ARP or unsolicited neighbour advertisement, a misconfigured host) has the
// LAN's ARP and neighbour caches send the VIP's traffic to it. keepalived
// 2.2.7 does not look; vigil watches ARP (WatchClaims) and neighbour
// advertisements (WatchNAs) on the interfaces that carry a master's VIPs,
// and a Guard decides, for both families alike, what a claim by another
// MAC of an address a master holds gets: counted (status vip_conflicts),
// logged, and answered with the address's gratuitous ARP or unsolicited NA.
//
// The answer waits DefendDelay, for two reasons: Linux ignores an ARP
// update of an entry changed less than locktime (1 s by default) before, so
// an answer right after the claim would not undo it; and a new master's
// gratuitous ARP or NA can be read before the advert that makes this node
// step down, so the answer is dropped when the instance is no longer master
// by then (answering would send the LAN back to the node that is leaving);
// such a claim is the new master's, not a conflict: it is neither counted
// nor logged as one. So a claim is counted and logged when it is answered,
// with the claims that came while the answer was pending, which bounds what
// a flood of claims makes this node send: one answer per address per
// DefendDelay. A claim that comes back after MaxAnswers answers within
// Window is another master holding the address for good (a split brain:
// VRRP blocked between two nodes that both see ARP / ND), whose own answers
// would make the LAN's caches swing between the two every DefendDelay: it
// is counted and logged once, and no longer answered until the window has
// passed.
const (
	DefendDelay = 1200 * time.Millisecond
	MaxAnswers  = 3
	Window      = time.Minute
)

// Guard applies that rule to the claims of one node's addresses. It reads
// no clock and sends nothing: the caller says when a claim came and whether
// the address is still held when an answer is due, and does what the
// results say.
//
// Concurrency: a Guard is not safe for concurrent use.
type Guard struct {
	pending map[Target]*guardPending
	answers map[Target]*guardAnswers
}

// guardPending are the claims of an address waiting for its answer, and
// the last claimant.
type guardPending struct {
	n   uint64
	mac net.HardwareAddr
}

// guardAnswers counts the answers for one address since since.
type guardAnswers struct {
	since time.Time
	n     int
}

// Verdict is what a claim gets at once.
type Verdict struct {
	// Answer: call Due for the target DefendDelay from now.
	Answer bool
	// Count are the conflicts to count now: claims past the answer budget,
	// which no answer will count.
	Count uint64
	// Persists: the first claim past the budget in this window; log it
	// (once) as a conflict that persists.
	Persists bool
}

// Claimed takes n claims of t by mac at now. The caller passes only
// claims of an address a master of its holds, by a MAC that is not its own.
func (g *Guard) Claimed(now time.Time, t Target, mac net.HardwareAddr, n uint64) Verdict {
	if n == 0 {
		return Verdict{}
	}
	if g.pending == nil {
		g.pending = map[Target]*guardPending{}
		g.answers = map[Target]*guardAnswers{}
	}
	if p := g.pending[t]; p != nil {
		p.n += n
		p.mac = mac
		return Verdict{}
	}
	a := g.answers[t]
	if a == nil || now.Sub(a.since) >= Window {
		a = &guardAnswers{since: now}
		g.answers[t] = a
	}
	if a.n >= MaxAnswers {
		v := Verdict{Count: n}
		if a.n == MaxAnswers {
			a.n++
			v.Persists = true
		}
		return v
	}
	a.n++
	g.pending[t] = &guardPending{n: n, mac: mac}
	return Verdict{Answer: true}
}

// Due takes the claims of t pending since the Verdict that asked for this
// call: n claims, the last by mac. If t is still held by a master, the
// caller counts n conflicts, logs them and answers; if not, they were the
// new master's, and are no conflict.
func (g *Guard) Due(t Target) (n uint64, mac net.HardwareAddr) {
	p := g.pending[t]
	if p == nil {
		return 0, nil
	}
	delete(g.pending, t)
	return p.n, p.mac
}

// Forget drops what the Guard holds on addresses that are no longer
// claimed: answer windows that have passed. The caller calls it now and
// then so a long run keeps no state of addresses it no longer holds.
func (g *Guard) Forget(now time.Time) {
	for t, a := range g.answers {
		if now.Sub(a.since) >= Window && g.pending[t] == nil {
			delete(g.answers, t)
		}
	}
}
