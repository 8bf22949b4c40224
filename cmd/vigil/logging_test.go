package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHeartbeatLogging: ha.cf's logfile gets info and up, debugfile debug
// and up, in heartbeat's line format under the persona's name
// (cluster-glue print_logline(): "heartbeat[PID]: 2006/01/02_15:04:05
// info: message"); stderr stays as it was.
func TestHeartbeatLogging(t *testing.T) {
	dir := t.TempDir()
	logf, debugf := filepath.Join(dir, "ha-log"), filepath.Join(dir, "ha-debug")
	var stderr bytes.Buffer
	base := slog.New(slog.NewTextHandler(&stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	log, closeLogs, err := heartbeatLogging(base, false, "heartbeat", logf, debugf, "")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("only in the debug file")
	log.Info("node status", "node", "ha2", "status", "dead")
	log.With("group", "web").Warn("resource failed")
	closeLogs()
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if !strings.Contains(stderr.String(), "level=INFO msg=\"node status\" node=ha2 status=dead") {
		t.Errorf("stderr changed: %q", stderr.String())
	}
	head := fmt.Sprintf(`heartbeat\[%d\]: \d{4}/\d\d/\d\d_\d\d:\d\d:\d\d `, os.Getpid())
	info := regexp.MustCompile(`(?m)^` + head + `info: node status node=ha2 status=dead$`)
	warn := regexp.MustCompile(`(?m)^` + head + `WARN: resource failed group=web$`)
	debug := regexp.MustCompile(`(?m)^` + head + `debug: only in the debug file$`)
	for name, got := range map[string]string{"logfile": read(logf), "debugfile": read(debugf)} {
		if !info.MatchString(got) || !warn.MatchString(got) {
			t.Errorf("%s lacks heartbeat's info or WARN line:\n%s", name, got)
		}
		if wantDebug := name == "debugfile"; debug.MatchString(got) != wantDebug {
			t.Errorf("%s: debug line present=%v, want %v:\n%s", name, !wantDebug, wantDebug, got)
		}
	}
	if _, _, err := heartbeatLogging(base, false, "heartbeat", "", "", "nosuchfacility"); err == nil {
		t.Fatal("an unknown logfacility was accepted")
	}

	// A logfile heartbeat cannot open (its directory is missing) does not
	// stop heartbeat: vigil warns and logs to stderr.
	stderr.Reset()
	missing := filepath.Join(dir, "no-such-dir", "ha-log")
	log, closeLogs, err = heartbeatLogging(base, false, "heartbeat", missing, "", "")
	if err != nil {
		t.Fatalf("logfile in a missing directory: %v (heartbeat starts)", err)
	}
	log.Info("still logged")
	closeLogs()
	if !strings.Contains(stderr.String(), "cannot open the log file") || !strings.Contains(stderr.String(), "still logged") {
		t.Errorf("stderr: %q", stderr.String())
	}
}

// TestHeartbeatSyslogLine: with ha.cf's logfacility, heartbeat logs under
// its program name as the syslog ident, "[PID]: info: message", at the
// message's severity (cluster-glue cl_direct_log()).
func TestHeartbeatSyslogLine(t *testing.T) {
	var b bytes.Buffer
	h := newHALogHandler(slog.LevelInfo, haSyslogLine(&b, syslog.LOG_LOCAL0, "heartbeat", 42))
	at := time.Date(2026, 12, 7, 9, 5, 3, 0, time.Local)
	for _, r := range []slog.Record{
		slog.NewRecord(at, slog.LevelInfo, "Link ha2:eth1 up.", 0),
		slog.NewRecord(at, slog.LevelError, "Cannot add address", 0),
		slog.NewRecord(at, slog.LevelDebug, "not logged", 0),
	} {
		if h.Enabled(t.Context(), r.Level) {
			if err := h.Handle(t.Context(), r); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := "<134>Dec  7 09:05:03 heartbeat: [42]: info: Link ha2:eth1 up.\n" + // local0 (16<<3) | info (6)
		"<131>Dec  7 09:05:03 heartbeat: [42]: ERROR: Cannot add address\n" // local0 | err (3)
	if b.String() != want {
		t.Errorf("syslog messages:\n%q\nwant\n%q", b.String(), want)
	}
}

// TestHeartbeatSyslogOnce: a detached heartbeat persona sends stderr to
// syslog; with ha.cf's logfacility each line reaches syslog once, in
// heartbeat's format, and stderr gets nothing more. In the foreground
// (stderr not syslog) stderr keeps every line.
func TestHeartbeatSyslogOnce(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	saved := syslogPaths
	syslogPaths = []string{sock}
	defer func() { syslogPaths = saved }()
	for _, detached := range []bool{true, false} {
		var stderr bytes.Buffer
		base := slog.New(slog.NewTextHandler(&stderr, nil))
		log, closeLogs, err := heartbeatLogging(base, detached, "heartbeat", "", "", "local0")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("Link ha2:eth1 up.")
		log.Warn("resource failed", "group", "web")
		closeLogs()
		var got []string
		buf := make([]byte, 4096)
		for range 2 {
			ln.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := ln.Read(buf)
			if err != nil {
				t.Fatalf("detached %v: syslog: %v (got %q)", detached, err, got)
			}
			got = append(got, string(buf[:n]))
		}
		ln.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := ln.Read(buf); err == nil {
			t.Errorf("detached %v: a third syslog message: %q", detached, buf[:n])
		}
		if !strings.Contains(got[0], "heartbeat: ["+strconv.Itoa(os.Getpid())+"]: info: Link ha2:eth1 up.") || !strings.Contains(got[1], "WARN: resource failed group=web") {
			t.Errorf("detached %v: syslog messages %q", detached, got)
		}
		if lines := strings.Count(stderr.String(), "\n"); detached && lines != 0 || !detached && lines != 2 {
			t.Errorf("detached %v: stderr has %d lines:\n%s", detached, lines, stderr.String())
		}
	}
}
