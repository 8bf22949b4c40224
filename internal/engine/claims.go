package engine

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// Address conflicts on the LAN (the rule: garp.Guard): while an instance is
// master, the engine watches the ARP (IPv4 VIPs) and neighbour
// advertisements (IPv6 VIPs) on the interfaces that carry its VIPs. A claim
// of a VIP a master holds by a MAC that is not this node's goes through
// the one Guard of both families, whose verdicts the loop carries out:
// counting (vip_conflicts), logging, and answering with the VIP's
// gratuitous ARP or unsolicited NA.
//
// A flood costs the loop one event per watch at a time: the watch
// goroutine drops the claims of addresses no instance has on its
// interface (every host's ARP), and adds the others up in its box until
// the loop takes them (claimsReady), so a burst of claims of one address
// is one entry, its count and its last MAC.

// ClaimWatcher is implemented by a Net that can report the claims of other
// hosts on an interface: ARP (garp.WatchClaims) or, with ipv6, neighbour
// advertisements (garp.WatchNAs), whose packets that are no claim it counts
// by reason (drop). A Net without it leaves conflicts unseen.
type ClaimWatcher interface {
	WatchClaims(ctx context.Context, ifindex int, ipv6 bool, f func(garp.Claim), drop func(reason string)) error
}

func (n *OSNet) WatchClaims(ctx context.Context, ifindex int, ipv6 bool, f func(garp.Claim), drop func(reason string)) error {
	if ipv6 {
		return garp.WatchNAs(ctx, ifindex, f, drop)
	}
	return garp.WatchClaims(ctx, ifindex, f)
}

// claimKey names one watch: an interface and a family.
type claimKey struct {
	dev  string
	ipv6 bool
}

type (
	// claimsReady says the watch's box has claims for the loop.
	claimsReady struct{ k claimKey }
	// claimDefend is the delayed answer to the claims of an address.
	claimDefend struct{ t garp.Target }
	// claimWatchDone says the watch ended (err nil: Run ended).
	claimWatchDone struct {
		k   claimKey
		err error
	}
)

// claimState is the loop's view of the watches and the rule's state.
type claimState struct {
	watches map[claimKey]*claimWatch
	guard   garp.Guard
	// dropped counts the neighbour advertisements that were no claim, by
	// reason (garp.DropNA*), of the watches that ended (naDropped adds the
	// running ones').
	dropped map[string]uint64
}

// claimWatch is one watch's exchange between its goroutine and the loop.
//
// Concurrency: mu guards every field; the goroutine holds it per packet,
// the loop to add addresses and to take the box.
type claimWatch struct {
	mu sync.Mutex
	// addrs are the family's VIPs of the instances that were master on the
	// interface, ours this node's MACs there (the interface's, the VMACs'):
	// set by the loop; claims of other addresses or by our MACs are not
	// kept (so a box entry's last MAC is another host's).
	addrs map[netip.Addr]bool
	ours  []net.HardwareAddr
	// box holds the claims the loop has not taken, by address (so at most
	// one entry per address in addrs); posted says a claimsReady is on its
	// way to the loop.
	box    map[netip.Addr]*claimBatch
	posted bool
	// dropped counts the packets that were no claim, by reason, since the
	// watch started.
	dropped map[string]uint64
}

// claimBatch are n claims of an address, the last by mac.
type claimBatch struct {
	n   uint64
	mac net.HardwareAddr
}

// add files a claim; it returns true when the loop must be told.
func (w *claimWatch) add(c garp.Claim) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.addrs[c.Addr] || slices.ContainsFunc(w.ours, func(m net.HardwareAddr) bool { return bytes.Equal(m, c.MAC) }) {
		return false
	}
	if b := w.box[c.Addr]; b != nil {
		b.n++
		b.mac = c.MAC
	} else {
		w.box[c.Addr] = &claimBatch{n: 1, mac: c.MAC}
	}
	if w.posted {
		return false
	}
	w.posted = true
	return true
}

func (w *claimWatch) drop(reason string) {
	w.mu.Lock()
	w.dropped[reason]++
	w.mu.Unlock()
}

// take empties the box.
func (w *claimWatch) take() map[netip.Addr]*claimBatch {
	w.mu.Lock()
	defer w.mu.Unlock()
	box := w.box
	w.box, w.posted = map[netip.Addr]*claimBatch{}, false
	return box
}

// naDropped returns the neighbour advertisements the watches read that
// were no claim, by reason; nil when none.
func (e *Engine) naDropped() map[string]uint64 {
	var out map[string]uint64
	add := func(m map[string]uint64) {
		for r, n := range m {
			if out == nil {
				out = map[string]uint64{}
			}
			out[r] += n
		}
	}
	add(e.claims.dropped)
	for _, w := range e.claims.watches {
		w.mu.Lock()
		add(w.dropped)
		w.mu.Unlock()
	}
	return out
}

// watchClaims starts a watch on each interface and family of in's VIPs
// that has none, and has the watches look at in's VIPs (called when in
// becomes master, and when a reload gives a master new VIPs).
func (e *Engine) watchClaims(in *instance) {
	cw, ok := e.opts.Net.(ClaimWatcher)
	if !ok || e.wg == nil || e.bg == nil {
		return
	}
	if e.claims.watches == nil {
		e.claims.watches = map[claimKey]*claimWatch{}
		e.claims.dropped = map[string]uint64{}
	}
	for _, v := range in.allVIPs() {
		dev := v.Dev
		if dev == "" {
			dev = in.spec.Interface
		}
		li, ok := e.links[dev]
		if !ok {
			continue
		}
		k := claimKey{dev, v.Addr().Is6()}
		w := e.claims.watches[k]
		started := w != nil
		if !started {
			w = &claimWatch{addrs: map[netip.Addr]bool{}, box: map[netip.Addr]*claimBatch{}, dropped: map[string]uint64{}}
			e.claims.watches[k] = w
		}
		w.mu.Lock()
		w.addrs[v.Addr()] = true
		for _, m := range []net.HardwareAddr{li.MAC, in.spec.VMAC.MAC} {
			if len(m) > 0 && !slices.ContainsFunc(w.ours, func(o net.HardwareAddr) bool { return bytes.Equal(o, m) }) {
				w.ours = append(w.ours, m)
			}
		}
		w.mu.Unlock()
		if started {
			continue
		}
		wg, bg, events := e.wg, e.bg, e.events
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cw.WatchClaims(bg, li.Index, k.ipv6, func(c garp.Claim) {
				if w.add(c) {
					select {
					case events <- claimsReady{k}:
					case <-bg.Done():
					}
				}
			}, w.drop)
			select {
			case events <- claimWatchDone{k, err}:
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

// ours reports whether mac is this node's on dev: the interface's own, or
// a virtual MAC of an instance (use_vmac: the VMAC interface's MAC, which
// its NAs carry).
func (e *Engine) ours(dev string, mac net.HardwareAddr) bool {
	if li, ok := e.links[dev]; ok && bytes.Equal(mac, li.MAC) {
		return true
	}
	for _, in := range e.all() {
		if v := in.spec.VMAC; v.Name != "" && bytes.Equal(mac, v.MAC) {
			return true
		}
	}
	return false
}

// claimsTaken takes the claims a watch gathered and passes those of an
// address a master holds, by a MAC not ours, to the rule.
func (e *Engine) claimsTaken(now time.Time, ev claimsReady) {
	w := e.claims.watches[ev.k]
	if w == nil {
		return
	}
	for addr, b := range w.take() {
		if e.ours(ev.k.dev, b.mac) {
			continue
		}
		in := e.claimHolder(ev.k.dev, addr)
		if in == nil {
			continue
		}
		t := garp.Target{Addr: addr, Dev: ev.k.dev}
		v := e.claims.guard.Claimed(now, t, b.mac, b.n)
		in.conflicts += v.Count
		if v.Persists {
			e.log.Error("address conflict persists: another host keeps announcing a virtual address this master holds (a second master? VRRP blocked between them?); no longer answering it for a while",
				"instance", in.spec.VRRP.Name, "addr", addr, "dev", ev.k.dev, "their_mac", b.mac.String(), "answers", garp.MaxAnswers, "window", garp.Window)
		}
		if v.Answer {
			bg, events := e.bg, e.events
			time.AfterFunc(garp.AnswerDelay(now, in.lastPeerAdvert(), in.spec.VRRP.AdvertInt), func() {
				select {
				case events <- claimDefend{t}:
				case <-bg.Done():
				}
			})
		}
	}
	e.claims.guard.Forget(now)
}

func (e *Engine) defendClaim(now time.Time, d claimDefend) {
	n, mac, first := e.claims.guard.Due(d.t)
	if n == 0 || e.stopping {
		return
	}
	in := e.claimHolder(d.t.Dev, d.t.Addr)
	if in == nil {
		e.log.Debug("a claim of a virtual address came with a new master (this instance stepped down); not a conflict",
			"addr", d.t.Addr, "dev", d.t.Dev, "their_mac", mac.String())
		return
	}
	if garp.Leftover(first, in.lastPeerAdvert(), now, in.spec.VRRP.AdvertInt) {
		// The router that was master before this one, heard advertising
		// just before the claim and silent since: its claim may have moved
		// the LAN's caches, so the address is announced again, but it is
		// no conflict.
		in.leftovers += n
		e.log.Debug("a claim of a virtual address came right after the last advert of another router, silent since (a leftover of its master period); not a conflict, announcing the address again",
			"instance", in.spec.VRRP.Name, "addr", d.t.Addr, "dev", d.t.Dev, "their_mac", mac.String(), "claims", n, "leftovers", in.leftovers)
		e.announce(now, []garp.Send{{Target: d.t, Reason: garp.ReasonRefresh}})
		return
	}
	in.conflicts += n
	if li, ok := e.links[d.t.Dev]; ok && e.kernel.dadFailed[addrKey{li.Index, d.t.Addr}] {
		// The other host is the address's owner as far as the kernel
		// knows: announcing it would draw its traffic to an address that
		// accepts none here (see dadFailed).
		e.log.Debug("another host announces a virtual address that failed duplicate address detection here; not answering",
			"instance", in.spec.VRRP.Name, "addr", d.t.Addr, "dev", d.t.Dev, "their_mac", mac.String(), "conflicts", in.conflicts)
		return
	}
	e.log.Warn("address conflict: another host announces a virtual address this master holds; announcing it again",
		"instance", in.spec.VRRP.Name, "addr", d.t.Addr, "dev", d.t.Dev, "their_mac", mac.String(), "conflicts", in.conflicts)
	e.announce(now, []garp.Send{{Target: d.t, Reason: garp.ReasonRefresh}})
}

func (e *Engine) claimWatchEnded(ev claimWatchDone) {
	if w := e.claims.watches[ev.k]; w != nil {
		w.mu.Lock()
		for r, n := range w.dropped {
			e.claims.dropped[r] += n
		}
		w.mu.Unlock()
	}
	delete(e.claims.watches, ev.k)
	if ev.err != nil && !e.stopping {
		what := "ARP"
		if ev.k.ipv6 {
			what = "neighbour advertisement"
		}
		e.log.Warn(what+" watch ended; address conflicts on this interface are not seen until an instance becomes master there again", "dev", ev.k.dev, "err", ev.err)
	}
}
