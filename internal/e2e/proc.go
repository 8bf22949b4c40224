package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture vigil supports).
const userHZ = 100

// ProcUsage is what /proc says about one process.
type ProcUsage struct {
	// CPU is the time the process's threads have run: the sum of their
	// /proc/PID/task/TID/schedstat, to the nanosecond, or utime + stime
	// (to USER_HZ's 10 ms) where the kernel keeps no schedstat. Over a
	// window of 20 s, 10 ms is 0.05 % of a core, the size of the
	// differences vigil-bench compares. The sum leaves out threads that
	// exited; neither daemon's do while it runs.
	CPU time.Duration
	RSS int64 // VmRSS, bytes
	// Anon is RssAnon, bytes: the process's own memory (heap, stacks),
	// without the pages of its binary and libraries that RSS also counts
	// (clean, shared with every process mapping the same files).
	Anon int64
}

// ReadProc reads /proc/PID/stat and /proc/PID/status.
func ReadProc(pid int) (ProcUsage, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcUsage{}, fmt.Errorf("e2e: %w", err)
	}
	// The command name (field 2) may contain spaces: fields count from the
	// last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ProcUsage{}, fmt.Errorf("e2e: /proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return ProcUsage{}, fmt.Errorf("e2e: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return ProcUsage{}, fmt.Errorf("e2e: /proc/%d/stat: bad utime/stime", pid)
	}
	u := ProcUsage{CPU: time.Duration(ut+st) * time.Second / userHZ}
	if run, ok := threadsRun(pid); ok {
		u.CPU = run
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcUsage{}, fmt.Errorf("e2e: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(l, ":")
		if !ok || (name != "VmRSS" && name != "RssAnon") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return ProcUsage{}, fmt.Errorf("e2e: /proc/%d/status: %s %q", pid, name, v)
		}
		if name == "VmRSS" {
			u.RSS = kb * 1024
		} else {
			u.Anon = kb * 1024
		}
	}
	return u, nil
}

// threadsRun sums the run time of pid's threads (the first field of each
// /proc/PID/task/TID/schedstat, in ns); false when the kernel has no
// schedstat.
func threadsRun(pid int) (time.Duration, bool) {
	tids, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, false
	}
	var sum time.Duration
	n := 0
	for _, t := range tids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		sum += time.Duration(ns)
		n++
	}
	return sum, n > 0
}

// Pids are the daemon's processes: vigil's one, keepalived's parent and VRRP
// child.
func (n *Node) Pids() ([]int, error) {
	if n.Kind == Vigil {
		return []int{n.Pid()}, nil
	}
	v, err := n.VRRPPid()
	if err != nil {
		return nil, err
	}
	return []int{n.Pid(), v}, nil
}

// Usage sums ReadProc over the daemon's processes.
func (n *Node) Usage() (ProcUsage, error) {
	pids, err := n.Pids()
	if err != nil {
		return ProcUsage{}, err
	}
	var sum ProcUsage
	for _, p := range pids {
		u, err := ReadProc(p)
		if err != nil {
			return ProcUsage{}, err
		}
		sum.CPU += u.CPU
		sum.RSS += u.RSS
		sum.Anon += u.Anon
	}
	return sum, nil
}

// AnonMappings returns pid's mappings that hold anonymous pages, largest
// first, as "start-end perms: N kB" (at most max of them): where a daemon's
// RssAnon lives (a Go heap arena, the runtime's own allocations, stacks).
func AnonMappings(pid, max int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	type m struct {
		name string
		kb   int64
	}
	var out []m
	var cur string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") {
			cur = f[0]
			if len(f) > 1 {
				cur += " " + f[1]
			}
			continue
		}
		if f[0] == "Anonymous:" && len(f) > 1 {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 {
				out = append(out, m{cur, kb})
			}
		}
	}
	slices.SortFunc(out, func(a, b m) int { return int(b.kb - a.kb) })
	var s []string
	for i, x := range out {
		if i == max {
			break
		}
		s = append(s, fmt.Sprintf("%s: %d kB", x.name, x.kb))
	}
	return s, nil
}
