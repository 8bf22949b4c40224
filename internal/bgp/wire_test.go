package bgp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBackend records what Serve hands it.
type fakeBackend struct {
	ready chan struct{}
	mu    sync.Mutex
	calls []int // routes per Apply
	ns    []Neighbor
	ended chan struct{}
}

func (f *fakeBackend) Run(ctx context.Context) error {
	close(f.ready)
	<-ctx.Done()
	close(f.ended)
	return nil
}
func (f *fakeBackend) Ready() <-chan struct{} { return f.ready }
func (f *fakeBackend) SetNeighbors(_ context.Context, ns []Neighbor) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ns = ns
	return []string{fmt.Sprintf("+ bgp neighbor %s", ns[0].Addr)}, nil
}
func (f *fakeBackend) Apply(rs []Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, len(rs))
	if len(rs) > 0 && rs[0].MED == 666 {
		return errors.New("bgp: announce: refused")
	}
	return nil
}
func (f *fakeBackend) Sessions(context.Context) ([]Session, error) {
	return []Session{{Neighbor: netip.MustParseAddr("192.0.2.1"), State: "established", Sent: 3, HoldTime: 3 * time.Second}}, nil
}

// serve runs Serve on one end of a pipe and returns a conn on the other.
func serve(t *testing.T) (*conn, *fakeBackend, chan error) {
	t.Helper()
	a, b := net.Pipe()
	fb := &fakeBackend{ready: make(chan struct{}), ended: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- Serve(context.Background(), b, func(SpeakerConfig) Backend { return fb }, nil, nil) }()
	c := newConn(a)
	go c.readLoop()
	t.Cleanup(c.close)
	return c, fb, served
}

func TestServeAnswersEachRequest(t *testing.T) {
	c, fb, served := serve(t)
	ctx := context.Background()
	cfg := SpeakerConfig{RouterID: netip.MustParseAddr("10.0.0.1"), LocalAS: 65001}
	if _, err := c.call(ctx, request{Op: opStart, Version: protocolVersion, Config: &cfg}); err != nil {
		t.Fatal(err)
	}
	// Apply goes in messages of at most applyChunk routes.
	rs := make([]Route, 2*applyChunk+500)
	for i := range rs {
		rs[i] = Route{Prefix: Host(netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})), Phase: Announced}
	}
	if err := c.apply(ctx, rs); err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	if got := fmt.Sprint(fb.calls); got != fmt.Sprint([]int{applyChunk, applyChunk, 500}) {
		t.Errorf("Apply calls %s", got)
	}
	fb.mu.Unlock()
	// The backend's error comes back as the call's.
	if err := c.apply(ctx, []Route{{Prefix: rs[0].Prefix, Phase: Announced, MED: 666}}); err == nil || err.Error() != "bgp: announce: refused" {
		t.Errorf("apply error %v", err)
	}
	resp, err := c.call(ctx, request{Op: opNeighbors, Neighbors: []Neighbor{{Addr: netip.MustParseAddr("192.0.2.1"), RemoteAS: 65000, HoldTime: 3 * time.Second}}})
	if err != nil || len(resp.Changes) != 1 || resp.Changes[0] != "+ bgp neighbor 192.0.2.1" || fb.ns[0].HoldTime != 3*time.Second {
		t.Errorf("neighbors: %+v %v", resp, err)
	}
	resp, err = c.call(ctx, request{Op: opSessions})
	if err != nil || len(resp.Sessions) != 1 || resp.Sessions[0].Sent != 3 || resp.Sessions[0].HoldTime != 3*time.Second {
		t.Errorf("sessions: %+v %v", resp, err)
	}
	if _, err := c.call(ctx, request{Op: "reboot"}); err == nil || !strings.Contains(err.Error(), `unknown request "reboot"`) {
		t.Errorf("unknown op: %v", err)
	}
	// EOF stops the backend and Serve.
	c.close()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return at EOF")
	}
	select {
	case <-fb.ended:
	default:
		t.Error("the backend still runs")
	}
}

func TestServeRefusesOtherBuilds(t *testing.T) {
	c, _, served := serve(t)
	cfg := SpeakerConfig{}
	_, err := c.call(context.Background(), request{Op: opStart, Version: protocolVersion + 1, Config: &cfg})
	if err == nil || !strings.Contains(err.Error(), "install vigil and vigil-bgp from one build") {
		t.Errorf("start from another build: %v", err)
	}
	if err := <-served; err == nil {
		t.Error("Serve went on")
	}
}

func TestServeRefusesOversizedMessages(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	served := make(chan error, 1)
	go func() { served <- Serve(context.Background(), b, nil, nil, nil) }()
	go func() { a.Write(append(bytes.Repeat([]byte("x"), maxMessage+2), '\n')) }()
	select {
	case err := <-served:
		if err == nil || !strings.Contains(err.Error(), "longer than") {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve read on")
	}
}

func TestForwardLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	in := strings.Join([]string{
		`{"time":"2026-01-01T00:00:00Z","level":"WARN","msg":"Peer Down","Key":"192.0.2.1","component":"gobgp"}`,
		`{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"bgp speaker running","neighbors":2}`,
		`panic: oops`,
		`{"level":"DEBUG","msg":"` + strings.Repeat("y", 2*maxLogLine) + `"}`,
		`{"level":"ERROR","msg":"after the long one"}`,
	}, "\n") + "\n"
	forwardLogs(strings.NewReader(in), log, 42)
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=WARN msg="Peer Down" Key=192.0.2.1 component=gobgp`,
		`level=INFO msg="bgp speaker running" component=vigil-bgp neighbors=2`,
		`level=WARN msg="panic: oops" component=vigil-bgp pid=42`,
		`level=WARN msg="{\"level\":\"DEBUG\",\"msg\":\"yyyy`,
		`level=ERROR msg="after the long one" component=vigil-bgp`,
	}
	if len(got) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d: %q, want %q", i, got[i][:min(len(got[i]), 200)], want[i])
		}
	}
	if len(got[3]) > maxLogLine+200 {
		t.Errorf("a long line was logged whole (%d bytes)", len(got[3]))
	}
}
