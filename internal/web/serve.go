package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"

	"github.com/vigil-ha/vigil/internal/api"
)

// Listen opens the status listener for an --http-listen value: ListenAddr
// completes it (a bare port binds 127.0.0.1), and when the result is not
// loopback-only CheckListen's warning goes to log.
func Listen(addr string, log *slog.Logger) (net.Listener, error) {
	addr = ListenAddr(addr)
	if w := CheckListen(addr); w != "" {
		log.Warn(w)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return ln, nil
}

// Serve serves Handler(snap) on ln until ctx is done, then shuts down and
// returns.
func Serve(ctx context.Context, ln net.Listener, snap SnapshotFunc) error {
	return ServeHandler(ctx, ln, Handler(snap))
}

// ServeHandler serves h on ln with NewServer's limits until ctx is done:
// the status page and the Prometheus metrics, both read from the network.
// At most MaxConns connections are open at once; further clients wait in
// the kernel's accept queue until one closes.
func ServeHandler(ctx context.Context, ln net.Listener, h http.Handler) error {
	return api.ServeHTTP(ctx, netutil.LimitListener(ln, MaxConns), NewServer(h))
}

// MaxConns bounds the connections a network listener serves at once: a
// few browsers on the status page and a Prometheus server or two need far
// fewer, and a client opening connections without end gets no more
// goroutines and file descriptors than this.
const MaxConns = 64

// MaxHeaderBytes bounds a request's header on the network listeners.
const MaxHeaderBytes = 16 << 10

// NewServer returns the HTTP server for a listener that anyone on the
// network may reach: every phase of a connection has a deadline (a client
// that sends slowly, reads slowly or keeps an idle connection open is cut
// off) and a request's header is bounded.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}
