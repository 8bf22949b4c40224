package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-ha/vigil/internal/status"
)

func testBGP() *status.BGP {
	med := uint32(4294967294)
	return &status.BGP{RouterID: "192.0.2.1", LocalAS: 65001, Announcements: 7, Withdrawals: 3,
		Sessions: []status.BGPSession{
			{Neighbor: "192.0.2.254", RemoteAS: 65000, State: "established", Since: t0.Add(time.Minute), PrefixesSent: 2, PrefixesReceived: 5},
			{Neighbor: "192.0.2.253", RemoteAS: 65000, State: "active"},
		},
		Routes: []status.BGPRoute{
			{Prefix: "10.9.0.1/32", State: "draining", MED: &med, Communities: []string{"65535:0"}, Reason: "vigil stopping"},
			{Prefix: "10.9.0.2/32", State: "withdrawn", Reason: "virtual_server [10.9.0.2]:tcp:80 lost its quorum"},
		}}
}

func TestBGPSeries(t *testing.T) {
	src := &fakeSource{snap: fakeSnapshot()}
	_, body := scrape(t, Handler(src.Snapshot))
	for _, want := range []string{
		`vigil_bgp_session_state{neighbor="192.0.2.254",remote_as="65000",state="established"} 1`,
		`vigil_bgp_session_state{neighbor="192.0.2.254",remote_as="65000",state="idle"} 0`,
		`vigil_bgp_session_state{neighbor="192.0.2.253",remote_as="65000",state="active"} 1`,
		`vigil_bgp_session_established_timestamp_seconds{neighbor="192.0.2.254",remote_as="65000"} 1.71456486e+09`,
		`vigil_bgp_session_prefixes_sent{neighbor="192.0.2.254",remote_as="65000"} 2`,
		`vigil_bgp_session_prefixes_received{neighbor="192.0.2.254",remote_as="65000"} 5`,
		`vigil_bgp_route_state{prefix="10.9.0.1/32",state="draining"} 1`,
		`vigil_bgp_route_state{prefix="10.9.0.1/32",state="announced"} 0`,
		`vigil_bgp_route_state{prefix="10.9.0.2/32",state="withdrawn"} 1`,
		`vigil_bgp_route_changes_total{change="announce"} 7`,
		`vigil_bgp_route_changes_total{change="withdraw"} 3`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(body, `vigil_bgp_session_established_timestamp_seconds{neighbor="192.0.2.253"`) {
		t.Error("a session that is not established has an established timestamp")
	}
	problems, err := testutil.CollectAndLint(NewCollector(src.Snapshot))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("CollectAndLint: %s: %s", p.Metric, p.Text)
	}
	// Without a bgp block there is no BGP series.
	noBGP := fakeSnapshot()
	noBGP.BGP = nil
	_, body = scrape(t, Handler((&fakeSource{snap: noBGP}).Snapshot))
	if strings.Contains(body, "vigil_bgp_") {
		t.Error("BGP series without a BGP speaker")
	}
}
