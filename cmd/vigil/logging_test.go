package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHeartbeatLogging: ha.cf's logfile gets info and up, debugfile debug
// and up, stderr stays as it was.
func TestHeartbeatLogging(t *testing.T) {
	dir := t.TempDir()
	logf, debugf := filepath.Join(dir, "ha-log"), filepath.Join(dir, "ha-debug")
	var stderr bytes.Buffer
	base := slog.New(slog.NewTextHandler(&stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	log, closeLogs, err := heartbeatLogging(base, logf, debugf, "")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("only in the debug file")
	log.Info("node status", "node", "ha2", "status", "dead")
	closeLogs()
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for name, got := range map[string]string{"stderr": stderr.String(), "logfile": read(logf), "debugfile": read(debugf)} {
		if !strings.Contains(got, "node=ha2 status=dead") {
			t.Errorf("%s lacks the info line: %q", name, got)
		}
		wantDebug := name == "debugfile"
		if strings.Contains(got, "only in the debug file") != wantDebug {
			t.Errorf("%s: debug line present=%v, want %v", name, !wantDebug, wantDebug)
		}
	}
	if _, _, err := heartbeatLogging(base, "", "", "nosuchfacility"); err == nil {
		t.Fatal("an unknown logfacility was accepted")
	}
}
