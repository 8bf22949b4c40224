package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

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
	srv := &http.Server{
		Handler:           Handler(snap),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	return api.ServeHTTP(ctx, ln, srv)
}
