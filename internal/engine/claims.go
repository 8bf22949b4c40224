package engine

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// Address conflicts on the LAN: while an instance is master, another host
// that announces one of its IPv4 VIPs with its own MAC (a poisoning
// gratuitous ARP, a misconfigured host) has the LAN's ARP caches send the
// VIP's traffic to it. keepalived 2.2.7 does not look; vigil watches the
// ARP packets on the interfaces that carry a master's IPv4 VIPs, counts each
// claim by another MAC (status vip_conflicts), logs it, and announces the
// VIP again so the caches come back.
//
// The answer waits claimDefendDelay, for two reasons: Linux ignores an ARP
// update of an entry changed less than locktime (1 s by default) before, so
// an answer right after the claim would not undo it; and a new master's
// gratuitous ARP can be read before the advert that makes this node step
// down, so the answer is dropped when the instance is no longer master by
// then (answering would send the LAN back to the node that is leaving);
// such a claim is the new master's, not a conflict: it is neither counted
// nor logged as one. So a claim is counted and logged when it is answered,
// with the claims that came while the answer was pending, which bounds
// what a flood of claims makes this node send. A claim that comes back after
// claimMaxAnswers answers within claimWindow is another master holding the
// VIP for good (a split brain: VRRP blocked between two nodes that both see
// ARP), whose own answers would make the LAN's caches swing between the two
// every claimDefendDelay: it is counted and logged once, and no longer
// answered until the window has passed.
const (
	claimDefendDelay = 1200 * time.Millisecond
	claimMaxAnswers  = 3
	claimWindow      = time.Minute
)

// ClaimWatcher is implemented by a Net that can report the ARP claims of
// other hosts on an interface (OSNet, garp.WatchClaims). A Net without it
// leaves conflicts unseen.
type ClaimWatcher interface {
	WatchClaims(ctx context.Context, ifindex int, f func(garp.Claim)) error
}

func (n *OSNet) WatchClaims(ctx context.Context, ifindex int, f func(garp.Claim)) error {
	return garp.WatchClaims(ctx, ifindex, f)
}

type (
	// claimEvent is a claim seen on dev.
	claimEvent struct {
		dev string
		c   garp.Claim
	}
	// claimDefend is the delayed answer to a claim of addr on dev.
	claimDefend struct {
		dev  string
		addr netip.Addr
	}
	// claimWatchDone says the watch of dev ended (err nil: Run ended).
	claimWatchDone struct {
		dev string
		err error
	}
)

// claimState is the loop's view of the watches and answers.
type claimState struct {
	watching map[string]bool // by interface
	pending  map[claimDefend]*claimPending
	answers  map[claimDefend]*claimAnswers
}

// claimPending is a claim waiting for its answer: the claims of the VIP
// seen since, and the last claimant.
type claimPending struct {
	n   uint64
	mac net.HardwareAddr
}

// claimAnswers counts the answers for one VIP since since.
type claimAnswers struct {
	since time.Time
	n     int
}

// watchClaims starts a watch on each interface carrying in's IPv4 VIPs
// that has none (called when in becomes master).
func (e *Engine) watchClaims(in *instance) {
	w, ok := e.opts.Net.(ClaimWatcher)
	if !ok || e.wg == nil || e.bg == nil {
		return
	}
	if e.claims.watching == nil {
		e.claims.watching = map[string]bool{}
		e.claims.pending = map[claimDefend]*claimPending{}
		e.claims.answers = map[claimDefend]*claimAnswers{}
	}
	for _, v := range in.allVIPs() {
		if !v.Addr().Is4() {
			continue
		}
		dev := v.Dev
		if dev == "" {
			dev = in.spec.Interface
		}
		li, ok := e.links[dev]
		if !ok || e.claims.watching[dev] {
			continue
		}
		e.claims.watching[dev] = true
		wg, bg, events := e.wg, e.bg, e.events
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.WatchClaims(bg, li.Index, func(c garp.Claim) {
				select {
				case events <- claimEvent{dev, c}:
				case <-bg.Done():
				}
			})
			select {
			case events <- claimWatchDone{dev, err}:
			case <-bg.Done():
			}
		}()
	}
}

// claimHolder returns the master instance holding addr on dev, if any.
func (e *Engine) claimHolder(dev string, addr netip.Addr) *instance {
	for _, in := range e.all() {
		if !in.held || in.m.State() != vrrp.StateMaster {
			continue
		}
		for _, v := range in.allVIPs() {
			d := v.Dev
			if d == "" {
				d = in.spec.Interface
			}
			if d == dev && v.Addr() == addr {
				return in
			}
		}
	}
	return nil
}

func (e *Engine) claimed(now time.Time, ev claimEvent) {
	li, ok := e.links[ev.dev]
	if !ok || bytes.Equal(ev.c.MAC, li.MAC) {
		return
	}
	in := e.claimHolder(ev.dev, ev.c.Addr)
	if in == nil {
		return
	}
	d := claimDefend{ev.dev, ev.c.Addr}
	if p := e.claims.pending[d]; p != nil {
		p.n++
		p.mac = ev.c.MAC
		return
	}
	a := e.claims.answers[d]
	if a == nil || now.Sub(a.since) >= claimWindow {
		a = &claimAnswers{since: now}
		e.claims.answers[d] = a
	}
	if a.n >= claimMaxAnswers {
		in.conflicts++
		if a.n == claimMaxAnswers {
			a.n++
			e.log.Error("address conflict persists: another host keeps announcing a virtual address this master holds (a second master? VRRP blocked between them?); no longer answering it for a while",
				"instance", in.spec.VRRP.Name, "addr", ev.c.Addr, "dev", ev.dev, "their_mac", ev.c.MAC.String(), "answers", claimMaxAnswers, "window", claimWindow)
		}
		return
	}
	a.n++
	e.claims.pending[d] = &claimPending{n: 1, mac: ev.c.MAC}
	bg, events := e.bg, e.events
	time.AfterFunc(claimDefendDelay, func() {
		select {
		case events <- d:
		case <-bg.Done():
		}
	})
}

func (e *Engine) defendClaim(now time.Time, d claimDefend) {
	p := e.claims.pending[d]
	delete(e.claims.pending, d)
	if p == nil || e.stopping {
		return
	}
	in := e.claimHolder(d.dev, d.addr)
	if in == nil {
		e.log.Debug("a claim of a virtual address came with a new master (this instance stepped down); not a conflict",
			"addr", d.addr, "dev", d.dev, "their_mac", p.mac.String())
		return
	}
	in.conflicts += p.n
	e.log.Warn("address conflict: another host announces a virtual address this master holds; announcing it again",
		"instance", in.spec.VRRP.Name, "addr", d.addr, "dev", d.dev, "their_mac", p.mac.String(), "conflicts", in.conflicts)
	e.announce(now, []garp.Send{{Target: garp.Target{Addr: d.addr, Dev: d.dev}, Reason: garp.ReasonRefresh}})
}

func (e *Engine) claimWatchEnded(ev claimWatchDone) {
	delete(e.claims.watching, ev.dev)
	if ev.err != nil && !e.stopping {
		e.log.Warn("ARP watch ended; address conflicts on this interface are not seen until an instance becomes master there again", "dev", ev.dev, "err", ev.err)
	}
}
