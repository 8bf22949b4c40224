package netnstest

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// binDir removes the binaries of test processes that have ended (a dead
// PID, or a name that is no PID: the random suffix of older runs), keeps
// those of running ones, and gives this process an empty directory.
func TestBinDirRemovesDeadRuns(t *testing.T) {
	tmp := t.TempDir()
	// A PID that cannot exist (above the kernel's maximum of 2^22).
	dead := filepath.Join(tmp, binPrefix+"99999999")
	live := filepath.Join(tmp, binPrefix+strconv.Itoa(os.Getppid()))
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "vigil"), []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := binDir(tmp, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the binaries of an ended run are still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(live, "vigil")); err != nil {
		t.Errorf("the binaries of a running process were removed: %v", err)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 || filepath.Dir(dir) != tmp {
		t.Errorf("binDir = %s: %d entries, %v", dir, len(ents), err)
	}
}
