package filewatch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

type change struct {
	Name  string
	Value int64
}

func start(t *testing.T, files ...File) (*Watcher, chan change) {
	t.Helper()
	return startLogged(t, nil, files...)
}

func startLogged(t *testing.T, log *slog.Logger, files ...File) (*Watcher, chan change) {
	t.Helper()
	ch := make(chan change, 100)
	w, err := New(Options{Files: files, Logger: log, OnChange: func(n string, v int64) { ch <- change{n, v} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
	})
	return w, ch
}

func expect(t *testing.T, ch chan change, want ...change) {
	t.Helper()
	var got []change
	for range want {
		select {
		case c := <-ch:
			got = append(got, c)
		case <-time.After(10 * time.Second):
			t.Fatalf("waiting for %v, got %v", want, got)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("changes (-want +got):\n%s", diff)
	}
}

func quiet(t *testing.T, ch chan change) {
	t.Helper()
	select {
	case c := <-ch:
		t.Fatalf("unexpected change %v", c)
	case <-time.After(200 * time.Millisecond):
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatch(t *testing.T) {
	d := t.TempDir()
	a, b := d+"/a", d+"/b"
	write(t, a, "10\n")
	_, ch := start(t, File{"fa", a}, File{"fb", b})
	// Initial values: an existing file, and a missing one reading 0.
	expect(t, ch, change{"fa", 10}, change{"fb", 0})

	write(t, a, "-20\n") // IN_CLOSE_WRITE
	expect(t, ch, change{"fa", -20})
	write(t, a, "-20\n") // same value: no report (update_track_file_status)
	quiet(t, ch)
	write(t, b, "0x10") // strtol base 0
	expect(t, ch, change{"fb", 16})

	// Written elsewhere and moved in (IN_MOVED_TO), as editors do.
	write(t, d+"/tmp", "7")
	if err := os.Rename(d+"/tmp", a); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, change{"fa", 7})

	// Deleted (IN_DELETE) or moved away (IN_MOVED_FROM): 0.
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, change{"fa", 0})
	if err := os.Rename(b, d+"/elsewhere"); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, change{"fb", 0})

	// An out-of-range number is ignored: the value stays.
	write(t, a, "5")
	expect(t, ch, change{"fa", 5})
	write(t, a, "99999999999")
	quiet(t, ch)

	// Other files in the directory are not reported.
	write(t, d+"/other", "3")
	quiet(t, ch)
}

// lockedBuffer is a log destination the watcher's goroutine writes while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInvalidNumberLogBounded: a writer that keeps writing an out-of-range number to a
// track file makes one log line per period, not one per write.
func TestInvalidNumberLogBounded(t *testing.T) {
	d := t.TempDir()
	a := d + "/a"
	write(t, a, "1")
	var logs lockedBuffer
	_, ch := startLogged(t, slog.New(slog.NewTextHandler(&logs, nil)), File{"fa", a})
	expect(t, ch, change{"fa", 1})
	// Moved in whole (IN_MOVED_TO): no read sees a half-written file.
	put := func(s string) {
		write(t, d+"/tmp", s)
		if err := os.Rename(d+"/tmp", a); err != nil {
			t.Fatal(err)
		}
	}
	for range 30 {
		put("99999999999") // out of range: invalid, the value stays
	}
	put("2") // read after the garbage: the watcher has seen it all
	expect(t, ch, change{"fa", 2})
	if n := strings.Count(logs.String(), "invalid number"); n != 1 {
		t.Fatalf("%d log lines for 30 invalid writes, want 1:\n%s", n, logs.String())
	}
}

func TestSymlinkedFile(t *testing.T) {
	d := t.TempDir()
	real := d + "/real"
	write(t, real, "1")
	link := d + "/link"
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	_, ch := start(t, File{"f", link})
	expect(t, ch, change{"f", 1})
	write(t, real, "2")
	expect(t, ch, change{"f", 2})
}

func TestNewMissingDirectory(t *testing.T) {
	_, err := New(Options{Files: []File{{"f", t.TempDir() + "/nodir/file"}}})
	if err == nil || !strings.Contains(err.Error(), "track_file f") {
		t.Fatalf("New with a missing directory: %v", err)
	}
}

func TestInitFile(t *testing.T) {
	d := t.TempDir()
	p := d + "/f"
	read := func() string {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Sprint(err)
		}
		return string(b)
	}
	if err := InitFile(p, 5, false); err != nil || read() != "5\n" {
		t.Fatalf("init of a missing file: %v, %q", err, read())
	}
	if err := InitFile(p, 9, false); err != nil || read() != "5\n" {
		t.Fatalf("init without overwrite changed an existing file: %v, %q", err, read())
	}
	if err := InitFile(p, -3, true); err != nil || read() != "-3\n" {
		t.Fatalf("init with overwrite: %v, %q", err, read())
	}
	if err := InitFile(d, 1, true); err == nil {
		t.Fatal("init_file overwrote a directory")
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	ents, _ := os.ReadDir(d)
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// A track file that is a FIFO must not stall the watcher: keepalived opens
// it O_NONBLOCK and reads once, so a FIFO whose writer has written nothing
// (or less than a full buffer) reads at once, as 0 or as what is there.
func TestReadValueFIFO(t *testing.T) {
	path := t.TempDir() + "/fifo"
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// A writer that holds the FIFO open: O_RDWR does not block.
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	read := func() (int64, bool) {
		type res struct {
			v  int64
			ok bool
		}
		ch := make(chan res, 1)
		go func() { v, ok := ReadValue(path); ch <- res{v, ok} }()
		select {
		case r := <-ch:
			return r.v, r.ok
		case <-time.After(10 * time.Second):
			t.Fatal("ReadValue blocked on a FIFO")
			return 0, false
		}
	}
	if v, ok := read(); v != 0 || !ok {
		t.Errorf("empty FIFO: ReadValue = %d, %v; want 0, true", v, ok)
	}
	if _, err := w.WriteString("17\n"); err != nil {
		t.Fatal(err)
	}
	if v, ok := read(); v != 17 || !ok {
		t.Errorf("FIFO holding %q: ReadValue = %d, %v; want 17, true", "17\n", v, ok)
	}
}
