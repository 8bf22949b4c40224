package config

import (
	"io/fs"
	"strings"

	"github.com/vigil-ha/vigil/internal/diag"
)

// Reading physical lines from the files of a load, within its budget.

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

const (
	maxIncludeDepth = 32
	maxSubstitution = 256     // substitutions in one line
	maxLineLen      = 1 << 16 // after substitution
	maxExpansion    = 1 << 17 // ~SEQ/~LST values in one load (keepalived.conf(5)'s largest example has 65024)
	maxMultiline    = 1 << 21 // lines produced by multi-line definitions in one load
	keepalivedBuf   = 1023    // keepalived 2.2.7: MAXBUF 1024 per fgets()
)

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
