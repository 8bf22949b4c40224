package lb

import (
	"fmt"
	"net/netip"

	"github.com/vigil-ha/vigil/internal/inet"
)

// VirtualServer is one keepalived `virtual_server` block after
// internal/config has applied keepalived's defaults and corrections: it
// holds values only (no configuration positions), so that two specs compare
// equal when the services they describe are the same. Exactly one of
// (Addr, Port, Proto), FWMark or Group identifies it.
type VirtualServer struct {
	Addr   netip.Addr // `virtual_server IP PORT`
	Port   uint16
	Proto  Protocol // `protocol TCP|UDP|SCTP`
	FWMark uint32   // `virtual_server fwmark N`
	Group  *Group   // `virtual_server group NAME`
	// Family is the virtual server's family as the configuration resolved
	// it: `ip_family`, else its address's or its group's, else its real
	// servers' (keepalived 2.2.7 check_parser.c vs_end_handler), else IPv4.
	Family Family

	Scheduler string // `lb_algo` / `lvs_sched`; keepalived defaults to wlc
	Flags     Flags  // `ops`, `flag-N`, `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`
	// Method is `lb_kind` / `lvs_method` as the configuration resolved it
	// (NAT by default). The configuration has already given it to the real
	// servers that set none: each RealServer carries its own.
	Method Method

	// PersistenceTimeout is `persistence_timeout` in seconds (0: none).
	PersistenceTimeout uint32
	// PersistenceGranularity is `persistence_granularity` as IPVS's
	// netmask: an IPv4 mask (0xffffff00) or an IPv6 prefix length; 0 means
	// unset (a single address).
	PersistenceGranularity uint32
	PersistenceEngine      string // `persistence_engine`

	// Quorum is `quorum` and Hysteresis `hysteresis`, as corrected by the
	// configuration (the quorum at most the total weight, the hysteresis
	// below the quorum).
	Quorum     uint32
	Hysteresis uint32
	QuorumUp   string // `quorum_up` script
	QuorumDown string // `quorum_down` script

	Omega     bool // `omega`: run notify_down/quorum_down scripts at shutdown
	HASuspend bool // `ha_suspend`

	Virtualhost string // `virtualhost` (for HTTP/SSL checkers; carried only)

	Sorry        *RealServer // `sorry_server IP PORT` (+ `sorry_server_lvs_method`)
	SorryInhibit bool        // `sorry_server_inhibit`

	Reals []RealServer

	// GroupSeq is the position of this virtual server among those using the
	// same group; keepalived prints it in FMT_VS.
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
	Addr netip.Addr
	Port uint16
	// Weight is `weight` (the virtual server's when the real server sets
	// none, as the configuration resolved it).
	Weight uint32
	// Method is `lvs_method`, the virtual server's `lb_kind` when the real
	// server sets none, as the configuration resolved it; Tunnel its TUN
	// options (zero for the other methods).
	Method     Method
	Tunnel     Tunnel
	UThreshold uint32
	LThreshold uint32
	// Inhibit is `inhibit_on_failure`, the virtual server's when the real
	// server sets none. Alpha: the real server starts down until checked,
	// because one of its checkers is in alpha mode (keepalived counts
	// failed checkers, not the `alpha` keyword of the real server).
	Inhibit     bool
	Alpha       bool
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
// address ranges); the configuration refuses more.
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
				out = append(out, ServiceKey{Family: inet.FamilyOf(a), Proto: vs.Proto, Addr: a, Port: r.Port})
				if len(out) > maxKeys {
					return out
				}
			}
		}
		for _, m := range vs.Group.FWMarks {
			f := m.Family
			if f == 0 {
				f = vs.Family
			}
			out = append(out, ServiceKey{Family: f, FWMark: m.Mark})
		}
		return out
	case vs.FWMark != 0:
		return []ServiceKey{{Family: vs.Family, FWMark: vs.FWMark}}
	}
	return []ServiceKey{{Family: inet.FamilyOf(vs.Addr), Proto: vs.Proto, Addr: vs.Addr, Port: vs.Port}}
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
