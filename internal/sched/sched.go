// Package sched applies keepalived's process scheduling settings
// (vrrp_rt_priority / checker_rt_priority, vrrp_priority /
// checker_priority, vrrp_no_swap / checker_no_swap) to vigil.
//
// keepalived runs its VRRP and checker code in two processes and tunes
// each. vigil is one process, and the Go runtime runs any goroutine on any
// of its threads: the VRRP loop, the timer that wakes it and the sockets
// that feed it cannot be told apart from the checkers at the thread level,
// and a goroutine locked to one real-time thread would still wait for
// runtime work (timers, the network poller, garbage collection) done on
// the others. So a setting applies to every thread of the process, and
// when both processes' settings are given the stronger one wins: the
// higher real-time priority, the lower nice level, memory locked if
// either asks.
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

// attr is the scheduling attribute of one thread under p.
func (p Policy) attr() unix.SchedAttr {
	a := unix.SchedAttr{Size: unix.SizeofSchedAttr, Flags: unix.SCHED_FLAG_RESET_ON_FORK, Nice: int32(p.Nice)}
	if p.RTPriority > 0 {
		a.Policy = unix.SCHED_RR
		a.Priority = uint32(p.RTPriority)
	} else {
		a.Policy = unix.SCHED_NORMAL
	}
	return a
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
	mu     sync.Mutex
	policy Policy
	locked bool
	// set is how many threads Apply changed, for tests and logs.
	set int
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
// already are left alone) and locks memory when asked. It returns how
// many threads it changed.
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
	want := p.attr()
	n := 0
	var firstErr error
	for _, tid := range tids {
		have, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // the thread ended
		}
		// The nice level only counts for SCHED_OTHER.
		sameNice := want.Policy != unix.SCHED_NORMAL || have.Nice == want.Nice
		if have.Policy == want.Policy && have.Priority == want.Priority && sameNice && have.Flags&unix.SCHED_FLAG_RESET_ON_FORK != 0 {
			continue
		}
		a := want
		if err := unix.SchedSetAttr(tid, &a, 0); err != nil {
			if err == unix.ESRCH {
				continue
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("sched: thread %d: %s: %w", tid, p, err)
			}
			continue
		}
		n++
	}
	s.set += n
	return n, firstErr
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
