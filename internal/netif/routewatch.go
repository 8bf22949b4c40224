package netif

import (
	"context"
	"errors"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// RouteKey identifies a route as vigil compares them: destination, table
// (0 is main) and type ("" for unicast).
type RouteKey struct {
	Dst   netip.Prefix
	Table int
	Type  string
}

// Key returns the route's RouteKey.
func (r Route) Key() RouteKey {
	t := r.Type
	if n, ok := RouteTypes[t]; ok {
		t = routeTypeNames[n]
	}
	tab := r.Table
	if tab == unix.RT_TABLE_MAIN {
		tab = 0
	}
	return RouteKey{Dst: r.Dst.Masked(), Table: tab, Type: t}
}

// RouteEvent is a route added or removed.
type RouteEvent struct {
	Key     RouteKey
	Proto   uint8 // rtm_protocol: who added it (vigil: AddrProtoKeepalived)
	Deleted bool
	Initial bool
}

// WatchRoutes is WatchLinks for the routes of both families in every
// table: fn sees the routes present at start (Initial), then every route
// added or removed, for example a virtual route deleted with `ip route
// del`. Cached clones are left out.
func (h *Handle) WatchRoutes(ctx context.Context, fn func(RouteEvent)) error {
	return h.watch(ctx, unix.RTM_GETROUTE, nl.NewRtMsg(),
		[]uint{unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE}, func(m syscall.NetlinkMessage, initial bool) {
			if m.Header.Type != unix.RTM_NEWROUTE && m.Header.Type != unix.RTM_DELROUTE {
				return
			}
			ev, err := parseRouteMsg(m.Data)
			if err != nil {
				return
			}
			ev.Deleted, ev.Initial = m.Header.Type == unix.RTM_DELROUTE, initial
			fn(ev)
		})
}

// RouteTypeOther is RouteKey.Type of a route of a type routeTypeNames does
// not name.
const RouteTypeOther = "other"

// routeTypeNames name the route types in RouteKeys: "" for unicast.
var routeTypeNames = map[uint8]string{
	unix.RTN_UNICAST: "", unix.RTN_LOCAL: "local", unix.RTN_BROADCAST: "broadcast",
	unix.RTN_ANYCAST: "anycast", unix.RTN_MULTICAST: "multicast", unix.RTN_BLACKHOLE: "blackhole",
	unix.RTN_UNREACHABLE: "unreachable", unix.RTN_PROHIBIT: "prohibit", unix.RTN_THROW: "throw",
	unix.RTN_NAT: "nat", unix.RTN_XRESOLVE: "xresolve",
}

// parseRouteMsg reads an rtmsg and its attributes; it checks every length.
func parseRouteMsg(b []byte) (RouteEvent, error) {
	var ev RouteEvent
	if len(b) < unix.SizeofRtMsg {
		return ev, errors.New("netif: short route message")
	}
	fam, dstLen, table, proto, typ := b[0], int(b[1]), int(b[4]), b[5], b[7]
	flags := uint32(b[8]) | uint32(b[9])<<8 | uint32(b[10])<<16 | uint32(b[11])<<24
	if flags&unix.RTM_F_CLONED != 0 {
		return ev, errors.New("netif: cloned route")
	}
	attrs, err := parseAttrs(b[unix.SizeofRtMsg:])
	if err != nil {
		return ev, err
	}
	var dst netip.Addr
	for _, a := range attrs {
		switch a.typ {
		case unix.RTA_DST:
			if d, ok := netip.AddrFromSlice(a.value); ok {
				dst = d
			}
		case unix.RTA_TABLE:
			if len(a.value) >= 4 {
				table = int(uint32(a.value[0]) | uint32(a.value[1])<<8 | uint32(a.value[2])<<16 | uint32(a.value[3])<<24)
			}
		}
	}
	if !dst.IsValid() {
		switch fam {
		case unix.AF_INET:
			dst = netip.IPv4Unspecified()
		case unix.AF_INET6:
			dst = netip.IPv6Unspecified()
		default:
			return ev, errors.New("netif: route of another family")
		}
	}
	if dstLen > dst.BitLen() {
		return ev, errors.New("netif: route prefix too long")
	}
	if table == unix.RT_TABLE_MAIN {
		table = 0
	}
	name, ok := routeTypeNames[typ]
	if !ok {
		name = RouteTypeOther
	}
	ev.Key = RouteKey{Dst: netip.PrefixFrom(dst.Unmap(), dstLen).Masked(), Table: table, Type: name}
	ev.Proto = proto
	return ev, nil
}
