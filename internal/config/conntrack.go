package config

import (
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
)

// ConntrackSync is vigil's conntrack_sync block: the connection tracking
// table of this director replicated to its peer by conntrackd (FTFW mode),
// following the state of one VRRP instance or sync group.
//
//	conntrack_sync {
//	    interface eth2            # the dedicated sync link
//	    unicast_peer 10.9.0.2     # or: mcast_group 225.0.0.50
//	    source 10.9.0.1           # optional: the link's own address
//	    port 3780                 # optional
//	    vrrp_sync_group VG_1      # or: vrrp_instance VI_1
//	    conntrackd /usr/sbin/conntrackd
//	    timeout 5                 # seconds per conntrackd command
//	    filter virtual_servers    # or: all
//	}
type ConntrackSync struct {
	Pos        diag.Pos   `json:"pos"`
	Interface  string     `json:"interface"`
	Peer       netip.Addr `json:"unicast_peer,omitzero"`
	McastGroup netip.Addr `json:"mcast_group,omitzero"`
	Source     netip.Addr `json:"source,omitzero"`
	Port       uint16     `json:"port"`
	// Instance or SyncGroup names the VRRP state conntrackd follows.
	Instance  string `json:"vrrp_instance,omitempty"`
	SyncGroup string `json:"vrrp_sync_group,omitempty"`
	// Conntrackd is the daemon's path (default /usr/sbin/conntrackd).
	Conntrackd string `json:"conntrackd"`
	// Timeout bounds each conntrackd command run on a transition.
	Timeout time.Duration `json:"timeout"`
	// Filter: "virtual_servers" (default) replicates only flows whose
	// reply comes from a real server of a virtual server (the DNAT'ed
	// ones) over the virtual servers' protocols; "all" replicates every
	// TCP and UDP flow but the loopback's and the sync link's.
	Filter string `json:"filter"`
}

// Conntrack sync defaults.
const (
	DefaultConntrackd     = "/usr/sbin/conntrackd"
	DefaultConntrackPort  = 3780
	DefaultConntrackTimer = 5 * time.Second
)

var conntrackSyncBlock = newBlock("conntrack_sync",
	str("interface", func(c *ConntrackSync) *string { return &c.Interface }),
	k("unicast_peer", 1, 1, func(p *parser, s *stmt, c *ConntrackSync) {
		if a, ok := p.addrArg(s.args[0], "unicast_peer"); ok {
			c.Peer = a
		}
	}),
	k("mcast_group", 1, 1, func(p *parser, s *stmt, c *ConntrackSync) {
		if a, ok := p.addrArg(s.args[0], "mcast_group"); ok {
			if !a.IsMulticast() {
				p.errf(s.args[0].pos, "mcast_group %s is not a multicast address", a)
				return
			}
			c.McastGroup = a
		}
	}),
	k("source", 1, 1, func(p *parser, s *stmt, c *ConntrackSync) {
		if a, ok := p.addrArg(s.args[0], "source"); ok {
			c.Source = a
		}
	}),
	k("port", 1, 1, func(p *parser, s *stmt, c *ConntrackSync) {
		if v, ok := p.portArg(s.args[0], "port"); ok {
			c.Port = v
		}
	}),
	str("vrrp_instance", func(c *ConntrackSync) *string { return &c.Instance }),
	str("vrrp_sync_group", func(c *ConntrackSync) *string { return &c.SyncGroup }),
	str("conntrackd", func(c *ConntrackSync) *string { return &c.Conntrackd }),
	k("timeout", 1, 1, func(p *parser, s *stmt, c *ConntrackSync) {
		if d, ok := p.timerArg(s.args[0], "timeout", 100*time.Millisecond, time.Minute); ok {
			c.Timeout = d
		}
	}),
	k("filter", 1, 1, func(p *parser, s *stmt, c *ConntrackSync) {
		if v, ok := p.enumArg(s.args[0], "filter", "virtual_servers", "all"); ok {
			c.Filter = v
		}
	}),
)

// conntrackSyncRoot parses the top-level conntrack_sync block.
func conntrackSyncRoot(p *parser, s *stmt, c *Config) {
	cs := ConntrackSync{Pos: s.kw.pos, Port: DefaultConntrackPort, Conntrackd: DefaultConntrackd,
		Timeout: DefaultConntrackTimer, Filter: "virtual_servers"}
	parseBody(p, conntrackSyncBlock, &cs, s.open)
	if c.ConntrackSync != nil {
		p.errf(s.kw.pos, "conntrack_sync: a second block; the first is at line %d (one conntrackd per director)", c.ConntrackSync.Pos.Line)
		return
	}
	c.ConntrackSync = &cs
}

// resolveConntrackSync checks the block once every instance and group is
// known.
func (p *parser) resolveConntrackSync() {
	cs := p.cfg.ConntrackSync
	if cs == nil {
		return
	}
	if cs.Interface == "" {
		p.errf(cs.Pos, "conntrack_sync: no interface (the sync link conntrackd sends on)")
	} else if isHexWord(cs.Interface) {
		// conntrackd's configuration lexer reads such a name as a piece
		// of an IPv6 address and stops with "syntax error".
		p.errf(cs.Pos, "conntrack_sync: interface %q: conntrackd cannot read a name made of hexadecimal digits only; rename the link", cs.Interface)
	}
	peer := cs.Peer
	switch {
	case cs.Peer.IsValid() && cs.McastGroup.IsValid():
		p.errf(cs.Pos, "conntrack_sync: unicast_peer and mcast_group both given; conntrackd uses one transport")
	case !cs.Peer.IsValid() && !cs.McastGroup.IsValid():
		p.errf(cs.Pos, "conntrack_sync: no unicast_peer and no mcast_group (where the flow states go)")
	case cs.McastGroup.IsValid():
		peer = cs.McastGroup
	}
	if cs.Source.IsValid() && peer.IsValid() && cs.Source.Is4() != peer.Is4() {
		p.errf(cs.Pos, "conntrack_sync: source %s and peer %s are of different families", cs.Source, peer)
	}
	if cs.McastGroup.IsValid() && !cs.McastGroup.Is4() {
		// conntrackd's Multicast section takes IPv6 groups, but it needs
		// the interface's index, which vigil does not write; say so.
		p.errf(cs.Pos, "conntrack_sync: mcast_group %s: only IPv4 groups are supported; use unicast_peer for IPv6", cs.McastGroup)
	}
	switch {
	case cs.Instance != "" && cs.SyncGroup != "":
		p.errf(cs.Pos, "conntrack_sync: vrrp_instance and vrrp_sync_group both given; name the one whose state conntrackd follows")
	case cs.Instance != "":
		if p.cfg.Instance(cs.Instance) == nil {
			p.errf(cs.Pos, "conntrack_sync: no vrrp_instance %s", cs.Instance)
		}
	case cs.SyncGroup != "":
		found := false
		for _, g := range p.cfg.SyncGroups {
			found = found || g.Name == cs.SyncGroup
		}
		if !found {
			p.errf(cs.Pos, "conntrack_sync: no vrrp_sync_group %s", cs.SyncGroup)
		}
	default:
		p.errf(cs.Pos, "conntrack_sync: name the vrrp_instance or vrrp_sync_group whose state conntrackd follows")
	}
}

// isHexWord reports whether s is 1 to 4 hexadecimal digits.
func isHexWord(s string) bool {
	if len(s) == 0 || len(s) > 4 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
