package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
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
// the kernel's accept queue until one closes. While every slot is taken, no
// connection is kept alive idle (idleReaper): otherwise anyone who can reach
// the port, a local user on loopback among them, could hold every slot with
// idle keep-alive connections, one request each per IdleTimeout, and lock
// the status page and Prometheus out for good.
func ServeHandler(ctx context.Context, ln net.Listener, h http.Handler) error {
	return ServeLimited(ctx, ln, NewServer(h))
}

// ServeLimited serves srv on ln until ctx is done with ServeHandler's
// bounds on connections (MaxConns, idle ones yielding) and on requests
// (MaxInFlight at once, a further one waiting up to 5 s, then 503), and
// srv's own timeouts: for a listener whose handler needs other timeouts
// than NewServer's (the profiler streams a trace for as long as asked). It
// sets srv's ConnState and wraps its Handler.
func ServeLimited(ctx context.Context, ln net.Listener, srv *http.Server) error {
	srv.Handler = limitInFlight(srv.Handler, MaxInFlight, inFlightWait)
	srv.ConnState = newIdleReaper(MaxConns).state
	return api.ServeHTTP(ctx, netutil.LimitListener(ln, MaxConns), srv)
}

// idleReaper counts a server's open connections and closes the idle ones
// when they reach max: those that are idle then, and any that turns idle
// while they stay there. A closed keep-alive connection costs a client a new
// one; a slot held by an idle connection costs the next client its
// request.
//
// Concurrency: state is called by the server from its connections'
// goroutines.
type idleReaper struct {
	max  int
	mu   sync.Mutex
	open int
	idle map[net.Conn]struct{}
}

func newIdleReaper(max int) *idleReaper {
	return &idleReaper{max: max, idle: map[net.Conn]struct{}{}}
}

// state is the server's ConnState hook.
func (r *idleReaper) state(c net.Conn, s http.ConnState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch s {
	case http.StateNew:
		r.open++
		if r.open >= r.max {
			for ic := range r.idle {
				ic.Close()
				delete(r.idle, ic)
			}
		}
	case http.StateActive:
		delete(r.idle, c)
	case http.StateIdle:
		if r.open >= r.max {
			c.Close()
			return
		}
		r.idle[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		r.open--
		delete(r.idle, c)
	}
}

// MaxConns bounds the connections a network listener serves at once: a
// few browsers on the status page and a Prometheus server or two need far
// fewer, and a client opening connections without end gets no more
// goroutines and file descriptors than this.
const MaxConns = 64

// MaxInFlight bounds the requests a network listener answers at once. A
// /metrics scrape or a /v1/status of a large configuration builds a whole
// snapshot (1,000 instances: about 40 MB of garbage and 130 ms of CPU), so
// MaxConns clients asking at once would multiply the daemon's memory; two
// Prometheus servers and a browser need no more than this.
const MaxInFlight = 2

// inFlightWait is how long a request waits for one of the MaxInFlight slots
// before it is answered 503.
const inFlightWait = 5 * time.Second

// limitInFlight runs at most n requests of h at once; a further one waits
// for a slot up to wait (or until its client gives up), then gets 503 with
// Retry-After.
func limitInFlight(h http.Handler, n int, wait time.Duration) http.Handler {
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		default:
			t := time.NewTimer(wait)
			select {
			case slots <- struct{}{}:
				t.Stop()
			case <-t.C:
				w.Header().Set("Retry-After", "1")
				http.Error(w, "vigil: busy answering other requests; try again", http.StatusServiceUnavailable)
				return
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		defer func() { <-slots }()
		h.ServeHTTP(w, r)
	})
}

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
