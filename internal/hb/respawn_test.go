package hb

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hbconf"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestRespawnRestartsUntil100: the client runs again after each exit and
// stops being restarted when it exits with status 100.
func TestRespawnRestartsUntil100(t *testing.T) {
	netnstest.RequireRoot(t) // respawn switches to the configured user
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is 0700; the client runs as nobody
	count := filepath.Join(dir, "count")
	// The client appends a line per run; on its 3rd run it exits 100.
	prog := filepath.Join(dir, "client.sh")
	body := "#!/bin/sh\necho run >> " + count + "\n[ $(wc -l < " + count + ") -ge 3 ] && exit 100\nexit 1\n"
	if err := os.WriteFile(prog, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Respawn(ctx, hbconf.Respawn{User: "nobody", Argv: []string{prog}}, slog.New(slog.DiscardHandler))
	}()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(count)
		if strings.Count(string(b), "run") >= 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // a 4th run would come within the backoff
	b, _ := os.ReadFile(count)
	if n := strings.Count(string(b), "run"); n != 3 {
		t.Fatalf("client ran %d times, want 3 (restarted twice, then exit 100 stops it)", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
