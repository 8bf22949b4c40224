package translate

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/netif"
	"golang.org/x/sys/unix"
)

// rtprotKeepalived is RTPROT_KEEPALIVED: keepalived 2.2.7 marks every
// route and rule it tracks with it, and resets another protocol asked for.
const rtprotKeepalived = unix.RTPROT_KEEPALIVED

// ignored ends a message about a route or rule keepalived 2.2.7 leaves out
// (alloc_route()/alloc_rule() "goto err").
const ignored = "; the route is ignored, as keepalived does"

// warnFunc reports a problem keepalived 2.2.7 reports and goes on from.
type warnFunc func(format string, args ...any)

// routeOf converts a virtual_routes line into what netif programs, as
// keepalived 2.2.7's alloc_route() and netlink_route() build it (defDev,
// the instance's interface, only names the fix in a warning). An error
// means keepalived leaves the route out too (or, for the few options vigil
// cannot program, encap, vrf, that vigil does); warn reports what
// keepalived reports and goes on from.
func routeOf(nm *names, r config.Route, defDev string, warn warnFunc) (netif.Route, error) {
	fail := func(format string, args ...any) (netif.Route, error) {
		return netif.Route{}, fmt.Errorf("virtual route %s: "+format, append([]any{r.Dst}, args...)...)
	}
	if !netif.RouteTypeValid(r.Type) {
		return fail("route type %q is not supported%s", r.Type, ignored)
	}
	table, err := nm.rtTable(r.Table)
	if err != nil {
		// keepalived: "Routing table NAME not found for route".
		return fail("%v%s", err, ignored)
	}
	v6 := r.Family == config.Inet6
	nr := netif.Route{Dst: r.Dst, From: r.From, Gw: r.Via, Dev: r.Dev, Src: r.Src, Table: table, Metric: uint32(r.Metric), OnLink: r.OnLink}
	if r.Type != "unicast" {
		nr.Type = r.Type
	}
	if nr.Table == unix.RT_TABLE_MAIN {
		nr.Table = 0
	}
	if r.Scope != "" {
		sc, err := netif.ParseScope(r.Scope)
		if err != nil {
			n, err := nm.rtName(r.Scope, "rt_scopes", 255, nil)
			if err != nil {
				return fail("scope %q not found or invalid%s", r.Scope, ignored)
			}
			sc = netif.Scope(n)
		}
		nr.Scope, nr.ScopeSet = sc, true
	}
	if r.Protocol != "" {
		// Only a no_track route keeps its protocol (config resets the
		// others, as keepalived does).
		p, err := nm.rtName(r.Protocol, "rt_protos", 255, rtProtos)
		if err != nil {
			return fail("protocol %q not found or invalid%s", r.Protocol, ignored)
		}
		if r.NoTrack {
			nr.Protocol = uint8(p)
		}
	}
	if r.Or.IsValid() {
		// keepalived: the via address becomes the first nexthop, "or"'s
		// the second.
		nr.Nexthops = []netif.Nexthop{{Gw: r.Via}, {Gw: r.Or}}
		nr.Gw = netip.Addr{}
	}
	o := r.Options
	for i := 0; i < len(o); i++ {
		w := o[i]
		val := func() (string, bool) {
			if i+1 >= len(o) {
				return "", false
			}
			i++
			return o[i], true
		}
		lock := func(t int) {
			if i+1 < len(o) && o[i+1] == "lock" {
				nr.Locks |= 1 << t
				i++
			}
		}
		switch w {
		case "add", "append":
			nr.Mode = w
		case "prepend":
			nr.Mode = ""
		case "tos", "dsfield":
			v, _ := val()
			n, err := nm.rtName(v, "rt_dsfield", 255, nil)
			if err != nil {
				return fail("TOS value %q is invalid%s", v, ignored)
			}
			nr.TOS = uint8(n)
		case "realms":
			v, _ := val()
			n, err := nm.realms(v)
			if err != nil {
				return fail("invalid realms %q%s", v, ignored)
			}
			if v6 {
				return fail("realms are only valid for IPv4%s", ignored)
			}
			nr.Realms = n
		case "expires":
			v, _ := val()
			if !v6 {
				return fail("expires is only valid for IPv6%s", ignored)
			}
			n, err := strconv.ParseUint(v, 0, 32)
			if err != nil {
				return fail("invalid expires time %q%s", v, ignored)
			}
			nr.Expires, nr.ExpiresSet = uint32(n), true
		case "mtu", "advmss", "reordering", "cwnd", "ssthresh", "window", "initcwnd", "initrwnd", "hoplimit", "quickack", "fastopen_no_cookie":
			t := netif.MetricNames[w]
			if w != "window" && w != "initcwnd" && w != "initrwnd" && w != "hoplimit" && w != "quickack" && w != "fastopen_no_cookie" {
				lock(t)
			}
			v, _ := val()
			max := uint64(math.MaxUint32)
			switch w {
			case "hoplimit":
				max = 255
			case "quickack", "fastopen_no_cookie":
				max = 1
			}
			n, err := strconv.ParseUint(v, 0, 64)
			if err != nil || n > max {
				return fail("invalid %s value %q%s", w, v, ignored)
			}
			nr.Metrics = append(nr.Metrics, netif.Metric{Type: t, Value: uint32(n)})
		case "rtt", "rttvar", "rto_min":
			// Units: 1/8000 s for rtt, 1/4000 s for rttvar, 1 ms for
			// rto_min (keepalived get_time_rtt()).
			t := netif.MetricNames[w]
			lock(t)
			v, _ := val()
			mult := map[string]uint32{"rtt": 8, "rttvar": 4, "rto_min": 1}[w]
			n, err := timeRTT(v, mult, warn)
			if err != nil {
				return fail("invalid %s %q%s", w, v, ignored)
			}
			nr.Metrics = append(nr.Metrics, netif.Metric{Type: t, Value: n})
		case "features":
			v, _ := val()
			if v != "ecn" {
				warn("feature %s not supported; keepalived adds the route without it", v)
				continue
			}
			nr.Metrics = append(nr.Metrics, netif.Metric{Type: unix.RTAX_FEATURES, Value: unix.RTAX_FEATURE_ECN})
		case "congctl":
			lock(unix.RTAX_CC_ALGO)
			v, _ := val()
			nr.Congctl = v
		case "pref":
			v, _ := val()
			if !v6 {
				return fail("pref is only valid for IPv6%s", ignored)
			}
			switch v {
			case "low":
				nr.Pref = 3 // ICMPV6_ROUTER_PREF_LOW
			case "medium":
				nr.Pref = 0
			case "high":
				nr.Pref = 1
			default:
				n, err := strconv.ParseUint(v, 0, 8)
				if err != nil {
					return fail("invalid pref value %q%s", v, ignored)
				}
				nr.Pref = uint8(n)
			}
			nr.PrefSet = true
		case "ttl-propagate":
			v, _ := val()
			switch v {
			case "enabled":
				nr.TTLPropagate = 1
			case "disabled":
			default:
				warn("ttl-propagate value %s not recognised; keepalived sends disabled", v)
			}
			nr.TTLPropagateSet = true
		case "nexthop":
			if r.Or.IsValid() {
				warn("cannot specify nexthops with \"or\"; keepalived ignores the nexthops")
				i = len(o)
				continue
			}
			nhs, err := nexthopsOf(nm, o[i:], v6, warn)
			if err != nil {
				return fail("%v", err)
			}
			nr.Nexthops = nhs
			i = len(o)
		case "encap":
			return fail("encap (lightweight tunnel) is not supported by vigil; vigil does not add this route (keepalived 2.2.7 adds it); add it in the OS")
		case "vrf":
			return fail("vrf is not supported by vigil (keepalived 2.2.7 adds the route to the VRF's table); vigil does not add this route; name the VRF's table with table instead")
		default:
			return fail("option %q is not supported by vigil; vigil does not add this route (keepalived 2.2.7 adds it)", w)
		}
	}
	if nr.Dev == "" && !nr.Gw.IsValid() && len(nr.Nexthops) == 0 && nr.Type == "" {
		// keepalived 2.2.7 sends such a route without a device; the kernel
		// refuses it (ENODEV) and keepalived logs that at each takeover.
		warn("a unicast route needs dev or via; the kernel refuses it, as it refuses keepalived's (add dev %s)", defDev)
	}
	return nr, nil
}

// nexthopsOf parses "nexthop ... [nexthop ...]" (keepalived
// parse_nexthops()). keepalived adds the route with the nexthops read
// before one it cannot parse, and says so; so does vigil.
func nexthopsOf(nm *names, o []string, v6 bool, warn warnFunc) ([]netif.Nexthop, error) {
	var out []netif.Nexthop
	i := 0
	for i < len(o) && o[i] == "nexthop" {
		i++
		var nh netif.Nexthop
		bad := func(format string, args ...any) ([]netif.Nexthop, error) {
			warn("nexthop: "+format+"; keepalived adds the route with the nexthops before it", args...)
			return out, nil
		}
	opts:
		for i < len(o) {
			w := o[i]
			v := ""
			if i+1 < len(o) {
				v = o[i+1]
			}
			switch w {
			case "via":
				i++
				if v == "inet" || v == "inet6" {
					if (v == "inet6") != v6 {
						return bad("IPv4/6 mismatch")
					}
					i++
					v = ""
					if i < len(o) {
						v = o[i]
					}
				}
				a, err := netip.ParseAddr(v)
				if err != nil {
					return bad("invalid address %q", v)
				}
				if a.Is6() != v6 {
					return bad("address family mismatch for %s", a)
				}
				nh.Gw = a
			case "dev":
				i++
				nh.Dev = v
			case "weight":
				i++
				n, err := strconv.ParseUint(v, 0, 32)
				if err != nil || n == 0 || n > 256 {
					return bad("invalid weight %q", v)
				}
				nh.Weight = int(n)
			case "onlink":
				nh.OnLink = true
			case "realms":
				i++
				n, err := nm.realms(v)
				if err != nil {
					return bad("invalid realms %q", v)
				}
				if v6 {
					return bad("realms are only supported for IPv4")
				}
				nh.Realms = n
			case "encap":
				return nil, fmt.Errorf("nexthop encap (lightweight tunnel) is not supported by vigil; vigil does not add this route (keepalived 2.2.7 adds it); add it in the OS")
			case "as":
				return bad("'as [to]' (nat) not supported")
			default:
				break opts
			}
			i++
		}
		out = append(out, nh)
	}
	if i < len(o) {
		warn("route has trailing nonsense after nexthops - %s; keepalived adds the route with the nexthops before it", o[i])
	}
	return out, nil
}

// timeRTT reads an rtt, rttvar or rto_min value as keepalived's
// get_time_rtt(): a bare number is in the kernel's units, "N[.F]s" in
// seconds and "N[.F]ms" in milliseconds (times mult); the result is held
// between 200 ms and 120 s.
func timeRTT(s string, mult uint32, warn warnFunc) (uint32, error) {
	raw, num, scale := true, s, 1.0
	ls := strings.ToLower(s)
	switch {
	case strings.HasSuffix(ls, "ms"):
		raw, num = false, s[:len(s)-2]
	case strings.HasSuffix(ls, "secs"):
		raw, num, scale = false, s[:len(s)-4], 1000
	case strings.HasSuffix(ls, "sec"):
		raw, num, scale = false, s[:len(s)-3], 1000
	case strings.HasSuffix(ls, "s"):
		raw, num, scale = false, s[:len(s)-1], 1000
	}
	if num == "" || strings.ContainsAny(num, "eE+-sS") {
		return 0, fmt.Errorf("invalid time %q", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid time %q", s)
	}
	v := f * scale
	if !raw {
		v *= float64(mult)
	}
	lo, hi := float64(200*mult), float64(120000*mult)
	switch {
	case v > hi:
		warn("rtt value %s exceeds maximum 120s; keepalived uses 120s", s)
		v = hi
	case v < lo:
		warn("rtt value %s below minimum 200ms; keepalived uses 200ms", s)
		v = lo
	}
	return uint32(v), nil
}

// realms reads "REALM[/REALM]" (names from /etc/iproute2/rt_realms): the
// first is the source realm (high 16 bits) when two are given.
func (nm *names) realms(s string) (uint32, error) {
	a, b, two := strings.Cut(s, "/")
	x, err := nm.rtName(a, "rt_realms", 255, nil)
	if err != nil {
		return 0, err
	}
	if !two {
		return x, nil
	}
	y, err := nm.rtName(b, "rt_realms", 255, nil)
	if err != nil {
		return 0, err
	}
	return x<<16 | y, nil
}

// rtProtos are the protocol names keepalived knows without rt_protos.
var rtProtos = map[string]uint32{
	"none": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8, "ra": 9, "mrt": 10,
	"zebra": 11, "bird": 12, "dnrouted": 13, "xorp": 14, "ntk": 15, "dhcp": 16, "babel": 42,
}

// rtDir is where iproute2's name files are.
const rtDir = "/etc/iproute2/"

// names resolves the names of iproute2's files in rtDir (rt_tables,
// rt_protos, rt_scopes, rt_realms, rt_dsfield, group) and of
// /etc/protocols, reading each file at most once: one names serves one
// translation (FromConfig), however many routes and rules name things.
type names struct {
	read  func(path string) ([]byte, error) // os.ReadFile
	files map[string][]byte                 // by path; nil: unreadable
}

func newNames() *names { return &names{read: os.ReadFile, files: map[string][]byte{}} }

// file returns the content of path, read on the first call only (nil when
// it cannot be read).
func (nm *names) file(path string) []byte {
	b, ok := nm.files[path]
	if !ok {
		b, _ = nm.read(path)
		nm.files[path] = b
	}
	return b
}

// rtName resolves a number (decimal, 0x hex or 0 octal) up to max, or a
// name from /etc/iproute2/FILE, then from defaults, as keepalived's
// rttables.c find_entry() does.
func (nm *names) rtName(s, file string, max uint32, defaults map[string]uint32) (uint32, error) {
	if s == "" {
		return 0, fmt.Errorf("missing value")
	}
	if n, err := strconv.ParseUint(s, 0, 32); err == nil {
		if n > uint64(max) {
			return 0, fmt.Errorf("%s is over %d", s, max)
		}
		return uint32(n), nil
	}
	if b := nm.file(rtDir + file); b != nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 || f[1] != s || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], "-") {
				continue
			}
			if n, err := strconv.ParseUint(f[0], 0, 32); err == nil && n <= uint64(max) {
				return uint32(n), nil
			}
		}
	}
	if n, ok := defaults[s]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("%q is not a number and not in %s%s", s, rtDir, file)
}

// rtTable resolves a table name or number: main, local, default, a number,
// or a name from /etc/iproute2/rt_tables. "" is main.
func (nm *names) rtTable(name string) (int, error) {
	if name == "" {
		return unix.RT_TABLE_MAIN, nil
	}
	n, err := nm.rtName(name, "rt_tables", math.MaxUint32, map[string]uint32{"default": 253, "main": 254, "local": 255})
	if err != nil {
		return 0, fmt.Errorf("routing table %q is not a number and not in /etc/iproute2/rt_tables", name)
	}
	return int(n), nil
}

// ruleOf converts a virtual_rules line as keepalived 2.2.7's alloc_rule()
// and netlink_rule() build it; an error means keepalived leaves it out
// too.
func ruleOf(nm *names, r config.Rule, warn warnFunc) (netif.Rule, error) {
	const ign = "; the rule is ignored, as keepalived does"
	fail := func(format string, args ...any) (netif.Rule, error) {
		return netif.Rule{}, fmt.Errorf("virtual rule: "+format, args...)
	}
	nr := netif.Rule{From: r.From, To: r.To, Preference: int(r.Preference), IPv6: r.Family == config.Inet6}
	action := ""
	hasAction, tableOption := false, false
	setAction := func(a string) bool {
		if hasAction {
			return false
		}
		action, hasAction = a, true
		return true
	}
	if r.Table != "" {
		t, err := nm.rtTable(r.Table)
		if err != nil {
			// keepalived: "Routing table NAME not found for rule".
			return fail("%v%s", err, ign)
		}
		if t == 0 {
			return fail("table 0 is not valid%s", ign)
		}
		nr.Table = t
		hasAction = true
	}
	protocol := -1
	o := r.Options
	for i := 0; i < len(o); i++ {
		w := o[i]
		v := ""
		if config.RuleOptionValues(w) > 0 && i+1 < len(o) {
			i++
			v = o[i]
		}
		switch w {
		case "not":
			nr.Not = true
		case "tos", "dsfield":
			n, err := nm.rtName(v, "rt_dsfield", 255, nil)
			if err != nil {
				return fail("TOS value %q is invalid%s", v, ign)
			}
			nr.TOS = uint8(n)
		case "fwmark":
			m, mask, hasMask := strings.Cut(v, "/")
			n, err := strconv.ParseUint(m, 0, 32)
			if err != nil {
				return fail("invalid fwmark %q%s", v, ign)
			}
			nr.Mark, nr.MarkSet = uint32(n), true
			if hasMask {
				k, err := strconv.ParseUint(mask, 0, 32)
				if err != nil {
					return fail("invalid fwmark %q%s", v, ign)
				}
				nr.Mask, nr.MaskSet = uint32(k), true
			}
		case "realms":
			n, err := nm.realms(v)
			if err != nil {
				return fail("invalid realms %q%s", v, ign)
			}
			if nr.IPv6 {
				return fail("realms is only valid for IPv4%s", ign)
			}
			nr.Realms, tableOption = n, true
		case "suppress_prefixlength", "sup_pl":
			n, err := strconv.ParseUint(v, 0, 31)
			if err != nil {
				return fail("invalid suppress_prefixlength %q%s", v, ign)
			}
			nr.SuppressPrefixLen, nr.SuppressPrefixLenSet, tableOption = uint32(n), true, true
		case "suppress_ifgroup", "sup_group":
			n, err := nm.rtName(v, "group", math.MaxInt32, nil)
			if err != nil {
				return fail("suppress_ifgroup %q is invalid%s", v, ign)
			}
			nr.SuppressIfgroup, nr.SuppressIfgroupSet, tableOption = n, true, true
		case "dev", "iif":
			nr.IIf = v
		case "oif":
			nr.OIf = v
		case "tunnel-id":
			n, err := strconv.ParseUint(v, 0, 64)
			if err != nil {
				return fail("invalid tunnel-id %q%s", v, ign)
			}
			nr.TunID = n
		case "uidrange":
			a, b, ok := strings.Cut(v, "-")
			x, err1 := strconv.ParseUint(a, 10, 32)
			y, err2 := strconv.ParseUint(b, 10, 32)
			if !ok || err1 != nil || err2 != nil {
				return fail("invalid uidrange %q%s", v, ign)
			}
			nr.UIDStart, nr.UIDEnd, nr.UIDSet = uint32(x), uint32(y), true
		case "l3mdev":
			if !setAction("") {
				return fail("cannot specify l3mdev with another action%s", ign)
			}
			nr.L3mdev = true
		case "protocol":
			n, err := strconv.ParseUint(v, 0, 8)
			if err != nil {
				warn("invalid protocol %s; keepalived adds the rule without it", v)
				continue
			}
			protocol = int(n)
		case "ipproto":
			n, ok := nm.ipProto(v)
			if !ok {
				warn("invalid ipproto %s; keepalived adds the rule without it", v)
				continue
			}
			nr.IPProto, nr.IPProtoSet = n, true
		case "sport", "dport":
			pr, ok := portRange(v)
			if !ok {
				warn("invalid %s range %s; keepalived adds the rule without it", w, v)
				continue
			}
			if w == "sport" {
				nr.Sport = pr
			} else {
				nr.Dport = pr
			}
		case "goto":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return fail("invalid goto target %q%s", v, ign)
			}
			nr.Goto = uint32(n)
			if !setAction("goto") {
				return fail("cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable/l3mdev%s", ign)
			}
		case "type", "nop", "blackhole", "unreachable", "prohibit":
			a := w
			if w == "type" {
				a = v
			}
			switch a {
			case "nop", "blackhole", "unreachable", "prohibit":
			case "goto":
				return fail("type goto is not supported by vigil; write goto N; vigil does not add this rule (keepalived 2.2.7 adds it)")
			default:
				return fail("invalid rule action %q%s", a, ign)
			}
			if !setAction(a) {
				return fail("cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable/l3mdev%s", ign)
			}
		default:
			return fail("option %q is not supported by vigil; vigil does not add this rule (keepalived 2.2.7 adds it)", w)
		}
	}
	nr.Action = action
	if !hasAction {
		return fail("no action (table, goto, nop, blackhole, unreachable, prohibit or l3mdev)%s", ign)
	}
	if action == "goto" && uint32(nr.Preference) >= nr.Goto {
		return fail("preference %d >= goto target %d%s", nr.Preference, nr.Goto, ign)
	}
	if action != "" && tableOption {
		return fail("suppressor/realm specified for non table action%s", ign)
	}
	if nr.L3mdev && r.Table != "" {
		return fail("table cannot be specified for l3mdev rules%s", ign)
	}
	switch {
	case !r.NoTrack:
		if protocol >= 0 && protocol != rtprotKeepalived {
			warn("rule cannot be tracked if protocol is not %d; keepalived resets it", rtprotKeepalived)
		}
		nr.Protocol = rtprotKeepalived
	case protocol >= 0:
		nr.Protocol = protocol
		if protocol == 0 {
			nr.Protocol = -1
		}
	default:
		nr.Protocol = -1
	}
	return nr, nil
}

// ipProto reads an IP protocol number (0-127, as keepalived's
// inet_proto_a2n()) or a name from /etc/protocols.
func (nm *names) ipProto(s string) (uint8, bool) {
	if s == "" || s[0] == '-' {
		return 0, false
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return uint8(n), n <= 127
	}
	if n, ok := map[string]uint8{"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132, "udplite": 136}[s]; ok {
		return n, true
	}
	b := nm.file("/etc/protocols")
	if b == nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == s || len(f) > 2 && f[2] == s) {
			if n, err := strconv.ParseUint(f[1], 10, 8); err == nil {
				return uint8(n), true
			}
		}
	}
	return 0, false
}

// portRange reads "N" or "N-M" (keepalived: sscanf "%hu-%hu").
func portRange(s string) (netif.PortRange, bool) {
	a, b, two := strings.Cut(s, "-")
	x, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return netif.PortRange{}, false
	}
	y := x
	if two {
		if y, err = strconv.ParseUint(b, 10, 16); err != nil {
			return netif.PortRange{}, false
		}
	}
	return netif.PortRange{Start: uint16(x), End: uint16(y), Set: true}, true
}

// staticOf converts static_routes and static_rules as routeOf and ruleOf
// convert an instance's; what keepalived or vigil leaves out is a warning.
func staticOf(nm *names, c *config.Config, ds *diag.Diagnostics) ([]netif.Route, []netif.Rule) {
	var routes []netif.Route
	var rules []netif.Rule
	for _, r := range c.StaticRoutes {
		warn := func(format string, args ...any) {
			ds.Warnf(r.Pos, "static route %s: "+format, append([]any{r.Dst}, args...)...)
		}
		if r.TrackGroup != "" {
			warn("track_group %s is not acted on by vigil (keepalived 2.2.7 faults the group's instances when the route goes); the route is added", r.TrackGroup)
		}
		nr, err := routeOf(nm, r, "a device", warn)
		if err != nil {
			ds.Warnf(r.Pos, "static_routes: %v", err)
			continue
		}
		routes = append(routes, nr)
	}
	for _, r := range c.StaticRules {
		warn := func(format string, args ...any) {
			ds.Warnf(r.Pos, "static rule: "+format, args...)
		}
		if r.TrackGroup != "" {
			warn("track_group %s is not acted on by vigil (keepalived 2.2.7 faults the group's instances when the rule goes); the rule is added", r.TrackGroup)
		}
		nr, err := ruleOf(nm, r, warn)
		if err != nil {
			ds.Warnf(r.Pos, "static_rules: %v", err)
			continue
		}
		rules = append(rules, nr)
	}
	return routes, rules
}
