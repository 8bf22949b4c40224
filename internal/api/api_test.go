package api

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
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
	path := filepath.Join(t.TempDir(), "run", "vigil.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, ln, d, slog.New(slog.DiscardHandler)) }()
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
