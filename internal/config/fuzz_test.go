package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzLoad states: Load never panics, and every diagnostic points inside
// the input: a line that exists (1 <= line <= number of lines) and a
// column within it or just past its end (1 <= col <= length + 1), or
// the file as a whole (line 0, column 0). It runs
// with a small budget (fuzzLimits), so that a replication or include bomb
// ends in an error at its line instead of stalling the fuzzer.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"seeds", "cases"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.conf"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(b))
		}
	}
	for _, s := range []string{
		"", "{", "}", "{{}}", "\"", "\\", "@", "@^", "$", "$X=", "$X=\\", "$X=$X$X\n$X", "~SEQ(", "~SEQ(i,1,3) ${i}",
		"~LST({a,b},{1,2}) $a", "include *", "include {a,b", "vrrp_instance x {\nvirtual_ipaddress {\n1.2.3.4 brd\n",
		"virtual_server 1.1.1.1 80 {\nreal_server 2.2.2.2 {\nHTTP_GET {\nurl {\n", "\r\n\r\n}", "a#b\\#c!d\"e#f\"",
		"$M= \\\nx \\\n\n$M\n$M", "global_defs{router_id a}vrrp_instance v{interface eth0}",
		"~SEQ(i,1,1000000) x", "$M=a\\\nb\\\nc\n~SEQ(i,1,100000) $M", "~SEQ(i,1,1000) ~SEQ(j,1,1000) x",
		"include /x{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}", "include k.conf", "include /dev/zero",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		cfg, ds := Load(fstest.MapFS{"k.conf": {Data: []byte(src)}}, "k.conf", Options{ConfigID: "n1", Limits: fuzzLimits})
		if cfg == nil {
			t.Fatal("nil model")
		}
		lines := strings.Split(src, "\n")
		for _, d := range ds {
			if d.Pos.File != "k.conf" {
				t.Fatalf("diagnostic outside the input file: %v", d)
			}
			if d.Pos.Line == 0 && d.Pos.Col == 0 {
				continue // the file as a whole (empty, nothing to run)
			}
			if d.Pos.Line < 1 || d.Pos.Line > len(lines) {
				t.Fatalf("diagnostic line %d outside 1..%d: %v", d.Pos.Line, len(lines), d)
			}
			if n := len(lines[d.Pos.Line-1]); d.Pos.Col < 1 || d.Pos.Col > n+1 {
				t.Fatalf("diagnostic column %d outside 1..%d: %v", d.Pos.Col, n+1, d)
			}
		}
		if _, err := cfg.MarshalJSON(); err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
	})
}

// fuzzLimits keep one fuzz input to a few milliseconds.
var fuzzLimits = Limits{Bytes: 1 << 20, Lines: 1 << 14, Files: 8, Expansions: 256}
