package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestServeHandlerConnectionCap: MaxConns connections in the middle of a
// request hold every slot; a further client is not served until one of them
// closes (or ReadHeaderTimeout cuts them off).
func TestServeHandlerConnectionCap(t *testing.T) {
	testConnectionCap(t, false)
}

// TestServeHandlerIdleConnectionsYield: MaxConns kept-alive connections,
// idle after one request each, do not lock a further client out: with every
// slot taken, the idle ones are closed (they used to hold the slots for
// IdleTimeout, renewable by one request each).
func TestServeHandlerIdleConnectionsYield(t *testing.T) {
	testConnectionCap(t, true)
}

func testConnectionCap(t *testing.T, idle bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ServeHandler(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addr := ln.Addr().String()
	// Each connection is served one request (so it was accepted and
	// counts) and stays open.
	conns := make([]net.Conn, 0, MaxConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < MaxConns; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if !idle {
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n") // and no end
			continue
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		resp.Body.Close()
	}
	get := func(timeout time.Duration) error {
		cl := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := cl.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if idle {
		if err := get(20 * time.Second); err != nil {
			t.Fatalf("%d idle kept-alive connections lock a client out: %v", MaxConns, err)
		}
		return
	}
	if err := get(500 * time.Millisecond); err == nil {
		t.Fatalf("served a connection beyond %d", MaxConns)
	}
	conns[0].Close()
	conns = conns[1:]
	if err := get(20 * time.Second); err != nil {
		t.Fatalf("a slot freed, still not served: %v", err)
	}
}

// TestLimitInFlight: at most n requests run at once (a /metrics scrape of a
// large configuration costs tens of MB; MaxConns of them at once would
// multiply the daemon's memory); a further one waits for a slot, and gets
// 503 when none frees within the wait.
func TestLimitInFlight(t *testing.T) {
	var mu sync.Mutex
	running, peak := 0, 0
	release := make(chan struct{})
	h := limitInFlight(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		io.WriteString(w, "ok")
	}), 2, time.Second)
	srv := httptest.NewServer(h)
	defer srv.Close()
	const clients = 6
	codes := make(chan int, clients)
	for range clients {
		go func() {
			resp, err := http.Get(srv.URL)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	// Two run, four wait a second and are turned away.
	busy := 0
	for range clients - 2 {
		if c := <-codes; c == http.StatusServiceUnavailable {
			busy++
		}
	}
	close(release)
	ok := 0
	for range 2 {
		if c := <-codes; c == http.StatusOK {
			ok++
		}
	}
	if peak != 2 || busy != clients-2 || ok != 2 {
		t.Errorf("%d clients at once: peak %d running, %d answered 503, %d served; want 2, %d, 2", clients, peak, busy, ok, clients-2)
	}
	// A slot frees within the wait: the request is served.
	release = make(chan struct{})
	for range 3 {
		go func() {
			resp, err := http.Get(srv.URL)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	for range 3 {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("a request waiting less than the wait: %d, want 200", c)
		}
	}
}
