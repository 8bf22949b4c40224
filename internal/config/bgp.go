package config

import (
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
)

// BGP is vigil's bgp block (an extension keepalived does not have): a BGP
// speaker that announces virtual addresses to routers while this node
// serves them. See docs/extensions.md.
type BGP struct {
	Pos      diag.Pos   `json:"pos"`
	RouterID netip.Addr `json:"router_id,omitzero"`
	LocalAS  uint32     `json:"local_as,omitempty"`
	// ListenPort is the TCP port the speaker accepts sessions on; 0 (the
	// default) accepts none: vigil connects out to its neighbours.
	ListenPort uint16 `json:"listen_port,omitempty"`
	// MED is the multi-exit discriminator of announced routes.
	MED uint32 `json:"med,omitempty"`
	// Communities are added to every announced route (RFC 1997 ASN:VALUE).
	Communities []uint32 `json:"communities,omitempty"`
	// ShutdownDelay is graceful_shutdown_delay: how long a route leaving
	// in an orderly way (stop, handover, MASTER -> BACKUP) stays announced
	// with the GRACEFUL_SHUTDOWN community (RFC 8326) and ShutdownMED
	// before it is withdrawn. 0 withdraws at once.
	ShutdownDelay time.Duration `json:"graceful_shutdown_delay"`
	ShutdownMED   uint32        `json:"graceful_shutdown_med"`
	Neighbors     []BGPNeighbor `json:"neighbors"`
	Announce      []BGPAnnounce `json:"announce"`
}

// BGPNeighbor is one neighbor block.
type BGPNeighbor struct {
	Pos      diag.Pos   `json:"pos"`
	Addr     netip.Addr `json:"addr"`
	RemoteAS uint32     `json:"remote_as"`
	// Password is the TCP MD5 signature key (RFC 2385).
	Password     string        `json:"password,omitempty"`
	HoldTime     time.Duration `json:"hold_time"`
	ConnectRetry time.Duration `json:"connect_retry"`
	Passive      bool          `json:"passive,omitempty"`
	Port         uint16        `json:"port,omitempty"`
	// BFD (RFC 5880/5881 single hop) detects the neighbor's loss in
	// BFDInterval × BFDMultiplier; nil when off.
	BFD *BGPBFD `json:"bfd,omitempty"`
}

// BGPBFD is a neighbor's bfd line: bfd [INTERVAL_MS [MULTIPLIER]].
type BGPBFD struct {
	Interval   time.Duration `json:"interval"`
	Multiplier uint8         `json:"multiplier"`
}

// BGPAnnounce is one line of the announce block: what to announce, and
// what decides it.
type BGPAnnounce struct {
	Pos diag.Pos `json:"pos"`
	// Kind is "vrrp_instance" (its virtual addresses, while MASTER) or
	// "virtual_server" (its address, while its quorum is up).
	Kind     string     `json:"kind"`
	Instance string     `json:"instance,omitempty"`
	Addr     netip.Addr `json:"addr,omitzero"`
	Port     uint16     `json:"port,omitempty"`
	Protocol Protocol   `json:"protocol,omitempty"`
}

// BGP defaults.
const (
	DefaultBGPHoldTime      = 90 * time.Second
	DefaultBGPConnectRetry  = 5 * time.Second
	DefaultBGPShutdownDelay = 5 * time.Second
	// DefaultBGPShutdownMED is the MED of a route being shut down: the
	// worst but one, as routers' "max-med" features use.
	DefaultBGPShutdownMED = 4294967294
)

var bgpNeighborBlock = newBlock("neighbor",
	k("remote_as", 1, 1, func(p *parser, s *stmt, n *BGPNeighbor) {
		if v, ok := p.uintArg(s.args[0], "remote_as", 1, 4294967295); ok {
			n.RemoteAS = uint32(v)
		}
	}),
	str("password", func(n *BGPNeighbor) *string { return &n.Password }),
	k("hold_time", 1, 1, func(p *parser, s *stmt, n *BGPNeighbor) {
		// RFC 4271 §4.2: zero or at least three seconds.
		if v, ok := p.uintArg(s.args[0], "hold_time", 0, 65535); ok {
			if v == 1 || v == 2 {
				p.errf(s.args[0].pos, "hold_time %d: BGP allows 0 or 3..65535 seconds (RFC 4271 §4.2)", v)
				return
			}
			n.HoldTime = time.Duration(v) * time.Second
		}
	}),
	k("connect_retry", 1, 1, func(p *parser, s *stmt, n *BGPNeighbor) {
		if v, ok := p.secondsArg(s.args[0], "connect_retry", 1, 65535); ok {
			n.ConnectRetry = v
		}
	}),
	k("port", 1, 1, func(p *parser, s *stmt, n *BGPNeighbor) {
		if v, ok := p.portArg(s.args[0], "port"); ok {
			n.Port = v
		}
	}),
	flagKw("passive", func(n *BGPNeighbor) *bool { return &n.Passive }),
	k("bfd", 0, 2, func(p *parser, s *stmt, n *BGPNeighbor) {
		b := &BGPBFD{Interval: 300 * time.Millisecond, Multiplier: 3}
		if len(s.args) > 0 {
			v, ok := p.uintArg(s.args[0], "bfd interval (ms)", 10, 60000)
			if !ok {
				return
			}
			b.Interval = time.Duration(v) * time.Millisecond
		}
		if len(s.args) > 1 {
			v, ok := p.uintArg(s.args[1], "bfd multiplier", 1, 255)
			if !ok {
				return
			}
			b.Multiplier = uint8(v)
		}
		n.BFD = b
	}),
)

var bgpBlock = newBlock("bgp",
	k("router_id", 1, 1, func(p *parser, s *stmt, b *BGP) {
		if a, ok := p.addrArg(s.args[0], "router_id"); ok {
			if !a.Is4() {
				p.errf(s.args[0].pos, "router_id %s: a BGP identifier is an IPv4 address", a)
				return
			}
			b.RouterID = a
		}
	}),
	k("local_as", 1, 1, func(p *parser, s *stmt, b *BGP) {
		if v, ok := p.uintArg(s.args[0], "local_as", 1, 4294967295); ok {
			b.LocalAS = uint32(v)
		}
	}),
	k("listen_port", 1, 1, func(p *parser, s *stmt, b *BGP) {
		if v, ok := p.uintArg(s.args[0], "listen_port", 0, 65535); ok {
			b.ListenPort = uint16(v)
		}
	}),
	k("med", 1, 1, func(p *parser, s *stmt, b *BGP) {
		if v, ok := p.uintArg(s.args[0], "med", 0, 4294967295); ok {
			b.MED = uint32(v)
		}
	}),
	k("community", 1, -1, func(p *parser, s *stmt, b *BGP) {
		for _, a := range s.args {
			if c, ok := p.communityArg(a); ok {
				b.Communities = append(b.Communities, c)
			}
		}
	}).multiple(),
	k("graceful_shutdown_delay", 1, 1, func(p *parser, s *stmt, b *BGP) {
		if v, ok := p.timerArg(s.args[0], "graceful_shutdown_delay", 0, time.Hour); ok {
			b.ShutdownDelay = v
		}
	}),
	k("graceful_shutdown_med", 1, 1, func(p *parser, s *stmt, b *BGP) {
		if v, ok := p.uintArg(s.args[0], "graceful_shutdown_med", 0, 4294967295); ok {
			b.ShutdownMED = uint32(v)
		}
	}),
	k("neighbor", 1, 1, func(p *parser, s *stmt, b *BGP) {
		n := BGPNeighbor{Pos: s.kw.pos, HoldTime: DefaultBGPHoldTime, ConnectRetry: DefaultBGPConnectRetry}
		a, ok := p.addrArg(s.args[0], "neighbor")
		sn := parseBody(p, bgpNeighborBlock, &n, s.open)
		if !ok {
			return
		}
		n.Addr = a
		if n.RemoteAS == 0 {
			if pos, given := sn.at("remote_as"); given {
				p.errf(pos, "neighbor %s: remote_as is invalid; the neighbor cannot run", a)
			} else {
				p.errf(s.kw.pos, "neighbor %s has no remote_as", a)
			}
			return
		}
		for _, o := range b.Neighbors {
			if o.Addr == a {
				p.errf(s.kw.pos, "neighbor %s given again (first at %s)", a, o.Pos)
				return
			}
		}
		b.Neighbors = append(b.Neighbors, n)
	}).opens(bgpNeighborBlock).multiple(),
	k("announce", 0, 0, func(p *parser, s *stmt, b *BGP) {
		p.values(s, func(e *stmt) {
			if a, ok := p.bgpAnnounce(e); ok {
				b.Announce = append(b.Announce, a)
			}
		})
	}).valueBlock().multiple(),
)

// bgpAnnounce reads one line of an announce block:
//
//	vrrp_instance NAME
//	virtual_server ADDR PORT [TCP|UDP|SCTP]
func (p *parser) bgpAnnounce(e *stmt) (BGPAnnounce, bool) {
	a := BGPAnnounce{Pos: e.kw.pos, Kind: e.kw.text}
	switch e.kw.text {
	case "vrrp_instance":
		if len(e.args) != 1 {
			p.errf(e.kw.pos, "announce vrrp_instance: want one instance name")
			return a, false
		}
		a.Instance = e.args[0].text
		return a, true
	case "virtual_server":
		if len(e.args) < 2 || len(e.args) > 3 {
			p.errf(e.kw.pos, "announce virtual_server: want ADDRESS PORT [TCP|UDP|SCTP]")
			return a, false
		}
		addr, ok := p.addrArg(e.args[0], "virtual_server address")
		if !ok {
			return a, false
		}
		port, ok := p.portArg(e.args[1], "virtual_server port")
		if !ok {
			return a, false
		}
		a.Addr, a.Port, a.Protocol = addr, port, TCP
		if len(e.args) == 3 {
			v, ok := p.enumArg(e.args[2], "protocol", "TCP", "UDP", "SCTP")
			if !ok {
				return a, false
			}
			a.Protocol = Protocol(v)
		}
		return a, true
	}
	msg := "unknown announce source %q: want vrrp_instance NAME or virtual_server ADDRESS PORT [PROTOCOL]"
	if sug := closest(e.kw.text, []string{"vrrp_instance", "virtual_server"}); sug != "" {
		msg += " (did you mean " + sug + "?)"
	}
	p.errf(e.kw.pos, msg, e.kw.text)
	return a, false
}

// communityArg parses an RFC 1997 community written ASN:VALUE (each
// 0..65535), or one of the well-known names.
func (p *parser) communityArg(t token) (uint32, bool) {
	switch strings.ToLower(t.text) {
	case "graceful_shutdown":
		return 0xFFFF0000, true // RFC 8326
	case "no_export":
		return 0xFFFFFF01, true
	case "no_advertise":
		return 0xFFFFFF02, true
	}
	hi, lo, ok := strings.Cut(t.text, ":")
	if ok {
		h, err1 := parseUint16(hi)
		l, err2 := parseUint16(lo)
		if err1 && err2 {
			return uint32(h)<<16 | uint32(l), true
		}
	}
	p.errf(t.pos, "community %q: want ASN:VALUE (each 0..65535), graceful_shutdown, no_export or no_advertise", t.text)
	return 0, false
}

func parseUint16(s string) (uint16, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	if v > 65535 {
		return 0, false
	}
	return uint16(v), true
}

// bgpKeyword is the top-level bgp keyword.
func bgpKeyword() *kw[Config] {
	return k("bgp", 0, 0, func(p *parser, s *stmt, c *Config) {
		if c.BGP != nil {
			p.errf(s.kw.pos, "bgp given again (first at %s); one BGP speaker per daemon", c.BGP.Pos)
			p.skipBlock(s.open)
			return
		}
		b := &BGP{Pos: s.kw.pos, ShutdownDelay: DefaultBGPShutdownDelay, ShutdownMED: DefaultBGPShutdownMED}
		sn := parseBody(p, bgpBlock, b, s.open)
		if !b.RouterID.IsValid() {
			if _, given := sn.at("router_id"); !given {
				p.errf(s.kw.pos, "bgp has no router_id")
			}
		}
		if b.LocalAS == 0 {
			if _, given := sn.at("local_as"); !given {
				p.errf(s.kw.pos, "bgp has no local_as")
			}
		}
		if len(b.Neighbors) == 0 {
			p.warnf(s.kw.pos, "bgp has no neighbor: nothing is announced")
		}
		if len(b.Announce) == 0 {
			p.warnf(s.kw.pos, "bgp has no announce block: nothing is announced")
		}
		c.BGP = b
	}).opens(bgpBlock)
}

// resolveBGP checks what the announce block names against the instances
// and virtual servers.
func (p *parser) resolveBGP() {
	b := p.cfg.BGP
	if b == nil {
		return
	}
	for _, a := range b.Announce {
		switch a.Kind {
		case "vrrp_instance":
			vi := p.cfg.Instance(a.Instance)
			if vi == nil {
				p.errf(a.Pos, "announce: no vrrp_instance %s", a.Instance)
			} else if len(vi.VirtualIPs)+len(vi.ExcludedIPs) == 0 {
				p.warnf(a.Pos, "announce: vrrp_instance %s has no virtual addresses: nothing to announce", a.Instance)
			}
		case "virtual_server":
			found := false
			for _, vs := range p.cfg.VirtualServers {
				if vs.Addr == a.Addr && vs.Port == a.Port && vs.Protocol == a.Protocol {
					found = true
					break
				}
			}
			if !found {
				p.errf(a.Pos, "announce: no virtual_server %s %d %s", a.Addr, a.Port, a.Protocol)
			}
		}
	}
}
