// Package track computes a VRRP instance's effective priority and fault state
// from its trackers (track_interface, track_script, track_file,
// track_process), with keepalived 2.2.7's arithmetic (keepalived/vrrp/
// vrrp_track.c, keepalived/trackers/track_file.c). It also holds the
// vrrp_script rise/fall counter and the track_file value parser.
//
// The package is pure: no I/O, no clock, no goroutines. Values are safe to
// copy; nothing here is safe for concurrent mutation without the caller's
// own locking.
package track

import (
	"fmt"
	"strings"
)

// Kind names the sort of tracker.
type Kind int

const (
	Interface Kind = iota // track_interface
	Script                // track_script (a vrrp_script)
	File                  // track_file
	Process               // track_process (a vrrp_track_process)
)

func (k Kind) String() string {
	switch k {
	case Interface:
		return "track_interface"
	case Script:
		return "track_script"
	case File:
		return "track_file"
	case Process:
		return "track_process"
	}
	return fmt.Sprintf("track_kind(%d)", int(k))
}

// Status is the state a tracker reports: an interface up or down, a script
// succeeding or failing (after rise/fall), a process quorum held or lost.
type Status int

const (
	// Unknown: no result yet. Only a vrrp_script is ever Unknown (between
	// start-up and its first result, unless init_fail is set).
	Unknown Status = iota
	Up
	Down
)

func (s Status) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// Tracker is one tracked object as seen by one VRRP instance. Weight and
// Reverse are the effective ones for this instance: the per-instance
// `track_script { NAME weight N [reverse|noreverse] }` override, else the
// tracked object's own (vrrp_script weight defaults to 0, track_file weight to
// 1, vrrp_track_process weight to 0, track_interface weight to 0).
//
// A sync group's trackers apply to each member instance (keepalived:
// initialise_vrrp_tracking_priorities adds the group's track_script list to
// each member); the caller passes the union.
type Tracker struct {
	Kind    Kind
	Name    string
	Weight  int
	Reverse bool
	// Status is used for Interface, Script and Process trackers.
	Status Status
	// Value is used for File trackers: the number last read from the file (a
	// missing, empty or unparsable file reads as 0; see ParseFileValue).
	Value int64
}

// Result is an instance's tracked state.
type Result struct {
	// Priority is the effective priority: base plus the trackers' weights,
	// clamped to 1..254; an address owner (base 255) always keeps 255.
	Priority uint8
	// Total is the unclamped sum keepalived keeps as total_priority.
	Total int
	// Fault is true while an unweighted tracker is failing (or, reversed,
	// succeeding), or a track_file's value×weight is -254 or less.
	Fault bool
	// Waiting is true while an unweighted track_script has not reported its
	// first result: keepalived keeps such an instance in INIT
	// (vrrp->num_script_init) until every one has.
	Waiting bool
	// Reason lists the trackers causing Fault or Waiting, e.g.
	// "track_script chk_nginx down". Empty when neither.
	Reason string
}

// VRRP priorities (RFC 5798 §5.2.4).
const (
	OwnerPriority = 255
	MaxPriority   = 254
	MinPriority   = 1
)

// Compute returns the effective priority and fault state of an instance with
// configured priority base and the given trackers.
//
// keepalived 2.2.7 (vrrp_track.c process_script_update_priority,
// initialise_*_tracking_priorities, process_update_track_process_status,
// vrrp_if.c; track_file.c process_update_vrrp_track_file_status):
//   - weight > 0: +weight while the tracker is up, nothing while down;
//   - weight < 0: +weight (i.e. subtracted) while down, nothing while up;
//   - reverse multiplies the adjustment by -1 (so weight 10 reverse is -10
//     while up) and, for weight 0, swaps which status means FAULT;
//   - weight 0: FAULT while down (reverse: while up);
//   - track_file: weight 0 means FAULT while the value is non-zero (reverse:
//     while zero); otherwise value×weight(×-1 if reverse) is added, clamped to
//     at most 253, and a product of -254 or less means FAULT;
//   - a script that has not reported yet adds nothing (weighted) or holds the
//     instance in INIT (unweighted);
//   - the sum is clamped to 1..254 (vrrp_set_effective_priority: total < 1 ->
//     1, total >= 255 -> 254); an address owner's priority (base 255) is never
//     changed, though an unweighted tracker still faults it.
//
// keepalived keeps total_priority as a running sum updated on each change;
// Compute recomputes it from the current statuses, which gives the same
// value. One keepalived quirk is not reproduced: on reload,
// initialise_track_script_state adds a script's weight without the reverse
// multiplier.
func Compute(base uint8, trackers []Tracker) Result {
	r := Result{Total: int(base)}
	var reasons []string
	for _, t := range trackers {
		delta, fault, waiting := contribution(t)
		r.Total += delta
		if fault {
			r.Fault = true
			reasons = append(reasons, describe(t))
		}
		if waiting {
			r.Waiting = true
			reasons = append(reasons, fmt.Sprintf("%s %s has not reported yet", t.Kind, t.Name))
		}
	}
	r.Reason = strings.Join(reasons, ", ")
	switch {
	case base == OwnerPriority:
		r.Priority = OwnerPriority
	case r.Total < MinPriority:
		r.Priority = MinPriority
	case r.Total > MaxPriority:
		r.Priority = MaxPriority
	default:
		r.Priority = uint8(r.Total)
	}
	return r
}

func describe(t Tracker) string {
	if t.Kind == File {
		return fmt.Sprintf("%s %s value %d", t.Kind, t.Name, t.Value)
	}
	return fmt.Sprintf("%s %s %s", t.Kind, t.Name, t.Status)
}

// contribution is one tracker's share: the priority adjustment, whether it
// faults the instance, and whether the instance must wait for it.
func contribution(t Tracker) (delta int, fault, waiting bool) {
	mult := 1
	if t.Reverse {
		mult = -1
	}
	if t.Kind == File {
		status := FileStatus(t.Value, t.Weight, t.Reverse)
		if status == FileFault {
			return 0, true, false
		}
		return status, false, false
	}
	if t.Status == Unknown {
		// keepalived: SCRIPT_INIT_STATE_INIT; a weighted script contributes
		// nothing, an unweighted one counts in num_script_init.
		return 0, false, t.Weight == 0
	}
	up := t.Status == Up
	if t.Weight == 0 {
		// keepalived: `if (script_ok != (multiplier == 1)) down_instance()`.
		return 0, up == t.Reverse, false
	}
	if t.Weight > 0 && up || t.Weight < 0 && !up {
		return t.Weight * mult, false, false
	}
	return 0, false, false
}

// FileFault is the status keepalived gives a track_file whose value faults
// the instance (-254).
const FileFault = -254

// FileStatus is what a track_file with the given value adds to an instance's
// priority, or FileFault. keepalived 2.2.7 track_file.c
// update_track_file_status and process_update_vrrp_track_file_status: weight
// 0 means FAULT while the value is non-zero (reverse: while it is zero);
// otherwise value×weight×(reverse ? -1 : 1), clamped to [-254, 253], with
// -254 meaning FAULT.
func FileStatus(value int64, weight int, reverse bool) int {
	if weight == 0 {
		if (value != 0) != reverse {
			return FileFault
		}
		return 0
	}
	mult := int64(1)
	if reverse {
		mult = -1
	}
	// value is within ±2^31 (ParseFileValue) and |weight| <= 254: no overflow.
	s := value * int64(weight) * mult
	switch {
	case s <= FileFault:
		return FileFault
	case s > 253:
		return 253
	}
	return int(s)
}
