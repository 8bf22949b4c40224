// Package filewatch follows track_file files with inotify, as keepalived
// 2.2.7 does (keepalived/trackers/track_file.c): each file's directory is
// watched for IN_CLOSE_WRITE, IN_DELETE and IN_MOVE; a file written or moved
// in is re-read (track.ParseFileValue); a file deleted or moved away reads
// as 0.
package filewatch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/atomicfile"
	"github.com/vigil-ha/vigil/internal/pace"
	"github.com/vigil-ha/vigil/internal/track"
)

// File is one track_file.
type File struct {
	// Name is the track_file's name.
	Name string
	// Path is its `file`.
	Path string
}

// Options configures a Watcher.
type Options struct {
	Files []File
	// OnChange is called from the Watcher's goroutine with every file's
	// initial value when Run starts, then whenever a value changes. It must
	// not block for long.
	OnChange func(name string, value int64)
	// Logger; nil discards.
	Logger *slog.Logger
}

// Watcher follows track files. Values may be called from any goroutine; Run
// owns the inotify descriptor.
type Watcher struct {
	o     Options
	log   *slog.Logger
	files []*file

	mu     sync.Mutex
	values map[string]int64
}

type file struct {
	name string
	path string // resolved
	dir  string
	base string
	// warnedAt and held rate-limit the "invalid number" line (Run's
	// goroutine only): a writer that keeps writing garbage is one line per
	// invalidLogEvery, which says how many it stands for.
	warnedAt time.Time
	held     uint64
}

// invalidLogEvery is the least time between two "invalid number" lines for
// one file.
const invalidLogEvery = 10 * time.Second

// New resolves each file's path as keepalived's init_track_files: an
// existing file through its symbolic links, a missing one through its
// directory, which must exist ("Track file directory for NAME does not
// exist"). A file it cannot resolve is left out and named in the error; the
// Watcher returned with it follows the others. It starts nothing.
func New(o Options) (*Watcher, error) {
	w := &Watcher{o: o, log: o.Logger, values: map[string]int64{}}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	for _, f := range o.Files {
		p, err := Resolve(f.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("filewatch: track_file %s: %w", f.Name, err))
			continue
		}
		w.files = append(w.files, &file{name: f.Name, path: p, dir: filepath.Dir(p), base: filepath.Base(p)})
	}
	return w, errors.Join(errs...)
}

// Resolve is keepalived 2.2.7's init_track_files resolution of a track
// file's path: an existing file through its symbolic links, a missing one
// through its directory, which must exist. Its error is the reason
// keepalived removes the tracker: the directory does not exist ("Track
// file directory for NAME does not exist - removing") or the path is not
// accessible ("track file NAME is not accessible - ignoring").
func Resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("file %s is not accessible: %w", path, err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("directory %s does not exist", filepath.Dir(abs))
	} else if err != nil {
		return "", fmt.Errorf("directory %s cannot be resolved: %w", filepath.Dir(abs), err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dir)
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// Values returns the current value of every file, by track_file name.
func (w *Watcher) Values() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int64, len(w.values))
	for k, v := range w.values {
		out[k] = v
	}
	return out
}

// ReadValue reads a track file as keepalived's process_track_file: a
// missing, unreadable or empty file is 0; ok is false when the contents are
// out of range (keepalived then keeps the previous value).
func ReadValue(path string) (v int64, ok bool) {
	b, err := Read(path)
	if err != nil {
		return 0, true
	}
	return track.ParseFileValue(b)
}

// Read returns what keepalived reads of a track file (process_track_file):
// it opens the file non-blocking and reads once, at most 127 bytes, on the
// raw descriptor (not through Go's poller, which would wait for data), so a
// FIFO or a device with nothing to read reads as nothing at once instead of
// stalling the caller. A missing file is an error wrapping fs.ErrNotExist.
func Read(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 127)
	n, err := unix.Read(fd, buf)
	for err == unix.EINTR {
		n, err = unix.Read(fd, buf)
	}
	switch {
	case err == unix.EAGAIN:
		return nil, nil
	case err != nil:
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return buf[:max(n, 0)], nil
}

// Run watches the files' directories, reports every file's initial value,
// then reports changes until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("filewatch: inotify: %w", err)
	}
	byWD := map[int32][]*file{}
	for _, f := range w.files {
		// Watch before reading, so that no write falls between.
		wd, err := unix.InotifyAddWatch(fd, f.dir, unix.IN_CLOSE_WRITE|unix.IN_DELETE|unix.IN_MOVE)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("filewatch: watch %s for track_file %s: %w", f.dir, f.name, err)
		}
		byWD[int32(wd)] = append(byWD[int32(wd)], f)
	}
	inotify := os.NewFile(uintptr(fd), "inotify")
	stop := context.AfterFunc(ctx, func() { inotify.Close() })
	defer func() {
		if stop() {
			inotify.Close()
		}
	}()

	for _, f := range w.files {
		v, ok := ReadValue(f.path)
		if !ok {
			w.log.Warn("invalid number in track file, using 0", "track_file", f.name, "file", f.path)
			v = 0
		}
		w.set(f, v, true)
	}

	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := inotify.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("filewatch: read inotify: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			// struct inotify_event: wd, mask, cookie, len, name[len].
			ne := binary.NativeEndian
			wd := int32(ne.Uint32(buf[off:]))
			mask := ne.Uint32(buf[off+4:])
			nameEnd := off + unix.SizeofInotifyEvent + int(ne.Uint32(buf[off+12:]))
			if nameEnd > n {
				break
			}
			name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:nameEnd], "\x00"))
			off = nameEnd
			if mask&unix.IN_Q_OVERFLOW != 0 {
				w.log.Warn("inotify queue overflow, re-reading all track files")
				for _, f := range w.files {
					w.reread(f)
				}
				continue
			}
			if mask&unix.IN_ISDIR != 0 {
				continue
			}
			for _, f := range byWD[wd] {
				if f.base != name {
					continue
				}
				if mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0 {
					// "The file has disappeared. Treat as though the value is 0".
					w.set(f, 0, false)
				} else {
					w.reread(f)
				}
			}
		}
	}
}

func (w *Watcher) reread(f *file) {
	v, ok := ReadValue(f.path)
	if !ok {
		if !pace.Allow(&f.warnedAt, time.Now(), invalidLogEvery) {
			f.held++
			return
		}
		w.log.Warn("invalid number read from track file, ignoring", "track_file", f.name, "file", f.path, "suppressed", f.held)
		f.held = 0
		return
	}
	w.set(f, v, false)
}

func (w *Watcher) set(f *file, v int64, initial bool) {
	w.mu.Lock()
	old, had := w.values[f.name]
	w.values[f.name] = v
	w.mu.Unlock()
	if !initial && had && old == v {
		return
	}
	if w.o.OnChange != nil {
		w.o.OnChange(f.name, v)
	}
}

// InitFile is track_file's `init_file [VALUE] [overwrite]`
// (track_file_end_handler): write VALUE (default 0) followed by a newline
// when the file does not exist, or always with overwrite. A path that
// exists and is not a regular file is an error. keepalived never overwrites
// on reload: pass overwrite false then. The file is written to a temporary
// name and renamed into place (atomicfile), as keepalived's fopen_safe.
func InitFile(path string, value int, overwrite bool) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && !overwrite:
		return nil
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("filewatch: cannot initialise track file %s: it is not a regular file", path)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("filewatch: init_file %s: %w", path, err)
	}
	// Synced: the value is the tracker's state across a reboot.
	err = atomicfile.WriteFile(path, []byte(strconv.Itoa(value)+"\n"), atomicfile.Options{Perm: 0o644, Sync: true})
	if err != nil {
		return fmt.Errorf("filewatch: init_file: %w", err)
	}
	return nil
}
