package chaos

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/sched"
)

// The canary tells a stalled host from a stalled daemon: threads
// scheduled as the daemons are (SCHED_RR at vrrp_rt_priority, or
// SCHED_OTHER at their nice level), one pinned to each CPU, sleep
// canaryPeriod at a time with clock_nanosleep and report how late they
// woke. One thread per CPU, because a CPU can stop scheduling on its own:
// traced, CPU 1 spent 22 ms at a time in the serial console's interrupt
// handler (bound to it, interrupts off) while CPU 0 ran on, and the
// daemons' threads woken on CPU 1 waited; a single canary thread that
// happened to sleep on CPU 0 woke on time and the stall looked like the
// daemon's own. Each class runs in a
// process of its own (the harness re-executes itself with canaryEnv set),
// every thread of which gets the class's policy through internal/sched as
// vigil's threads do: a Go thread woken from a system call may need a
// runtime lock or a P held by another thread of its process, and with
// those threads at normal priority a real-time canary waited a second
// behind real-time busy loops that the daemons rode out in 100 ms slices.
// In the harness, busy reading 10,000 adverts a second, it would wait for
// the harness's runtime as well.

const (
	canaryEnv    = "VIGIL_CHAOS_CANARY"
	canaryPeriod = time.Millisecond
	// canaryLate is the least lateness reported one wake-up at a time.
	canaryLate = 2 * time.Millisecond
	// maxLates bounds the lateness records a soak keeps.
	maxLates = 500000
)

// CanaryMain runs the canary and exits when the process was started as
// one (canaryEnv set); otherwise it returns at once. Programs that run a
// soak (cmd/vigil-chaos, this package's tests) call it first thing.
func CanaryMain() {
	spec, ok := os.LookupEnv(canaryEnv)
	if !ok {
		return
	}
	c, err := parseCanaryClass(spec)
	if err == nil {
		err = runCanary(c, os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stdout, "error %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// canaryClass is how a canary process is scheduled: "rt" (SCHED_RR at
// Level) or "normal" (SCHED_OTHER at nice Level).
type canaryClass struct {
	Name  string
	Level int
}

func (c canaryClass) String() string { return fmt.Sprintf("%s=%d", c.Name, c.Level) }

func (c canaryClass) policy() sched.Policy {
	if c.Name == "rt" {
		return sched.Policy{RTPriority: c.Level}
	}
	return sched.Policy{Nice: c.Level}
}

func parseCanaryClass(s string) (canaryClass, error) {
	name, v, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(v)
	if !ok || err != nil || (name != "rt" && name != "normal") || (name == "rt" && (n < 1 || n > 99)) || (name == "normal" && (n < -20 || n > 19)) {
		return canaryClass{}, fmt.Errorf("chaos: canary: bad class %q (want rt=1..99 or normal=-20..19)", s)
	}
	return canaryClass{name, n}, nil
}

// runCanary schedules the process as c says (as vigil does: the loops'
// threads as vigil's VRRP timer's, the others, and those the runtime starts
// later, as vigil's others) and runs one canary loop on each
// CPU the process may use until writing to w fails (the harness went
// away); it returns when every loop has. It prints "ready CLASS" once the
// loops are pinned and scheduled, then "late CLASS WALL_NS LATE_NS" for
// every wake-up at least canaryLate late and "tick CLASS WALL_NS WAKES
// MAX_NS" every second from each loop. Nothing in the loops allocates, so
// this process's collector never runs.
func runCanary(c canaryClass, w io.Writer) error {
	var s sched.Scheduler
	s.Set(c.policy())
	if _, err := s.Apply(); err != nil {
		return fmt.Errorf("canary %s: %w", c.Name, err)
	}
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		return fmt.Errorf("canary %s: %w", c.Name, err)
	}
	lw := &stickyWriter{w: w}
	start := make(chan struct{})
	errs := make([]error, cpus.Count())
	var pinned, done sync.WaitGroup
	for i, cpu := 0, 0; i < len(errs); cpu++ {
		if !cpus.IsSet(cpu) {
			continue
		}
		pinned.Add(1)
		done.Add(1)
		go func(i int) {
			defer done.Done()
			runtime.LockOSThread() // never unlocked: the thread ends with the loop
			var one unix.CPUSet
			one.Set(cpu)
			if err := unix.SchedSetaffinity(0, &one); err != nil { // 0: this thread
				errs[i] = fmt.Errorf("canary %s: pin to CPU %d: %w", c.Name, cpu, err)
			}
			// The loop's thread is the one a real-time priority goes to
			// (vigil's VRRP timer's, internal/sched).
			s.Enroll()
			pinned.Done()
			<-start
			if errs[i] == nil {
				errs[i] = canaryLoop(c, lw)
			}
		}(i)
		i++
	}
	pinned.Wait()
	// The loops' threads may be new ones, which SCHED_RESET_ON_FORK
	// started at normal priority: schedule them before they run.
	_, err := s.Apply()
	for _, e := range errs {
		err = cmp.Or(err, e)
	}
	if err == nil {
		_, err = lw.Write([]byte("ready " + c.Name + "\n"))
	}
	if err != nil {
		lw.fail(err) // every loop ends at its first line
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Keep(ctx, time.Second, func(error) {})
	close(start)
	done.Wait()
	for _, e := range errs {
		err = cmp.Or(err, e)
	}
	return err
}

// stickyWriter lets the canary's loops share one writer: a line is one
// Write, and after a write fails every later one fails too, so that each
// loop ends at its next line.
type stickyWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(b)
	s.err = err
	return n, err
}

func (s *stickyWriter) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func canaryLoop(c canaryClass, w io.Writer) error {
	buf := make([]byte, 0, 128)
	line := func(kind string, v ...int64) error {
		buf = append(append(append(buf[:0], kind...), ' '), c.Name...)
		for _, x := range v {
			buf = strconv.AppendInt(append(buf, ' '), x, 10)
		}
		_, err := w.Write(append(buf, '\n'))
		return err
	}
	mono := func() int64 {
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		return ts.Nano()
	}
	period := int64(canaryPeriod)
	next := mono() + period
	tick := next + int64(time.Second)
	var wakes, worst int64
	for {
		req := unix.NsecToTimespec(next)
		for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &req, nil) == unix.EINTR {
		}
		now := mono()
		late := now - next
		wakes++
		worst = max(worst, late)
		if late >= int64(canaryLate) {
			if err := line("late", time.Now().UnixNano(), late); err != nil {
				return err
			}
		}
		next += period
		if next <= now {
			next = now + period // missed wake-ups are not made up in a burst
		}
		if now >= tick {
			if err := line("tick", time.Now().UnixNano(), wakes, worst); err != nil {
				return err
			}
			wakes, worst, tick = 0, 0, now+int64(time.Second)
		}
	}
}

// canaryRecord is one parsed line of the canary's output.
type canaryRecord struct {
	Kind  string // ready, late, tick, error
	Class string
	At    time.Time
	Late  time.Duration // late: how late; tick: the worst in the second
	Wakes uint64
	Msg   string
}

func parseCanaryLine(s string) (canaryRecord, error) {
	f := strings.Fields(s)
	bad := fmt.Errorf("chaos: canary: bad line %q", s)
	if len(f) < 2 {
		return canaryRecord{}, bad
	}
	r := canaryRecord{Kind: f[0], Class: f[1]}
	nums := func(n int) ([]int64, bool) {
		if len(f) != 2+n {
			return nil, false
		}
		v := make([]int64, n)
		for i := range v {
			x, err := strconv.ParseInt(f[2+i], 10, 64)
			if err != nil || x < 0 {
				return nil, false
			}
			v[i] = x
		}
		return v, true
	}
	switch r.Kind {
	case "ready":
		if len(f) != 2 {
			return r, bad
		}
	case "error":
		r.Class, r.Msg = "", strings.TrimPrefix(s, "error ")
	case "late":
		v, ok := nums(2)
		if !ok {
			return r, bad
		}
		r.At, r.Late = time.Unix(0, v[0]), time.Duration(v[1])
	case "tick":
		v, ok := nums(3)
		if !ok {
			return r, bad
		}
		r.At, r.Wakes, r.Late = time.Unix(0, v[0]), uint64(v[1]), time.Duration(v[2])
	default:
		return r, bad
	}
	return r, nil
}

// canary is the harness's side of one canary process: the process and
// what it reported.
type canary struct {
	class    canaryClass
	cmd      *exec.Cmd
	done     chan struct{}
	stopOnce sync.Once

	mu    sync.Mutex
	ready bool
	stats CanaryStats
	lates []Late
	drop  int
	errs  []string
}

// startCanary re-executes the running program as a canary of class c and
// waits until it runs at its priority.
func startCanary(c canaryClass) (*canary, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("chaos: canary: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), canaryEnv+"="+c.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("chaos: canary: %w", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("chaos: canary: %w", err)
	}
	k := &canary{class: c, cmd: cmd, done: make(chan struct{})}
	go k.read(out)
	deadline := time.Now().Add(10 * time.Second)
	for {
		k.mu.Lock()
		ready, errs := k.ready, k.errs
		k.mu.Unlock()
		if len(errs) > 0 || time.Now().After(deadline) {
			k.stop()
			return nil, fmt.Errorf("chaos: canary %s did not start: %s", c, strings.Join(errs, "; "))
		}
		if ready {
			return k, nil
		}
		select {
		case <-k.done:
			k.stop()
			return nil, fmt.Errorf("chaos: canary %s exited: %s", c, strings.Join(errs, "; "))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (k *canary) read(r io.Reader) {
	defer close(k.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rec, err := parseCanaryLine(sc.Text())
		k.mu.Lock()
		switch {
		case err != nil:
			k.errs = append(k.errs, err.Error())
		case rec.Kind == "error":
			k.errs = append(k.errs, rec.Msg)
		case rec.Class != k.class.Name:
			k.errs = append(k.errs, fmt.Sprintf("chaos: canary %s: line of class %s", k.class, rec.Class))
		case rec.Kind == "ready":
			k.ready = true
		case rec.Kind == "late":
			k.stats.Late++
			k.stats.Max = max(k.stats.Max, rec.Late)
			if len(k.lates) < maxLates {
				k.lates = append(k.lates, Late{Class: rec.Class, End: rec.At, Len: rec.Late})
			} else {
				k.drop++
			}
		case rec.Kind == "tick":
			k.stats.Wakes += rec.Wakes
			k.stats.Max = max(k.stats.Max, rec.Late)
		}
		k.mu.Unlock()
	}
}

// stop kills the canary by its PID and waits for it.
func (k *canary) stop() {
	k.stopOnce.Do(func() {
		_ = k.cmd.Process.Kill()
		<-k.done
		_ = k.cmd.Wait()
	})
}

// canaries are the soak's canary processes, one per class.
type canaries []*canary

func startCanaries(cs []canaryClass) (canaries, error) {
	var ks canaries
	for _, c := range cs {
		k, err := startCanary(c)
		if err != nil {
			ks.stop()
			return nil, err
		}
		ks = append(ks, k)
	}
	return ks, nil
}

func (ks canaries) stop() {
	for _, k := range ks {
		k.stop()
	}
}

// results returns what the canaries reported (after stop): the totals by
// class, the late wake-ups in time order, how many were left out, errors.
func (ks canaries) results() (map[string]*CanaryStats, []Late, int, []string) {
	stats := map[string]*CanaryStats{}
	var lates []Late
	var drop int
	var errs []string
	for _, k := range ks {
		k.mu.Lock()
		st := k.stats
		stats[k.class.Name] = &st
		lates = append(lates, k.lates...)
		drop += k.drop
		errs = append(errs, k.errs...)
		k.mu.Unlock()
	}
	sort.Slice(lates, func(i, j int) bool { return lates[i].End.Before(lates[j].End) })
	return stats, lates, drop, errs
}
