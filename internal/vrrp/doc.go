// Package vrrp is the VRRP state machine of one virtual router instance
// (RFC 3768 for version 2, RFC 5798 / RFC 9568 for version 3), behaving as
// keepalived 2.2.7 does, and keepalived's sync groups.
//
// # Seams
//
// The package is pure, in the style of etcd's raft: it does no I/O, reads no
// clock, starts no goroutine and draws no random numbers. Everything comes in
// through Step and goes out as returned actions:
//
//	acts := inst.Step(now, vrrp.Received{Src: src, TTL: ttl, Advert: adv})
//	for _, a := range acts { engine.execute(a) }     // SendAdvert, TakeOver, Release, Transition, Dropped, ...
//	timer.Reset(inst.Deadline().Sub(now))            // zero Deadline: no timer
//
// The engine owns sockets, the clock and the one timer: it arms it for the
// earliest Deadline() of all instances and, when it fires, delivers Timeout to
// each instance whose deadline has passed, so hundreds of instances cost one
// timer. It parses packets with package packet, counts what packet.Parse
// rejects, demultiplexes by VRID, and delivers Received. It turns tracker
// results into PriorityChanged and FaultChanged, link events into
// LinkChanged, signals into Stop (SIGTERM) and Handover.
//
// Actions are in the order to execute: a new master's SendAdvert comes before
// TakeOver (keepalived sends the advert first so that the old master drops the
// addresses before the gratuitous ARPs); a leaving master's priority-0
// SendAdvert comes before Release. Transition follows the address changes, so
// notify scripts run when the addresses are in place, as in keepalived.
//
// # Counters and status
//
// Each instance keeps keepalived's per-instance statistics (Counters:
// adverts received and sent, priority-0 adverts, becoming and releasing
// master, drops by DropReason); Status returns them with the state, effective
// priority, the master last heard and the last transition's reason. The
// engine counts what never reaches an instance (read errors, packet.Parse
// rejections by packet.Reason, unknown VRIDs).
//
// # keepalived 2.2.7 where it differs from the RFCs
//
// Each is implemented as keepalived does it and named in a test:
//
//   - A master answers a lower-priority advert with an advert at once (RFC
//     9568 §6.4.3 agrees; RFC 3768 and RFC 5798 only discard it), unless
//     lower_prio_no_advert.
//   - An address owner does not discard received adverts (RFC 5798 §7.1 as
//     published; erratum 8298 agrees with keepalived). Two owners: the one
//     that hears the other lowers itself to 254 and goes Backup.
//   - The VRRPv3 IPv4 checksum includes a pseudo-header (RFC 5798 is read
//     that way by keepalived and Wireshark; RFC 9568 §5.2.8 says no
//     pseudo-header for IPv4: Config.V3ChecksumAsV2).
//   - VRRPv3 Skew_Time is computed in microseconds, not whole centiseconds.
//   - TTL is not checked for unicast adverts (keepalived: routed peers),
//     except against a peer's min_ttl/max_ttl with check_unicast_src.
//   - Unicast adverts from non-peers are accepted unless check_unicast_src.
//   - `state MASTER` below priority 255 starts as Backup with the full
//     Master_Down_Interval; an address owner configured `state BACKUP` too.
//   - Leaving FAULT always goes to Backup, even for the address owner.
//   - preempt_delay counts from the first lower-priority advert heard, not
//     from startup, and restarts after the instance was master or in fault.
//   - A priority change while Backup moves the Master_Down_Timer by the
//     change of the down interval.
//
// # vigil where it differs from keepalived 2.2.7
//
//   - A master that yields to a higher priority (or an equal one from a
//     greater address) sends one advert with its own priority first, as
//     keepalived does only with higher_prio_send_advert, unless
//     lower_prio_no_advert (vrrp_strict sets it) without
//     higher_prio_send_advert. The winner hears a lower priority and sends
//     its garp_lower_prio_repeat announcements: after a partition heals, the
//     clients that followed the loser learn the winner's MAC at once. With
//     keepalived's default the winner stays silent whenever its advert
//     crosses first, and those clients keep the loser's MAC until their ARP
//     entry goes stale (seconds of failed connections).
//   - With CheckUnicastSrc, the source is checked against the unicast peers
//     before the checksum: keepalived checks it last, after the checksum
//     test whose old-variant fallback switches the checksum it sends, so a
//     forged unicast VRRPv3 advert from a non-peer switches it and is then
//     dropped. Here a packet from a non-peer changes nothing.
//   - A master answers priority-0 adverts, and reacts to lower-priority
//     ones (answer, LowerPriorityAdvert), at most once per AnswerGap
//     (100 ms); keepalived does so for each, so a flood of forged adverts
//     makes it send as many multicast adverts and gratuitous ARP bursts.
//     One answer reaches every router, so the ones skipped would have told
//     no one anything.
//
// # Adverts whose address list differs from ours
//
// RFC 3768 §7.1 (VRRPv2) and RFC 5798 §7.1 (VRRPv3) say a receiver MUST
// verify that the Count IP Addrs field and the list of addresses match its
// own configuration; if they do not, it MUST discard the advert (and SHOULD
// log it), except that it continues processing when the advert's priority
// is 255 (the address owner). keepalived 2.2.7 (vrrp_check_packet) discards
// it whatever the priority, logging "received an unexpected ip number count
// N, expected M!" or "ip address associated with VRID V not present in
// MASTER advert".
//
// During a rolling change of virtual_ipaddress (the new file pushed to one
// node, then to the other) that rule makes two masters: the backup whose
// list differs no longer hears its master and takes over after its
// Master_Down_Interval, and the master drops the backup's adverts in turn.
// Measured with two keepalived 2.2.7 in network namespaces (VRRPv3,
// advert_int 0.2, internal/e2e TestRollingVIPChange with
// VIGIL_E2E_KEEPALIVED_FIGURES=1): in either order both held the VIP from
// one Master_Down_Interval after the first reload until the second
// (1.31-1.32 s with reloads 1.5 s apart, 2.72-2.82 s with reloads 3 s
// apart); the same happens when a keepalived master is reloaded with one
// more address and its backup is not.
//
// vigil departs from both: an advert that would keep or make us Backup
// (priority 0; in Backup a priority at least ours, or any priority under
// nopreempt, a running preempt_delay or a handover's yield; in Master a
// higher priority, or an equal one from a higher address) is accepted
// whatever addresses it lists, and the instance reports AddrMismatch (the engine logs
// it once per change, counts it, and shows "master A advertises 2
// addresses, ours 1" in status). Only an advert we would preempt anyway is
// still discarded for its list. With vigil as the backup, the same rolling
// change in either order shows no second holder (TestRollingVIPChange); a
// keepalived backup beside a vigil master still takes the VIP, as between
// two keepalived. Tests: TestAddrMismatch.
//
// The same holds for a rolling change of a VRRPv2 advert_int (RFC 3768
// §7.1: "MUST verify that the Adver Interval in the packet is the same as
// the locally configured"; keepalived: "advertisement interval mismatch",
// dropped): an advert that would keep or make us Backup is accepted, the
// instance reports IntervalMismatch, and a Backup times its
// Master_Down_Timer from the master's interval as VRRPv3 does (Skew_Time
// stays (256-Priority)/256 s). A master drops a lower priority's advert
// whose address list, interval, version or authentication differs and
// reports RivalMaster: that router drops ours for the same reason, so both
// hold the addresses, and the engine names it. Tests: TestRivalMaster,
// TestBackupRules.
//
// # Reload
//
// Reconfigure applies a reloaded configuration of the same virtual router
// (VRID, version, family) in place, as keepalived keeps an instance whose
// interface and VRID are unchanged: state, timers and the master heard
// stay; a master whose advert changed sends it at once. Tests:
// TestReconfigure.
//
// vigil departs from keepalived 2.2.7 in a few places, each also tested: a
// master advertises a changed effective priority at once (keepalived waits
// for the next Adver_Timer, so backups learn it up to one interval late); a
// master re-arms its Adver_Timer only when it sent an advert (keepalived
// re-arms it on any received packet, so a stream of invalid packets can
// silence it); entering FAULT sends one priority-0 advert, not two; a VRRPv3
// advert with interval 0 is dropped (RFC 9568 erratum 8301); and Handover /
// Config.HandoverOnStop, which keepalived does not have.
package vrrp
