package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
)

// The include keywords, brace expansion and globs.

type includeFlags uint8

const (
	incRead includeFlags = 1 << iota // error if a match is not readable
	incMatch
	incWildcard
	incBrace
)

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
		l.diags.Errorf(pos, "includes nested more than %d deep", maxIncludeDepth)
		return true
	}
	cur := l.stack[len(l.stack)-1]
	left := l.limits.Expansions - l.used.expansions
	alts, ok := expandBraces(pat, max(left, 1))
	if !ok || len(alts) > 1 && !l.takeExpansions(pos, int64(len(alts)), fmt.Sprintf("include %s expands to %d names", pat, len(alts))) {
		if !ok {
			l.exceed(pos, fmt.Sprintf("include %s expands to more than the %d names the budget has left", pat, left), l.limits.Expansions, "expansions")
		}
		return true
	}
	var matches []string
	for _, p := range alts {
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
			if !l.takeExpansions(pos, int64(len(m)), fmt.Sprintf("include %s: %s matches %d files", pat, p, len(m))) {
				return true
			}
			matches = append(matches, m...)
			continue
		}
		if _, err := fs.Stat(l.fsys, fp); err != nil {
			flag := incMatch
			if p != pat {
				flag = incBrace
			}
			if errors.Is(err, syscall.ELOOP) {
				// A loop is never what was meant, whatever include_check says.
				l.diags.Errorf(pos, "include %s: %s: %s", pat, p, statErr(err))
				continue
			}
			report(flag, "include %s: %s: %s", pat, p, statErr(err))
			continue
		}
		matches = append(matches, fp)
	}
	// Push in reverse so that the first match is read first.
	var files []*srcFile
	for _, m := range matches {
		display := l.displayName(m)
		f, err := l.readFile(pos, m, display)
		var nr errNotRegular
		switch {
		case errors.Is(err, errStopped):
			return true
		case errors.As(err, &nr):
			if nr.kind == "a directory" {
				report(incRead, "include %s: %s is %s", pat, display, nr)
			} else {
				l.diags.Errorf(pos, "include %s: %s is %s", pat, display, nr)
			}
			continue
		case err != nil:
			if errors.Is(err, syscall.ELOOP) {
				l.diags.Errorf(pos, "include %s: %s: %s", pat, display, statErr(err))
			} else {
				report(incRead, "include %s: %s: %s", pat, display, statErr(err))
			}
			continue
		}
		if i := slices.IndexFunc(l.stack, func(g *srcFile) bool { return g.key == f.key }); i >= 0 {
			via := ""
			if g := l.stack[i]; g.display != display {
				via = " as " + g.display
			}
			l.diags.Errorf(pos, "include loop: %s is already being read%s", display, via)
			continue
		}
		files = append(files, f)
	}
	for _, f := range files {
		l.record(f, pos)
	}
	for i := len(files) - 1; i >= 0; i-- {
		l.stack = append(l.stack, files[i])
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
// acdf, acef. Unbalanced braces are left as they are. It gives up (ok
// false) when there would be more than limit names.
func expandBraces(s string, limit int64) (out []string, ok bool) {
	ok = true
	expandInto(s, limit, &out, &ok)
	return out, ok
}

func expandInto(s string, limit int64, out *[]string, ok *bool) {
	if !*ok {
		return
	}
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
				for _, a := range alts {
					expandInto(s[:open]+a+s[i+1:], limit, out, ok)
					if !*ok {
						return
					}
				}
				return
			}
		}
	}
	if int64(len(*out)) >= limit {
		*ok = false
		return
	}
	*out = append(*out, s)
}
