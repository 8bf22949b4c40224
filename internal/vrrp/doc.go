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
//   - Address list or count mismatches are dropped even when the sender is
//     the address owner (RFC 3768/5798 §7.1: continue if priority 255).
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
// vigil departs from keepalived 2.2.7 in a few places, each also tested: a
// master advertises a changed effective priority at once (keepalived waits
// for the next Adver_Timer, so backups learn it up to one interval late); a
// master re-arms its Adver_Timer only when it sent an advert (keepalived
// re-arms it on any received packet, so a stream of invalid packets can
// silence it); entering FAULT sends one priority-0 advert, not two; a VRRPv3
// advert with interval 0 is dropped (RFC 9568 erratum 8301); and Handover /
// Config.HandoverOnStop, which keepalived does not have.
package vrrp
