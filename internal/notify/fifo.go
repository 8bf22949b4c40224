package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/pace"
	"github.com/vigil-ha/vigil/internal/script"
)

// FIFOOptions describes notify_fifo, vrrp_notify_fifo or lvs_notify_fifo.
type FIFOOptions struct {
	// Path of the FIFO.
	Path string
	// Owner, if set, owns a FIFO that vigil creates (keepalived: the user
	// given on the notify_fifo line, else the default script user).
	Owner *script.Cred
	// Script is the *_notify_fifo_script, run with the FIFO path appended
	// as its last argument for as long as the FIFO is open; nil for none.
	Script *script.Prepared
	Runner *script.Runner
	Logger *slog.Logger
}

// fifoLogEvery is the least time between two log lines about lines a FIFO
// dropped.
const fifoLogEvery = 10 * time.Second

// FIFO is an open notify FIFO. Write never blocks: a line the reader has no
// room for is dropped and counted (keepalived opens the FIFO O_NONBLOCK and
// ignores failed writes). Write, Dropped and Close are safe for concurrent
// use; a nil *FIFO ignores writes.
type FIFO struct {
	o       FIFOOptions
	log     *slog.Logger
	created bool

	mu       sync.Mutex
	fd       int       // -1 once closed
	warnedAt time.Time // last "dropping lines" log line (see Write)
	dropped  atomic.Uint64
	written  atomic.Uint64
}

// OpenFIFO creates the FIFO if it does not exist (mode 0600, chowned to
// Owner: what keepalived 2.2.7 makes under its umask 0177, so that only the
// FIFO's user can read the events, or take them from its reader) and opens it read-write and non-blocking, as keepalived's fifo_open
// (lib/notify.c): opened read-write, it never blocks for want of a reader,
// and a reader sees end-of-file only when vigil closes it. An existing path
// that is not a FIFO is an error.
func OpenFIFO(o FIFOOptions) (*FIFO, error) {
	f := &FIFO{o: o, log: o.Logger, fd: -1}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	err := unix.Mkfifo(o.Path, 0o600)
	switch {
	case err == nil:
		f.created = true
		// mkfifo's mode is masked by the umask.
		if err := os.Chmod(o.Path, 0o600); err != nil {
			_ = os.Remove(o.Path)
			return nil, fmt.Errorf("notify: fifo %s: %w", o.Path, err)
		}
		if o.Owner != nil {
			if err := os.Chown(o.Path, int(o.Owner.UID), int(o.Owner.GID)); err != nil {
				_ = os.Remove(o.Path)
				return nil, fmt.Errorf("notify: fifo %s: %w", o.Path, err)
			}
		}
	case errors.Is(err, unix.EEXIST):
		fi, err := os.Lstat(o.Path)
		if err != nil {
			return nil, fmt.Errorf("notify: fifo %s: %w", o.Path, err)
		}
		if fi.Mode()&os.ModeNamedPipe == 0 {
			return nil, fmt.Errorf("notify: fifo %s exists and is not a FIFO (%v)", o.Path, fi.Mode().Type())
		}
	default:
		return nil, fmt.Errorf("notify: unable to create fifo %s: %w", o.Path, err)
	}
	fd, err := unix.Open(o.Path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		if f.created {
			_ = os.Remove(o.Path)
		}
		return nil, fmt.Errorf("notify: unable to open fifo %s: %w", o.Path, err)
	}
	f.fd = fd
	return f, nil
}

// Path is the FIFO's path.
func (f *FIFO) Path() string { return f.o.Path }

// Write writes one line; it reports whether the line went in whole. Lines
// are shorter than PIPE_BUF, so each is written atomically or not at all.
func (f *FIFO) Write(line string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		f.dropped.Add(1)
		return false
	}
	n, err := unix.Write(f.fd, []byte(line))
	if err != nil || n != len(line) {
		// One line per fifoLogEvery at most: a reader that stopped reading
		// while events flood in (forged lower-priority adverts make one
		// each) must not fill the log instead.
		d := f.dropped.Add(1)
		if pace.Allow(&f.warnedAt, time.Now(), fifoLogEvery) {
			f.log.Warn("notify fifo full or closed, dropping lines", "fifo", f.o.Path, "dropped", d, "err", err)
		}
		return false
	}
	f.written.Add(1)
	return true
}

// Dropped is the number of lines that could not be written.
func (f *FIFO) Dropped() uint64 {
	if f == nil {
		return 0
	}
	return f.dropped.Load()
}

// Written is the number of lines written.
func (f *FIFO) Written() uint64 {
	if f == nil {
		return 0
	}
	return f.written.Load()
}

// Run runs the FIFO's script, if any, with the FIFO path as its last
// argument, until ctx ends; then the script's process group gets SIGTERM
// (then SIGKILL), as keepalived's script_killall at shutdown and reload. A
// script that exits by itself is logged and not restarted (keepalived:
// "notify fifo script terminated"). Run returns when the script has been
// reaped.
func (f *FIFO) Run(ctx context.Context) error {
	if f.o.Script == nil {
		<-ctx.Done()
		return nil
	}
	r := f.o.Runner
	if r == nil {
		r = script.NewRunner(script.RunnerOptions{Logger: f.o.Logger})
	}
	res := r.Run(ctx, f.o.Script, 0, f.o.Path)
	if ctx.Err() == nil {
		f.log.Warn("notify fifo script terminated", "fifo", f.o.Path, "result", res.String())
		<-ctx.Done()
	}
	return nil
}

// Close closes the FIFO, first removing it if vigil created it (so that a
// reader that loops reopening the FIFO cannot reopen this one, as
// keepalived's fifo_close). The reader sees end-of-file.
func (f *FIFO) Close() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return nil
	}
	var errs []error
	if f.created {
		if err := os.Remove(f.o.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := unix.Close(f.fd); err != nil {
		errs = append(errs, err)
	}
	f.fd = -1
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("notify: close fifo %s: %w", f.o.Path, err)
	}
	return nil
}
