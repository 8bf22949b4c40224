package engine

import (
	"net/netip"
	"reflect"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// Spec is what the engine runs, resolved from the configuration file (see
// FromConfig): plain values, comparable per instance so that a reload can
// tell what changed.
type Spec struct {
	RouterID   string
	Instances  []InstanceSpec
	SyncGroups []SyncGroupSpec
	// GARPInterval / GNAInterval are vrrp_garp_interval / vrrp_gna_interval:
	// the spacing of gratuitous ARPs / NAs on one interface.
	GARPInterval, GNAInterval time.Duration
}

// InstanceSpec is one vrrp_instance.
type InstanceSpec struct {
	// VRRP is the state machine's configuration. Its Source is zero unless
	// mcast_src_ip / unicast_src_ip fixes it; the engine resolves it from the
	// interface otherwise (and again when the interface's address changes).
	VRRP      vrrp.Config
	Interface string
	IPv6      bool
	// Group is vrrp_mcast_group4/6; zero means the default group.
	Group        netip.Addr
	VIPs         []netif.VIP // virtual_ipaddress (advertised)
	ExcludedVIPs []netif.VIP // virtual_ipaddress_excluded (not advertised)
	// TrackInterfaces are track_interface entries; the instance's own
	// interface is tracked unless DontTrackPrimary.
	TrackInterfaces  []TrackInterface
	DontTrackPrimary bool
	GARP             garp.Config
}

// TrackInterface is one track_interface line. Weight 0 puts the instance in
// FAULT while the interface is down; another weight changes its priority
// (see internal/track for keepalived's arithmetic).
type TrackInterface struct {
	Name   string
	Weight int
}

// SyncGroupSpec is a vrrp_sync_group.
type SyncGroupSpec struct {
	Name    string
	Members []string
}

// Equal reports whether two instance specs are the same configuration.
func (s InstanceSpec) Equal(o InstanceSpec) bool {
	return reflect.DeepEqual(s, o)
}
