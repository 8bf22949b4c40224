package web

import (
	"time"

	"github.com/vigil-ha/vigil/internal/status"
)

func sampleBGP(now time.Time) *status.BGP {
	med := uint32(4294967294)
	return &status.BGP{RouterID: "10.1.0.11", LocalAS: 65001, Announcements: 5, Withdrawals: 1,
		Sessions: []status.BGPSession{
			{Neighbor: "10.1.0.1", RemoteAS: 65000, State: "established", Since: now.Add(-time.Hour), PrefixesSent: 1, HoldTime: status.Duration(3 * time.Second), BFD: "up"},
			{Neighbor: "10.1.0.2", RemoteAS: 65000, State: "active", LastError: "connection refused"},
		},
		Routes: []status.BGPRoute{
			{Prefix: "10.9.0.1/32", State: "draining", MED: &med, Communities: []string{"65535:0"}, Reason: "vrrp_instance VI_1 is BACKUP; graceful shutdown", Since: now, Until: now.Add(5 * time.Second)},
			{Prefix: "10.9.0.2/32", State: "withdrawn", Reason: "virtual_server [10.9.0.2]:tcp:80 lost its quorum", Since: now.Add(-time.Minute)},
		}}
}
