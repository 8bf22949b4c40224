package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/web"
)

func TestDebugListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.com:0", "6060"} {
		if ln, err := debugListen(addr); err == nil {
			ln.Close()
			t.Errorf("debugListen(%q) listened on %s, want a refusal", addr, ln.Addr())
		}
	}
	for _, addr := range []string{"127.0.0.1:0", ":0", "localhost:0"} {
		ln, err := debugListen(addr)
		if err != nil {
			t.Errorf("debugListen(%q): %v", addr, err)
			continue
		}
		if !strings.HasPrefix(ln.Addr().String(), "127.0.0.1:") {
			t.Errorf("debugListen(%q) listens on %s, want 127.0.0.1", addr, ln.Addr())
		}
		ln.Close()
	}
}

// startDebug serves the profiler on a loopback port until the test ends
// and returns its address.
func startDebug(t *testing.T) string {
	t.Helper()
	ln, err := debugListen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveDebug(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

func TestDebugServesProfiler(t *testing.T) {
	addr := startDebug(t)
	c := &http.Client{Timeout: 30 * time.Second}
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
		"/debug/pprof/profile?seconds=1": "", // a gzipped profile
		"/debug/pprof/trace?seconds=0.1": "", // a binary trace
		"/debug/pprof/heap?debug=1":      "heap profile:",
		"/debug/pprof/cmdline":           "",
		"/debug/pprof/symbol":            "num_symbols",
	} {
		resp, err := c.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) == 0 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: status %d, %d bytes, want 200 with %q", path, resp.StatusCode, len(b), want)
		}
	}
}

func TestRunFlagDebugListen(t *testing.T) {
	f, err := parseRunFlags([]string{"--debug-listen", "127.0.0.1:6060"}, io.Discard)
	if err != nil || f.debug != "127.0.0.1:6060" {
		t.Fatalf("parseRunFlags: %+v, %v", f.debug, err)
	}
	f, err = parseRunFlags(nil, io.Discard)
	if err != nil || f.debug != "" {
		t.Fatalf("default --debug-listen %q, %v; want off", f.debug, err)
	}
}

// TestDebugConnectionCap: the profiler's listener has the status
// listener's bound (web.ServeLimited): web.MaxConns connections in the
// middle of a request hold every slot, and a further client waits in the
// accept queue until one closes, instead of costing the daemon another
// goroutine and descriptor.
func TestDebugConnectionCap(t *testing.T) {
	addr := startDebug(t)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range web.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /debug/pprof/cmdline HTTP/1.1\r\nHost: x\r\n") // and no end
	}
	get := func(timeout time.Duration) error {
		cl := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := cl.Get("http://" + addr + "/debug/pprof/cmdline")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(500 * time.Millisecond); err == nil {
		t.Fatalf("served a connection beyond %d", web.MaxConns)
	}
	conns[0].Close()
	conns = conns[1:]
	if err := get(20 * time.Second); err != nil {
		t.Fatalf("a slot freed, still not served: %v", err)
	}
}
