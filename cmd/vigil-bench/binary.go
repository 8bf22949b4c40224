package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// vigilModule is the module whose cmd/vigil the bench builds.
const vigilModule = "github.com/vigil-ha/vigil"

// locateVigil finds the vigil binary to measure: --vigil (flag) when given;
// else build, when the working directory wd is inside vigil's module (go
// build then finds cmd/vigil); else the vigil beside this program exe
// (both built into one bin directory). Otherwise the error names --vigil:
// go build outside the module fails with a message about modules.
func locateVigil(flag, wd, exe string) (path string, build bool, err error) {
	if flag != "" {
		st, err := os.Stat(flag)
		switch {
		case err != nil:
			return "", false, fmt.Errorf("--vigil %s: %w", flag, err)
		case st.IsDir() || st.Mode()&0o111 == 0:
			return "", false, fmt.Errorf("--vigil %s: not an executable file", flag)
		}
		return flag, false, nil
	}
	if inModule(wd, vigilModule) {
		return "", true, nil
	}
	if exe != "" {
		beside := filepath.Join(filepath.Dir(exe), "vigil")
		if st, err := os.Stat(beside); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return beside, false, nil
		}
	}
	return "", false, errors.New("no vigil binary: give one with --vigil PATH, or run vigil-bench inside vigil's source tree (it builds cmd/vigil there), or put vigil beside vigil-bench")
}

// inModule reports whether dir is inside the module named module: the
// nearest go.mod above it declares that module.
func inModule(dir, module string) bool {
	for d := dir; ; {
		if f, err := os.Open(filepath.Join(d, "go.mod")); err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if name, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return strings.Trim(strings.TrimSpace(name), `"`) == module
				}
			}
			return false
		}
		up := filepath.Dir(d)
		if up == d {
			return false
		}
		d = up
	}
}
