package logsink

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gate is an output that blocks every write until opened, as a full pipe
// whose reader stalled does.
type gate struct {
	open chan struct{}
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *gate) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}

func TestStalledOutputDropsAndTells(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	s := New(g, 100, func(n uint64) []byte { return fmt.Appendf(nil, "lost %d\n", n) })
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)

	// Each write returns while the output is stuck; what exceeds the
	// budget is dropped.
	wrote := make(chan struct{})
	go func() {
		for i := range 50 {
			fmt.Fprintf(s, "line %02d\n", i) // 8 bytes
		}
		close(wrote)
	}()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a stalled output")
	}
	close(g.open)
	cancel()
	s.Close(10 * time.Second)
	fmt.Fprintf(s, "after\n") // written through once closed
	// Run holds what it took before the gate plus the queue refilled
	// meanwhile: at most two budgets' worth (2 x 12 lines) got through.
	st := s.Stats()
	if st.Dropped < 50-2*12 {
		t.Errorf("dropped %d lines, want at least %d", st.Dropped, 50-2*12)
	}
	out := g.String()
	var lines, lost uint64
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var n uint64
		switch {
		case strings.HasPrefix(l, "line "):
			lines++
		case strings.HasPrefix(l, "lost "):
			fmt.Sscanf(l, "lost %d", &n)
			lost += n
		}
	}
	if lines+st.Dropped != 50 || lost != st.Dropped || !strings.HasSuffix(out, "after\n") {
		t.Errorf("%d lines written, %d dropped, %d told lost; output:\n%s", lines, st.Dropped, lost, out)
	}
}

type broken struct{ n int }

func (b *broken) Write(p []byte) (int, error) { b.n++; return 0, syscall.EPIPE }

func TestBrokenOutputIsCounted(t *testing.T) {
	b := &broken{}
	s := New(b, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	for range 3 {
		if n, err := s.Write([]byte("x\n")); n != 2 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	cancel()
	s.Close(10 * time.Second)
	if st := s.Stats(); st.Failed != 3 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 3 failed", st)
	}
}
