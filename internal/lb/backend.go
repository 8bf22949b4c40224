package lb

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/internal/inet"
)

// Backend is a kernel data plane holding virtual services: nftables
// (internal/lb/nft) or IPVS (internal/lb/ipvs). A Backend owns only what it
// created: it never touches services or tables it did not make.
//
// Concurrency: a Backend is used by one goroutine at a time (the director's
// reconciler, internal/director/reconcile).
type Backend interface {
	// Name is the backend's name as global_defs lvs_backend spells it:
	// "nftables" or "ipvs".
	Name() string
	// Capabilities says which schedulers, methods and options the backend
	// implements.
	Capabilities() Capabilities
	// Observe reads what the kernel holds now (of what this backend owns).
	Observe(ctx context.Context) (State, error)
	// Apply makes the kernel hold want: it diffs want against the state
	// last applied or observed and sends only the difference (nftables: one
	// atomic batch). After an error the next Apply observes first.
	Apply(ctx context.Context, want State) error
	// Close releases the backend; unless configured to keep them, it
	// removes the services it created.
	Close() error
}

// Projector is implemented by backends that hold less than a State says
// (nftables has no thresholds or tunnels): Project returns what Observe
// would return once want is applied, so that the reconciler does not take
// the difference for drift.
type Projector interface {
	Project(want State) State
}

// Support says how a backend implements one scheduler.
type Support struct {
	// As is the scheduler the backend really applies; equal to the name
	// when exact.
	As string
	// Note explains an approximation.
	Note string
}

// Capabilities lists what a backend can do.
type Capabilities struct {
	Backend    string
	Schedulers map[string]Support
	Methods    []Method
	// Thresholds: uthreshold/lthreshold are honoured.
	Thresholds bool
	// PersistenceEngine: persistence_engine is honoured.
	PersistenceEngine bool
	// OnePacket: the `ops` flag is honoured.
	OnePacket bool
	// MixedFamily: destinations of another family than their service (TUN).
	MixedFamily bool
	// MixedMethods: real servers of different lb_kind in one virtual
	// server.
	MixedMethods bool
	// MixedPorts: NAT real servers with and without a port in one service
	// that has no port of its own (fwmark, or port 0), where a real server
	// without one keeps the client's destination port.
	MixedPorts bool
	// MethodSchedulers, when it has an entry for a virtual server's
	// method, replaces Schedulers for it (a data plane may realise a
	// scheduler differently per forwarding method).
	MethodSchedulers map[Method]map[string]Support
	// MethodNotes say why an unsupported method is unsupported.
	MethodNotes map[Method]string
	// FWMarkNotes are warnings for firewall-mark services of a method.
	FWMarkNotes map[Method]string
	// MethodWarnings are warnings for every virtual server of a method:
	// what the data plane does not do that IPVS does.
	MethodWarnings map[Method]string
}

// ErrUnsupported marks a configuration the backend cannot apply.
var ErrUnsupported = errors.New("unsupported by the load balancer backend")

// Finding is one way a data plane treats a virtual server otherwise than
// IPVS would: an approximation (a scheduler applied as another one, an
// ignored option) or, when Unsupported, something it cannot do at all.
type Finding struct {
	// VS indexes the specs given to Check. Real indexes that virtual
	// server's Reals, or is -1 for the virtual server itself and for its
	// sorry server (Sorry).
	VS, Real    int
	Sorry       bool
	Unsupported bool
	// Msg names the virtual server and the data plane.
	Msg string
}

func (f Finding) String() string {
	if f.Unsupported {
		return "error: " + f.Msg
	}
	return "warning: " + f.Msg
}

// Check reports how the backend would treat specs, each finding naming the
// virtual or real server concerned. Run it at configuration load time.
func (c Capabilities) Check(specs []VirtualServer) []Finding {
	var out []Finding
	add := func(f Finding, vs *VirtualServer, format string, a ...any) {
		f.Msg = fmt.Sprintf("virtual server %s: ", vs.ID()) + fmt.Sprintf(format, a...) + fmt.Sprintf(" (lvs_backend %s)", c.Backend)
		out = append(out, f)
	}
	for i := range specs {
		vs := &specs[i]
		at := Finding{VS: i, Real: -1}
		unsupported := Finding{VS: i, Real: -1, Unsupported: true}
		sched := vs.Scheduler
		if sched == "" {
			sched = "wlc"
		}
		vm := vs.Method
		if len(vs.Reals) > 0 {
			vm = vs.Reals[0].Method
		}
		scheds := c.Schedulers
		if ms, ok := c.MethodSchedulers[vm]; ok {
			scheds = ms
		}
		if n := c.MethodWarnings[vm]; n != "" && len(vs.Reals) > 0 {
			add(at, vs, "lb_kind %v: %s", vm, n)
		}
		if n := c.FWMarkNotes[vm]; n != "" && vs.FWMark != 0 {
			add(at, vs, "fwmark %d: %s", vs.FWMark, n)
		}
		if s, ok := scheds[sched]; !ok {
			add(unsupported, vs, "lb_algo %s is not supported", sched)
		} else if s.As != sched {
			add(at, vs, "lb_algo %s is applied as %s: %s", sched, s.As, s.Note)
		}
		check := func(r *RealServer, at Finding, what string) {
			m := r.Method
			unsupported := at
			unsupported.Unsupported = true
			methodOK := slices.Contains(c.Methods, m)
			if !methodOK {
				why := ""
				if n := c.MethodNotes[m]; n != "" {
					why = " (" + n + ")"
				}
				add(unsupported, vs, "%s %s: lb_kind %v is not supported%s; supported: %s", what, r.AddrPort(), m, why, methods(c.Methods))
			}
			if !c.Thresholds && (r.UThreshold != 0 || r.LThreshold != 0) {
				add(at, vs, "%s %s: uthreshold/lthreshold are ignored", what, r.AddrPort())
			}
			// A family that differs comes with a method (TUN) the data
			// plane cannot run: one problem, one finding.
			if methodOK && !c.MixedFamily && r.Addr.IsValid() && inet.FamilyOf(r.Addr) != vs.Family {
				add(unsupported, vs, "%s %s: address family differs from the virtual server's", what, r.AddrPort())
			}
		}
		for j := range vs.Reals {
			check(&vs.Reals[j], Finding{VS: i, Real: j}, "real server")
		}
		if vs.Sorry != nil {
			check(vs.Sorry, Finding{VS: i, Real: -1, Sorry: true}, "sorry server")
		}
		for j := 1; j < len(vs.Reals) && !c.MixedMethods; j++ {
			r, r0 := &vs.Reals[j], &vs.Reals[0]
			if r.Method != r0.Method && slices.Contains(c.Methods, r.Method) && slices.Contains(c.Methods, r0.Method) {
				add(Finding{VS: i, Real: j, Unsupported: true}, vs, "real server %s: lb_kind %v beside lb_kind %v (real server %s) in one virtual server is not supported", r.AddrPort(), r.Method, r0.Method, r0.AddrPort())
				break
			}
		}
		if !c.MixedPorts && portless(vs) {
			first := -1
			for j := range vs.Reals {
				r := &vs.Reals[j]
				if r.Method != NAT {
					continue
				}
				if first < 0 {
					first = j
				} else if (r.Port == 0) != (vs.Reals[first].Port == 0) {
					add(Finding{VS: i, Real: j, Unsupported: true}, vs, "real server %s: NAT real servers with a port (%s) and without one (%s) in one service without a port are not supported; give them all a port, or none", r.AddrPort(), portOf(vs, first, j, true), portOf(vs, first, j, false))
					break
				}
			}
		}
		if !c.PersistenceEngine && vs.PersistenceEngine != "" {
			add(at, vs, "persistence_engine %s is ignored", vs.PersistenceEngine)
		}
		if !c.OnePacket && vs.Flags&FlagOnePacket != 0 {
			add(at, vs, "ops (one-packet scheduling) is ignored")
		}
	}
	return out
}

// portless reports whether vs expands to a service without a port of its
// own (a fwmark, or port 0), whose NAT real servers may keep the client's
// destination port.
func portless(vs *VirtualServer) bool {
	switch {
	case vs.Group != nil:
		if len(vs.Group.FWMarks) > 0 {
			return true
		}
		for _, r := range vs.Group.Ranges {
			if r.Port == 0 {
				return true
			}
		}
		return false
	case vs.FWMark != 0:
		return true
	}
	return vs.Port == 0
}

// portOf names whichever of real servers a and b has a port (with) or
// none (!with).
func portOf(vs *VirtualServer, a, b int, with bool) netip.AddrPort {
	if (vs.Reals[a].Port != 0) == with {
		return vs.Reals[a].AddrPort()
	}
	return vs.Reals[b].AddrPort()
}

// Err joins the findings a data plane cannot apply into one error wrapping
// ErrUnsupported; nil when there are none.
func Err(findings []Finding) error {
	var msgs []string
	for _, f := range findings {
		if f.Unsupported {
			msgs = append(msgs, f.String())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("lb: %w: %s", ErrUnsupported, strings.Join(msgs, "; "))
}

func methods(ms []Method) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.String()
	}
	return strings.Join(s, ", ")
}

// Backend names, as global_defs lvs_backend spells them.
const (
	BackendAuto     = "auto"
	BackendNFTables = "nftables"
	BackendIPVS     = "ipvs"
)

// ChooseBackend resolves global_defs `lvs_backend auto|nftables|ipvs` (a
// vigil keyword; absent means auto): auto takes IPVS when the kernel has it
// (/proc/net/ip_vs, as ipvs.Available reports) and nftables otherwise.
func ChooseBackend(keyword string, ipvsAvailable bool) (string, error) {
	switch keyword {
	case "", BackendAuto:
		if ipvsAvailable {
			return BackendIPVS, nil
		}
		return BackendNFTables, nil
	case BackendNFTables, "nft":
		return BackendNFTables, nil
	case BackendIPVS:
		if !ipvsAvailable {
			return "", fmt.Errorf("lb: lvs_backend ipvs: the kernel has no IPVS (/proc/net/ip_vs is missing; modprobe ip_vs, or use lvs_backend nftables)")
		}
		return BackendIPVS, nil
	}
	return "", fmt.Errorf("lb: lvs_backend %q: want auto, nftables or ipvs", keyword)
}
