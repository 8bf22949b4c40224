package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route is one virtual_routes entry (keepalived's "ip route" subset):
// installed while the instance is MASTER.
type Route struct {
	Dst    netip.Prefix
	Gw     netip.Addr // via
	Dev    string
	Src    netip.Addr
	Table  int // 0: main
	Metric int
	Scope  Scope
	// Type is "" (unicast), "blackhole", "unreachable", "prohibit" or
	// "throw".
	Type   string
	OnLink bool
}

// String formats the route as `ip route` would.
func (r Route) String() string {
	s := r.Dst.String()
	if r.Type != "" {
		s = r.Type + " " + s
	}
	if r.Gw.IsValid() {
		s += " via " + r.Gw.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Table != 0 {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	return s
}

var routeTypes = map[string]int{
	"": unix.RTN_UNICAST, "unicast": unix.RTN_UNICAST, "blackhole": unix.RTN_BLACKHOLE,
	"unreachable": unix.RTN_UNREACHABLE, "prohibit": unix.RTN_PROHIBIT, "throw": unix.RTN_THROW,
}

// RouteTypeValid reports whether t is a route type AddRoute supports.
func RouteTypeValid(t string) bool { _, ok := routeTypes[t]; return ok }

func (h *Handle) route(r Route) (*netlink.Route, error) {
	typ, ok := routeTypes[r.Type]
	if !ok {
		return nil, fmt.Errorf("netif: route type %q not supported", r.Type)
	}
	nr := &netlink.Route{
		Dst:      prefixNet(r.Dst),
		Table:    r.Table,
		Priority: r.Metric,
		Scope:    netlink.Scope(r.Scope),
		Type:     typ,
		Protocol: netlink.RouteProtocol(h.proto),
	}
	if r.Dst.Addr().Is6() {
		nr.Family = unix.AF_INET6
	} else {
		nr.Family = unix.AF_INET
	}
	if r.Gw.IsValid() {
		nr.Gw = net.IP(r.Gw.AsSlice())
	}
	if r.Src.IsValid() {
		nr.Src = net.IP(r.Src.AsSlice())
	}
	if r.OnLink {
		nr.Flags |= int(netlink.FLAG_ONLINK)
	}
	if r.Dev != "" {
		l, err := h.link(r.Dev)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = l.Attrs().Index
	}
	return nr, nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

// AddRoute installs a route, marked with vigil's protocol (18, as
// keepalived's RTPROT_KEEPALIVED). A route that exists already is success.
func (h *Handle) AddRoute(r Route) error {
	nr, err := h.route(r)
	if err != nil {
		return err
	}
	if err := h.nh.RouteAdd(nr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("netif: add route %s: %w", r, err)
	}
	return nil
}

// DelRoute removes a route; a route that is gone already is success.
func (h *Handle) DelRoute(r Route) error {
	nr, err := h.route(r)
	if err != nil {
		if errors.Is(err, ErrLinkNotFound) {
			return nil // the interface went away, and the route with it
		}
		return err
	}
	if err := h.nh.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netif: delete route %s: %w", r, err)
	}
	return nil
}

// Rule is one virtual_rules entry ("ip rule" subset): installed while the
// instance is MASTER.
type Rule struct {
	From, To   netip.Prefix
	Table      int
	Preference int // 0: let the kernel choose
	IPv6       bool
}

func (r Rule) String() string {
	s := "from all"
	if r.From.IsValid() {
		s = "from " + r.From.String()
	}
	if r.To.IsValid() {
		s += " to " + r.To.String()
	}
	return s + fmt.Sprintf(" table %d", r.Table)
}

func (h *Handle) rule(r Rule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = unix.AF_INET
	if r.IPv6 {
		nr.Family = unix.AF_INET6
	}
	if r.From.IsValid() {
		nr.Src = prefixNet(r.From)
	}
	if r.To.IsValid() {
		nr.Dst = prefixNet(r.To)
	}
	nr.Table = r.Table
	if r.Preference > 0 {
		nr.Priority = r.Preference
	}
	nr.Protocol = h.proto
	return nr
}

// AddRule installs a policy routing rule; one that exists is success.
func (h *Handle) AddRule(r Rule) error {
	if err := h.nh.RuleAdd(h.rule(r)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("netif: add rule %s: %w", r, err)
	}
	return nil
}

// DelRule removes a policy routing rule; one that is gone is success.
func (h *Handle) DelRule(r Rule) error {
	if err := h.nh.RuleDel(h.rule(r)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("netif: delete rule %s: %w", r, err)
	}
	return nil
}
