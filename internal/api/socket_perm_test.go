package api

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
)

// TestSocketRefusesNonRoot connects to the API socket as root and as the
// unprivileged user nobody (curl run with uid/gid 65534). The socket's
// directory is world-searchable here, so the socket's own mode 0600 is the
// only thing that keeps nobody out; a control run with mode 0666 shows it.
func TestSocketRefusesNonRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		netnstest.Unavailable(t, "needs root to run a client as another user")
	}
	curl := netnstest.RequireCommand(t, "curl")
	dir := filepath.Join(t.TempDir(), "pub")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's own directory is 0700: open the path to everyone.
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "vigil.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Serve(ctx, ln, &fakeDaemon{snap: status.Snapshot{Instances: []status.Instance{{Name: "VI_1"}}}}, slog.New(slog.DiscardHandler))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	run := func(uid uint32) (string, error) {
		cmd := exec.Command(curl, "-sS", "--max-time", "5", "--unix-socket", path, "http://vigil/v1/status")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(0); err != nil || !strings.Contains(out, `"VI_1"`) {
		t.Fatalf("root: %v %s", err, out)
	}
	if out, err := run(65534); err == nil {
		t.Fatalf("nobody read the status: %s", out)
	}
	// Control: with the socket opened to everyone, nobody gets through, so
	// the refusal above came from the socket's mode, not from elsewhere.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if out, err := run(65534); err != nil || !strings.Contains(out, `"VI_1"`) {
		t.Fatalf("control (socket mode 0666): nobody still refused: %v %s", err, out)
	}
}
