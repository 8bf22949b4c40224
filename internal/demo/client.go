package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// Sample is one HTTP request of the client to the VIP.
type Sample struct {
	Sent time.Time
	Done time.Time // zero while the request is in flight
	Node string    // whose page answered ("node1"), "" when the request failed
	Err  string    // why it failed
}

// OK reports whether a page came back.
func (s Sample) OK() bool { return !s.Done.IsZero() && s.Node != "" }

// pageRE matches the page each node serves (see pageText).
var pageRE = regexp.MustCompile(`^Hello from ([a-z0-9]+) \(`)

// pageText is what a node's web server answers.
func pageText(n Node) string { return fmt.Sprintf("Hello from %s (%s)\n", n.Name, n.Addr) }

// pageNode returns the node named by a page, or "" when the body is not a
// node's page.
func pageNode(body string) string {
	m := pageRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// Client is the tutorial's browser: an HTTP client whose sockets live in the
// client host's network namespace.
//
// Concurrency: Fetch and Samples may be called concurrently with Poll.
type Client struct {
	ns      string
	url     string
	timeout time.Duration
	hc      *http.Client

	mu      sync.Mutex
	samples []*Sample
}

// NewClient returns a client that fetches url from inside namespace ns, each
// request on a new connection (as a browser that is reloaded), failing after
// timeout.
func NewClient(ns, url string, timeout time.Duration) *Client {
	c := &Client{ns: ns, url: url, timeout: timeout}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := lab.DoNS(ns, func() error {
				var d net.Dialer
				var err error
				conn, err = d.DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
		DisableKeepAlives: true,
	}
	c.hc = &http.Client{Transport: tr, Timeout: timeout}
	return c
}

// Fetch makes one request and returns its sample (not recorded).
func (c *Client) Fetch(ctx context.Context) (Sample, string) {
	s := Sample{Sent: time.Now()}
	body, err := c.get(ctx)
	s.Done = time.Now()
	if err != nil {
		s.Err = err.Error()
		return s, ""
	}
	s.Node = pageNode(body)
	if s.Node == "" {
		s.Err = fmt.Sprintf("unexpected page %q", body)
	}
	return s, body
}

func (c *Client) get(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", shortErr(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", shortErr(err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s", resp.Status)
	}
	return string(b), nil
}

// Failure causes as the demo names them.
const (
	ErrTimeout = "timeout"
	ErrRefused = "connection refused"
	ErrReset   = "connection reset"
	ErrClosed  = "connection closed early"
)

// shortErr names a failed request's cause the way a person would.
func shortErr(err error) error {
	var ne net.Error
	msg := err.Error()
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New(ErrTimeout)
	case strings.Contains(msg, "connection refused"):
		return errors.New(ErrRefused)
	case strings.Contains(msg, "connection reset"), strings.Contains(msg, "broken pipe"):
		return errors.New(ErrReset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(msg, "EOF"):
		return errors.New(ErrClosed)
	case strings.Contains(msg, "no route to host"):
		return errors.New("no route to host")
	}
	return err
}

// Cut reports whether a failure cause means the request was cut while in
// flight (its connection was reset or closed under it), as opposed to
// getting no answer at all. A TCP connection opened with the old master
// cannot survive the VIP's move: once the client's ARP entry points to the
// new master, the connection's next packets reach a host that has no state
// for it and answers with a reset.
func Cut(cause string) bool { return cause == ErrReset || cause == ErrClosed }

// Poll starts a request every interval, each in its own goroutine so that
// one that hangs does not hide the others, until ctx is done; it returns
// when every request has finished.
func (c *Client) Poll(ctx context.Context, interval time.Duration) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s := &Sample{Sent: time.Now()}
		c.mu.Lock()
		c.samples = append(c.samples, s)
		c.mu.Unlock()
		wg.Go(func() {
			// The request runs to its own timeout even when polling stops, so
			// that the samples of the last step are complete.
			r, _ := c.Fetch(context.WithoutCancel(ctx))
			c.mu.Lock()
			s.Done, s.Node, s.Err = r.Done, r.Node, r.Err
			c.mu.Unlock()
		})
	}
}

// Samples returns a copy of the polled samples so far, in the order sent.
func (c *Client) Samples() []Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Sample, len(c.samples))
	for i, s := range c.samples {
		out[i] = *s
	}
	return out
}

// Settled reports whether every request sent before t has finished.
func Settled(samples []Sample, t time.Time) bool {
	for _, s := range samples {
		if s.Sent.Before(t) && s.Done.IsZero() {
			return false
		}
	}
	return true
}

// Window summarises the requests sent in [From, To).
type Window struct {
	From, To time.Time
	Requests int
	Failed   int
	// Cut counts the failed requests that were cut in flight (see Cut);
	// Failed − Cut went unanswered.
	Cut    int
	ByNode map[string]int
	// Errors counts the failures by cause, e.g. "timeout": 31.
	Errors map[string]int
	// FailedSamples are the failed requests, in the order sent.
	FailedSamples []Sample
}

// Summarise returns the Window of samples sent in [from, to). Requests
// still in flight are not counted.
func Summarise(samples []Sample, from, to time.Time) Window {
	w := Window{From: from, To: to, ByNode: map[string]int{}, Errors: map[string]int{}}
	for _, s := range samples {
		if s.Sent.Before(from) || !s.Sent.Before(to) || s.Done.IsZero() {
			continue
		}
		w.Requests++
		if s.OK() {
			w.ByNode[s.Node]++
			continue
		}
		w.Failed++
		if Cut(s.Err) {
			w.Cut++
		}
		w.FailedSamples = append(w.FailedSamples, s)
		w.Errors[s.Err]++
	}
	return w
}

// ErrorText lists the failure causes, most frequent first: "31 timeout, 2
// connection refused".
func (w Window) ErrorText() string {
	type kv struct {
		k string
		v int
	}
	var kvs []kv
	for k, v := range w.Errors {
		kvs = append(kvs, kv{k, v})
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].v != kvs[j].v {
			return kvs[i].v > kvs[j].v
		}
		return kvs[i].k < kvs[j].k
	})
	var parts []string
	for _, e := range kvs {
		parts = append(parts, fmt.Sprintf("%d %s", e.v, e.k))
	}
	return strings.Join(parts, ", ")
}

// FirstAnswer returns the earliest-finished request sent at or after t that
// node answered.
func FirstAnswer(samples []Sample, node string, t time.Time) (Sample, bool) {
	var best Sample
	found := false
	for _, s := range samples {
		if s.Sent.Before(t) || !s.OK() || s.Node != node {
			continue
		}
		if !found || s.Done.Before(best.Done) {
			best, found = s, true
		}
	}
	return best, found
}

// LastAnswer returns the latest-sent request sent in [from, to) that node
// answered.
func LastAnswer(samples []Sample, node string, from, to time.Time) (Sample, bool) {
	var best Sample
	found := false
	for _, s := range samples {
		if s.Sent.Before(from) || !s.Sent.Before(to) || !s.OK() || s.Node != node {
			continue
		}
		if !found || s.Sent.After(best.Sent) {
			best, found = s, true
		}
	}
	return best, found
}
