package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestNodeStatusReusesOneConnection: a node's Status calls go through one
// API client, so polling a daemon reuses one kept-alive connection instead
// of leaving another open per call.
func TestNodeStatusReusesOneConnection(t *testing.T) {
	n := NewNode(Vigil, nil, "", t.TempDir())
	ln, err := net.Listen("unix", n.Socket())
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const calls = 3
	for range calls {
		if _, err := n.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d Status calls opened %d connections to the API socket, want 1", calls, got)
	}
}
