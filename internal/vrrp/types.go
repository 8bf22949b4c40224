package vrrp

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// State is an instance's VRRP state: RFC 5798's Initialize, Backup and Master
// plus keepalived's FAULT, and Stopped after a Stop event.
type State uint8

const (
	StateInit    State = iota // created, not started (RFC 5798 Initialize)
	StateBackup               // RFC 5798 §6.4.2
	StateMaster               // RFC 5798 §6.4.3
	StateFault                // keepalived: interface down or a weight-0 tracker failing
	StateStopped              // after Stop; Start may run it again
)

// String returns keepalived's name for s ("STOP" as in notify_stop).
func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	case StateStopped:
		return "STOP"
	}
	return fmt.Sprintf("STATE_%d", uint8(s))
}

// MarshalText makes State print by name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Event is an input to Instance.Step and SyncGroup.Step.
type Event interface{ event() }

// Start leaves Init (or Stopped): to Fault if a fault is known, to Master at
// once for an address owner configured (or defaulted) to state MASTER, else
// to Backup with the Master_Down_Timer running. Send PriorityChanged,
// LinkChanged and FaultChanged before Start to give the initial picture.
type Start struct{}

// Stop is a graceful stop (SIGTERM, or the instance leaving the
// configuration): a master sends priority 0 and releases its addresses (RFC
// 5798 §6.4.3), or with Config.HandoverOnStop hands over first (see Handover).
// Every state ends in Stopped.
type Stop struct{}

// Timeout is what the engine delivers when now ≥ Deadline(). An early
// Timeout is ignored.
type Timeout struct{}

// Received is an advertisement the engine has read and parsed with
// packet.Parse, and demultiplexed to this instance by VRID.
type Received struct {
	Src     netip.Addr // IP source of the packet
	TTL     int        // IPv4 TTL or IPv6 hop limit; negative if the socket did not report it
	Unicast bool       // the IP destination was not the VRRP multicast group
	Advert  packet.Advert
	// AH is the IPsec AH datagram the advert came in (IPv4, protocol 51:
	// packet.ParseDatagram), nil for an advert without AH. Its slices are
	// read during Step only.
	AH *packet.Datagram
}

// PriorityChanged carries the priority tracking computed (base priority plus
// the weights of track_interface, track_script, ...). The instance applies
// keepalived's rule (vrrp_set_effective_priority): an address owner (base
// priority 255) ignores it; anything else is clamped to 1..254.
type PriorityChanged struct{ Priority int }

// LinkChanged reports the instance's interface going down or up. A down
// interface puts the instance in Fault.
type LinkChanged struct{ Up bool }

// FaultChanged reports whether any weight-0 tracker (track_script,
// track_interface, track_file, ... without weight) is failing; keepalived's
// down_instance / try_up_instance. Reason goes into the Transition.
type FaultChanged struct {
	Fault  bool
	Reason string
}

// Handover asks a master to make way without a gap (vigil, not keepalived): it
// sends a priority-0 advertisement, as a stopping master does, so peers take
// over after Skew_Time (RFC 5798 §6.4.2), but keeps its addresses until it
// hears a valid advertisement with priority > 0 from another router, and only
// then releases them. Afterwards it stays Backup and yields: it does not
// preempt (as with nopreempt) until Reclaim or until it becomes master again
// because the new master went silent. When Config.HandoverTimeout passes
// with no new master heard, nobody took over: it stays Master with its
// addresses (HandoverAborted). On a non-master, Handover only sets the
// yield.
type Handover struct{}

// Reclaim ends the yield a Handover left: normal preemption rules apply again.
type Reclaim struct{}

// SourceChanged gives the instance its new primary address (the IPv4 primary
// or IPv6 link-local address the engine sends from), used in adverts and in
// the equal-priority tie-break of RFC 5798 §6.4.3.
type SourceChanged struct{ Addr netip.Addr }

// Reconfigure applies a reloaded configuration of the same virtual router
// (SameIdentity: VRID, version, family) in place: the state, the timers and
// the master last heard stay. Priority, preemption, interval, addresses,
// authentication, unicast peers and checksum settings take effect at once;
// a master whose advert changed sends the new one immediately. A zero
// Config.Source keeps the current source. A configuration that CheckConfig
// rejects, or of another identity, is ignored: the engine checks first.
type Reconfigure struct{ Config Config }

func (Start) event()           {}
func (Stop) event()            {}
func (Timeout) event()         {}
func (Received) event()        {}
func (PriorityChanged) event() {}
func (LinkChanged) event()     {}
func (FaultChanged) event()    {}
func (Handover) event()        {}
func (Reclaim) event()         {}
func (SourceChanged) event()   {}
func (Reconfigure) event()     {}

// Action is an output of Step, for the engine to carry out in order.
type Action interface{ action() }

// SendAdvert: send Advert to the multicast group, or to every unicast peer,
// from the instance's source address (Advert.Marshal(src, dst) per
// destination). Priority is Advert.Priority, repeated for readability. The
// Advert's Addrs slice is the configuration's: do not modify it. With
// Advert.AuthType AuthAH, the advert goes under an AH header with sequence
// number AHSeq (packet.NewAH(src, AHSeq)), sealed with Config.AuthPass for
// each destination; the sequence number is the same for every unicast peer.
type SendAdvert struct {
	Priority uint8
	Advert   packet.Advert
	AHSeq    uint32
}

// TakeOver: add the virtual addresses (and virtual routes and rules) and
// start the gratuitous ARP / unsolicited NA schedule (garp_master_delay,
// garp_master_repeat, garp_master_refresh).
type TakeOver struct{}

// Release: remove the virtual addresses, routes and rules and stop the
// gratuitous ARP schedule.
type Release struct{}

// Transition reports a state change; the engine runs notify scripts and
// updates status and metrics from it.
type Transition struct {
	From, To State
	Reason   string
}

// Dropped reports an advertisement the instance discarded. Reason is a
// stable metric label; Detail is for a rate-limited log line.
type Dropped struct {
	Reason DropReason
	Src    netip.Addr
	Detail string
}

// LowerPriorityAdvert: a master received an advertisement from a router with
// lower priority (or equal priority and a lower address). The instance has
// already answered with an advert (unless lower_prio_no_advert); the engine
// runs notify_master_rx_lower_pri and sends garp_lower_prio_repeat
// gratuitous ARPs if configured (keepalived vrrp_state_master_rx).
type LowerPriorityAdvert struct {
	Src      netip.Addr
	Priority uint8
}

// RivalMaster: a master dropped an advert from another router that
// advertises as master too (priority not 0) because their configurations
// differ: the address list or the v2 advert interval (from a lower
// priority; a higher one is followed, see AddrMismatch and
// IntervalMismatch), the VRRP version or the authentication. That router drops this one's adverts for the same reason
// (keepalived 2.2.7: "received an unexpected ip number count",
// "advertisement interval mismatch"), so both hold the addresses until the
// configurations agree. Emitted for every such advert, for the engine to
// report once per episode and show in status; Reason and Detail are those
// of the Dropped beside it.
type RivalMaster struct {
	Src      netip.Addr
	Priority uint8
	Reason   DropReason
	Detail   string
}

// ChecksumFallback: a unicast VRRPv3 peer uses keepalived ≤ 1.3.6's checksum
// (pseudo-header with 224.0.0.18), and the instance now sends that way too,
// as keepalived 2.2.7 does ("Setting unicast VRRPv3 checksum to old
// version"). For the log.
type ChecksumFallback struct{ Src netip.Addr }

// HandoverStarted: the master has sent priority 0 and holds its addresses
// until a new master is heard or Until.
type HandoverStarted struct{ Until time.Time }

// HandoverAborted: a Handover (not a stop) reached its timeout without
// hearing a new master, so no router took the addresses: the instance stays
// Master, keeps them, advertises its priority again and ends the yield.
// Releasing them instead would leave them unanswered until its own
// Master_Down_Timer made it take them back.
type HandoverAborted struct{}

// AddrMismatch: an advert from a master at least as good as us (one that
// keeps us Backup or makes us Backup) lists other addresses than ours. The
// instance accepted it, so that a rolling change of virtual_ipaddress never
// makes two masters, where RFC 3768 / RFC 5798 §7.1 and keepalived 2.2.7
// drop it (see the package documentation). Theirs is the advert's list, Ours
// the count of our VIPs; the engine logs it once per change, counts it and
// shows it in status.
type AddrMismatch struct {
	Src      netip.Addr
	Priority uint8
	Theirs   []netip.Addr
	Ours     int
}

// IntervalMismatch: as AddrMismatch, for a VRRPv2 advert interval (a
// rolling change of advert_int): a master at least as good as us that
// advertises every Theirs where we advertise every Ours is accepted, where
// RFC 3768 §7.1 and keepalived 2.2.7 drop it ("advertisement interval
// mismatch") and the backup becomes a second master. A Backup times its
// Master_Down_Timer from Theirs, as VRRPv3 does.
type IntervalMismatch struct {
	Src          netip.Addr
	Priority     uint8
	Theirs, Ours time.Duration
}

// NonPeerAdvert: a unicast instance without CheckUnicastSrc read an advert
// from an address that is not one of its peers and did not drop it, as
// keepalived 2.2.7 does not (only check_unicast_src drops it). Emitted once
// per source in a row, for the engine to log: a peer sending from another
// address than the one listed, or a stranger.
type NonPeerAdvert struct{ Src netip.Addr }

func (NonPeerAdvert) action()       {}
func (RivalMaster) action()         {}
func (SendAdvert) action()          {}
func (AddrMismatch) action()        {}
func (IntervalMismatch) action()    {}
func (TakeOver) action()            {}
func (Release) action()             {}
func (Transition) action()          {}
func (Dropped) action()             {}
func (LowerPriorityAdvert) action() {}
func (ChecksumFallback) action()    {}
func (HandoverStarted) action()     {}
func (HandoverAborted) action()     {}

// DropReason says why the state machine discarded an advertisement. Codec
// rejections (length, version, type, checksum) are packet.Reason values,
// counted by the engine before an advert reaches an instance.
type DropReason uint8

const (
	DropInactive      DropReason = iota + 1 // received in Init, Fault or Stopped (keepalived ignores silently)
	DropVRID                                // VRID is not this instance's (the engine's demux should not let it through)
	DropFamily                              // IPv4 advert for an IPv6 instance or the reverse
	DropTTL                                 // TTL / hop limit not 255 (RFC 5798 §5.1.1.3), or outside a unicast peer's range
	DropVersion                             // VRRP version differs from the instance's (RFC 5798 §7.1)
	DropAuthType                            // v2 auth type differs from the configured one (RFC 2338 §7.1)
	DropAuthFailure                         // v2 PASS: password differs; AH: ICV or SPI wrong
	DropAHSequence                          // AH: sequence number not above the last one seen (keepalived's anti-replay)
	DropInterval                            // v2 advert interval differs from ours (RFC 3768 §7.1)
	DropZeroInterval                        // v3 Max Advertise Interval 0 (RFC 9568 erratum 8301)
	DropAddrCount                           // address count differs from our VIP count
	DropAddrList                            // one of our VIPs is missing from the advert
	DropChecksumMode                        // checksum variant not accepted by configuration
	DropCastMismatch                        // unicast advert on a multicast instance or the reverse
	DropNotPeer                             // unicast source is not a configured peer (check_unicast_src)
	DropLowerPriority                       // backup with preemption discards a lower-priority advert (RFC 5798 §6.4.2)
	DropOwnAddress                          // master: equal priority from our own address
	dropReasonEnd
)

var dropNames = [...]string{
	DropInactive:      "inactive",
	DropVRID:          "vrid_mismatch",
	DropFamily:        "family_mismatch",
	DropTTL:           "bad_ttl",
	DropVersion:       "version_mismatch",
	DropAuthType:      "auth_type_mismatch",
	DropAuthFailure:   "auth_failure",
	DropAHSequence:    "ah_sequence",
	DropInterval:      "interval_mismatch",
	DropZeroInterval:  "zero_interval",
	DropAddrCount:     "addr_count_mismatch",
	DropAddrList:      "addr_list_mismatch",
	DropChecksumMode:  "checksum_variant",
	DropCastMismatch:  "cast_mismatch",
	DropNotPeer:       "not_unicast_peer",
	DropLowerPriority: "lower_priority",
	DropOwnAddress:    "own_address",
}

// String returns the stable metric label of r.
func (r DropReason) String() string {
	if r < dropReasonEnd && dropNames[r] != "" {
		return dropNames[r]
	}
	return fmt.Sprintf("drop_%d", uint8(r))
}

// MarshalText makes DropReason print by name in JSON.
func (r DropReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// DropReasons lists every DropReason, for pre-registering metric labels.
func DropReasons() []DropReason {
	rs := make([]DropReason, 0, dropReasonEnd-1)
	for r := DropReason(1); r < dropReasonEnd; r++ {
		rs = append(rs, r)
	}
	return rs
}
