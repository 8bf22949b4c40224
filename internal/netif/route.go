package netif

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Route is one virtual_routes entry (keepalived's "ip route" syntax):
// installed while the instance is MASTER.
//
// The rtnetlink message is built here, attribute by attribute as
// keepalived 2.2.7 builds it (vrrp_iproute.c netlink_route), rather than
// through vishvananda/netlink's Route: v1.3.1 has no field for RTA_SRC
// ("from"), RTA_PREF, RTA_EXPIRES, RTA_TTL_PROPAGATE, a nexthop's realms,
// or the locks of metrics other than mtu and rto_min, and it adds every
// route with NLM_F_EXCL where keepalived prepends.
//
// Every field is a value: routes compare with ==-like reflect.DeepEqual,
// which is how a reload tells a changed route from an unchanged one.
type Route struct {
	Dst  netip.Prefix
	From netip.Prefix // source prefix (RTA_SRC); keepalived takes it for IPv6 only
	// Gw is the gateway ("via"); one of the other family than Dst goes
	// out as RTA_VIA.
	Gw  netip.Addr
	Dev string
	Src netip.Addr // preferred source (RTA_PREFSRC)
	// Table is the table id; 0 is main.
	Table  int
	Metric uint32 // RTA_PRIORITY; 0: none given
	// Scope is sent when ScopeSet; otherwise universe on add and nowhere
	// (any) on delete, as keepalived does.
	Scope    Scope
	ScopeSet bool
	// Type is "" (unicast) or a name of RouteTypes.
	Type string
	// Protocol is rtm_protocol; 0 is the handle's (18, keepalived's).
	Protocol uint8
	TOS      uint8 // rtm_tos ("tos" / "dsfield")
	OnLink   bool
	Realms   uint32 // RTA_FLOW: from<<16 | to
	// Metrics are the RTA_METRICS values in the order given (RTAX_*).
	Metrics []Metric
	// Locks is the RTAX_LOCK bit set (1 << RTAX_*), "lock" before a value.
	Locks   uint32
	Congctl string // RTAX_CC_ALGO
	// Pref is the IPv6 router preference (RTA_PREF) when PrefSet.
	Pref    uint8
	PrefSet bool
	// TTLPropagate is RTA_TTL_PROPAGATE (0 or 1) when TTLPropagateSet.
	TTLPropagate    uint8
	TTLPropagateSet bool
	// Expires is RTA_EXPIRES in seconds (IPv6) when ExpiresSet.
	Expires    uint32
	ExpiresSet bool
	// Nexthops make a multipath route (RTA_MULTIPATH).
	Nexthops []Nexthop
	// Mode is how the route is added: "" prepends (no NLM_F_EXCL, the
	// kernel's and keepalived's default), "add" fails on an existing
	// route of the same key (NLM_F_EXCL), "append" appends.
	Mode string
}

// Metric is one RTA_METRICS attribute: Type is an RTAX_* number.
type Metric struct {
	Type  int
	Value uint32
}

// Nexthop is one "nexthop" of a multipath route.
type Nexthop struct {
	Gw  netip.Addr
	Dev string
	// Weight is 1..256 when given (rtnh_hops is weight-1); 0: none.
	Weight int
	OnLink bool
	Realms uint32
}

// MetricNames are the keepalived/iproute2 names of the RTAX_* metrics.
var MetricNames = map[string]int{
	"mtu": unix.RTAX_MTU, "window": unix.RTAX_WINDOW, "rtt": unix.RTAX_RTT, "rttvar": unix.RTAX_RTTVAR,
	"ssthresh": unix.RTAX_SSTHRESH, "cwnd": unix.RTAX_CWND, "advmss": unix.RTAX_ADVMSS,
	"reordering": unix.RTAX_REORDERING, "hoplimit": unix.RTAX_HOPLIMIT, "initcwnd": unix.RTAX_INITCWND,
	"features": unix.RTAX_FEATURES, "rto_min": unix.RTAX_RTO_MIN, "initrwnd": unix.RTAX_INITRWND,
	"quickack": unix.RTAX_QUICKACK, "congctl": unix.RTAX_CC_ALGO, "fastopen_no_cookie": unix.RTAX_FASTOPEN_NO_COOKIE,
}

// RouteTypes are the route types by name (keepalived's rttables.c
// rtntypes: "brd" is broadcast).
var RouteTypes = map[string]uint8{
	"unicast": unix.RTN_UNICAST, "local": unix.RTN_LOCAL, "broadcast": unix.RTN_BROADCAST,
	"brd": unix.RTN_BROADCAST, "anycast": unix.RTN_ANYCAST, "multicast": unix.RTN_MULTICAST,
	"blackhole": unix.RTN_BLACKHOLE, "unreachable": unix.RTN_UNREACHABLE, "prohibit": unix.RTN_PROHIBIT,
	"throw": unix.RTN_THROW, "nat": unix.RTN_NAT, "xresolve": unix.RTN_XRESOLVE,
}

// RouteTypeValid reports whether t is a route type AddRoute supports: ""
// or a name of RouteTypes.
func RouteTypeValid(t string) bool { _, ok := RouteTypes[t]; return ok || t == "" }

// String formats the route as `ip route` would.
func (r Route) String() string {
	var b strings.Builder
	if r.Type != "" && r.Type != "unicast" {
		b.WriteString(r.Type + " ")
	}
	b.WriteString(r.Dst.String())
	if r.From.IsValid() {
		b.WriteString(" from " + r.From.String())
	}
	if r.TOS != 0 {
		fmt.Fprintf(&b, " tos 0x%x", r.TOS)
	}
	if r.Gw.IsValid() {
		b.WriteString(" via " + r.Gw.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	for _, m := range r.Metrics {
		fmt.Fprintf(&b, " %s", metricName(m.Type))
		if r.Locks&(1<<m.Type) != 0 {
			b.WriteString(" lock")
		}
		fmt.Fprintf(&b, " %d", m.Value)
	}
	if r.Congctl != "" {
		b.WriteString(" congctl " + r.Congctl)
	}
	if r.OnLink {
		b.WriteString(" onlink")
	}
	for _, nh := range r.Nexthops {
		b.WriteString(" nexthop")
		if nh.Gw.IsValid() {
			b.WriteString(" via " + nh.Gw.String())
		}
		if nh.Dev != "" {
			b.WriteString(" dev " + nh.Dev)
		}
		if nh.Weight != 0 {
			fmt.Fprintf(&b, " weight %d", nh.Weight)
		}
		if nh.OnLink {
			b.WriteString(" onlink")
		}
	}
	return b.String()
}

// SameIdentity reports whether o is r but for options a route replace
// changes in place (metrics, source, protocol, ...): the same Key
// (destination, table, type), tos, metric, scope, gateway, device and
// nexthops, as keepalived 2.2.7's route_exist() compares them on reload.
func (r Route) SameIdentity(o Route) bool {
	if r.Key() != o.Key() || r.TOS != o.TOS || r.Metric != o.Metric ||
		r.ScopeSet != o.ScopeSet || r.Scope != o.Scope ||
		r.Gw != o.Gw || r.Dev != o.Dev || len(r.Nexthops) != len(o.Nexthops) {
		return false
	}
	for k := range r.Nexthops {
		if r.Nexthops[k] != o.Nexthops[k] {
			return false
		}
	}
	return true
}

func metricName(t int) string {
	for k, v := range MetricNames {
		if v == t {
			return k
		}
	}
	return "metric" + strconv.Itoa(t)
}

// rawData is a request body part that is already serialised.
type rawData []byte

func (d rawData) Len() int          { return len(d) }
func (d rawData) Serialize() []byte { return d }

// routeMessage builds RTM_NEWROUTE (flags: NLM_F_CREATE and the mode's) or
// RTM_DELROUTE for r.
func (h *Handle) routeMessage(typ, flags int, r Route) (*nl.NetlinkRequest, error) {
	del := typ == unix.RTM_DELROUTE
	rt := uint8(unix.RTN_UNICAST)
	if r.Type != "" {
		t, ok := RouteTypes[r.Type]
		if !ok {
			return nil, fmt.Errorf("netif: route type %q not supported", r.Type)
		}
		rt = t
	}
	fam := uint8(unix.AF_INET)
	if r.Dst.Addr().Is6() {
		fam = unix.AF_INET6
	}
	msg := &nl.RtMsg{RtMsg: unix.RtMsg{Family: fam, Tos: r.TOS, Type: rt, Protocol: h.proto}}
	if r.Protocol != 0 {
		msg.Protocol = r.Protocol
	}
	if del {
		msg.Scope = unix.RT_SCOPE_NOWHERE
		if r.Type == "" {
			msg.Type = 0 // any type, as keepalived deletes a route it gave no type
		}
	}
	if r.ScopeSet {
		msg.Scope = uint8(r.Scope)
	}
	table := r.Table
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	if r.OnLink {
		msg.Flags |= unix.RTNH_F_ONLINK
	}
	var attrs []nl.NetlinkRequestData
	if table < 256 {
		msg.Table = uint8(table)
	} else {
		msg.Table = unix.RT_TABLE_UNSPEC
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(uint32(table))))
	}
	msg.Dst_len = uint8(r.Dst.Bits())
	attrs = append(attrs, nl.NewRtAttr(unix.RTA_DST, r.Dst.Masked().Addr().AsSlice()))
	if r.From.IsValid() {
		msg.Src_len = uint8(r.From.Bits())
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_SRC, r.From.Masked().Addr().AsSlice()))
	}
	if r.Src.IsValid() {
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_PREFSRC, r.Src.AsSlice()))
	}
	if r.Gw.IsValid() {
		attrs = append(attrs, gatewayAttr(fam, r.Gw))
	}
	if r.Dev != "" {
		l, err := h.link(r.Dev)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(l.Attrs().Index))))
	}
	if r.Metric != 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(r.Metric)))
	}
	if r.Realms != 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_FLOW, nl.Uint32Attr(r.Realms)))
	}
	if r.ExpiresSet {
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_EXPIRES, nl.Uint32Attr(r.Expires)))
	}
	if r.PrefSet {
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_PREF, []byte{r.Pref}))
	}
	if r.TTLPropagateSet {
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_TTL_PROPAGATE, []byte{r.TTLPropagate}))
	}
	if len(r.Metrics) > 0 || r.Congctl != "" {
		mx := nl.NewRtAttr(unix.RTA_METRICS, nil)
		if r.Congctl != "" {
			mx.AddRtAttr(unix.RTAX_CC_ALGO, []byte(r.Congctl))
		}
		for _, m := range r.Metrics {
			mx.AddRtAttr(m.Type, nl.Uint32Attr(m.Value))
		}
		if r.Locks != 0 {
			mx.AddRtAttr(unix.RTAX_LOCK, nl.Uint32Attr(r.Locks))
		}
		attrs = append(attrs, mx)
	}
	if len(r.Nexthops) > 0 {
		mp, err := h.multipath(fam, r.Nexthops)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_MULTIPATH, mp))
	}
	req := h.request(typ, flags|unix.NLM_F_ACK)
	req.AddData(msg)
	for _, a := range attrs {
		req.AddData(a)
	}
	return req, nil
}

// gatewayAttr is RTA_GATEWAY for a gateway of the route's family, RTA_VIA
// (struct rtvia: family, address) for one of the other.
func gatewayAttr(fam uint8, gw netip.Addr) *nl.RtAttr {
	if gw.Is4() == (fam == unix.AF_INET) {
		return nl.NewRtAttr(unix.RTA_GATEWAY, gw.AsSlice())
	}
	via := make([]byte, 2, 18)
	f := uint16(unix.AF_INET)
	if gw.Is6() {
		f = unix.AF_INET6
	}
	binary.NativeEndian.PutUint16(via, f)
	return nl.NewRtAttr(unix.RTA_VIA, append(via, gw.AsSlice()...))
}

// multipath serialises the nexthops as RTA_MULTIPATH's payload: struct
// rtnexthop (len, flags, hops = weight-1, ifindex) and its attributes.
func (h *Handle) multipath(fam uint8, nhs []Nexthop) ([]byte, error) {
	var out []byte
	for _, nh := range nhs {
		var attrs []byte
		if nh.Gw.IsValid() {
			attrs = append(attrs, gatewayAttr(fam, nh.Gw).Serialize()...)
		}
		if nh.Realms != 0 {
			attrs = append(attrs, nl.NewRtAttr(unix.RTA_FLOW, nl.Uint32Attr(nh.Realms)).Serialize()...)
		}
		b := make([]byte, unix.SizeofRtNexthop)
		binary.NativeEndian.PutUint16(b[0:2], uint16(unix.SizeofRtNexthop+len(attrs)))
		if nh.OnLink {
			b[2] = unix.RTNH_F_ONLINK
		}
		if nh.Weight > 0 {
			b[3] = uint8(nh.Weight - 1)
		}
		if nh.Dev != "" {
			l, err := h.link(nh.Dev)
			if err != nil {
				return nil, err
			}
			binary.NativeEndian.PutUint32(b[4:8], uint32(l.Attrs().Index))
		}
		out = append(out, b...)
		out = append(out, attrs...)
	}
	return out, nil
}

// execute sends a request that routeMessage or ruleMessage built (or
// returns the error that building it gave) and waits for the kernel's
// answer.
func execute(req *nl.NetlinkRequest, err error) error {
	if err != nil {
		return err
	}
	_, err = req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// AddRoute installs a route, marked with vigil's protocol (18, as
// keepalived's RTPROT_KEEPALIVED) unless it names another. A route that
// exists already, identical, is success.
func (h *Handle) AddRoute(r Route) error {
	flags := unix.NLM_F_CREATE
	switch r.Mode {
	case "add":
		flags |= unix.NLM_F_EXCL
	case "append":
		flags |= unix.NLM_F_APPEND
	}
	if err := execute(h.routeMessage(unix.RTM_NEWROUTE, flags, r)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("netif: add route %s: %w", r, err)
	}
	return nil
}

// ReplaceRoute installs r in place of the route of the same key
// (destination, tos, metric, table), as keepalived does on reload for a
// route whose options changed (NLM_F_REPLACE).
func (h *Handle) ReplaceRoute(r Route) error {
	if err := execute(h.routeMessage(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, r)); err != nil {
		return fmt.Errorf("netif: replace route %s: %w", r, err)
	}
	return nil
}

// DelRoute removes a route; a route that is gone already is success.
func (h *Handle) DelRoute(r Route) error {
	err := execute(h.routeMessage(unix.RTM_DELROUTE, 0, r))
	switch {
	case err == nil, errors.Is(err, ErrLinkNotFound):
		return nil // the interface went away, and the route with it
	case errors.Is(err, unix.ESRCH), errors.Is(err, unix.ENOENT):
		return nil
	case r.ExpiresSet:
		return nil // keepalived: an expiring route may have gone already
	}
	return fmt.Errorf("netif: delete route %s: %w", r, err)
}
