package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/status"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// fakeDaemon is an api.Daemon whose snapshot the test changes.
type fakeDaemon struct {
	mu   sync.Mutex
	snap status.Snapshot
	err  error
	gets int
}

var _ api.Daemon = (*fakeDaemon)(nil)

func (f *fakeDaemon) Snapshot(context.Context) (status.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	return f.snap, f.err
}
func (f *fakeDaemon) Reload(context.Context) (api.ReloadResult, error) {
	return api.ReloadResult{}, errors.New("fake: reload must not be reachable over TCP")
}
func (f *fakeDaemon) Handover(context.Context, string) error {
	return errors.New("fake: handover must not be reachable over TCP")
}
func (f *fakeDaemon) Reclaim(context.Context, string) error {
	return errors.New("fake: reclaim must not be reachable over TCP")
}
func (f *fakeDaemon) set(fn func(*status.Snapshot, *error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.snap, &f.err)
}

func backupSnapshot(now time.Time) status.Snapshot {
	return status.Snapshot{
		Daemon: status.Daemon{Version: "0.9.0", PID: 4242, Started: now.Add(-26 * time.Hour), ConfigFile: "/etc/vigil/vigil.conf",
			RouterID: "wyl02", Reloads: 1, LastReload: now.Add(-2 * time.Hour), Dropped: map[string]uint64{"unknown_vrid": 7},
			ReloadFailures: 1, LastReloadError: "/etc/vigil/vigil.conf:12:3: error: x", LastReloadFailed: now.Add(-time.Hour)},
		Instances: []status.Instance{
			{Name: "VI_1", Interface: "eth0", Family: "inet", Version: 2, VRID: 55, State: "BACKUP",
				BasePriority: 99, EffectivePriority: 99, AdvertInterval: status.Duration(time.Second),
				Master: "192.168.1.105", VIPs: []string{"192.168.1.100/24"}, SyncGroup: "LB",
				Since: now.Add(-30 * time.Minute), Reason: "higher priority master 192.168.1.105 (100)",
				Trackers: []status.Tracker{{Kind: "script", Name: "chk_nginx", OK: true, Weight: -20},
					{Kind: "interface", Name: "eth1", OK: true}},
				Peers:       []status.Peer{{Addr: "192.168.1.105", Priority: 100, LastHeard: now.Add(-400 * time.Millisecond), Adverts: 1800}},
				Counters:    status.Counters{Dropped: map[string]uint64{"auth_failure": 12, "lower_priority": 3}},
				HistoryFrom: now.Add(-3 * time.Hour),
				History: []status.Transition{
					{At: now.Add(-3 * time.Hour), Kind: "instance", Name: "VI_1", From: "INIT", To: "BACKUP", Reason: "startup, state BACKUP in configuration"},
					{At: now.Add(-45 * time.Minute), Kind: "instance", Name: "VI_1", From: "BACKUP", To: "MASTER", Reason: "no advertisement from 192.168.1.105 for 3.6s (master down)", Priority: 99},
					{At: now.Add(-30 * time.Minute), Kind: "instance", Name: "VI_1", From: "MASTER", To: "BACKUP", Reason: "higher priority master 192.168.1.105 (100)", Priority: 99},
				}},
			{Name: "VI_6", Interface: "eth0", Family: "inet6", Version: 3, VRID: 56, State: "MASTER",
				BasePriority: 150, EffectivePriority: 130, AdvertInterval: status.Duration(100 * time.Millisecond),
				Master: "fe80::76:67ff:fe00:2", VIPs: []string{"fd00::100/64", "fd00::101/64"}, HeldVIPs: []string{"fd00::100/64"},
				Since: now.Add(-50 * time.Minute), Reason: "master down timer expired",
				Trackers: []status.Tracker{{Kind: "file", Name: "/run/maint", OK: false, Weight: -20, Detail: "file says 1"}},
				Handover: "holding", HandoverUntil: now.Add(3 * time.Second),
				Peers:       []status.Peer{{Addr: "fe80::76:67ff:fe00:3", Priority: 120, LastHeard: now.Add(-40 * time.Second), Adverts: 30}},
				HistoryFrom: now.Add(-55 * time.Minute),
				History: []status.Transition{
					{At: now.Add(-55 * time.Minute), Kind: "instance", Name: "VI_6", From: "INIT", To: "BACKUP", Reason: "startup"},
					{At: now.Add(-50 * time.Minute), Kind: "instance", Name: "VI_6", From: "BACKUP", To: "MASTER", Reason: "master down timer expired", Priority: 150},
				}},
		},
		SyncGroups: []status.SyncGroup{{Name: "LB", State: "BACKUP", Instances: []string{"VI_1"}}},
		VirtualServers: []status.VirtualServer{{
			Name: "192.168.1.100:80/tcp", Algo: "wrr", Kind: "NAT", Backend: "nftables", QuorumUp: true, Active: true,
			Sorry: "192.168.1.200:80", VIP: "192.168.1.100", Port: 80, Protocol: "TCP",
			Kernel: &status.Kernel{Connections: 1830, PacketsIn: 10800, PacketsOut: 9600, BytesIn: 972000, BytesOut: 30_400_000},
			RealServers: []status.RealServer{
				{Addr: "192.168.2.10:80", Weight: 3, Healthy: true, Checkers: []status.Checker{{Kind: "HTTP_GET", Name: "HTTP_GET 192.168.2.10:80", OK: true,
					LastRun: now.Add(-time.Second), Duration: status.Duration(3 * time.Millisecond)}},
					Kernel: &status.Kernel{Connections: 1520, PacketsIn: 9000, PacketsOut: 8000, BytesIn: 812000, BytesOut: 25_300_000}},
				{Addr: "192.168.2.11:80", Weight: 0, Healthy: false, Reason: "HTTP_GET: connect: connection refused", Since: now.Add(-40 * time.Minute),
					Checkers: []status.Checker{{Kind: "HTTP_GET", Name: "HTTP_GET 192.168.2.11:80", OK: false, Failures: 3, Reason: "connection refused", LastRun: now.Add(-2 * time.Second)}},
					Kernel:   &status.Kernel{Connections: 310, PacketsIn: 1800, PacketsOut: 1600, BytesIn: 160000, BytesOut: 5_100_000}},
			},
		}},
		Heartbeat: &status.Heartbeat{Node: "node2",
			Nodes: []status.HeartbeatNode{{Name: "node1", Status: "active", LastHeard: map[string]time.Time{"bcast eth1": now.Add(-time.Second)}},
				{Name: "node2", Status: "active"}},
			Pings:  []status.HeartbeatPing{{Addr: "192.168.1.1", Reachable: true}},
			Groups: []status.HeartbeatGroup{{Name: "nfs", Home: "node1", Owner: "node1", State: "running", Resources: []string{"IPaddr::192.168.1.50/24/eth0", "Filesystem::/dev/drbd0::/srv::ext4", "nfs-kernel-server"}}}},
		BGP: sampleBGP(now),
		Transitions: []status.Transition{
			{At: now.Add(-3 * time.Hour), Kind: "instance", Name: "VI_1", From: "INIT", To: "BACKUP", Reason: "startup, state BACKUP in configuration"},
			{At: now.Add(-50 * time.Minute), Kind: "instance", Name: "VI_6", From: "BACKUP", To: "MASTER", Reason: "master down timer expired", Priority: 150},
			{At: now.Add(-40 * time.Minute), Kind: "real_server", Name: "192.168.2.11:80", From: "up", To: "down", Reason: "HTTP_GET: connection refused (3 retries)"},
		},
	}
}

// failover is what the page must show after the test's transition.
const failoverReason = "no advertisement from 192.168.1.105 for 3.609s (master down)"

func failover(s *status.Snapshot, now time.Time) {
	in := &s.Instances[0]
	in.State, in.Since, in.Reason, in.Master = "MASTER", now, failoverReason, "192.168.1.106"
	in.HeldVIPs = in.VIPs
	s.SyncGroups[0].State = "MASTER"
	tr := status.Transition{At: now, Kind: "instance", Name: "VI_1", From: "BACKUP", To: "MASTER", Reason: failoverReason, Priority: 99}
	s.Transitions = append(s.Transitions, tr)
	in.History = append(in.History, tr)
}

func get(t *testing.T, h http.Handler, method, target, host string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if host != "" {
		r.Host = host
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestHandler(t *testing.T) {
	f := &fakeDaemon{snap: backupSnapshot(t0)}
	h := Handler(f.Snapshot)

	rec := get(t, h, "GET", "/", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "<title>vigil status</title>") {
		t.Fatalf("GET /: %d %.200s", rec.Code, rec.Body.String())
	}
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'sha256-", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows unsafe-inline: %s", csp)
	}

	rec = get(t, h, "GET", "/v1/status", "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/status: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got status.Snapshot
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.snap, got); diff != "" {
		t.Errorf("snapshot over HTTP (-want +got)\n%s", diff)
	}

	// Read-only: the API's write endpoints do not exist here, and other
	// methods are refused.
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v1/reload"}, {"POST", "/v1/handover"}, {"POST", "/v1/status"}, {"DELETE", "/"}, {"PUT", "/v1/status"},
	} {
		if rec := get(t, h, tc.method, tc.path, ""); rec.Code != http.StatusMethodNotAllowed && rec.Code != http.StatusNotFound {
			t.Errorf("%s %s: %d, want 404 or 405", tc.method, tc.path, rec.Code)
		}
	}
	if rec := get(t, h, "GET", "/v1/reload", ""); rec.Code != http.StatusNotFound {
		t.Errorf("GET /v1/reload: %d", rec.Code)
	}

	f.set(func(_ *status.Snapshot, err *error) { *err = errors.New("engine: not answering") })
	rec = get(t, h, "GET", "/v1/status", "")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "engine: not answering") {
		t.Errorf("engine error: %d %s", rec.Code, rec.Body.String())
	}
}

// TestDNSRebindingRefused serves on a real loopback listener: requests
// whose Host is a foreign name are refused, localhost and IP literals pass.
func TestDNSRebindingRefused(t *testing.T) {
	f := &fakeDaemon{snap: backupSnapshot(t0)}
	srv := httptest.NewServer(Handler(f.Snapshot))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for host, want := range map[string]int{
		"127.0.0.1:" + port: 200, "localhost:" + port: 200, "LOCALHOST.:" + port: 200, "vigil.localhost:" + port: 200,
		"[::1]:" + port: 200, "evil.example:" + port: http.StatusMisdirectedRequest, "192.0.2.7:" + port: http.StatusMisdirectedRequest,
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/status", nil)
		req.Host = host
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"":                "127.0.0.1:8080",
		":9000":           "127.0.0.1:9000",
		"9000":            "127.0.0.1:9000",
		"localhost":       "localhost:8080",
		"0.0.0.0:80":      "0.0.0.0:80",
		"[::1]:81":        "[::1]:81",
		"::1":             "[::1]:8080",
		"192.0.2.1:":      "192.0.2.1:8080",
		"[::]:8080":       "[::]:8080",
		"lb1.example:443": "lb1.example:443",
	} {
		if got := ListenAddr(in); got != want {
			t.Errorf("ListenAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn string // substring; "" means no warning
	}{
		{":8080", ""},
		{"127.0.0.1:8080", ""},
		{"127.0.0.2:8080", ""},
		{"[::1]:8080", ""},
		{"localhost:8080", ""},
		{"0.0.0.0:8080", "every interface"},
		{"[::]:8080", "every interface"},
		{"192.168.1.105:8080", "not a loopback address"},
		{"lb1.example:8080", "may resolve"},
	} {
		got := CheckListen(tc.addr)
		if (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
			t.Errorf("CheckListen(%q) = %q, want a warning containing %q", tc.addr, got, tc.warn)
		}
	}
}

func TestListenAndServe(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ln, err := Listen(":0", log)
	if err != nil {
		t.Fatal(err)
	}
	if a := ln.Addr().(*net.TCPAddr); !a.IP.IsLoopback() {
		t.Errorf("bare port bound %v, want loopback", a)
	}
	if logs.Len() != 0 {
		t.Errorf("loopback listener logged: %s", logs.String())
	}
	f := &fakeDaemon{snap: backupSnapshot(t0)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, ln, f.Snapshot) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ln, err = Listen("0.0.0.0:0", log)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "every interface") {
		t.Errorf("wildcard listener not logged: %q", logs.String())
	}
}
