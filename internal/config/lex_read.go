package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"syscall"

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
	key     fileKey
	// includeCheck is the include_check setting to restore when the file
	// ends (keepalived saves it per include level).
	includeCheck includeFlags
}

const (
	maxIncludeDepth = 32
	maxSubstitution = 256     // substitutions in one line
	maxLineLen      = 1 << 16 // after substitution
	keepalivedBuf   = 1023    // keepalived 2.2.7: MAXBUF 1024 per fgets()
	// maxSuggestions bounds the distinct unknown keywords that get a
	// "did you mean" (each costs an edit distance to every keyword).
	maxSuggestions = 1000
)

// Limits is the budget of one Load: everything it reads and everything
// the file makes it produce. A zero field takes its default
// (DefaultLimits). Crossing a limit stops the load with an error at the
// line that crossed it.
type Limits struct {
	// Bytes read from all files together.
	Bytes int64
	// Lines is the number of lines ~SEQ, ~LST and multi-line
	// definitions produce (lines read from files count as bytes).
	Lines int64
	// Files read, the main file included; a file included twice counts
	// twice.
	Files int64
	// Expansions counts include brace alternatives and glob matches.
	Expansions int64
}

// DefaultLimits fit any real configuration with a wide margin: the
// largest ones seen (a few thousand instances, tens of thousands of real
// servers) have about 100,000 lines in 2 MB and a few hundred files, and
// keepalived.conf(5)'s largest replication example makes 65,024 lines.
// Loading costs about ten times the bytes it reads in memory, and each
// generated line a few hundred bytes: the defaults keep a load under
// about 700 MB and a few seconds.
func DefaultLimits() Limits {
	return Limits{Bytes: 64 << 20, Lines: 256 << 10, Files: 1024, Expansions: 16 << 10}
}

func (lim Limits) withDefaults() Limits {
	d := DefaultLimits()
	if lim.Bytes <= 0 {
		lim.Bytes = d.Bytes
	}
	if lim.Lines <= 0 {
		lim.Lines = d.Lines
	}
	if lim.Files <= 0 {
		lim.Files = d.Files
	}
	if lim.Expansions <= 0 {
		lim.Expansions = d.Expansions
	}
	return lim
}

// Set parses "NAME=N" (bytes, lines, files or expansions), N with an
// optional K, M or G suffix (powers of 1024), and sets that limit. It is
// what the --config-limit flag takes.
func (lim *Limits) Set(kv string) error {
	name, val, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("config limit %q: want NAME=N (bytes, lines, files or expansions)", kv)
	}
	mult := int64(1)
	switch {
	case strings.HasSuffix(val, "K"), strings.HasSuffix(val, "k"):
		mult = 1 << 10
	case strings.HasSuffix(val, "M"):
		mult = 1 << 20
	case strings.HasSuffix(val, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		val = val[:len(val)-1]
	}
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("config limit %q: want a positive number", kv)
	}
	n *= mult
	switch name {
	case "bytes":
		lim.Bytes = n
	case "lines":
		lim.Lines = n
	case "files":
		lim.Files = n
	case "expansions":
		lim.Expansions = n
	default:
		return fmt.Errorf("config limit %q: unknown limit %q (bytes, lines, files or expansions)", kv, name)
	}
	return nil
}

// String lists the limits as Set takes them.
func (lim Limits) String() string {
	return fmt.Sprintf("bytes=%d,lines=%d,files=%d,expansions=%d", lim.Bytes, lim.Lines, lim.Files, lim.Expansions)
}

// usage is what a load has consumed of its Limits.
type usage struct {
	bytes, lines, files, expansions int64
	// fileLines counts the logical lines read from files (not charged:
	// bytes bound them).
	fileLines int64
	// expanded counts the bytes of text that definitions and
	// replication added to what the files hold (not charged: lines and
	// maxLineLen bound them).
	expanded int64
}

// LargeRead is the amount of text from which a load is large: the bytes
// read from all its files plus the bytes that $DEF substitution, multi-line
// definitions, ~SEQ and ~LST add. Reading that much allocates hundreds of
// megabytes; Options.Large is told when a load gets there. Smaller loads
// are frequent and cheap (a configuration manager may reload a small file
// every few seconds), and what a caller does for a large one costs more
// than such a load.
const LargeRead = 4 << 20

// grew adds n bytes of expanded text to the load's size.
func (l *lexer) grew(n int) {
	if n > 0 {
		l.used.expanded += int64(n)
		l.checkLarge()
	}
}

// checkLarge calls Options.Large, once, when the load's size (bytes read
// plus bytes expanded) reaches LargeRead.
func (l *lexer) checkLarge() {
	if !l.large && l.used.bytes+l.used.expanded >= LargeRead {
		l.large = true
		if l.opts.Large != nil {
			l.opts.Large()
		}
	}
}

// exceed reports a crossed limit at pos and stops the load: nothing more
// is read, queued lines are dropped.
func (l *lexer) exceed(pos diag.Pos, what string, limit int64, name string) {
	l.diags.Errorf(pos, "%s: the configuration's budget is %d %s (raise it with --config-limit %s=N); reading stops here", what, limit, name, name)
	l.stopped = true
	l.stopDiags = len(*l.diags)
	l.stack = l.stack[:0]
	l.pend = nil
	l.mdef = nil
}

// takeLines charges n lines produced at pos; false when the budget is
// crossed (and the load stopped).
func (l *lexer) takeLines(pos diag.Pos, n int64, what string) bool {
	if l.used.lines+n > l.limits.Lines {
		l.exceed(pos, what, l.limits.Lines, "lines")
		return false
	}
	l.used.lines += n
	return true
}

// takeExpansions charges n brace alternatives or glob matches.
func (l *lexer) takeExpansions(pos diag.Pos, n int64, what string) bool {
	if l.used.expansions+n > l.limits.Expansions {
		l.exceed(pos, what, l.limits.Expansions, "expansions")
		return false
	}
	l.used.expansions += n
	return true
}

// fileKey identifies a file: its device and inode when the fs.FS tells
// them (os.DirFS), else its path. Two paths to one file (symbolic links,
// a directory reached twice) have one key.
type fileKey struct {
	dev, ino uint64
	name     string
}

func keyOf(name string, fi fs.FileInfo) fileKey {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileKey{dev: uint64(st.Dev), ino: st.Ino}
	}
	return fileKey{name: name}
}

// kindOf names what a file that is not regular is.
func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file"
}

// statErr words a Stat or Open error; a symbolic link loop says so.
func statErr(err error) string {
	if errors.Is(err, syscall.ELOOP) {
		return "symbolic link loop (too many levels of symbolic links)"
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "no such file"
	}
	return unwrapPathError(err).Error()
}

// errStopped is returned by readFile when the file would cross the budget
// (the error is reported and the load stopped).
var errStopped = errors.New("the configuration budget is exhausted")

// errNotRegular is returned by readFile for what is not a regular file;
// the message says what it is.
type errNotRegular struct{ kind string }

func (e errNotRegular) Error() string {
	return e.kind + "; only regular files are read"
}

// readFile reads the regular file name within the byte budget. pos is
// where the read was asked for (the include line; the file itself for the
// main file), display the name to show. It never opens what Stat says is
// not a regular file (a FIFO would block the open, a device would never
// end); over budget, it stops the load and returns errStopped, the error
// already reported.
func (l *lexer) readFile(pos diag.Pos, name, display string) (*srcFile, error) {
	fi, err := fs.Stat(l.fsys, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errNotRegular{kindOf(fi.Mode())}
	}
	if l.used.files+1 > l.limits.Files {
		l.exceed(pos, fmt.Sprintf("reading %s makes more than %d files", display, l.limits.Files), l.limits.Files, "files")
		return nil, errStopped
	}
	left := l.limits.Bytes - l.used.bytes
	if fi.Size() > left {
		l.exceed(pos, fmt.Sprintf("%s is %d bytes, %d more than the budget has left", display, fi.Size(), fi.Size()-left), l.limits.Bytes, "bytes")
		return nil, errStopped
	}
	h, err := l.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	// The file may have been replaced since the Stat.
	hi, err := h.Stat()
	if err != nil {
		return nil, err
	}
	if !hi.Mode().IsRegular() {
		return nil, errNotRegular{kindOf(hi.Mode())}
	}
	// Read into a builder sized from the Stat: the text is copied once.
	var data strings.Builder
	data.Grow(int(hi.Size()) + 1)
	if _, err := io.Copy(&data, io.LimitReader(h, left+1)); err != nil {
		return nil, err
	}
	if int64(data.Len()) > left {
		l.exceed(pos, fmt.Sprintf("%s grew past the %d bytes the budget has left", display, left), l.limits.Bytes, "bytes")
		return nil, errStopped
	}
	l.used.bytes += int64(data.Len())
	l.used.files++
	l.checkLarge()
	return &srcFile{name: name, display: display, data: data.String(), key: keyOf(name, hi), includeCheck: l.includeCheck}, nil
}

// open starts reading the top-level file. It returns false when nothing
// could be read (the error is reported).
func (l *lexer) open(name string) bool {
	display := l.displayName(name)
	f, err := l.readFile(diag.Pos{File: display}, name, display)
	if err != nil {
		var nr errNotRegular
		switch {
		case errors.Is(err, errStopped):
		case errors.As(err, &nr):
			l.diags.Errorf(diag.Pos{File: display}, "cannot read the configuration: it is %s", nr)
		case errors.Is(err, syscall.ELOOP):
			l.diags.Errorf(diag.Pos{File: display}, "cannot read the configuration: %s", statErr(err))
		default:
			l.diags.Errorf(diag.Pos{File: display}, "cannot read the configuration: %v", unwrapPathError(err))
		}
		return false
	}
	l.record(f, diag.Pos{})
	l.stack = append(l.stack, f)
	return true
}

// record notes that f is read, included at at (zero for the main file).
func (l *lexer) record(f *srcFile, at diag.Pos) {
	if first, dup := l.seen[f.key]; dup {
		if !first.warned {
			l.diags.Warnf(at, "%s is included again (first read %s); keepalived reads it each time, and so does vigil", f.display, first.from)
			first.warned = true
			l.seen[f.key] = first
		}
	} else {
		from := "as the main file"
		if at.Line != 0 {
			from = "by " + at.String()
		}
		l.seen[f.key] = seenFile{from: from}
	}
	l.files = append(l.files, f.display)
}

// seenFile records the first read of a file.
type seenFile struct {
	from   string
	warned bool
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
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = strings.TrimRight(b, "\r")
		}
		if len(b) > keepalivedBuf {
			l.diags.Warnf(diag.Pos{File: f.display, Line: f.line, Col: keepalivedBuf + 1},
				"line is %d bytes long; keepalived 2.2.7 reads at most %d bytes per line and would split it here", len(b), keepalivedBuf)
		}
		return f, b, true
	}
	return nil, "", false
}
