package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// PriorityOwner is the priority of the router that owns the virtual addresses
// (RFC 5798 §5.2.4).
const PriorityOwner = 255

// DefaultDownTimerAdverts is the number of adverts a backup misses before it
// takes over (RFC 5798 §6.1: Master_Down_Interval = 3 × interval + skew;
// keepalived's down_timer_adverts).
const DefaultDownTimerAdverts = 3

// OldUnicastChecksum is keepalived's old_unicast_checksum setting for unicast
// VRRPv3 over IPv4.
type OldUnicastChecksum uint8

const (
	// OldChecksumAuto (keepalived's default): send the standard checksum,
	// but when a unicast peer's advert only verifies with 224.0.0.18 in the
	// pseudo-header, switch to that for sending and receiving.
	OldChecksumAuto OldUnicastChecksum = iota
	// OldChecksumNever: `old_unicast_checksum never`; no fallback.
	OldChecksumNever
	// OldChecksumAlways: `old_unicast_checksum`; always use 224.0.0.18.
	OldChecksumAlways
)

// Peer is a unicast peer (unicast_peer). With CheckUnicastSrc, an advert's
// TTL must lie in MinTTL..MaxTTL (keepalived's min_ttl / max_ttl; a zero
// MaxTTL means 255).
type Peer struct {
	Addr           netip.Addr
	MinTTL, MaxTTL int
}

// Config is one vrrp_instance, already resolved by the configuration layer
// (defaults from global_defs applied, diagnostics reported). New applies
// keepalived's remaining normalisations itself, silently: the configuration
// layer is where they are reported.
type Config struct {
	Name     string
	VRID     uint8
	Version  uint8 // 2 or 3
	Priority uint8 // base priority, 1..255; 255 is the address owner
	// AdvertInt is advert_int: whole seconds 1..255 for VRRPv2, a multiple of
	// 10 ms up to 40.95 s for VRRPv3.
	AdvertInt time.Duration
	// InitialState is `state MASTER` or `state BACKUP`; StateInit means not
	// configured, which keepalived turns into MASTER for priority 255 and
	// BACKUP otherwise. Only an address owner starting as MASTER goes master
	// at once; keepalived 2.2.7 starts any other MASTER as a backup.
	InitialState State
	NoPreempt    bool          // nopreempt
	PreemptDelay time.Duration // preempt_delay
	// VIPs are the addresses advertised (virtual_ipaddress, not
	// virtual_ipaddress_excluded), in configuration order, all of the
	// instance's family.
	VIPs []netip.Addr
	// Source is the address adverts are sent from: the interface's primary
	// IPv4 address or IPv6 link-local address, or mcast_src_ip /
	// unicast_src_ip. Its family is the instance's family.
	Source netip.Addr
	// AuthType is VRRPv2's authentication: AuthNone, AuthPass or, over
	// IPv4, AuthAH (keepalived's IPsec AH; see ah.go).
	AuthType packet.AuthType
	AuthPass [8]byte // the auth_pass, zero padded, truncated to 8 bytes; the AH key too
	Unicast  bool    // unicast_peer configured
	Peers    []Peer
	// CheckUnicastSrc drops unicast adverts from an address that is not a
	// peer (check_unicast_src, or vrrp_check_unicast_src in global_defs).
	// keepalived 2.2.7 accepts them when it is not set.
	CheckUnicastSrc      bool
	DownTimerAdverts     int  // down_timer_adverts, 1..100; 0 means 3
	SkipCheckAdvAddr     bool // skip_check_adv_addr
	LowerPrioNoAdvert    bool // lower_prio_no_advert
	HigherPrioSendAdvert bool // higher_prio_send_advert
	// V3ChecksumAsV2 computes VRRPv3-over-IPv4 checksums without the
	// pseudo-header, sending and receiving (keepalived 2.2.8+
	// v3_checksum_as_v2; RFC 9568 §5.2.8).
	V3ChecksumAsV2     bool
	OldUnicastChecksum OldUnicastChecksum
	// HandoverOnStop makes Stop hand over as Handover does before stopping.
	HandoverOnStop bool
	// HandoverTimeout bounds how long a handing-over master keeps its
	// addresses without hearing a new master. Zero means the Master_Down_Interval
	// of the lowest possible priority (so even a peer that missed the
	// priority-0 advert has taken over) plus one advert interval of margin.
	HandoverTimeout time.Duration
	// SpreadAdverts re-arms a master's Adver_Timer on the instance's own
	// phase of the interval (AdvertPhase) rather than at exactly one
	// interval from the moment it was re-armed, so that instances that
	// became master together do not advertise in one burst forever
	// (phase.go). The engine sets it; off, the cadence is RFC 5798's
	// plain one, as the scenario tests spell it.
	SpreadAdverts bool
}

// validate checks c and returns it normalised as keepalived's
// vrrp_complete_instance does.
func (c Config) validate() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.VRID == 0 {
		bad("virtual_router_id 0: must be 1..255")
	}
	if c.Priority == 0 {
		bad("priority 0: must be 1..255")
	}
	c.Source = c.Source.Unmap()
	if !c.Source.IsValid() {
		bad("no source address")
	}
	is6 := c.Source.Is6()
	switch c.Version {
	case packet.Version2:
		if c.AdvertInt < time.Second || c.AdvertInt > packet.MaxIntervalV2*time.Second || c.AdvertInt%time.Second != 0 {
			bad("advert_int %v: VRRPv2 needs whole seconds 1..255", c.AdvertInt)
		}
		switch c.AuthType {
		case packet.AuthNone, packet.AuthPass, packet.AuthAH:
		default:
			bad("auth_type %d", c.AuthType)
		}
		if is6 && c.AuthType != packet.AuthNone {
			bad("VRRPv2 over IPv6 carries no authentication")
		}
	case packet.Version3:
		if c.AdvertInt < 10*time.Millisecond || c.AdvertInt > packet.MaxIntervalV3*10*time.Millisecond || c.AdvertInt%(10*time.Millisecond) != 0 {
			bad("advert_int %v: VRRPv3 needs centiseconds 1..4095", c.AdvertInt)
		}
		if c.AuthType != packet.AuthNone {
			bad("VRRPv3 has no authentication")
		}
		if len(c.VIPs) == 0 {
			// keepalived vrrp_complete_instance: "No VIP specified; at least one is required"
			bad("VRRPv3 needs at least one virtual address")
		}
	default:
		bad("version %d: must be 2 or 3", c.Version)
	}
	if len(c.VIPs) > packet.MaxAddrs {
		bad("%d virtual addresses: an advert holds at most %d", len(c.VIPs), packet.MaxAddrs)
	}
	vips := make([]netip.Addr, len(c.VIPs))
	for n, a := range c.VIPs {
		vips[n] = a.Unmap().WithZone("") // adverts carry no zone
		if !vips[n].IsValid() || vips[n].Is6() != is6 {
			bad("virtual address %v is not of the family of source %v", a, c.Source)
		}
	}
	c.VIPs = vips
	peers := make([]Peer, len(c.Peers))
	for n, p := range c.Peers {
		p.Addr = p.Addr.Unmap().WithZone("") // compared with unzoned packet sources
		if !p.Addr.IsValid() || p.Addr.Is6() != is6 {
			bad("unicast peer %v is not of the family of source %v", p.Addr, c.Source)
		}
		if p.MaxTTL == 0 {
			p.MaxTTL = packet.TTL
		}
		if p.MinTTL < 0 || p.MinTTL > p.MaxTTL || p.MaxTTL > packet.TTL {
			bad("unicast peer %v: TTL range %d..%d", p.Addr, p.MinTTL, p.MaxTTL)
		}
		peers[n] = p
	}
	c.Peers = peers
	if c.DownTimerAdverts == 0 {
		c.DownTimerAdverts = DefaultDownTimerAdverts
	}
	if c.DownTimerAdverts < 1 || c.DownTimerAdverts > 100 {
		bad("down_timer_adverts %d: must be 1..100", c.DownTimerAdverts)
	}
	if c.PreemptDelay < 0 || c.HandoverTimeout < 0 {
		bad("negative preempt_delay or handover timeout")
	}
	switch c.InitialState {
	case StateInit:
		// keepalived vrrp_complete_instance: no state derives from priority.
		c.InitialState = StateBackup
		if c.Priority == PriorityOwner {
			c.InitialState = StateMaster
		}
	case StateMaster, StateBackup:
	default:
		bad("initial state %v: must be MASTER or BACKUP", c.InitialState)
	}
	if c.OldUnicastChecksum > OldChecksumAlways {
		bad("old_unicast_checksum mode %d", c.OldUnicastChecksum)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("vrrp: instance %q: %w", c.Name, errors.Join(errs...))
	}

	// keepalived 2.2.7 vrrp_complete_instance: "nopreempt is incompatible
	// with priority 255", "nopreempt will not work with initial state
	// MASTER", "preempt delay will not work with initial state MASTER".
	if c.Priority == PriorityOwner || c.InitialState == StateMaster {
		c.NoPreempt = false
	}
	if c.InitialState == StateMaster {
		c.PreemptDelay = 0
	}
	if c.HandoverTimeout == 0 {
		c.HandoverTimeout = masterDown(c.Version, 1, c.AdvertInt, c.DownTimerAdverts) + c.AdvertInt
	}
	return c, nil
}

// SkewTime is Skew_Time for a router of the given priority. VRRPv2 (RFC 3768
// §6.1): (256 − Priority) / 256 seconds, whatever the interval. VRRPv3 (RFC
// 5798 §6.1): ((256 − Priority) × Master_Adver_Interval) / 256. Both computed
// in whole microseconds as keepalived 2.2.7 does (VRRP_TIMER_SKEW), which
// for VRRPv3 keeps the fraction of a centisecond the RFC's unit would drop.
func SkewTime(version, priority uint8, masterAdvertInt time.Duration) time.Duration {
	p := int64(256 - int(priority))
	if version == packet.Version3 {
		cs := int64(masterAdvertInt / (10 * time.Millisecond))
		return time.Duration(p*cs*625/16) * time.Microsecond
	}
	return time.Duration(p*1_000_000/256) * time.Microsecond
}

// MasterDownInterval is RFC 5798 §6.1's 3 × Master_Adver_Interval +
// Skew_Time (RFC 3768: Advertisement_Interval; for VRRPv2 the two are equal).
func MasterDownInterval(version, priority uint8, masterAdvertInt time.Duration) time.Duration {
	return masterDown(version, priority, masterAdvertInt, DefaultDownTimerAdverts)
}

// masterDown is keepalived's VRRP_MS_DOWN_TIMER with down_timer_adverts.
func masterDown(version, priority uint8, masterAdvertInt time.Duration, adverts int) time.Duration {
	return time.Duration(adverts)*masterAdvertInt + SkewTime(version, priority, masterAdvertInt)
}
