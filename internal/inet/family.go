// Package inet names the two address families for every package that needs
// one: the configuration's ip_family and its addresses, the virtual
// services of the load balancer, the VRRP sockets.
package inet

import (
	"fmt"
	"net/netip"
)

// Family is IPv4 or IPv6; the zero Family is unset.
type Family uint8

// The two families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// FamilyOf returns the family of an address as keepalived reads it: an
// address written in IPv6 notation is IPv6, IPv4-mapped ones included
// (inet_pton(AF_INET6)); the invalid address is IPv4.
func FamilyOf(a netip.Addr) Family {
	if a.Is6() {
		return IPv6
	}
	return IPv4
}

// ParseFamily reads keepalived's spelling of a family: "inet" or "inet6".
func ParseFamily(s string) (Family, bool) {
	switch s {
	case "inet":
		return IPv4, true
	case "inet6":
		return IPv6, true
	}
	return 0, false
}

// String is keepalived's spelling of the family: "inet" or "inet6"
// ("family(N)" for any other value).
func (f Family) String() string {
	switch f {
	case IPv4:
		return "inet"
	case IPv6:
		return "inet6"
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// MarshalText writes the String, so that JSON shows "inet" or "inet6"
// (and "" when unset).
func (f Family) MarshalText() ([]byte, error) {
	switch f {
	case 0:
		return nil, nil
	case IPv4, IPv6:
		return []byte(f.String()), nil
	}
	return nil, fmt.Errorf("inet: %v", f)
}

// UnmarshalText reads "inet" or "inet6" ("" is unset).
func (f *Family) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*f = 0
		return nil
	}
	v, ok := ParseFamily(string(b))
	if !ok {
		return fmt.Errorf("inet: unknown family %q", b)
	}
	*f = v
	return nil
}
