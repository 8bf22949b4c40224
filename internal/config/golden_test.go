package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/diag"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestGolden")

// goldenOptions are the options every golden case is loaded with.
var goldenOptions = Options{ConfigID: "node1", RandomSeed: 1}

// corpus returns the configuration files the golden and differential tests
// run over: the seed configurations, the diagnostics cases and the shipped
// examples, as paths below testdata (examples through a symlink-free
// copy: ../../../examples).
func corpus(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"seeds", "cases", "corpus"} {
		m, err := filepath.Glob(filepath.Join("testdata", dir, "*.conf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			files = append(files, strings.TrimPrefix(f, "testdata/"))
		}
	}
	if len(files) < 20 {
		t.Fatalf("corpus too small: %d files", len(files))
	}
	return files
}

// dumpDiags renders diagnostics one per line.
func dumpDiags(ds diag.Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestGolden loads every corpus file and compares its diagnostics and its
// JSON model with NAME.diag.golden and NAME.json.golden (go test -update
// rewrites them).
func TestGolden(t *testing.T) {
	fsys := os.DirFS("testdata")
	for _, name := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			cfg, ds := Load(fsys, name, goldenOptions)
			js, err := cfg.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join("testdata", strings.TrimSuffix(name, ".conf"))
			checkGolden(t, base+".diag.golden", dumpDiags(ds))
			checkGolden(t, base+".json.golden", string(js))
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// TestSeedsRepaired checks that the repaired copies of the damaged seed
// configurations have no errors, and that each damaged one has.
func TestSeedsRepaired(t *testing.T) {
	fsys := os.DirFS("testdata")
	for _, tc := range []struct {
		file      string
		wantError bool
	}{
		{"seeds/000_master.conf", false},
		{"seeds/000_backup.conf", false},
		{"seeds/000_annotated.conf", false},
		{"seeds/001_master.conf", false}, // a stray final '}', ignored as keepalived does
		{"seeds/001_master_repaired.conf", false},
		{"seeds/001_backup_repaired.conf", false},
		{"seeds/001_inline_script.conf", false},
		{"seeds/002_lvs_dr_glued.conf", true},
		{"seeds/002_lvs_dr.conf", false},
		{"seeds/002_lvs_dr_backup.conf", false},
		{"seeds/002_misc_check_glued.conf", false},
		{"seeds/002_misc_check.conf", false},
		{"seeds/002_http_get_glued.conf", false}, // an HTTP_GET outside any real_server: ignored to the end of the file, as keepalived does
		{"seeds/002_http_get.conf", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, ds := Load(fsys, tc.file, goldenOptions)
			if got := ds.HasErrors(); got != tc.wantError {
				t.Errorf("HasErrors() = %v, want %v:\n%s", got, tc.wantError, dumpDiags(ds))
			}
		})
	}
	// The repaired LVS copies have no diagnostic at all.
	for _, f := range []string{"seeds/002_lvs_dr.conf", "seeds/002_lvs_dr_backup.conf", "seeds/002_http_get.conf"} {
		if _, ds := Load(fsys, f, goldenOptions); len(ds) != 0 {
			t.Errorf("%s: want no diagnostics, got:\n%s", f, dumpDiags(ds))
		}
	}
}

// TestExamples checks the shipped examples: no diagnostic at all.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.conf"))
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		name := "examples/" + filepath.Base(f)
		cfg, ds := Load(os.DirFS(filepath.Join("..", "..")), name, Options{ConfigID: "web1"})
		if len(ds) > 0 {
			t.Errorf("%s:\n%s", name, dumpDiags(ds))
		}
		if len(cfg.Instances) == 0 {
			t.Errorf("%s: no vrrp_instance", name)
		}
	}
}
