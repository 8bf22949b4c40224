package gobgp

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/vigil-ha/vigil/internal/bgp"
	"github.com/vigil-ha/vigil/internal/bgp/bgptest"
)

type receiver = bgptest.Receiver

func startReceiver(tb testing.TB) *receiver { return bgptest.StartReceiver(tb) }

func startSpeaker(tb testing.TB, r *receiver) *Speaker {
	tb.Helper()
	return startSpeakerMax(tb, r, 0)
}

// startSpeakerMax starts a speaker peering with r, accepting at most
// maxReceived prefixes from it (0: the default), and waits for the session.
func startSpeakerMax(tb testing.TB, r *receiver, maxReceived uint32) *Speaker {
	tb.Helper()
	sp := NewSpeaker(bgp.SpeakerConfig{RouterID: netip.MustParseAddr("10.0.0.1"), LocalAS: 65001, MaxReceived: maxReceived, Neighbors: []bgp.Neighbor{{
		Addr: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65000, Port: uint16(r.Port), HoldTime: 9 * time.Second, ConnectRetry: time.Second,
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

func hostRoutes(n int, phase bgp.Phase, med uint32) []bgp.Route {
	rs := make([]bgp.Route, n)
	for i := range rs {
		a := netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		rs[i] = bgp.Route{Prefix: bgp.Host(a), Phase: phase, MED: med}
	}
	return rs
}

// TestSpeakerAnnouncesAndWithdraws checks the speaker against a real BGP
// session on loopback: what Apply is given is what the peer holds.
func TestSpeakerAnnouncesAndWithdraws(t *testing.T) {
	r := startReceiver(t)
	sp := startSpeaker(t, r)
	if err := sp.Apply(hostRoutes(10, bgp.Announced, 0)); err != nil {
		t.Fatal(err)
	}
	r.WaitReceived(t, 10, 10*time.Second)
	// Draining changes attributes only: the peer keeps 10 prefixes.
	drain := hostRoutes(10, bgp.Draining, 1000)
	for i := range drain {
		drain[i].Communities = []uint32{bgp.GracefulShutdown}
	}
	if err := sp.Apply(drain[6:]); err != nil {
		t.Fatal(err)
	}
	if err := sp.Apply(hostRoutes(6, bgp.Withdrawn, 0)); err != nil {
		t.Fatal(err)
	}
	r.WaitReceived(t, 4, 10*time.Second)
	ss, err := sp.Sessions(context.Background())
	if err != nil || len(ss) != 1 || ss[0].Sent != 4 || ss[0].Since.IsZero() {
		t.Fatalf("sessions %+v, %v: want one established with 4 prefixes sent", ss, err)
	}
	// The drained ones carry GRACEFUL_SHUTDOWN and the worse MED.
	var gshut int
	err = r.Srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gbgp.RF_IPv4_UC},
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
				if med == 1000 && slices.Contains(comms, bgp.GracefulShutdown) {
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
	up, down := hostRoutes(n, bgp.Announced, 0), hostRoutes(n, bgp.Withdrawn, 0)
	bgptest.BenchAnnounceWithdraw(b, r, n, func() error { return sp.Apply(up) }, func() error { return sp.Apply(down) })
}

// records counts the log records of one message.
type records struct {
	slog.Handler
	mu  sync.Mutex
	msg string
	n   int
}

func (h *records) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	if strings.HasPrefix(r.Message, h.msg) {
		h.n++
	}
	h.mu.Unlock()
	return nil
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }

func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h *records) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// TestSpeakerWrongRemoteAS configures a remote_as the peer does not have:
// the session's last error says so (it was empty: GoBGP's ListPeer keeps
// no reason for an OPEN refused before the session was up), and GoBGP's
// record of the refusal is logged once, not at every retry.
func TestSpeakerWrongRemoteAS(t *testing.T) {
	r := startReceiver(t)
	h := &records{Handler: slog.DiscardHandler, msg: "sent notification"}
	sp := NewSpeaker(bgp.SpeakerConfig{RouterID: netip.MustParseAddr("10.0.0.1"), LocalAS: 65001, Neighbors: []bgp.Neighbor{{
		Addr: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65099, Port: uint16(r.Port), HoldTime: 9 * time.Second, ConnectRetry: time.Second,
	}}}, slog.New(h))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-sp.Ready()
	start := time.Now()
	for {
		ss, err := sp.Sessions(context.Background())
		if err == nil && len(ss) == 1 && strings.Contains(ss[0].LastError, "bad peer as") && strings.Contains(ss[0].LastError, "remote_as") {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("sessions after 20 s: %+v, %v; want a last error naming the bad peer AS", ss, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// One more attempt at least (connect retry 1 s), one log record.
	time.Sleep(1500 * time.Millisecond)
	if n := h.count(); n != 1 {
		t.Errorf("the refusal was logged %d times, want once", n)
	}
}
