package bgp

import (
	"net/netip"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/translate"
)

// FromConfig resolves the bgp block of a checked configuration; ok is
// false when there is none.
func FromConfig(c *config.Config) (cfg Config, ok bool) {
	b := c.BGP
	if b == nil {
		return cfg, false
	}
	cfg.Speaker = SpeakerConfig{RouterID: b.RouterID, LocalAS: b.LocalAS, ListenPort: b.ListenPort}
	for _, n := range b.Neighbors {
		nb := Neighbor{
			Addr: n.Addr, RemoteAS: n.RemoteAS, Password: n.Password, HoldTime: n.HoldTime,
			ConnectRetry: n.ConnectRetry, Passive: n.Passive, Port: n.Port,
		}
		if n.BFD != nil {
			nb.BFDInterval, nb.BFDMultiplier = n.BFD.Interval, n.BFD.Multiplier
		}
		cfg.Speaker.Neighbors = append(cfg.Speaker.Neighbors, nb)
	}
	cfg.Policy = Policy{MED: b.MED, Communities: b.Communities, ShutdownDelay: b.ShutdownDelay, ShutdownMED: b.ShutdownMED}
	for _, a := range b.Announce {
		switch a.Kind {
		case "vrrp_instance":
			vi := c.Instance(a.Instance)
			if vi == nil {
				continue
			}
			s := Source{Kind: FromVRRP, Name: a.Instance}
			// The instance holds both lists while MASTER.
			for _, v := range append(vi.VirtualIPs[:len(vi.VirtualIPs):len(vi.VirtualIPs)], vi.ExcludedIPs...) {
				s.Prefixes = append(s.Prefixes, Host(v.Prefix.Addr()))
			}
			cfg.Policy.Sources = append(cfg.Policy.Sources, s)
		case "virtual_server":
			cfg.Policy.Sources = append(cfg.Policy.Sources, Source{
				Kind: FromVirtualServer, Name: translate.VirtualServerID(a.Addr, a.Port, a.Protocol),
				Prefixes: []netip.Prefix{Host(a.Addr)},
			})
		}
	}
	return cfg, true
}
