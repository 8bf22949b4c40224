package config

import (
	"strings"
	"sync"
)

// Keyword describes one keepalived.conf keyword vigil knows, from the
// keyword tables the parser runs on.
type Keyword struct {
	// Block is the block the keyword is valid in ("top level" for the
	// root).
	Block string `json:"block"`
	Name  string `json:"name"`
	// Supported reports whether vigil acts on the keyword. An
	// unsupported keyword is parsed (and checked), reported with a
	// warning, and has no effect.
	Supported   bool   `json:"supported"`
	Unsupported string `json:"unsupported,omitempty"` // why not
	Deprecated  string `json:"deprecated,omitempty"`  // what to use instead
}

// rootName is the name of the top-level block.
const rootName = "top level"

// Keywords returns every keyword of every block, block by block in
// configuration order.
func Keywords() []Keyword {
	var out []Keyword
	seenBlocks := map[string]bool{}
	var walk func(b blockInfo)
	walk = func(b blockInfo) {
		if seenBlocks[b.blockName()] {
			return
		}
		seenBlocks[b.blockName()] = true
		out = append(out, b.keywords()...)
		for _, s := range b.subBlocks() {
			walk(s)
		}
	}
	walk(rootBlock)
	return out
}

// Unsupported returns the keywords vigil parses but does not act on.
func Unsupported() []Keyword {
	var out []Keyword
	for _, k := range Keywords() {
		if !k.Supported {
			out = append(out, k)
		}
	}
	return out
}

// keywordIndex maps a block name to its keyword names, and a keyword name
// to the blocks it is valid in (outer blocks first). It is built once from the tables and never
// modified.
type keywordIndex struct {
	byBlock map[string][]string
	homes   map[string][]string
}

// index returns the keyword index, built on first use. (It cannot be a
// plain package variable: the tables refer to the parser, which uses the
// index.)
var index = sync.OnceValue(buildIndex)

func buildIndex() keywordIndex {
	ix := keywordIndex{byBlock: map[string][]string{}, homes: map[string][]string{}}
	for _, k := range Keywords() {
		ix.byBlock[k.Block] = append(ix.byBlock[k.Block], k.Name)
		if !containsStr(ix.homes[k.Name], k.Block) {
			ix.homes[k.Name] = append(ix.homes[k.Name], k.Block)
		}
	}
	return ix
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (ix *keywordIndex) names(block string) []string { return ix.byBlock[block] }

// home names the blocks a keyword belongs to, other than the given one ("",
// when none).
func (ix *keywordIndex) home(name, except string) string {
	var out []string
	for _, b := range ix.homes[name] {
		if b != except {
			out = append(out, b)
		}
	}
	if len(out) > 3 {
		out = append(out[:3], "...")
	}
	return strings.Join(out, ", ")
}

// isKeyword reports whether a word is a keyword of any block.
func (ix *keywordIndex) isKeyword(w string) bool { return len(ix.homes[w]) > 0 }

// ---- table construction helpers ----

func k[T any](name string, min, max int, run func(p *parser, s *stmt, t *T)) *kw[T] {
	return &kw[T]{name: name, min: min, max: max, run: run}
}

// flagKw is a keyword without value that sets a bool.
func flagKw[T any](name string, field func(t *T) *bool) *kw[T] {
	return k(name, 0, 0, func(p *parser, s *stmt, t *T) { *field(t) = true })
}

// optBool is a keyword with an optional <BOOL> value.
func optBool[T any](name string, field func(t *T) *bool) *kw[T] {
	return k(name, 0, 1, func(p *parser, s *stmt, t *T) {
		if v, ok := p.boolArg(s); ok {
			*field(t) = v
		}
	})
}

// str is a keyword with one string value.
func str[T any](name string, field func(t *T) *string) *kw[T] {
	return k(name, 1, 1, func(p *parser, s *stmt, t *T) { *field(t) = s.args[0].text })
}

func (k *kw[T]) multiple() *kw[T]            { k.multi = true; return k }
func (k *kw[T]) unsup(why string) *kw[T]     { k.unsupported = why; return k }
func (k *kw[T]) deprecate(use string) *kw[T] { k.deprecated = use; return k }
func (k *kw[T]) opens(b blockInfo) *kw[T]    { k.mode = subBlock; k.sub = b; return k }
func (k *kw[T]) valueBlock() *kw[T]          { k.mode = valueBlock; return k }
