package status

import (
	"strings"
	"testing"
	"time"
)

func TestWriteTextShowsBGP(t *testing.T) {
	med := uint32(0)
	s := Snapshot{Daemon: Daemon{Version: "dev", Started: time.Now()}, BGP: &BGP{
		RouterID: "10.1.0.11", LocalAS: 65001, Announcements: 3, Withdrawals: 1,
		Sessions: []BGPSession{{Neighbor: "10.1.0.1", RemoteAS: 65000, State: "established", Since: time.Now().Add(-time.Minute),
			PrefixesSent: 2, HoldTime: Duration(3 * time.Second), BFD: "up"}},
		Routes: []BGPRoute{
			{Prefix: "10.9.0.1/32", State: "announced", MED: &med, Reason: "vrrp_instance VI_1 is MASTER"},
			{Prefix: "10.9.0.2/32", State: "withdrawn", Reason: "virtual_server [10.9.0.2]:tcp:8080 lost its quorum"},
		}}}
	var b strings.Builder
	if err := WriteText(&b, s); err != nil {
		t.Fatal(err)
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{
		"bgp router id 10.1.0.11 AS 65001 3 announcements, 1 withdrawals",
		"10.1.0.1 65000 established 1m0s 2 0 3s up -",
		"10.9.0.1/32 announced 0 - vrrp_instance VI_1 is MASTER",
		"10.9.0.2/32 withdrawn - - virtual_server [10.9.0.2]:tcp:8080 lost its quorum",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
