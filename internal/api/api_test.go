package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/status"
)

type fakeDaemon struct {
	snap     status.Snapshot
	reload   ReloadResult
	handover []string
}

func (f *fakeDaemon) Snapshot(context.Context) (status.Snapshot, error) { return f.snap, nil }
func (f *fakeDaemon) Reload(context.Context) (ReloadResult, error)      { return f.reload, nil }
func (f *fakeDaemon) Reclaim(_ context.Context, n string) error {
	f.handover = append(f.handover, "reclaim "+n)
	return nil
}
func (f *fakeDaemon) Handover(_ context.Context, n string) error {
	if n == "nope" {
		return errors.New("engine: no instance \"nope\"")
	}
	f.handover = append(f.handover, n)
	return nil
}

func serve(t *testing.T, d Daemon) string {
	t.Helper()
	return serveWithIdle(t, d, IdleTimeout)
}

func serveWithIdle(t *testing.T, d Daemon, idle time.Duration) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "vigil.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- serveIdle(ctx, ln, d, slog.New(slog.DiscardHandler), idle) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return path
}

func TestSocketIsRootOnly(t *testing.T) {
	path := serve(t, &fakeDaemon{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("socket mode %o, want 600", perm)
	}
	if _, err := Listen(path); err == nil {
		t.Fatal("a second Listen on a live socket succeeded")
	}
}

func TestClientRoundTrips(t *testing.T) {
	f := &fakeDaemon{
		snap:   status.Snapshot{Instances: []status.Instance{{Name: "VI_1", State: "MASTER"}}},
		reload: ReloadResult{Applied: false, Diagnostics: []string{"k.conf:3:5: error: priority 300 out of range"}},
	}
	c := NewClient(serve(t, f))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	s, err := c.Status(ctx)
	if err != nil || len(s.Instances) != 1 || s.Instances[0].State != "MASTER" {
		t.Fatalf("status: %+v %v", s, err)
	}
	r, err := c.Reload(ctx)
	if err != nil || r.Applied || len(r.Diagnostics) != 1 {
		t.Fatalf("reload: %+v %v", r, err)
	}
	if err := c.Handover(ctx, "VI_1"); err != nil || len(f.handover) != 1 {
		t.Fatalf("handover: %v %v", err, f.handover)
	}
	if err := c.Reclaim(ctx, "VI_1"); err != nil || f.handover[1] != "reclaim VI_1" {
		t.Fatalf("reclaim: %v %v", err, f.handover)
	}
	if err := c.Handover(ctx, "nope"); err == nil || err.Error() != `engine: no instance "nope"` {
		t.Fatalf("handover error not passed through: %v", err)
	}
}

// TestServeEndsCleanlyWhenListenerClosed: a stopping daemon closes the API
// socket (which removes its file) before it cancels Serve's context; Serve
// then returns no error, or every clean stop logs `level=ERROR msg="api
// stopped" err="... use of closed network connection"`.
func TestServeEndsCleanlyWhenListenerClosed(t *testing.T) {
	ln, err := Listen(filepath.Join(t.TempDir(), "vigil.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, &fakeDaemon{}, slog.New(slog.DiscardHandler)) }()
	time.Sleep(50 * time.Millisecond) // Serve is accepting
	ln.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after its listener closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running after its listener closed")
	}
}

// TestIdleConnectionsClose: the daemon answers a second request on a
// kept-alive connection, and closes the connection once it stays idle (a
// client that never closes its connections leaves none open for good).
func TestIdleConnectionsClose(t *testing.T) {
	const idle = 300 * time.Millisecond
	path := serveWithIdle(t, &fakeDaemon{}, idle)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i := range 2 {
		if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: vigil\r\n\r\n"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %s %v", i, resp.Status, err)
		}
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %d bytes, %v; want EOF", n, err)
	}
	if d := time.Since(start); d < idle/2 {
		t.Errorf("closed after %v idle, want about %v", d, idle)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.sock")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket file not replaced: %v", err)
	}
	ln.Close()
}

// TestCloseLeavesAnotherDaemonsSocket: a daemon that stops slowly (its
// notify scripts drain) while a new one already listens at the path (its
// socket file was removed meanwhile) must not remove the new one's
// socket when it closes; the new one's Close does.
func TestCloseLeavesAnotherDaemonsSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.sock")
	old, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	cur, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the stopping listener removed the new one's socket: %v", err)
	}
	cur.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the socket file is left after its listener closed: %v", err)
	}
}

// TestListenLeavesUmask: the process umask, which every goroutine's file
// creation reads, never changes while Listen creates the socket (read
// from /proc/self/status, which does not set it), and the socket is 0600.
func TestListenLeavesUmask(t *testing.T) {
	read := func() string {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Skip("no /proc/self/status")
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Umask:") {
				return strings.TrimSpace(strings.TrimPrefix(l, "Umask:"))
			}
		}
		t.Skip("no Umask line in /proc/self/status")
		return ""
	}
	want := read()
	dir := t.TempDir()
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 300; i++ {
			ln, err := Listen(filepath.Join(dir, "vigil.sock"))
			if err != nil {
				done <- err
				return
			}
			ln.Close()
		}
		done <- nil
	}()
	seen := map[string]bool{}
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) > 0 {
				t.Fatalf("umask %s while Listen ran: %v", want, seen)
			}
			ln, err := Listen(filepath.Join(dir, "vigil.sock"))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			fi, err := os.Stat(filepath.Join(dir, "vigil.sock"))
			if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
				t.Fatalf("socket %v %v, want a socket of mode 0600", fi.Mode(), err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("left in the socket's directory: %v", ents)
			}
			return
		default:
		}
		if u := read(); u != want {
			seen[u] = true
		}
	}
}

// TestListenLongPath: a socket path just under the kernel's 108-byte limit
// works (the private directory Listen binds in must not make it too long),
// and a client reaches the daemon by that path.
func TestListenLongPath(t *testing.T) {
	dir := t.TempDir()
	name := "vigil.sock"
	pad := 100 - len(dir) - 1 - len(name) - 1
	if pad < 1 {
		t.Skipf("temporary directory %s is too long for this test", dir)
	}
	dir = filepath.Join(dir, strings.Repeat("d", pad))
	path := filepath.Join(dir, name)
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen(%d-byte path): %v", len(path), err)
	}
	defer ln.Close()
	if got := ln.Addr().String(); got != path {
		t.Errorf("Addr = %s, want %s", got, path)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat %s: %v, %v", path, fi, err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c.Close()
}
