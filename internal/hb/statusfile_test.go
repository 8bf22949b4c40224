package hb

import (
	"os"
	"path/filepath"
	"testing"
)

// The status file may live in a world-writable directory (/tmp): a symlink
// planted at its temporary name must not be followed (a root daemon would
// write through it into any file), and one planted at the file itself is
// replaced.
func TestWriteStatusFilePlantedSymlinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hb.json")
	if err := os.Symlink(victim, path+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := writeStatusFile(path, []byte(`{"node":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the file behind the planted %s.tmp symlink was overwritten: %q", path, b)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"node":"a"}` {
		t.Errorf("status file holds %q", b)
	}

	// A symlink at the path itself is replaced, not written through.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := writeStatusFile(path, []byte(`{"node":"b"}`)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the file behind the planted %s symlink was overwritten: %q", path, b)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Errorf("status file: %v, %v; want a regular file of mode 0644", fi.Mode(), err)
	}
	if m, _ := filepath.Glob(path + ".*"); len(m) != 1 { // the planted .tmp only
		t.Errorf("temporary files left: %v", m)
	}
}
