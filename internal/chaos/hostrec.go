package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// statEvery is how often a soak samples /proc/stat and the daemons'
// scheduler statistics.
const statEvery = 100 * time.Millisecond

// sampleHost reads /proc/stat and the scheduler statistics of every
// thread of the daemons (pids by node name) every statEvery until ctx
// ends, and returns the samples, stamped when read.
func sampleHost(ctx context.Context, pids map[string]int, policy int) ([]StatSample, map[string][]ProcSample) {
	var stat []StatSample
	procs := map[string][]ProcSample{}
	t := time.NewTicker(statEvery)
	defer t.Stop()
	for {
		if b, err := os.ReadFile("/proc/stat"); err == nil {
			if s, err := parseProcStat(b); err == nil {
				s.At = time.Now()
				stat = append(stat, s)
			}
		}
		for name, pid := range pids {
			if ps, err := readSchedStat(pid, policy); err == nil {
				ps.At = time.Now()
				procs[name] = append(procs[name], ps)
			}
		}
		select {
		case <-ctx.Done():
			return stat, procs
		case <-t.C:
		}
	}
}

// readSchedStat sums /proc/PID/task/*/schedstat: the time the process's
// threads ran and waited runnable for a CPU. Threads that ended since the
// last sample take their time with them: a sum can shrink, which a window
// then shows as zero. It counts the threads whose scheduling policy is
// not policy (unix.SCHED_NORMAL); for unix.SCHED_RR, which vigil gives to
// its VRRP timer's thread only (internal/sched), it counts 1 when no
// thread has it.
func readSchedStat(pid, policy int) (ProcSample, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ProcSample{}, err
	}
	var ps ProcSample
	at := 0 // threads at policy
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		run, wait, ok := parseSchedStat(string(b))
		if ok {
			ps.Run += run
			ps.Wait += wait
		}
		ps.Threads++
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			if a, err := unix.SchedGetAttr(tid, 0); err == nil && int(a.Policy) != policy {
				ps.Astray++
			} else if err == nil {
				at++
			}
		}
	}
	if policy == unix.SCHED_RR {
		ps.Astray = 0
		if at == 0 {
			ps.Astray = 1
		}
	}
	return ps, nil
}

// gcEvery is how often a soak reads the daemons' new output for gctrace
// lines.
const gcEvery = 20 * time.Millisecond

// followGC reads the new output of n every gcEvery until ctx ends and
// returns its collections (GODEBUG=gctrace=1), placed on the wall clock
// (started: just before the daemon was started).
func followGC(ctx context.Context, n *e2e.Node, started time.Time) []GCPause {
	var lines []gcLine
	off := 0
	pending := ""
	t := time.NewTicker(gcEvery)
	defer t.Stop()
	for {
		var out string
		if p := n.Proc(); p != nil {
			out = p.OutputFrom(off)
		}
		seen := time.Now()
		off += len(out)
		pending += out
		for {
			i := strings.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			if l, ok := parseGCTrace(pending[:i]); ok {
				l.Seen = seen
				lines = append(lines, l)
			}
			pending = pending[i+1:]
		}
		select {
		case <-ctx.Done():
			return placeGC(n.Host.Name(), lines, started)
		case <-t.C:
		}
	}
}

// A Provocation stalls something on purpose, At into the soak and For
// long, to show that the report names the cause: "stop" is SIGSTOP of the
// master daemon (a stalled daemon), "rthog" a SCHED_RR busy loop at the
// daemons' priority on every CPU (a stalled host: the README's
// equal-priority neighbour), "lowrthog" the same loops lowRTBelow under
// the daemons' priority: the daemons keep the CPUs they need, every
// thread at normal priority (ksoftirqd among them) waits.
type Provocation struct {
	Kind    string
	At, For time.Duration
}

func (p Provocation) String() string { return fmt.Sprintf("%s@%v:%v", p.Kind, p.At, p.For) }

// ParseProvocations reads "stop@20s:150ms,rthog@40s:150ms".
func ParseProvocations(s string) ([]Provocation, error) {
	var out []Provocation
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		kind, rest, ok1 := strings.Cut(f, "@")
		at, dur, ok2 := strings.Cut(rest, ":")
		a, err1 := time.ParseDuration(at)
		d, err2 := time.ParseDuration(dur)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || (kind != "stop" && kind != "rthog" && kind != "lowrthog") || a < 0 || d <= 0 {
			return nil, fmt.Errorf("chaos: provocation %q: want stop, rthog or lowrthog @AT:FOR (e.g. stop@20s:150ms)", f)
		}
		out = append(out, Provocation{Kind: kind, At: a, For: d})
	}
	return out, nil
}

// Provoked is a provocation as it happened.
type Provoked struct {
	Start, End time.Time
	What       string
	Err        string
}

// provoke runs the provocations against the soak started at t0.
func provoke(ctx context.Context, ps []Provocation, t0 time.Time, master *e2e.Node, rtPrio int) []Provoked {
	var mu sync.Mutex
	var out []Provoked
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			select {
			case <-time.After(time.Until(t0.Add(p.At))):
			case <-ctx.Done():
				return
			}
			var r Provoked
			switch p.Kind {
			case "stop":
				r.What = fmt.Sprintf("SIGSTOP %s for %v", master.Host.Name(), p.For)
				r.Start = time.Now()
				r.Err = stopFor(master.Pid(), p.For)
				r.End = time.Now()
			case "rthog", "lowrthog":
				prio := max(rtPrio, 1)
				if p.Kind == "lowrthog" {
					prio = max(rtPrio-lowRTBelow, 1)
				}
				n := runtime.NumCPU()
				r.What = fmt.Sprintf("SCHED_RR %d busy loop on each of %d CPUs for %v", prio, n, p.For)
				r.Start = time.Now()
				r.Err = rtHog(prio, n, p.For)
				r.End = time.Now()
			}
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// lowRTBelow is how far under the daemons' priority lowrthog's loops run.
const lowRTBelow = 10

// stopFor stops pid for d. A shell at SCHED_RR 99 sends the signals and
// sleeps between them: the harness, at normal priority on a loaded
// machine, could send SIGCONT a hundred milliseconds late.
func stopFor(pid int, d time.Duration) string {
	out, err := exec.Command("chrt", "-r", "99", "sh", "-c", `kill -STOP "$1" && sleep "$2"; kill -CONT "$1"`,
		"sh", strconv.Itoa(pid), strconv.FormatFloat(d.Seconds(), 'f', 3, 64)).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return ""
}

// rtHog runs a SCHED_RR busy loop at prio pinned to each of n CPUs for d.
// The timeout that ends them runs at SCHED_RR 99: at a lower priority it
// would wait for the loops it is to end.
func rtHog(prio, n int, d time.Duration) string {
	var cmds []*exec.Cmd
	for cpu := range n {
		c := exec.Command("chrt", "-r", "99", "timeout", "-s", "KILL", strconv.FormatFloat(d.Seconds(), 'f', 3, 64),
			"chrt", "-r", strconv.Itoa(prio), "taskset", "-c", strconv.Itoa(cpu), "sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			return err.Error()
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		_ = c.Wait() // killed by timeout: an error by design
	}
	return ""
}
