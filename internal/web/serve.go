package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
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
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("web: serve: %w", err)
	}
}
