package chaos

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The canary tells a stalled host from a stalled daemon: threads scheduled
// as the daemons are (SCHED_RR at vrrp_rt_priority, or SCHED_OTHER at
// their nice level) sleep canaryPeriod at a time with clock_nanosleep and
// report how late they woke. They run in a process of their own (the
// harness re-executes itself with canaryEnv set): in the harness, busy
// reading 10,000 adverts a second, a woken thread could wait for the Go
// runtime (a free P, the end of a collection) and blame the host for it.

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
	if err := runCanary(spec, os.Stdout); err != nil {
		fmt.Fprintf(os.Stdout, "error %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// canaryClass is one canary thread: "rt" (SCHED_RR at Level) or
// "normal" (SCHED_OTHER at nice Level).
type canaryClass struct {
	Name  string
	Level int
}

func parseCanarySpec(spec string) ([]canaryClass, error) {
	var cs []canaryClass
	for _, f := range strings.Fields(spec) {
		name, v, ok := strings.Cut(f, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || (name != "rt" && name != "normal") || (name == "rt" && (n < 1 || n > 99)) || (name == "normal" && (n < -20 || n > 19)) {
			return nil, fmt.Errorf("chaos: canary: bad class %q (want rt=1..99 or normal=-20..19)", f)
		}
		cs = append(cs, canaryClass{name, n})
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("chaos: canary: no class in %q", spec)
	}
	return cs, nil
}

func canarySpec(cs []canaryClass) string {
	var s []string
	for _, c := range cs {
		s = append(s, fmt.Sprintf("%s=%d", c.Name, c.Level))
	}
	return strings.Join(s, " ")
}

// runCanary runs one thread per class until writing to w fails (the
// harness went away). Each prints "ready CLASS" once scheduled, then
// "late CLASS WALL_NS LATE_NS" for every wake-up at least canaryLate late
// and "tick CLASS WALL_NS WAKES MAX_NS" every second. Nothing in the loop
// allocates, so this process's collector never runs.
func runCanary(spec string, w io.Writer) error {
	cs, err := parseCanarySpec(spec)
	if err != nil {
		return err
	}
	errc := make(chan error, len(cs))
	for _, c := range cs {
		go func() { errc <- canaryLoop(c, w) }()
	}
	return <-errc
}

func canaryLoop(c canaryClass, w io.Writer) error {
	runtime.LockOSThread()
	switch c.Name {
	case "rt":
		a := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR, Priority: uint32(c.Level)}
		if err := unix.SchedSetAttr(0, &a, 0); err != nil {
			return fmt.Errorf("canary %s: SCHED_RR %d: %w", c.Name, c.Level, err)
		}
	case "normal":
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), c.Level); err != nil {
			return fmt.Errorf("canary %s: nice %d: %w", c.Name, c.Level, err)
		}
	}
	buf := make([]byte, 0, 128)
	line := func(kind string, v ...int64) error {
		buf = append(append(append(buf[:0], kind...), ' '), c.Name...)
		for _, x := range v {
			buf = strconv.AppendInt(append(buf, ' '), x, 10)
		}
		_, err := w.Write(append(buf, '\n'))
		return err
	}
	if err := line("ready"); err != nil {
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

// canary is the harness's side: the process and what it reported.
type canary struct {
	cmd      *exec.Cmd
	done     chan struct{}
	stopOnce sync.Once

	mu    sync.Mutex
	ready map[string]bool
	stats map[string]*CanaryStats
	lates []Late
	drop  int
	errs  []string
}

// startCanary re-executes the running program as a canary with one thread
// per class and waits until every thread runs at its priority.
func startCanary(cs []canaryClass) (*canary, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("chaos: canary: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), canaryEnv+"="+canarySpec(cs))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("chaos: canary: %w", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("chaos: canary: %w", err)
	}
	c := &canary{cmd: cmd, done: make(chan struct{}), ready: map[string]bool{}, stats: map[string]*CanaryStats{}}
	for _, x := range cs {
		c.stats[x.Name] = &CanaryStats{}
	}
	go c.read(out)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n, errs := len(c.ready), c.errs
		c.mu.Unlock()
		if len(errs) > 0 || time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("chaos: canary did not start: %s", strings.Join(errs, "; "))
		}
		if n == len(cs) {
			return c, nil
		}
		select {
		case <-c.done:
			c.stop()
			return nil, fmt.Errorf("chaos: canary exited: %s", strings.Join(errs, "; "))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *canary) read(r io.Reader) {
	defer close(c.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rec, err := parseCanaryLine(sc.Text())
		c.mu.Lock()
		switch {
		case err != nil:
			c.errs = append(c.errs, err.Error())
		case rec.Kind == "error":
			c.errs = append(c.errs, rec.Msg)
		case rec.Kind == "ready":
			c.ready[rec.Class] = true
		case rec.Kind == "late":
			if st := c.stats[rec.Class]; st != nil {
				st.Late++
				st.Max = max(st.Max, rec.Late)
			}
			if len(c.lates) < maxLates {
				c.lates = append(c.lates, Late{Class: rec.Class, End: rec.At, Len: rec.Late})
			} else {
				c.drop++
			}
		case rec.Kind == "tick":
			if st := c.stats[rec.Class]; st != nil {
				st.Wakes += rec.Wakes
				st.Max = max(st.Max, rec.Late)
			}
		}
		c.mu.Unlock()
	}
}

// stop kills the canary by its PID and waits for it.
func (c *canary) stop() {
	c.stopOnce.Do(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
		_ = c.cmd.Wait()
	})
}

// results returns what the canary reported (after stop).
func (c *canary) results() (map[string]*CanaryStats, []Late, int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats, c.lates, c.drop, c.errs
}
