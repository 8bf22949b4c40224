package config

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
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
