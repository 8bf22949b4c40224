package hb

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two starts within the same second must not share a generation: the
// peer would drop the second run's first messages (t=starting,
// t=resource) as older than what it has seen.
func TestGenerationRisesWithinOneSecond(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	path := filepath.Join(t.TempDir(), "lib", "hb_generation")
	now := time.Unix(1_800_000_000, 0)

	first := nextGeneration(path, now, log)
	if first != 1_800_000_001 {
		t.Fatalf("first start: generation %d, want the clock + 1 as heartbeat without a file", first)
	}
	if !strings.Contains(logs.String(), "no previous generation") {
		t.Errorf("no warning for the missing file: %s", logs.String())
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != "     1800000001\n" {
		t.Fatalf("file holds %q (%v), want heartbeat's 15-column number and newline", data, err)
	}
	second := nextGeneration(path, now, log)
	if second != first+1 {
		t.Fatalf("second start in the same second: generation %d, want %d", second, first+1)
	}
	// A file heartbeat wrote is continued.
	os.WriteFile(path, []byte("             42\n"), 0o644)
	if g := nextGeneration(path, now, log); g != 43 {
		t.Fatalf("after heartbeat's 42: %d", g)
	}
	// hbgenmethod time: the clock, as heartbeat.
	if g := nextGeneration("", now, log); g != 1_800_000_000 {
		t.Fatalf("hbgenmethod time: %d", g)
	}
}

func TestGenerationBrokenOrUnwritableFile(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	path := filepath.Join(dir, "hb_generation")
	os.WriteFile(path, []byte("garbage\n"), 0o644)
	if g := nextGeneration(path, now, log); g != uint64(now.Unix())+1 {
		t.Fatalf("broken file: %d", g)
	}
	if !strings.Contains(logs.String(), "broken previous generation") {
		t.Errorf("no warning for the broken file: %s", logs.String())
	}
	// The directory cannot be made (its parent is a file): the clock,
	// with a warning, and no failure.
	logs.Reset()
	os.WriteFile(filepath.Join(dir, "plain"), nil, 0o644)
	if g := nextGeneration(filepath.Join(dir, "plain", "hb_generation"), now, log); g != uint64(now.Unix()) {
		t.Fatalf("unwritable: %d", g)
	}
	if !strings.Contains(logs.String(), "cannot keep the generation on disk") {
		t.Errorf("no warning for the unwritable file: %s", logs.String())
	}
}
