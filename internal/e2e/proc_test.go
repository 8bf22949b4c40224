package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadProcSplitsRSS: the resident set of this test process is read with
// its anonymous part, which is never larger than the whole.
func TestReadProcSplitsRSS(t *testing.T) {
	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = 1 // resident, anonymous
	}
	u, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.Anon < 32<<20 || u.RSS < u.Anon || u.CPU <= 0 {
		t.Errorf("usage %+v: want anonymous ≥ 32 MiB, RSS ≥ anonymous, some CPU", u)
	}
	_ = big[len(big)-1]
}

// TestReadProcCPUToTheNanosecond: the CPU time counts what the threads ran,
// finer than USER_HZ's 10 ms, and agrees with getrusage.
func TestReadProcCPUToTheNanosecond(t *testing.T) {
	if _, ok := threadsRun(os.Getpid()); !ok {
		t.Skip("no schedstat in this kernel")
	}
	u0, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	x := 0
	for start := time.Now(); time.Since(start) < 30*time.Millisecond; {
		x++ // run on the CPU for 30 ms
	}
	u1, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	got := u1.CPU - u0.CPU
	rus := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	want := rus(ru1) - rus(ru0)
	if got < 20*time.Millisecond || (got-want).Abs() > 10*time.Millisecond {
		t.Errorf("ReadProc's CPU grew by %v over a 30 ms spin, getrusage by %v (%d)", got, want, x)
	}
	if got%(10*time.Millisecond) == 0 {
		t.Errorf("ReadProc's CPU grew by %v, a whole number of USER_HZ ticks", got)
	}
}

// TestAnonMappings: this process's largest anonymous mapping holds the
// 32 MiB just touched.
func TestAnonMappings(t *testing.T) {
	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = 1
	}
	ms, err := AnonMappings(os.Getpid(), 2)
	if err != nil {
		t.Fatal(err)
	}
	var kb int64
	if len(ms) > 0 {
		fmt.Sscanf(ms[0][strings.LastIndex(ms[0], ": ")+2:], "%d kB", &kb)
	}
	if len(ms) == 0 || len(ms) > 2 || kb < 32<<10 {
		t.Errorf("anonymous mappings %q: want at most 2, the first with ≥ 32768 kB", ms)
	}
	_ = big[len(big)-1]
}
