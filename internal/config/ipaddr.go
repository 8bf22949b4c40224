package config

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/internal/inet"
)

// parsePrefix parses "ADDR" or "ADDR/LEN" (keepalived parse_ipaddress());
// a bare address gets /32 or /128.
func (p *parser) parsePrefix(t token, what string) (netip.Prefix, bool) {
	s := t.text
	addr, plen, hasLen := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		p.warnf(t.pos, "%s %q is not a valid IP address; ignored, as keepalived does", what, s)
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	bits := a.BitLen()
	if hasLen {
		n, err := strconv.Atoi(plen)
		if err != nil || n < 0 || n > a.BitLen() {
			p.warnf(t.pos, "%s %q: prefix length %q is not in 0..%d; ignored, as keepalived does", what, s, plen, a.BitLen())
			return netip.Prefix{}, false
		}
		bits = n
	}
	return netip.PrefixFrom(a, bits), true
}

// scopes are the rt_scopes names (keepalived find_rttables_scope()).
var scopes = []string{"global", "universe", "site", "link", "host", "nowhere"}

func (p *parser) scopeArg(t token, what string) (string, bool) {
	if n, err := strconv.ParseUint(t.text, 0, 8); err == nil {
		return strconv.FormatUint(n, 10), true
	}
	return p.enumArg(t, what, scopes...)
}

// parseAddress parses a virtual_ipaddress / virtual_ipaddress_excluded /
// static_ipaddress line (keepalived alloc_ipaddress()).
func (p *parser) parseAddress(e *stmt, static bool) (Address, bool) {
	words := append([]token{e.kw}, e.args...)
	pfx, ok := p.parsePrefix(words[0], "address")
	if !ok {
		return Address{}, false
	}
	if pfx.Addr().Is4() && strings.Contains(words[0].text, ":") {
		// keepalived parses a word with a ':' as IPv6 (inet_pton()): an
		// IPv4 instance drops it ("address family must match VRRP
		// instance - ignoring"); an IPv6 one would add the mapped address,
		// which vigil cannot.
		p.warnf(words[0].pos, "address %s is an IPv4-mapped IPv6 address: keepalived 2.2.7 reads it as IPv6, which an IPv4 instance ignores, and vigil does not add it (write %s for the IPv4 address); ignored", words[0].text, pfx.Addr())
		return Address{}, false
	}
	// From here on, keepalived 2.2.7 alloc_ipaddress(): a bad option is
	// reported and either ignored or, where the address could not be
	// set up as written, the whole address is left out; it runs on.
	a := Address{Pos: e.kw.pos, Prefix: pfx}
	is6 := pfx.Addr().Is6()
	lenGiven := strings.Contains(words[0].text, "/")
	for i := 1; i < len(words); i++ {
		w := words[i]
		val := func() (token, bool) {
			if i+1 >= len(words) {
				p.warnf(w.pos, "%s needs a value; ignored, as keepalived does", w.text)
				return token{}, false
			}
			i++
			return words[i], true
		}
		switch w.text {
		case "dev":
			if v, ok := val(); ok {
				if a.Dev != "" {
					p.warnf(w.pos, "dev given twice for %s; the address is ignored, as keepalived does", words[0].text)
					return Address{}, false
				}
				if !p.ifnameOK(v, "dev") {
					return Address{}, false
				}
				a.Dev = v.text
			}
		case "scope":
			if v, ok := val(); ok {
				if sc, ok := p.scopeArg(v, "scope"); ok {
					if is6 {
						p.warnf(v.pos, "scope cannot be set on an IPv6 address; ignored, as keepalived does")
					} else {
						a.Scope = sc
					}
				}
			}
		case "broadcast", "brd":
			if v, ok := val(); ok {
				if is6 {
					p.warnf(w.pos, "an IPv6 address has no broadcast address; the address is ignored, as keepalived does")
					return Address{}, false
				}
				switch v.text {
				case "+", "-":
					if pfx.Bits() > 30 {
						p.warnf(v.pos, "prefix /%d is too long for a broadcast address; ignored, as keepalived does", pfx.Bits())
					} else {
						a.BroadcastMode = v.text
					}
				default:
					b, err := netip.ParseAddr(v.text)
					if err != nil || !b.Is4() {
						p.warnf(v.pos, "broadcast %q is not an IPv4 address; the address is ignored, as keepalived does", v.text)
						return Address{}, false
					}
					a.Broadcast, a.BroadcastMode = b, "addr"
				}
			}
		case "label":
			if v, ok := val(); ok {
				if len(v.text) >= 16 {
					p.warnf(v.pos, "label %q is longer than 15 bytes; the address is ignored, as keepalived does", v.text)
					return Address{}, false
				}
				if is6 {
					p.warnf(v.pos, "an IPv6 address cannot have a label; ignored, as keepalived does")
				} else {
					a.Label = v.text
				}
			}
		case "peer":
			if v, ok := val(); ok {
				if a.Peer.IsValid() {
					p.warnf(v.pos, "peer given twice; ignored, as keepalived does")
					continue
				}
				pp, ok := p.parsePrefix(v, "peer")
				if !ok {
					continue
				}
				if pp.Addr().Is6() != is6 {
					p.warnf(v.pos, "peer %s is not of the address's family; ignored, as keepalived does", v.text)
					continue
				}
				if lenGiven {
					p.warnf(words[0].pos, "%s: a prefix length cannot be given together with a peer; ignored, as keepalived does", words[0].text)
				}
				a.Peer = pp.Addr()
				a.Prefix = netip.PrefixFrom(pfx.Addr(), pp.Bits())
			}
		case "home":
			a.Home = true
		case "-nodad":
			a.NoDAD = true
		case "mngtmpaddr":
			a.MngTmpAddr = true
		case "noprefixroute":
			a.NoPrefixRoute = true
		case "autojoin":
			a.AutoJoin = true
			if !pfx.Addr().IsMulticast() {
				// IFA_F_MCAUTOJOIN joins a multicast group; Linux refuses
				// it on a unicast address.
				p.warnf(w.pos, "autojoin is for multicast addresses: the kernel refuses to add %s with it (invalid argument), so it will be missing, as with keepalived", words[0].text)
			}
		case "no_track":
			a.NoTrack = true
		case "preferred_lft":
			if v, ok := val(); ok {
				if v.text == "forever" {
					a.PreferredLft, a.PreferredLftSet = -1, true
				} else if n, ok := p.uintArg(v, "preferred_lft", 0, 4294967295); ok {
					a.PreferredLft, a.PreferredLftSet = int64(n), true
				}
			}
		case "track_group":
			if !static {
				p.warnf(w.pos, "track_group is only valid for static addresses; ignored, as keepalived does")
				continue
			}
			if v, ok := val(); ok {
				a.TrackGroup = v.text
			}
		case "use_vmac":
			if static {
				p.warnf(w.pos, "use_vmac is not valid for static addresses; ignored, as keepalived does")
				continue
			}
			a.UseVMAC = true
		default:
			opts := []string{"dev", "scope", "brd", "broadcast", "label", "peer", "home", "-nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track", "preferred_lft"}
			if static {
				opts = append(opts, "track_group")
			} else {
				opts = append(opts, "use_vmac")
			}
			msg := "unknown address option " + strconv.Quote(w.text) + "; the word is ignored and the address kept, as keepalived does"
			if sug := closest(w.text, opts); sug != "" {
				msg += "; did you mean " + strconv.Quote(sug) + "?"
			}
			p.warnf(w.pos, "%s", msg)
		}
	}
	if a.Peer.IsValid() && a.BroadcastMode != "" {
		p.warnf(e.kw.pos, "%s: broadcast and peer cannot both be given; ignored, as keepalived does", words[0].text)
		a.Broadcast, a.BroadcastMode = netip.Addr{}, ""
	}
	return a, true
}

// ifnameOK checks an interface name (Linux dev_valid_name()).
func (p *parser) ifnameOK(t token, what string) bool {
	n := t.text
	if n == "" || len(n) >= 16 || n == "." || n == ".." || strings.ContainsAny(n, "/: \t") {
		p.warnf(t.pos, "%s %q is not a valid interface name; ignored, as keepalived does", what, n)
		return false
	}
	return true
}

// routeTypes are the rtn types ("ip route add TYPE PREFIX"), as
// keepalived's rttables.c names them.
var routeTypes = []string{"unicast", "local", "broadcast", "brd", "anycast", "multicast", "throw", "unreachable", "prohibit", "blackhole", "nat", "xresolve"}

// routeOpts are the "ip route" options vigil keeps verbatim, with the
// number of values they take ("lock" may precede some values).
var routeOpts = map[string]int{
	"tos": 1, "dsfield": 1, "mtu": 1, "hoplimit": 1, "advmss": 1, "rtt": 1, "rttvar": 1,
	"reordering": 1, "window": 1, "cwnd": 1, "ssthresh": 1, "realms": 1, "rto_min": 1,
	"initcwnd": 1, "initrwnd": 1, "features": 1, "quickack": 1, "congctl": 1, "pref": 1,
	"expires": 1, "ttl-propagate": 1, "fastopen_no_cookie": 1, "vrf": 1,
	"add": 0, "prepend": 0, "append": 0,
}

// lockable options may be followed by "lock".
var lockable = map[string]bool{"mtu": true, "advmss": true, "rtt": true, "rttvar": true, "reordering": true, "cwnd": true, "ssthresh": true, "rto_min": true, "congctl": true}

// parseRoute parses a virtual_routes / static_routes line (keepalived
// alloc_route()).
func (p *parser) parseRoute(e *stmt, static bool) (Route, bool) {
	rp := &routeParser{p: p, words: append([]token{e.kw}, e.args...), r: Route{Pos: e.kw.pos}, static: static}
	for rp.i = 0; rp.i < len(rp.words); rp.i++ {
		w := rp.words[rp.i]
		if rp.keyword(w) {
			continue
		}
		if rp.verbatim(w) {
			continue
		}
		if !rp.destination(w) {
			return Route{}, false
		}
	}
	if rp.bad {
		return Route{}, false
	}
	return rp.finish(e)
}

// routeParser is the state of parseRoute over one line: the words, the
// index of the current one and the route so far.
type routeParser struct {
	p       *parser
	words   []token
	i       int
	r       Route
	static  bool
	haveDst bool
	// bad is set when keepalived ignores the whole route (mixed families).
	bad bool
}

// val consumes and returns the value of option w.
func (rp *routeParser) val(w token) (token, bool) {
	if rp.i+1 >= len(rp.words) {
		rp.p.warnf(w.pos, "%s needs a value; ignored, as keepalived does", w.text)
		return token{}, false
	}
	rp.i++
	return rp.words[rp.i], true
}

// setFamily records the family t implies; false when it contradicts one
// already seen.
func (rp *routeParser) setFamily(t token, f Family) bool {
	if rp.r.Family == 0 {
		rp.r.Family = f
		return true
	}
	if rp.r.Family != f {
		rp.p.warnf(t.pos, "route mixes IPv4 and IPv6 addresses (%s); the route is ignored, as keepalived does", t.text)
		rp.bad = true
		return false
	}
	return true
}

func (rp *routeParser) addr(t token, what string) (netip.Addr, bool) {
	a, ok := rp.p.addrArg(t, what)
	if ok && !rp.setFamily(t, inet.FamilyOf(a)) {
		return netip.Addr{}, false
	}
	return a, ok
}

// keyword applies w when it is one of the options vigil programs; it
// reports whether w was one.
func (rp *routeParser) keyword(w token) bool {
	p, r := rp.p, &rp.r
	switch w.text {
	case "inet", "inet6":
		rp.i = p.familyKeyword(rp.words, rp.i, rp.setFamily)
	case "src":
		if v, ok := rp.val(w); ok {
			if a, ok := rp.addr(v, "route src"); ok {
				r.Src = a
			}
		}
	case "from":
		if v, ok := rp.val(w); ok {
			if pf, ok := p.parsePrefix(v, "route from"); ok && rp.setFamily(v, inet.FamilyOf(pf.Addr())) {
				if !pf.Addr().Is6() {
					p.warnf(v.pos, "route from is only valid for IPv6; ignored, as keepalived does")
					return true
				}
				r.From = pf
			}
		}
	case "via", "gw":
		if w.text == "gw" {
			p.warnf(w.pos, "gw is deprecated; use via")
		}
		if v, ok := rp.val(w); ok {
			if v.text == "inet" || v.text == "inet6" {
				if v2, ok := rp.val(w); ok {
					v = v2
				}
			}
			if a, ok := rp.addr(v, "route via"); ok {
				r.Via = a
			}
		}
	case "as":
		// keepalived alloc_route(): "as [to] ADDR" is for MPLS routes; it
		// says so and adds the route without it.
		if rp.i+1 < len(rp.words) && rp.words[rp.i+1].text == "to" {
			rp.i++
		}
		rp.val(w)
		p.warnf(w.pos, "\"as to\" is for MPLS only; ignored, as keepalived does")
	case "or":
		p.warnf(w.pos, "\"or\" is deprecated; use nexthop")
		if v, ok := rp.val(w); ok {
			if a, ok := rp.addr(v, "route or"); ok {
				r.Or = a
			}
		}
	case "dev", "oif":
		if v, ok := rp.val(w); ok && p.ifnameOK(v, "dev") {
			r.Dev = v.text
		}
	case "table":
		if v, ok := rp.val(w); ok {
			r.Table = v.text
		}
	case "metric", "priority", "preference":
		if v, ok := rp.val(w); ok {
			if n, ok := p.uintArg(v, w.text, 0, 4294967295); ok {
				r.Metric = int64(n)
			}
		}
	case "scope":
		if v, ok := rp.val(w); ok {
			if sc, ok := p.scopeArg(v, "scope"); ok {
				r.Scope = sc
			}
		}
	case "protocol", "proto":
		if v, ok := rp.val(w); ok {
			r.Protocol = v.text
		}
	case "onlink":
		r.OnLink = true
	case "no_track":
		r.NoTrack = true
	case "track_group":
		if !rp.static {
			p.warnf(w.pos, "track_group is only valid for static routes; ignored, as keepalived does")
			return true
		}
		if v, ok := rp.val(w); ok {
			r.TrackGroup = v.text
		}
	case "nexthop", "encap":
		// Multipath routes and encapsulations: kept verbatim.
		for _, t := range rp.words[rp.i:] {
			r.Options = append(r.Options, t.text)
		}
		rp.i = len(rp.words)
	default:
		return false
	}
	return true
}

// verbatim keeps w and its values when it is an "ip route" option vigil
// passes on as written; it reports whether w was one.
func (rp *routeParser) verbatim(w token) bool {
	n, known := routeOpts[w.text]
	if !known {
		return false
	}
	r := &rp.r
	r.Options = append(r.Options, w.text)
	if lockable[w.text] && rp.i+1 < len(rp.words) && rp.words[rp.i+1].text == "lock" {
		rp.i++
		r.Options = append(r.Options, "lock")
	}
	for j := 0; j < n; j++ {
		if v, ok := rp.val(w); ok {
			r.Options = append(r.Options, v.text)
		}
	}
	return true
}

// destination reads "[to] [TYPE] PREFIX|default" starting at w; false
// when the route is to be ignored.
func (rp *routeParser) destination(w token) bool {
	p, r := rp.p, &rp.r
	d := w
	if w.text == "to" {
		v, ok := rp.val(w)
		if !ok {
			return false
		}
		d = v
	}
	if containsStr(routeTypes, d.text) {
		r.Type = d.text
		v, ok := rp.val(w)
		if !ok {
			return false
		}
		d = v
	}
	if d.text != "default" && !strings.ContainsAny(d.text, ".:") {
		var known []string
		for o := range routeOpts {
			known = append(known, o)
		}
		known = append(known, "src", "from", "via", "dev", "table", "metric", "scope", "protocol", "onlink", "no_track", "nexthop", "to")
		msg := "unknown route option " + strconv.Quote(d.text)
		if sug := closest(d.text, known); sug != "" {
			msg += "; did you mean " + strconv.Quote(sug) + "?"
		}
		p.warnf(d.pos, "%s; the route is ignored, as keepalived does", msg)
		return false
	}
	if rp.haveDst {
		p.warnf(d.pos, "unexpected %q in route (destination already given); the route is ignored, as keepalived does", d.text)
		return false
	}
	rp.haveDst = true
	if d.text == "default" {
		r.Dst = netip.Prefix{}
		return true
	}
	pf, ok := p.parsePrefix(d, "route destination")
	if !ok || !rp.setFamily(d, inet.FamilyOf(pf.Addr())) {
		return false
	}
	r.Dst = pf.Masked()
	return true
}

// finish checks the route has a destination and fills in the family and
// the default destination.
func (rp *routeParser) finish(e *stmt) (Route, bool) {
	r := rp.r
	if !r.NoTrack && r.Protocol != "" {
		// keepalived alloc_route(): a tracked route is RTPROT_KEEPALIVED's.
		if r.Protocol != "18" && r.Protocol != "keepalived" {
			rp.p.warnf(e.kw.pos, "route cannot be tracked if protocol is not keepalived (18); protocol %s is replaced, as keepalived does (add no_track to keep it)", r.Protocol)
		}
		r.Protocol = ""
	}
	if !rp.haveDst {
		rp.p.warnf(e.kw.pos, "route has no destination; the route is ignored, as keepalived does")
		return Route{}, false
	}
	if r.Family == 0 {
		r.Family = Inet
	}
	if !r.Dst.IsValid() {
		// "default"
		if r.Family == Inet6 {
			r.Dst = netip.MustParsePrefix("::/0")
		} else {
			r.Dst = netip.MustParsePrefix("0.0.0.0/0")
		}
	}
	return r, true
}

// familyKeyword reads "inet" or "inet6" at words[i] of a route or rule:
// it sets the family with set and, as keepalived 2.2.7 alloc_route() and
// alloc_rule() do (their loops advance twice), steps over the word after
// it. It returns the index of the last word it used.
func (p *parser) familyKeyword(words []token, i int, set func(token, Family) bool) int {
	w := words[i]
	f := Inet
	if w.text == "inet6" {
		f = Inet6
	}
	set(w, f)
	if i+1 < len(words) {
		i++
		p.warnf(words[i].pos, "keepalived 2.2.7 skips the word after %s (%q); so does vigil: put %s last", w.text, words[i].text, w.text)
	}
	return i
}

// ruleOpts are the "ip rule" options kept verbatim with their number of
// values (keepalived 2.2.7 alloc_rule()'s names).
var ruleOpts = map[string]int{
	"tos": 1, "dsfield": 1, "fwmark": 1, "realms": 1, "goto": 1, "dev": 1, "iif": 1, "oif": 1,
	"suppress_prefixlength": 1, "sup_pl": 1, "suppress_ifgroup": 1, "sup_group": 1, "uidrange": 1,
	"sport": 1, "dport": 1, "ipproto": 1, "protocol": 1, "tunnel-id": 1, "type": 1, "l3mdev": 0,
	"not": 0, "nop": 0, "blackhole": 0, "prohibit": 0, "unreachable": 0,
}

// RuleOptionValues is the number of values that follow the "ip rule"
// option name in Rule.Options (0 for a flag).
func RuleOptionValues(name string) int { return ruleOpts[name] }

// parseRule parses a virtual_rules / static_rules line (keepalived
// alloc_rule()).
func (p *parser) parseRule(e *stmt, static bool) (Rule, bool) {
	words := append([]token{e.kw}, e.args...)
	r := Rule{Pos: e.kw.pos}
	setFamily := func(t token, f Family) bool {
		if r.Family == 0 {
			r.Family = f
			return true
		}
		if r.Family != f {
			p.warnf(t.pos, "rule mixes IPv4 and IPv6 addresses (%s); ignored, as keepalived does", t.text)
			return false
		}
		return true
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		val := func() (token, bool) {
			if i+1 >= len(words) {
				p.warnf(w.pos, "%s needs a value; ignored, as keepalived does", w.text)
				return token{}, false
			}
			i++
			return words[i], true
		}
		switch w.text {
		case "inet", "inet6":
			i = p.familyKeyword(words, i, setFamily)
		case "from", "to":
			v, ok := val()
			if !ok {
				continue
			}
			if v.text == "all" {
				continue
			}
			pf, ok := p.parsePrefix(v, "rule "+w.text)
			if !ok || !setFamily(v, inet.FamilyOf(pf.Addr())) {
				return Rule{}, false
			}
			if w.text == "from" {
				r.From = pf.Masked()
			} else {
				r.To = pf.Masked()
			}
		case "table", "lookup":
			if v, ok := val(); ok {
				r.Table = v.text
			}
		case "preference", "priority", "pref", "order":
			if v, ok := val(); ok {
				if n, ok := p.uintArg(v, w.text, 0, 4294967295); ok {
					r.Preference = int64(n)
				}
			}
		case "no_track":
			r.NoTrack = true
		case "track_group":
			if !static {
				p.warnf(w.pos, "track_group is only valid for static rules; ignored, as keepalived does")
				continue
			}
			if v, ok := val(); ok {
				r.TrackGroup = v.text
			}
		default:
			n, known := ruleOpts[w.text]
			if !known {
				var names []string
				for o := range ruleOpts {
					names = append(names, o)
				}
				names = append(names, "from", "to", "table", "preference", "no_track")
				msg := "unknown rule option " + strconv.Quote(w.text)
				if sug := closest(w.text, names); sug != "" {
					msg += "; did you mean " + strconv.Quote(sug) + "?"
				}
				p.warnf(w.pos, "%s; the rule is ignored, as keepalived does", msg)
				return Rule{}, false
			}
			r.Options = append(r.Options, w.text)
			for j := 0; j < n; j++ {
				if v, ok := val(); ok {
					r.Options = append(r.Options, v.text)
				}
			}
		}
	}
	if r.Family == 0 {
		r.Family = Inet
	}
	return r, true
}
