package lb

import (
	"fmt"
	"math"
	"net/netip"
)

// HealthState is what the health checkers say about a real server.
type HealthState uint8

// Health states.
const (
	// Unknown: no checker result yet. The real server counts as up unless
	// it is in alpha mode (keepalived 2.2.7 check_data.c
	// validate_check_config: "In Alpha mode also mark any checker that
	// hasn't run as failed").
	Unknown HealthState = iota
	Up
	Down
)

func (h HealthState) String() string {
	switch h {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// RealID names a real server of a virtual server (VirtualServer.ID and the
// real server's address and port as the configuration corrected them).
type RealID struct {
	VS   string
	Addr netip.AddrPort
}

// String is "VS ADDR:PORT", the real server's name in checker logs and
// snapshots.
func (id RealID) String() string { return id.VS + " " + id.Addr.String() }

// RealHealth is the checkers' verdict on one real server: keepalived's
// "alive" (no failed checker) and its effective weight.
//
// A real server with several checkers is Up when none has failed; one with no
// checker at all is always Up (keepalived: num_failed_checkers == 0), so the
// caller passes Up for it.
type RealHealth struct {
	State HealthState
	// Weight replaces the configured weight when HasWeight (MISC_CHECK
	// misc_dynamic, track_file weights: keepalived's effective_weight).
	// Negative values count as 0 (keepalived real_weight).
	Weight    int64
	HasWeight bool
}

// Health holds the verdicts of the checkers. A real server absent from the
// map is Unknown.
type Health map[RealID]RealHealth

// EventKind is the kind of a notification Desired asks the caller to make.
type EventKind uint8

// Event kinds: keepalived's notify_up / notify_down on real servers and
// quorum_up / quorum_down on virtual servers.
const (
	RealUp EventKind = iota + 1
	RealDown
	QuorumUp
	QuorumDown
)

func (k EventKind) String() string {
	switch k {
	case RealUp:
		return "real-up"
	case RealDown:
		return "real-down"
	case QuorumUp:
		return "quorum-up"
	case QuorumDown:
		return "quorum-down"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is a notification to make: run Script (when not empty) and write
// FIFOLine to the notify FIFOs (always; keepalived notify_fifo_vs/_rs).
type Event struct {
	Kind EventKind
	VS   string         // VirtualServer.ID
	Real netip.AddrPort // RealUp / RealDown
	// RealName is keepalived's FMT_RS of the real server.
	RealName string
	Script   string
	// Init marks keepalived's "Starting with quorum up/down" and
	// rs_init_notifies events; Stopping marks the omega events at shutdown
	// (keepalived runs those scripts synchronously, with a one second
	// limit).
	Init     bool
	Stopping bool
}

// FIFOLine is the line keepalived writes to notify_fifo / lvs_notify_fifo
// (ipwrapper.c notify_fifo_vs, notify_fifo_rs), without the newline.
func (e Event) FIFOLine() string {
	switch e.Kind {
	case QuorumUp:
		return fmt.Sprintf("VS %s UP", e.VS)
	case QuorumDown:
		return fmt.Sprintf("VS %s DOWN", e.VS)
	case RealUp:
		return fmt.Sprintf("RS %s %s UP", e.RealName, e.VS)
	case RealDown:
		return fmt.Sprintf("RS %s %s DOWN", e.RealName, e.VS)
	}
	return ""
}

// RealStatus is one real server in a ServiceStatus.
type RealStatus struct {
	Addr    netip.AddrPort
	Alive   bool
	Checked bool   // a checker verdict has arrived
	Weight  uint32 // effective weight (keepalived real_weight)
	// Installed: the real server is a destination now; InstalledWeight is
	// its weight there (0 when inhibited).
	Installed       bool
	InstalledWeight uint32
}

// ServiceStatus is the policy's view of one virtual server, for the status
// API and `vigil status`.
type ServiceStatus struct {
	ID          string
	Keys        []ServiceKey
	QuorumUp    bool
	SorryActive bool
	// Suspended: ha_suspend and none of the virtual addresses is local, so
	// its checkers are suspended and its real servers' states are frozen.
	Suspended  bool
	WeightSum  int64
	Quorum     uint32
	Hysteresis uint32
	Reals      []RealStatus
}

// Result is what Desired returns.
type Result struct {
	State  State
	Events []Event
	Status []ServiceStatus
}

// PolicyOptions are the global_defs knobs of the policy.
type PolicyOptions struct {
	// RSInitNotifies is global_defs rs_init_notifies: notify_up for real
	// servers that start up alive.
	RSInitNotifies bool
	// FlushOnStop is global_defs lvs_flush_on_stop (with or without VS):
	// keepalived then removes the services whole at stop, so with omega
	// only the quorum goes down, no real server's notify_down runs
	// (ipwrapper.c clear_services / clear_service_vs: update_vs_notifies
	// instead of clear_service_rs_list).
	FlushOnStop bool
}

// Policy is keepalived 2.2.7's virtual server policy (keepalived/check/
// ipwrapper.c) as a value: it remembers, per virtual server, the quorum
// state (for the hysteresis band) and each real server's alive state (to
// report transitions), and turns specs × health into the desired kernel
// State plus the notifications to make.
//
// Concurrency: a Policy is not safe for concurrent use; the director (internal/director) owns it.
type Policy struct {
	opts PolicyOptions
	vss  map[string]*vsMem
	// order is the order of the last specs, for Stop.
	order []string
}

type vsMem struct {
	spec        VirtualServer
	quorumUp    bool
	sorryActive bool
	reals       map[netip.AddrPort]*rsMem
}

type rsMem struct {
	alive   bool
	checked bool
	weight  int64 // effective weight
	set     bool  // installed as a destination (keepalived rs->set)
}

// NewPolicy returns a Policy that has seen no virtual server yet.
func NewPolicy(opts PolicyOptions) *Policy {
	return &Policy{opts: opts, vss: map[string]*vsMem{}}
}

// realWeight is keepalived's real_weight: the effective weight clamped to
// what IPVS accepts.
func realWeight(w int64) int64 {
	if w < 0 {
		return 0
	}
	if w > math.MaxInt32 {
		return math.MaxInt32
	}
	return w
}

// Desired computes the kernel state for specs (as the configuration
// corrected them) given the checkers' verdicts, and the notifications due since the previous
// call. local reports whether an address is configured on this host (the
// VRRP instance owning it is MASTER); it only matters for ha_suspend. A nil
// local counts every address as local.
//
// keepalived behaviours (ipwrapper.c unless noted):
//   - real servers start alive, or down in alpha mode (init_service_rs);
//   - quorum: the sum of the weights of the alive real servers; the quorum
//     is gained at >= quorum+hysteresis and lost below quorum-hysteresis or
//     at 0 (update_quorum_state);
//   - while the quorum is lost and a sorry server is configured, the sorry
//     server is the only destination with a weight; alive real servers are
//     removed, or kept at weight 0 when inhibit_on_failure
//     (perform_quorum_state, ipvswrapper.c ipvs_cmd); without a sorry
//     server the alive real servers stay;
//   - a failed real server is removed, or kept at weight 0 with
//     inhibit_on_failure; sorry_server_inhibit keeps the sorry server at
//     weight 0 while unused (init_service_vs);
//   - notify_up/notify_down on each change of a real server's state, and on
//     the first verdict when it is down (check_api.c / ipwrapper.c
//     update_svr_checker_state); quorum_up/quorum_down on each change, also
//     at start-up ("Starting with quorum up"; "... down" only with a sorry
//     server);
//   - ha_suspend suspends the checkers while no virtual address is local
//     (check_api.c update_checker_activity): the real servers' states are
//     frozen and the service stays installed, as in keepalived.
func (p *Policy) Desired(specs []VirtualServer, health Health, local func(netip.Addr) bool) Result {
	res := Result{State: NewState()}
	present := map[string]bool{}
	order := make([]string, 0, len(specs))
	for i := range specs {
		present[specs[i].ID()] = true
		order = append(order, specs[i].ID())
	}
	// Virtual servers removed by a reload: keepalived clear_service_vs with
	// stopping=false notifies each alive installed real server down, then
	// the virtual server if it loses the quorum doing so.
	for _, id := range p.order {
		if m, ok := p.vss[id]; ok && !present[id] {
			res.Events = append(res.Events, p.removeAll(m, false)...)
			delete(p.vss, id)
		}
	}
	p.order = order

	for i := range specs {
		vs := &specs[i]
		id := vs.ID()
		m := p.vss[id]
		isNew := m == nil
		changed := isNew || !sameSpec(m.spec, *vs)
		if isNew {
			// keepalived set_quorum_states runs before any real server is
			// alive: the quorum starts up only when it is 0.
			m = &vsMem{reals: map[netip.AddrPort]*rsMem{}, quorumUp: vs.Quorum+vs.Hysteresis == 0}
			p.vss[id] = m
		}
		old := m.spec
		m.spec = *vs
		suspended := vs.HASuspend && local != nil && !anyLocal(vs, local)

		// Real servers removed by a reload (ipwrapper.c clear_diff_rs).
		if !isNew {
			keep := map[netip.AddrPort]bool{}
			for _, r := range vs.Reals {
				keep[r.AddrPort()] = true
			}
			for _, r := range old.Reals {
				rm := m.reals[r.AddrPort()]
				if keep[r.AddrPort()] || rm == nil {
					continue
				}
				if rm.alive && rm.set {
					res.Events = append(res.Events, Event{Kind: RealDown, VS: id, Real: r.AddrPort(), RealName: old.RealName(r), Script: r.NotifyDown})
				}
				delete(m.reals, r.AddrPort())
				res.Events = append(res.Events, p.quorumLossOnly(m)...)
			}
		}
		// New real servers start alive unless alpha (init_service_rs).
		for _, r := range vs.Reals {
			if m.reals[r.AddrPort()] != nil {
				continue
			}
			rm := &rsMem{alive: !r.Alpha, weight: int64(r.Weight)}
			m.reals[r.AddrPort()] = rm
			if rm.alive && p.opts.RSInitNotifies {
				res.Events = append(res.Events, Event{Kind: RealUp, VS: id, Real: r.AddrPort(), RealName: vs.RealName(r), Script: r.NotifyUp, Init: true})
			}
		}
		if changed {
			// init_service_vs: "we may have got/lost quorum due to quorum
			// setting changed"; also adds the sorry server at start-up.
			res.Events = append(res.Events, p.updateQuorum(m, true)...)
		}

		// Checker verdicts, one real server at a time, each followed by the
		// quorum update as keepalived's perform_svr_state does.
		if !suspended {
			for _, r := range vs.Reals {
				rm := m.reals[r.AddrPort()]
				h := health[RealID{VS: id, Addr: r.AddrPort()}]
				w := int64(r.Weight)
				if h.HasWeight {
					w = h.Weight
				}
				if realWeight(w) != realWeight(rm.weight) {
					// update_svr_wgt: a weight change may move the quorum.
					rm.weight = w
					if rm.alive {
						res.Events = append(res.Events, p.updateQuorum(m, false)...)
					}
				}
				rm.weight = w
				if h.State == Unknown {
					continue
				}
				alive := h.State == Up
				first := !rm.checked
				rm.checked = true
				if alive == rm.alive {
					// update_svr_checker_state: the first verdict of a
					// checker that changes nothing still notifies in alpha
					// mode or when down.
					if first && !alive {
						res.Events = append(res.Events, Event{Kind: RealDown, VS: id, Real: r.AddrPort(), RealName: vs.RealName(r), Script: r.NotifyDown})
					}
					continue
				}
				rm.alive = alive
				ev := Event{Kind: RealUp, VS: id, Real: r.AddrPort(), RealName: vs.RealName(r), Script: r.NotifyUp}
				if !alive {
					ev.Kind, ev.Script = RealDown, r.NotifyDown
				}
				res.Events = append(res.Events, ev)
				res.Events = append(res.Events, p.updateQuorum(m, false)...)
			}
		}

		st := p.install(vs, m, res.State)
		st.Suspended = suspended
		res.Status = append(res.Status, st)
	}
	return res
}

// updateQuorum is keepalived's update_quorum_state.
func (p *Policy) updateQuorum(m *vsMem, init bool) []Event {
	vs := &m.spec
	sum := p.weightSum(m)
	q, h := int64(vs.Quorum), int64(vs.Hysteresis)
	threshold := q + h
	if m.quorumUp {
		threshold = q - h
	}
	switch {
	case !m.quorumUp && sum >= threshold:
		m.quorumUp = true
		m.sorryActive = false // "Removing sorry server since we don't need it anymore"
		return []Event{{Kind: QuorumUp, VS: vs.ID(), Script: vs.QuorumUp, Init: init}}
	case (m.quorumUp && (sum == 0 || sum < threshold)) || (init && !m.quorumUp && vs.Sorry != nil && !m.sorryActive):
		m.quorumUp = false
		if vs.Sorry != nil {
			m.sorryActive = true
		}
		return []Event{{Kind: QuorumDown, VS: vs.ID(), Script: vs.QuorumDown, Init: init}}
	}
	return nil
}

// quorumLossOnly is keepalived's update_vs_notifies(vs, false): after real
// servers are removed the quorum may be lost (never gained); the sorry server
// is not pushed in then ("the regression is intended").
func (p *Policy) quorumLossOnly(m *vsMem) []Event {
	vs := &m.spec
	sum := p.weightSum(m)
	threshold := int64(vs.Quorum) - int64(vs.Hysteresis)
	if m.quorumUp && (sum == 0 || sum < threshold) {
		m.quorumUp = false
		return []Event{{Kind: QuorumDown, VS: vs.ID(), Script: vs.QuorumDown}}
	}
	return nil
}

func (p *Policy) weightSum(m *vsMem) int64 {
	var sum int64
	for _, r := range m.spec.Reals {
		if rm := m.reals[r.AddrPort()]; rm != nil && rm.alive {
			sum += realWeight(rm.weight)
		}
	}
	return sum
}

// install adds the virtual server's services and destinations to st and
// records which real servers are installed.
func (p *Policy) install(vs *VirtualServer, m *vsMem, st State) ServiceStatus {
	status := ServiceStatus{
		ID: vs.ID(), Keys: vs.Keys(), QuorumUp: m.quorumUp,
		Quorum: vs.Quorum, Hysteresis: vs.Hysteresis, WeightSum: p.weightSum(m),
	}
	// The sorry server is in use exactly while the quorum is lost.
	sorryActive := vs.Sorry != nil && !m.quorumUp
	m.sorryActive = sorryActive
	status.SorryActive = sorryActive
	svc := Service{Scheduler: vs.Scheduler, Flags: vs.Flags}
	for _, k := range status.Keys {
		s := svc
		s.Netmask = FullNetmask(k.Family)
		if vs.PersistenceTimeout > 0 {
			s.Timeout = vs.PersistenceTimeout
			s.PE = vs.PersistenceEngine
			if vs.PersistenceGranularity != 0 {
				s.Netmask = vs.PersistenceGranularity
			}
		}
		st.Services[k] = s
	}
	for _, r := range vs.Reals {
		rm := m.reals[r.AddrPort()]
		inhibit := r.Inhibit
		var w uint32
		set := false
		switch {
		case sorryActive:
			// perform_quorum_state(false): DEL_DEST, which inhibit turns
			// into weight 0.
			set = inhibit
		case rm.alive:
			set, w = true, uint32(realWeight(rm.weight))
		default:
			set = inhibit
		}
		rm.set = set
		status.Reals = append(status.Reals, RealStatus{
			Addr: r.AddrPort(), Alive: rm.alive, Checked: rm.checked, Weight: uint32(realWeight(rm.weight)),
			Installed: set, InstalledWeight: w,
		})
		if !set {
			continue
		}
		d := Dest{Weight: w, Method: r.Method, UThreshold: r.UThreshold, LThreshold: r.LThreshold}
		if d.Method == TUN {
			d.Tunnel = r.Tunnel
		}
		for _, k := range status.Keys {
			dk := DestKey{Service: k, Addr: netip.AddrPortFrom(r.Addr, destPort(k, d.Method, r.Port))}
			if _, dup := st.Dests[dk]; !dup {
				st.Dests[dk] = d
			}
		}
	}
	if s := vs.Sorry; s != nil && (sorryActive || vs.SorryInhibit) {
		// The sorry server's weight is always 1 (check_data.c alloc_ssvr);
		// sorry_server_inhibit keeps it at 0 while unused.
		d := Dest{Method: s.Method, UThreshold: s.UThreshold, LThreshold: s.LThreshold}
		if d.Method == TUN {
			d.Tunnel = s.Tunnel
		}
		if sorryActive {
			d.Weight = 1
		}
		for _, k := range status.Keys {
			dk := DestKey{Service: k, Addr: netip.AddrPortFrom(s.Addr, destPort(k, d.Method, s.Port))}
			if _, dup := st.Dests[dk]; dup && !sorryActive {
				continue // a real server with the same address rules
			}
			st.Dests[dk] = d
		}
	}
	return status
}

// removeAll is keepalived's clear_service_vs: every alive installed real
// server is notified down, then the virtual server loses the quorum. When
// stopping, keepalived notifies only with omega, and always notifies the
// quorum down (update_vs_notifies(vs, true)).
func (p *Policy) removeAll(m *vsMem, stopping bool) []Event {
	vs := &m.spec
	if stopping && !vs.Omega {
		return nil
	}
	var evs []Event
	for _, r := range vs.Reals {
		rm := m.reals[r.AddrPort()]
		if rm == nil || !rm.set || !rm.alive {
			continue
		}
		rm.alive = false
		evs = append(evs, Event{Kind: RealDown, VS: vs.ID(), Real: r.AddrPort(), RealName: vs.RealName(r), Script: r.NotifyDown, Stopping: stopping})
	}
	if stopping || (m.quorumUp) {
		m.quorumUp = false
		evs = append(evs, Event{Kind: QuorumDown, VS: vs.ID(), Script: vs.QuorumDown, Stopping: stopping})
	}
	return evs
}

// Stop returns the notifications keepalived makes when it shuts down and
// removes its virtual servers (ipwrapper.c clear_services): with omega, the
// alive installed real servers go down (not with FlushOnStop) and the
// quorum goes down. The Policy forgets everything.
func (p *Policy) Stop() []Event {
	var evs []Event
	for _, id := range p.order {
		if m, ok := p.vss[id]; ok {
			for _, ev := range p.removeAll(m, true) {
				if ev.Kind == RealDown && p.opts.FlushOnStop {
					continue
				}
				evs = append(evs, ev)
			}
		}
	}
	p.vss = map[string]*vsMem{}
	p.order = nil
	return evs
}

func anyLocal(vs *VirtualServer, local func(netip.Addr) bool) bool {
	if vs.Group != nil {
		for _, r := range vs.Group.Ranges {
			n := 0
			for a := r.First; a.IsValid() && a.Compare(r.Last) <= 0 && n < maxKeys; a = a.Next() {
				if local(a) {
					return true
				}
				n++
			}
		}
		return false
	}
	return local(vs.Addr)
}

// sameSpec reports whether two specs of the same virtual server agree on what
// the quorum depends on.
func sameSpec(a, b VirtualServer) bool {
	if a.Quorum != b.Quorum || a.Hysteresis != b.Hysteresis || (a.Sorry == nil) != (b.Sorry == nil) || len(a.Reals) != len(b.Reals) {
		return false
	}
	if a.Sorry != nil && a.Sorry.AddrPort() != b.Sorry.AddrPort() {
		return false
	}
	for i := range a.Reals {
		if a.Reals[i].AddrPort() != b.Reals[i].AddrPort() || a.Reals[i].Weight != b.Reals[i].Weight {
			return false
		}
	}
	return true
}
