package procwatch

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ParamMatch is vrrp_track_process's param_match.
type ParamMatch int

const (
	// MatchNone: parameters are not looked at.
	MatchNone ParamMatch = iota
	// MatchExact: the parameters are exactly the configured ones (the
	// default when parameters are configured; `param_match` alone with no
	// parameters means "no parameters at all").
	MatchExact
	// MatchPartial: the configured parameters are the first ones, whole.
	MatchPartial
	// MatchInitial: as partial, but the last configured parameter may be
	// the start of the process's parameter.
	MatchInitial
)

// Spec is one vrrp_track_process. Start from NewSpec, which sets keepalived's
// defaults (quorum 1, no quorum_max).
type Spec struct {
	// Name is the vrrp_track_process name.
	Name string
	// Process is matched exactly against the process name (/proc/PID/comm,
	// at most 15 characters), or against argv[0] with FullCommand.
	Process string
	// Params are the parameters configured after the process.
	Params []string
	// ParamMatch, when not MatchNone, also matches the parameters.
	ParamMatch ParamMatch
	// FullCommand matches argv[0] and parameters from /proc/PID/cmdline
	// (keepalived sets it whenever parameters or param_match are given).
	FullCommand bool
	// Quorum and QuorumMax: the tracker is up while Quorum <= count <=
	// QuorumMax. QuorumMax 0 means "up only while none runs" (and keepalived
	// then sets Quorum 0).
	Quorum, QuorumMax uint32
	// ForkDelay delays going up after a fork brought the count into quorum;
	// TerminateDelay delays going down after an exit took it out.
	ForkDelay, TerminateDelay time.Duration
}

// NoQuorumMax is QuorumMax unset (keepalived UINT_MAX).
const NoQuorumMax = math.MaxUint32

// commLen is the longest process name the kernel keeps (TASK_COMM_LEN-1).
const commLen = 15

// NewSpec returns a Spec with keepalived 2.2.7's defaults
// (vrrp_data.c alloc_vrrp_process: quorum 1, quorum_max UINT_MAX).
func NewSpec(name, process string) Spec {
	return Spec{Name: name, Process: process, Quorum: 1, QuorumMax: NoQuorumMax}
}

// normalized applies keepalived's parser rules (vrrp_parser.c
// vrrp_tprocess_process_handler, vrrp_tprocess_match_handler): parameters
// imply an exact match and full_command; any param_match implies
// full_command.
func (s Spec) normalized() Spec {
	if len(s.Params) > 0 && s.ParamMatch == MatchNone {
		s.ParamMatch = MatchExact
	}
	if s.ParamMatch != MatchNone {
		s.FullCommand = true
	}
	return s
}

// Warnings are findings about a Spec that keepalived accepts silently.
func (s Spec) Warnings() []string {
	s = s.normalized()
	var w []string
	if !s.FullCommand && len(s.Process) > commLen {
		w = append(w, fmt.Sprintf("vrrp_track_process %s: process name %q is longer than the %d characters the kernel keeps as a process name and never matches; add full_command to match argv[0]", s.Name, s.Process, commLen))
	}
	return w
}

// Matches reports whether a process with this comm and cmdline (NUL
// separated, as /proc/PID/cmdline) is one of s's, as keepalived's
// check_process / check_params.
func (s Spec) Matches(comm string, cmdline []byte) bool {
	s = s.normalized()
	if !s.FullCommand {
		return comm == s.Process
	}
	argv0, params, _ := bytes.Cut(cmdline, []byte{0})
	if string(argv0) != s.Process {
		return false
	}
	if s.ParamMatch == MatchNone {
		return true
	}
	return checkParams(s, params)
}

// checkParams is keepalived's check_params: the configured parameters are
// compared as one NUL-terminated byte string with the process's.
func checkParams(s Spec, params []byte) bool {
	var want []byte
	for _, p := range s.Params {
		want = append(want, p...)
		want = append(want, 0)
	}
	if s.ParamMatch == MatchExact && len(want) == 0 && len(params) == 0 {
		return true
	}
	if len(params) < len(want) {
		return false
	}
	switch s.ParamMatch {
	case MatchExact:
		return bytes.Equal(params, want)
	case MatchPartial:
		return len(want) == 0 || bytes.Equal(params[:len(want)], want)
	case MatchInitial:
		return len(want) <= 1 || bytes.Equal(params[:len(want)-1], want[:len(want)-1])
	}
	return true
}

// Change is a tracked process gaining (Up) or losing its quorum.
type Change struct {
	Name string
	Up   bool
}

// Proc is a running process as read from /proc.
type Proc struct {
	PID     int32
	Comm    string
	Cmdline []byte
}

// Table counts the processes of each Spec and applies keepalived's quorum
// rules (track_process.c check_process, check_process_fork,
// check_process_termination, check_process_comm_change, and the
// fork_delay / terminate_delay timers). It is pure: events and the time come
// in as arguments; each method returns the quorum changes it caused. Not
// safe for concurrent use.
//
// Deliberate differences from keepalived 2.2.7: a process already counted
// for a Spec is not counted twice when it execs again or when a fork event
// names a child the initial scan has already seen (keepalived would add a
// second reference).
type Table struct {
	specs       []*spec
	procs       map[int32][]*spec
	needCmdline bool
}

type spec struct {
	Spec
	num          uint32
	up           bool
	forkDeadline time.Time // zero: no fork_delay timer
	termDeadline time.Time // zero: no terminate_delay timer
}

// NewTable returns a Table for the specs.
func NewTable(specs []Spec) (*Table, error) {
	t := &Table{procs: map[int32][]*spec{}}
	seen := map[string]bool{}
	var errs []error
	for _, s := range specs {
		s = s.normalized()
		switch {
		case s.Name == "":
			errs = append(errs, errors.New("procwatch: vrrp_track_process without a name"))
			continue
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("procwatch: vrrp_track_process %s defined twice", s.Name))
			continue
		case s.Process == "":
			errs = append(errs, fmt.Errorf("procwatch: vrrp_track_process %s: process name not specified", s.Name))
			continue
		case s.QuorumMax != 0 && s.Quorum > s.QuorumMax:
			errs = append(errs, fmt.Errorf("procwatch: vrrp_track_process %s: quorum %d is greater than quorum_max %d", s.Name, s.Quorum, s.QuorumMax))
			continue
		}
		if s.QuorumMax == 0 {
			s.Quorum = 0 // vrrp_tprocess_quorum_max_handler
		}
		seen[s.Name] = true
		t.specs = append(t.specs, &spec{Spec: s})
		if s.FullCommand {
			t.needCmdline = true
		}
	}
	return t, errors.Join(errs...)
}

// NeedCmdline reports whether some Spec matches on /proc/PID/cmdline.
func (t *Table) NeedCmdline() bool { return t.needCmdline }

// Reset replaces the process table with a scan of /proc. With initial set
// every Spec's state is reported; otherwise (a rescan after lost events)
// only changes are, and a lost quorum waits for terminate_delay as after an
// exit (keepalived: reinitialise_track_processes).
func (t *Table) Reset(procs []Proc, now time.Time, initial bool) []Change {
	clear(t.procs)
	for _, s := range t.specs {
		s.num = 0
		s.forkDeadline, s.termDeadline = time.Time{}, time.Time{}
	}
	for _, p := range procs {
		for _, s := range t.specs {
			if s.Matches(p.Comm, p.Cmdline) && !t.refers(p.PID, s) {
				t.procs[p.PID] = append(t.procs[p.PID], s)
				s.num++
			}
		}
	}
	var ch []Change
	for _, s := range t.specs {
		have := s.num >= s.Quorum && s.num <= s.QuorumMax
		switch {
		case initial:
			s.up = have
			ch = append(ch, Change{s.Name, have})
		case have == s.up:
		case !have && s.TerminateDelay > 0:
			s.termDeadline = now.Add(s.TerminateDelay)
		default:
			ch = append(ch, t.update(s, have)...)
		}
	}
	return ch
}

func (t *Table) refers(pid int32, s *spec) bool { return slices.Contains(t.procs[pid], s) }

func (t *Table) update(s *spec, up bool) []Change {
	if s.up == up {
		return nil
	}
	s.up = up
	return []Change{{s.Name, up}}
}

// add counts pid for s (check_process's add_process and the quorum check
// after it).
func (t *Table) add(pid int32, s *spec) []Change {
	if t.refers(pid, s) {
		return nil
	}
	t.procs[pid] = append(t.procs[pid], s)
	s.num++
	if s.num == s.Quorum || s.num == s.QuorumMax+1 {
		s.termDeadline = time.Time{}
		return t.update(s, s.num == s.Quorum)
	}
	return nil
}

// remove stops counting pid for s (remove_process_from_track): no
// terminate_delay here.
func (t *Table) remove(pid int32, s *spec) []Change {
	refs := t.procs[pid]
	i := slices.Index(refs, s)
	if i < 0 {
		return nil
	}
	refs = slices.Delete(refs, i, i+1)
	if len(refs) == 0 {
		delete(t.procs, pid)
	} else {
		t.procs[pid] = refs
	}
	old := s.num
	s.num--
	if old == s.Quorum || s.num == s.QuorumMax {
		s.forkDeadline = time.Time{}
		return t.update(s, s.num == s.QuorumMax)
	}
	return nil
}

// Exec handles PROC_EVENT_EXEC for a process (keepalived: check_process with
// no comm): the process is counted for every Spec it now matches and no
// longer for those it does not.
func (t *Table) Exec(pid int32, comm string, cmdline []byte) []Change {
	var ch []Change
	for _, s := range t.specs {
		if s.Matches(comm, cmdline) {
			ch = append(ch, t.add(pid, s)...)
		} else {
			ch = append(ch, t.remove(pid, s)...)
		}
	}
	return ch
}

// Fork handles PROC_EVENT_FORK of a process (not a thread): the child counts
// for whatever its parent counts for, going up only after fork_delay
// (check_process_fork).
func (t *Table) Fork(parent, child int32, now time.Time) []Change {
	refs := t.procs[parent]
	if len(refs) == 0 {
		return nil
	}
	if _, ok := t.procs[child]; ok {
		return nil // already seen by a scan
	}
	t.procs[child] = slices.Clone(refs)
	var ch []Change
	for _, s := range refs {
		s.num++
		if s.num == s.Quorum || s.num == s.QuorumMax+1 {
			if !s.termDeadline.IsZero() {
				s.termDeadline = time.Time{}
			} else if s.ForkDelay > 0 {
				s.forkDeadline = now.Add(s.ForkDelay)
				continue
			}
			ch = append(ch, t.update(s, s.num == s.Quorum)...)
		}
	}
	return ch
}

// Exit handles PROC_EVENT_EXIT of a process: it no longer counts, going
// down only after terminate_delay (check_process_termination).
func (t *Table) Exit(pid int32, now time.Time) []Change {
	refs := t.procs[pid]
	if len(refs) == 0 {
		return nil
	}
	delete(t.procs, pid)
	var ch []Change
	for _, s := range refs {
		old := s.num
		s.num--
		if old == s.Quorum || s.num == s.QuorumMax {
			if !s.forkDeadline.IsZero() {
				s.forkDeadline = time.Time{}
			} else if s.TerminateDelay > 0 {
				s.termDeadline = now.Add(s.TerminateDelay)
				continue
			}
			ch = append(ch, t.update(s, s.num == s.QuorumMax)...)
		}
	}
	return ch
}

// Comm handles PROC_EVENT_COMM, a process changing its name
// (check_process_comm_change): it stops counting for name-matched Specs it
// no longer matches and starts counting for those it now matches;
// full_command Specs are not affected.
func (t *Table) Comm(pid int32, comm string) []Change {
	var ch []Change
	for _, s := range slices.Clone(t.procs[pid]) {
		if s.FullCommand {
			continue
		}
		if comm == s.Process {
			return ch // the name has not really changed
		}
		ch = append(ch, t.remove(pid, s)...)
	}
	for _, s := range t.specs {
		if !s.FullCommand && comm == s.Process {
			ch = append(ch, t.add(pid, s)...)
		}
	}
	return ch
}

// Deadline is the earliest pending fork_delay or terminate_delay expiry.
func (t *Table) Deadline() (time.Time, bool) {
	var d time.Time
	for _, s := range t.specs {
		for _, x := range []time.Time{s.forkDeadline, s.termDeadline} {
			if !x.IsZero() && (d.IsZero() || x.Before(d)) {
				d = x
			}
		}
	}
	return d, !d.IsZero()
}

// Expire fires the delay timers due at now: the Spec takes the state its
// current count gives (process_gained_quorum_timer_thread,
// process_lost_quorum_timer_thread).
func (t *Table) Expire(now time.Time) []Change {
	var ch []Change
	for _, s := range t.specs {
		due := false
		if !s.forkDeadline.IsZero() && !s.forkDeadline.After(now) {
			s.forkDeadline, due = time.Time{}, true
		}
		if !s.termDeadline.IsZero() && !s.termDeadline.After(now) {
			s.termDeadline, due = time.Time{}, true
		}
		if due {
			ch = append(ch, t.update(s, s.num >= s.Quorum && s.num <= s.QuorumMax)...)
		}
	}
	return ch
}

// Status is one Spec's state.
type Status struct {
	Name  string
	Up    bool
	Count uint32
}

// Statuses lists every Spec's state, in configuration order.
func (t *Table) Statuses() []Status {
	out := make([]Status, len(t.specs))
	for i, s := range t.specs {
		out[i] = Status{s.Name, s.up, s.num}
	}
	return out
}
