package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/web"
)

// debugListen opens --debug-listen's socket. The profiler exposes the
// daemon's memory and lets a client keep it busy, so the address must be on
// loopback: "127.0.0.1:6060", "[::1]:6060", "localhost:6060", or ":6060"
// (127.0.0.1).
func debugListen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-listen %q: want HOST:PORT on loopback: %v", addr, err)
	}
	switch host {
	case "", "localhost":
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--debug-listen %q: the profiler listens on loopback only (127.0.0.1, ::1 or localhost)", addr)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), port))
	if err != nil {
		return nil, fmt.Errorf("--debug-listen: %w", err)
	}
	return ln, nil
}

// debugHandler serves Go's profiler (net/http/pprof) under /debug/pprof/:
// CPU profiles, heap and goroutine dumps, execution traces.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// serveDebug serves debugHandler on ln until ctx is done, with the status
// listener's bounds on connections and requests in flight (web.ServeLimited):
// a local client opening connections without end gets no more goroutines
// and descriptors than those. A profile or trace runs for as long as its
// client asks (?seconds=N), so there is no write timeout.
func serveDebug(ctx context.Context, ln net.Listener) error {
	return web.ServeLimited(ctx, ln, &http.Server{Handler: debugHandler(), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: web.MaxHeaderBytes})
}
