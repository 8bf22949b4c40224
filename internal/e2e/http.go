package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// Server is a tiny HTTP server inside a lab host that answers every request
// with the host's name. It listens on the wildcard address, so it answers on
// the VIP whenever the host holds it. Keep-alive is off.
type Server struct {
	srv *http.Server
	ln  net.Listener
	err chan error
}

// StartServer listens on port (both families) inside h.
func StartServer(h *lab.Host, port int) (*Server, error) {
	s := &Server{err: make(chan error, 1)}
	err := h.Do(func() error {
		var err error
		s.ln, err = net.Listen("tcp", ":"+strconv.Itoa(port))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("e2e: %s: listen: %w", h.Name(), err)
	}
	name := h.Name()
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, name)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	s.srv.SetKeepAlivesEnabled(false)
	go func() { s.err <- s.srv.Serve(s.ln) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error {
	err := s.srv.Close()
	if e := <-s.err; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// Get does one HTTP/1.0 GET on a new connection and returns the body. It
// must be called on a thread inside the client's namespace (see Poller):
// it creates its socket on the calling goroutine.
func Get(ctx context.Context, addr netip.AddrPort) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: vip\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s", resp.Status)
	}
	return string(b), nil
}

// Request is one poll of a Poller.
type Request struct {
	At, End time.Time
	Body    string // the answering host's name
	Err     error
}

// OK reports whether the request was answered.
func (r Request) OK() bool { return r.Err == nil }

// Poller sends a request to Addr every Every from inside a lab host, each
// on a new connection, until Stop.
type Poller struct {
	Host    *lab.Host
	Addr    netip.AddrPort
	Every   time.Duration
	Timeout time.Duration // per request; 1s when zero

	stop chan struct{}
	done chan error
	reqs []Request
	// OnAnswer, if set, is called (on the polling thread) after each
	// request.
	OnAnswer func(Request)
}

// Start begins polling. The polling loop runs on a thread locked inside the
// host's namespace, so each connection is the client's.
func (p *Poller) Start() {
	p.stop, p.done = make(chan struct{}), make(chan error, 1)
	if p.Timeout == 0 {
		p.Timeout = time.Second
	}
	started := make(chan struct{})
	go func() {
		p.done <- p.Host.Do(func() error {
			close(started)
			next := time.Now()
			for {
				at := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
				body, err := Get(ctx, p.Addr)
				cancel()
				r := Request{At: at, End: time.Now(), Body: body, Err: err}
				p.reqs = append(p.reqs, r)
				if p.OnAnswer != nil {
					p.OnAnswer(r)
				}
				next = next.Add(p.Every)
				if d := time.Until(next); d > 0 {
					select {
					case <-p.stop:
						return nil
					case <-time.After(d):
					}
				} else {
					next = time.Now()
					select {
					case <-p.stop:
						return nil
					default:
					}
				}
			}
		})
	}()
	<-started
}

// Stop ends polling and returns every request made.
func (p *Poller) Stop() ([]Request, error) {
	close(p.stop)
	err := <-p.done
	return p.reqs, err
}

// PollStats summarises a Poller's requests.
type PollStats struct {
	Requests, Failed int
	// By counts answers per answering host.
	By map[string]int
	// MaxUnanswered is the longest time between the start of a failed
	// request following an answer and the end of the next answered one
	// (how long a client saw no service).
	MaxUnanswered time.Duration
	// Errors lists distinct error texts with their counts.
	Errors map[string]int
}

// SummarisePolls computes PollStats.
func SummarisePolls(reqs []Request) PollStats {
	st := PollStats{By: map[string]int{}, Errors: map[string]int{}}
	var firstFail time.Time
	for _, r := range reqs {
		st.Requests++
		if !r.OK() {
			st.Failed++
			msg := r.Err.Error()
			if i := strings.LastIndex(msg, ": "); i >= 0 {
				msg = msg[i+2:]
			}
			st.Errors[msg]++
			if firstFail.IsZero() {
				firstFail = r.At
			}
			continue
		}
		st.By[r.Body]++
		if !firstFail.IsZero() {
			st.MaxUnanswered = max(st.MaxUnanswered, r.End.Sub(firstFail))
			firstFail = time.Time{}
		}
	}
	return st
}

func (s PollStats) String() string {
	return fmt.Sprintf("%d requests, %d failed, answered by %v, longest unanswered %v, errors %v",
		s.Requests, s.Failed, s.By, s.MaxUnanswered.Round(time.Millisecond), s.Errors)
}
