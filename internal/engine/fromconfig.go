package engine

import (
	"fmt"
	"net/netip"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// FromConfig resolves a loaded keepalived.conf into the engine's Spec. The
// configuration must be free of errors (config.Load's diagnostics); what
// FromConfig still finds wrong (a combination the state machine refuses) is
// reported at the instance's position.
func FromConfig(c *config.Config) (Spec, diag.Diagnostics) {
	var ds diag.Diagnostics
	g := c.Global
	spec := Spec{RouterID: g.RouterID, GARPInterval: g.VRRPGARPInterval, GNAInterval: g.VRRPGNAInterval}
	for _, in := range c.Instances {
		is, err := instanceSpec(g, in)
		if err != nil {
			ds.Errorf(in.Pos, "vrrp_instance %s: %v", in.Name, err)
			continue
		}
		spec.Instances = append(spec.Instances, is)
	}
	for _, sg := range c.SyncGroups {
		spec.SyncGroups = append(spec.SyncGroups, SyncGroupSpec{Name: sg.Name, Members: sg.Instances})
	}
	return spec, ds
}

func instanceSpec(g config.Global, in config.VRRPInstance) (InstanceSpec, error) {
	v6 := in.Family == config.Inet6
	vc := vrrp.Config{
		Name:                 in.Name,
		VRID:                 uint8(in.VRID),
		Version:              uint8(in.Version),
		Priority:             uint8(in.Priority),
		AdverInt:             in.AdvertInt,
		NoPreempt:            in.Nopreempt,
		PreemptDelay:         in.PreemptDelay,
		Source:               in.SourceIP,
		Unicast:              in.Unicast,
		DownTimerAdverts:     in.DownTimerAdverts,
		SkipCheckAdvAddr:     in.SkipCheckAdvAddr,
		LowerPrioNoAdvert:    in.LowerPrioNoAdvert,
		HigherPrioSendAdvert: in.HigherPrioSendAdvert,
		// vigil: a planned stop hands over make-before-break (the peers
		// still see an RFC priority-0 advert).
		HandoverOnStop: true,
		// vigil drops unicast adverts from sources that are not configured
		// peers (keepalived only with check_unicast_src): an advert from an
		// unknown address cannot be the peer the operator listed.
		CheckUnicastSrc: in.Unicast,
	}
	switch in.State {
	case config.Master:
		vc.InitialState = vrrp.StateMaster
	case config.Backup:
		vc.InitialState = vrrp.StateBackup
	}
	if vc.Version == packet.Version2 && !v6 {
		switch in.Auth.Type {
		case config.AuthPass:
			vc.AuthType = packet.AuthPass
			copy(vc.AuthPass[:], in.Auth.Pass)
		case config.AuthAH:
			return InstanceSpec{}, fmt.Errorf("auth_type AH is not supported")
		}
	}
	for _, p := range in.UnicastPeers {
		vc.Peers = append(vc.Peers, vrrp.Peer{Addr: p.Addr, MinTTL: p.MinTTL, MaxTTL: p.MaxTTL})
	}
	spec := InstanceSpec{
		Interface:        in.Interface,
		IPv6:             v6,
		Group:            in.McastGroup,
		DontTrackPrimary: in.DontTrackPrimary,
		GARP: garp.Config{
			Repeat:          in.GARPMasterRepeat,
			Delay:           in.GARPMasterDelay,
			Refresh:         in.GARPMasterRefresh,
			RefreshRepeat:   in.GARPMasterRefreshRepeat,
			LowerPrioRepeat: in.GARPLowerPrioRepeat,
			LowerPrioDelay:  in.GARPLowerPrioDelay,
		},
	}
	if spec.Interface == "" {
		return InstanceSpec{}, fmt.Errorf("no interface (vigil needs one, also with unicast peers)")
	}
	if !spec.Group.IsValid() && !in.Unicast {
		if v6 {
			spec.Group = g.VRRPMcastGroup6
		} else {
			spec.Group = g.VRRPMcastGroup4
		}
	}
	for _, a := range in.VirtualIPs {
		v, err := vipOf(a, in.Interface)
		if err != nil {
			return InstanceSpec{}, err
		}
		spec.VIPs = append(spec.VIPs, v)
		if v.Addr().Is6() == v6 {
			vc.VIPs = append(vc.VIPs, v.Addr())
		}
	}
	for _, a := range in.ExcludedIPs {
		v, err := vipOf(a, in.Interface)
		if err != nil {
			return InstanceSpec{}, err
		}
		spec.ExcludedVIPs = append(spec.ExcludedVIPs, v)
	}
	for _, t := range in.TrackInterfaces {
		spec.TrackInterfaces = append(spec.TrackInterfaces, TrackInterface{Name: t.Name, Weight: t.Weight})
	}
	spec.VRRP = vc
	return spec, nil
}

// vipOf converts a virtual_ipaddress line into a netif.VIP.
func vipOf(a config.Address, defDev string) (netif.VIP, error) {
	v := netif.VIP{
		Prefix:  a.Prefix,
		Dev:     a.Dev,
		Label:   a.Label,
		Peer:    a.Peer,
		KeepDAD: a.NoDAD, // config.NoDAD is keepalived's "-nodad": keep DAD
	}
	if v.Dev == "" {
		v.Dev = defDev
	}
	switch a.BroadcastMode {
	case "addr":
		v.Broadcast = a.Broadcast
	case "+":
		v.Broadcast = lastAddr(a.Prefix)
	}
	if a.Scope != "" {
		s, err := netif.ParseScope(a.Scope)
		if err != nil {
			return netif.VIP{}, fmt.Errorf("%s: %w", a.Prefix, err)
		}
		v.Scope = s
	}
	if a.Home {
		v.Flags |= netif.FlagHome
	}
	if a.NoPrefixRoute {
		v.Flags |= netif.FlagNoPrefixRoute
	}
	if a.MngTmpAddr {
		v.Flags |= netif.FlagMngTmpAddr
	}
	if a.AutoJoin {
		v.Flags |= netif.FlagAutoJoin
	}
	if a.PreferredLftSet {
		lft := uint32(0xffffffff)
		if a.PreferredLft >= 0 {
			lft = uint32(a.PreferredLft)
		}
		v.PreferredLft = &lft
	}
	return v, v.Validate()
}

// lastAddr is the broadcast address of an IPv4 prefix ("brd +").
func lastAddr(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() {
		return netip.Addr{}
	}
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}
