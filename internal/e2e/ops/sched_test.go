package ops

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// schedSampler records, every 20 ms, how long a process's threads have
// run and how long they have waited on a run queue (the first two fields
// of /proc/PID/task/*/schedstat). When an advert gap shows, it tells
// whether the daemon was starved of CPU by the machine (waited), busy
// (ran) or blocked (neither).
type schedSampler struct {
	pid  int
	mu   sync.Mutex
	at   []time.Time
	run  []time.Duration
	wait []time.Duration
	stop chan struct{}
	done chan struct{}
}

func startSchedSampler(pid int) *schedSampler {
	s := &schedSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if run, wait, ok := schedstat(pid); ok {
				s.mu.Lock()
				s.at, s.run, s.wait = append(s.at, time.Now()), append(s.run, run), append(s.wait, wait)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *schedSampler) close() { close(s.stop); <-s.done }

// schedstat sums the run and run-queue wait times of a process's threads.
func schedstat(pid int) (run, wait time.Duration, ok bool) {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fs := strings.Fields(string(b))
		if len(fs) < 2 {
			continue
		}
		r, err1 := strconv.ParseInt(fs[0], 10, 64)
		w, err2 := strconv.ParseInt(fs[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		run += time.Duration(r)
		wait += time.Duration(w)
		ok = true
	}
	return run, wait, ok
}

// during describes the samples that bracket [from, to].
func (s *schedSampler) during(from, to time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, j := -1, -1
	for k, at := range s.at {
		if !at.After(from) {
			i = k
		}
		if j < 0 && !at.Before(to) {
			j = k
		}
	}
	if i < 0 || j < 0 || j <= i {
		return "no CPU samples around it"
	}
	span := s.at[j].Sub(s.at[i])
	return fmt.Sprintf("in the %v around it the process ran %v and waited %v on a run queue (the rest it was blocked or sleeping)",
		span.Round(time.Millisecond), (s.run[j] - s.run[i]).Round(time.Millisecond), (s.wait[j] - s.wait[i]).Round(time.Millisecond))
}
