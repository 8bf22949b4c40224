package metrics

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/internal/status"
)

// BenchmarkCollect1000 collects a snapshot of 1,000 VRRP instances, each
// like fakeSnapshot's first (trackers, a peer, drop reasons): the work and
// allocations of one scrape, before the text encoding. Run with
// -benchmem.
func BenchmarkCollect1000(b *testing.B) {
	base := fakeSnapshot()
	s := status.Snapshot{Daemon: base.Daemon}
	for i := range 1000 {
		in := base.Instances[0]
		in.Name, in.VRID, in.SyncGroup = fmt.Sprintf("VI_%d", i), 1+i%255, ""
		s.Instances = append(s.Instances, in)
	}
	c := NewCollector((&fakeSource{snap: s}).Snapshot)
	ch := make(chan prometheus.Metric, 1024)
	b.ReportAllocs()
	for b.Loop() {
		done := make(chan int)
		go func() {
			n := 0
			for range ch {
				n++
			}
			done <- n
		}()
		c.Collect(ch)
		close(ch)
		if n := <-done; n == 0 {
			b.Fatal("no metrics collected")
		}
		ch = make(chan prometheus.Metric, 1024)
	}
}
