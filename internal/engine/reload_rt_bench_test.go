package engine

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/sched"
)

// BenchmarkTimerUnderReload measures how late the VRRP timer's expiries
// (every 10 ms) come while a large configuration (3,000 instances) is read
// on every P, the process held to one CPU, with vrrp_rt_priority 10:
//
//   - all-threads: every thread SCHED_RR (as before TimerOnThread), the
//     timer waiting through the poller: the reads take round-robin turns
//     of the CPU with the timer;
//   - timer-thread: the timer on its own thread, the only SCHED_RR one
//     (sched.Scheduler.Enroll), the reads SCHED_OTHER.
//
// It reports the expiries' lateness (p99-late-ms, max-late-ms). Root only
// (CAP_SYS_NICE); the threads get SCHED_OTHER and every CPU back after.
//
//	go test -run '^$' -bench TimerUnderReload -benchtime 3x ./internal/engine
func BenchmarkTimerUnderReload(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: SCHED_RR")
	}
	var conf strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&conf, "vrrp_instance VI_%d {\n state BACKUP\n interface eth%d\n virtual_router_id %d\n priority 100\n advert_int 1\n virtual_ipaddress {\n  10.%d.1.%d/32\n }\n}\n",
			i, i/255+1, i%255+1, i/255+1, i%255+1)
	}
	fsys := fstest.MapFS{"k.conf": {Data: []byte(conf.String())}}
	const period = 10 * time.Millisecond
	for _, tc := range []struct {
		name   string
		thread bool
	}{{"all-threads", false}, {"timer-thread", true}} {
		b.Run(tc.name, func(b *testing.B) {
			defer everyThread(b, unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, allCPUs(b))
			one := new(unix.CPUSet)
			one.Set(runtime.NumCPU() - 1)
			rt := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR, Priority: 10, Flags: unix.SCHED_FLAG_RESET_ON_FORK}
			var s sched.Scheduler
			s.Set(sched.Policy{RTPriority: 10})
			stop := make(chan struct{})
			var keep sync.WaitGroup
			keep.Add(1)
			go func() { // Keep's round, for the threads started meanwhile
				defer keep.Done()
				for {
					if tc.thread {
						s.Apply()
						everyThread(b, unix.SchedAttr{}, one)
					} else {
						everyThread(b, rt, one)
					}
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}()
			var (
				mu    sync.Mutex
				lates []time.Duration
				next  time.Time
				tm    *fdTimer
			)
			tm, err := newFDTimer(func() {
				mu.Lock()
				defer mu.Unlock()
				lates = append(lates, time.Since(next))
				next = next.Add(period)
				tm.Reset(time.Until(next))
			}, s.Enroll)
			if err != nil {
				b.Skip(err)
			}
			if err := tm.SetThread(tc.thread); err != nil {
				b.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // the policy in place
			mu.Lock()
			next = time.Now().Add(period)
			tm.Reset(period)
			lates = lates[:0]
			mu.Unlock()
			b.ResetTimer()
			for range b.N {
				var wg sync.WaitGroup
				for range runtime.GOMAXPROCS(0) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, ds := config.Load(fsys, "k.conf", config.Options{}); ds.HasErrors() {
							b.Error(ds)
						}
					}()
				}
				wg.Wait()
			}
			b.StopTimer()
			tm.Close()
			close(stop)
			keep.Wait()
			slices.Sort(lates)
			if len(lates) > 0 {
				b.ReportMetric(float64(lates[len(lates)*99/100])/1e6, "p99-late-ms")
				b.ReportMetric(float64(lates[len(lates)-1])/1e6, "max-late-ms")
			}
		})
	}
}

// everyThread gives every thread of the process attr (unless its Size is
// zero) and the CPUs set.
func everyThread(b *testing.B, attr unix.SchedAttr, set *unix.CPUSet) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if attr.Size != 0 {
			a := attr
			unix.SchedSetAttr(tid, &a, 0)
		}
		unix.SchedSetaffinity(tid, set)
	}
}

// allCPUs is the set of every CPU.
func allCPUs(b *testing.B) *unix.CPUSet {
	set := new(unix.CPUSet)
	for i := range runtime.NumCPU() {
		set.Set(i)
	}
	return set
}
