package bgptest

import (
	"testing"
	"time"
)

// BenchAnnounceWithdraw times b.N rounds of announce (until r holds n
// prefixes) then withdraw (until r holds none), and reports the routes
// per second reaching r each way.
func BenchAnnounceWithdraw(b *testing.B, r *Receiver, n int, announce, withdraw func() error) {
	b.Helper()
	var tUp, tDown time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := announce(); err != nil {
			b.Fatal(err)
		}
		r.WaitReceived(b, uint64(n), time.Minute)
		tUp += time.Since(start)
		start = time.Now()
		if err := withdraw(); err != nil {
			b.Fatal(err)
		}
		r.WaitReceived(b, 0, time.Minute)
		tDown += time.Since(start)
	}
	b.ReportMetric(float64(n*b.N)/tUp.Seconds(), "announced/s")
	b.ReportMetric(float64(n*b.N)/tDown.Seconds(), "withdrawn/s")
}
