package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/internal/status"
)

// BGPSessionStates lists the BGP FSM states (RFC 4271 §8.2.2) every
// session reports a series for.
var BGPSessionStates = []string{"idle", "connect", "active", "opensent", "openconfirm", "established"}

// BGPRouteStates lists the states of an announced prefix.
var BGPRouteStates = []string{"announced", "draining", "withdrawn"}

// bgpDescs are the BGP speaker's series.
type bgpDescs struct {
	sessionState, sessionSince, prefixesSent, prefixesReceived, routeState, routeChanges *prometheus.Desc
}

func newBGPDescs(d func(name, help string, labels []string) *prometheus.Desc) bgpDescs {
	nl := []string{"neighbor", "remote_as"}
	return bgpDescs{
		sessionState:     d("bgp_session_state", "1 for the BGP session's current FSM state, 0 for the other states.", with(nl, "state")),
		sessionSince:     d("bgp_session_established_timestamp_seconds", "When the BGP session was last established, in Unix time (absent while it is not).", nl),
		prefixesSent:     d("bgp_session_prefixes_sent", "Prefixes advertised to the neighbor.", nl),
		prefixesReceived: d("bgp_session_prefixes_received", "Prefixes received from the neighbor.", nl),
		routeState:       d("bgp_route_state", "1 for the prefix's current state (announced, draining with the graceful shutdown community, withdrawn), 0 for the others.", []string{"prefix", "state"}),
		routeChanges:     d("bgp_route_changes_total", "Route announcements and withdrawals handed to the BGP speaker.", []string{"change"}),
	}
}

func (b *bgpDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{b.sessionState, b.sessionSince, b.prefixesSent, b.prefixesReceived, b.routeState, b.routeChanges}
}

func (e *emitter) bgp(d *bgpDescs, b *status.BGP) {
	if b == nil {
		return
	}
	for _, s := range b.Sessions {
		nl := []string{s.Neighbor, strconv.FormatUint(uint64(s.RemoteAS), 10)}
		e.oneHot(d.sessionState, BGPSessionStates, s.State, nl...)
		e.stamp(d.sessionSince, s.Since, nl...)
		e.gauge(d.prefixesSent, float64(s.PrefixesSent), nl...)
		e.gauge(d.prefixesReceived, float64(s.PrefixesReceived), nl...)
	}
	for _, r := range b.Routes {
		e.oneHot(d.routeState, BGPRouteStates, r.State, r.Prefix)
	}
	e.counter(d.routeChanges, b.Announcements, "announce")
	e.counter(d.routeChanges, b.Withdrawals, "withdraw")
}
