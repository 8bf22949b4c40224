package netif

import (
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
