package netif

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Scope is an address scope (ifa_scope), as in /etc/iproute2/rt_scopes.
type Scope uint8

// The scopes keepalived's `scope` keyword accepts by name.
const (
	ScopeGlobal  Scope = 0
	ScopeSite    Scope = 200
	ScopeLink    Scope = 253
	ScopeHost    Scope = 254
	ScopeNowhere Scope = 255
)

var scopeNames = map[string]Scope{
	"global": ScopeGlobal, "site": ScopeSite, "link": ScopeLink, "host": ScopeHost, "nowhere": ScopeNowhere,
}

// ParseScope accepts a scope name (global, site, link, host, nowhere) or a
// number 0-255, as keepalived does through rt_scopes.
func ParseScope(s string) (Scope, error) {
	if v, ok := scopeNames[s]; ok {
		return v, nil
	}
	n, err := strconv.ParseUint(s, 0, 8)
	if err != nil {
		return 0, fmt.Errorf("netif: invalid scope %q", s)
	}
	return Scope(n), nil
}

func (s Scope) String() string {
	for k, v := range scopeNames {
		if v == s {
			return k
		}
	}
	return strconv.Itoa(int(s))
}

// Address flags a VIP may carry (IFA_F_*), as keepalived's keywords set them.
const (
	FlagHome          = 0x10  // IFA_F_HOMEADDRESS, keyword "home"
	FlagNoDAD         = 0x02  // IFA_F_NODAD; set on every IPv6 VIP unless "-nodad"
	FlagMngTmpAddr    = 0x100 // IFA_F_MANAGETEMPADDR, keyword "mngtmpaddr"
	FlagNoPrefixRoute = 0x200 // IFA_F_NOPREFIXROUTE, keyword "noprefixroute"
	FlagAutoJoin      = 0x400 // IFA_F_MCAUTOJOIN, keyword "autojoin"
)

// LifetimeForever is the infinite preferred lifetime (INFINITY_LIFE_TIME).
const LifetimeForever = ^uint32(0)

// VIP is one entry of keepalived's virtual_ipaddress (or
// virtual_ipaddress_excluded) block:
//
//	<ADDR>[/<PREFIX>] [brd <ADDR>|+|-] [dev <IF>] [scope <SCOPE>] [label <LABEL>]
//	    [peer <ADDR>] [home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin]
//	    [preferred_lft forever|<N>]
type VIP struct {
	// Prefix is the address and its prefix length; keepalived's default is
	// /32 for IPv4 and /128 for IPv6. The host bits are kept.
	Prefix netip.Prefix
	// Dev is the interface; the engine fills in the instance's interface when
	// the configuration names none.
	Dev string
	// Label is the IPv4 address label (`label eth0:1`), shown by `ip addr`.
	Label string
	// Broadcast is the IPv4 broadcast address; zero for none.
	Broadcast netip.Addr
	Scope     Scope
	// Peer is the point-to-point peer (IFA_ADDRESS). keepalived accepts no
	// prefix length with a peer: Prefix is then a /32 or /128.
	Peer netip.Addr
	// Flags are extra IFA_F_* flags (FlagHome, FlagNoPrefixRoute, ...).
	Flags uint32
	// KeepDAD is keepalived's "-nodad": do not set IFA_F_NODAD on an IPv6
	// VIP. By default every IPv6 VIP is added with nodad so it is usable at
	// once and cannot end up dadfailed after a split brain (keepalived
	// 2.2.7 vrrp_ipaddress.c).
	KeepDAD bool
	// PreferredLft is the IPv6 preferred lifetime; nil means keepalived's
	// default: 0 (deprecated, so never chosen as a source address) for a
	// /128, forever otherwise.
	PreferredLft *uint32
}

// Addr returns the VIP's address.
func (v VIP) Addr() netip.Addr { return v.Prefix.Addr() }

func (v VIP) String() string {
	var b strings.Builder
	b.WriteString(v.Prefix.String())
	if v.Peer.IsValid() {
		fmt.Fprintf(&b, " peer %s", v.Peer)
	}
	if v.Broadcast.IsValid() {
		fmt.Fprintf(&b, " brd %s", v.Broadcast)
	}
	if v.Dev != "" {
		fmt.Fprintf(&b, " dev %s", v.Dev)
	}
	if v.Scope != ScopeGlobal {
		fmt.Fprintf(&b, " scope %s", v.Scope)
	}
	if v.Label != "" {
		fmt.Fprintf(&b, " label %s", v.Label)
	}
	return b.String()
}

// preferredLft returns the preferred lifetime to request, keepalived's way.
func (v VIP) preferredLft() uint32 {
	if v.PreferredLft != nil {
		return *v.PreferredLft
	}
	if v.Prefix.Addr().Is6() && v.Prefix.Bits() == 128 && !v.Peer.IsValid() {
		return 0
	}
	return LifetimeForever
}

// ifaFlags returns the IFA_F_* flags to request when adding the VIP.
func (v VIP) ifaFlags() uint32 {
	f := v.Flags
	if v.Prefix.Addr().Is6() && !v.KeepDAD {
		f |= FlagNoDAD
	}
	return f
}

// Validate checks what the kernel would otherwise reject less clearly.
func (v VIP) Validate() error {
	a := v.Prefix.Addr()
	if !v.Prefix.IsValid() || a.Zone() != "" {
		return fmt.Errorf("netif: vip %q: invalid address", v.Prefix)
	}
	if a.Is4In6() {
		return fmt.Errorf("netif: vip %s: IPv4-mapped IPv6 address", a)
	}
	if v.Dev == "" {
		return fmt.Errorf("netif: vip %s: no interface", a)
	}
	if a.Is6() {
		if v.Label != "" {
			return fmt.Errorf("netif: vip %s: label on an IPv6 address", a)
		}
		if v.Broadcast.IsValid() {
			return fmt.Errorf("netif: vip %s: broadcast on an IPv6 address", a)
		}
	}
	if v.Broadcast.IsValid() && !v.Broadcast.Is4() {
		return fmt.Errorf("netif: vip %s: broadcast %s is not IPv4", a, v.Broadcast)
	}
	if v.Peer.IsValid() && v.Peer.Is4() != a.Is4() {
		return fmt.Errorf("netif: vip %s: peer %s of another family", a, v.Peer)
	}
	if len(v.Label) >= 16 {
		return fmt.Errorf("netif: vip %s: label %q longer than 15 bytes", a, v.Label)
	}
	return nil
}

// ParseVIP parses one virtual_ipaddress line, split into words, as keepalived
// 2.2.7 does (vrrp_ipaddress.c alloc_ipaddress). The config package may use
// it or build VIP values itself. Unlike keepalived, which logs and skips or
// ignores, every problem is an error.
func ParseVIP(words []string) (VIP, error) {
	var v VIP
	if len(words) == 0 {
		return v, errors.New("netif: empty address")
	}
	p, err := parseAddrPrefix(words[0], true)
	if err != nil {
		return v, err
	}
	v.Prefix = p
	brd := "" // "+", "-" or an address
	for i := 1; i < len(words); i++ {
		w := words[i]
		arg := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("netif: %s: no %s parameter", words[0], w)
			}
			i++
			return words[i], nil
		}
		switch w {
		case "dev", "scope", "broadcast", "brd", "label", "peer", "preferred_lft":
			a, err := arg()
			if err != nil {
				return VIP{}, err
			}
			switch w {
			case "dev":
				if v.Dev != "" {
					return VIP{}, fmt.Errorf("netif: %s: dev given twice", words[0])
				}
				v.Dev = a
			case "scope":
				s, err := ParseScope(a)
				if err != nil {
					return VIP{}, err
				}
				v.Scope = s
			case "broadcast", "brd":
				brd = a
			case "label":
				v.Label = a
			case "peer":
				if v.Peer.IsValid() {
					return VIP{}, fmt.Errorf("netif: %s: peer given twice", words[0])
				}
				// keepalived: the peer takes no prefix length and the
				// address keeps its full length.
				pp, err := parseAddrPrefix(a, false)
				if err != nil {
					return VIP{}, err
				}
				if pp.Addr().Is4() != v.Prefix.Addr().Is4() {
					return VIP{}, fmt.Errorf("netif: %s: peer %s of another family", words[0], a)
				}
				if v.Prefix.Bits() != v.Prefix.Addr().BitLen() {
					return VIP{}, fmt.Errorf("netif: %s: a prefix length and a peer address", words[0])
				}
				v.Peer = pp.Addr()
			case "preferred_lft":
				var n uint32 = LifetimeForever
				if a != "forever" {
					u, err := strconv.ParseUint(a, 10, 32)
					if err != nil {
						return VIP{}, fmt.Errorf("netif: %s: invalid preferred_lft %q", words[0], a)
					}
					n = uint32(u)
				}
				v.PreferredLft = &n
			}
		case "home":
			v.Flags |= FlagHome
		case "-nodad":
			v.KeepDAD = true
		case "mngtmpaddr":
			v.Flags |= FlagMngTmpAddr
		case "noprefixroute":
			v.Flags |= FlagNoPrefixRoute
		case "autojoin":
			v.Flags |= FlagAutoJoin
		default:
			return VIP{}, fmt.Errorf("netif: %s: unknown keyword %q", words[0], w)
		}
	}
	a := v.Prefix.Addr()
	if brd != "" {
		if a.Is6() {
			return VIP{}, fmt.Errorf("netif: %s: broadcast on an IPv6 address", words[0])
		}
		if v.Peer.IsValid() {
			return VIP{}, fmt.Errorf("netif: %s: broadcast and peer", words[0])
		}
		switch brd {
		case "+", "-":
			// keepalived: '+' sets the host bits, '-' clears them; only for
			// prefixes up to /30.
			if v.Prefix.Bits() > 30 {
				return VIP{}, fmt.Errorf("netif: %s: prefix too long for broadcast %s", words[0], brd)
			}
			b := a.As4()
			host := ^uint32(0) >> v.Prefix.Bits()
			n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			if brd == "+" {
				n |= host
			} else {
				n &^= host
			}
			v.Broadcast = netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		default:
			b, err := netip.ParseAddr(brd)
			if err != nil || !b.Is4() {
				return VIP{}, fmt.Errorf("netif: %s: invalid broadcast %q", words[0], brd)
			}
			v.Broadcast = b
		}
	}
	if a.Is6() {
		if v.Scope != ScopeGlobal {
			return VIP{}, fmt.Errorf("netif: %s: scope on an IPv6 address", words[0])
		}
		if v.Label != "" {
			return VIP{}, fmt.Errorf("netif: %s: label on an IPv6 address", words[0])
		}
	}
	if len(v.Label) >= 16 {
		return VIP{}, fmt.Errorf("netif: %s: label %q longer than 15 bytes", words[0], v.Label)
	}
	return v, nil
}

// parseAddrPrefix parses ADDR or ADDR/N; the default length is the full one.
func parseAddrPrefix(s string, allowLen bool) (netip.Prefix, error) {
	addr, plen, hasLen := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("netif: invalid address %q", s)
	}
	a = a.Unmap()
	bits := a.BitLen()
	if hasLen {
		if !allowLen {
			return netip.Prefix{}, fmt.Errorf("netif: unexpected prefix length in %q", s)
		}
		n, err := strconv.Atoi(plen)
		if err != nil || n < 0 || n > a.BitLen() {
			return netip.Prefix{}, fmt.Errorf("netif: invalid prefix length in %q", s)
		}
		bits = n
	}
	return netip.PrefixFrom(a, bits), nil
}
