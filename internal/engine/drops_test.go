package engine

import (
	"bytes"
	"log/slog"
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestDropLimiter: one log line per instance and reason per dropLogEvery,
// the next one carrying how many were suppressed; reasons are limited
// apart; the codec's and send errors' counts are reported per reason, the
// limiter's log lines counting none.
func TestDropLimiter(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in := &instance{}
	var b dropBudget
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	src := netip.MustParseAddr("10.0.0.2")
	for i := range 5 {
		in.limiter.note(&b, log, t0.Add(time.Duration(i)*time.Second), "VI_1", "auth_mismatch", src, "bad password")
	}
	in.limiter.note(&b, log, t0.Add(2*time.Second), "VI_1", "ttl", src, "ttl 64")
	in.limiter.note(&b, log, t0.Add(dropLogEvery), "VI_1", "auth_mismatch", src, "bad password")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), buf.String())
	}
	if strings.Contains(lines[0], "suppressed") || !strings.Contains(lines[1], "reason=ttl") || !strings.Contains(lines[2], "suppressed=4") {
		t.Errorf("log lines:\n%s", buf.String())
	}
	if c := in.limiter.counts(); c != nil {
		t.Errorf("counts %v after logged drops only, want none", c)
	}
	// A clock stepped back an hour reopens the gate (pace.Allow) instead
	// of keeping the reason silent for the hour.
	buf.Reset()
	in.limiter.note(&b, log, t0.Add(-time.Hour), "VI_1", "auth_mismatch", src, "bad password")
	if !strings.Contains(buf.String(), "reason=auth_mismatch") {
		t.Errorf("no line after the clock went back: %q", buf.String())
	}
	in.codecDrops("bad_checksum")
	in.codecDrops("bad_checksum")
	in.codecDrops("auth_mismatch")
	if c, want := in.limiter.counts(), map[string]uint64{"bad_checksum": 2, "auth_mismatch": 1}; !maps.Equal(c, want) {
		t.Errorf("counts %v, want %v", c, want)
	}
}
