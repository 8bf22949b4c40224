package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"log/syslog"
	"os"
	"strings"
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
// writes to them. It returns the logger and a function closing the files.
func heartbeatLogging(base *slog.Logger, logFile, debugFile, facility string) (*slog.Logger, func(), error) {
	hs := fanout{base.Handler()}
	var closers []func() error
	open := func(path string, lvl slog.Level) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("ha.cf: %w", err)
		}
		closers = append(closers, f.Close)
		hs = append(hs, slog.NewTextHandler(f, &slog.HandlerOptions{Level: lvl}))
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
		w, err := syslog.New(pri|syslog.LOG_INFO, "vigil")
		if err != nil {
			// No syslog socket (a container, a namespace): stderr still
			// carries everything.
			base.Warn("logfacility: syslog is not reachable; logging to stderr only", "facility", facility, "err", err)
		} else {
			closers = append(closers, w.Close)
			hs = append(hs, slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
		}
	}
	if len(hs) == 1 {
		return base, func() {}, nil
	}
	return slog.New(hs), closeAll, nil
}
