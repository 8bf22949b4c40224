package lb

import (
	"fmt"
	"math/big"
	"net/netip"
)

// VirtualServer is one keepalived `virtual_server` block, as the lead maps it
// from the configuration. Exactly one of (Addr, Port, Proto), FWMark or Group
// identifies it. Zero values mean "not configured"; Normalize applies
// keepalived's defaults and corrections.
type VirtualServer struct {
	// Where is the configuration position ("file:line") used in diagnostics.
	Where string

	Addr   netip.Addr // `virtual_server IP PORT`
	Port   uint16
	Proto  Protocol // `protocol TCP|UDP|SCTP`
	FWMark uint32   // `virtual_server fwmark N`
	Group  *Group   // `virtual_server group NAME`
	// Family is `ip_family inet|inet6`; for fwmark services without it the
	// family comes from the real servers, else IPv4 (keepalived 2.2.7
	// check_parser.c vs_end_handler).
	Family Family

	Scheduler string // `lb_algo` / `lvs_sched`; keepalived defaults to wlc
	Flags     Flags  // `ops`, `flag-N`, `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`
	Method    Method // `lb_kind` / `lvs_method`: default for real servers; NAT when unset
	Tunnel    Tunnel // `lb_kind TUN type ...`

	// PersistenceTimeout is `persistence_timeout` in seconds (0: none).
	PersistenceTimeout uint32
	// PersistenceGranularity is `persistence_granularity` as IPVS's
	// netmask: an IPv4 mask (0xffffff00) or an IPv6 prefix length; 0 means
	// unset (a single address).
	PersistenceGranularity uint32
	PersistenceEngine      string // `persistence_engine`

	// Quorum is `quorum`; 0 means unset, keepalived's default 1 (its
	// parser refuses 0). Hysteresis is `hysteresis`.
	Quorum     uint32
	Hysteresis uint32
	QuorumUp   string // `quorum_up` script
	QuorumDown string // `quorum_down` script

	Alpha     bool   // `alpha`: real servers start down until checked
	Omega     bool   // `omega`: run notify_down/quorum_down scripts at shutdown
	Inhibit   bool   // `inhibit_on_failure`: default for real servers
	HASuspend bool   // `ha_suspend`
	Weight    uint32 // `weight`: default real server weight (keepalived default 1)

	Virtualhost string // `virtualhost` (for HTTP/SSL checkers; carried only)

	Sorry        *RealServer // `sorry_server IP PORT` (+ `sorry_server_lvs_method`)
	SorryInhibit bool        // `sorry_server_inhibit`

	Reals []RealServer

	// GroupSeq is the position of this virtual server among those using the
	// same group (set by Normalize); keepalived prints it in FMT_VS.
	GroupSeq int
}

// Group is a `virtual_server_group`: address ranges and fwmarks that all
// carry the same real servers.
type Group struct {
	Name    string
	Ranges  []GroupRange
	FWMarks []GroupMark
}

// GroupRange is one `IP[-LAST] PORT` or `IP/PREFIX PORT` entry: every
// address from First to Last inclusive.
type GroupRange struct {
	First, Last netip.Addr
	Port        uint16
}

// GroupMark is one `fwmark N [inet|inet6]` entry; Family 0 is unspecified.
type GroupMark struct {
	Mark   uint32
	Family Family
}

// RealServer is one `real_server` block (or the sorry server).
type RealServer struct {
	Where string
	Addr  netip.Addr
	Port  uint16
	// Weight is `weight`; nil inherits the virtual server's weight.
	Weight     *uint32
	Method     Method // `lvs_method`; MethodDefault inherits
	Tunnel     *Tunnel
	UThreshold uint32
	LThreshold uint32
	// Inhibit and Alpha are `inhibit_on_failure` and `alpha`; nil inherits.
	Inhibit     *bool
	Alpha       *bool
	NotifyUp    string
	NotifyDown  string
	Virtualhost string
}

// AddrPort returns the real server's address and port.
func (r RealServer) AddrPort() netip.AddrPort { return netip.AddrPortFrom(r.Addr, r.Port) }

// ID formats the virtual server as keepalived's FMT_VS does
// (check_data.c format_vs): "[10.0.0.1]:tcp:80", "FWM 1", "[group]:0".
func (vs *VirtualServer) ID() string {
	switch {
	case vs.Group != nil:
		return fmt.Sprintf("[%s]:%d", vs.Group.Name, vs.GroupSeq)
	case vs.FWMark != 0:
		return fmt.Sprintf("FWM %d", vs.FWMark)
	}
	return fmt.Sprintf("[%s]:%s:%d", vs.Addr, vs.Proto.lower(), vs.Port)
}

// RealName formats a real server as keepalived's FMT_RS does:
// "[10.0.0.2]:tcp:80".
func (vs *VirtualServer) RealName(r RealServer) string {
	return fmt.Sprintf("[%s]:%s:%d", r.Addr, vs.Proto.lower(), r.Port)
}

// maxKeys bounds the services one virtual server may expand to (a group's
// address ranges); beyond it Normalize reports an error.
const maxKeys = 65536

// Keys returns the kernel services this virtual server expands to: one for an
// address or fwmark service, one per address and per fwmark of a group
// (keepalived ipvswrapper.c ipvs_group_cmd).
func (vs *VirtualServer) Keys() []ServiceKey {
	switch {
	case vs.Group != nil:
		var out []ServiceKey
		for _, r := range vs.Group.Ranges {
			for a := r.First; a.IsValid() && a.Compare(r.Last) <= 0; a = a.Next() {
				out = append(out, ServiceKey{Family: FamilyOf(a), Proto: vs.Proto, Addr: a, Port: r.Port})
				if len(out) > maxKeys {
					return out
				}
			}
		}
		for _, m := range vs.Group.FWMarks {
			f := m.Family
			if f == 0 {
				f = vs.family()
			}
			out = append(out, ServiceKey{Family: f, FWMark: m.Mark})
		}
		return out
	case vs.FWMark != 0:
		return []ServiceKey{{Family: vs.family(), FWMark: vs.FWMark}}
	}
	return []ServiceKey{{Family: FamilyOf(vs.Addr), Proto: vs.Proto, Addr: vs.Addr, Port: vs.Port}}
}

// family is the virtual server's family where the key does not say.
func (vs *VirtualServer) family() Family {
	if vs.Family != 0 {
		return vs.Family
	}
	if vs.Addr.IsValid() {
		return FamilyOf(vs.Addr)
	}
	if vs.Group != nil {
		for _, r := range vs.Group.Ranges {
			return FamilyOf(r.First)
		}
	}
	for _, r := range vs.Reals {
		if r.Method != TUN {
			return FamilyOf(r.Addr)
		}
	}
	for _, r := range vs.Reals {
		return FamilyOf(r.Addr)
	}
	return IPv4 // keepalived: "defaulting to IPv4"
}

// method is a real server's forwarding method after inheritance.
func (vs *VirtualServer) method(r RealServer) Method {
	if r.Method != MethodDefault {
		return r.Method
	}
	if vs.Method != MethodDefault {
		return vs.Method
	}
	return NAT
}

func (vs *VirtualServer) tunnel(r RealServer) Tunnel {
	if r.Tunnel != nil {
		return *r.Tunnel
	}
	return vs.Tunnel
}

// inhibit is a real server's inhibit_on_failure after inheritance.
func (vs *VirtualServer) inhibit(r RealServer) bool {
	if r.Inhibit != nil {
		return *r.Inhibit
	}
	return vs.Inhibit
}

// alpha is a real server's alpha after inheritance.
func (vs *VirtualServer) alpha(r RealServer) bool {
	if r.Alpha != nil {
		return *r.Alpha
	}
	return vs.Alpha
}

// weight is a real server's configured weight after inheritance.
func (vs *VirtualServer) weight(r RealServer) uint32 {
	if r.Weight != nil {
		return *r.Weight
	}
	if vs.Weight != 0 {
		return vs.Weight
	}
	return 1
}

// destPort is the port of a real server as a destination of key k:
// keepalived keeps the real server's port for NAT (the virtual port when it
// has none) and uses the virtual port otherwise, 0 for fwmark services
// (ipvswrapper.c ipvs_cmd, ipvs_group_cmd).
func destPort(k ServiceKey, m Method, rsPort uint16) uint16 {
	if m == NAT && rsPort != 0 {
		return rsPort
	}
	return k.Port
}

// Severity of a Diagnostic.
type Severity uint8

// Severities.
const (
	Warning Severity = iota + 1
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Diagnostic is a problem found in the virtual server specs, with the
// configuration position of the virtual or real server it concerns.
type Diagnostic struct {
	Where    string
	Severity Severity
	Msg      string
}

func (d Diagnostic) String() string {
	if d.Where == "" {
		return fmt.Sprintf("%s: %s", d.Severity, d.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", d.Where, d.Severity, d.Msg)
}

// Normalize applies keepalived 2.2.7's defaults and corrections
// (check_data.c validate_check_config, check_parser.c) to a copy of specs and
// returns it with what was changed. Virtual servers keepalived would ignore
// are dropped with an Error diagnostic. The result is what Desired expects.
func Normalize(specs []VirtualServer) ([]VirtualServer, []Diagnostic) {
	var out []VirtualServer
	var diags []Diagnostic
	groupSeq := map[string]int{}
	seen := map[ServiceKey]string{}
	for _, in := range specs {
		vs := in
		vs.Reals = append([]RealServer(nil), in.Reals...)
		if in.Sorry != nil {
			s := *in.Sorry
			vs.Sorry = &s
		}
		warn := func(where, f string, a ...any) {
			if where == "" {
				where = vs.Where
			}
			diags = append(diags, Diagnostic{Where: where, Severity: Warning, Msg: fmt.Sprintf("virtual server %s: ", vs.ID()) + fmt.Sprintf(f, a...)})
		}
		drop := func(f string, a ...any) {
			diags = append(diags, Diagnostic{Where: vs.Where, Severity: Error, Msg: fmt.Sprintf("virtual server %s: ", vs.ID()) + fmt.Sprintf(f, a...)})
		}
		if vs.Group != nil {
			vs.GroupSeq = groupSeq[vs.Group.Name]
			groupSeq[vs.Group.Name]++
			if len(vs.Group.Ranges) == 0 && len(vs.Group.FWMarks) == 0 {
				// keepalived: "virtual server group %s has no entries - removing"
				drop("virtual server group %s has no entries - ignoring", vs.Group.Name)
				continue
			}
			bad := false
			for _, r := range vs.Group.Ranges {
				if !r.First.IsValid() || !r.Last.IsValid() || r.First.Is4() != r.Last.Is4() || r.Last.Less(r.First) {
					drop("group %s: bad address range %v-%v - ignoring", vs.Group.Name, r.First, r.Last)
					bad = true
				} else if rangeSize(r.First, r.Last) > maxKeys {
					drop("group %s: address range %v-%v has more than %d addresses - ignoring", vs.Group.Name, r.First, r.Last, maxKeys)
					bad = true
				}
			}
			if bad {
				continue
			}
		} else if vs.FWMark == 0 && !vs.Addr.IsValid() {
			drop("no address, fwmark or group - ignoring")
			continue
		}

		// keepalived: real servers whose family differs from the virtual
		// server's are skipped unless tunnelled (rs_end_handler).
		fam := vs.family()
		reals := vs.Reals[:0]
		for _, r := range vs.Reals {
			if vs.method(r) != TUN && FamilyOf(r.Addr) != fam {
				warn(r.Where, "address family of virtual server and real server %s don't match - skipping real server", r.Addr)
				continue
			}
			reals = append(reals, r)
		}
		vs.Reals = reals
		if vs.Sorry != nil && vs.method(*vs.Sorry) != TUN && FamilyOf(vs.Sorry.Addr) != fam {
			warn(vs.Sorry.Where, "address family of virtual server and sorry server %s don't match - skipping sorry server", vs.Sorry.Addr)
			vs.Sorry = nil
		}

		if len(vs.Reals) == 0 {
			// keepalived: "Virtual server %s has no real servers - ignoring"
			drop("has no real servers - ignoring")
			continue
		}
		if vs.HASuspend && (vs.FWMark != 0 || (vs.Group != nil && len(vs.Group.FWMarks) > 0)) {
			warn("", "cannot use ha_suspend with fwmarks - clearing ha_suspend")
			vs.HASuspend = false
		}
		byAddr := vs.FWMark == 0 && (vs.Group == nil || len(vs.Group.Ranges) > 0)
		if byAddr {
			if vs.Proto == 0 {
				// keepalived: the kernel takes protocol 0 as UDP.
				warn("", "no protocol set - defaulting to UDP")
				vs.Proto = UDP
			}
			if vs.Flags&FlagOnePacket != 0 && vs.Proto != UDP {
				warn("", "one packet scheduling requires UDP - resetting")
				vs.Flags &^= FlagOnePacket
			}
			if vs.PersistenceTimeout == 0 && vs.Group == nil && vs.Port == 0 {
				warn("", "zero port only valid for persistent services - setting")
				vs.PersistenceTimeout = 360 // IPVS_SVC_PERSISTENT_TIMEOUT
			}
		}
		if vs.PersistenceTimeout == 0 && vs.Group != nil {
			for _, r := range vs.Group.Ranges {
				if r.Port == 0 {
					warn("", "zero port only valid for persistent services - setting")
					vs.PersistenceTimeout = 360
					break
				}
			}
		}
		if vs.Proto != 0 && !byAddr {
			warn("", "protocol specified for fwmark - protocol will be ignored")
			vs.Proto = 0
		}
		if vs.Scheduler == "" {
			warn("", "no scheduler set, setting default 'wlc'")
			vs.Scheduler = "wlc"
		}
		if vs.PersistenceGranularity != 0 && vs.PersistenceTimeout == 0 {
			// keepalived pgr_handler: granularity implies the default timeout.
			vs.PersistenceTimeout = 360
		}
		if vs.Method == MethodDefault {
			needs := false
			for _, r := range vs.Reals {
				needs = needs || r.Method == MethodDefault
			}
			if vs.Sorry != nil && vs.Sorry.Method == MethodDefault {
				needs = true
			}
			if needs {
				warn("", "no forwarding method set, setting default NAT")
				vs.Method = NAT
			}
		}

		// Duplicated real servers: keepalived keeps the first.
		var weightSum uint64
		dedup := vs.Reals[:0]
		seenRS := map[netip.AddrPort]bool{}
		for _, r := range vs.Reals {
			if seenRS[r.AddrPort()] {
				warn(r.Where, "real server %s is duplicated - removing second rs", vs.RealName(r))
				continue
			}
			seenRS[r.AddrPort()] = true
			dedup = append(dedup, r)
		}
		vs.Reals = dedup

		// Ports (validate_check_config, the non-group branch corrects them).
		if vs.Group == nil {
			for i := range vs.Reals {
				fixPort(&vs, &vs.Reals[i], "real server", warn)
			}
			if vs.Sorry != nil {
				fixPort(&vs, vs.Sorry, "sorry server", warn)
			}
		}
		for _, r := range vs.Reals {
			weightSum += uint64(vs.weight(r))
		}
		if vs.Sorry != nil {
			for _, r := range vs.Reals {
				if r.AddrPort() == vs.Sorry.AddrPort() && vs.inhibit(r) != vs.SorryInhibit {
					warn(r.Where, "real server %s matches sorry server, but inhibit setting differs, %sing on sorry server", vs.RealName(r), map[bool]string{true: "sett", false: "clear"}[vs.inhibit(r)])
					vs.SorryInhibit = vs.inhibit(r)
				}
			}
		}
		if vs.Quorum == 0 {
			vs.Quorum = 1 // check_data.c alloc_vs
		}
		if uint64(vs.Quorum) > weightSum {
			warn("", "quorum %d exceeds total weight of real servers %d, reducing quorum to %d", vs.Quorum, weightSum, weightSum)
			vs.Quorum = uint32(weightSum)
		}
		if vs.Hysteresis >= vs.Quorum && vs.Hysteresis > 0 {
			h := uint32(0)
			if vs.Quorum > 0 {
				h = vs.Quorum - 1
			}
			warn("", "hysteresis %d >= quorum %d; setting hysteresis to %d", vs.Hysteresis, vs.Quorum, h)
			vs.Hysteresis = h
		}
		keys := vs.Keys()
		if len(keys) > maxKeys {
			drop("expands to more than %d services - ignoring", maxKeys)
			continue
		}
		dup := false
		for _, k := range keys {
			if other, ok := seen[k]; ok {
				drop("service %v is also defined by %s - ignoring", k, other)
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		for _, k := range keys {
			seen[k] = vs.ID()
		}
		out = append(out, vs)
	}
	return out, diags
}

func fixPort(vs *VirtualServer, r *RealServer, what string, warn func(string, string, ...any)) {
	if vs.method(*r) == NAT {
		if vs.FWMark == 0 && r.Port == 0 {
			r.Port = vs.Port
		}
		return
	}
	if vs.FWMark != 0 {
		if r.Port != 0 {
			warn(r.Where, "fwmark virtual server, %s %s has port specified - clearing", what, r.Addr)
			r.Port = 0
		}
		return
	}
	if r.Port == 0 {
		r.Port = vs.Port
	} else if r.Port != vs.Port {
		warn(r.Where, "virtual server and %s %s ports don't match - resetting", what, r.Addr)
		r.Port = vs.Port
	}
}

func rangeSize(first, last netip.Addr) uint64 {
	a := new(big.Int).SetBytes(first.AsSlice())
	b := new(big.Int).SetBytes(last.AsSlice())
	d := new(big.Int).Sub(b, a)
	if !d.IsUint64() {
		return ^uint64(0)
	}
	return d.Uint64() + 1
}
