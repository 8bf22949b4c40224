package procwatch

import (
	osexec "os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkExitLatency measures, for a tracked process, the time from
// kill(pid, SIGKILL) to the Watcher's quorum-lost callback: signal delivery,
// process teardown, the kernel's exit event, and vigil's handling. It
// reports the median, 90th and 99th percentiles and the maximum.
//
//	go test -run '^$' -bench ExitLatency -benchtime 200x ./internal/procwatch/
func BenchmarkExitLatency(b *testing.B) {
	requireRoot(b)
	bin, comm := uniqueSleep(b)
	_, ch := startWatcher(b, []Spec{NewSpec("svc", comm)})
	expectChange(b, ch, Change{"svc", false})
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := osexec.Command(bin, "600")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		expectChange(b, ch, Change{"svc", true})
		t0 := time.Now()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		got := expectChange(b, ch, Change{"svc", false})
		lat = append(lat, got[0].at.Sub(t0))
		_ = cmd.Wait()
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.9), "p90-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
