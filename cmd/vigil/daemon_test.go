package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/config"
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
	n, fifos, err := newNotifier(g, slog.New(slog.NewTextHandler(&logs, nil)))
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
