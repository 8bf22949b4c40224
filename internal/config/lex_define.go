package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// "$NAME=value" definitions and their substitution (keepalived
// check_definition(), replace_param()).

// definition is a $NAME.
type definition struct {
	name      string
	value     string // multi-line values separate lines with '\n'
	multiline bool
	fn        func(params []int) string
	maxParams int
	// more holds the lines of a multi-line definition being read.
	more []string
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
		d.more = append(d.more, t)
	}
	if !more {
		l.endMultiline()
	}
}

func (l *lexer) endMultiline() {
	if d := l.mdef; d != nil && len(d.more) > 0 {
		// Joined once at the end: appending line by line would copy
		// the value again for every line.
		parts := d.more
		if d.value != "" {
			parts = append([]string{d.value}, parts...)
		}
		d.value = strings.Join(parts, "\n")
		d.more = nil
	}
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
	l.grew(out.Len() - len(s))
	ln.text = out.String()
	if trackCols {
		ln.cols = cols
	}
	if len(pendingLines) > 0 {
		if !l.takeLines(pos, int64(len(pendingLines)), fmt.Sprintf("multi-line definition $%s adds %d lines, more than the budget has left (%d)", multilineName, len(pendingLines), l.limits.Lines-l.used.lines)) {
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
