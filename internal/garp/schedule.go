package garp

import (
	"net/netip"
	"slices"
	"time"
)

// Config is one instance's gratuitous ARP / NA settings, with keepalived's
// names. The config package resolves global defaults (vrrp_garp_master_*,
// vrrp_garp_lower_prio_*, vrrp_min_garp) into it.
type Config struct {
	// Repeat is garp_master_repeat: how many rounds (one packet per VIP per
	// round) to send on becoming master, and again after Delay.
	Repeat int
	// Delay is garp_master_delay: when to send the second burst after
	// becoming master; 0 sends none.
	Delay time.Duration
	// Refresh is garp_master_refresh: while master, a burst of RefreshRepeat
	// rounds every Refresh; 0 is off.
	Refresh       time.Duration
	RefreshRepeat int // garp_master_refresh_repeat
	// LowerPrioRepeat is garp_lower_prio_repeat: rounds sent, while master,
	// when an advert with a lower priority arrives (and again after
	// LowerPrioDelay); 0 is off.
	LowerPrioRepeat int
	LowerPrioDelay  time.Duration // garp_lower_prio_delay
}

// Target is one address to announce (a virtual_ipaddress or
// virtual_ipaddress_excluded entry) and the interface it lives on.
type Target struct {
	Addr netip.Addr
	Dev  string
}

// Reason says why a packet is sent; it labels logs and metrics.
type Reason uint8

// The reasons.
const (
	ReasonMaster         Reason = iota + 1 // becoming master
	ReasonMasterDelay                      // garp_master_delay after becoming master
	ReasonRefresh                          // garp_master_refresh
	ReasonLowerPrio                        // an advert with a lower priority arrived
	ReasonLowerPrioDelay                   // garp_lower_prio_delay after that
	ReasonMACChanged                       // an interface's MAC address changed
)

func (r Reason) String() string {
	switch r {
	case ReasonMaster:
		return "master"
	case ReasonMasterDelay:
		return "master-delay"
	case ReasonRefresh:
		return "refresh"
	case ReasonLowerPrio:
		return "lower-prio"
	case ReasonLowerPrioDelay:
		return "lower-prio-delay"
	case ReasonMACChanged:
		return "mac-changed"
	}
	return "unknown"
}

// Send is one gratuitous ARP (IPv4 target) or unsolicited NA (IPv6 target)
// to send.
type Send struct {
	Target
	// Index is the target's position in the instance's list; a Pacer sends
	// waiting packets in this order, as keepalived walks its VIP list.
	Index  int
	Reason Reason
}

type burst struct {
	at     time.Time
	rounds int
	reason Reason
}

// Schedule is the announcement plan of one instance for one period as
// master, as keepalived 2.2.7 runs it (vrrp.c vrrp_state_become_master,
// vrrp_state_master_tx, vrrp_send_link_update; vrrp_scheduler.c
// vrrp_gratuitous_arp_thread, vrrp_lower_prio_gratuitous_arp_thread):
//
//   - on becoming master, Repeat rounds at once; each round sends one packet
//     per target, in configuration order;
//   - Delay later, Repeat rounds again;
//   - every Refresh, RefreshRepeat rounds (keepalived checks this when it
//     sends an advert, so its refresh lands up to one advert_int after the
//     deadline; vigil sends at the deadline, then re-arms it Refresh later);
//   - on LowerPriority, LowerPrioRepeat rounds at once and again
//     LowerPrioDelay later (every call adds a burst, as keepalived does per
//     advert; the vrrp core reports lower-priority adverts at most once per
//     vrrp.AnswerGap, so a flood of forged ones adds ten bursts a second).
//
// The engine creates a Schedule when the instance becomes master (after
// sending its first advert and adding the VIPs) and drops it when the
// instance leaves master; keepalived sends nothing once the VIPs are gone.
// The packets of a burst go through the interface's Pacer when
// vrrp_garp_interval / vrrp_gna_interval are set.
//
// Schedule is a pure value: it reads no clock. It is not safe for concurrent
// use.
type Schedule struct {
	cfg       Config
	targets   []Target
	bursts    []burst // ordered by at
	refreshAt time.Time
}

// NewSchedule returns the schedule of an instance that became master at now.
// Its first burst is due at now.
func NewSchedule(cfg Config, targets []Target, now time.Time) *Schedule {
	s := &Schedule{cfg: cfg, targets: slices.Clone(targets)}
	s.add(burst{at: now, rounds: cfg.Repeat, reason: ReasonMaster})
	if cfg.Delay > 0 {
		s.add(burst{at: now.Add(cfg.Delay), rounds: cfg.Repeat, reason: ReasonMasterDelay})
	}
	if cfg.Refresh > 0 {
		s.refreshAt = now.Add(cfg.Refresh)
	}
	return s
}

func (s *Schedule) add(b burst) {
	if b.rounds <= 0 || len(s.targets) == 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(s.bursts, b.at, func(x burst, t time.Time) int {
		if x.at.After(t) {
			return 1
		}
		return -1 // equal times keep insertion order
	})
	s.bursts = slices.Insert(s.bursts, i, b)
}

// LowerPriority records that an advert with a lower priority than ours
// arrived at now while master (keepalived 2.2.7 vrrp.c vrrp_state_master_rx).
func (s *Schedule) LowerPriority(now time.Time) {
	if s.cfg.LowerPrioRepeat <= 0 {
		return
	}
	s.add(burst{at: now, rounds: s.cfg.LowerPrioRepeat, reason: ReasonLowerPrio})
	if s.cfg.LowerPrioDelay > 0 {
		s.add(burst{at: now.Add(s.cfg.LowerPrioDelay), rounds: s.cfg.LowerPrioRepeat, reason: ReasonLowerPrioDelay})
	}
}

// MACChanged records that the MAC address of dev changed at now while
// master: when a target lives on dev, Repeat rounds of every target at
// once, so that neighbours stop sending to the old address (keepalived
// 2.2.7 keepalived_netlink.c: "MAC Address changed from ... to ...", then
// vrrp_send_link_update for the masters on the interface).
// It reports whether it did.
func (s *Schedule) MACChanged(now time.Time, dev string) bool {
	if !slices.ContainsFunc(s.targets, func(t Target) bool { return t.Dev == dev }) {
		return false
	}
	s.add(burst{at: now, rounds: s.cfg.Repeat, reason: ReasonMACChanged})
	return true
}

// Next returns when something is next due, or the zero time if nothing ever
// will be.
func (s *Schedule) Next() time.Time {
	var next time.Time
	if len(s.bursts) > 0 {
		next = s.bursts[0].at
	}
	if !s.refreshAt.IsZero() && len(s.targets) > 0 && s.cfg.RefreshRepeat > 0 &&
		(next.IsZero() || s.refreshAt.Before(next)) {
		next = s.refreshAt
	}
	return next
}

// Due returns the packets due at now, in sending order, and forgets them.
func (s *Schedule) Due(now time.Time) []Send {
	var out []Send
	for len(s.bursts) > 0 && !s.bursts[0].at.After(now) {
		b := s.bursts[0]
		s.bursts = s.bursts[1:]
		out = s.rounds(out, b.rounds, b.reason)
	}
	if !s.refreshAt.IsZero() && !s.refreshAt.After(now) {
		out = s.rounds(out, s.cfg.RefreshRepeat, ReasonRefresh)
		// keepalived re-arms from the time it sent, not from the deadline.
		s.refreshAt = now.Add(s.cfg.Refresh)
	}
	return out
}

func (s *Schedule) rounds(out []Send, n int, r Reason) []Send {
	for range n {
		for i, t := range s.targets {
			out = append(out, Send{Target: t, Index: i, Reason: r})
		}
	}
	return out
}

// Pacer spaces the packets sent on one interface by vrrp_garp_interval
// (gratuitous ARPs) and vrrp_gna_interval (NAs), shared by every instance on
// that interface, as keepalived 2.2.7 does (vrrp_arp.c send_gratuitous_arp,
// vrrp_ndisc.c ndisc_send_unsolicited_na, vrrp_scheduler.c vrrp_arp_thread):
//
//   - with an interval of 0 every packet goes at once;
//   - otherwise a packet goes at once if none of its family went out within
//     the interval, else it waits; waiting packets go one per interval, in
//     the order of their Index (keepalived walks each instance's VIP list;
//     packets of several instances with equal indexes go in arrival order);
//   - keepalived marks a waiting address with a flag, so the repeats of an
//     address that is still waiting collapse into one packet: with an
//     interval set, a burst of 5 rounds over 2 VIPs sends 2 packets, not 10.
//
// Pacer is a pure value: it reads no clock. It is not safe for concurrent
// use.
type Pacer struct {
	garpInterval, gnaInterval time.Duration
	next4, next6              time.Time // earliest time the next packet may go
	queue                     []Send
}

// NewPacer returns the pacer of an interface.
func NewPacer(garpInterval, gnaInterval time.Duration) *Pacer {
	return &Pacer{garpInterval: garpInterval, gnaInterval: gnaInterval}
}

func (p *Pacer) slot(a netip.Addr) (*time.Time, time.Duration) {
	if a.Is4() {
		return &p.next4, p.garpInterval
	}
	return &p.next6, p.gnaInterval
}

// Offer hands the pacer packets that want to go at now. It returns what to
// send at once: waiting packets whose time has come first, then those of
// sends that may go now. The others wait for Due.
func (p *Pacer) Offer(now time.Time, sends []Send) []Send {
	out := p.Due(now)
	for _, s := range sends {
		next, interval := p.slot(s.Addr)
		if interval <= 0 {
			out = append(out, s)
			continue
		}
		if next.IsZero() || !now.Before(*next) {
			*next = now.Add(interval)
			out = append(out, s)
			continue
		}
		if !slices.ContainsFunc(p.queue, func(q Send) bool { return q.Target == s.Target }) {
			i := len(p.queue)
			for i > 0 && p.queue[i-1].Index > s.Index {
				i--
			}
			p.queue = slices.Insert(p.queue, i, s)
		}
	}
	return out
}

// Due returns the waiting packets that may go at now (at most one per
// family) and forgets them.
func (p *Pacer) Due(now time.Time) []Send {
	var out []Send
	for i := 0; i < len(p.queue); {
		s := p.queue[i]
		next, interval := p.slot(s.Addr)
		if now.Before(*next) {
			i++
			continue
		}
		*next = now.Add(interval)
		out = append(out, s)
		p.queue = slices.Delete(p.queue, i, i+1)
	}
	return out
}

// Next returns when a waiting packet is next due, or the zero time when none
// waits.
func (p *Pacer) Next() time.Time {
	var next time.Time
	for _, s := range p.queue {
		t, _ := p.slot(s.Addr)
		if next.IsZero() || t.Before(next) {
			next = *t
		}
	}
	return next
}

// Cancel forgets the waiting packets for which drop returns true: those of
// an instance that left master (keepalived 2.2.7 vrrp.c
// vrrp_remove_delayed_arp) or of a VIP that was removed.
func (p *Pacer) Cancel(drop func(Send) bool) {
	p.queue = slices.DeleteFunc(p.queue, drop)
}

// Pending returns how many packets wait.
func (p *Pacer) Pending() int { return len(p.queue) }
