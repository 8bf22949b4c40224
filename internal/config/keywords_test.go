package config

import (
	"os"
	"strings"
	"testing"
)

// TestKeywordsCoverKeepalived checks that every keyword keepalived 2.2.7
// installs (the names of its install_keyword calls, one per line in
// testdata) is in vigil's tables, so the support table lists it.
func TestKeywordsCoverKeepalived(t *testing.T) {
	b, err := os.ReadFile("testdata/keepalived-2.2.7-keywords.txt")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, k := range Keywords() {
		known[k.Name] = true
	}
	n := 0
	for _, name := range strings.Fields(string(b)) {
		n++
		if !known[name] {
			t.Errorf("keepalived 2.2.7 keyword %q is not in vigil's keyword tables", name)
		}
	}
	if n < 300 {
		t.Fatalf("only %d keepalived keywords in testdata", n)
	}
}
