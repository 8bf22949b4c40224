package vrrp

import (
	"math/bits"
	"net/netip"
	"time"
)

// With Config.SpreadAdverts, a master's Adver_Timer lands on a phase of the
// instance's own.
//
// RFC 5798 §6.4.3 resets the Adver_Timer to Advertisement_Interval after
// each advert; it says nothing of where in the interval the adverts fall.
// Instances that become master together (a daemon starting, a mass
// failover) would otherwise send in the same instant every interval for as
// long as they run: with a thousand instances, one burst a second whose
// last advert leaves milliseconds late. Each instance instead has a phase
// (AdvertPhase), and every re-arm of its Adver_Timer picks the last moment
// on that phase at or before one interval from now, unless that is less
// than half an interval away: then half an interval later, and the phase
// at the following re-arm. So:
//
//   - the first advert of a new master still leaves at once (§6.4.2);
//   - two adverts are never more than one interval apart, the RFC's
//     cadence, nor less than half an interval (no near-duplicate after an
//     advert sent out of turn; counted from the deadline when the timer
//     fired, see rearmAdvert); re-phasing shortens one or two intervals,
//     once, after becoming master or after an advert sent out of turn;
//   - from then on the adverts are exactly one interval apart, counted from
//     the deadline rather than from the (late) moment the timer was served,
//     so an instance's phase neither drifts nor merges with its neighbours'.

// Instances that share a phase slot advertise in one wake-up of the engine:
// a burst of back-to-back sends. Each send's cost varies (on a loaded
// host, the threads its packet wakes preempt the sender), and an advert
// late in a burst carries the variation of every send before it: at 1,000
// instances in 32 slots (bursts of 31), vigil-bench's scale mode saw the
// spacing of an instance's adverts move by 0.03-0.09 ms (median) at the
// head of a burst and 0.09-0.37 ms at its tail, where the burst as a whole
// moved by 0.03-0.08 ms. In 256 slots (bursts of 4 or 8, one socket each:
// see sourceSlots) the median spacing error fell from 0.09-0.30 ms to
// 0.01-0.05 ms. A slot is a wake-up (a few system
// calls, a context switch or more, and at the receivers a wake-up each):
// slots are no closer than slotGap, a quarter thousand wake-ups a second
// at most, fewer than the 32 slots of an interval of 0.1 s already make.
//
// advertSlots is how many slots an interval has at least, unless that
// makes them narrower than minSlotWidth: a burst of a few sends takes tens
// of microseconds, so slots closer than a millisecond buy no punctuality
// and cost a wake-up each (at advert_int 0.01, 64 slots tripled the CPU of
// 100 instances against 10).
const (
	advertSlots  = 32
	slotGap      = time.Second / 256
	minSlotWidth = time.Millisecond
)

// slots is how many phases an interval of length iv has: one per slotGap,
// at least advertSlots, at most one per minSlotWidth.
func slots(iv time.Duration) uint64 {
	return uint64(max(min(max(iv/slotGap, advertSlots), iv/minSlotWidth), 1))
}

// sourceSlots is how many slots the VRIDs of one source (one interface and
// family: one socket) use at most. An interval's slots take the adverts of
// several sources; the engine sends each socket's adverts of a wake-up in
// one system call. At 256 slots, the 255 VRIDs of a source go eight to a
// slot in 32 of them, where one to a slot in all 256 would make each
// wake-up's four adverts four system calls, one per interface. Each burst
// is a wake-up of the master and of every receiver (a backup, a capture):
// four to a slot in 64 (1,000 instances on four interfaces: 256 bursts a
// second) cost a 1,000-instance backup 0.9-1.2 % of a core in vigil-bench
// against 0.75-1.0 in bursts of eight (perf stat, 10 s, two runs each),
// and the master's advert spacing moved by 0.01-0.02 ms (median) against
// 0.03-0.05, and 0.02-0.03 ms at the head of a burst.
const sourceSlots = 32

// AdvertPhase is an instance's offset within an advert interval of length
// iv, counted from the Unix epoch: one of slots(iv) slots. The bit-reversed
// VRID spreads the VRIDs of one source evenly over up to sourceSlots of
// the slots (eight to a slot when all 255 are used at advert_int 0.1, four
// at 1); a hash of the source address (one per interface and family)
// rotates each source's slots, so that interfaces with a few VRIDs each do
// not all pile onto the same slots.
func AdvertPhase(vrid uint8, src netip.Addr, iv time.Duration) time.Duration {
	if iv <= 0 {
		return 0
	}
	// The hash is FNV-1a of the address's binary form (MarshalBinary's
	// bytes), appended to an array on the stack: the master's send turn
	// computes it for every advert and allocates nothing.
	var buf [16 + 32]byte
	b, _ := src.Unmap().AppendBinary(buf[:0])
	h := fnv1a(b)
	n := slots(iv)
	m := min(n, sourceSlots)
	slot := (uint64(bits.Reverse8(vrid))*m/256*n/m + uint64(h)) % n
	return time.Duration(uint64(iv) / n * slot)
}

// fnv1a is the 32-bit FNV-1a hash of b (hash/fnv's New32a).
func fnv1a(b []byte) uint32 {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for _, c := range b {
		h ^= uint32(c)
		h *= prime32
	}
	return h
}

// rearmAdvert is when the Adver_Timer that fired (at i.sands, served at
// now) fires next. With SpreadAdverts it is counted from the deadline, not
// from the moment the timer was served: from half an interval off the
// phase, the phase is exactly half an interval after the deadline, but
// less than half an interval after a timer served microseconds late, which
// kept an instance off its phase for good (at 1,000 instances, half of
// them: bursts twice as large, in half the interval). A timer served so
// late that the deadline's next is past counts from now.
func (i *Instance) rearmAdvert(now time.Time) time.Time {
	if i.cfg.SpreadAdverts && !i.sands.IsZero() {
		if t := i.nextAdvert(i.sands); t.After(now) {
			return t
		}
	}
	return i.nextAdvert(now)
}

// nextAdvert is when an Adver_Timer re-armed at now fires.
func (i *Instance) nextAdvert(now time.Time) time.Time {
	if !i.cfg.SpreadAdverts {
		return now.Add(i.cfg.AdvertInt)
	}
	iv := i.cfg.AdvertInt
	t := onPhase(now.Add(iv), iv, AdvertPhase(i.cfg.VRID, i.cfg.Source, iv))
	if t.Sub(now) < iv/2 {
		t = t.Add(iv / 2)
	}
	return t
}

// onPhase returns the last moment t ≤ at with t ≡ phase (mod iv), counted
// from the Unix epoch.
func onPhase(at time.Time, iv, phase time.Duration) time.Time {
	if iv <= 0 {
		return at
	}
	n := int64(iv)
	r := ((at.UnixNano()%n-int64(phase)%n)%n + n) % n
	return at.Add(-time.Duration(r))
}
