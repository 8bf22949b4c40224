package sched

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

func TestFromConfig(t *testing.T) {
	g := config.Global{VRRPRTPriority: 10, CheckerRTPriority: 20, VRRPNice: -5, CheckerNice: -10, CheckerNoSwap: true}
	for _, tc := range []struct {
		name                string
		vrrpOnly, checkOnly bool
		want                Policy
	}{
		{"both: the stronger wins", false, false, Policy{RTPriority: 20, Nice: -10, LockMemory: true}},
		{"-P: VRRP only", true, false, Policy{RTPriority: 10, Nice: -5}},
		{"-C: checkers only", false, true, Policy{RTPriority: 20, Nice: -10, LockMemory: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromConfig(g, tc.vrrpOnly, tc.checkOnly); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if p := FromConfig(config.Global{VRRPNice: 5, CheckerNice: 0}, false, false); p.Nice != 5 {
		t.Errorf("an unset checker_priority must not override vrrp_priority: %+v", p)
	}
}

// Apply reaches every thread, the real-time priority only the enrolled
// one (the others run SCHED_OTHER at the nice level asked), and a child
// process starts at normal priority (SCHED_RESET_ON_FORK). Needs root (CAP_SYS_NICE); run in a
// child process so the test binary's own threads are not left changed.
func TestApplyAllThreadsChildrenReset(t *testing.T) {
	if os.Getenv("VIGIL_SCHED_CHILD") == "1" {
		applyInChild(t)
		return
	}
	netnstest.RequireRoot(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestApplyAllThreadsChildrenReset$", "-test.v")
	cmd.Env = append(os.Environ(), "VIGIL_SCHED_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func applyInChild(t *testing.T) {
	// Threads the runtime has besides this one.
	done := make(chan struct{})
	ready := make(chan struct{})
	for range 4 {
		go func() { runtime.LockOSThread(); ready <- struct{}{}; <-done }()
	}
	for range 4 {
		<-ready
	}
	defer close(done)
	var s Scheduler
	s.Set(Policy{RTPriority: 5, Nice: -3})
	// Timer threads enrol before the policy is applied, and keep theirs.
	enrolled := make(chan int, 2)
	for range 2 {
		go func() {
			runtime.LockOSThread()
			defer s.Enroll()()
			enrolled <- unix.Gettid()
			<-done
		}()
	}
	timers := map[int]bool{<-enrolled: true}
	timers[<-enrolled] = true
	n, err := s.Apply()
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Errorf("changed %d threads", n)
	}
	// The runtime may have started a thread since (it does not inherit
	// the policy): Keep's next round catches it.
	for range 5 {
		if n, err := s.Apply(); err != nil || n == 0 {
			break
		}
	}
	tids, _ := threads()
	for _, tid := range tids {
		a, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue
		}
		switch {
		case a.Flags&unix.SCHED_FLAG_RESET_ON_FORK == 0:
			t.Errorf("thread %d: flags %#x, no SCHED_RESET_ON_FORK", tid, a.Flags)
		case timers[tid] && (a.Policy != unix.SCHED_RR || a.Priority != 5):
			t.Errorf("timer thread %d: policy %d priority %d, want SCHED_RR 5", tid, a.Policy, a.Priority)
		case !timers[tid] && (a.Policy != unix.SCHED_NORMAL || a.Nice != -3):
			t.Errorf("thread %d: policy %d nice %d, want SCHED_OTHER at nice -3", tid, a.Policy, a.Nice)
		}
	}
	// chrt -p prints the policy of the child shell itself.
	out, err := exec.Command("/bin/sh", "-c", "chrt -p $$; cat /proc/self/stat").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "SCHED_OTHER") {
		t.Errorf("a child runs with the daemon's real-time policy:\n%s", out)
	}
	// With AllThreads (vigil-bgp), every thread is real-time.
	all := Scheduler{AllThreads: true}
	all.Set(Policy{RTPriority: 4})
	if _, err := all.Apply(); err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		if a, err := unix.SchedGetAttr(tid, 0); err == nil && (a.Policy != unix.SCHED_RR || a.Priority != 4) {
			t.Errorf("AllThreads: thread %d policy %d priority %d, want SCHED_RR 4", tid, a.Policy, a.Priority)
		}
	}
	// Back to normal.
	s.Set(Policy{})
	if _, err := s.Apply(); err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		if a, err := unix.SchedGetAttr(tid, 0); err == nil && a.Policy != unix.SCHED_NORMAL {
			t.Errorf("thread %d still policy %d after Set(Policy{})", tid, a.Policy)
		}
	}
}
