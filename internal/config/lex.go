package config

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
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

// srcFile is an open configuration file.
type srcFile struct {
	name    string // fs path
	display string
	data    string
	off     int
	line    int
	// includeCheck is the include_check setting to restore when the file
	// ends (keepalived saves it per include level).
	includeCheck includeFlags
}

type includeFlags uint8

const (
	incRead includeFlags = 1 << iota // error if a match is not readable
	incMatch
	incWildcard
	incBrace
)

// definition is a $NAME.
type definition struct {
	name      string
	value     string // multi-line values separate lines with '\n'
	multiline bool
	fn        func(params []int) string
	maxParams int
}

// pending is a line queued for processing, from a multi-line definition,
// or the lines still to come from a ~SEQ/~LST replication (gen).
type pending struct {
	text string
	pos  diag.Pos
	set  [][2]string // definitions to set before processing the text
	gen  *replicator
	// origin names the multi-line definitions the line came from.
	origin []string
}

// replicator produces the lines of a ~SEQ or ~LST one at a time, so that a
// long sequence costs no memory.
type replicator struct {
	text   string
	pos    diag.Pos
	origin []string
	// ~SEQ
	name             string
	next, step, last int64
	hex              bool
	// ~LST
	sets [][][2]string
}

// take returns the next line and whether more follow.
func (r *replicator) take() (pending, bool) {
	if r.sets != nil {
		p := pending{text: r.text, pos: r.pos, set: r.sets[0], origin: r.origin}
		r.sets = r.sets[1:]
		return p, len(r.sets) > 0
	}
	val := strconv.FormatInt(r.next, 10)
	if r.hex {
		val = strconv.FormatInt(r.next, 16)
	}
	p := pending{text: r.text, pos: r.pos, set: [][2]string{{r.name, val}}, origin: r.origin}
	r.next += r.step
	more := (r.step > 0 && r.next <= r.last) || (r.step < 0 && r.next >= r.last)
	return p, more
}

const (
	maxIncludeDepth = 32
	maxSubstitution = 256     // substitutions in one line
	maxLineLen      = 1 << 16 // after substitution
	maxExpansion    = 1 << 17 // ~SEQ/~LST values in one load (keepalived.conf(5)'s largest example has 65024)
	maxMultiline    = 1 << 21 // lines produced by multi-line definitions in one load
	keepalivedBuf   = 1023    // keepalived 2.2.7: MAXBUF 1024 per fgets()
)

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

	pend      []pending
	expansion int64
	multiline int64

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

// open starts reading the top-level file.
func (l *lexer) open(name string) error {
	data, err := fs.ReadFile(l.fsys, name)
	if err != nil {
		return err
	}
	l.push(name, data)
	return nil
}

func (l *lexer) push(name string, data []byte) {
	f := &srcFile{name: name, display: l.displayName(name), data: string(data), includeCheck: l.includeCheck}
	l.stack = append(l.stack, f)
	l.files = append(l.files, f.display)
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

// rawLine reads one physical line of the current file, without its line
// terminator. It pops finished files.
func (l *lexer) rawLine() (f *srcFile, text string, ok bool) {
	for len(l.stack) > 0 {
		f = l.stack[len(l.stack)-1]
		if f.off >= len(f.data) {
			if l.mdef != nil {
				l.endMultiline()
			}
			l.includeCheck = f.includeCheck
			l.stack = l.stack[:len(l.stack)-1]
			continue
		}
		rest := f.data[f.off:]
		n := strings.IndexByte(rest, '\n')
		var b string
		if n < 0 {
			b = rest
			f.off = len(f.data)
		} else {
			b = rest[:n]
			f.off += n + 1
		}
		f.line++
		b = strings.TrimRight(b, "\r")
		if len(b) > keepalivedBuf {
			l.diags.Warnf(diag.Pos{File: f.display, Line: f.line, Col: keepalivedBuf + 1},
				"line is %d bytes long; keepalived 2.2.7 reads at most %d bytes per line and would split it here", len(b), keepalivedBuf)
		}
		return f, b, true
	}
	return nil, "", false
}

// nextLine returns the next logical line that has content, after comment
// removal, conditionals, definitions, replication, substitution and include
// processing.
func (l *lexer) nextLine() (*logLine, bool) {
	for {
		var set [][2]string
		ln := &l.cur
		if len(l.pend) > 0 {
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
		}
		for _, kv := range set {
			l.setDef(kv[0], kv[1])
		}
		if l.process(ln) {
			return ln, true
		}
	}
}

// strip implements keepalived's decomment() on s: it removes leading white
// space, the comment (from the first '!' or '#' outside double quotes), the
// '\' of "\#" and "\!" outside quotes, and trailing white space; a
// trailing '\' is kept (it continues a definition). idx, when not nil, maps
// each kept byte to its index in s (it is nil when the kept text is
// s[lead:lead+len(text)]). comment is the index of the comment character
// or -1; quote is the index of an unterminated '"' or -1.
func strip(s string) (text string, lead int, idx []int32, comment, quote int) {
	comment, quote = -1, -1
	for lead < len(s) && (s[lead] == ' ' || s[lead] == '\t') {
		lead++
	}
	var b []byte
	inQuote := false
	end := len(s)
	for i := lead; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			if inQuote {
				quote = i
			}
		case c == '\\' && i+1 < len(s):
			if !inQuote && (s[i+1] == '#' || s[i+1] == '!') {
				if b == nil {
					b = []byte(s[lead:i])
					idx = make([]int32, 0, len(s)-lead)
					for j := lead; j < i; j++ {
						idx = append(idx, int32(j))
					}
				}
				i++
				b = append(b, s[i])
				idx = append(idx, int32(i))
				continue
			}
			if b != nil {
				b = append(b, c, s[i+1])
				idx = append(idx, int32(i), int32(i+1))
			}
			i++
			continue
		case !inQuote && (c == '!' || c == '#'):
			comment = i
			end = i
		}
		if comment >= 0 {
			break
		}
		if b != nil {
			b = append(b, c)
			idx = append(idx, int32(i))
		}
	}
	if !inQuote {
		quote = -1
	}
	if b != nil {
		n := len(b)
		for n > 0 && (b[n-1] == ' ' || b[n-1] == '\t') {
			n--
		}
		return string(b[:n]), lead, idx[:n], comment, quote
	}
	n := end
	for n > lead && (s[n-1] == ' ' || s[n-1] == '\t') {
		n--
	}
	return s[lead:n], lead, nil, comment, quote
}

// decomment turns a physical line into the logical line ln, and reports
// whether anything is left.
func (l *lexer) decomment(f *srcFile, raw string, ln *logLine) bool {
	text, lead, idx, comment, quote := strip(raw)
	if comment >= 0 && l.comment != nil {
		l.comment(raw[comment+1:], diag.Pos{File: f.display, Line: f.line, Col: comment + 1})
	}
	if quote >= 0 {
		l.diags.Errorf(diag.Pos{File: f.display, Line: f.line, Col: quote + 1}, "unterminated quoted string")
	}
	if text == "" {
		return false
	}
	*ln = logLine{text: text, file: f.display, num: f.line, col0: lead + 1}
	if idx != nil {
		ln.cols = make([]int32, len(idx))
		for k, i := range idx {
			ln.cols[k] = i + 1
		}
	}
	return true
}

// redecomment runs comment removal again after a substitution, as
// keepalived does (so ${_HASH} behaves like keepalived 2.2.7's).
func (l *lexer) redecomment(ln *logLine) {
	text, lead, idx, comment, _ := strip(ln.text)
	if comment >= 0 && l.comment != nil {
		l.comment(ln.text[comment+1:], ln.posAt(comment))
	}
	if idx == nil && ln.cols == nil {
		ln.cut(lead)
		ln.text = text
		return
	}
	if ln.fixed.Line == 0 {
		cols := make([]int32, len(text))
		for k := range cols {
			i := lead + k
			if idx != nil {
				i = int(idx[k])
			}
			cols[k] = int32(ln.posAt(i).Col)
		}
		ln.cols = cols
	}
	ln.text = text
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

// conditional handles "@ID text" and "@^ID text" (keepalived.conf(5),
// "Conditional configuration"). It reports whether the line is kept; the
// line is rewritten without the condition.
func (l *lexer) conditional(ln *logLine) bool {
	s := ln.text
	neg := len(s) > 1 && s[1] == '^'
	ofs := 1
	if neg {
		ofs = 2
	}
	sp := strings.IndexAny(s[ofs:], " \t")
	if sp < 0 {
		// keepalived 2.2.7: nothing after the id, the line is dropped.
		return false
	}
	id := s[ofs : ofs+sp]
	match := l.opts.ConfigID != "" && id == l.opts.ConfigID
	if match == neg {
		return false
	}
	rest := ofs + sp
	for rest < len(s) && (s[rest] == ' ' || s[rest] == '\t') {
		rest++
	}
	ln.cut(rest)
	return true
}

// cut removes the first n bytes of the line.
func (ln *logLine) cut(n int) {
	if ln.fixed.Line == 0 {
		if ln.cols != nil {
			ln.cols = ln.cols[n:]
		} else {
			ln.col0 += n
		}
	}
	ln.text = ln.text[n:]
}

func isNameStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || ('0' <= c && c <= '9') }

// definition handles "$NAME=value" (keepalived check_definition()). There
// must be no space between the name and '='.
func (l *lexer) definition(ln *logLine) bool {
	s := ln.text
	if len(s) < 2 || !isNameStart(s[1]) {
		return false
	}
	i := 2
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	if i >= len(s) || s[i] != '=' {
		return false
	}
	name := s[1:i]
	val := strings.TrimLeft(s[i+1:], " \t")
	d := &definition{name: name}
	if strings.HasSuffix(val, "\\") {
		val = strings.TrimRight(val[:len(val)-1], " \t")
		d.multiline = true
		l.mdef = d
	}
	d.value = val
	l.defs[name] = d
	return true
}

// continueMultiline adds a physical line to the definition being read.
func (l *lexer) continueMultiline(f *srcFile, raw string) {
	d := l.mdef
	var line logLine
	ln := &line
	if !l.decomment(f, raw, ln) {
		// keepalived: an empty line ends a multi-line definition.
		l.endMultiline()
		return
	}
	t := ln.text
	more := strings.HasSuffix(t, "\\")
	if more {
		t = strings.TrimRight(t[:len(t)-1], " \t")
	}
	if t != "" {
		if d.value != "" {
			d.value += "\n"
		}
		d.value += t
	}
	if !more {
		l.endMultiline()
	}
}

func (l *lexer) endMultiline() {
	if l.mdef != nil && l.mdef.value == "" {
		l.mdef.multiline = false
	}
	l.mdef = nil
}

func (l *lexer) setDef(name, value string) {
	l.defs[name] = &definition{name: name, value: value}
}

// substitute replaces $NAME and ${NAME} in the line (keepalived
// replace_param()). It reports whether anything changed. A multi-line
// definition is only expanded when its use ends the line; its further lines
// are queued.
func (l *lexer) substitute(ln *logLine) (changed, ok bool) {
	s := ln.text
	var out strings.Builder
	var cols []int32
	var pendingLines []string
	var multilineName string
	trackCols := ln.fixed.Line == 0
	emit := func(text string, col int32, fromIndex int) {
		out.WriteString(text)
		if trackCols {
			for k := 0; k < len(text); k++ {
				if fromIndex >= 0 {
					cols = append(cols, int32(ln.posAt(fromIndex+k).Col))
				} else {
					cols = append(cols, col)
				}
			}
		}
	}
	i := 0
	last := 0
	for i < len(s) {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			break
		}
		i += j
		d, params, n := l.findDef(s, i)
		if d == nil {
			i++
			continue
		}
		atEnd := i+n == len(s)
		if d.multiline && !atEnd {
			i++
			continue
		}
		if d.multiline && slices.Contains(ln.origin, d.name) {
			l.diags.Errorf(ln.posAt(i), "multi-line definition $%s uses itself", d.name)
			return false, false
		}
		emit(s[last:i], 0, last)
		val := d.value
		if d.fn != nil {
			val = d.fn(params)
		}
		col := int32(ln.posAt(i).Col)
		if d.multiline {
			first, rest, _ := strings.Cut(val, "\n")
			emit(first, col, -1)
			if rest != "" {
				pendingLines = strings.Split(rest, "\n")
			}
			multilineName = d.name
		} else {
			emit(val, col, -1)
		}
		changed = true
		i += n
		last = i
		if out.Len() > maxLineLen {
			l.diags.Errorf(ln.posAt(0), "parameter substitution makes the line longer than %d bytes", maxLineLen)
			return false, false
		}
		if d.multiline {
			break
		}
	}
	if !changed {
		return false, true
	}
	if last < len(s) {
		emit(s[last:], 0, last)
	}
	pos := ln.posAt(0)
	ln.text = out.String()
	if trackCols {
		ln.cols = cols
	}
	if len(pendingLines) > 0 {
		l.multiline += int64(len(pendingLines))
		if l.multiline > maxMultiline {
			l.diags.Errorf(pos, "multi-line definitions produce more than %d lines", maxMultiline)
			return false, false
		}
		// The rest of a multi-line definition is processed before the
		// following lines of the file.
		origin := append(slices.Clip(ln.origin), multilineName)
		p := make([]pending, 0, len(pendingLines)+len(l.pend))
		for _, t := range pendingLines {
			p = append(p, pending{text: t, pos: pos, origin: origin})
		}
		l.pend = append(p, l.pend...)
	}
	return true, true
}

// findDef recognises a parameter use at s[i] == '$' (keepalived
// find_definition()): $NAME followed by white space, ',', ')' or the end of
// the line, or ${NAME} / ${NAME params}. It returns the definition, any
// numeric parameters and the length of the use.
func (l *lexer) findDef(s string, i int) (*definition, []int, int) {
	j := i + 1
	braces := j < len(s) && s[j] == '{'
	if braces {
		j++
	}
	if j >= len(s) || !isNameStart(s[j]) {
		return nil, nil, 0
	}
	k := j + 1
	for k < len(s) && isNameChar(s[k]) {
		k++
	}
	name := s[j:k]
	var params []int
	if braces {
		m := k
		for m < len(s) && (s[m] == ' ' || ('0' <= s[m] && s[m] <= '9')) {
			m++
		}
		if m >= len(s) || s[m] != '}' {
			return nil, nil, 0
		}
		if ps := strings.Fields(s[k:m]); len(ps) > 0 {
			if m > k && s[m-1] == ' ' {
				return nil, nil, 0
			}
			for _, p := range ps {
				v, err := strconv.Atoi(p)
				if err != nil {
					return nil, nil, 0
				}
				params = append(params, v)
			}
		}
		k = m + 1
	} else if k < len(s) && !strings.ContainsRune(" \t,)", rune(s[k])) {
		return nil, nil, 0
	}
	d := l.defs[name]
	if d == nil {
		return nil, nil, 0
	}
	if len(params) > d.maxParams {
		return nil, nil, 0
	}
	return d, params, k - i
}

// replicate handles ~SEQ(...), ~SEQx(...) and ~LST(...) (keepalived.conf(5)
// "Sequence blocks" and "List blocks"): the rest of the line is queued once
// per value with the variable(s) set.
func (l *lexer) replicate(ln *logLine) {
	pos := ln.posAt(0)
	s := ln.text
	var r *replicator
	var n int64
	var err error
	if strings.HasPrefix(s, "~SEQ") {
		r, n, err = l.parseSeq(s[4:])
	} else {
		var sets [][][2]string
		var rest string
		sets, rest, err = parseLst(s[4:])
		r, n = &replicator{text: rest, sets: sets}, int64(len(sets))
	}
	if err != nil {
		l.diags.Errorf(pos, "invalid %s: %v", s[:4], err)
		return
	}
	l.expansion += n
	if l.expansion > maxExpansion {
		l.diags.Errorf(pos, "~SEQ/~LST replication produces more than %d lines", maxExpansion)
		return
	}
	r.pos = pos
	r.origin = ln.origin
	if len(r.text) < len(s) {
		r.pos = ln.posAt(len(s) - len(r.text))
	}
	l.pend = append([]pending{{gen: r}}, l.pend...)
}

// parseSeq parses "(var, a[, b[, c]]) rest" after "~SEQ" (keepalived
// add_seq()); a leading 'x' formats the values in hexadecimal.
func (l *lexer) parseSeq(s string) (*replicator, int64, error) {
	hex := strings.HasPrefix(s, "x")
	if hex {
		s = s[1:]
	}
	s = strings.TrimLeft(s, " \t")
	if !strings.HasPrefix(s, "(") {
		return nil, 0, fmt.Errorf("missing '('")
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return nil, 0, fmt.Errorf("missing ')'")
	}
	inner := s[1:end]
	rest := strings.TrimLeft(s[end+1:], " \t")
	// Definitions may be used for the numbers.
	tmp := &logLine{text: inner, fixed: diag.Pos{Line: 1}}
	if strings.IndexByte(inner, '$') >= 0 {
		if _, ok := l.substitute(tmp); !ok {
			return nil, 0, fmt.Errorf("bad substitution")
		}
	}
	parts := strings.Split(tmp.text, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	if len(parts) < 2 || len(parts) > 4 || parts[0] == "" {
		return nil, 0, fmt.Errorf("want (variable, [start, [step,]] end)")
	}
	name := parts[0]
	for i := 0; i < len(name); i++ {
		if !isNameChar(name[i]) {
			return nil, 0, fmt.Errorf("bad variable name %q", name)
		}
	}
	nums := make([]int64, 0, 3)
	for _, p := range parts[1:] {
		v, err := strconv.ParseInt(p, 0, 64)
		if err != nil || v > 1<<53 || v < -(1<<53) {
			return nil, 0, fmt.Errorf("bad number %q", p)
		}
		nums = append(nums, v)
	}
	var start, step, last int64
	switch len(nums) {
	case 1:
		last = nums[0]
		step = 1
		if last < 1 {
			step = -1
		}
		start = 1
		if last < 0 {
			start = -1
		}
	case 2:
		start, last = nums[0], nums[1]
		step = 1
		if start > last {
			step = -1
		}
	case 3:
		start, step, last = nums[0], nums[1], nums[2]
		if step == 0 || (start < last && step < 0) || (start > last && step > 0) {
			return nil, 0, fmt.Errorf("step %d never reaches %d from %d", step, last, start)
		}
	}
	if hex && (start < 0 || last < 0) {
		return nil, 0, fmt.Errorf("~SEQx is only valid for positive numbers")
	}
	n := (last-start)/step + 1
	return &replicator{text: rest, name: name, next: start, step: step, last: last, hex: hex}, n, nil
}

// parseLst parses "(var, v1, v2, ...) rest" or "({a, b}, {1, 2}, ...) rest"
// after "~LST" (keepalived add_lst()). Missing values are empty.
func parseLst(s string) ([][][2]string, string, error) {
	s = strings.TrimLeft(s, " \t")
	if !strings.HasPrefix(s, "(") {
		return nil, "", fmt.Errorf("missing '('")
	}
	depth := 0
	end := -1
	for i := 0; i < len(s) && end < 0; i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				end = i
			}
		}
	}
	if end < 0 {
		return nil, "", fmt.Errorf("missing ')'")
	}
	rest := strings.TrimLeft(s[end+1:], " \t")
	groups, err := splitLstGroups(s[1:end])
	if err != nil {
		return nil, "", err
	}
	if len(groups) < 2 {
		return nil, "", fmt.Errorf("no values")
	}
	vars := groups[0]
	for _, v := range vars {
		if v == "" {
			return nil, "", fmt.Errorf("empty variable name")
		}
		for i := 0; i < len(v); i++ {
			if !isNameChar(v[i]) {
				return nil, "", fmt.Errorf("bad variable name %q", v)
			}
		}
	}
	var sets [][][2]string
	for _, vals := range groups[1:] {
		if len(vals) > len(vars) {
			return nil, "", fmt.Errorf("too many values in a value set")
		}
		set := make([][2]string, len(vars))
		for i, name := range vars {
			set[i][0] = name
			if i < len(vals) {
				set[i][1] = vals[i]
			}
		}
		sets = append(sets, set)
	}
	return sets, rest, nil
}

// splitLstGroups splits "a, 1, 2" into [[a] [1] [2]] and "{a,b},{1,2}" into
// [[a b] [1 2]].
func splitLstGroups(s string) ([][]string, error) {
	var groups [][]string
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "{") {
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return nil, fmt.Errorf("missing '}'")
			}
			var g []string
			for _, f := range strings.Split(s[1:end], ",") {
				g = append(g, strings.TrimSpace(f))
			}
			groups = append(groups, g)
			s = strings.TrimLeft(s[end+1:], " \t")
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			groups = append(groups, []string{strings.TrimSpace(s[:end])})
			s = s[end:]
		}
		if s == "" {
			return groups, nil
		}
		if s[0] != ',' {
			return nil, fmt.Errorf("expected ',' at %q", s)
		}
		s = s[1:]
	}
}

// include handles the include keywords. It reports whether the line was
// one.
func (l *lexer) include(ln *logLine) bool {
	s := ln.text
	if !strings.HasPrefix(s, "include") || len(s) < 8 {
		return false
	}
	var kind includeFlags
	var pat string
	switch c := s[7]; {
	case c == ' ' || c == '\t':
		pat = s[8:]
	case strings.IndexByte("rmwba", c) >= 0 && len(s) > 8 && (s[8] == ' ' || s[8] == '\t'):
		pat = s[9:]
		switch c {
		case 'r':
			kind = incRead
		case 'm':
			kind = incRead | incMatch
		case 'w':
			kind = incRead | incMatch | incWildcard
		case 'b':
			kind = incRead | incBrace
		case 'a':
			kind = incRead | incMatch | incWildcard | incBrace
		}
	default:
		return false
	}
	pat = strings.TrimSpace(pat)
	pos := ln.posAt(0)
	check := kind | l.includeCheck
	report := func(flag includeFlags, format string, args ...any) {
		if check&flag != 0 {
			l.diags.Errorf(pos, format, args...)
		} else {
			l.diags.Warnf(pos, format, args...)
		}
	}
	if pat == "" {
		l.diags.Errorf(pos, "include needs a file name or pattern")
		return true
	}
	if len(l.stack) >= maxIncludeDepth {
		l.diags.Errorf(pos, "includes nested more than %d deep (an include cycle?)", maxIncludeDepth)
		return true
	}
	cur := l.stack[len(l.stack)-1]
	var matches []string
	for _, p := range expandBraces(pat) {
		fp, err := l.fsPath(cur, p)
		if err != nil {
			report(incRead, "include %s: %v", pat, err)
			continue
		}
		if strings.ContainsAny(p, "*?[") {
			m, err := fs.Glob(l.fsys, fp)
			if err != nil {
				report(incRead, "include %s: bad pattern: %v", pat, err)
				continue
			}
			if len(m) == 0 {
				report(incWildcard, "include %s: %s matches no file", pat, p)
			}
			matches = append(matches, m...)
			continue
		}
		if _, err := fs.Stat(l.fsys, fp); err != nil {
			flag := incMatch
			if p != pat {
				flag = incBrace
			}
			report(flag, "include %s: %s: no such file", pat, p)
			continue
		}
		matches = append(matches, fp)
	}
	// Push in reverse so that the first match is read first.
	var files []*srcFile
	for _, m := range matches {
		if slices.ContainsFunc(l.stack, func(f *srcFile) bool { return f.name == m }) {
			l.diags.Errorf(pos, "include %s: %s includes itself", pat, l.displayName(m))
			continue
		}
		st, err := fs.Stat(l.fsys, m)
		if err == nil && st.IsDir() {
			report(incRead, "include %s: %s is a directory", pat, l.displayName(m))
			continue
		}
		data, err := fs.ReadFile(l.fsys, m)
		if err != nil {
			report(incRead, "include %s: %v", pat, err)
			continue
		}
		files = append(files, &srcFile{name: m, display: l.displayName(m), data: string(data), includeCheck: l.includeCheck})
	}
	for i := len(files) - 1; i >= 0; i-- {
		l.stack = append(l.stack, files[i])
	}
	for _, f := range files {
		l.files = append(l.files, f.display)
	}
	return true
}

// fsPath resolves an include pattern against the including file.
func (l *lexer) fsPath(cur *srcFile, p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		root := l.opts.Root
		if root == "" {
			root = "/"
		}
		rel := strings.TrimPrefix(p, root)
		if root != "/" && (rel == p || (rel != "" && rel[0] != '/')) {
			return "", fmt.Errorf("%s is outside %s", p, root)
		}
		rel = strings.TrimPrefix(rel, "/")
		if rel == "" {
			rel = "."
		}
		return path.Clean(rel), nil
	}
	fp := path.Join(path.Dir(cur.name), p)
	if fp == ".." || strings.HasPrefix(fp, "../") {
		return "", fmt.Errorf("%s is outside the configuration root", p)
	}
	return fp, nil
}

// expandBraces does csh-style brace expansion: "a{b,c{d,e}}f" gives abf,
// acdf, acef. Unbalanced braces are left as they are.
func expandBraces(s string) []string {
	open := -1
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth == 0 {
				var alts []string
				d, last := 0, open+1
				for j := open + 1; j < i; j++ {
					switch s[j] {
					case '{':
						d++
					case '}':
						d--
					case ',':
						if d == 0 {
							alts = append(alts, s[last:j])
							last = j + 1
						}
					}
				}
				alts = append(alts, s[last:i])
				var out []string
				for _, a := range alts {
					out = append(out, expandBraces(s[:open]+a+s[i+1:])...)
				}
				return out
			}
		}
	}
	return []string{s}
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
