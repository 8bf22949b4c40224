// Package bgptest is a BGP peer for tests: a plain GoBGP server on
// loopback that accepts a speaker's session and counts what it receives
// (a router stand-in that needs no root). Only tests import it.
package bgptest

import (
	"context"
	"net"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Receiver is the peer: AS 65000, passive, accepting 127.0.0.1 as AS
// 65001 on Port.
type Receiver struct {
	Srv  *server.BgpServer
	Port int
}

// StartReceiver starts a receiver, stopped when the test ends.
func StartReceiver(tb testing.TB) *Receiver {
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
	return &Receiver{Srv: srv, Port: port}
}

// Received is the number of prefixes the receiver holds from the speaker.
func (r *Receiver) Received() uint64 {
	var n uint64
	r.Srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		for _, af := range p.GetAfiSafis() {
			n += af.GetState().GetReceived()
		}
	})
	return n
}

// Established reports whether the speaker's session is up.
func (r *Receiver) Established() bool {
	up := false
	r.Srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		up = up || p.GetState().GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED
	})
	return up
}

// Since is when the speaker's session was last established (zero when
// it is not).
func (r *Receiver) Since() time.Time {
	var t time.Time
	r.Srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetState().GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED && p.GetTimers().GetState().GetUptime() != nil {
			t = p.GetTimers().GetState().GetUptime().AsTime()
		}
	})
	return t
}

// WaitReceived waits until the receiver holds want prefixes, failing
// after timeout, and returns how long it waited.
func (r *Receiver) WaitReceived(tb testing.TB, want uint64, timeout time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	for r.Received() != want {
		if time.Since(start) > timeout {
			tb.Fatalf("receiver holds %d prefixes after %v, want %d", r.Received(), timeout, want)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}
