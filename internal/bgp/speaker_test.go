package bgp

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/bgp/bgptest"
	"github.com/vigil-ha/vigil/internal/sched"
)

// syncBuffer is a log sink read while written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSpeakerRestartsItsHelper runs the speaker's vigil-bgp helper against
// a GoBGP peer on loopback: kill -9 of the helper is logged, a new helper
// starts, opens a new session and announces the routes again; while none
// runs the neighbours show idle; the end of Run stops the helper, and the
// peer's session closes.
func TestSpeakerRestartsItsHelper(t *testing.T) {
	r := startReceiver(t)
	var logs syncBuffer
	sp := NewSpeaker(SpeakerConfig{RouterID: netip.MustParseAddr("10.0.0.1"), LocalAS: 65001, Neighbors: []Neighbor{{
		Addr: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65000, Port: uint16(r.port), HoldTime: 90 * time.Second, ConnectRetry: time.Second,
	}}}, "", sched.Policy{}, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-sp.Ready()
	if err := sp.Apply([]Route{{Prefix: netip.MustParsePrefix("10.9.0.1/32"), Phase: Announced}, {Prefix: netip.MustParsePrefix("10.9.0.2/32"), Phase: Announced}}); err != nil {
		t.Fatal(err)
	}
	r.waitReceived(t, 2, 30*time.Second)
	// A withdrawn route is not announced again by the next helper.
	if err := sp.Apply([]Route{{Prefix: netip.MustParsePrefix("10.9.0.2/32"), Phase: Withdrawn}}); err != nil {
		t.Fatal(err)
	}
	r.waitReceived(t, 1, 30*time.Second)
	since, pid := r.Since(), sp.PID()
	if pid == 0 {
		t.Fatal("no helper pid")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the death to be logged", func() bool { return strings.Contains(logs.String(), "the vigil-bgp helper died; restarting it") })
	waitUntil(t, "a new helper's session", func() bool { s := r.Since(); return !s.IsZero() && s.After(since) && sp.PID() != 0 && sp.PID() != pid })
	r.waitReceived(t, 1, 30*time.Second)
	ss, err := sp.Sessions(context.Background())
	if err != nil || len(ss) != 1 || ss[0].State != "established" {
		t.Errorf("sessions after the restart: %+v, %v", ss, err)
	}
	// No helper: the neighbours are reported idle, with why.
	cur := sp.PID()
	sp.detach()
	if ss, _ := sp.Sessions(context.Background()); len(ss) != 1 || ss[0].State != "idle" || !strings.Contains(ss[0].LastError, "not running") {
		t.Errorf("sessions without a helper: %+v", ss)
	}
	if err := sp.Apply(nil); err == nil {
		t.Error("Apply without a helper succeeded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	done <- nil // for the deferred receive
	if syscall.Kill(cur, 0) == nil {
		t.Errorf("helper %d still runs after Run returned", cur)
	}
	waitUntil(t, "the peer's session to close", func() bool { return !r.Established() })
}

func TestHelperPolicy(t *testing.T) {
	for _, c := range []struct{ daemon, helper sched.Policy }{
		{sched.Policy{}, sched.Policy{}},
		{sched.Policy{Nice: -5, LockMemory: true}, sched.Policy{Nice: -5, LockMemory: true}},
		{sched.Policy{RTPriority: 50, LockMemory: true}, sched.Policy{RTPriority: 49, LockMemory: true}},
		{sched.Policy{RTPriority: 1}, sched.Policy{RTPriority: 1}},
	} {
		if got := HelperPolicy(c.daemon); got != c.helper {
			t.Errorf("HelperPolicy(%s) = %s, want %s", c.daemon, got, c.helper)
		}
	}
}

// BenchmarkAnnounceWithdraw1000 is package gobgp's benchmark of the same
// name through the helper: 1,000 host routes announced and withdrawn over
// the socket and a real BGP session on loopback, in routes per second
// reaching the peer each way.
func BenchmarkAnnounceWithdraw1000(b *testing.B) {
	const n = 1000
	r := startReceiver(b)
	sp := NewSpeaker(SpeakerConfig{RouterID: netip.MustParseAddr("10.0.0.1"), LocalAS: 65001, Neighbors: []Neighbor{{
		Addr: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65000, Port: uint16(r.port), HoldTime: 9 * time.Second, ConnectRetry: time.Second,
	}}}, "", sched.Policy{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-sp.Ready()
	for !r.Established() {
		time.Sleep(10 * time.Millisecond)
	}
	up, down := make([]Route, n), make([]Route, n)
	for i := range up {
		p := Host(netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}))
		up[i], down[i] = Route{Prefix: p, Phase: Announced}, Route{Prefix: p, Phase: Withdrawn}
	}
	bgptest.BenchAnnounceWithdraw(b, r.Receiver, n, func() error { return sp.Apply(up) }, func() error { return sp.Apply(down) })
}
