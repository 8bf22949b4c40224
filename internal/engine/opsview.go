package engine

import (
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// What an operator sees of an instance beyond its state machine: the peers
// heard, the instance's own state history, the addresses the kernel holds,
// the handover in progress. The bookkeeping lives here, apart from the
// VRRP runtime, and is owned by the engine loop.

const (
	// maxPeers bounds the routers remembered per instance; a flood of
	// forged sources evicts the longest silent.
	maxPeers = 16
	// maxHistory and historyAge bound an instance's state history: the
	// status page draws the last hour.
	maxHistory = 128
	historyAge = time.Hour
)

// peer is a router heard advertising the instance's VRID.
type peer struct {
	addr    netip.Addr
	last    time.Time
	adverts uint64
	prio    uint8
}

// transition is a state change of the instance as its history keeps it
// (status.Transition without what the instance itself tells).
type transition struct {
	at       time.Time
	reason   string
	from, to vrrp.State
	prio     uint8
}

// opsview is an instance's operator bookkeeping. Its lists are short (a
// peer or two, a few transitions) and kept as slices: a map per instance
// costs more than its entries at thousands of instances.
type opsview struct {
	peers   []peer
	history []transition
	// from is when history begins: the instance's first transition, or
	// the time of the newest transition forgotten.
	from time.Time
	// announced counts gratuitous ARP / NA sends for the instance.
	announced uint64
}

// lastPeerAdvert is when the instance last heard another router advertise
// (zero when never, or when the peers heard were forgotten).
func (in *instance) lastPeerAdvert() time.Time {
	var last time.Time
	for _, p := range in.ops.peers {
		if p.last.After(last) {
			last = p.last
		}
	}
	return last
}

// notePeer records an advert parsed for the instance, from src.
func (in *instance) notePeer(now time.Time, src netip.Addr, prio uint8) {
	p := in.peer(src)
	if p == nil {
		if len(in.ops.peers) < maxPeers {
			in.ops.peers = append(in.ops.peers, peer{})
			p = &in.ops.peers[len(in.ops.peers)-1]
		} else {
			p = &in.ops.peers[0]
			for i := range in.ops.peers {
				if in.ops.peers[i].last.Before(p.last) {
					p = &in.ops.peers[i]
				}
			}
		}
		*p = peer{addr: src}
	}
	p.prio, p.last = prio, now
	p.adverts++
}

// peer returns the peer of address a, nil if not heard.
func (in *instance) peer(a netip.Addr) *peer {
	for i := range in.ops.peers {
		if in.ops.peers[i].addr == a {
			return &in.ops.peers[i]
		}
	}
	return nil
}

// noteTransition appends a state change to the instance's history,
// forgetting what is older than historyAge or beyond maxHistory.
func (in *instance) noteTransition(tr transition) {
	if in.ops.from.IsZero() {
		in.ops.from = tr.at
	}
	in.ops.history = append(in.ops.history, tr)
	cut := 0
	for cut < len(in.ops.history)-1 && (len(in.ops.history)-cut > maxHistory || tr.at.Sub(in.ops.history[cut].at) > historyAge) {
		cut++
	}
	if cut > 0 {
		in.ops.from = in.ops.history[cut-1].at
		in.ops.history = slices.Delete(in.ops.history, 0, cut)
	}
}

// countAnnouncements credits each send to the instances holding its
// address, through the holders index: a mass takeover calls it once per
// instance.
func (e *Engine) countAnnouncements(sends []garp.Send) {
	if e.holders == nil {
		e.holders = holders{}
		for _, in := range e.all() {
			if in.held {
				e.holders.add(in)
			}
		}
	}
	for _, s := range sends {
		for _, in := range e.holders[s.Target] {
			in.ops.announced++
		}
	}
}

// holders are the held instances by address and interface, an instance
// once per entry of its address lists.
type holders map[garp.Target][]*instance

func (h holders) add(in *instance) {
	for _, vs := range [][]netif.VIP{in.spec.VIPs, in.spec.ExcludedVIPs} {
		for _, v := range vs {
			dev := v.Dev
			if dev == "" {
				dev = in.spec.Interface
			}
			t := garp.Target{Addr: v.Addr(), Dev: dev}
			h[t] = append(h[t], in)
		}
	}
}

// opsStatus adds the operator's view to an instance's status.
func (e *Engine) opsStatus(in *instance, si *status.Instance, st vrrp.Status) {
	for _, p := range in.ops.peers {
		si.Peers = append(si.Peers, status.Peer{Addr: p.addr.String(), Priority: int(p.prio), LastHeard: p.last, Adverts: p.adverts})
	}
	slices.SortFunc(si.Peers, func(a, b status.Peer) int { return b.LastHeard.Compare(a.LastHeard) })
	if len(in.ops.history) > 0 {
		si.History = make([]status.Transition, len(in.ops.history))
		for i, tr := range in.ops.history {
			si.History[i] = status.Transition{At: tr.at, Kind: "instance", Name: in.spec.VRRP.Name, From: tr.from.String(), To: tr.to.String(), Reason: tr.reason, Priority: int(tr.prio)}
		}
	}
	si.HistoryFrom = in.ops.from
	si.HeldVIPs = e.kernelHeldVIPs(in)
	switch {
	case st.Handover || in.handingOver || !in.releaseAt.IsZero():
		si.Handover, si.HandoverUntil = "holding", st.HandoverUntil
		if !in.releaseAt.IsZero() {
			si.HandoverUntil = in.releaseAt
		}
	case st.Yielding:
		si.Handover = "yielding"
	}
	si.Counters.Announcements = in.ops.announced
	si.Counters.RouteErrors = in.netErrors.Load()
	if n := e.opts.Notifier; n != nil {
		si.Counters.NotifyFailures = n.FailedFor(notify.Instance, in.spec.VRRP.Name)
	}
}

// kernelHeldVIPs lists the instance's addresses that the kernel reports on
// their interfaces; before the first report, those the engine added.
func (e *Engine) kernelHeldVIPs(in *instance) []string {
	var out []string
	for _, v := range in.devVIPs() {
		held := in.held
		if e.kernel.seen {
			li, ok := e.links[v.Dev]
			held = ok && e.kernel.addrs[addrKey{li.Index, v.Addr()}]
		}
		if held {
			out = append(out, v.Prefix.String())
		}
	}
	return out
}
