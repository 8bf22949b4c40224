package bgp

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestRuntimeAnnouncesAndDrains runs the runtime against a GoBGP peer on
// loopback: a MASTER instance's addresses reach the peer, and Shutdown
// returns only after the graceful-shutdown delay, with nothing left at the
// peer.
func TestRuntimeAnnouncesAndDrains(t *testing.T) {
	r := startReceiver(t)
	const delay = 300 * time.Millisecond
	rt := New(Config{
		Speaker: SpeakerConfig{RouterID: netip.MustParseAddr("10.0.0.1"), LocalAS: 65001, Neighbors: []Neighbor{{
			Addr: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65000, Port: uint16(r.port), HoldTime: 9 * time.Second, ConnectRetry: time.Second,
		}}},
		Policy: Policy{ShutdownDelay: delay, ShutdownMED: 1000, Sources: []Source{
			{Kind: FromVRRP, Name: "VI_1", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/32"), netip.MustParsePrefix("10.9.0.3/32")}},
		}},
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() { cancel(); <-done }()

	rt.InstanceState("VI_1", "BACKUP")
	rt.InstanceState("VI_1", "MASTER")
	r.waitReceived(t, 2, 30*time.Second)
	st, err := rt.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Routes) != 2 || st.Routes[0].State != "announced" || st.Announcements != 2 {
		t.Fatalf("status %+v", st)
	}
	start := time.Now()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := rt.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("Shutdown returned after %v, before the %v delay", took, delay)
	}
	r.waitReceived(t, 0, 10*time.Second)
	// Stopped for good: a later MASTER announces nothing.
	rt.InstanceState("VI_1", "MASTER")
	time.Sleep(100 * time.Millisecond)
	if n := r.received(); n != 0 {
		t.Errorf("peer holds %d prefixes after the stop", n)
	}
}
