package bgp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The helper that runs the BGP speaker, and where the daemon looks for it.
const (
	// HelperName is the helper's file name.
	HelperName = "vigil-bgp"
	// HelperEnv names a helper to use instead of searching.
	HelperEnv = "VIGIL_BGP_HELPER"
	// DefaultHelper is where the package installs it.
	DefaultHelper = "/usr/lib/vigil/vigil-bgp"
)

// FindHelper returns the path of the vigil-bgp helper: $VIGIL_BGP_HELPER
// when set (which must then name it), else vigil-bgp beside the running
// executable, else DefaultHelper. The error names every place searched.
func FindHelper() (string, error) {
	if p := os.Getenv(HelperEnv); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("bgp: $%s=%s: %w", HelperEnv, p, err)
		}
		return p, nil
	}
	var tried []string
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), HelperName)
		if executable(p) == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if executable(DefaultHelper) == nil {
		return DefaultHelper, nil
	}
	tried = append(tried, DefaultHelper)
	return "", fmt.Errorf("bgp: the BGP speaker's helper %s was not found (searched $%s (unset), %s): install it (the vigil package puts it in %s) or set $%s",
		HelperName, HelperEnv, strings.Join(tried, ", "), DefaultHelper, HelperEnv)
}

// executable reports why p is not an executable file.
func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", p)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}
