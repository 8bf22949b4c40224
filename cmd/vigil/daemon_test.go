package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/web"
)

// A notify_fifo_script that would run as a script_user this host lacks is
// disabled, as keepalived disables it; the FIFO itself is still opened and
// the daemon starts.
func TestNotifierScriptUserMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	g := config.Global{
		ScriptUser: "vg-no-such-user-21",
		NotifyFIFO: config.FIFO{Path: path, Script: config.Command{Args: []string{"/bin/true"}}},
	}
	var logs bytes.Buffer
	n, fifos, err := newNotifier(g, slog.New(slog.NewTextHandler(&logs, nil)), 0, 0)
	if err != nil {
		t.Fatalf("newNotifier: %v (keepalived runs with the script disabled)", err)
	}
	if n == nil || len(fifos) != 1 {
		t.Fatalf("notifier %v, fifos %d; want the FIFO opened", n, len(fifos))
	}
	defer fifos[0].Close()
	if !strings.Contains(logs.String(), "script disabled, as keepalived does") || !strings.Contains(logs.String(), "vg-no-such-user-21") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// A notify FIFO that cannot be made (its directory is missing) or whose
// user does not exist is logged and left out, and the daemon starts, as
// keepalived 2.2.7 does ("Unable to create notify fifo", "Invalid
// user/group for fifo - ignoring").
func TestNotifierFIFOUnavailable(t *testing.T) {
	d := t.TempDir()
	g := config.Global{
		NotifyFIFO:     config.FIFO{Path: filepath.Join(d, "missing", "fifo")},
		VRRPNotifyFIFO: config.FIFO{Path: filepath.Join(d, "vrrp_fifo"), User: "vg-no-such-user-22"},
		LVSNotifyFIFO:  config.FIFO{Path: filepath.Join(d, "lvs_fifo")},
	}
	var logs bytes.Buffer
	n, fifos, err := newNotifier(g, slog.New(slog.NewTextHandler(&logs, nil)), 0, 0)
	if err != nil {
		t.Fatalf("newNotifier: %v (keepalived runs without such a FIFO)", err)
	}
	for _, f := range fifos {
		defer f.Close()
	}
	if n == nil || len(fifos) != 1 || fifos[0].Path() != g.LVSNotifyFIFO.Path {
		t.Fatalf("notifier %v, %d FIFOs; want only lvs_notify_fifo opened", n, len(fifos))
	}
	for _, want := range []string{"unable to open the notify FIFO", "missing/fifo", "invalid user/group for the FIFO", "vg-no-such-user-22"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if _, err := os.Lstat(g.VRRPNotifyFIFO.Path); err == nil {
		t.Errorf("the FIFO of the unknown user was created")
	}
}

// TestMetricsListenerLimits: --metrics-listen is reached from the network
// (Prometheus), so it has the status page's limits: a request header over
// web.MaxHeaderBytes is refused (431) instead of being read up to net/http's
// 1 MiB default.
func TestMetricsListenerLimits(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	d := &daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	if err := d.serveMetrics(addr, func(_ string, f func(context.Context) error) { go func() { done <- f(ctx) }() }); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-done }()
	get := func(header int) int {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Pad", strings.Repeat("a", header))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(100); code != http.StatusOK {
		t.Fatalf("small request: %d, want 200", code)
	}
	if code := get(4 * web.MaxHeaderBytes); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("request with a %d-byte header: %d, want 431", 4*web.MaxHeaderBytes, code)
	}
}
