package config

import (
	"io/fs"
	"math/rand/v2"
	"path"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/internal/diag"
)

// This file is the first stage of the parser: it reads files through the
// fs.FS, and turns them into a stream of tokens the way keepalived 2.2.7's
// lib/parser.c read_line() does:
//
//   - '!' and '#' start a comment anywhere outside double quotes; "\#" and
//     "\!" escape them (decomment()).
//   - "@ID" / "@^ID" conditional lines (config id).
//   - "$NAME=value" definitions, single- and multi-line (trailing '\'), and
//     "$NAME" / "${NAME}" substitution, recursive, with the predefined
//     ${_PWD}, ${_INSTANCE}, ${_RANDOM [MIN [MAX]]}, ${_HASH}, ${_BANG}.
//   - "~SEQ(var, start, step, end)", "~SEQx(...)" and "~LST(...)" replication.
//   - "include" / "includer" / "includem" / "includew" / "includeb" /
//     "includea" with csh-style brace expansion and globs, relative to the
//     directory of the including file.
//   - '{' and '}' outside double quotes are always tokens of their own, also
//     when glued to words ("global_defs{", "}vrrp_instance").
//   - words are separated by white space; "..." is one word without the
//     quotes (alloc_strvec_r); script keywords re-read the raw text with
//     shell-like quoting and escapes (see splitCommand).
//
// Every token keeps the file:line:col of its first byte. Text that comes
// from a substitution or a replication points at the place of the "$NAME"
// or of the "~SEQ" that produced it.

type tokKind uint8

const (
	tWord tokKind = iota
	tLBrace
	tRBrace
	tEOL
	tEOF
)

func (k tokKind) String() string {
	switch k {
	case tWord:
		return "word"
	case tLBrace:
		return "'{'"
	case tRBrace:
		return "'}'"
	case tEOL:
		return "end of line"
	}
	return "end of file"
}

// token is one lexical element.
type token struct {
	kind   tokKind
	text   string // without the quotes for a quoted word
	pos    diag.Pos
	quoted bool
	// src is the logical line the token is in, lineID identifies it, and
	// off and end locate the token in it (for keywords that re-read the
	// raw text: scripts, regex).
	src      string
	lineID   int32
	off, end int32
}

// logLine is one line after comment removal and substitution.
type logLine struct {
	text string
	file string // display name
	num  int    // physical line number
	col0 int    // column of text[0] when cols == nil
	cols []int32
	// fixed, when set, is the position of every byte (expansions).
	fixed diag.Pos
	// origin names the multi-line definitions this line came from.
	origin []string
}

func (l *logLine) posAt(i int) diag.Pos {
	if l.fixed.Line != 0 {
		return l.fixed
	}
	c := l.col0 + i
	if l.cols != nil {
		switch {
		case i < len(l.cols):
			c = int(l.cols[i])
		case len(l.cols) > 0:
			c = int(l.cols[len(l.cols)-1]) + 1
		default:
			c = l.col0
		}
	}
	return diag.Pos{File: l.file, Line: l.num, Col: c}
}

// lexer streams tokens. It is not safe for concurrent use.
type lexer struct {
	fsys  fs.FS
	opts  Options
	diags *diag.Diagnostics
	rng   *rand.Rand

	stack        []*srcFile
	includeCheck includeFlags
	files        []string

	defs map[string]*definition
	// open multi-line definition being read
	mdef *definition

	pend []pending

	limits Limits
	used   usage
	// large is set once the load reached LargeRead.
	large bool
	// stopped is set when a budget was crossed: nothing more is read.
	stopped bool
	// stopDiags is the number of diagnostics when the load stopped:
	// those after it only echo the missing rest (unclosed blocks).
	stopDiags int
	// seen records the files read, to warn when one is read again.
	seen map[fileKey]seenFile

	toks []token
	ti   int
	// cur is the logical line being processed (reused), lines counts the
	// logical lines produced.
	cur   logLine
	lines int32

	// comment, when set, is called with each comment found (text without
	// the leading '#'/'!').
	comment func(text string, pos diag.Pos)
}

func newLexer(fsys fs.FS, opts Options, diags *diag.Diagnostics) *lexer {
	l := &lexer{
		fsys:  fsys,
		opts:  opts,
		diags: diags,
		rng:   rand.New(rand.NewPCG(opts.RandomSeed, 0x76696769)),
		defs:  map[string]*definition{},
		seen:  map[fileKey]seenFile{},

		limits: opts.Limits.withDefaults(),
	}
	l.defs["_PWD"] = &definition{name: "_PWD", fn: func([]int) string { return l.pwd() }}
	l.defs["_INSTANCE"] = &definition{name: "_INSTANCE", fn: func([]int) string { return l.opts.ConfigID }}
	l.defs["_RANDOM"] = &definition{name: "_RANDOM", maxParams: 2, fn: l.random}
	l.defs["_HASH"] = &definition{name: "_HASH", value: "#"}
	l.defs["_BANG"] = &definition{name: "_BANG", value: "!"}
	return l
}

func (l *lexer) pwd() string {
	if len(l.stack) == 0 {
		return l.opts.Root
	}
	return path.Dir(l.stack[len(l.stack)-1].display)
}

// random implements ${_RANDOM [MIN [MAX]]} from the seeded generator in
// Options (keepalived uses random(); vigil is deterministic).
func (l *lexer) random(p []int) string {
	lo, hi := 0, 32767
	if len(p) > 0 {
		lo = p[0]
	}
	if len(p) > 1 {
		hi = p[1]
	}
	if hi < lo {
		lo, hi = hi, lo
	}
	return strconv.Itoa(lo + l.rng.IntN(hi-lo+1))
}

// displayName maps an fs path to the name used in positions.
func (l *lexer) displayName(name string) string {
	if l.opts.Root == "" {
		return name
	}
	return path.Join(l.opts.Root, name)
}

// next returns the next token.
func (l *lexer) next() token {
	for l.ti >= len(l.toks) {
		l.toks = l.toks[:0]
		l.ti = 0
		ln, ok := l.nextLine()
		if !ok {
			return token{kind: tEOF, pos: l.eofPos()}
		}
		l.tokenize(ln)
	}
	t := l.toks[l.ti]
	l.ti++
	return t
}

func (l *lexer) eofPos() diag.Pos {
	if len(l.files) == 0 {
		return diag.Pos{}
	}
	return diag.Pos{File: l.files[0]}
}

// nextLine returns the next logical line that has content, after comment
// removal, conditionals, definitions, replication, substitution and include
// processing.
func (l *lexer) nextLine() (*logLine, bool) {
	for {
		if l.stopped {
			return nil, false
		}
		var set [][2]string
		ln := &l.cur
		if len(l.pend) > 0 {
			// Queued lines were charged to the budget when queued.
			p := l.pend[0]
			if p.gen != nil {
				var more bool
				p, more = p.gen.take()
				if !more {
					l.pend = l.pend[1:]
				}
			} else {
				l.pend = l.pend[1:]
			}
			set = p.set
			// A queued line is text the file does not hold.
			l.grew(len(p.text) + 1)
			*ln = logLine{text: p.text, fixed: p.pos, file: p.pos.File, num: p.pos.Line, origin: p.origin}
		} else {
			f, raw, ok := l.rawLine()
			if !ok {
				return nil, false
			}
			if l.mdef != nil {
				l.continueMultiline(f, raw)
				continue
			}
			if !l.decomment(f, raw, ln) {
				continue
			}
			// Lines read from files are bounded by the byte budget.
			l.used.fileLines++
		}
		for _, kv := range set {
			l.setDef(kv[0], kv[1])
		}
		if l.process(ln) {
			return ln, true
		}
	}
}

// process applies conditionals, definitions, replication, substitution and
// includes to a line. It reports whether the line has content for the
// parser.
func (l *lexer) process(ln *logLine) bool {
	for round := 0; ; round++ {
		if round > maxSubstitution {
			l.diags.Errorf(ln.posAt(0), "parameter substitution does not terminate")
			return false
		}
		if ln.text == "" {
			return false
		}
		if ln.text[0] == '@' {
			if !l.conditional(ln) {
				return false
			}
			continue
		}
		if ln.text[0] == '$' && l.definition(ln) {
			return false
		}
		if strings.HasPrefix(ln.text, "~SEQ") || strings.HasPrefix(ln.text, "~LST") {
			l.replicate(ln)
			return false
		}
		if ln.text[0] != '~' && strings.IndexByte(ln.text, '$') >= 0 {
			changed, ok := l.substitute(ln)
			if !ok {
				return false
			}
			if changed {
				l.redecomment(ln)
				continue
			}
		}
		break
	}
	return !l.include(ln)
}

// wordEnd marks the bytes that end an unquoted word.
var wordEnd = func() (t [256]bool) {
	for _, c := range " \t\f\v\r\n\"{}" {
		t[c] = true
	}
	return t
}()

// tokenize splits a logical line into tokens (keepalived read_line() brace
// splitting and alloc_strvec_r()).
func (l *lexer) tokenize(ln *logLine) {
	s := ln.text
	l.lines++
	id := l.lines
	tok := func(k tokKind, text string, at, off, end int, quoted bool) {
		l.toks = append(l.toks, token{kind: k, text: text, pos: ln.posAt(at), quoted: quoted, src: s, lineID: id, off: int32(off), end: int32(end)})
	}
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r' || c == '\n':
			i++
		case c == '{':
			tok(tLBrace, "{", i, i, i+1, false)
			i++
		case c == '}':
			tok(tRBrace, "}", i, i, i+1, false)
			i++
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				// decomment() already reported the unterminated quote.
				tok(tWord, s[i+1:], i, i, len(s), true)
				i = len(s)
				continue
			}
			tok(tWord, s[i+1:i+1+end], i, i, i+end+2, true)
			i += end + 2
		default:
			j := i
			for j < len(s) && !wordEnd[s[j]] {
				j++
			}
			tok(tWord, s[i:j], i, i, j, false)
			i = j
		}
	}
	tok(tEOL, "", len(s), len(s), len(s), false)
}
