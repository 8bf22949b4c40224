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
//
// A claim read shortly after another router of the instance last
// advertised, when that router has advertised no more by the time the
// answer is due (its delay is then up to an advert interval and
// LeftoverSlack after that advert: AnswerDelay), is a leftover of its
// master period (see Leftover), not a conflict: it is answered (the LAN
// may have followed it) but counted apart and not logged as a conflict. A
// host that keeps claiming the address is still reported at its first
// claim past that moment.
const (
	DefendDelay = 1200 * time.Millisecond
	MaxAnswers  = 3
	Window      = time.Minute
	// LeftoverSlack is how long past one advert interval after another
	// router's last advert a claim still counts as that router's leftover,
	// and how long past one interval that router must be silent since.
	LeftoverSlack = time.Second
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

// guardPending are the claims of an address waiting for its answer, the
// last claimant and when the first came.
type guardPending struct {
	n     uint64
	mac   net.HardwareAddr
	first time.Time
}

// guardAnswers counts the answers for one address since since.
type guardAnswers struct {
	since time.Time
	n     int
}

// Verdict is what a claim gets at once.
type Verdict struct {
	// Answer: call Due for the target AnswerDelay from now.
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
	g.pending[t] = &guardPending{n: n, mac: mac, first: now}
	return Verdict{Answer: true}
}

// Due takes the claims of t pending since the Verdict that asked for this
// call (AnswerDelay after it): n claims, the last by mac, the first at
// first. If t is still held by a master, the caller answers and counts n
// conflicts and logs them, unless Leftover says they are another router's
// leftovers; if t is no longer held, they were the new master's, and are
// no conflict.
func (g *Guard) Due(t Target) (n uint64, mac net.HardwareAddr, first time.Time) {
	p := g.pending[t]
	if p == nil {
		return 0, nil, time.Time{}
	}
	delete(g.pending, t)
	return p.n, p.mac, p.first
}

// Leftover reports whether claims of an address a master holds, the first
// read at first, are leftovers of another router's master period rather
// than a conflict, when the answer is due at now (AnswerDelay after
// first). lastAdvert is when the instance last heard another router
// advertise its VRID (zero: never), interval the instance's advert
// interval.
//
// A router that was master until this node took over (preempted by it,
// handing over, stopping) can still be heard claiming the address just
// after its last advert: a gratuitous ARP or NA sent before it released
// the address and read late, an answer to a request sent while it held the
// address. Its last advert is then at most about one advert interval
// before the claim, and it advertises no more: by now it has been silent
// for an interval and LeftoverSlack. A second master (VRRP between the two
// broken, or their configurations differing) or any other host that keeps
// the address goes on claiming it: past that window after the last advert,
// or with adverts after the claim, the claims are a conflict again.
func Leftover(first, lastAdvert, now time.Time, interval time.Duration) bool {
	return afterAdvert(first, lastAdvert, interval) && now.Sub(lastAdvert) >= interval+LeftoverSlack
}

// AnswerDelay is how long after a claim at first, answered (Verdict.Answer),
// the caller calls Due: DefendDelay, or, after another router's advert
// (lastAdvert, interval as for Leftover), until that router has been silent
// long enough for Leftover to tell a leftover from a router still master.
func AnswerDelay(first, lastAdvert time.Time, interval time.Duration) time.Duration {
	d := DefendDelay
	if afterAdvert(first, lastAdvert, interval) {
		d = max(d, lastAdvert.Add(interval+LeftoverSlack).Sub(first))
	}
	return d
}

// afterAdvert: a claim at first comes within an advert interval and
// LeftoverSlack after another router's last advert.
func afterAdvert(first, lastAdvert time.Time, interval time.Duration) bool {
	return !lastAdvert.IsZero() && !lastAdvert.After(first) && first.Sub(lastAdvert) <= interval+LeftoverSlack
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
