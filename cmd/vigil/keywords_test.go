package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/config"
)

// TestCompatDocCurrent fails when docs/keepalived-compat.md is not what
// `vigil keywords --markdown` prints from the parser's tables.
func TestCompatDocCurrent(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := runKeywords([]string{"--markdown"}, &out, &errb); rc != 0 {
		t.Fatalf("vigil keywords --markdown: exit %d: %s", rc, errb.String())
	}
	have, err := os.ReadFile("../../docs/keepalived-compat.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, out.Bytes()) {
		t.Fatalf("docs/keepalived-compat.md is stale: run\n\tgo run ./cmd/vigil keywords --markdown > docs/keepalived-compat.md")
	}
}

// TestKeywordsEveryKeywordListed checks that the table lists each keyword of
// the parser once per block, with a reason for every unsupported one.
func TestKeywordsEveryKeywordListed(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := runKeywords(nil, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	kws := config.Keywords()
	if len(lines) != len(kws) {
		t.Fatalf("%d lines for %d keywords", len(lines), len(kws))
	}
	for i, k := range kws {
		f := strings.Fields(lines[i])
		if len(f) < 3 || !strings.Contains(lines[i], " "+k.Name+" ") {
			t.Errorf("line %d %q does not list %s", i, lines[i], k.Name)
		}
		if !k.Supported && k.Unsupported == "" {
			t.Errorf("%s %s: unsupported without a reason", k.Block, k.Name)
		}
	}
}
