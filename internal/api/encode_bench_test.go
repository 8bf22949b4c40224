package api

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/vigil-ha/vigil/internal/status"
)

// BenchmarkWriteStatus1000 is what the daemon spends answering one status
// poll at 1,000 instances (go test -bench WriteStatus -benchmem).
func BenchmarkWriteStatus1000(b *testing.B) {
	s := status.Snapshot{Daemon: status.Daemon{Version: "bench"}}
	for i := range 1000 {
		s.Instances = append(s.Instances, status.Instance{
			Name: fmt.Sprintf("VI_%d", i), Interface: "eth0", Family: "inet", Version: 3, VRID: i%255 + 1,
			State: "MASTER", BasePriority: 100, EffectivePriority: 100,
			VIPs: []string{fmt.Sprintf("10.%d.%d.1/32", i>>8, i&255)}, VIPsHeld: true,
		})
	}
	b.ReportAllocs()
	for b.Loop() {
		writeJSON(httptest.NewRecorder(), 200, s)
	}
}
