// Package sched applies keepalived's process scheduling settings
// (vrrp_rt_priority / checker_rt_priority, vrrp_priority /
// checker_priority, vrrp_no_swap / checker_no_swap) to vigil.
//
// keepalived runs its VRRP and checker code in two processes and tunes
// each. vigil is one process, and the Go runtime runs any goroutine on any
// of its threads, with one exception: given a real-time priority, the
// VRRP engine runs its timer on a thread of its own, which waits for the
// timer and sends the adverts due (engine.TimerOnThread). That thread
// enrols here (Enroll) and is the only one given the real-time priority;
// every other thread (checkers, the socket readers, the configuration
// read on a reload, the garbage collector) stays SCHED_OTHER, at the nice
// level asked: checker_rt_priority alone (vigil run -C) makes no thread
// real-time. A real-time priority on every thread made a reload's parse and
// its garbage collection, spread over all the runtime's threads, take
// SCHED_RR turns of 100 ms with the timer on a busy machine: seconds
// without an advert.
//
// The Go runtime still runs the timer's goroutine on one of its Ps: when
// every P is busy the timer waits for one, at most the runtime's
// preemption delay (about 10 ms), not a kernel time slice.
//
// When both processes' settings are given the stronger one wins: the
// higher real-time priority, the lower nice level, memory locked if either
// asks.
//
// Every thread gets SCHED_RESET_ON_FORK: scripts vigil starts (notify,
// track, MISC_CHECK, heartbeat resources) run at normal priority, as
// keepalived's do. That flag also applies to the threads the Go runtime
// starts later, so Keep re-applies the policy to new threads.
package sched

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/config"
)

// Policy is how vigil's threads are scheduled. The zero value changes
// nothing.
type Policy struct {
	// RTPriority is the SCHED_RR priority, 1..99; 0 keeps SCHED_OTHER.
	RTPriority int
	// Nice is the nice level of SCHED_OTHER threads, -20..19.
	Nice int
	// LockMemory locks the process's memory (mlockall): no page of the
	// daemon is swapped out.
	LockMemory bool
}

// IsZero reports whether p changes nothing.
func (p Policy) IsZero() bool { return p == Policy{} }

func (p Policy) String() string {
	s := "SCHED_OTHER"
	if p.RTPriority > 0 {
		s = fmt.Sprintf("SCHED_RR %d", p.RTPriority)
	}
	if p.Nice != 0 {
		s += fmt.Sprintf(", nice %d", p.Nice)
	}
	if p.LockMemory {
		s += ", memory locked"
	}
	return s
}

// FromConfig combines the VRRP and checker settings of global_defs into
// one policy (see the package documentation). vrrpOnly and checkOnly are
// vigil run's -P and -C: then only that process's settings count, as in
// keepalived.
func FromConfig(g config.Global, vrrpOnly, checkOnly bool) Policy {
	var p Policy
	if !checkOnly {
		p.RTPriority, p.Nice, p.LockMemory = g.VRRPRTPriority, g.VRRPNice, g.VRRPNoSwap
	}
	if !vrrpOnly {
		p.RTPriority = max(p.RTPriority, g.CheckerRTPriority)
		if g.CheckerNice != 0 && (p.Nice == 0 || g.CheckerNice < p.Nice) {
			p.Nice = g.CheckerNice
		}
		p.LockMemory = p.LockMemory || g.CheckerNoSwap
	}
	return p
}

// attr is the scheduling attribute of a thread under p; timer is for an
// enrolled thread.
func (p Policy) attr(timer bool) unix.SchedAttr {
	a := unix.SchedAttr{Size: unix.SizeofSchedAttr, Flags: unix.SCHED_FLAG_RESET_ON_FORK, Nice: int32(p.Nice), Policy: unix.SCHED_NORMAL}
	switch {
	case timer && p.RTPriority > 0:
		a.Policy = unix.SCHED_RR
		a.Priority = uint32(p.RTPriority)
	}
	return a
}

// same reports whether have is want, as far as it matters.
func same(have, want unix.SchedAttr) bool {
	if have.Policy != want.Policy || have.Flags&unix.SCHED_FLAG_RESET_ON_FORK == 0 {
		return false
	}
	// The nice level only counts for SCHED_OTHER.
	if want.Policy == unix.SCHED_NORMAL {
		return have.Nice == want.Nice
	}
	return have.Priority == want.Priority
}

// threads lists the process's thread IDs.
func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// Scheduler applies a Policy to the process and keeps it applied. It is
// safe for concurrent use.
type Scheduler struct {
	// AllThreads gives the real-time priority to every thread, as to
	// enrolled ones: for a process with no VRRP timer (vigil-bgp). Set it
	// before the first Apply.
	AllThreads bool

	mu     sync.Mutex
	policy Policy
	locked bool
	// set is how many threads Apply changed, for tests and logs: none,
	// and a zero policy leaves them alone.
	set int
	// timers are the enrolled threads (Enroll), by thread ID.
	timers map[int]bool
}

// Set changes the policy; the next Apply uses it. Memory once locked
// stays locked.
func (s *Scheduler) Set(p Policy) {
	s.mu.Lock()
	s.policy = p
	s.mu.Unlock()
}

// Policy returns the policy in force.
func (s *Scheduler) Policy() Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy
}

// Apply gives every thread of the process the policy (those that have it
// already are left alone), the enrolled ones theirs, and locks memory when
// asked. It returns how many threads it changed.
func (s *Scheduler) Apply() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.policy
	if p.IsZero() && s.set == 0 {
		return 0, nil
	}
	if p.LockMemory && !s.locked {
		if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
			return 0, fmt.Errorf("sched: mlockall: %w", err)
		}
		s.locked = true
	}
	tids, err := threads()
	if err != nil {
		return 0, fmt.Errorf("sched: %w", err)
	}
	n := 0
	var firstErr error
	for _, tid := range tids {
		changed, err := s.applyTo(tid, s.AllThreads || s.timers[tid])
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if changed {
			n++
		}
	}
	s.set += n
	return n, firstErr
}

// applyTo gives thread tid its scheduling (s.mu held) and reports whether
// it changed it.
func (s *Scheduler) applyTo(tid int, timer bool) (bool, error) {
	p := s.policy
	have, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return false, nil // the thread ended
	}
	want := p.attr(timer)
	if same(*have, want) {
		return false, nil
	}
	err = unix.SchedSetAttr(tid, &want, 0)
	switch {
	case err == unix.ESRCH:
		return false, nil
	case err != nil:
		what := p.String()
		if timer {
			what = "timer thread: " + what
		}
		return false, fmt.Errorf("sched: thread %d: %s: %w", tid, what, err)
	}
	return true, nil
}

// Enroll gives the calling thread the scheduling of the VRRP engine's
// timer: the policy's real-time priority (without one, what every thread
// has); Apply keeps it so as the policy changes. The caller must be
// locked to its thread (runtime.LockOSThread) until it calls the function
// returned, which ends the enrolment; the thread must then end or be
// given back its scheduling. A failure is reported by the next Apply.
func (s *Scheduler) Enroll() (leave func()) {
	tid := unix.Gettid()
	s.mu.Lock()
	if s.timers == nil {
		s.timers = map[int]bool{}
	}
	s.timers[tid] = true
	if !s.policy.IsZero() || s.set > 0 {
		if changed, _ := s.applyTo(tid, true); changed {
			s.set++
		}
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.timers, tid)
		s.mu.Unlock()
	}
}

// Keep applies the policy at once, then every interval to the threads
// the Go runtime started since, until ctx ends. onErr is told of
// failures (once per distinct message).
func (s *Scheduler) Keep(ctx context.Context, interval time.Duration, onErr func(error)) error {
	last := ""
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := s.Apply(); err != nil && err.Error() != last {
			last = err.Error()
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
