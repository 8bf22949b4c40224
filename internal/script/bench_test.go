package script

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTrackScripts100 runs 100 vrrp_scripts at interval 1 s for
// VIGIL_BENCH_SECONDS (default 20) and reports the CPU time used, as a
// percentage of one core, by vigil's side (getrusage RUSAGE_SELF: timers,
// fork/exec, waiting) and by the scripts themselves (RUSAGE_CHILDREN).
//
//	go test -run '^$' -bench TrackScripts100 -benchtime 1x ./internal/script/
func BenchmarkTrackScripts100(b *testing.B) {
	secs := 20
	if s := os.Getenv("VIGIL_BENCH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		secs = n
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"true", []string{"/bin/true"}},
		{"sh-script", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			args := tc.args
			if args == nil {
				d := b.TempDir()
				p := d + "/chk.sh"
				if err := os.WriteFile(p, []byte("#!/bin/sh\n[ -d /proc/1 ] && exit 0\nexit 1\n"), 0o755); err != nil {
					b.Fatal(err)
				}
				args = []string{p}
			}
			for i := 0; i < b.N; i++ {
				runHundred(b, args, time.Duration(secs)*time.Second)
			}
		})
	}
}

func runHundred(b *testing.B, args []string, dur time.Duration) {
	r := NewRunner(RunnerOptions{})
	p, err := Prepare(Command{Args: args, Cred: Self()}, Policy{})
	if err != nil {
		b.Fatal(err)
	}
	scripts := make([]*TrackScript, 100)
	for i := range scripts {
		scripts[i] = NewTrackScript(TrackOptions{Name: fmt.Sprintf("chk%d", i), Script: p, Interval: time.Second}, r, nil)
	}
	var self0, child0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &child0)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	var wg sync.WaitGroup
	for _, s := range scripts {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Run(ctx) }()
	}
	wg.Wait()
	cancel()
	wall := time.Since(start)
	var self1, child1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &child1)
	var runs, fails, skipped uint64
	for _, s := range scripts {
		st := s.Stats()
		runs += st.Runs
		fails += st.Failures
		skipped += st.Skipped
	}
	cpu := func(a, b syscall.Rusage) time.Duration {
		return time.Duration(b.Utime.Nano()-a.Utime.Nano()) + time.Duration(b.Stime.Nano()-a.Stime.Nano())
	}
	b.ReportMetric(100*cpu(self0, self1).Seconds()/wall.Seconds(), "vigil-cpu-%")
	b.ReportMetric(100*cpu(child0, child1).Seconds()/wall.Seconds(), "scripts-cpu-%")
	b.ReportMetric(float64(runs)/wall.Seconds(), "runs/s")
	b.ReportMetric(float64(cpu(self0, self1).Microseconds())/float64(max(runs, 1)), "vigil-µs/run")
	if fails > 0 || skipped > 0 {
		b.Logf("failures %d, skipped ticks %d", fails, skipped)
	}
}
