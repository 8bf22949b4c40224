package gobgp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"

	"github.com/vigil-ha/vigil/internal/bgp"
)

// A neighbour that sends more prefixes than the speaker accepts (a router
// exporting its table to vigil, or a hostile peer) gets its session closed
// instead of filling the helper's memory: GoBGP keeps every received path
// in its Adj-RIB-In, whatever the import policy.
func TestSpeakerLimitsReceivedPrefixes(t *testing.T) {
	const limit, sent = 20, 50
	r := startReceiver(t)
	sp := startSpeakerMax(t, r, limit)

	var paths []*apiutil.Path
	for _, rt := range hostRoutes(sent, bgp.Announced, 0) {
		p, err := toPath(rt)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if _, err := r.Srv.AddPath(apiutil.AddPathRequest{Paths: paths}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		ss, err := sp.Sessions(context.Background())
		if err != nil || len(ss) != 1 {
			t.Fatalf("sessions %+v, %v", ss, err)
		}
		if ss[0].Received > limit {
			t.Fatalf("the speaker holds %d prefixes from the neighbour, over its limit %d", ss[0].Received, limit)
		}
		if strings.Contains(ss[0].LastError, "more prefixes than the speaker accepts") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session was not closed after the neighbour sent %d prefixes (limit %d): %+v", sent, limit, ss[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
