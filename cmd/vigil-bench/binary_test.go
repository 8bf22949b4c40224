package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLocateVigil: run outside vigil's source tree without --vigil, the
// bench takes the vigil beside its own executable, or fails with a message
// naming --vigil (go build outside the module fails on modules, and the
// old message said nothing of the flag).
func TestLocateVigil(t *testing.T) {
	tmp := t.TempDir()
	exec := func(p string) string {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mod := filepath.Join(tmp, "src")
	outside := filepath.Join(tmp, "elsewhere")
	other := filepath.Join(tmp, "other")
	bare := filepath.Join(tmp, "bare")
	withVigil := filepath.Join(tmp, "bin")
	for _, d := range []string{filepath.Join(mod, "cmd", "vigil-bench"), outside, other, bare, withVigil} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("// vigil\nmodule github.com/vigil-ha/vigil\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	given := exec(filepath.Join(tmp, "my-vigil"))
	beside := exec(filepath.Join(withVigil, "vigil"))
	bareExe := filepath.Join(bare, "vigil-bench")
	for _, c := range []struct {
		name, flag, wd, exe string
		path                string
		build               bool
		err                 string
	}{
		{name: "--vigil given", flag: given, wd: outside, exe: bareExe, path: given},
		{name: "--vigil missing", flag: filepath.Join(tmp, "nope"), wd: mod, exe: bareExe, err: "--vigil " + filepath.Join(tmp, "nope")},
		{name: "--vigil a directory", flag: tmp, wd: mod, exe: bareExe, err: "not an executable"},
		{name: "in the module", wd: filepath.Join(mod, "cmd", "vigil-bench"), exe: bareExe, build: true},
		{name: "outside, vigil beside the bench", wd: outside, exe: filepath.Join(withVigil, "vigil-bench"), path: beside},
		{name: "another module, vigil beside the bench", wd: other, exe: filepath.Join(withVigil, "vigil-bench"), path: beside},
		{name: "outside, nothing beside", wd: outside, exe: bareExe, err: "--vigil PATH"},
		{name: "another module, nothing beside", wd: other, exe: bareExe, err: "--vigil PATH"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, build, err := locateVigil(c.flag, c.wd, c.exe)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("locateVigil: %q, %v, %v; want an error with %q", path, build, err, c.err)
				}
				return
			}
			if err != nil || path != c.path || build != c.build {
				t.Errorf("locateVigil: %q, build %v, %v; want %q, build %v", path, build, err, c.path, c.build)
			}
		})
	}
}
