package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// fanout is a slog.Handler that passes each record to several handlers
// (stderr for journald, heartbeat's logfile / debugfile, syslog).
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

// syslogFacilities maps ha.cf's logfacility names.
var syslogFacilities = map[string]syslog.Priority{
	"kern": syslog.LOG_KERN, "user": syslog.LOG_USER, "mail": syslog.LOG_MAIL, "daemon": syslog.LOG_DAEMON,
	"auth": syslog.LOG_AUTH, "syslog": syslog.LOG_SYSLOG, "lpr": syslog.LOG_LPR, "news": syslog.LOG_NEWS,
	"uucp": syslog.LOG_UUCP, "cron": syslog.LOG_CRON, "authpriv": syslog.LOG_AUTHPRIV, "ftp": syslog.LOG_FTP,
	"local0": syslog.LOG_LOCAL0, "local1": syslog.LOG_LOCAL1, "local2": syslog.LOG_LOCAL2, "local3": syslog.LOG_LOCAL3,
	"local4": syslog.LOG_LOCAL4, "local5": syslog.LOG_LOCAL5, "local6": syslog.LOG_LOCAL6, "local7": syslog.LOG_LOCAL7,
}

// heartbeatLogging adds ha.cf's logfile (info and up), debugfile (debug and
// up) and logfacility (syslog) to the daemon's stderr logging, as heartbeat
// writes to them, in heartbeat's line formats under ident (heartbeat's
// entity, its program name: "heartbeat" under the heartbeat persona). It
// returns the logger and a function closing the files.
//
// stderrSyslog says that stderr itself goes to syslog (a persona's
// detached daemon, see persona.background): with logfacility in place,
// stderr is then left out, or each line would reach syslog twice.
func heartbeatLogging(base *slog.Logger, stderrSyslog bool, ident, logFile, debugFile, facility string) (*slog.Logger, func(), error) {
	hs := fanout{base.Handler()}
	var closers []func() error
	pid := os.Getpid()
	open := func(path string, lvl slog.Level) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			// heartbeat only records the name (cl_log_set_logfile) and
			// runs; its writes to the file then fail. stderr still
			// carries everything.
			base.Warn("ha.cf: cannot open the log file; logging to stderr only, heartbeat runs on too", "file", path, "err", err)
			return nil
		}
		closers = append(closers, f.Close)
		hs = append(hs, newHALogHandler(lvl, haFileLine(f, ident, pid)))
		return nil
	}
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	if logFile != "" {
		if err := open(logFile, slog.LevelInfo); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	if debugFile != "" {
		if err := open(debugFile, slog.LevelDebug); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	if facility != "" && facility != "none" {
		pri, ok := syslogFacilities[strings.ToLower(facility)]
		if !ok {
			closeAll()
			return nil, nil, fmt.Errorf("ha.cf: logfacility %q is not a syslog facility", facility)
		}
		w, err := newSyslogConn()
		if err != nil {
			// No syslog socket (a container, a namespace): stderr still
			// carries everything.
			base.Warn("logfacility: syslog is not reachable; logging to stderr only", "facility", facility, "err", err)
		} else {
			closers = append(closers, w.Close)
			hs = append(hs, newHALogHandler(slog.LevelInfo, haSyslogLine(w, pri, ident, pid)))
			if stderrSyslog {
				hs = hs[1:]
			}
		}
	}
	if len(hs) == 1 && len(closers) == 0 {
		return base, func() {}, nil
	}
	return slog.New(hs), closeAll, nil
}

// haPriority is cluster-glue's prio2str() (cl_log.c) of a level, the word
// heartbeat writes before each message, and its syslog severity.
func haPriority(l slog.Level) (string, syslog.Priority) {
	switch {
	case l >= slog.LevelError:
		return "ERROR", syslog.LOG_ERR
	case l >= slog.LevelWarn:
		return "WARN", syslog.LOG_WARNING
	case l >= slog.LevelInfo:
		return "info", syslog.LOG_INFO
	}
	return "debug", syslog.LOG_DEBUG
}

// haFileLine writes a record as heartbeat's logfile and debugfile lines
// (cluster-glue cl_log.c print_logline()):
// "heartbeat[PID]: 2006/01/02_15:04:05 info: message".
func haFileLine(w io.Writer, ident string, pid int) func(t time.Time, l slog.Level, text string) error {
	return func(t time.Time, l slog.Level, text string) error {
		word, _ := haPriority(l)
		_, err := fmt.Fprintf(w, "%s[%d]: %s %s: %s\n", ident, pid, t.Format("2006/01/02_15:04:05"), word, text)
		return err
	}
}

// haSyslogLine sends a record as heartbeat's syslog message
// (cluster-glue cl_log.c cl_direct_log()): ident "heartbeat", message
// "[PID]: info: message", at the record's severity in facility pri.
func haSyslogLine(w io.Writer, pri syslog.Priority, ident string, pid int) func(t time.Time, l slog.Level, text string) error {
	return func(t time.Time, l slog.Level, text string) error {
		word, sev := haPriority(l)
		_, err := fmt.Fprintf(w, "<%d>%s %s: [%d]: %s: %s\n", int(pri|sev), t.Format(time.Stamp), ident, pid, word, text)
		return err
	}
}

// syslogConn is a connection to the local syslog socket, as openlog()
// makes; a failed write dials again once (syslogd restarted). Each Write
// is one message. It is not safe for concurrent use (haLogHandler
// serialises its writes).
type syslogConn struct{ c net.Conn }

func newSyslogConn() (*syslogConn, error) {
	c, err := dialSyslog()
	if err != nil {
		return nil, err
	}
	return &syslogConn{c}, nil
}

func (s *syslogConn) Write(b []byte) (int, error) {
	n, err := s.c.Write(b)
	if err == nil {
		return n, nil
	}
	c, derr := dialSyslog()
	if derr != nil {
		return n, err
	}
	s.c.Close()
	s.c = c
	return s.c.Write(b)
}

func (s *syslogConn) Close() error { return s.c.Close() }

// syslogPaths are the local syslog sockets, tried in order.
var syslogPaths = []string{"/dev/log", "/var/run/syslog", "/var/run/log"}

func dialSyslog() (net.Conn, error) {
	var err error
	for _, path := range syslogPaths {
		for _, network := range []string{"unixgram", "unix"} {
			var c net.Conn
			if c, err = net.Dial(network, path); err == nil {
				return c, nil
			}
		}
	}
	return nil, err
}

// haLogHandler is a slog.Handler writing each record as one heartbeat log
// line: the message, then its attributes as key=value (slog's text form).
// It is safe for concurrent use; handlers derived by WithAttrs and
// WithGroup share its lock.
type haLogHandler struct {
	level slog.Level
	write func(t time.Time, l slog.Level, text string) error
	mu    *sync.Mutex
	buf   *bytes.Buffer
	attrs slog.Handler // a text handler of the attributes alone, into buf
}

func newHALogHandler(level slog.Level, write func(time.Time, slog.Level, string) error) *haLogHandler {
	buf := new(bytes.Buffer)
	drop := func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
			return slog.Attr{}
		}
		return a
	}
	return &haLogHandler{level: level, write: write, mu: new(sync.Mutex), buf: buf,
		attrs: slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: drop})}
}

func (h *haLogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *haLogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.attrs.Handle(ctx, r); err != nil {
		return err
	}
	text := r.Message
	if kv := strings.TrimSpace(h.buf.String()); kv != "" {
		text += " " + kv
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	return h.write(t, r.Level, text)
}

func (h *haLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = h.attrs.WithAttrs(as)
	return &c
}

func (h *haLogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.attrs = h.attrs.WithGroup(name)
	return &c
}
