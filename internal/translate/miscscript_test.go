package translate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/check/probe"
)

func miscConf(global, path string) string {
	return fmt.Sprintf(`global_defs {
%s}
virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    real_server 10.0.0.2 80 {
        MISC_CHECK {
            misc_path "%s"
        }
    }
}
`, global, path)
}

// Under enable_script_security keepalived 2.2.7 refuses a MISC_CHECK
// script that runs as root from a place others can write ("Unsafe
// permissions found for script ... - disabling", "Disabling misc script
// ... due to insecure") and runs on without that checker; vigil ran it.
func TestMiscCheckScriptSecurity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sh := filepath.Join(dir, "chk.sh")
	if err := os.WriteFile(sh, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := load(t, miscConf("    enable_script_security\n    script_user root\n", sh))
	spec, ds := DirectorFromConfig(cfg)
	if ds.HasErrors() {
		t.Fatalf("an insecure script is not an error (keepalived runs on): %v", ds.Err())
	}
	text := fmt.Sprint(ds)
	if !strings.Contains(text, "unsafe permissions") || !strings.Contains(text, "the checker left out, as keepalived does") {
		t.Errorf("diagnostics: %s", text)
	}
	if len(spec.Checks) != 1 || len(spec.Checks[0].Checkers) != 0 {
		t.Errorf("checks %+v: want the MISC_CHECK left out", spec.Checks)
	}
}

// A misc_path that is not an executable format (no "#!" line) runs with
// /bin/sh, as keepalived hands it to system(), like every other script.
func TestMiscCheckShellScript(t *testing.T) {
	sh := filepath.Join(t.TempDir(), "chk")
	if err := os.WriteFile(sh, []byte("exit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, spec := loadLVS(t, miscConf("", sh))
	if len(spec.Checks) != 1 || len(spec.Checks[0].Checkers) != 1 {
		t.Fatalf("checks %+v", spec.Checks)
	}
	m := spec.Checks[0].Checkers[0].Checker.(*probe.Misc)
	if r := m.Check(context.Background()); !r.OK {
		t.Errorf("MISC_CHECK of a script without #!: %+v", r)
	}
}
