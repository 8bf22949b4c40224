// Package lb is the pure half of vigil's load balancer: the desired state of
// the kernel's virtual services (IPVS or nftables), computed from keepalived's
// virtual_server configuration and the health of the real servers with
// keepalived 2.2.7's policy (quorum, hysteresis, sorry server,
// inhibit_on_failure, alpha, omega), the difference between two such states,
// and the Backend contract the data planes (internal/lb/nft, internal/lb/ipvs)
// implement. The loop that keeps a Backend at the desired state is the
// director's (internal/director/reconcile).
//
// Everything here is pure: no clock, no I/O, no goroutines.
package lb

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vigil-ha/vigil/internal/inet"
)

// Family is the address family of a virtual service (internal/inet).
type Family = inet.Family

// Address families.
const (
	IPv4 = inet.IPv4
	IPv6 = inet.IPv6
)

// Protocol is the transport protocol of an address-based virtual service
// (keepalived's `protocol`), as its IP protocol number.
type Protocol uint8

// Protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	case 0:
		return "none"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// lower is keepalived's spelling in FMT_VS/FMT_RS ("[10.0.0.1]:tcp:80").
func (p Protocol) lower() string {
	switch p {
	case TCP, UDP, SCTP, 0:
		return strings.ToLower(p.String())
	}
	return "?"
}

// Method is how a destination is reached (keepalived's lb_kind / lvs_method).
type Method uint8

// Forwarding methods. MethodDefault (zero) is no method: specs made from a
// configuration and States always hold one of NAT, DR, TUN.
const (
	MethodDefault Method = iota
	NAT                  // IPVS masquerading: destination NAT, replies must return through the director
	DR                   // direct routing: the destination MAC is rewritten; real servers hold the VIP
	TUN                  // IP-in-IP (or GUE/GRE) tunnelling to the real server
)

func (m Method) String() string {
	switch m {
	case NAT:
		return "NAT"
	case DR:
		return "DR"
	case TUN:
		return "TUN"
	}
	return "default"
}

// TunnelType is the encapsulation of TUN destinations (keepalived's
// `lvs_method TUN type ipip|gue|gre`).
type TunnelType uint8

// Tunnel types, as IPVS numbers them.
const (
	TunnelIPIP TunnelType = 0
	TunnelGUE  TunnelType = 1
	TunnelGRE  TunnelType = 2
)

// Tunnel describes TUN encapsulation; the zero value is plain IPIP.
type Tunnel struct {
	Type TunnelType
	Port uint16 // GUE only
	// Csum is IPVS's tunnel flags: 0 nocsum, 1 csum, 2 remcsum.
	Csum uint16
}

// Flags are IPVS service flags set by keepalived keywords.
type Flags uint32

// Service flags (linux/ip_vs.h IP_VS_SVC_F_*). keepalived maps `ops`,
// `flag-1..3`, `sh-fallback`/`mh-fallback` (flag-1) and `sh-port`/`mh-port`
// (flag-2) onto these. The persistent flag is derived from Timeout and is
// never stored here.
const (
	FlagOnePacket  Flags = 0x0004
	FlagSched1     Flags = 0x0008
	FlagSched2     Flags = 0x0010
	FlagSched3     Flags = 0x0020
	FlagSHFallback       = FlagSched1
	FlagSHPort           = FlagSched2
	FlagMHFallback       = FlagSched1
	FlagMHPort           = FlagSched2
)

// ServiceKey identifies one kernel virtual service: an address, port and
// protocol, or a firewall mark of one family. It is comparable.
type ServiceKey struct {
	Family Family
	Proto  Protocol   // 0 for fwmark services
	Addr   netip.Addr // invalid (zero) for fwmark services
	Port   uint16     // 0: every port (persistent services only)
	FWMark uint32     // non-zero for fwmark services
}

// IsFWMark reports whether the key is a firewall-mark service.
func (k ServiceKey) IsFWMark() bool { return k.FWMark != 0 }

// String formats the key as ipvsadm -Ln does: "TCP  192.168.1.1:80",
// "FWM  1 IPv6".
func (k ServiceKey) String() string {
	if k.IsFWMark() {
		if k.Family == IPv6 {
			return fmt.Sprintf("FWM  %d IPv6", k.FWMark)
		}
		return fmt.Sprintf("FWM  %d", k.FWMark)
	}
	return fmt.Sprintf("%-4s %s", k.Proto, netip.AddrPortFrom(k.Addr, k.Port))
}

// Compare orders keys: IPv4 before IPv6, address services before fwmark
// services, then by protocol, address, port and mark.
func (k ServiceKey) Compare(o ServiceKey) int {
	if c := cmp.Compare(k.Family, o.Family); c != 0 {
		return c
	}
	if c := cmp.Compare(k.FWMark, o.FWMark); c != 0 {
		return c
	}
	if c := cmp.Compare(k.Proto, o.Proto); c != 0 {
		return c
	}
	if c := k.Addr.Compare(o.Addr); c != 0 {
		return c
	}
	return cmp.Compare(k.Port, o.Port)
}

// Service is what the kernel holds for one virtual service besides its key
// and destinations. It is comparable; two equal values need no update.
type Service struct {
	Scheduler string // IPVS scheduler name: rr, wrr, lc, wlc, sh, ...
	Flags     Flags
	// Timeout is the persistence timeout in seconds; 0: not persistent.
	Timeout uint32
	// Netmask is the persistence granularity as IPVS holds it: for IPv4 a
	// mask (0xffffff00 for /24), for IPv6 a prefix length. Normalised to
	// the full mask (0xffffffff / 128) when Timeout is 0.
	Netmask uint32
	// PE is the persistence engine (`persistence_engine`, e.g. "sip").
	PE string
}

// FullNetmask is the persistence granularity of a single client address.
func FullNetmask(f Family) uint32 {
	if f == IPv6 {
		return 128
	}
	return 0xffffffff
}

// DestKey identifies one destination (real server) of one service.
type DestKey struct {
	Service ServiceKey
	Addr    netip.AddrPort
}

// Compare orders destination keys by service, then address and port.
func (k DestKey) Compare(o DestKey) int {
	if c := k.Service.Compare(o.Service); c != 0 {
		return c
	}
	return k.Addr.Compare(o.Addr)
}

// Dest is what the kernel holds for one destination. It is comparable.
type Dest struct {
	// Weight 0 keeps the destination (established connections continue)
	// but sends it no new connections: keepalived's inhibit_on_failure.
	Weight     uint32
	Method     Method
	Tunnel     Tunnel // TUN only
	UThreshold uint32 // uthreshold: upper connection limit (0 none)
	LThreshold uint32 // lthreshold
}

// State is a set of virtual services with their destinations: what a Backend
// holds, or should hold. A Dest whose service is absent is invalid; Validate
// reports it.
type State struct {
	Services map[ServiceKey]Service
	Dests    map[DestKey]Dest
}

// NewState returns an empty State with its maps allocated.
func NewState() State {
	return State{Services: map[ServiceKey]Service{}, Dests: map[DestKey]Dest{}}
}

// Clone returns a deep copy.
func (s State) Clone() State {
	c := State{Services: make(map[ServiceKey]Service, len(s.Services)), Dests: make(map[DestKey]Dest, len(s.Dests))}
	for k, v := range s.Services {
		c.Services[k] = v
	}
	for k, v := range s.Dests {
		c.Dests[k] = v
	}
	return c
}

// Equal reports whether two states hold the same services and destinations.
func (s State) Equal(o State) bool {
	if len(s.Services) != len(o.Services) || len(s.Dests) != len(o.Dests) {
		return false
	}
	for k, v := range s.Services {
		if w, ok := o.Services[k]; !ok || w != v {
			return false
		}
	}
	for k, v := range s.Dests {
		if w, ok := o.Dests[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// DestsOf returns the destinations of one service in address order.
func (s State) DestsOf(k ServiceKey) []DestKey {
	var out []DestKey
	for dk := range s.Dests {
		if dk.Service == k {
			out = append(out, dk)
		}
	}
	sortDestKeys(out)
	return out
}

// Validate reports structural errors: destinations without a service, keys
// whose family does not match their address, empty schedulers.
func (s State) Validate() error {
	for k, v := range s.Services {
		if k.IsFWMark() {
			if k.Addr.IsValid() || k.Proto != 0 || k.Port != 0 {
				return fmt.Errorf("lb: service %v: fwmark service with address, protocol or port", k)
			}
		} else {
			if !k.Addr.IsValid() || inet.FamilyOf(k.Addr) != k.Family {
				return fmt.Errorf("lb: service %v: address does not match family %v", k, k.Family)
			}
			if k.Proto != TCP && k.Proto != UDP && k.Proto != SCTP {
				return fmt.Errorf("lb: service %v: protocol %v is not TCP, UDP or SCTP", k, k.Proto)
			}
		}
		if v.Scheduler == "" {
			return fmt.Errorf("lb: service %v: no scheduler", k)
		}
	}
	for k, d := range s.Dests {
		if _, ok := s.Services[k.Service]; !ok {
			return fmt.Errorf("lb: destination %v of absent service %v", k.Addr, k.Service)
		}
		if d.Method != NAT && d.Method != DR && d.Method != TUN {
			return fmt.Errorf("lb: destination %v of %v: no forwarding method", k.Addr, k.Service)
		}
	}
	return nil
}

// DestIndex returns every service's destinations in address order, in one
// pass over the state (DestsOf costs a pass per call).
func (s State) DestIndex() map[ServiceKey][]DestKey {
	idx := make(map[ServiceKey][]DestKey, len(s.Services))
	for dk := range s.Dests {
		idx[dk.Service] = append(idx[dk.Service], dk)
	}
	for _, ds := range idx {
		sortDestKeys(ds)
	}
	return idx
}
