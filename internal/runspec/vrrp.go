// Package runspec holds what vigil's two runtimes run: the VRRP engine's Spec
// (internal/engine) and the virtual-server director's DirectorSpec
// (internal/director). internal/translate makes them from the configuration.
// They hold values only (no configuration positions, no parse trees), so
// that a reload compares them to tell what changed.
package runspec

import (
	"net/netip"
	"reflect"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/procwatch"
	"github.com/vigil-ha/vigil/internal/script"
	"github.com/vigil-ha/vigil/internal/track"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// Spec is what the engine runs, resolved from the configuration file (see
// translate.FromConfig): plain values, comparable per instance so that a reload can
// tell what changed.
type Spec struct {
	RouterID   string
	Instances  []InstanceSpec
	SyncGroups []SyncGroupSpec
	// GARPInterval / GNAInterval are vrrp_garp_interval / vrrp_gna_interval:
	// the spacing of gratuitous ARPs / NAs on one interface.
	GARPInterval, GNAInterval time.Duration
	// StartupDelay is vrrp_startup_delay: instances start this long after
	// the daemon (to let the network settle after a boot).
	StartupDelay time.Duration
	// StaticRoutes and StaticRules (static_routes, static_rules) are in
	// the kernel while the daemon runs, whatever the instances' states.
	StaticRoutes []netif.Route
	StaticRules  []netif.Rule
	// The tracked objects instances refer to by name.
	Scripts   []ScriptSpec
	Files     []FileSpec
	Processes []procwatch.Spec
}

// ScriptSpec is a vrrp_script, ready to run.
type ScriptSpec struct {
	Name              string
	Script            *script.Prepared
	Interval, Timeout time.Duration
	Rise, Fall        int
	InitFail          bool
}

// FileSpec is a track_file: the file is created with Init's value at start
// when InitSet.
type FileSpec struct {
	Name, Path    string
	InitSet       bool
	InitValue     int
	InitOverwrite bool
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
	VIPs         []netif.VIP   // virtual_ipaddress (advertised)
	ExcludedVIPs []netif.VIP   // virtual_ipaddress_excluded (not advertised)
	Routes       []netif.Route // virtual_routes, installed while MASTER
	Rules        []netif.Rule  // virtual_rules, installed while MASTER
	// Trackers are the instance's track_interface, track_script,
	// track_file and track_process entries (its sync group's included) with
	// their effective weights; internal/track does keepalived's arithmetic.
	// The instance's own interface is tracked as well (weight 0: FAULT
	// while down) unless DontTrackPrimary.
	Trackers         []TrackRef
	DontTrackPrimary bool
	// UnicastTTL is unicast_ttl (0: 255).
	UnicastTTL int
	// PromoteSecondaries sets the interface's promote_secondaries sysctl,
	// so removing a VIP that became primary keeps the other addresses.
	PromoteSecondaries bool
	GARP               garp.Config
	// VMAC is use_vmac's interface (zero Name: none): the VIPs of the
	// instance's family on Interface are on it, adverts leave from it
	// unless VMAC.XmitBase.
	VMAC netif.VMAC
	// NoAccept is accept mode off on a router that is not the address
	// owner (vrrp_strict without accept, or no_accept): while MASTER,
	// traffic to and from the VIPs is dropped (internal/vrrpfw).
	NoAccept bool
	// Strict is strict_mode / vrrp_strict (its checks are the state
	// machine's and the parser's; kept here for status).
	Strict bool
	// Notify are the notify_* scripts; SMTPAlert sends mail on transitions.
	Notify                notify.Scripts
	SMTPAlert             bool
	NotifyPriorityChanges bool
}

// TrackRef is one tracked object as an instance sees it.
type TrackRef struct {
	Kind    track.Kind
	Name    string
	Weight  int
	Reverse bool
}

// SyncGroupSpec is a vrrp_sync_group.
type SyncGroupSpec struct {
	Name      string
	Members   []string
	Notify    notify.Scripts
	SMTPAlert bool
}

// Machine is the state machine's configuration of the instance: the spec's,
// with the master's adverts spread over the interval (vrrp's phase.go),
// which the engine always wants.
func (s InstanceSpec) Machine() vrrp.Config {
	c := s.VRRP
	c.SpreadAdverts = true
	return c
}

// Equal reports whether two instance specs are the same configuration.
func (s InstanceSpec) Equal(o InstanceSpec) bool {
	return reflect.DeepEqual(s, o)
}

// SockIf is the interface the instance's VRRP socket is on: its VMAC,
// unless vmac_xmit_base (or no VMAC): then the configured interface
// (keepalived vrrp_scheduler.c: xmit_base uses configured_ifp).
func (s InstanceSpec) SockIf() string {
	if s.VMAC.Name != "" && !s.VMAC.XmitBase {
		return s.VMAC.Name
	}
	return s.Interface
}
