package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// noTemps fails when anything but want is left in dir.
func noTemps(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("directory holds %v, want %v", got, want)
	}
}

func TestWriteReplacesPlantedSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "out")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new\n"), Options{Perm: 0o644}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("written through the planted symlink: victim holds %q", b)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("%s: %v, %v; want a regular file", path, fi.Mode(), err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Errorf("%s holds %q", path, b)
	}
	noTemps(t, dir, "out", "victim")
}

// The mode is the caller's exactly: a restrictive umask does not narrow
// it, and a file that was wider before is narrowed.
func TestWriteModeIsExact(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	for _, perm := range []os.FileMode{0o644, 0o600, 0o640} {
		path := filepath.Join(dir, "f")
		if err := WriteFile(path, []byte("x"), Options{Perm: perm, Sync: true}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != perm {
			t.Errorf("mode %v (%v), want %v", fi.Mode().Perm(), err, perm)
		}
	}
	noTemps(t, dir, "f")
}

// A failed fill leaves the old content and no temporary file.
func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, Options{Perm: 0o644}, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Errorf("err %v, want boom naming %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("after a failed write the file holds %q", b)
	}
	noTemps(t, dir, "f")

	// A path that is a directory cannot be replaced.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "d"), []byte("x"), Options{Perm: 0o644}); err == nil {
		t.Error("replacing a directory succeeded")
	}
	noTemps(t, dir, "d", "f")

	// A missing directory is an error naming the path.
	missing := filepath.Join(dir, "none", "f")
	if err := WriteFile(missing, []byte("x"), Options{Perm: 0o644}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("write into a missing directory: %v", err)
	}
}
