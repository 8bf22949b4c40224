package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
)

// hostile writes files (name → content; a content starting with "->" is a
// symbolic link to the rest) under a temporary directory and loads
// k.conf from it through os.DirFS, with limits.
func hostile(t *testing.T, files map[string]string, lim Limits) (*Config, diag.Diagnostics, string) {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(data, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(data), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return loadHostile(t, dir, lim)
}

func loadHostile(t *testing.T, dir string, lim Limits) (*Config, diag.Diagnostics, string) {
	t.Helper()
	type result struct {
		cfg *Config
		ds  diag.Diagnostics
	}
	done := make(chan result, 1)
	go func() {
		cfg, ds := Load(os.DirFS(dir), "k.conf", Options{Limits: lim})
		done <- result{cfg, ds}
	}()
	select {
	case r := <-done:
		return r.cfg, r.ds, dir
	case <-time.After(60 * time.Second):
		t.Fatal("Load does not return")
		return nil, nil, ""
	}
}

// wantDiag fails unless one diagnostic has the severity, starts with the
// position and contains every part.
func wantDiag(t *testing.T, ds diag.Diagnostics, sev diag.Severity, pos string, parts ...string) {
	t.Helper()
next:
	for _, d := range ds {
		if d.Severity != sev || !strings.HasPrefix(d.String(), pos+": ") {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(d.Msg, p) {
				continue next
			}
		}
		return
	}
	t.Errorf("no %s at %s with %q in:\n%s", sev, pos, parts, dumpDiags(ds))
}

func TestHostileFiles(t *testing.T) {
	small := Limits{Bytes: 1 << 20, Lines: 20000, Files: 64, Expansions: 256}
	bomb := map[string]string{"k.conf": "include f0.conf\n"}
	for i := range 33 {
		bomb[fmt.Sprintf("f%d.conf", i)] = fmt.Sprintf("include f%d.conf\ninclude f%d.conf\n", i+1, i+1)
	}
	braces := "include /x" + strings.Repeat("{a,b}", 40) + "\n"
	multi := "$BIG=\\\n" + strings.Repeat("    10.1.2.3/32 \\\n", 3000) + "    10.1.2.4/32\n" +
		"vrrp_instance V {\ninterface eth0\nvirtual_router_id 1\npriority 100\nvirtual_ipaddress {\n~SEQ(i,1,100000) $BIG\n}\n}\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		sev   diag.Severity
		pos   string // relative to the directory
		parts []string
	}{
		{"include bomb", bomb, diag.Error, "f28.conf:2:1", []string{"more than 64 files", "--config-limit files=N"}},
		{"brace bomb", map[string]string{"k.conf": braces}, diag.Error, "k.conf:1:1", []string{"expands to more than the 256 names", "expansions"}},
		{"multi-line definition replicated", map[string]string{"k.conf": multi}, diag.Error, "k.conf:3008:1", []string{"~SEQ produces 100000 lines", "lines=N"}},
		{"multi-line definition over the line budget", map[string]string{"k.conf": strings.Replace(multi, "~SEQ(i,1,100000) $BIG", "$BIG\n$BIG\n$BIG\n$BIG\n$BIG\n$BIG\n$BIG", 1)}, diag.Error, "k.conf:3014:1", []string{"multi-line definition $BIG adds 3000 lines", "lines=N"}},
		{"~SEQ over the line budget", map[string]string{"k.conf": "~SEQ(i,1,1000000) x\n"}, diag.Error, "k.conf:1:1", []string{"~SEQ produces 1000000 lines", "budget is 20000 lines"}},
		{"bytes", map[string]string{"k.conf": "include big.conf\n", "big.conf": strings.Repeat("# filler\n", 200000)}, diag.Error, "k.conf:1:1", []string{"big.conf is 1800000 bytes", "bytes=N"}},
		{"same file twice", map[string]string{"k.conf": "include a.conf\ninclude a.conf\ninclude a.conf\n", "a.conf": "\n"}, diag.Warning, "k.conf:2:1", []string{"a.conf is included again (first read by", "k.conf:1:1)"}},
		{"symbolic link loop", map[string]string{"k.conf": "include a.conf\n", "a.conf": "->b.conf", "b.conf": "->a.conf"}, diag.Error, "k.conf:1:1", []string{"symbolic link loop"}},
		{"directory loop under a glob", map[string]string{"k.conf": "include d/*.conf\n", "d/a.conf": "include sub/*.conf\n", "d/sub": "->."}, diag.Error, "d/a.conf:1:1", []string{"include loop", "already being read as"}},
		{"a directory", map[string]string{"k.conf": "includer d\n", "d/x": ""}, diag.Error, "k.conf:1:1", []string{"is a directory; only regular files are read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ds, _ := hostile(t, tc.files, small)
			wantDiag(t, ds, tc.sev, tc.pos, tc.parts...)
		})
	}
}

// Special files are refused without being opened: a FIFO nobody writes
// would block the open, /dev/zero would never end.
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	k := "include fifo\ninclude /dev/zero\ninclude sock\n"
	if err := os.WriteFile(filepath.Join(dir, "k.conf"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	// Loaded with the host's root, as vigil does, for /dev/zero.
	done := make(chan diag.Diagnostics, 1)
	go func() {
		_, ds := Load(os.DirFS("/"), filepath.Join(dir, "k.conf"), Options{Root: "/"})
		done <- ds
	}()
	var ds diag.Diagnostics
	select {
	case ds = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Load does not return")
	}
	at := filepath.Join(dir, "k.conf")
	wantDiag(t, ds, diag.Error, at+":1:1", "fifo is a FIFO; only regular files are read")
	wantDiag(t, ds, diag.Error, at+":2:1", "/dev/zero is a character device; only regular files are read")
	wantDiag(t, ds, diag.Error, at+":3:1", "sock is a socket; only regular files are read")

	// The main file itself.
	_, ds = Load(os.DirFS("/"), filepath.Join(dir, "fifo"), Options{Root: "/"})
	wantDiag(t, ds, diag.Error, filepath.Join(dir, "fifo"), "cannot read the configuration: it is a FIFO")
}

// The default limits take a large legitimate configuration.
func TestDefaultLimitsFitLargeConfig(t *testing.T) {
	src := largeConfig(2000, 2000)
	_, ds := Load(fstest.MapFS{"k.conf": {Data: []byte(src)}}, "k.conf", Options{})
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
}

func TestLimitsSet(t *testing.T) {
	var lim Limits
	for _, kv := range []string{"bytes=256M", "lines=8388608", "files=2K", "expansions=1G"} {
		if err := lim.Set(kv); err != nil {
			t.Fatal(err)
		}
	}
	want := Limits{Bytes: 256 << 20, Lines: 8 << 20, Files: 2048, Expansions: 1 << 30}
	if lim != want {
		t.Errorf("got %v, want %v", lim, want)
	}
	for _, bad := range []string{"bytes", "bytes=", "bytes=-1", "bytes=0", "pages=3", "lines=1X", "bytes=99999999999G"} {
		if err := lim.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

// An empty file (a truncated push) is an error; a file with keywords but
// nothing to run is not, and Runs tells.
func TestEmptyFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		empty bool
		runs  bool
	}{
		{"zero bytes", "", true, false},
		{"blank lines and comments", "\n  \n# keepalived.conf\n! managed by puppet\n", true, false},
		{"only global_defs", "global_defs {\n router_id a\n}\n", false, false},
		{"an instance", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 100\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := Load(one(tc.src), "k.conf", Options{})
			var empty bool
			for _, d := range ds {
				if d.Severity == diag.Error && d.Pos == (diag.Pos{File: "k.conf"}) && strings.HasPrefix(d.Msg, "the file is empty") {
					empty = true
				}
			}
			if empty != tc.empty || ds.HasErrors() != tc.empty || cfg.Runs() != tc.runs {
				t.Errorf("empty %v, runs %v, diagnostics:\n%s", empty, cfg.Runs(), dumpDiags(ds))
			}
		})
	}
}

// A load is large (Options.Large is called, once) from LargeRead bytes of
// text, wherever they come from: the main file, its includes together, or
// what definitions and replication expand a small file into.
func TestLargeRead(t *testing.T) {
	filler := func(n int) string { // n bytes: a block, then comment lines
		s := "global_defs {\n}\n"
		line := "# " + strings.Repeat("x", 61) + "\n"
		s += strings.Repeat(line, (n-len(s))/len(line))
		return s + strings.Repeat("\n", n-len(s))
	}
	const half = LargeRead / 2
	// 3000 lines of addresses (38 bytes each) for each ~SEQ value: 40
	// values make 4.6 MB of text from a file of 114 KB.
	multi := "$BIG=\\\n" + strings.Repeat("    10.1.2.3/32 dev eth0 scope global \\\n", 2999) + "    10.1.2.4/32\n" +
		"vrrp_instance V {\ninterface eth0\nvirtual_router_id 1\npriority 100\nvirtual_ipaddress {\n~SEQ(i,1,N) $BIG\n}\n}\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		large bool
	}{
		{"main file one byte short", map[string]string{"k.conf": filler(LargeRead - 1)}, false},
		{"main file", map[string]string{"k.conf": filler(LargeRead)}, true},
		{"small main file including a large file", map[string]string{"k.conf": "include big.conf\n", "big.conf": filler(LargeRead)}, true},
		{"files large together", map[string]string{"k.conf": filler(half) + "include a.conf\n", "a.conf": filler(half)}, true},
		{"definitions expanding a small file", map[string]string{"k.conf": strings.Replace(multi, "N", "40", 1)}, true},
		{"definitions expanding less", map[string]string{"k.conf": strings.Replace(multi, "N", "10", 1)}, false},
		{"a conditional drops the expansion", map[string]string{"k.conf": strings.Replace(multi, "~SEQ(i,1,N) $BIG", "@other ~SEQ(i,1,40) $BIG", 1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			calls := 0
			_, ds := Load(fsys, "k.conf", Options{ConfigID: "n1", Large: func() { calls++ }})
			if ds.HasErrors() {
				t.Fatal(ds.Err())
			}
			if want := map[bool]int{false: 0, true: 1}[tc.large]; calls != want {
				t.Errorf("Large called %d times, want %d", calls, want)
			}
		})
	}
}
