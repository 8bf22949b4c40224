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
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

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
	body, _, err := get(ctx, addr, 0)
	return body, err
}

// request is what get sends.
const request = "GET / HTTP/1.0\r\nHost: vip\r\n\r\n"

// get is Get whose answer, once connected, may take answer (ctx's
// deadline when zero). delivered reports, for a failed request, whether
// the request had been sent and every byte of it acknowledged (see
// Request.Delivered).
func get(ctx context.Context, addr netip.AddrPort, answer time.Duration) (body string, delivered bool, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return "", false, err
	}
	defer c.Close()
	defer func() {
		if err != nil {
			delivered = acked(c, len(request))
		}
	}()
	if answer > 0 {
		c.SetDeadline(time.Now().Add(answer))
	} else if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, request); err != nil {
		return "", false, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", false, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", false, fmt.Errorf("HTTP %s", resp.Status)
	}
	return string(b), false, nil
}

// acked reports whether the peer of c acknowledged n bytes and nothing
// sent is waiting for an acknowledgement (TCP_INFO).
func acked(c net.Conn, n int) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	var info *unix.TCPInfo
	rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	return err == nil && info != nil && info.Unacked == 0 && info.Bytes_acked >= uint64(n)
}

// Request is one poll of a Poller.
type Request struct {
	At, End time.Time
	Body    string // the answering host's name
	Err     error
	// Delivered: the request failed after it was sent on an established
	// connection and acknowledged in full; the node that accepted the
	// connection had it, and its answer was what got lost.
	Delivered bool
}

// OK reports whether the request was answered.
func (r Request) OK() bool { return r.Err == nil }

// Failure classes of a request made while a VIP moves.
const (
	// FailGap: the request timed out, or was reset only after a
	// retransmission timeout (≥ 150 ms): some of its packets reached a node
	// that did not hold the VIP (any more). A make-before-break handover
	// must not produce these.
	FailGap = "gap"
	// FailMoved: the connection was open while the client's ARP entry
	// moved to the new master, which knows nothing of it. Either the
	// client's next packet reached the new master, which reset the
	// connection within 150 ms; or the request had been delivered to the
	// old master and acknowledged (Delivered), and the old master's server
	// answered only after the old master released the VIP, so the answer
	// could not leave and the request timed out. A connection that
	// straddles the gratuitous ARP can break whatever the VRRP
	// implementation does: the old master keeps the VIP for a bounded grace
	// only.
	FailMoved = "moved"
)

// Class is "" for an answered request, else FailGap or FailMoved.
func (r Request) Class() string {
	switch {
	case r.Err == nil:
		return ""
	case strings.Contains(r.Err.Error(), "reset by peer") && r.End.Sub(r.At) < 150*time.Millisecond:
		return FailMoved
	case r.Delivered && errors.Is(r.Err, os.ErrDeadlineExceeded):
		return FailMoved
	}
	return FailGap
}

// Poller starts a request to Addr every Every from inside a lab host, each
// on a new connection, until Stop. It is open-loop: a request that hangs
// does not delay the next one, so an outage of d shows as about d/Every
// failed requests.
type Poller struct {
	Host    *lab.Host
	Addr    netip.AddrPort
	Every   time.Duration
	Timeout time.Duration // per request; 1s when zero (the first SYN retransmission)
	// Answer, when set, bounds the answer on a connection once it is
	// established, instead of Timeout: the connection itself shows that a
	// path to a server existed, and a server that a loaded machine
	// schedules late is no lost request. A path lost after the handshake
	// still shows, as a reset or a retransmission timeout past Answer.
	Answer time.Duration
	// OnAnswer, if set, is called after each request, from the request's
	// goroutine.
	OnAnswer func(Request)

	stop chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	reqs []Request
	errs []error
}

// Start begins polling.
func (p *Poller) Start() {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	if p.Timeout == 0 {
		p.Timeout = time.Second
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.Every)
		defer t.Stop()
		for {
			p.wg.Add(1)
			go p.one()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// one makes one request on a thread inside the host's namespace, where the
// socket is created.
func (p *Poller) one() {
	defer p.wg.Done()
	var r Request
	err := p.Host.Do(func() error {
		r.At = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
		r.Body, r.Delivered, r.Err = get(ctx, p.Addr, p.Answer)
		cancel()
		r.End = time.Now()
		return nil
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errs = append(p.errs, err)
		return
	}
	p.reqs = append(p.reqs, r)
	if p.OnAnswer != nil {
		p.OnAnswer(r)
	}
}

// Stop ends polling, waits for the requests under way and returns every
// request made, in start order.
func (p *Poller) Stop() ([]Request, error) {
	close(p.stop)
	<-p.done
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	slices.SortFunc(p.reqs, func(a, b Request) int { return a.At.Compare(b.At) })
	return p.reqs, errors.Join(p.errs...)
}

// PollStats summarises a Poller's requests.
type PollStats struct {
	Requests, Failed int
	// By counts answers per answering host.
	By map[string]int
	// MaxUnanswered is the longest time from the start of the first failed
	// request of a run of failures to the start of the next request that
	// was answered (how long a new client would have seen no service).
	MaxUnanswered time.Duration
	// Errors lists distinct error texts with their counts.
	Errors map[string]int
	// Classes counts failures by Class.
	Classes map[string]int
}

// SummarisePolls computes PollStats.
func SummarisePolls(reqs []Request) PollStats {
	st := PollStats{By: map[string]int{}, Errors: map[string]int{}, Classes: map[string]int{}}
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
			st.Classes[r.Class()]++
			if firstFail.IsZero() {
				firstFail = r.At
			}
			continue
		}
		st.By[r.Body]++
		if !firstFail.IsZero() {
			st.MaxUnanswered = max(st.MaxUnanswered, r.At.Sub(firstFail))
			firstFail = time.Time{}
		}
	}
	return st
}

func (s PollStats) String() string {
	return fmt.Sprintf("%d requests, %d failed %v, answered by %v, longest unanswered %v, errors %v",
		s.Requests, s.Failed, s.Classes, s.By, s.MaxUnanswered.Round(time.Millisecond), s.Errors)
}
