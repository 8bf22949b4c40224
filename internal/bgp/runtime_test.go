package bgp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
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

// TestRuntimeReconfigure applies reloads to a running runtime against a
// GoBGP peer on loopback: a new MED is sent on the same session, a
// removed neighbour's session closes and its routes leave the peer, a new
// router id restarts the server (logged in the changes), and a neighbour
// added to it gets the routes again.
func TestRuntimeReconfigure(t *testing.T) {
	r := startReceiver(t)
	nb := Neighbor{Addr: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65000, Port: uint16(r.port), HoldTime: 9 * time.Second, ConnectRetry: time.Second}
	cfg := Config{
		Speaker: SpeakerConfig{RouterID: netip.MustParseAddr("10.0.0.1"), LocalAS: 65001, Neighbors: []Neighbor{nb}},
		Policy: Policy{MED: 10, Sources: []Source{
			{Kind: FromVRRP, Name: "VI_1", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/32")}},
		}},
	}
	rt := New(cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() { cancel(); <-done }()
	rt.InstanceState("VI_1", "MASTER")
	r.waitReceived(t, 1, 30*time.Second)

	reconf := func(c Config, want string) {
		t.Helper()
		changes, err := rt.Reconfigure(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changes, "; "); !strings.Contains(got, want) {
			t.Fatalf("changes %q, want %q", got, want)
		}
	}
	if changes, err := rt.Reconfigure(context.Background(), cfg); err != nil || len(changes) != 0 {
		t.Fatalf("an unchanged configuration: %q, %v", changes, err)
	}
	med := cfg
	med.Policy.MED = 20
	reconf(med, "~ bgp announcements")
	waitMED(t, r, 20)

	// GoBGP's StartBgp writes package variables its other servers read
	// (table.SelectionOptions): the new server starts while the receiver
	// is idle, without neighbours, then gets its neighbour (the restart
	// with a live session: TestBGPReloadNeighbors against BIRD).
	none := med
	none.Speaker.Neighbors = nil
	reconf(none, "- bgp neighbor 127.0.0.1")
	r.waitReceived(t, 0, 30*time.Second)
	time.Sleep(100 * time.Millisecond)
	rid := none
	rid.Policy.MED = 20
	rid.Speaker.RouterID = netip.MustParseAddr("10.0.0.2")
	reconf(rid, "~ bgp speaker: router id 10.0.0.1 -> 10.0.0.2")
	rid.Speaker.Neighbors = []Neighbor{nb}
	reconf(rid, "+ bgp neighbor 127.0.0.1")
	r.waitReceived(t, 1, 30*time.Second)
	st, err := rt.Status(context.Background())
	if err != nil || st.RouterID != "10.0.0.2" {
		t.Fatalf("status after the restart: %+v, %v", st, err)
	}
}

// waitMED waits until the receiver's path carries the MED.
func waitMED(t *testing.T, r *receiver, med uint32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []uint32
		_ = r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gbgp.RF_IPv4_UC}, func(_ gbgp.NLRI, ps []*apiutil.Path) {
			for _, p := range ps {
				for _, a := range p.Attrs {
					if m, ok := a.(*gbgp.PathAttributeMultiExitDisc); ok {
						got = append(got, m.Value)
					}
				}
			}
		})
		if slices.Contains(got, med) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the peer's paths carry MEDs %v, want %d", got, med)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
