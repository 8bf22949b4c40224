// Package diag holds source positions and diagnostics shared by vigil's
// configuration parsers (keepalived.conf, heartbeat's ha.cf family). It is
// pure: no I/O.
package diag

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a configuration file. Line and Col count from 1; a
// zero Line means "the file as a whole".
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// IsValid reports whether p names a place in a file.
func (p Pos) IsValid() bool { return p.File != "" }

// Severity orders diagnostics: an Error rejects the configuration, a Warning
// does not.
type Severity int

const (
	Warning Severity = iota
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// MarshalText makes Severity print as "error"/"warning" in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Diagnostic is one finding at a position.
type Diagnostic struct {
	Pos      Pos      `json:"pos"`
	Severity Severity `json:"severity"`
	Msg      string   `json:"message"`
}

// String formats as `file:line:col: severity: message`.
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Severity, d.Msg)
}

// Diagnostics is a list of findings. The zero value is ready to use.
type Diagnostics []Diagnostic

// Limit is the most diagnostics a list keeps: a file of millions of bad
// lines would otherwise hold a message for each. Past it, one last
// diagnostic says that more were left out; it is an error when any of
// those was one, so HasErrors stays true.
const Limit = 10000

// truncated is the message of the diagnostic that ends a full list.
var truncatedMsg = fmt.Sprintf("more diagnostics follow from here on; only the first %d are kept", Limit)

// Errorf appends an error at pos.
func (ds *Diagnostics) Errorf(pos Pos, format string, args ...any) {
	ds.add(pos, Error, format, args)
}

// Warnf appends a warning at pos.
func (ds *Diagnostics) Warnf(pos Pos, format string, args ...any) {
	ds.add(pos, Warning, format, args)
}

func (ds *Diagnostics) add(pos Pos, sev Severity, format string, args []any) {
	n := len(*ds)
	if n < Limit {
		*ds = append(*ds, Diagnostic{Pos: pos, Severity: sev, Msg: fmt.Sprintf(format, args...)})
		return
	}
	// The marker is the last element unless the list was sorted since.
	if last := &(*ds)[n-1]; last.Msg == truncatedMsg {
		if sev == Error {
			last.Severity = Error
		}
		return
	}
	*ds = append(*ds, Diagnostic{Pos: pos, Severity: sev, Msg: truncatedMsg})
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Sort orders by file, line, column, then severity (errors first).
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return ds[i].Severity > ds[j].Severity
	})
}

// Err returns nil when there are no errors, else an error listing them.
func (ds Diagnostics) Err() error {
	if !ds.HasErrors() {
		return nil
	}
	var b strings.Builder
	n := 0
	for _, d := range ds {
		if d.Severity == Error {
			if n > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(d.String())
			n++
		}
	}
	return fmt.Errorf("%d configuration error(s):\n%s", n, b.String())
}
