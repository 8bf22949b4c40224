package config

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/inet"
)

type vsMeta struct {
	seen *seen
	rs   []rsMeta
	// The virtual server's own retry, delay_before_retry and warmup
	// (unset: -1), inherited by its checkers.
	retry            int
	delayBeforeRetry time.Duration
	warmup           time.Duration
}

// rsMeta holds a real server's own settings, inherited by its checkers.
type rsMeta struct {
	seen *seen
	// dropped: keepalived skips this real server (duplicate, other
	// family); resolveVirtualServers removes it.
	dropped          bool
	retry            int
	delayBeforeRetry time.Duration
	warmup           time.Duration
	delayLoop        time.Duration
	connectTimeout   time.Duration
	alpha, inhibit   OptBool
	smtpAlert        OptBool
	checkers         []chkMeta
}

type chkMeta struct {
	seen  *seen
	alpha OptBool
}

const unset = -1

// schedulers are keepalived 2.2.7's lvs_schedulers[].
var schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"}

func (p *parser) curVS() *vsMeta { return &p.meta.vs[len(p.meta.vs)-1] }

// curRS is the meta of the real server being read (in scratch space).
func (p *parser) curRS() *rsMeta { return &p.rsMetaScratch[len(p.rsMetaScratch)-1] }
func (p *parser) curChk() *chkMeta {
	r := p.curRS()
	return &r.checkers[len(r.checkers)-1]
}

// vsGroup parses virtual_server_group NAME { entries }.
func vsGroup(p *parser, s *stmt, c *Config) {
	g := VirtualServerGroup{Pos: s.kw.pos, Name: s.args[0].text}
	p.values(s, func(e *stmt) {
		if ent, ok := p.vsgEntry(e); ok {
			g.Entries = append(g.Entries, ent)
		}
	})
	if len(g.Entries) == 0 {
		// keepalived: "virtual server group has no entries - removing";
		// a virtual server naming it is then ignored.
		p.warnf(s.kw.pos, "virtual_server_group %s has no entries; the group is ignored, as keepalived does", g.Name)
		return
	}
	c.VSGroups = append(c.VSGroups, g)
}

// vsgEntry parses "ADDR[-END|/LEN] [PORT]" or "fwmark N [inet|inet6]"
// (keepalived alloc_vsg_entry()).
func (p *parser) vsgEntry(e *stmt) (VSGroupEntry, bool) {
	ent := VSGroupEntry{Pos: e.kw.pos}
	if e.kw.text == "fwmark" {
		if len(e.args) == 0 {
			p.warnf(e.kw.pos, "fwmark needs a value; the entry is skipped, as keepalived does")
			return ent, false
		}
		v, ok := p.uintArg(e.args[0], "fwmark", 0, 4294967295)
		if !ok {
			return ent, false
		}
		if v == 0 {
			// keepalived 2.2.7 alloc_vsg_entry() keeps it as a fwmark
			// entry: an IPVS fwmark service of mark 0, which no packet
			// selects. It is not an address entry, so it does not make
			// the virtual server persistent as a port-less address would.
			p.warnf(e.args[0].pos, "fwmark 0 does not mark anything (keepalived 2.2.7 installs a service of mark 0 that no traffic reaches); the entry is skipped; use 1..4294967295")
			return ent, false
		}
		ent.FWMark = uint32(v)
		if len(e.args) > 1 {
			f, ok := p.enumArg(e.args[1], "fwmark family", "inet", "inet6")
			if !ok {
				return ent, false
			}
			ent.Family, _ = inet.ParseFamily(f)
		}
		if len(e.args) > 2 {
			p.warnf(e.args[2].pos, "extra value %q ignored", e.args[2].text)
		}
		return ent, true
	}
	s := e.kw.text
	if len(e.args) > 0 {
		if e.args[0].text != strings.Repeat("0", len(e.args[0].text)) {
			port, ok := p.portArg(e.args[0], "port")
			if !ok {
				return ent, false
			}
			ent.Port = port
		}
		if len(e.args) > 1 {
			p.warnf(e.args[1].pos, "extra value %q ignored", e.args[1].text)
		}
	}
	switch {
	case strings.Contains(s, "/"):
		pf, ok := p.parsePrefix(e.kw, "virtual_server_group address")
		if !ok {
			return ent, false
		}
		if pf.Bits() == 0 {
			p.warnf(e.kw.pos, "virtual_server_group range %s: prefix length 0 is not allowed; the entry is skipped, as keepalived does", s)
			return ent, false
		}
		if pf.Masked().Addr() != pf.Addr() {
			p.warnf(e.kw.pos, "virtual_server_group range %s has host bits set; the entry is skipped, as keepalived does", s)
			return ent, false
		}
		ent.First = pf.Addr()
		ent.Last = lastAddr(pf)
	case strings.Contains(s, "-"):
		first, last, _ := strings.Cut(s, "-")
		a, err := netip.ParseAddr(first)
		if err != nil {
			p.warnf(e.kw.pos, "virtual_server_group range %q: %q is not a valid IP address; the entry is skipped, as keepalived does", s, first)
			return ent, false
		}
		a = a.Unmap()
		var b netip.Addr
		if (a.Is4() && strings.Contains(last, ".")) || (a.Is6() && strings.Contains(last, ":")) {
			b, err = netip.ParseAddr(last)
			if err != nil {
				p.warnf(e.kw.pos, "virtual_server_group range %q: %q is not a valid IP address; the entry is skipped, as keepalived does", s, last)
				return ent, false
			}
			b = b.Unmap()
			if b.Is4() != a.Is4() {
				p.warnf(e.kw.pos, "virtual_server_group range %q mixes IPv4 and IPv6; the entry is skipped, as keepalived does", s)
				return ent, false
			}
		} else {
			// keepalived inet_stor(): the last byte (IPv4) or the last 16
			// bits (IPv6) of the range end.
			base := 10
			max := uint64(255)
			if a.Is6() {
				base, max = 16, 65535
			}
			n, err := strconv.ParseUint(last, base, 32)
			if err != nil || n > max {
				p.warnf(e.kw.pos, "virtual_server_group range %q: bad range end %q; the entry is skipped, as keepalived does", s, last)
				return ent, false
			}
			bs := a.AsSlice()
			if a.Is4() {
				bs[3] = byte(n)
			} else {
				bs[14], bs[15] = byte(n>>8), byte(n)
			}
			b, _ = netip.AddrFromSlice(bs)
		}
		if b.Compare(a) <= 0 {
			p.warnf(e.kw.pos, "virtual_server_group range %q: the end is not after the start; the entry is skipped, as keepalived does", s)
			return ent, false
		}
		ent.First, ent.Last = a, b
	default:
		a, ok := p.addrArg(e.kw, "virtual_server_group address")
		if !ok {
			return ent, false
		}
		ent.First, ent.Last = a, a
	}
	ent.Family = inet.FamilyOf(ent.First)
	return ent, true
}

// lastAddr returns the last address of a prefix.
func lastAddr(pf netip.Prefix) netip.Addr {
	b := pf.Addr().AsSlice()
	for i := pf.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// virtualServer parses virtual_server IP [PORT] | fwmark N | group NAME.
func virtualServer(p *parser, s *stmt, c *Config) {
	// Read straight into the list (virtual servers do not nest); dropped
	// again when the header is bad.
	c.VirtualServers = append(c.VirtualServers, VirtualServer{Pos: s.kw.pos, Quorum: 1, Weight: 1,
		DelayLoop: 60 * time.Second, ConnectTimeout: 5 * time.Second})
	vs := &c.VirtualServers[len(c.VirtualServers)-1]
	ok := true
	a0 := s.args[0]
	switch a0.text {
	case "group":
		if len(s.args) < 2 {
			p.errf(a0.pos, "virtual_server group needs a group name")
			ok = false
			break
		}
		vs.Group = s.args[1].text
	case "fwmark":
		if len(s.args) < 2 {
			p.errf(a0.pos, "virtual_server fwmark needs a mark")
			ok = false
			break
		}
		v, good := p.uintArg(s.args[1], "fwmark", 0, 4294967295)
		if !good {
			ok = false
			break
		}
		if v == 0 {
			// keepalived 2.2.7 alloc_vs() takes 0 and is left with a
			// service of no address, port or protocol, which it makes a
			// persistent UDP service on port 0 that no traffic reaches.
			p.warnf(s.args[1].pos, "fwmark 0 does not mark anything (keepalived 2.2.7 makes it a UDP service on port 0 that no traffic reaches); the virtual_server is ignored; use 1..4294967295")
			ok = false
			break
		}
		vs.FWMark = uint32(v)
	default:
		a, good := p.addrArg(a0, "virtual_server address")
		if !good {
			ok = false
			break
		}
		vs.Addr = a
		vs.Family = inet.FamilyOf(a)
		if len(s.args) > 1 && strings.Trim(s.args[1].text, "0") != "" {
			port, good := p.portArg(s.args[1], "virtual_server port")
			if !good {
				ok = false
				break
			}
			vs.Port = port
		}
	}
	if !ok {
		// keepalived skips the whole block (skip_block()).
		c.VirtualServers = c.VirtualServers[:len(c.VirtualServers)-1]
		p.skipBlock(s.open)
		return
	}
	p.meta.vs = append(p.meta.vs, vsMeta{retry: unset, delayBeforeRetry: unset, warmup: unset})
	m := p.curVS()
	p.rsScratch, p.rsMetaScratch = p.rsScratch[:0], p.rsMetaScratch[:0]
	m.seen = parseBody(p, vsBlock, vs, s.open)
	// The real servers were collected in scratch space; keep them in
	// slices of their size.
	vs.RealServers = slices.Clone(p.rsScratch)
	m.rs = slices.Clone(p.rsMetaScratch)
	clear(p.rsScratch)
}

// forwarding parses "NAT|DR|TUN [type ipip|gue|gre] [port N]
// [nocsum|csum|remcsum]" (keepalived svr_forwarding_handler()).
func (p *parser) forwarding(s *stmt) (Forwarding, bool) {
	m, ok := p.enumArg(s.args[0], s.kw.text, "NAT", "DR", "TUN")
	if !ok {
		return Forwarding{}, false
	}
	f := Forwarding{Method: Method(m)}
	if f.Method == TUN {
		f.TunnelType, f.TunnelCsum = "ipip", "nocsum"
	}
	// keepalived 2.2.7 svr_forwarding_handler() sets the method first,
	// then reads the tunnel options; at the first bad one it reports and
	// returns, so the method stands with the default tunnel (ipip, no
	// port, nocsum).
	plain := f
	bad := func(pos diag.Pos, format string, args ...any) (Forwarding, bool) {
		p.warnf(pos, format+"; the options are ignored and lb_kind %s is used with its defaults, as keepalived does", append(args, m)...)
		return plain, true
	}
	a := s.args[1:]
	if len(a) > 0 && f.Method != TUN {
		return bad(a[0].pos, "%s %s takes no options", s.kw.text, m)
	}
	for i := 0; i < len(a); i++ {
		switch a[i].text {
		case "type":
			if i+1 >= len(a) {
				return bad(a[i].pos, "type needs ipip, gue or gre")
			}
			i++
			switch t := a[i].text; t {
			case "ipip", "gue", "gre":
				f.TunnelType = t
			default:
				return bad(a[i].pos, "tunnel type %q: want ipip, gue or gre", t)
			}
		case "port":
			if i+1 >= len(a) {
				return bad(a[i].pos, "port needs a value")
			}
			i++
			port, err := strconv.ParseUint(a[i].text, 10, 16)
			if err != nil || port == 0 {
				return bad(a[i].pos, "tunnel port %q: want 1..65535", a[i].text)
			}
			f.TunnelPort = uint16(port)
		case "nocsum", "csum", "remcsum":
			f.TunnelCsum = a[i].text
		default:
			return bad(a[i].pos, "unknown tunnel option %q (want type, port, nocsum, csum or remcsum)", a[i].text)
		}
	}
	if f.Method == TUN {
		if (f.TunnelType == "gue") != (f.TunnelPort != 0) {
			return bad(s.kw.pos, "%s: a gue tunnel needs a port, other tunnels take none", s.kw.text)
		}
		if f.TunnelType == "ipip" && f.TunnelCsum != "nocsum" {
			return bad(s.kw.pos, "%s: ipip tunnels have no checksum option", s.kw.text)
		}
		if f.TunnelType == "gre" && f.TunnelCsum == "remcsum" {
			return bad(s.kw.pos, "%s: gre tunnels do not support remcsum", s.kw.text)
		}
	}
	return f, true
}

// vsBlock is virtual_server (keepalived check/check_parser.c).
var vsBlock = newBlock("virtual_server",
	k("ip_family", 1, 1, func(p *parser, s *stmt, vs *VirtualServer) {
		f, ok := p.enumArg(s.args[0], "ip_family", "inet", "inet6")
		if !ok {
			return
		}
		fam, _ := inet.ParseFamily(f)
		if vs.Family != 0 && vs.Family != fam {
			p.warnf(s.args[0].pos, "ip_family %s conflicts with the virtual server's address family; ignored, as keepalived does", f)
			return
		}
		vs.Family = fam
	}),
	k("retry", 1, 1, func(p *parser, s *stmt, vs *VirtualServer) {
		if v, ok := p.uintArg(s.args[0], "retry", 1, 4294967295); ok {
			p.curVS().retry = int(v)
		}
	}),
	k("delay_before_retry", 1, 1, func(p *parser, s *stmt, vs *VirtualServer) {
		if d, ok := p.timerArg(s.args[0], "delay_before_retry", 0, maxTimer); ok {
			p.curVS().delayBeforeRetry = d
		}
	}),
	k("warmup", 1, 1, func(p *parser, s *stmt, vs *VirtualServer) {
		if d, ok := p.timerArg(s.args[0], "warmup", 0, maxTimer); ok {
			p.curVS().warmup = d
		}
	}),
	timer("connect_timeout", time.Microsecond, 4294967295*time.Microsecond, func(vs *VirtualServer) *time.Duration { return &vs.ConnectTimeout }),
	timer("delay_loop", time.Microsecond, maxTimer, func(vs *VirtualServer) *time.Duration { return &vs.DelayLoop }),
	flagKw("inhibit_on_failure", func(vs *VirtualServer) *bool { return &vs.InhibitOnFailure }),
	k("lb_algo", 1, 1, scheduler),
	k("lvs_sched", 1, 1, scheduler),
	k("hashed", 0, 0, func(p *parser, s *stmt, vs *VirtualServer) {}).unsup(whySchedFlag),
	k("ops", 0, 0, func(p *parser, s *stmt, vs *VirtualServer) { vs.OPS = true }),
	schedFlag("flag-1"), schedFlag("flag-2"), schedFlag("flag-3"),
	schedFlag("sh-port"), schedFlag("sh-fallback"), schedFlag("mh-port"), schedFlag("mh-fallback"),
	k("lb_kind", 1, -1, vsForwarding),
	k("lvs_method", 1, -1, vsForwarding),
	str("persistence_engine", func(vs *VirtualServer) *string { return &vs.PersistenceEngine }).unsup(whyPE),
	k("persistence_timeout", 0, 1, func(p *parser, s *stmt, vs *VirtualServer) {
		if len(s.args) == 0 {
			vs.PersistenceTimeout = 360 * time.Second
			return
		}
		// keepalived 2.2.7 pto_handler(): 1..LVS_MAX_TIMEOUT, else
		// "persistence_timeout invalid" and the line sets nothing.
		v, err := strconv.ParseUint(strings.TrimPrefix(s.args[0].text, "+"), 10, 64)
		if err != nil || v < 1 || v > 86400*31 {
			now := "the service is not persistent"
			if vs.PersistenceTimeout > 0 {
				now = fmt.Sprintf("the earlier %s stays", fmtSeconds(vs.PersistenceTimeout))
			}
			p.warnf(s.args[0].pos, "persistence_timeout %s is not valid (1..%d seconds); ignored, %s, as keepalived does", s.args[0].text, 86400*31, now)
			return
		}
		vs.PersistenceTimeout = time.Duration(v) * time.Second
	}),
	k("persistence_granularity", 1, 1, func(p *parser, s *stmt, vs *VirtualServer) {
		t := s.args[0]
		fam := vs.Family
		if fam == 0 {
			fam = Inet6
			if strings.Contains(t.text, ".") {
				fam = Inet
			}
		}
		if fam == Inet6 {
			if _, ok := p.uintArg(t, "persistence_granularity", 1, 128); !ok {
				return
			}
		} else {
			a, err := netip.ParseAddr(t.text)
			if err != nil || !a.Is4() {
				p.warnf(t.pos, "persistence_granularity %q is not an IPv4 netmask; ignored, as keepalived does", t.text)
				return
			}
		}
		if vs.Family == 0 {
			vs.Family = fam
		}
		vs.PersistenceGranularity = t.text
		if vs.PersistenceTimeout == 0 {
			vs.PersistenceTimeout = 360 * time.Second
		}
	}),
	k("protocol", 1, 1, func(p *parser, s *stmt, vs *VirtualServer) {
		up := strings.ToUpper(s.args[0].text)
		if _, ok := p.enumArg(token{text: up, pos: s.args[0].pos}, "protocol", "TCP", "UDP", "SCTP"); ok {
			vs.Protocol = Protocol(up)
		}
	}),
	flagKw("ha_suspend", func(vs *VirtualServer) *bool { return &vs.HASuspend }),
	optBool("smtp_alert", func(vs *VirtualServer) *bool { return &vs.SMTPAlert }).unsup(whyEmail),
	str("virtualhost", func(vs *VirtualServer) *string { return &vs.Virtualhost }),
	str("snmp_name", func(vs *VirtualServer) *string { return &vs.SNMPName }).unsup(whySNMP),
	flagKw("alpha", func(vs *VirtualServer) *bool { return &vs.Alpha }),
	flagKw("omega", func(vs *VirtualServer) *bool { return &vs.Omega }),
	notify("quorum_up", func(vs *VirtualServer) *Command { return &vs.QuorumUp }),
	notify("quorum_down", func(vs *VirtualServer) *Command { return &vs.QuorumDown }),
	count("quorum", 1, 4294967295, func(vs *VirtualServer) *int { return &vs.Quorum }),
	count("hysteresis", 0, 4294967295, func(vs *VirtualServer) *int { return &vs.Hysteresis }),
	count("weight", 1, 2147483647, func(vs *VirtualServer) *int { return &vs.Weight }),
	k("sorry_server", 1, 2, func(p *parser, s *stmt, vs *VirtualServer) {
		a, ok := p.addrArg(s.args[0], "sorry_server address")
		if !ok {
			return
		}
		// keepalived 2.2.7 check_data.c alloc_ssvr(): a sorry server
		// takes the virtual server's lb_kind as read so far.
		ss := &SorryServer{Pos: s.kw.pos, Addr: a, Forwarding: vs.Forwarding}
		if len(s.args) > 1 && strings.Trim(s.args[1].text, "0") != "" {
			port, ok := p.portArg(s.args[1], "sorry_server port")
			if !ok {
				return
			}
			ss.Port = port
		}
		// A second sorry_server replaces the first whole, its
		// sorry_server_inhibit and sorry_server_lvs_method too, as in
		// keepalived.
		vs.SorryServer = ss
	}),
	k("sorry_server_inhibit", 0, 0, func(p *parser, s *stmt, vs *VirtualServer) {
		if vs.SorryServer == nil {
			p.warnf(s.kw.pos, "sorry_server_inhibit before (or without) sorry_server; ignored, as keepalived does")
			return
		}
		vs.SorryServer.Inhibit = true
	}),
	k("sorry_server_lvs_method", 1, -1, func(p *parser, s *stmt, vs *VirtualServer) {
		if vs.SorryServer == nil {
			p.warnf(s.kw.pos, "sorry_server_lvs_method before (or without) sorry_server; ignored, as keepalived does")
			return
		}
		if f, ok := p.forwarding(s); ok {
			vs.SorryServer.Forwarding = f
		}
	}),
	k("real_server", 1, 2, realServer).opens(rsBlock).multiple(),
)

func scheduler(p *parser, s *stmt, vs *VirtualServer) {
	v := s.args[0].text
	for _, x := range schedulers {
		if v == x {
			vs.Scheduler = Scheduler(v)
			return
		}
	}
	// keepalived 2.2.7 lbalgo_handler(): "Invalid lvs_scheduler -
	// ignoring"; the scheduler stays as it was, wlc when never set.
	cur := "keepalived's default wlc is used"
	if vs.Scheduler != "" {
		cur = fmt.Sprintf("%s from the earlier line stays", vs.Scheduler)
	}
	p.warnf(s.args[0].pos, "%s %q is not a scheduler (%s); ignored, %s, as keepalived does%s", s.kw.text, v, strings.Join(schedulers, ", "), cur, didYouMean(v, schedulers))
}

func schedFlag(name string) *kw[VirtualServer] {
	return k(name, 0, 0, func(p *parser, s *stmt, vs *VirtualServer) {
		// keepalived 2.2.7 lbflags_handler(): flag-1..3 always set their
		// kernel flag; sh-* only while the scheduler read so far is sh,
		// mh-* only while it is mh. Under the other of the two it sets
		// nothing and says nothing; under any other scheduler (or none
		// yet) it reports "only applies to sh scheduler - ignoring".
		fam, _, _ := strings.Cut(name, "-")
		switch {
		case fam == "flag":
		case string(vs.Scheduler) == fam:
		case vs.Scheduler == "sh" || vs.Scheduler == "mh":
			other := string(vs.Scheduler) + strings.TrimPrefix(name, fam)
			p.warnf(s.kw.pos, "%s has no effect with lvs_sched %s (its flag is %s); keepalived ignores it without a word, and so does vigil", name, vs.Scheduler, other)
			return
		default:
			p.warnf(s.kw.pos, "%s only applies to the %s scheduler, which is not set before it; ignored, as keepalived does (set lb_algo %s first)", name, fam, fam)
			return
		}
		vs.SchedFlags = append(vs.SchedFlags, name)
	})
}

func vsForwarding(p *parser, s *stmt, vs *VirtualServer) {
	if f, ok := p.forwarding(s); ok {
		vs.Forwarding = f
	}
}

// realServer parses real_server IP [PORT] { ... }.
func realServer(p *parser, s *stmt, vs *VirtualServer) {
	a, ok := p.addrArg(s.args[0], "real_server address")
	if !ok {
		p.skipBlock(s.open)
		return
	}
	var port uint16
	if len(s.args) > 1 && strings.Trim(s.args[1].text, "0") != "" {
		var ok bool
		if port, ok = p.portArg(s.args[1], "real_server port"); !ok {
			p.skipBlock(s.open)
			return
		}
	}
	// Read straight into the scratch list of the virtual server. The real
	// server takes the virtual server's lb_kind as read so far (keepalived
	// 2.2.7 check_data.c alloc_rs()); its own lb_kind replaces it, and one
	// still unset takes the virtual server's final lb_kind when checked.
	p.rsScratch = append(p.rsScratch, RealServer{Pos: s.kw.pos, Addr: a, Port: port, Weight: unset, Forwarding: vs.Forwarding})
	rs := &p.rsScratch[len(p.rsScratch)-1]
	p.rsMetaScratch = append(p.rsMetaScratch, rsMeta{retry: unset, delayBeforeRetry: unset, warmup: unset, delayLoop: unset, connectTimeout: unset})
	m := p.curRS()
	m.seen = parseBody(p, rsBlock, rs, s.open)
}

// rsBlock is real_server.
var rsBlock = newBlock("real_server",
	k("weight", 1, 1, func(p *parser, s *stmt, rs *RealServer) {
		if v, ok := p.uintArg(s.args[0], "weight", 0, 2147483647); ok {
			rs.Weight = int(v)
		}
	}),
	k("lvs_method", 1, -1, func(p *parser, s *stmt, rs *RealServer) {
		if f, ok := p.forwarding(s); ok {
			rs.Forwarding = f
		}
	}),
	count("uthreshold", 0, 4294967295, func(rs *RealServer) *int { return &rs.UThreshold }),
	count("lthreshold", 0, 4294967295, func(rs *RealServer) *int { return &rs.LThreshold }),
	k("inhibit_on_failure", 0, 1, func(p *parser, s *stmt, rs *RealServer) {
		if v, ok := p.boolArg(s); ok {
			p.curRS().inhibit = triOf(v)
		}
	}),
	notify("notify_up", func(rs *RealServer) *Command { return &rs.NotifyUp }),
	notify("notify_down", func(rs *RealServer) *Command { return &rs.NotifyDown }),
	k("alpha", 0, 1, func(p *parser, s *stmt, rs *RealServer) {
		if v, ok := p.boolArg(s); ok {
			p.curRS().alpha = triOf(v)
		}
	}),
	k("retry", 1, 1, func(p *parser, s *stmt, rs *RealServer) {
		if v, ok := p.uintArg(s.args[0], "retry", 1, 4294967295); ok {
			p.curRS().retry = int(v)
		}
	}),
	k("delay_before_retry", 1, 1, func(p *parser, s *stmt, rs *RealServer) {
		if d, ok := p.timerArg(s.args[0], "delay_before_retry", 0, maxTimer); ok {
			p.curRS().delayBeforeRetry = d
		}
	}),
	k("warmup", 1, 1, func(p *parser, s *stmt, rs *RealServer) {
		if d, ok := p.timerArg(s.args[0], "warmup", 0, maxTimer); ok {
			p.curRS().warmup = d
		}
	}),
	k("connect_timeout", 1, 1, func(p *parser, s *stmt, rs *RealServer) {
		if d, ok := p.timerArg(s.args[0], "connect_timeout", time.Microsecond, 4294967295*time.Microsecond); ok {
			p.curRS().connectTimeout = d
		}
	}),
	k("delay_loop", 1, 1, func(p *parser, s *stmt, rs *RealServer) {
		if d, ok := p.timerArg(s.args[0], "delay_loop", time.Microsecond, maxTimer); ok {
			p.curRS().delayLoop = d
		}
	}),
	k("smtp_alert", 0, 1, func(p *parser, s *stmt, rs *RealServer) {
		if v, ok := p.boolArg(s); ok {
			p.curRS().smtpAlert = triOf(v)
		}
	}).unsup(whyEmail),
	str("virtualhost", func(rs *RealServer) *string { return &rs.Virtualhost }),
	str("snmp_name", func(rs *RealServer) *string { return &rs.SNMPName }).unsup(whySNMP),
	checker(TCPCheck, tcpBlock),
	checker(HTTPGet, httpBlock),
	checker(SSLGet, sslGetBlock),
	checker(MiscCheck, miscBlock),
	checker(SMTPCheck, smtpBlock),
	checker(DNSCheck, dnsBlock),
	checker(UDPCheck, udpBlock),
	checker(PingCheck, pingBlock),
	checker(FileCheck, fileBlock),
	checker(BFDCheck, bfdCheckBlock).unsup(whyBFD),
)

// checker is a checker keyword of real_server.
func checker(t CheckerType, b *block[Checker]) *kw[RealServer] {
	return k(string(t), 0, 0, func(p *parser, s *stmt, rs *RealServer) {
		rs.Checkers = append(rs.Checkers, Checker{Pos: s.kw.pos, Type: t, Retry: unset, DelayBeforeRetry: unset, DelayLoop: unset, Warmup: unset, ConnectTimeout: unset})
		c := &rs.Checkers[len(rs.Checkers)-1]
		switch t {
		case HTTPGet, SSLGet:
			c.HTTP = &HTTPCheck{Protocol: "1.0"}
		case SMTPCheck:
			c.SMTP = &SMTPParam{}
		case DNSCheck:
			c.DNS = &DNSParam{Type: "SOA", Name: "."}
		case UDPCheck:
			c.UDP = &UDPParam{MaxReplyLength: 255}
		case MiscCheck:
			c.Misc = &MiscParam{Timeout: unset}
		case FileCheck:
			c.File = &FileParam{Weight: unset}
		}
		rm := p.curRS()
		rm.checkers = append(rm.checkers, chkMeta{})
		cm := p.curChk()
		cm.seen = parseBody(p, b, c, s.open)
		if !p.checkerComplete(c, s) {
			rs.Checkers = rs.Checkers[:len(rs.Checkers)-1]
			rm.checkers = rm.checkers[:len(rm.checkers)-1]
		}
	}).opens(b).multiple()
}

// checkerComplete reports the checks keepalived makes at the end of a
// checker block; a checker keepalived would drop is dropped.
func (p *parser) checkerComplete(c *Checker, s *stmt) bool {
	switch c.Type {
	case HTTPGet, SSLGet:
		if len(c.HTTP.URLs) == 0 {
			p.warnf(s.kw.pos, "%s has no url; the checker is ignored, as keepalived does", c.Type)
			return false
		}
	case MiscCheck:
		if !c.Misc.Path.IsSet() {
			p.warnf(s.kw.pos, "MISC_CHECK has no misc_path; the checker is ignored, as keepalived does")
			return false
		}
	case FileCheck:
		if c.File.TrackFile == "" {
			p.warnf(s.kw.pos, "FILE_CHECK has no track_file; the checker is ignored, as keepalived does")
			return false
		}
	case UDPCheck:
		if c.UDP.MinReplyLength > c.UDP.MaxReplyLength {
			p.warnf(s.kw.pos, "UDP_CHECK min_reply_length %d > max_reply_length %d: the check always fails, as it does with keepalived", c.UDP.MinReplyLength, c.UDP.MaxReplyLength)
		}
	case BFDCheck:
		if c.BFDName == "" {
			p.warnf(s.kw.pos, "BFD_CHECK has no name; the checker is ignored, as keepalived does")
			return false
		}
	}
	if c.ConnectIP.IsValid() && c.ConnectIP.Is6() && c.ConnectIP.IsLinkLocalUnicast() && c.BindIf == "" {
		p.warnf(s.kw.pos, "%s: link-local connect_ip %s needs bind_if; the checker is ignored, as keepalived does (check_conn_opts())", c.Type, c.ConnectIP)
		return false
	}
	return true
}

// checkerKeywords returns the keywords common to checkers
// (keepalived install_checker_common_keywords()).
func checkerKeywords(conn bool) []*kw[Checker] {
	var out []*kw[Checker]
	if conn {
		out = append(out,
			k("connect_ip", 1, 1, func(p *parser, s *stmt, c *Checker) {
				a, ok := p.addrArg(s.args[0], "connect_ip")
				if !ok {
					return
				}
				if c.BindTo.IsValid() && inet.FamilyOf(c.BindTo) != inet.FamilyOf(a) {
					p.warnf(s.args[0].pos, "connect_ip %s is not of bindto's family; ignored, as keepalived does", a)
					return
				}
				c.ConnectIP = a
			}),
			k("connect_port", 1, 1, func(p *parser, s *stmt, c *Checker) {
				if v, ok := p.portArg(s.args[0], "connect_port"); ok {
					c.ConnectPort = v
				}
			}),
			k("bindto", 1, 1, func(p *parser, s *stmt, c *Checker) {
				a, ok := p.addrArg(s.args[0], "bindto")
				if !ok {
					return
				}
				if c.ConnectIP.IsValid() && inet.FamilyOf(c.ConnectIP) != inet.FamilyOf(a) {
					p.warnf(s.args[0].pos, "bindto %s is not of connect_ip's family; ignored, as keepalived does", a)
					return
				}
				c.BindTo = a
			}),
			k("bind_port", 1, 1, func(p *parser, s *stmt, c *Checker) {
				if v, ok := p.portArg(s.args[0], "bind_port"); ok {
					c.BindPort = v
				}
			}),
			k("bind_if", 1, 1, func(p *parser, s *stmt, c *Checker) {
				if p.ifnameOK(s.args[0], "bind_if") {
					c.BindIf = s.args[0].text
				}
			}),
			timer("connect_timeout", time.Microsecond, 4294967295*time.Microsecond, func(c *Checker) *time.Duration { return &c.ConnectTimeout }),
			k("fwmark", 1, 1, func(p *parser, s *stmt, c *Checker) {
				if v, ok := p.uintArg(s.args[0], "fwmark", 0, 4294967295); ok {
					c.FWMark = uint32(v)
				}
			}),
		)
	}
	return append(out,
		count("retry", 0, 4294967295, func(c *Checker) *int { return &c.Retry }),
		timer("delay_before_retry", 0, maxTimer, func(c *Checker) *time.Duration { return &c.DelayBeforeRetry }),
		timer("warmup", 0, maxTimer, func(c *Checker) *time.Duration { return &c.Warmup }),
		timer("delay_loop", time.Microsecond, maxTimer, func(c *Checker) *time.Duration { return &c.DelayLoop }),
		k("alpha", 0, 1, func(p *parser, s *stmt, c *Checker) {
			if v, ok := p.boolArg(s); ok {
				p.curChk().alpha = triOf(v)
			}
		}),
		optBool("log_all_failures", func(c *Checker) *bool { return &c.LogAllFailures }).unsup(whyLogFails),
	)
}

func checkerBlock(name string, conn bool, extra ...*kw[Checker]) *block[Checker] {
	return newBlock(name, append(checkerKeywords(conn), extra...)...)
}

var tcpBlock = checkerBlock(string(TCPCheck), true)
var pingBlock = checkerBlock(string(PingCheck), true)

func httpKeywords(ssl bool) []*kw[Checker] {
	kws := []*kw[Checker]{
		k("nb_get_retry", 1, 1, func(p *parser, s *stmt, c *Checker) {
			if v, ok := p.uintArg(s.args[0], "nb_get_retry", 0, 4294967295); ok {
				c.Retry = int(v)
			}
		}).deprecate("retry"),
		k("virtualhost", 1, 1, func(p *parser, s *stmt, c *Checker) { c.HTTP.Virtualhost = s.args[0].text }),
		k("http_protocol", 1, 1, func(p *parser, s *stmt, c *Checker) {
			v := s.args[0].text
			if v == "1.0c" {
				v = "1.0C"
			}
			if _, ok := p.enumArg(token{text: v, pos: s.args[0].pos}, "http_protocol", "1.0", "1.0C", "1.1"); ok {
				c.HTTP.Protocol = v
			}
		}),
		k("fast_recovery", 0, 1, func(p *parser, s *stmt, c *Checker) {
			if v, ok := p.boolArg(s); ok {
				c.HTTP.FastRecovery = v
			}
		}),
		k("url", 0, 0, func(p *parser, s *stmt, c *Checker) {
			u := URL{Pos: s.kw.pos}
			parseBody(p, urlBlock, &u, s.open)
			if u.Path == "" {
				p.warnf(s.kw.pos, "url has no path; the url is ignored, as keepalived does")
				return
			}
			if len(u.StatusCodes) == 0 {
				u.StatusCodes = []StatusRange{{200, 299}}
			}
			if u.Regex == "" && (u.RegexNoMatch || len(u.RegexOptions) > 0 || u.RegexMinOffset != 0 || u.RegexMaxOffset != 0) {
				p.warnf(s.kw.pos, "regex options without regex are ignored")
				u.RegexNoMatch, u.RegexOptions, u.RegexMinOffset, u.RegexMaxOffset = false, nil, 0, 0
			}
			if u.RegexMaxOffset != 0 && u.RegexMinOffset >= u.RegexMaxOffset+1 {
				p.warnf(s.kw.pos, "regex_min_offset %d is past regex_max_offset %d; both are ignored", u.RegexMinOffset, u.RegexMaxOffset)
				u.RegexMinOffset, u.RegexMaxOffset = 0, 0
			}
			c.HTTP.URLs = append(c.HTTP.URLs, u)
		}).opens(urlBlock).multiple(),
	}
	if ssl {
		kws = append(kws, k("enable_sni", 0, 1, func(p *parser, s *stmt, c *Checker) {
			if v, ok := p.boolArg(s); ok {
				c.HTTP.EnableSNI = v
			}
		}))
	}
	return kws
}

// keepalived registers enable_sni for HTTP_GET too (the same table); it is
// only meaningful for SSL_GET.
var httpBlock = checkerBlock(string(HTTPGet), true, httpKeywords(true)...)
var sslGetBlock = checkerBlock(string(SSLGet), true, httpKeywords(true)...)

// regexOptions maps keepalived's PCRE2 options to RE2 flags ("" when RE2
// has no equivalent).
var regexOptions = map[string]string{
	"caseless": "i", "multiline": "m", "dotall": "s", "ungreedy": "U",
	"allow_empty_class": "", "alt_bsux": "", "auto_callout": "", "dollar_endonly": "",
	"dupnames": "", "extended": "", "firstline": "", "match_unset_backref": "",
	"never_ucp": "", "never_utf": "", "no_auto_capture": "", "no_auto_possess": "",
	"no_dotstar_anchor": "", "no_start_optimize": "", "ucp": "", "utf": "",
	"never_backslash_c": "", "alt_circumflex": "", "alt_verbnames": "", "use_offset_limit": "",
}

// RegexFlags is the RE2 flag group, e.g. "(?i)", for the URL's
// regex_options ("" without any): the prefix that gives the regex
// keepalived's PCRE2 meaning.
func (u URL) RegexFlags() string {
	var f strings.Builder
	for _, o := range u.RegexOptions {
		if re2 := regexOptions[o]; re2 != "" && !strings.Contains(f.String(), re2) {
			f.WriteString(re2)
		}
	}
	if f.Len() == 0 {
		return ""
	}
	return "(?" + f.String() + ")"
}

var urlBlock = newBlock("url",
	str("path", func(u *URL) *string { return &u.Path }),
	k("digest", 1, 1, func(p *parser, s *stmt, u *URL) {
		d := strings.ToLower(s.args[0].text)
		if _, err := hex.DecodeString(d); err != nil || len(d) != 32 {
			p.warnf(s.args[0].pos, "digest %q is not an MD5 digest (32 hex digits; see vigil genhash); ignored, as keepalived does", s.args[0].text)
			return
		}
		if u.Digest != "" {
			p.warnf(s.kw.pos, "digest given twice; the first is kept, as keepalived does")
			return
		}
		u.Digest = d
	}),
	k("status_code", 1, -1, func(p *parser, s *stmt, u *URL) {
		for _, a := range s.args {
			lo, hi, isRange := strings.Cut(a.text, "-")
			min, err1 := strconv.Atoi(lo)
			max := min
			var err2 error
			if isRange {
				max, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || min < 100 || max > 599 || min > max {
				p.warnf(a.pos, "status_code %q: want a code or range within 100-599; ignored, as keepalived does", a.text)
				continue
			}
			u.StatusCodes = append(u.StatusCodes, StatusRange{min, max})
		}
	}).multiple(),
	str("virtualhost", func(u *URL) *string { return &u.Virtualhost }),
	k("regex", 1, -1, func(p *parser, s *stmt, u *URL) {
		raw, pos := s.rest()
		words, err := splitCommand(raw)
		if err != nil || len(words) != 1 {
			// keepalived 2.2.7 regex_handler(): "regex missing or too
			// many fields", and the url has no regex.
			p.warnf(pos, "regex: want one (quoted) pattern; ignored, as keepalived does")
			return
		}
		if _, err := regexp.Compile(words[0]); err != nil {
			// keepalived compiles the pattern with PCRE2 when the checker
			// starts (and logs "Invalid regex" when PCRE2 refuses it
			// too); vigil cannot run it, and checks the url without it
			// rather than refuse the file.
			p.warnf(pos, "regex %q is not valid RE2 syntax (vigil uses Go regular expressions, keepalived PCRE2): %v; vigil checks this url without the regex", words[0], err)
			return
		}
		u.Regex = words[0]
	}),
	flagKw("regex_no_match", func(u *URL) *bool { return &u.RegexNoMatch }),
	k("regex_options", 1, -1, func(p *parser, s *stmt, u *URL) {
		for _, a := range s.args {
			re2, ok := regexOptions[a.text]
			if !ok {
				var names []string
				for n := range regexOptions {
					names = append(names, n)
				}
				p.warnf(a.pos, "unknown regex option %q; ignored, as keepalived does%s", a.text, didYouMean(a.text, names))
				continue
			}
			if re2 == "" {
				p.warnf(a.pos, "regex option %s has no RE2 equivalent; ignored by vigil", a.text)
				continue
			}
			u.RegexOptions = append(u.RegexOptions, a.text)
		}
	}),
	k("regex_min_offset", 1, 1, func(p *parser, s *stmt, u *URL) {
		if v, ok := p.uintArg(s.args[0], "regex_min_offset", 0, 1<<62); ok {
			u.RegexMinOffset = int(v)
		}
	}),
	k("regex_max_offset", 1, 1, func(p *parser, s *stmt, u *URL) {
		if v, ok := p.uintArg(s.args[0], "regex_max_offset", 0, 1<<62); ok {
			u.RegexMaxOffset = int(v)
		}
	}),
	k("regex_stack", 2, 2, func(p *parser, s *stmt, u *URL) {}).unsup("PCRE2 JIT stack size"),
)

func didYouMean(s string, names []string) string {
	if sug := closest(s, names); sug != "" {
		return "; did you mean " + strconv.Quote(sug) + "?"
	}
	return ""
}

var smtpHostBlock = checkerBlock("host", true)

var smtpBlock = checkerBlock(string(SMTPCheck), true,
	k("helo_name", 1, -1, func(p *parser, s *stmt, c *Checker) {
		raw, _ := s.rest()
		if w, err := splitCommand(raw); err == nil && len(w) > 0 {
			c.SMTP.HeloName = w[0]
		}
	}),
	k("host", 0, 0, func(p *parser, s *stmt, c *Checker) {
		h := Checker{Pos: s.kw.pos, Type: SMTPCheck, Retry: unset, DelayBeforeRetry: unset, DelayLoop: unset, Warmup: unset, ConnectTimeout: unset}
		r := p.curRS()
		r.checkers = append(r.checkers, chkMeta{})
		parseBody(p, smtpHostBlock, &h, s.open)
		r.checkers = r.checkers[:len(r.checkers)-1]
		c.SMTP.Hosts = append(c.SMTP.Hosts, h)
	}).opens(smtpHostBlock).multiple().deprecate("one SMTP_CHECK per host"),
)

// dnsTypes are keepalived's DNS_TYPE[] labels.
var dnsTypes = []string{"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"}

var dnsBlock = checkerBlock(string(DNSCheck), true,
	k("type", 1, 1, func(p *parser, s *stmt, c *Checker) {
		up := strings.ToUpper(s.args[0].text)
		if _, ok := p.enumArg(token{text: up, pos: s.args[0].pos}, "DNS type", dnsTypes...); ok {
			c.DNS.Type = up
		}
	}),
	k("name", 1, 1, func(p *parser, s *stmt, c *Checker) {
		n := s.args[0].text
		if (strings.HasPrefix(n, ".") && n != ".") || strings.Contains(n, "..") {
			p.warnf(s.args[0].pos, "DNS name %q has an empty label; ignored, as keepalived does", n)
			return
		}
		c.DNS.Name = n
	}),
)

var udpBlock = checkerBlock(string(UDPCheck), true,
	k("payload", 1, -1, func(p *parser, s *stmt, c *Checker) {
		b, _, ok := p.hexArg(s, false)
		if ok {
			c.UDP.Payload = b
		}
	}),
	k("require_reply", 0, -1, func(p *parser, s *stmt, c *Checker) {
		c.UDP.RequireReply = true
		if len(s.args) == 0 {
			return
		}
		b, mask, ok := p.hexArg(s, true)
		if ok {
			c.UDP.ReplyData, c.UDP.ReplyMask = b, mask
		}
	}),
	count("min_reply_length", 0, 65535, func(c *Checker) *int { return &c.UDP.MinReplyLength }),
	count("max_reply_length", 0, 65535, func(c *Checker) *int { return &c.UDP.MaxReplyLength }),
)

// hexArg reads keepalived's free-format hex string (read_hex_str()):
// white space separates groups, a group of one digit is one byte, X/x is
// a wildcard nibble when wild.
func (p *parser) hexArg(s *stmt, wild bool) (data, mask []byte, ok bool) {
	var words []string
	for _, a := range s.args {
		words = append(words, a.text)
	}
	str := strings.Join(words, " ")
	useMask := false
	for i := 0; i < len(str); {
		if str[i] == ' ' || str[i] == '\t' {
			i++
			continue
		}
		v, m, good := nibble(str[i], wild)
		if !good {
			p.warnf(s.args[0].pos, "%s: %q is not a hex string; ignored, as keepalived does", s.kw.text, str)
			return nil, nil, false
		}
		i++
		if i < len(str) && str[i] != ' ' {
			v2, m2, good := nibble(str[i], wild)
			if !good {
				p.warnf(s.args[0].pos, "%s: %q is not a hex string; ignored, as keepalived does", s.kw.text, str)
				return nil, nil, false
			}
			v, m = v<<4|v2, m<<4|m2
			i++
		}
		if m != 0 {
			useMask = true
		}
		data = append(data, v)
		mask = append(mask, m)
	}
	if len(data) == 0 {
		p.warnf(s.args[0].pos, "%s: empty hex string; ignored, as keepalived does", s.kw.text)
		return nil, nil, false
	}
	if !useMask {
		mask = nil
	}
	return data, mask, true
}

func nibble(c byte, wild bool) (v, mask byte, ok bool) {
	switch {
	case isHex(c):
		return hexVal(c), 0, true
	case wild && (c == 'x' || c == 'X'):
		return 0, 0x0f, true
	}
	return 0, 0, false
}

var miscBlock = checkerBlock(string(MiscCheck), false,
	k("misc_path", 1, -1, func(p *parser, s *stmt, c *Checker) {
		u, g := c.Misc.Path.User, c.Misc.Path.Group
		c.Misc.Path = p.program(s)
		c.Misc.Path.User, c.Misc.Path.Group = u, g
	}),
	seconds("misc_timeout", 0, maxSecs, func(c *Checker) *time.Duration { return &c.Misc.Timeout }),
	flagKw("misc_dynamic", func(c *Checker) *bool { return &c.Misc.Dynamic }),
	k("user", 1, 2, func(p *parser, s *stmt, c *Checker) {
		c.Misc.Path.User = s.args[0].text
		if len(s.args) > 1 {
			c.Misc.Path.Group = s.args[1].text
		}
	}),
)

var fileBlock = newBlock(string(FileCheck),
	str("track_file", func(c *Checker) *string { return &c.File.TrackFile }),
	k("weight", 1, 2, func(p *parser, s *stmt, c *Checker) {
		if v, ok := p.intArg(s.args[0], "weight", -2147483647, 2147483647); ok {
			c.File.Weight = int(v)
		}
		if len(s.args) > 1 {
			if v, ok := p.enumArg(s.args[1], "weight option", "reverse", "noreverse"); ok {
				c.File.Reverse = v == "reverse"
			}
		}
	}),
)

var bfdCheckBlock = newBlock(string(BFDCheck),
	str("name", func(c *Checker) *string { return &c.BFDName }),
	k("alpha", 0, 1, func(p *parser, s *stmt, c *Checker) {
		if v, ok := p.boolArg(s); ok {
			p.curChk().alpha = triOf(v)
		}
	}),
)

var sslBlock = newBlock("SSL",
	str("password", func(s *SSL) *string { return &s.Password }),
	str("ca", func(s *SSL) *string { return &s.CA }),
	str("certificate", func(s *SSL) *string { return &s.Certificate }),
	str("key", func(s *SSL) *string { return &s.Key }),
)

// posOr returns a's position if it is valid, else b.
func posOr(a, b diag.Pos) diag.Pos {
	if a.Line != 0 {
		return a
	}
	return b
}
