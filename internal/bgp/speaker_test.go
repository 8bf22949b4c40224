package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// receiver is a plain GoBGP server on loopback that accepts the speaker's
// session and counts what it receives (a router stand-in that needs no
// root).
type receiver struct {
	srv  *server.BgpServer
	port int
}

func startReceiver(tb testing.TB) *receiver {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	srv := server.NewBgpServer()
	go srv.Serve()
	tb.Cleanup(srv.Stop)
	ctx := context.Background()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "10.0.0.254", ListenPort: int32(port), ListenAddresses: []string{"127.0.0.1"}}}); err != nil {
		tb.Fatal(err)
	}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65001},
		Transport: &api.Transport{PassiveMode: true},
	}}); err != nil {
		tb.Fatal(err)
	}
	return &receiver{srv: srv, port: port}
}

// received is the number of prefixes the receiver holds from the speaker.
func (r *receiver) received() uint64 {
	var n uint64
	r.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		for _, af := range p.GetAfiSafis() {
			n += af.GetState().GetReceived()
		}
	})
	return n
}

func (r *receiver) waitReceived(tb testing.TB, want uint64, timeout time.Duration) time.Duration {
	start := time.Now()
	for r.received() != want {
		if time.Since(start) > timeout {
			tb.Fatalf("receiver holds %d prefixes after %v, want %d", r.received(), timeout, want)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func startSpeaker(tb testing.TB, r *receiver) *Speaker {
	tb.Helper()
	sp := NewSpeaker(SpeakerConfig{RouterID: netip.MustParseAddr("10.0.0.1"), LocalAS: 65001, Neighbors: []Neighbor{{
		Addr: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65000, Port: uint16(r.port), HoldTime: 9 * time.Second, ConnectRetry: time.Second,
	}}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	<-sp.Ready()
	start := time.Now()
	for {
		ss, _ := sp.Sessions(context.Background())
		if len(ss) == 1 && ss[0].State == "established" {
			return sp
		}
		if time.Since(start) > 30*time.Second {
			tb.Fatalf("no session after 30 s: %+v", ss)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hostRoutes(n int, phase Phase, med uint32) []Route {
	rs := make([]Route, n)
	for i := range rs {
		a := netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		rs[i] = Route{Prefix: Host(a), Phase: phase, MED: med}
	}
	return rs
}

// TestSpeakerAnnouncesAndWithdraws checks the speaker against a real BGP
// session on loopback: what Apply is given is what the peer holds.
func TestSpeakerAnnouncesAndWithdraws(t *testing.T) {
	r := startReceiver(t)
	sp := startSpeaker(t, r)
	if err := sp.Apply(hostRoutes(10, Announced, 0)); err != nil {
		t.Fatal(err)
	}
	r.waitReceived(t, 10, 10*time.Second)
	// Draining changes attributes only: the peer keeps 10 prefixes.
	drain := hostRoutes(10, Draining, 1000)
	for i := range drain {
		drain[i].Communities = []uint32{GracefulShutdown}
	}
	if err := sp.Apply(drain[6:]); err != nil {
		t.Fatal(err)
	}
	if err := sp.Apply(hostRoutes(6, Withdrawn, 0)); err != nil {
		t.Fatal(err)
	}
	r.waitReceived(t, 4, 10*time.Second)
	ss, err := sp.Sessions(context.Background())
	if err != nil || len(ss) != 1 || ss[0].Sent != 4 || ss[0].Since.IsZero() {
		t.Fatalf("sessions %+v, %v: want one established with 4 prefixes sent", ss, err)
	}
	// The drained ones carry GRACEFUL_SHUTDOWN and the worse MED.
	var gshut int
	err = r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gbgp.RF_IPv4_UC},
		func(_ gbgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				var med uint32
				var comms []uint32
				for _, a := range p.Attrs {
					switch a := a.(type) {
					case *gbgp.PathAttributeMultiExitDisc:
						med = a.Value
					case *gbgp.PathAttributeCommunities:
						comms = a.Value
					}
				}
				if med == 1000 && slices.Contains(comms, GracefulShutdown) {
					gshut++
				}
			}
		})
	if err != nil || gshut != 4 {
		t.Fatalf("peer holds %d routes with GRACEFUL_SHUTDOWN and MED 1000 (%v), want 4", gshut, err)
	}
}

// BenchmarkAnnounceWithdraw1000 announces 1,000 host routes and withdraws
// them through a real BGP session on loopback, and reports how many routes
// per second reach the peer each way.
func BenchmarkAnnounceWithdraw1000(b *testing.B) {
	const n = 1000
	r := startReceiver(b)
	sp := startSpeaker(b, r)
	up, down := hostRoutes(n, Announced, 0), hostRoutes(n, Withdrawn, 0)
	var tUp, tDown time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := sp.Apply(up); err != nil {
			b.Fatal(err)
		}
		r.waitReceived(b, n, time.Minute)
		tUp += time.Since(start)
		start = time.Now()
		if err := sp.Apply(down); err != nil {
			b.Fatal(err)
		}
		r.waitReceived(b, 0, time.Minute)
		tDown += time.Since(start)
	}
	b.ReportMetric(float64(n*b.N)/tUp.Seconds(), "announced/s")
	b.ReportMetric(float64(n*b.N)/tDown.Seconds(), "withdrawn/s")
}

// BenchmarkPlannerStep1000 is the planner's cost of one quorum change
// among 1,000 announced virtual servers.
func BenchmarkPlannerStep1000(b *testing.B) {
	var pol Policy
	for i := range 1000 {
		a := netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		pol.Sources = append(pol.Sources, Source{Kind: FromVirtualServer, Name: fmt.Sprint(i), Prefixes: []netip.Prefix{Host(a)}})
	}
	p := NewPlanner(pol)
	now := time.Now()
	for i := range 1000 {
		p.Step(now, QuorumState{VS: fmt.Sprint(i), Up: true})
	}
	b.ResetTimer()
	for i := range b.N {
		if len(p.Step(now, QuorumState{VS: "7", Up: i%2 == 1})) != 1 {
			b.Fatal("one quorum change must change one route")
		}
	}
}
