// Package bgp announces virtual addresses to routers over BGP while this
// node serves them.
//
// The Planner is the pure part: from the states of the VRRP instances and
// virtual servers it is told about, it decides which prefixes to announce
// now, with which attributes, and why. It reads no clock (time comes in as
// an argument) and does no I/O. The Speaker runs the BGP speaker proper,
// GoBGP (github.com/osrg/gobgp/v4, package gobgp), which owns the sessions,
// in the vigil-bgp helper process (cmd/vigil-bgp) and talks to it over a
// socket (wire.go), so that the daemon links none of GoBGP; the Runtime
// ties the planner and the speaker together and to the daemon.
//
// What is announced:
//   - a vrrp_instance's virtual addresses (as /32 or /128) while it is
//     MASTER. A backup announces nothing: a path through a node that does
//     not hold the address would only draw traffic it must hand on, and
//     the router cannot prefer it before the master's path is gone anyway.
//   - a virtual_server's address while its quorum is up (anycast: several
//     directors announce it, the router spreads flows over them with ECMP).
//
// A prefix fed by several sources is announced while all of them are up.
//
// How a route leaves: when the reason is planned (the daemon stops, an
// instance hands over or is preempted and goes MASTER -> BACKUP, where it
// still forwards to the LAN), the route is first re-announced with the
// GRACEFUL_SHUTDOWN community (RFC 8326, 65535:0) and the graceful-shutdown
// MED, and withdrawn only after the delay, so routers move traffic to the
// other paths before this one goes (make before break). When the service
// here is broken (quorum lost, FAULT), the route is withdrawn at once.
package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// GracefulShutdown is the well-known GRACEFUL_SHUTDOWN community (RFC 8326
// §3: 65535:0).
const GracefulShutdown uint32 = 0xFFFF0000

// SourceKind says what decides a prefix.
type SourceKind string

const (
	FromVRRP          SourceKind = "vrrp_instance"
	FromVirtualServer SourceKind = "virtual_server"
)

// Source is one entry of the announce block: a VRRP instance (Name is the
// instance) or a virtual server (Name is its lb.VirtualServer ID, e.g.
// "[10.0.0.9]:tcp:80"), with the prefixes it decides.
type Source struct {
	Kind     SourceKind
	Name     string
	Prefixes []netip.Prefix
}

// Policy is the planner's configuration; values only, comparable by
// reflect.DeepEqual.
type Policy struct {
	MED         uint32
	Communities []uint32
	// ShutdownDelay is how long a leaving route stays announced with the
	// GRACEFUL_SHUTDOWN community and ShutdownMED before its withdrawal.
	ShutdownDelay time.Duration
	ShutdownMED   uint32
	Sources       []Source
}

// Phase is where a prefix is in its life.
type Phase string

const (
	Withdrawn Phase = "withdrawn"
	Announced Phase = "announced"
	// Draining: announced with GRACEFUL_SHUTDOWN until the delay ends.
	Draining Phase = "draining"
)

// Route is a prefix as the planner wants it now.
type Route struct {
	Prefix      netip.Prefix
	Phase       Phase
	MED         uint32
	Communities []uint32 // sorted
	// Reason says why, for people ("vrrp_instance VI_1 is MASTER").
	Reason string
	// Since is when the phase began; Until ends a Draining phase.
	Since, Until time.Time
}

// Equal reports whether two routes carry the same announcement (prefix,
// phase and attributes; not the reason or times).
func (r Route) Equal(o Route) bool {
	return r.Prefix == o.Prefix && r.Phase == o.Phase && r.MED == o.MED && slices.Equal(r.Communities, o.Communities)
}

// Event is an input of the planner.
type Event interface{ isEvent() }

// InstanceState reports a VRRP instance's state ("MASTER", "BACKUP",
// "FAULT", "INIT", "STOP", ...).
type InstanceState struct {
	Name, State string
}

// QuorumState reports whether a virtual server's quorum is up.
type QuorumState struct {
	VS string
	Up bool
}

// Stop starts a planned stop: every route drains, then is withdrawn, and
// nothing is announced again.
type Stop struct{}

// Hold drains and withdraws every route, as Stop does, until Release
// (`vigil handover` on a node, for maintenance; `--reclaim` releases).
type Hold struct{}

// Release ends a Hold: routes are announced again as their sources say.
type Release struct{}

// Tick is the passing of time (the planner's Deadline came).
type Tick struct{}

func (InstanceState) isEvent() {}
func (QuorumState) isEvent()   {}
func (Stop) isEvent()          {}
func (Tick) isEvent()          {}
func (Hold) isEvent()          {}
func (Release) isEvent()       {}

// sourceState is what the planner knows of one source.
type sourceState struct {
	known bool
	up    bool
	// graceful: when down, the route may drain (the node still forwards).
	graceful bool
	why      string
}

// Planner decides the announcements. Not safe for concurrent use; the
// Runtime owns one.
type Planner struct {
	pol     Policy
	sources map[sourceKey]*sourceState
	// told is the last state reported for every source, announced or
	// not: a source a new policy adds starts from it (SetPolicy).
	told     map[sourceKey]Event
	byPrefix map[netip.Prefix][]sourceKey
	prefixes []netip.Prefix // sorted
	routes   map[netip.Prefix]Route
	stopping bool
	held     bool
}

type sourceKey struct {
	kind SourceKind
	name string
}

// NewPlanner returns a planner with everything withdrawn.
func NewPlanner(pol Policy) *Planner {
	p := &Planner{told: map[sourceKey]Event{}}
	p.setPolicy(pol)
	for _, pf := range p.prefixes {
		p.routes[pf] = Route{Prefix: pf, Phase: Withdrawn, Reason: "not decided yet"}
	}
	return p
}

// setPolicy builds the sources and prefixes of pol, with no route.
func (p *Planner) setPolicy(pol Policy) {
	p.pol, p.sources, p.byPrefix, p.prefixes, p.routes = pol, map[sourceKey]*sourceState{}, map[netip.Prefix][]sourceKey{}, nil, map[netip.Prefix]Route{}
	p.pol.Communities = slices.Clone(pol.Communities)
	slices.Sort(p.pol.Communities)
	for _, s := range pol.Sources {
		k := sourceKey{s.Kind, s.Name}
		if p.sources[k] == nil {
			p.sources[k] = &sourceState{why: fmt.Sprintf("%s %s: state not known yet", s.Kind, s.Name)}
		}
		for _, pf := range s.Prefixes {
			pf = Host(pf.Addr())
			if !slices.Contains(p.byPrefix[pf], k) {
				if len(p.byPrefix[pf]) == 0 {
					p.prefixes = append(p.prefixes, pf)
				}
				p.byPrefix[pf] = append(p.byPrefix[pf], k)
			}
		}
	}
	slices.SortFunc(p.prefixes, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
}

// SetPolicy replaces the policy at now (a reload) and returns the routes
// whose announcement changed. A source the new policy keeps keeps its
// state; one it adds starts from the last state reported for it, so an
// instance that is already MASTER is announced at once. A prefix still
// announced keeps its phase and Since when its attributes are unchanged;
// a prefix the new policy drops is withdrawn at once (nothing decides it
// any more, so it cannot drain).
func (p *Planner) SetPolicy(now time.Time, pol Policy) []Route {
	old := p.routes
	p.setPolicy(pol)
	for _, pf := range p.prefixes {
		if r, ok := old[pf]; ok {
			p.routes[pf] = r
		} else {
			p.routes[pf] = Route{Prefix: pf, Phase: Withdrawn, Reason: "not decided yet"}
		}
	}
	for k, ev := range p.told {
		if p.sources[k] != nil {
			p.tell(ev)
		}
	}
	var changed []Route
	for pf, r := range old {
		if _, kept := p.routes[pf]; !kept && r.Phase != Withdrawn {
			changed = append(changed, Route{Prefix: pf, Phase: Withdrawn, Reason: "no longer in the bgp announce block", Since: now})
		}
	}
	slices.SortFunc(changed, func(a, b Route) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return append(changed, p.update(now)...)
}

// Host returns the host prefix of an address: /32 or /128.
func Host(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

// Step applies an event at now and returns the routes whose announcement
// changed (to announce again, or to withdraw).
func (p *Planner) Step(now time.Time, ev Event) []Route {
	switch ev := ev.(type) {
	case InstanceState:
		p.told[sourceKey{FromVRRP, ev.Name}] = ev
	case QuorumState:
		p.told[sourceKey{FromVirtualServer, ev.VS}] = ev
	}
	p.tell(ev)
	return p.update(now)
}

// tell applies an event to the sources' states.
func (p *Planner) tell(ev Event) {
	switch ev := ev.(type) {
	case InstanceState:
		if s := p.sources[sourceKey{FromVRRP, ev.Name}]; s != nil {
			s.known = true
			s.up = ev.State == "MASTER"
			// RFC 5798 MASTER -> BACKUP happens on a handover or a
			// preemption: this node is alive on the LAN and forwards to
			// the new master, so its route can drain. FAULT, STOP and
			// INIT mean the node cannot serve.
			s.graceful = ev.State == "BACKUP"
			s.why = fmt.Sprintf("vrrp_instance %s is %s", ev.Name, ev.State)
		}
	case QuorumState:
		if s := p.sources[sourceKey{FromVirtualServer, ev.VS}]; s != nil {
			s.known, s.up, s.graceful = true, ev.Up, false
			if ev.Up {
				s.why = fmt.Sprintf("virtual_server %s has its quorum", ev.VS)
			} else {
				s.why = fmt.Sprintf("virtual_server %s lost its quorum", ev.VS)
			}
		}
	case Stop:
		p.stopping = true
	case Hold:
		p.held = true
	case Release:
		p.held = false
	}
}

// update recomputes every route and returns those that changed.
func (p *Planner) update(now time.Time) []Route {
	var changed []Route
	for _, pf := range p.prefixes {
		old := p.routes[pf]
		want, graceful, why := p.wanted(pf)
		r := old
		switch {
		case want:
			r = Route{Prefix: pf, Phase: Announced, MED: p.pol.MED, Communities: p.pol.Communities, Reason: why, Since: old.Since}
			if old.Phase != Announced {
				r.Since = now
			}
		case old.Phase == Announced && graceful && p.pol.ShutdownDelay > 0:
			r = Route{Prefix: pf, Phase: Draining, MED: p.pol.ShutdownMED, Communities: p.drainCommunities(),
				Reason: why + "; graceful shutdown", Since: now, Until: now.Add(p.pol.ShutdownDelay)}
		case old.Phase == Draining && graceful && now.Before(old.Until):
			// keep draining until the delay ends
		default:
			r = Route{Prefix: pf, Phase: Withdrawn, Reason: why, Since: old.Since}
			if old.Phase != Withdrawn {
				r.Since = now
			}
		}
		if r.Phase == Withdrawn && old.Phase == Withdrawn {
			r.Since = old.Since
		}
		p.routes[pf] = r
		if !r.Equal(old) {
			changed = append(changed, r)
		}
	}
	return changed
}

// wanted says whether a prefix should be announced, and when not whether
// it may drain, with the reason.
func (p *Planner) wanted(pf netip.Prefix) (want, graceful bool, why string) {
	if p.stopping {
		return false, true, "vigil stopping"
	}
	if p.held {
		return false, true, "handed over (vigil handover; --reclaim announces again)"
	}
	want, graceful = true, true
	var whys []string
	for _, k := range p.byPrefix[pf] {
		s := p.sources[k]
		if !s.known || !s.up {
			if want {
				whys = whys[:0]
			}
			want = false
			graceful = graceful && s.known && s.graceful
			whys = append(whys, s.why)
		} else if want {
			whys = append(whys, s.why)
		}
	}
	why = whys[0]
	for _, w := range whys[1:] {
		why += "; " + w
	}
	return want, graceful, why
}

func (p *Planner) drainCommunities() []uint32 {
	cs := append(slices.Clone(p.pol.Communities), GracefulShutdown)
	slices.Sort(cs)
	return slices.Compact(cs)
}

// Deadline is when the planner next needs a Tick (the end of the first
// drain), or the zero time.
func (p *Planner) Deadline() time.Time {
	var d time.Time
	for _, r := range p.routes {
		if r.Phase == Draining && (d.IsZero() || r.Until.Before(d)) {
			d = r.Until
		}
	}
	return d
}

// Routes returns every prefix's route, sorted by address.
func (p *Planner) Routes() []Route {
	out := make([]Route, 0, len(p.prefixes))
	for _, pf := range p.prefixes {
		out = append(out, p.routes[pf])
	}
	return out
}

// Announcing reports whether some route is announced or draining.
func (p *Planner) Announcing() bool {
	for _, r := range p.routes {
		if r.Phase != Withdrawn {
			return true
		}
	}
	return false
}
