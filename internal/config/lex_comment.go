package config

import (
	"strings"

	"github.com/vigil-ha/vigil/internal/diag"
)

// Comment removal (keepalived decomment()) and "@ID" conditional lines.

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

// cutAt shortens strip's text (lead, idx as strip returns them) to what
// stands before index i of the physical line, without trailing white
// space.
func cutAt(text string, lead int, idx []int32, i int) (string, []int32) {
	n := i - lead
	if idx != nil {
		n = 0
		for n < len(idx) && int(idx[n]) < i {
			n++
		}
		idx = idx[:n]
	}
	n = min(max(n, 0), len(text))
	for n > 0 && (text[n-1] == ' ' || text[n-1] == '\t') {
		n--
	}
	if idx != nil {
		idx = idx[:n]
	}
	return text[:n], idx
}

// decomment turns a physical line into the logical line ln, and reports
// whether anything is left.
func (l *lexer) decomment(f *srcFile, raw string, ln *logLine) bool {
	text, lead, idx, comment, quote := strip(raw)
	if comment >= 0 && l.comment != nil {
		l.comment(raw[comment+1:], diag.Pos{File: f.display, Line: f.line, Col: comment + 1})
	}
	if quote >= 0 {
		// keepalived 2.2.7 reports "Unterminated quote" (read_line())
		// and "Unmatched quote" (alloc_strvec(), which stops there): the
		// line is read up to the quote.
		l.diags.Warnf(diag.Pos{File: f.display, Line: f.line, Col: quote + 1}, "unterminated quoted string; the line is read up to the quote, as keepalived does")
		text, idx = cutAt(text, lead, idx, quote)
	}
	if text == "" {
		return false
	}
	// The line gets its own copy of the text: the model keeps some of its
	// words (names, interfaces), and a substring of the file's text would
	// keep the whole file in memory for as long as the daemon runs (176 KB
	// at 1,000 VRRP instances).
	*ln = logLine{text: strings.Clone(text), file: f.display, num: f.line, col0: lead + 1}
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
