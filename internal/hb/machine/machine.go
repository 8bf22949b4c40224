// Package machine is the pure part of heartbeat-style (Linux-HA 3.0,
// haresources) clusters: membership over several media and the resource
// groups of haresources that move between two nodes, as a Machine (events
// and time in, actions out; no clock, no I/O, no goroutines). The runtime
// that drives it is internal/hb. The Machine follows
// heartbeat 3.0.6's nice_failback resource protocol (heartbeat/hb_resource.c)
// so that a vigil node and a heartbeat node can share a cluster:
//
//   - at start a node sends t=starting; the other answers t=resource with
//     what it holds (rsc_hold none|local|foreign|all, isstable);
//   - once the other side is stable, a node takes its LOCAL resources (the
//     groups whose home, the first word of the haresources line, is this
//     node) unless the other holds them (req_our_resources);
//   - a node that is silent on every medium for deadtime is dead: the
//     survivor takes every resource (mach_down);
//   - a node stopping gracefully releases everything, says so
//     (t=resource rsc_hold=none info=shutdown) and sends t=shutdone; the
//     other takes over at once;
//   - hand-overs between live nodes (auto_failback, ipfail, a resource that
//     fails to start) use the three-phase standby exchange
//     (t=ask_resources info=me / other / done; ask_for_resources).
//
// Resource management is for two nodes, as with heartbeat's haresources;
// membership works for any number of nodes.
//
// Concurrency: a Machine is not safe for concurrent use; the Node runtime
// (internal/hb) owns it.
package machine

import (
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/internal/pace"
)

// Rsc is a set of resource classes as heartbeat names them, relative to
// the node that speaks: LOCAL groups have it as their home node, FOREIGN
// groups the other node (hb_resource.c rsc_msg[]).
type Rsc int

const (
	RscNone    Rsc = 0
	RscLocal   Rsc = 1
	RscForeign Rsc = 2
	RscAll     Rsc = 3
)

func (r Rsc) String() string { return [...]string{"none", "local", "foreign", "all"}[r&3] }

// ParseRsc reads heartbeat's rsc_hold value.
func ParseRsc(s string) (Rsc, bool) {
	switch s {
	case "none":
		return RscNone, true
	case "local":
		return RscLocal, true
	case "foreign":
		return RscForeign, true
	case "all":
		return RscAll, true
	}
	return RscNone, false
}

// mirror converts a set seen by the other node into our view.
func (r Rsc) mirror() Rsc { return (r&RscLocal)<<1 | (r&RscForeign)>>1 }

// NodeStatus is a node's status as heartbeat reports it (cl_status).
type NodeStatus string

const (
	StatusInit   NodeStatus = "init"
	StatusUp     NodeStatus = "up"
	StatusActive NodeStatus = "active"
	StatusDead   NodeStatus = "dead"
)

// Config is what the machine needs from ha.cf and haresources.
type Config struct {
	Self  string
	Peers []string // the other nodes
	// Media names, indexed as in the Heartbeat event.
	Media        []string
	Keepalive    time.Duration
	Deadtime     time.Duration
	Warntime     time.Duration
	Initdead     time.Duration
	AutoFailback bool
	// Groups in haresources order; Local reports whether the group's home
	// is Self.
	Groups []GroupSpec
	// PingNodes is the number of ping nodes and groups: with any, ipfail
	// behaviour is on.
	PingNodes int
}

// GroupSpec is one resource group.
type GroupSpec struct {
	Name  string
	Local bool
}

// Event is an input to Step.
type Event interface{ event() }

// Start begins operation: the machine sends t=starting and waits.
type Start struct{}

// Stop asks for a graceful stop: release everything, tell the other.
type Stop struct{}

// Tick is time passing (the runtime's timer fired at Deadline()).
type Tick struct{}

// Heard is an authenticated packet of a peer's, received on a medium. Every
// packet counts as a heartbeat for the medium (heartbeat's
// process_clustermsg updates the link on any message); Status is set for
// t=status messages that are not duplicates, the only ones that keep the
// node itself alive.
type Heard struct {
	Node   string
	Medium int
	Status NodeStatus // "" when the message was not a status
	// PingUp is the number of ping nodes the peer reaches, -1 if unknown
	// (heartbeat peers do not say).
	PingUp int
}

// PeerStarting is a peer's t=starting.
type PeerStarting struct{ Node string }

// PeerResources is a peer's t=resource: what it holds, in its own view.
type PeerResources struct {
	Node      string
	Holds     Rsc
	Stable    bool
	HasStable bool
	Info      string
}

// PeerShutdone is a peer's t=shutdone: it released everything and stops.
type PeerShutdone struct{ Node string }

// AskResources is t=ask_resources: the standby exchange (Info me, other,
// done). Rsc is in the sender's view.
type AskResources struct {
	Node string
	Info string
	Rsc  Rsc
}

// PingChanged reports how many ping nodes/groups we reach.
type PingChanged struct{ Up int }

// Done reports that the runtime finished acquiring or releasing a group.
type Done struct {
	Group   string
	Acquire bool
	Err     error
}

func (Start) event()         {}
func (Stop) event()          {}
func (Tick) event()          {}
func (Heard) event()         {}
func (PeerStarting) event()  {}
func (PeerResources) event() {}
func (PeerShutdone) event()  {}
func (AskResources) event()  {}
func (PingChanged) event()   {}
func (Done) event()          {}

// Action is an output of Step.
type Action interface{ action() }

// SendStatus: send our t=status (keepalive).
type SendStatus struct{ Status NodeStatus }

// SendStarting: t=starting.
type SendStarting struct{}

// SendResources: t=resource rsc_hold=Holds rtype=full isstable=Stable [info=Info].
type SendResources struct {
	Holds  Rsc
	Stable bool
	Info   string
}

// SendAsk: t=ask_resources rsc_hold=Rsc info=Info.
type SendAsk struct {
	Info string
	Rsc  Rsc
}

// SendShutdone: t=shutdone.
type SendShutdone struct{}

// Acquire starts a group's resources in order.
type Acquire struct{ Group string }

// Release stops a group's resources in reverse order.
type Release struct{ Group string }

// NodeChanged: a peer's status changed.
type NodeChanged struct {
	Node   string
	Status NodeStatus
}

// LinkChanged: a medium to a peer went up or dead.
type LinkChanged struct {
	Node   string
	Medium string
	Up     bool
}

// Log is something heartbeat would log (late heartbeat, takeover, ...).
type Log struct {
	Warn bool
	Msg  string
}

// Stopped: the graceful stop finished; the runtime may exit.
type Stopped struct{}

func (SendStatus) action()    {}
func (SendStarting) action()  {}
func (SendResources) action() {}
func (SendAsk) action()       {}
func (SendShutdone) action()  {}
func (Acquire) action()       {}
func (Release) action()       {}
func (NodeChanged) action()   {}
func (LinkChanged) action()   {}
func (Log) action()           {}
func (Stopped) action()       {}

type phase int

const (
	phaseIdle     phase = iota // before Start
	phaseStarting              // sent t=starting, waiting for a stable peer or initdead
	phaseStable
	phaseStopping
	phaseStopped
)

// standby exchange state (hb_resource.c enum standby).
type standby int

const (
	sbNot   standby = iota
	sbMe            // we asked to give Rsc away
	sbOther         // the peer asked to give Rsc to us
	sbDone          // we acquired; waiting to finish
	// sbReleased: we gave Rsc away and said done; the peer's done (it
	// acquired them) ends the exchange (heartbeat: DONE after "Local
	// standby process completed").
	sbReleased
)

type peer struct {
	name       string
	status     NodeStatus
	heard      bool
	lastStatus time.Time
	lastMed    []time.Time
	linkUp     []bool
	holds      Rsc // in OUR view
	reported   bool
	stable     bool
	pingUp     int
	// asks counts the t=starting sent since it came back into view
	// without a report in reply; askedAt is the last.
	asks    int
	askedAt time.Time
}

type groupState struct {
	spec GroupSpec
	held bool // acquired (or being acquired): what the last action asked
	// pending counts the Acquire/Release actions not yet Done. The runtime
	// runs them one at a time in order, so a release asked for during an
	// acquisition (a stop, a standby) is queued behind it: the group is
	// settled only when every one of them is Done, not at the first Done.
	pending int
	failed  bool // last acquire failed: do not retry while the peer lives
}

func (g *groupState) busy() bool { return g.pending > 0 }

// Machine is the membership and resource state machine of one node.
type Machine struct {
	cfg      Config
	started  time.Time
	ph       phase
	peers    []*peer
	groups   []*groupState
	nextSend time.Time
	sb       standby
	sbRsc    Rsc // in our view: what moves
	sbSince  time.Time
	// askLogAt and askHeld rate-limit the lines about standby messages
	// ignored (ignoredAsk): a peer, or a forger, repeating one must not
	// write one line per message.
	askLogAt time.Time
	askHeld  uint64
	pingUp   int
	rscrcvd  time.Time // starting, and the peer reported while unstable
	// claimed are the classes taken (acquired, not since released), and
	// groupless the classes with no group: heartbeat's i_hold_resources
	// is such a claim, made for a class whatever groups it has
	// (req_our_resources sets HB_LOCAL_RSC with no local group), so a
	// class without groups is reported held while claimed.
	claimed, groupless Rsc
	// pending actions after a set of groups finish
	afterRelease func(now time.Time) []Action
	afterAcquire func(now time.Time) []Action
}

// standbyTimeout bounds a standby exchange (hb_resource.c
// HB_STANDBY_RSC_TO_MS is 20 minutes for resource scripts; vigil aborts an
// exchange whose peer went silent sooner, at deadtime*4).
func (m *Machine) standbyTimeout() time.Duration { return 4 * m.cfg.Deadtime }

// rqstDelay is how long two nodes that started together wait before taking
// their local resources (heartbeat.h RQSTDELAY, 10 s; shorter when deadtime
// is, so scaled-down timings stay scaled).
func (m *Machine) rqstDelay() time.Duration { return min(10*time.Second, m.cfg.Deadtime) }

// New returns a machine; it does nothing until Start.
func New(cfg Config) *Machine {
	m := &Machine{cfg: cfg, pingUp: -1, groupless: RscAll}
	for _, p := range cfg.Peers {
		m.peers = append(m.peers, &peer{name: p, status: StatusInit, lastMed: make([]time.Time, len(cfg.Media)), linkUp: make([]bool, len(cfg.Media)), pingUp: -1})
	}
	for _, g := range cfg.Groups {
		m.groups = append(m.groups, &groupState{spec: g})
		m.groupless &^= class(g)
	}
	return m
}

// Holds returns the classes we hold (in our view): those whose groups are
// all up, and those without groups that we claimed.
func (m *Machine) Holds() Rsc {
	r := m.claimed & m.groupless
	for _, g := range m.groups {
		if g.held && !g.busy() {
			r |= class(g.spec)
		}
	}
	return r
}

func class(g GroupSpec) Rsc {
	if g.Local {
		return RscLocal
	}
	return RscForeign
}

// Status is the node's own status as its snapshot reports it: up while
// starting, active once stable (and while stopping), dead otherwise.
func (m *Machine) Status() NodeStatus {
	switch m.ph {
	case phaseStarting:
		return StatusUp
	case phaseStable, phaseStopping:
		return StatusActive
	}
	return StatusDead
}

// PeerHolds reports whether peer, by the resources it last said it holds
// (in its own view, so mirrored), holds group g.
func PeerHolds(peer PeerState, g GroupState) bool {
	r, _ := ParseRsc(peer.Holds)
	return r.mirror()&class(GroupSpec{Local: g.Local}) != 0
}

// Held reports whether a group is held (acquired and not being released).
func (m *Machine) Held(group string) bool {
	for _, g := range m.groups {
		if g.spec.Name == group {
			return g.held
		}
	}
	return false
}

// PeerStatus returns a peer's status.
func (m *Machine) PeerStatus(name string) NodeStatus {
	if p := m.peer(name); p != nil {
		return p.status
	}
	return ""
}

func (m *Machine) peer(name string) *peer {
	for _, p := range m.peers {
		if p.name == name {
			return p
		}
	}
	return nil
}

// other is the resource partner (the first peer): haresources is a
// two-node affair.
func (m *Machine) other() *peer {
	if len(m.peers) == 0 {
		return nil
	}
	return m.peers[0]
}

func (m *Machine) otherAlive() bool {
	o := m.other()
	return o != nil && o.status != StatusDead && o.status != StatusInit && o.heard
}

// Deadline is when Step wants a Tick next.
func (m *Machine) Deadline() time.Time {
	if m.ph == phaseIdle || m.ph == phaseStopped {
		return time.Time{}
	}
	d := m.nextSend
	consider := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	for _, p := range m.peers {
		if p.status == StatusDead {
			continue
		}
		if !p.heard {
			consider(m.started.Add(m.cfg.Initdead))
			continue
		}
		consider(p.lastStatus.Add(m.cfg.Deadtime))
		for i, t := range p.lastMed {
			if p.linkUp[i] {
				consider(t.Add(m.cfg.Deadtime))
			}
		}
	}
	if m.sb != sbNot {
		consider(m.sbSince.Add(m.standbyTimeout()))
	}
	if m.ph == phaseStarting && !m.rscrcvd.IsZero() {
		consider(m.rscrcvd.Add(m.rqstDelay()))
	}
	return d
}

// Step applies one event at time now.
func (m *Machine) Step(now time.Time, ev Event) []Action {
	var out []Action
	switch e := ev.(type) {
	case Start:
		if m.ph != phaseIdle {
			return nil
		}
		m.started, m.ph = now, phaseStarting
		m.nextSend = now.Add(m.cfg.Keepalive)
		out = append(out, SendStatus{Status: StatusUp}, SendStarting{})
		// hb_resource.c comm_up_resource_action: with no peer at all there
		// is nobody to wait for.
		if len(m.peers) == 0 {
			out = append(out, m.becomeStable(now)...)
		}
	case Stop:
		out = append(out, m.stop(now)...)
	case Tick:
		out = append(out, m.tick(now)...)
	case Heard:
		out = append(out, m.heard(now, e)...)
	case PeerStarting:
		out = append(out, m.peerStarting(now, e)...)
	case PeerResources:
		out = append(out, m.peerResources(now, e)...)
	case PeerShutdone:
		out = append(out, m.peerShutdone(now, e)...)
	case AskResources:
		out = append(out, m.ask(now, e)...)
	case PingChanged:
		m.pingUp = e.Up
		out = append(out, m.autoFailback(now)...)
		out = append(out, m.ipfail(now)...)
	case Done:
		out = append(out, m.done(now, e)...)
	}
	return out
}

func (m *Machine) active() bool { return m.ph == phaseStarting || m.ph == phaseStable }

func (m *Machine) tick(now time.Time) []Action {
	var out []Action
	if !m.active() && m.ph != phaseStopping {
		return nil
	}
	if !now.Before(m.nextSend) {
		st := StatusActive
		if m.ph == phaseStarting {
			st = StatusUp
		}
		out = append(out, SendStatus{Status: st})
		m.nextSend = now.Add(m.cfg.Keepalive)
	}
	for _, p := range m.peers {
		if p.status == StatusDead {
			continue
		}
		// Per-medium link death (heartbeat.c check_for_timeouts: a link is
		// dead when silent for deadtime).
		for i := range p.lastMed {
			if p.linkUp[i] && now.Sub(p.lastMed[i]) >= m.cfg.Deadtime {
				p.linkUp[i] = false
				out = append(out, LinkChanged{Node: p.name, Medium: m.cfg.Media[i], Up: false})
			}
		}
		dead := false
		switch {
		case !p.heard && now.Sub(m.started) >= m.cfg.Initdead:
			// initdead: a node never heard since start is declared dead
			// once initdead has passed.
			dead = true
		case p.heard && now.Sub(p.lastStatus) >= m.cfg.Deadtime:
			// deadtime: silent on every medium.
			dead = true
		}
		if dead {
			out = append(out, m.peerDead(now, p)...)
		}
	}
	if m.ph == phaseStarting && !m.rscrcvd.IsZero() && !now.Before(m.rscrcvd.Add(m.rqstDelay())) {
		// heartbeat.c polled_input_dispatch: RSCRCVD for RQSTDELAY, both
		// starting: take our local resources unless the other holds them.
		m.ph = phaseStable
		if o := m.other(); o == nil || o.holds&RscLocal == 0 {
			out = append(out, m.acquire(now, RscLocal)...)
		}
		out = append(out, Log{Msg: "local resource transition completed."}, m.sendHeld(true, ""))
	}
	if m.sb != sbNot && now.Sub(m.sbSince) >= m.standbyTimeout() {
		out = append(out, Log{Warn: true, Msg: "no reply to standby request: standby request cancelled"})
		m.sb = sbNot
	}
	return out
}

func (m *Machine) heard(now time.Time, e Heard) []Action {
	p := m.peer(e.Node)
	if p == nil || e.Medium < 0 || e.Medium >= len(m.cfg.Media) {
		return nil
	}
	var out []Action
	if e.Status != "" && p.heard && p.status != StatusDead {
		// heartbeat.c HBDoMsg_T_STATUS: late heartbeat warning.
		if gap := now.Sub(p.lastStatus); gap > m.cfg.Warntime {
			out = append(out, Log{Warn: true, Msg: fmt.Sprintf("Late heartbeat: Node %s: interval %d ms", p.name, gap.Milliseconds())})
		}
	}
	if !p.linkUp[e.Medium] {
		p.linkUp[e.Medium] = true
		out = append(out, LinkChanged{Node: p.name, Medium: m.cfg.Media[e.Medium], Up: true})
	}
	p.lastMed[e.Medium] = now
	if e.Status != "" || !p.heard {
		// heartbeat.c: a node lives by its status messages
		// (HBDoMsg_T_STATUS sets local_lastupdate, which
		// check_for_timeouts reads); other messages, duplicates and
		// replays among them, keep only a link up.
		p.lastStatus = now
	}
	p.heard = true
	pingChanged := e.PingUp >= 0 && e.PingUp != p.pingUp
	if e.PingUp >= 0 {
		p.pingUp = e.PingUp
	}
	if e.Status != "" && e.Status != p.status {
		was := p.status
		p.status = e.Status
		out = append(out, NodeChanged{Node: p.name, Status: e.Status})
		if was == StatusDead {
			// The peer is back: it restarted (it will send t=starting) or a
			// partition healed. Its resource report is stale until it
			// speaks again.
			p.reported, p.stable, p.holds = false, false, RscNone
			if m.active() && p == m.other() {
				if m.ph == phaseStable {
					// Ask for its report: a peer that took nothing over
					// while we were apart (heartbeat, which held
					// everything all along) has no reason to send one,
					// and both would keep what both hold. heartbeat
					// answers t=starting with its rsc_hold in any stable
					// state (hb_resource.c process_resources).
					p.asks, p.askedAt = 1, now
					out = append(out, SendStarting{})
				}
				out = append(out, m.sendHeld(m.ph == phaseStable, ""))
			}
		}
	} else if e.Status != "" && p.asks > 0 && p.asks < maxAsks && !p.reported && m.ph == phaseStable &&
		p == m.other() && now.Sub(p.askedAt) >= 2*m.cfg.Keepalive {
		// No report yet: heartbeat may have taken the first t=starting
		// before the status that brought us back into its view.
		p.asks++
		p.askedAt = now
		out = append(out, SendStarting{}, m.sendHeld(true, ""))
	}
	if pingChanged {
		out = append(out, m.autoFailback(now)...)
		out = append(out, m.ipfail(now)...)
	}
	return out
}

// maxAsks bounds the t=starting sent to a peer back in view that does
// not report what it holds.
const maxAsks = 4

func (m *Machine) peerDead(now time.Time, p *peer) []Action {
	p.status = StatusDead
	for i := range p.linkUp {
		if p.linkUp[i] {
			p.linkUp[i] = false
		}
	}
	p.holds, p.reported, p.stable = RscNone, false, false
	out := []Action{NodeChanged{Node: p.name, Status: StatusDead}, Log{Warn: true, Msg: fmt.Sprintf("node %s: is dead", p.name)}}
	if p != m.other() || !m.active() {
		return out
	}
	m.sb = sbNot
	for _, g := range m.groups {
		g.failed = false
	}
	// mach_down: take over the dead node's resources, and ours.
	out = append(out, Log{Msg: fmt.Sprintf("Resources being acquired from %s.", p.name)})
	out = append(out, m.acquire(now, RscAll)...)
	if m.ph == phaseStarting {
		m.ph = phaseStable
	}
	out = append(out, m.sendHeld(true, "mach_down"))
	return out
}

func (m *Machine) becomeStable(now time.Time) []Action {
	m.ph = phaseStable
	return m.acquire(now, RscLocal)
}

func (m *Machine) peerStarting(now time.Time, e PeerStarting) []Action {
	p := m.peer(e.Node)
	if p == nil || p != m.other() || !m.active() {
		return nil
	}
	// hb_resource.c process_resources: T_STARTING from the other side
	// makes it unstable; answer with what we hold.
	p.stable, p.reported, p.holds = false, false, RscNone
	if m.sb != sbNot {
		m.sb = sbNot
	}
	return []Action{m.sendHeld(m.ph == phaseStable, "")}
}

func (m *Machine) peerResources(now time.Time, e PeerResources) []Action {
	p := m.peer(e.Node)
	if p == nil || p != m.other() {
		return nil
	}
	p.holds = e.Holds.mirror()
	p.reported, p.asks = true, 0
	if e.HasStable {
		p.stable = e.Stable
	}
	if e.Info == "shutdown" {
		p.holds = RscNone
	}
	var out []Action
	if !m.active() {
		return nil
	}
	if r := m.releaseShared(now); r != nil {
		return r
	}
	if m.ph == phaseStarting && !p.stable && m.rscrcvd.IsZero() {
		m.rscrcvd = now
	}
	if m.ph == phaseStarting && p.stable {
		// req_our_resources: take our local resources unless the other
		// side already holds them.
		m.ph = phaseStable
		if p.holds&RscLocal == 0 {
			out = append(out, m.acquire(now, RscLocal)...)
		}
		out = append(out, m.sendHeld(true, ""))
		out = append(out, m.autoFailback(now)...)
		return out
	}
	if m.ph == phaseStable && p.stable {
		// Nobody holds a class while both are up and stable: its home takes
		// it (the other took it back, or released it after a failure).
		if p.holds&RscLocal == 0 && m.Holds()&RscLocal == 0 && m.sb == sbNot {
			out = append(out, m.acquire(now, RscLocal)...)
			if len(out) == 0 && m.Holds()&RscLocal != 0 {
				// A class without groups: no Done will report it.
				out = append(out, m.sendHeld(true, ""))
			}
		}
		out = append(out, m.autoFailback(now)...)
		out = append(out, m.ipfail(now)...)
	}
	return out
}

// releaseShared resolves a healed partition: when the other node says it
// holds a class we hold too, the node that is not the home of the class
// releases it (heartbeat restarts itself instead, heartbeat.c
// should_drop_message "returning after partition"). It returns nil when
// nothing is shared.
func (m *Machine) releaseShared(now time.Time) []Action {
	p := m.other()
	if p == nil || !p.reported || m.sb != sbNot {
		return nil
	}
	if p.holds&m.Holds()&RscForeign == 0 {
		return nil
	}
	out := []Action{Log{Warn: true, Msg: fmt.Sprintf("%s also holds our foreign resources: releasing them", p.name)}}
	out = append(out, m.release(now, RscForeign, nil)...)
	return append(out, m.sendHeld(m.ph == phaseStable, ""))
}

func (m *Machine) peerShutdone(now time.Time, e PeerShutdone) []Action {
	p := m.peer(e.Node)
	if p == nil || p != m.other() || !m.active() {
		return nil
	}
	// process_resources T_SHUTDONE: take over immediately.
	p.holds, p.stable, p.reported = RscNone, true, true
	m.sb = sbNot
	out := []Action{Log{Msg: fmt.Sprintf("%s is shutting down: taking over its resources", p.name)}}
	out = append(out, m.acquire(now, RscAll)...)
	m.ph = phaseStable
	out = append(out, m.sendHeld(true, ""))
	return out
}

// autoFailback: we hold the other node's (foreign) resources, it is up and
// stable: give them back (hb_resource.c PerformAutoFailback). With ping
// nodes, not to a node that reaches fewer of them than we do.
func (m *Machine) autoFailback(now time.Time) []Action {
	o := m.other()
	if !m.cfg.AutoFailback || m.ph != phaseStable || m.sb != sbNot || o == nil || !m.otherAlive() || !o.stable {
		return nil
	}
	if m.Holds()&RscForeign == 0 || m.busy() {
		return nil
	}
	if m.cfg.PingNodes > 0 && o.pingUp >= 0 && m.pingUp >= 0 && o.pingUp < m.pingUp {
		return nil
	}
	return m.goStandby(now, RscForeign, "auto_failback")
}

// ipfail: with ping nodes, the node that reaches fewer of them than the
// other gives it what it holds (heartbeat's ipfail client: "giving up
// resources" through hb_standby).
func (m *Machine) ipfail(now time.Time) []Action {
	o := m.other()
	if m.cfg.PingNodes == 0 || m.ph != phaseStable || m.sb != sbNot || o == nil || !m.otherAlive() || !o.stable {
		return nil
	}
	if o.pingUp < 0 || m.pingUp < 0 || m.pingUp >= o.pingUp || m.busy() {
		return nil
	}
	held := m.Holds()
	if held == RscNone {
		return nil
	}
	return m.goStandby(now, held, fmt.Sprintf("ipfail: we reach %d ping node(s), %s reaches %d", m.pingUp, o.name, o.pingUp))
}

func (m *Machine) goStandby(now time.Time, r Rsc, why string) []Action {
	m.sb, m.sbRsc, m.sbSince = sbMe, r, now
	return []Action{Log{Msg: fmt.Sprintf("giving up %s resources (%s)", r, why)}, SendAsk{Info: "me", Rsc: r}}
}

func (m *Machine) anyFailed() bool {
	for _, g := range m.groups {
		if g.failed {
			return true
		}
	}
	return false
}

func (m *Machine) busy() bool {
	for _, g := range m.groups {
		if g.busy() {
			return true
		}
	}
	return false
}

// askLogEvery is the least time between two lines about ignored standby
// messages.
const askLogEvery = 10 * time.Second

// ignoredAsk logs msg unless a line about an ignored standby message went
// out less than askLogEvery ago; the next line says how many it held back.
func (m *Machine) ignoredAsk(now time.Time, msg string) []Action {
	if !pace.Allow(&m.askLogAt, now, askLogEvery) {
		m.askHeld++
		return nil
	}
	if m.askHeld > 0 {
		msg = fmt.Sprintf("%s (and %d more ignored since the last line)", msg, m.askHeld)
		m.askHeld = 0
	}
	return []Action{Log{Warn: true, Msg: msg}}
}

// ask handles t=ask_resources from the peer (hb_resource.c
// ask_for_resources; our own messages do not come back to us).
func (m *Machine) ask(now time.Time, e AskResources) []Action {
	p := m.peer(e.Node)
	if p == nil || p != m.other() || !m.active() {
		return nil
	}
	var out []Action
	switch m.sb {
	case sbNot:
		if e.Info != "me" {
			return m.ignoredAsk(now, fmt.Sprintf("ignored standby message %q from %s", e.Info, e.Node))
		}
		if m.ph != phaseStable || m.busy() {
			return m.ignoredAsk(now, fmt.Sprintf("standby message from %s ignored: local resources in flux", e.Node))
		}
		// The other wants to go standby: tell it we can take them.
		m.sb, m.sbRsc, m.sbSince = sbOther, e.Rsc.mirror(), now
		p.stable = false
		out = append(out, Log{Msg: fmt.Sprintf("%s wants to go standby [%s]", e.Node, e.Rsc)}, SendAsk{Info: "other", Rsc: e.Rsc})
	case sbMe:
		if e.Info != "other" {
			return m.ignoredAsk(now, fmt.Sprintf("ignored standby message %q from %s", e.Info, e.Node))
		}
		// The other can take them: release, then say done.
		r := m.sbRsc
		m.sbSince = now
		out = append(out, Log{Msg: fmt.Sprintf("standby: %s can take our %s resources", e.Node, r)})
		out = append(out, m.release(now, r, func(now time.Time) []Action {
			if m.sb == sbMe {
				m.sb, m.sbSince = sbReleased, now
			}
			return []Action{Log{Msg: fmt.Sprintf("Local standby process completed [%s].", r)}, SendAsk{Info: "done", Rsc: r}, m.sendHeld(true, "")}
		})...)
	case sbOther:
		if e.Info != "done" {
			return nil
		}
		r := m.sbRsc
		m.sbSince = now
		p.holds &^= r
		// heartbeat names the resources as the node going standby does
		// (the rsc of its messages): e.Rsc is r seen from there.
		out = append(out, Log{Msg: fmt.Sprintf("standby: acquire [%s] resources from %s", e.Rsc, e.Node)})
		m.sb = sbDone
		out = append(out, m.acquireThen(now, r, func(now time.Time) []Action {
			m.sb = sbNot
			return []Action{Log{Msg: fmt.Sprintf("Standby resource acquisition done [%s].", e.Rsc)}, SendAsk{Info: "done", Rsc: r.mirror()}, m.sendHeld(true, "")}
		})...)
	case sbReleased:
		if e.Info != "done" {
			return m.ignoredAsk(now, fmt.Sprintf("ignored standby message %q from %s", e.Info, e.Node))
		}
		m.sb = sbNot
		out = append(out, Log{Msg: fmt.Sprintf("Other node completed standby takeover of %s resources.", m.sbRsc)})
	case sbDone:
	}
	return out
}

func (m *Machine) stop(now time.Time) []Action {
	if m.ph == phaseStopping || m.ph == phaseStopped {
		return nil
	}
	if m.ph == phaseIdle {
		m.ph = phaseStopped
		return []Action{Stopped{}}
	}
	m.ph = phaseStopping
	m.sb = sbNot
	var out []Action
	if m.busy() {
		// hb_giveup_resources waits while resource actions run ("Shutdown
		// delayed until current resource activity finishes"); here the
		// releases queue behind them and t=shutdone waits for both.
		out = append(out, Log{Warn: true, Msg: "shutdown delayed until current resource activity finishes"})
	}
	// hb_resource.c hb_giveup_resources: release everything, then
	// t=resource rsc_hold=none info=shutdown and t=shutdone.
	return append(out, m.release(now, RscAll, func(now time.Time) []Action {
		m.ph = phaseStopped
		// hb_giveup_resources says it unstable ("0"): the other's
		// resource audit (AuditResources) then waits for t=shutdone
		// instead of finding nobody owning our classes.
		return []Action{SendResources{Holds: RscNone, Stable: false, Info: "shutdown"}, SendShutdone{}, Stopped{}}
	})...)
}

// acquire starts every group of the classes in r that is not held, in
// haresources order.
func (m *Machine) acquire(now time.Time, r Rsc) []Action {
	return m.acquireThen(now, r, nil)
}

func (m *Machine) acquireThen(now time.Time, r Rsc, then func(time.Time) []Action) []Action {
	m.claimed |= r
	var out []Action
	for _, g := range m.groups {
		if class(g.spec)&r == 0 || g.held || (g.failed && m.otherAlive()) {
			continue
		}
		g.held = true
		g.pending++
		out = append(out, Acquire{Group: g.spec.Name})
	}
	if then != nil {
		if len(out) == 0 {
			return then(now)
		}
		m.afterAcquire = then
	}
	return out
}

// release stops every held group of the classes in r, in reverse order.
func (m *Machine) release(now time.Time, r Rsc, then func(time.Time) []Action) []Action {
	m.claimed &^= r
	var out []Action
	for i := len(m.groups) - 1; i >= 0; i-- {
		g := m.groups[i]
		if class(g.spec)&r == 0 || !g.held {
			continue
		}
		g.held = false
		g.pending++
		out = append(out, Release{Group: g.spec.Name})
	}
	if then != nil {
		if len(out) == 0 && !m.busy() {
			return then(now)
		}
		m.afterRelease = then
	}
	return out
}

func (m *Machine) done(now time.Time, e Done) []Action {
	var g *groupState
	for _, x := range m.groups {
		if x.spec.Name == e.Group {
			g = x
		}
	}
	if g == nil || !g.busy() {
		return nil
	}
	g.pending--
	var out []Action
	if e.Acquire && e.Err != nil && g.busy() {
		// A later action is queued (a release, or a release and a new
		// acquisition): it decides where the group ends up.
		out = append(out, Log{Warn: true, Msg: fmt.Sprintf("group %s failed to start: %v", g.spec.Name, e.Err)})
	} else if e.Acquire && e.Err != nil {
		// A resource that fails to start: the group is released (the
		// runtime stopped what had started) and handed to the other node.
		g.held, g.failed = false, true
		out = append(out, Log{Warn: true, Msg: fmt.Sprintf("group %s failed to start: %v; releasing it", g.spec.Name, e.Err)})
		if m.otherAlive() && m.ph == phaseStable && m.sb == sbNot {
			m.sb, m.sbRsc, m.sbSince = sbMe, class(g.spec), now
			out = append(out, SendAsk{Info: "me", Rsc: class(g.spec)})
		}
	}
	if !m.busy() {
		if f := m.afterAcquire; f != nil {
			m.afterAcquire = nil
			out = append(out, f(now)...)
		}
		if f := m.afterRelease; f != nil {
			m.afterRelease = nil
			out = append(out, f(now)...)
		}
		if m.ph == phaseStable && m.sb == sbNot && m.afterAcquire == nil {
			// The peer's report may have come while the groups were
			// still starting (a takeover as the peer came into view).
			if r := m.releaseShared(now); r != nil {
				return append(out, r...)
			}
			out = append(out, m.sendHeld(true, ""))
			out = append(out, m.autoFailback(now)...)
			out = append(out, m.ipfail(now)...)
		}
	}
	return out
}

func (m *Machine) sendHeld(stable bool, info string) Action {
	// A node with a group that failed to start says it is unstable, so the
	// other does not hand the group back (PerformAutoFailback waits for
	// other_is_stable).
	return SendResources{Holds: m.Holds(), Stable: stable && !m.busy() && !m.anyFailed(), Info: info}
}

// Groups lists the groups and whether each is held, in order.
func (m *Machine) Groups() []GroupState {
	out := make([]GroupState, 0, len(m.groups))
	for _, g := range m.groups {
		out = append(out, GroupState{Name: g.spec.Name, Local: g.spec.Local, Held: g.held, Busy: g.busy(), Failed: g.failed})
	}
	return out
}

// GroupState is a group's state for the status snapshot.
type GroupState struct {
	Name   string `json:"name"`
	Local  bool   `json:"local"`
	Held   bool   `json:"held"`
	Busy   bool   `json:"busy"`
	Failed bool   `json:"failed"`
}

// Peers lists peers with per-medium link state.
func (m *Machine) Peers() []PeerState {
	var out []PeerState
	for _, p := range m.peers {
		ps := PeerState{Name: p.name, Status: p.status, Holds: p.holds.mirror().String(), PingUp: p.pingUp}
		for i, name := range m.cfg.Media {
			ps.Links = append(ps.Links, LinkState{Medium: name, Up: p.linkUp[i], LastHeard: p.lastMed[i]})
		}
		out = append(out, ps)
	}
	return out
}

// PeerState is a peer for the status snapshot.
type PeerState struct {
	Name   string      `json:"name"`
	Status NodeStatus  `json:"status"`
	Holds  string      `json:"holds"` // in the peer's own view
	PingUp int         `json:"ping_up"`
	Links  []LinkState `json:"links"`
}

// LinkState is one medium to a peer.
type LinkState struct {
	Medium    string    `json:"medium"`
	Up        bool      `json:"up"`
	LastHeard time.Time `json:"last_heard,omitzero"`
}
