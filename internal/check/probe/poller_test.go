package probe

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// viaPoller runs url step of h through a poller, as the Runner does, and
// returns its result. in, when set, runs the poller's loop (inside a lab
// namespace, where its sockets are then made). The poller must leave no
// socket open behind it.
func viaPoller(t *testing.T, h *HTTP, step int, in func(loop func())) check.Result {
	t.Helper()
	fds := openFDs(t)
	res := make(chan check.Result, 1)
	p, err := newPoller(func(j job, started time.Time, r check.Result) { res <- r })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		if in != nil {
			in(func() { p.run(ctx) })
		} else {
			p.run(ctx)
		}
	}()
	p.submit(pollTask{h: h, step: step})
	var r check.Result
	select {
	case r = <-res:
	case <-time.After(30 * time.Second):
		t.Fatal("poller reported no result within 30 s")
	}
	cancel()
	<-exited
	noMoreFDs(t, fds)
	return r
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// noMoreFDs fails unless at most want descriptors are open within a few
// seconds (a test server closes its side once the client's is closed).
func noMoreFDs(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := openFDs(t)
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d descriptors open before the poller, %d after", want, n)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPollerConnectRefused(t *testing.T) {
	noLeak(t)
	l := listen(t, "127.0.0.1:0")
	a := ap(l.Addr())
	l.Close()
	h := &HTTP{Conn: Conn{Addr: a, Timeout: time.Second}, URLs: []URL{{Path: "/"}}}
	r := h.Check(ctxT(t))
	wantReason(t, r.Reason, "connect "+a.String()+": connection refused")
	if p := viaPoller(t, h, 0, nil); p.OK || p.Reason != r.Reason {
		t.Errorf("poller: OK = %v (%s), Check: %s", p.OK, p.Reason, r.Reason)
	}
	if p := viaPoller(t, h, 1, nil); p.OK || p.Reason != "no url 1" {
		t.Errorf("step out of range: OK = %v (%s)", p.OK, p.Reason)
	}
}

// TestPollerCancel: a canceled poller returns at once, reports nothing for
// the attempts in flight and closes their sockets.
func TestPollerCancel(t *testing.T) {
	noLeak(t)
	l := listen(t, "127.0.0.1:0")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				// Answer nothing; close once the client has.
				defer c.Close()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	fds := openFDs(t)
	var reported atomic.Int32
	p, err := newPoller(func(job, time.Time, check.Result) { reported.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() { defer close(exited); p.run(ctx) }()
	h := &HTTP{Conn: Conn{Addr: ap(l.Addr()), Timeout: 10 * time.Second}, URLs: []URL{{Path: "/"}}}
	for range 5 {
		p.submit(pollTask{h: h})
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("poller still running 5 s after its context was canceled")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("poller took %v to stop", d)
	}
	if n := reported.Load(); n != 0 {
		t.Errorf("%d attempts reported after the cancellation", n)
	}
	noMoreFDs(t, fds)
}

// TestRunnerHTTPLoopback runs HTTP_GETs through the Runner (its pollers)
// against loopback servers, fails half of them with a 500, then heals
// them; every attempt is reported with its schedule.
func TestRunnerHTTPLoopback(t *testing.T) {
	noLeak(t)
	const n = 10
	p := check.Defaults(check.KindHTTP, 100*time.Millisecond)
	p.Retry, p.DelayBeforeRetry, p.Warmup, p.Bootstrap = 1, 50*time.Millisecond, 100*time.Millisecond, 0
	var broken [n]atomic.Bool
	var servers []RealServer
	for i := range n {
		srv := newRawHTTP(t, func(string) string {
			if broken[i].Load() {
				return "HTTP/1.0 500 Oops\r\n\r\n"
			}
			return "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
		})
		a := srv.addr()
		servers = append(servers, RealServer{ID: a.String(), Weight: 1, Checkers: []Checker{{
			Name: "HTTP_GET " + a.String(), Policy: p,
			Check: &HTTP{Conn: Conn{Addr: a, Timeout: time.Second}, URLs: []URL{{Path: "/", Digest: md5hex("ok\n")}}},
		}}})
	}
	events := make(chan Event, 4*n)
	var checks, late atomic.Int32
	r, err := NewRunner(Options{Servers: servers, OnEvent: func(e Event) { events <- e }, OnCheck: func(d CheckDone) {
		checks.Add(1)
		if d.Started.Before(d.Scheduled) || d.Dispatched.Before(d.Scheduled) || d.Started.Before(d.Dispatched) {
			late.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < n; i += 2 {
		broken[i].Store(true)
	}
	wait := func(up bool) {
		got := map[string]bool{}
		timeout := time.After(20 * time.Second)
		for len(got) < n/2 {
			select {
			case e := <-events:
				if e.FirstVerdict {
					continue
				}
				if e.Up != up {
					t.Fatalf("unexpected event %+v", e)
				}
				got[e.Server] = true
			case <-timeout:
				t.Fatalf("%d of %d real servers reported %v", len(got), n/2, up)
			}
		}
		for i := 0; i < n; i += 2 {
			if !got[servers[i].ID] {
				t.Errorf("%s not reported %v", servers[i].ID, up)
			}
		}
	}
	wait(false)
	for s := range slices.Values(r.Snapshot()) {
		if c := s.Checkers[0]; !c.Up && !strings.Contains(c.Last.Reason, "status 500") {
			t.Errorf("%s down for %q, want status 500", s.ID, c.Last.Reason)
		}
	}
	for i := 0; i < n; i += 2 {
		broken[i].Store(false)
	}
	wait(true)
	if checks.Load() == 0 || late.Load() != 0 {
		t.Errorf("%d checks, %d started before they were due or dispatched", checks.Load(), late.Load())
	}
	if st := r.Stats(); st.Workers != 0 {
		t.Errorf("%d worker goroutines started for HTTP_GETs the pollers run", st.Workers)
	}
}

// TestPollerManyAtOnce starts more attempts than one epoll_wait returns
// events for, some against a closed port, and gets every verdict right.
func TestPollerManyAtOnce(t *testing.T) {
	noLeak(t)
	srv := newRawHTTP(t, func(string) string { return "HTTP/1.0 200 OK\r\n\r\nfine" })
	closed := listen(t, "127.0.0.1:0")
	refused := ap(closed.Addr())
	closed.Close()
	const n = 1500
	type verdict struct {
		idx int
		r   check.Result
	}
	res := make(chan verdict, n)
	p, err := newPoller(func(j job, _ time.Time, r check.Result) { res <- verdict{j.step, r} })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() { defer close(exited); p.run(ctx) }()
	defer func() { cancel(); <-exited }()
	good := &HTTP{Conn: Conn{Addr: srv.addr(), Timeout: 10 * time.Second}, URLs: []URL{{Path: "/", Digest: md5hex("fine")}}}
	bad := &HTTP{Conn: Conn{Addr: refused, Timeout: 10 * time.Second}, URLs: []URL{{Path: "/"}}}
	want := make([]bool, n)
	for i := range n {
		want[i] = rand.IntN(4) != 0
		h := bad
		if want[i] {
			h = good
		}
		// The step is 0 for both; the job carries the index back.
		p.submit(pollTask{h: h, j: job{step: i}})
	}
	for range n {
		select {
		case v := <-res:
			if v.r.OK != want[v.idx] {
				t.Errorf("attempt %d: OK = %v (%s), want %v", v.idx, v.r.OK, v.r.Reason, want[v.idx])
			}
		case <-time.After(30 * time.Second):
			t.Fatal("not every attempt reported within 30 s")
		}
	}
}

// TestPollerExpireLooksFirst: an attempt past its deadline whose response
// is already in its socket (its event not yet returned by epoll_wait, as
// in a burst of more than a buffer of events) succeeds.
func TestPollerExpireLooksFirst(t *testing.T) {
	noLeak(t)
	srv := newRawHTTP(t, func(string) string { return "HTTP/1.0 200 OK\r\n\r\nfine" })
	var got []check.Result
	p, err := newPoller(func(_ job, _ time.Time, r check.Result) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	h := &HTTP{Conn: Conn{Addr: srv.addr(), Timeout: time.Second}, URLs: []URL{{Path: "/"}}}
	p.start(pollTask{h: h})
	if len(p.dl) != 1 {
		t.Fatalf("%d attempts waiting, want 1 (results so far: %+v)", len(p.dl), got)
	}
	<-srv.reqs
	time.Sleep(50 * time.Millisecond) // the reply and the close arrive
	c := p.dl[0].v
	c.deadline, p.dl[0].key = 0, 0
	p.expire()
	if len(got) != 1 || !got[0].OK {
		t.Fatalf("results %+v, want one success", got)
	}
}
