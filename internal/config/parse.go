package config

import (
	"errors"
	"fmt"
	"github.com/vigil-ha/vigil/internal/cmdline"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
)

// parser turns the token stream into the model. It reports every problem
// it can and goes on: a bad value is skipped (the default stays), an
// unknown keyword is skipped with its block.
type parser struct {
	ix    *keywordIndex
	lex   *lexer
	diags *diag.Diagnostics
	peek  *token
	cfg   *Config
	meta  meta
	// usedScripts are the vrrp_scripts some track_script names.
	usedScripts map[string]bool
	// unknownMsg caches the message for an unknown keyword in a block
	// (replicated configurations repeat them).
	unknownMsg map[[2]string]string
	// args is a stack of statement arguments and stmts the statements
	// by nesting depth, reused to spare an allocation per line.
	args  []token
	stmts []*stmt
	depth int
	// rsScratch and rsMetaScratch collect the real servers of the virtual
	// server being read.
	rsScratch     []RealServer
	rsMetaScratch []rsMeta
	// rulePrefs counts the preferences given to rules without one, IPv4
	// then IPv6 (see defaultRulePreference).
	rulePrefs [2]int64
}

// stmt is one statement: a keyword, its arguments on the same line, and
// whether a '{' block follows.
type stmt struct {
	kw    token
	args  []token
	block bool
	open  token // the '{' (a synthetic one at kw when it was missing)
	seen  *seen // keywords already seen in the enclosing block
	// argsOK is set when the number of arguments is acceptable.
	argsOK bool
}

func (p *parser) next() token {
	if p.peek != nil {
		t := *p.peek
		p.peek = nil
		return t
	}
	return p.lex.next()
}

func (p *parser) unread(t token) { p.peek = &t }

func (p *parser) errf(pos diag.Pos, format string, args ...any) {
	p.diags.Errorf(pos, format, args...)
}

func (p *parser) warnf(pos diag.Pos, format string, args ...any) {
	p.diags.Warnf(pos, format, args...)
}

// blockMode says what follows a keyword.
type blockMode uint8

const (
	noBlock    blockMode = iota
	subBlock             // { keywords }
	valueBlock           // { one entry per line }
)

// kw describes one keyword of a block whose model is T.
type kw[T any] struct {
	name string
	// min and max bound the number of arguments (max < 0: any).
	min, max int
	mode     blockMode
	// multi: the keyword may appear more than once in a block.
	multi bool
	run   func(p *parser, s *stmt, t *T)
	// unsupported, when set, is why vigil does not act on the keyword.
	unsupported string
	// deprecated, when set, is the keyword to use instead.
	deprecated string
	// sub is the block a subBlock keyword opens, for the keyword index.
	sub blockInfo
}

// block is a keyword table.
type block[T any] struct {
	name  string
	kws   map[string]*kw[T]
	order []*kw[T]
}

func newBlock[T any](name string, kws ...*kw[T]) *block[T] {
	b := &block[T]{name: name, kws: make(map[string]*kw[T], len(kws))}
	for _, k := range kws {
		if _, dup := b.kws[k.name]; dup {
			panic("config: duplicate keyword " + name + "." + k.name)
		}
		b.kws[k.name] = k
		b.order = append(b.order, k)
	}
	return b
}

// blockInfo is the type-free view of a block used for the keyword index.
type blockInfo interface {
	blockName() string
	keywords() []Keyword
	subBlocks() []blockInfo
}

func (b *block[T]) blockName() string { return b.name }

func (b *block[T]) keywords() []Keyword {
	out := make([]Keyword, 0, len(b.order))
	for _, k := range b.order {
		out = append(out, Keyword{
			Block:       b.name,
			Name:        k.name,
			Supported:   k.unsupported == "",
			Unsupported: k.unsupported,
			Deprecated:  k.deprecated,
		})
	}
	return out
}

func (b *block[T]) subBlocks() []blockInfo {
	var out []blockInfo
	for _, k := range b.order {
		if k.sub != nil {
			out = append(out, k.sub)
		}
	}
	return out
}

// seen records the keywords given in one block, for duplicate warnings and
// for later checks that need a keyword's position.
type seen struct {
	kw []seenKw
}

type seenKw struct {
	name string
	pos  diag.Pos
}

func (s *seen) add(name string, pos diag.Pos) (diag.Pos, bool) {
	for _, k := range s.kw {
		if k.name == name {
			return k.pos, true
		}
	}
	if s.kw == nil {
		s.kw = make([]seenKw, 0, 4)
	}
	s.kw = append(s.kw, seenKw{name, pos})
	return diag.Pos{}, false
}

// at returns where a keyword was given.
func (s *seen) at(name string) (diag.Pos, bool) {
	if s == nil {
		return diag.Pos{}, false
	}
	for _, k := range s.kw {
		if k.name == name {
			return k.pos, true
		}
	}
	return diag.Pos{}, false
}

// readStmt reads the rest of a statement that starts with the word kw
// into the statement of the current depth; its arguments go on the
// argument stack from argBase, which release pops.
func (p *parser) readStmt(kw token) (s *stmt, argBase int) {
	for len(p.stmts) <= p.depth {
		p.stmts = append(p.stmts, &stmt{})
	}
	s = p.stmts[p.depth]
	*s = stmt{kw: kw}
	argBase = len(p.args)
	for {
		t := p.next()
		switch t.kind {
		case tWord:
			p.args = append(p.args, t)
			continue
		case tLBrace:
			s.block = true
			s.open = t
		case tRBrace, tEOF:
			p.unread(t)
		}
		n := len(p.args)
		if n > argBase {
			s.args = p.args[argBase:n:n]
		}
		return s, argBase
	}
}

// neverClosed reports a '{' without its '}'. keepalived 2.2.7 reads on to
// the end of the file, which closes every open block ("There are N
// missing '}'s"), and runs; so does vigil: every line after the '{'
// belongs to its block, and each keyword out of place there has its own
// warning.
const neverClosed = "'{' is never closed (missing '}' before the end of the file); the end of the file closes it, so every line after it belongs to this block, as keepalived reads it"

// skipBlock skips a balanced block whose '{' has been read.
func (p *parser) skipBlock(open token) {
	depth := 1
	for {
		t := p.next()
		switch t.kind {
		case tLBrace:
			depth++
		case tRBrace:
			depth--
			if depth == 0 {
				return
			}
		case tEOF:
			p.warnf(open.pos, neverClosed)
			p.unread(t)
			return
		}
	}
}

// wantBlock makes sure a block keyword has its '{', possibly on the next
// line. When it is missing, the following lines are read as the block (as
// keepalived does) and an error is reported.
func (p *parser) wantBlock(s *stmt) {
	if s.block {
		return
	}
	for {
		t := p.next()
		if t.kind == tEOL {
			continue
		}
		if t.kind == tLBrace {
			s.block = true
			s.open = t
			return
		}
		p.unread(t)
		break
	}
	p.errf(s.kw.pos, "missing '{' after %s", s.kw.text)
	s.open = token{kind: tLBrace, pos: s.kw.pos, text: "{"}
}

// parseBody reads the statements of a block until its '}' (or the end of
// the file for the root, open.kind == tEOF) and runs their keywords.
func parseBody[T any](p *parser, b *block[T], t *T, open token) *seen {
	sn := &seen{}
	root := open.kind == tEOF
	p.depth++
	defer func() { p.depth-- }()
	for {
		tok := p.next()
		switch tok.kind {
		case tEOL:
			continue
		case tEOF:
			if !root {
				p.warnf(open.pos, neverClosed)
				p.unread(tok)
			}
			return sn
		case tRBrace:
			if root {
				// keepalived skips a '}' outside any block; the lines
				// after it are read at the top level either way.
				p.warnf(tok.pos, "unexpected '}': no block is open here; ignored, as keepalived does")
				continue
			}
			return sn
		case tLBrace:
			p.errf(tok.pos, "unexpected '{'")
			p.skipBlock(tok)
			continue
		}
		s, base := p.readStmt(tok)
		s.seen = sn
		runStmt(p, b, t, s)
		p.args = p.args[:base]
	}
}

// runStmt checks and runs one statement of a block.
func runStmt[T any](p *parser, b *block[T], t *T, s *stmt) {
	k := b.kws[s.kw.text]
	if k == nil {
		p.unknown(b.name, s)
		if s.block {
			p.skipBlock(s.open)
		}
		return
	}
	p.dispatch(k.name, k.min, k.max, k.mode, k.multi, k.unsupported, k.deprecated, b.name, s)
	if k.mode == noBlock && s.block {
		p.errf(s.open.pos, "%s does not take a '{' block", s.kw.text)
		p.skipBlock(s.open)
		return
	}
	if k.mode != noBlock {
		p.wantBlock(s)
	}
	if s.argsOK {
		k.run(p, s, t)
	} else if k.mode != noBlock {
		p.skipBlock(s.open)
	}
}

// dispatch checks what is common to every keyword: deprecation, support,
// repetition and the number of arguments.
func (p *parser) dispatch(name string, min, max int, mode blockMode, multi bool, unsupported, deprecated, blockName string, s *stmt) {
	if deprecated != "" {
		p.warnf(s.kw.pos, "%s is deprecated; use %s", s.kw.text, deprecated)
	}
	if unsupported != "" {
		in := "in " + blockName
		if blockName == rootName {
			in = "at the top level"
		}
		p.warnf(s.kw.pos, "%s %s is not supported by vigil (%s); ignored", s.kw.text, in, unsupported)
	}
	if prev, dup := s.seen.add(name, s.kw.pos); dup && !multi {
		p.warnf(s.kw.pos, "%s given again (first at %s); the last one is used", s.kw.text, prev)
	}
	s.argsOK = true
	if len(s.args) < min {
		if min == 1 {
			p.warnf(s.kw.pos, "%s needs a value; ignored, as keepalived does", s.kw.text)
		} else {
			p.warnf(s.kw.pos, "%s needs %d values, got %d; ignored, as keepalived does", s.kw.text, min, len(s.args))
		}
		s.argsOK = false
		return
	}
	if max >= 0 && len(s.args) > max {
		extra := s.args[max]
		if max == 0 {
			p.warnf(extra.pos, "%s takes no value; %q and what follows is ignored", s.kw.text, extra.text)
		} else {
			p.warnf(extra.pos, "extra value %q after %s is ignored", extra.text, s.kw.text)
		}
		s.args = s.args[:max]
	}
}

// unknown reports an unknown keyword with a suggestion.
func (p *parser) unknown(blockName string, s *stmt) {
	key := [2]string{blockName, s.kw.text}
	msg, ok := p.unknownMsg[key]
	switch {
	case ok:
	case len(p.unknownMsg) >= maxSuggestions:
		// Past this many distinct unknown keywords the file is not a
		// keepalived.conf with typos: no more suggestions.
		msg = fmt.Sprintf("unknown keyword %q; ignored", s.kw.text)
	default:
		msg = p.unknownMessage(blockName, s.kw.text)
		if p.unknownMsg == nil {
			p.unknownMsg = map[[2]string]string{}
		}
		p.unknownMsg[key] = msg
	}
	p.warnf(s.kw.pos, "%s", msg)
}

// synonyms maps a keyword to the other name keepalived 2.2.7 gives it in
// some blocks and not in others: lb_kind is only a virtual_server
// keyword, lvs_method is valid in real_server too.
var synonyms = map[string]string{
	"lb_kind":    "lvs_method",
	"lvs_method": "lb_kind",
	"lb_algo":    "lvs_sched",
	"lvs_sched":  "lb_algo",
}

func (p *parser) unknownMessage(blockName, name string) string {
	in := "in " + blockName
	if blockName == rootName {
		in = "at the top level"
	}
	if syn := synonyms[name]; syn != "" && slices.Contains(p.ix.names(blockName), syn) {
		return fmt.Sprintf("keyword %q is not valid %s (keepalived 2.2.7 ignores it there too: %s is the keyword here); ignored", name, in, syn)
	}
	if sug := closest(name, p.ix.names(blockName)); sug != "" {
		return fmt.Sprintf("unknown keyword %q %s; did you mean %q?", name, in, sug)
	}
	if where := p.ix.home(name, blockName); where != "" {
		return fmt.Sprintf("keyword %q is not valid %s (it belongs in %s); ignored", name, in, where)
	}
	return fmt.Sprintf("unknown keyword %q %s; ignored", name, in)
}

// values reads a value block: each line is an entry whose first word is
// passed as kw.
func (p *parser) values(s *stmt, entry func(e *stmt)) {
	p.depth++
	defer func() { p.depth-- }()
	for {
		tok := p.next()
		switch tok.kind {
		case tEOL:
			continue
		case tEOF:
			p.warnf(s.open.pos, neverClosed)
			p.unread(tok)
			return
		case tRBrace:
			return
		case tLBrace:
			p.errf(tok.pos, "unexpected '{' in %s", s.kw.text)
			p.skipBlock(tok)
			continue
		}
		e, base := p.readStmt(tok)
		if e.block {
			p.errf(e.open.pos, "unexpected '{' in %s", s.kw.text)
			p.skipBlock(e.open)
		} else {
			entry(e)
		}
		p.args = p.args[:base]
	}
}

// ---- typed arguments ----

// ignoredValue ends the warning for a value keepalived 2.2.7 rejects: its
// keyword handlers report the value ("invalid", "not valid", "- ignoring")
// and return without setting anything, so the line has no effect and the
// setting keeps its default or earlier value; keepalived runs. Callers
// whose keyword keepalived treats otherwise (a default set on a bad value,
// an instance that cannot run without it) handle ok == false themselves.
const ignoredValue = "the line is ignored and the earlier or default value stays, as keepalived does"

// uintArg parses a decimal unsigned integer in [min, max] (keepalived
// read_unsigned()).
func (p *parser) uintArg(t token, what string, min, max uint64) (uint64, bool) {
	str := strings.TrimPrefix(strings.TrimLeft(t.text, " \t"), "+")
	if strings.HasPrefix(str, "-") {
		p.warnf(t.pos, "%s %s: negative numbers are not allowed (range %d..%d); "+ignoredValue, what, t.text, min, max)
		return 0, false
	}
	v, err := strconv.ParseUint(str, 10, 64)
	if err != nil {
		p.warnf(t.pos, "%s %q is not a number (range %d..%d); "+ignoredValue, what, t.text, min, max)
		return 0, false
	}
	if v < min || v > max {
		p.warnf(t.pos, "%s %s is out of range %d..%d; "+ignoredValue, what, t.text, min, max)
		return 0, false
	}
	return v, true
}

// intArg parses a decimal integer in [min, max] (keepalived read_int()).
func (p *parser) intArg(t token, what string, min, max int64) (int64, bool) {
	str := strings.TrimPrefix(strings.TrimLeft(t.text, " \t"), "+")
	v, err := strconv.ParseInt(str, 10, 64)
	if err != nil {
		p.warnf(t.pos, "%s %q is not a number (range %d..%d); "+ignoredValue, what, t.text, min, max)
		return 0, false
	}
	if v < min || v > max {
		p.warnf(t.pos, "%s %s is out of range %d..%d; "+ignoredValue, what, t.text, min, max)
		return 0, false
	}
	return v, true
}

// timerArg parses seconds with up to 6 decimal places (keepalived
// read_timer() / read_decimal_unsigned(), microsecond resolution) in
// [min, max].
func (p *parser) timerArg(t token, what string, min, max time.Duration) (time.Duration, bool) {
	d, err := parseSeconds(t.text, 6)
	if err != nil {
		p.warnf(t.pos, "%s %q: %v; "+ignoredValue, what, t.text, err)
		return 0, false
	}
	if d < min || d > max {
		p.warnf(t.pos, "%s %s is out of range %s..%s; "+ignoredValue, what, t.text, fmtSeconds(min), fmtSeconds(max))
		return 0, false
	}
	return d, true
}

// secondsArg parses whole seconds in [min, max].
func (p *parser) secondsArg(t token, what string, min, max uint64) (time.Duration, bool) {
	v, ok := p.uintArg(t, what, min, max)
	return time.Duration(v) * time.Second, ok
}

// parseSeconds parses "12", "0.5", "3.000001" into a duration, refusing
// more than digits decimal places.
func parseSeconds(s string, digits int) (time.Duration, error) {
	s = strings.TrimPrefix(s, "+")
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("negative time")
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && (!hasDot || frac == "") {
		return 0, fmt.Errorf("not a time in seconds")
	}
	if len(frac) > digits {
		return 0, fmt.Errorf("more than %d decimal places", digits)
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, fmt.Errorf("not a time in seconds")
			}
		}
	}
	var w uint64
	if whole != "" {
		var err error
		w, err = strconv.ParseUint(whole, 10, 64)
		if err != nil || w > uint64(math.MaxInt64/int64(time.Second)) {
			return 0, fmt.Errorf("too large")
		}
	}
	d := time.Duration(w) * time.Second
	if frac != "" {
		f, _ := strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		d += time.Duration(f)
	}
	return d, nil
}

// fmtSeconds prints a duration the way keepalived.conf writes it.
func fmtSeconds(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	return s + "s"
}

// boolArg reads an optional <BOOL> (on|off|true|false|yes|no); no value
// means true.
func (p *parser) boolArg(s *stmt) (bool, bool) {
	if len(s.args) == 0 {
		return true, true
	}
	t := s.args[0]
	switch t.text {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	p.warnf(t.pos, "%s %q: want on|off|true|false|yes|no; "+ignoredValue, s.kw.text, t.text)
	return false, false
}

// addrArg parses an IPv4 or IPv6 address.
func (p *parser) addrArg(t token, what string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(t.text)
	if err != nil || a.Zone() != "" {
		p.warnf(t.pos, "%s %q is not a valid IP address; "+ignoredValue, what, t.text)
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// portArg parses a port 1..65535.
func (p *parser) portArg(t token, what string) (uint16, bool) {
	v, ok := p.uintArg(t, what, 1, 65535)
	return uint16(v), ok
}

// enumArg checks a value against a list.
func (p *parser) enumArg(t token, what string, values ...string) (string, bool) {
	for _, v := range values {
		if t.text == v {
			return v, true
		}
	}
	msg := fmt.Sprintf("%s %q: want one of %s", what, t.text, strings.Join(values, ", "))
	if sug := closest(t.text, values); sug != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", sug)
	}
	p.warnf(t.pos, "%s; "+ignoredValue, msg)
	return "", false
}

// rest returns the raw text of the statement after its keyword (for
// commands, which keepalived re-reads with quoting and escapes).
func (s *stmt) rest() (string, diag.Pos) {
	if len(s.args) == 0 {
		return "", s.kw.pos
	}
	first, last := s.args[0], s.args[len(s.args)-1]
	if first.lineID != 0 && first.lineID == last.lineID {
		return first.src[first.off:last.end], first.pos
	}
	parts := make([]string, len(s.args))
	for i, a := range s.args {
		parts[i] = a.text
	}
	return strings.Join(parts, " "), first.pos
}

// command parses a notify-style command, keepalived notify_script_init():
// the line is split with shell-like quoting; the first word is split again
// into the program and its parameters (so parameters must be quoted
// together with the program), the second and third words are the user and
// group to run it as.
func (p *parser) command(s *stmt) Command {
	words, args, pos, ok := p.splitProgram(s)
	if !ok {
		return Command{}
	}
	c := Command{Pos: pos, Args: args}
	if len(words) > 1 {
		c.User = words[1]
		if looksLikeParam(c.User) {
			p.warnf(s.args[1].pos, "%s: %q is taken as the user to run %s as; to pass it as a parameter, quote the program with its parameters (%s \"%s %s\")",
				s.kw.text, c.User, args[0], s.kw.text, words[0], c.User)
		}
	}
	if len(words) > 2 {
		c.Group = words[2]
	}
	if len(words) > 3 {
		p.warnf(pos, "%s: words after the user and group are ignored (quote the program together with its parameters)", s.kw.text)
	}
	return c
}

// splitProgram splits a script line as keepalived does: the line into
// words, then its first word again into the program and its parameters.
func (p *parser) splitProgram(s *stmt) (words, args []string, pos diag.Pos, ok bool) {
	raw, pos := s.rest()
	words, err := splitCommand(raw)
	if err != nil {
		// keepalived 2.2.7 alloc_strvec_quoted_escaped() reports "missing
		// terminating" quote or "Missing escape char at end" and sets no
		// script; the rest of the file runs.
		p.warnf(pos, "%s: %v; ignored, as keepalived does", s.kw.text, err)
		return nil, nil, pos, false
	}
	if len(words) == 0 {
		// keepalived 2.2.7 sets no script ("No script specified" or
		// nothing at all) and runs on.
		p.warnf(s.kw.pos, "%s has no program; ignored, as keepalived does", s.kw.text)
		return nil, nil, pos, false
	}
	args, err = splitCommand(words[0])
	switch {
	case err != nil:
		p.warnf(pos, "%s: %v; ignored, as keepalived does", s.kw.text, err)
		return nil, nil, pos, false
	case len(args) == 0:
		// keepalived 2.2.7 takes "" and runs on; executing it fails.
		p.warnf(pos, "%s: empty program; ignored (keepalived accepts it and its every run fails)", s.kw.text)
		return nil, nil, pos, false
	}
	return words, args, pos, true
}

// looksLikeParam reports whether a word in the user position of a notify
// command is more likely a parameter the author meant for the script.
func looksLikeParam(w string) bool {
	switch strings.ToUpper(w) {
	case "MASTER", "BACKUP", "FAULT", "STOP", "DELETED", "UP", "DOWN":
		return true
	}
	return strings.ContainsAny(w, "/=$") || strings.HasPrefix(w, "-")
}

// program parses a vrrp_script "script" or MISC_CHECK "misc_path"
// (keepalived set_script_params_array()): only the first word counts, and
// it is split again into the program and its parameters.
func (p *parser) program(s *stmt) Command {
	words, args, pos, ok := p.splitProgram(s)
	if !ok {
		return Command{}
	}
	if len(words) > 1 {
		p.warnf(pos, "%s: keepalived ignores %q and what follows; quote the program together with its parameters", s.kw.text, words[1])
	}
	return Command{Pos: pos, Args: args}
}

// splitCommand splits a script line as keepalived does (see
// internal/cmdline).
func splitCommand(s string) ([]string, error) {
	w, err := cmdline.Split(s)
	var se *cmdline.SyntaxError
	if errors.As(err, &se) {
		return nil, errors.New(se.Msg)
	}
	return w, err
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// ---- suggestions ----

// closest returns the candidate nearest to s by edit distance, if it is
// near enough to be a likely typo.
func closest(s string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := editDistance(s, c)
		if best == "" || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	limit := 2
	if len(s) > 8 {
		limit = 3
	}
	if best == "" || bestD > limit || bestD >= len(s) {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance.
func editDistance(a, b string) int {
	if a == b {
		return 0
	}
	la, lb := len(a), len(b)
	prev2 := make([]int, lb+1)
	prev := make([]int, lb+1)
	cur := make([]int, lb+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= la; i++ {
		cur[0] = i
		for j := 1; j <= lb; j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[lb]
}

// sortedKeys returns the keys of a set, sorted.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// appendDoubling is append for lists that can hold millions of entries
// (addresses, routes, real servers): append grows a large slice by only a
// quarter, which copies a long list of big structs about five times over.
func appendDoubling[T any](s []T, v T) []T {
	if len(s) == cap(s) && len(s) >= 1024 {
		s = slices.Grow(s, len(s))
	}
	return append(s, v)
}
