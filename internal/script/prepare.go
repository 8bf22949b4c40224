package script

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/vigil-ha/vigil/internal/diag"
)

// DefaultPath is the PATH scripts run with and bare command names are looked
// up in. keepalived 2.2.7 sets no environment of its own: scripts inherit
// keepalived's, which under systemd carries systemd's default PATH. vigil
// gives scripts that PATH and nothing else (see Runner).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Shell runs scripts that are not directly executable (no "#!" line, not an
// ELF binary) and the "</dev/tcp/..." idiom, as keepalived's system() does.
const Shell = "/bin/sh"

// Command is a script as configured.
type Command struct {
	// Args is the command split by Split; Args[0] is the program.
	Args []string
	// Cred is the user the script runs as: its own `user`/notify-line user,
	// else DefaultCred.
	Cred Cred
	// Pos is where the script is configured; Prepare's errors name it. A
	// Prepared does not keep it (see Prepared).
	Pos diag.Pos
	// What says what the script is, for messages: "vrrp_script chk_nginx",
	// "notify_master of vrrp_instance VI_1".
	What string
}

// Policy is the global script policy.
type Policy struct {
	// Security is enable_script_security: refuse to run a script as root
	// when it, or a directory above it, is writable by a non-root user.
	Security bool
	// Path is searched for a bare program name; "" means DefaultPath.
	Path string
}

// ProgramName is the name this program was run under. Installed as
// keepalived (vigil's keepalived persona), a script's `killall keepalived`
// does stop it, and Prepare does not warn about it.
var ProgramName = filepath.Base(os.Args[0])

// Error is a script that cannot run, with the configuration position.
type Error struct {
	Pos  diag.Pos
	What string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos.IsValid() {
		b.WriteString(e.Pos.String())
		b.WriteString(": ")
	}
	if e.What != "" {
		b.WriteString(e.What)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrInsecure is wrapped by the error for a script refused under
// enable_script_security.
var ErrInsecure = errors.New("unsafe permissions")

// ErrNotFound is wrapped by the error for a script whose program file is
// not there (or not reachable through the PATH): keepalived's SC_NOTFOUND,
// for which it reports no script security violation.
var ErrNotFound = errors.New("script not found")

// notFound is a not-found failure: its own message, and ErrNotFound to
// errors.Is.
type notFound struct{ error }

func (notFound) Is(target error) bool { return target == ErrNotFound }

// Prepared is a checked, runnable script. It is immutable and safe for
// concurrent use. It holds values only, not the position of the command in
// the configuration file: two preparations of the same command compare equal
// (reflect.DeepEqual) however the file around it moved, so that a reload
// never takes a moved line for a changed script. Errors after Prepare name
// the script by Command.What.
type Prepared struct {
	cmd   Command
	path  string   // the program execve'd
	argv  []string // argv, argv[0] included
	shell bool     // path is Shell running the script
	// secure lists the paths whose permissions are checked at Prepare and
	// re-checked before each run when the policy requires it.
	secure []securePath
	policy Policy
	// Warnings are non-fatal findings (path search used, insecure but
	// enable_script_security off).
	Warnings []string
	// Insecure is set when the script runs as root with unsafe permissions
	// and enable_script_security is off (keepalived: SC_INSECURE, "SECURITY
	// VIOLATION - scripts are being executed but script_security not
	// enabled. There are insecure scripts.").
	Insecure bool
}

// Command returns the script as configured, without its position.
func (p *Prepared) Command() Command { return p.cmd }

// Argv returns the argument vector the program receives (argv[0] first) and
// the program file executed.
func (p *Prepared) Argv() (path string, argv []string) {
	return p.path, append([]string(nil), p.argv...)
}

// Prepare checks a script as keepalived 2.2.7 does when it loads its
// configuration (lib/notify.c check_script_secure, check_security, find_path):
//
//   - a program name without '/' is looked up in the PATH (with a warning to
//     give the full path);
//   - the program is resolved through symbolic links (keeping the configured
//     file name when it names the same file) and must be executable by the
//     script's user;
//   - a script run as root (uid or gid 0, or a set-uid/set-gid root program)
//     has every directory of its path, and the file itself, checked: each
//     must be owned by root, and not writable by a non-root group or by
//     others (a directory with the sticky bit, like /tmp, is accepted). When
//     enable_script_security is set the script is refused with an error
//     wrapping ErrInsecure; otherwise it runs and Insecure is set;
//   - vigil also applies that check to the interpreter named on a "#!" line
//     (keepalived does not look at it);
//   - a command starting with "</" (the bash "</dev/tcp/host/port" idiom) is
//     handed to /bin/sh unchecked, as keepalived does (SC_SYSTEM).
//
// keepalived disables a script that fails these checks and carries on; the
// caller decides what to do with the error (report it at its position).
func Prepare(c Command, pol Policy) (*Prepared, error) {
	fail := func(format string, args ...any) (*Prepared, error) {
		return nil, &Error{Pos: c.Pos, What: c.What, Err: fmt.Errorf(format, args...)}
	}
	failNotFound := func(format string, args ...any) (*Prepared, error) {
		return nil, &Error{Pos: c.Pos, What: c.What, Err: notFound{fmt.Errorf(format, args...)}}
	}
	if len(c.Args) == 0 || c.Args[0] == "" {
		return fail("no script given")
	}
	if pol.Path == "" {
		pol.Path = DefaultPath
	}
	p := &Prepared{cmd: c, policy: pol}
	p.cmd.Pos = diag.Pos{}
	prog := c.Args[0]

	// keepalived: a command starting '<' then blanks then '/' tests whether a
	// file opens; it is run by system() without checks.
	if prog[0] == '<' && strings.HasPrefix(strings.TrimLeft(prog[1:], " \t"), "/") {
		p.path = Shell
		p.argv = []string{Shell, "-c", shellQuote(c.Args)}
		p.shell = true
		return p, nil
	}

	if !strings.Contains(prog, "/") {
		found, err := lookPath(prog, pol.Path, c.Cred)
		if err != nil {
			return failNotFound("%v", err)
		}
		p.Warnings = append(p.Warnings, fmt.Sprintf("script %q resolved by path search to %q; please specify the full path", prog, found))
		prog = found
	}
	abs, err := filepath.Abs(prog)
	if err != nil {
		return fail("script %s: %v", prog, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return failNotFound("script %s cannot be accessed: %v", prog, unwrapPathError(err))
	}
	// Keep the configured file name when it names the same file: some
	// programs behave according to the name they are called by.
	path := real
	if filepath.Base(abs) != filepath.Base(real) {
		cand := filepath.Join(filepath.Dir(real), filepath.Base(abs))
		if sameFile(cand, real) {
			path = cand
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return failNotFound("script %s cannot be accessed: %v", path, unwrapPathError(err))
	}
	if !fi.Mode().IsRegular() {
		return fail("script %s is not a regular file", path)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !executable(st, c.Cred) {
		return fail("script %s is not executable for uid:gid %d:%d", path, c.Cred.UID, c.Cred.GID)
	}

	p.path = path
	p.argv = append([]string{path}, c.Args[1:]...)
	interp, direct := programKind(path)
	if line, stop := stopsKeepalived(path); stop != "" && ProgramName != "keepalived" {
		p.Warnings = append(p.Warnings, fmt.Sprintf("script %s stops keepalived by name at its line %d (%q): that does not stop vigil, which runs as vigil unless installed as /usr/sbin/keepalived; name vigil there (killall vigil, systemctl stop vigil)", path, line, stop))
	}
	if !direct {
		// keepalived (built with libmagic) hands a file that is not an
		// executable format to system(); vigil runs it with /bin/sh.
		p.shell = true
		p.argv = append([]string{Shell, path}, c.Args[1:]...)
		p.path = Shell
	}

	// keepalived: need_script_protection.
	protect := c.Cred.UID == 0 || c.Cred.GID == 0 ||
		st.Uid == 0 && st.Mode&syscall.S_IXUSR != 0 && st.Mode&syscall.S_ISUID != 0 ||
		st.Gid == 0 && st.Mode&syscall.S_IXGRP != 0 && st.Mode&syscall.S_ISGID != 0
	if !protect {
		return p, nil
	}
	p.secure = []securePath{{path, "script " + path}}
	if real != path {
		p.secure = append(p.secure, securePath{real, "script " + path + " (resolved to " + real + ")"})
	}
	if interp != "" && filepath.IsAbs(interp) {
		// Checked where it really is (as keepalived checks the script after
		// realpath()): /bin is often a symbolic link to /usr/bin.
		if r, err := filepath.EvalSymlinks(interp); err == nil {
			what := "interpreter " + interp + " of script " + path
			if r != interp {
				what += " (resolved to " + r + ")"
			}
			p.secure = append(p.secure, securePath{r, what})
		}
	}
	if err := p.checkSecurity(); err != nil {
		if pol.Security {
			return nil, &Error{Pos: c.Pos, What: c.What, Err: err}
		}
		p.Insecure = true
		p.Warnings = append(p.Warnings, err.Error()+" (enable_script_security is off, running it anyway)")
	}
	return p, nil
}

// Recheck repeats the permission check before a run when the script runs as
// root under enable_script_security, so a script made insecure after start-up
// is refused too (keepalived checks only at load).
func (p *Prepared) Recheck() error {
	if !p.policy.Security || len(p.secure) == 0 {
		return nil
	}
	if err := p.checkSecurity(); err != nil {
		return &Error{What: p.cmd.What, Err: err}
	}
	return nil
}

func (p *Prepared) checkSecurity() error {
	for _, s := range p.secure {
		if err := checkPathSecure(s.path); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

type securePath struct{ path, what string }

// checkPathSecure walks path from "/" down, as keepalived's check_security
// does, with lstat: every element but the last must be a directory, the last
// a regular file or a symbolic link; each must be owned by root, and a
// directory without the sticky bit or a regular file must not be writable by
// a non-root group or by others.
func checkPathSecure(path string) error {
	elems := strings.Split(strings.TrimPrefix(filepath.Clean(path), "/"), "/")
	cur := "/"
	for i := -1; i < len(elems); i++ {
		if i >= 0 {
			cur = filepath.Join(cur, elems[i])
		}
		last := i == len(elems)-1
		var st syscall.Stat_t
		if err := syscall.Lstat(cur, &st); err != nil {
			return fmt.Errorf("cannot check %s: %w", cur, err)
		}
		typ := st.Mode & syscall.S_IFMT
		isDir, isReg := typ == syscall.S_IFDIR, typ == syscall.S_IFREG
		if !last && !isDir || last && !isReg && typ != syscall.S_IFLNK {
			return fmt.Errorf("%w: %s has the wrong file type", ErrInsecure, cur)
		}
		if st.Uid != 0 {
			return fmt.Errorf("%w: %s is owned by uid %d, not root", ErrInsecure, cur, st.Uid)
		}
		if isDir && st.Mode&syscall.S_ISVTX == 0 || isReg {
			if st.Gid != 0 && st.Mode&syscall.S_IWGRP != 0 {
				return fmt.Errorf("%w: %s is writable by group %d", ErrInsecure, cur, st.Gid)
			}
			if st.Mode&syscall.S_IWOTH != 0 {
				return fmt.Errorf("%w: %s is writable by everyone", ErrInsecure, cur)
			}
		}
		if len(elems) == 1 && elems[0] == "" {
			break // path is "/"
		}
	}
	return nil
}

// executable is keepalived's is_executable: root needs any x bit; the owner
// the user x bit; otherwise the group x bit when the script's group is the
// file's group, else the other x bit. Supplementary groups do not count
// (scripts run with only their own gid).
func executable(st *syscall.Stat_t, c Cred) bool {
	m := st.Mode
	return c.UID == 0 && m&(syscall.S_IXUSR|syscall.S_IXGRP|syscall.S_IXOTH) != 0 ||
		c.UID == st.Uid && m&syscall.S_IXUSR != 0 ||
		c.UID != st.Uid && (c.GID == st.Gid && m&syscall.S_IXGRP != 0 || c.GID != st.Gid && m&syscall.S_IXOTH != 0)
}

// lookPath finds a bare program name in search path, as keepalived's
// find_path (an execvp-alike): the first regular file executable by cred.
func lookPath(name, search string, c Cred) (string, error) {
	denied := false
	for _, dir := range filepath.SplitList(search) {
		if dir == "" {
			dir = "."
		}
		cand := filepath.Join(dir, name)
		fi, err := os.Stat(cand)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() && executable(fi.Sys().(*syscall.Stat_t), c) {
			return cand, nil
		}
		denied = true
	}
	if denied {
		return "", fmt.Errorf("permission failure for script %s in path %s", name, search)
	}
	return "", fmt.Errorf("cannot find script %s in path %s", name, search)
}

// programKind reads the start of the file: a "#!" line (returning the
// interpreter) or an ELF header is executed directly; anything else is not.
func programKind(path string) (interp string, direct bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", true // let execve report it
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := io.ReadFull(f, buf)
	buf = buf[:n]
	switch {
	case len(buf) >= 4 && string(buf[:4]) == "\x7fELF":
		return "", true
	case len(buf) >= 2 && string(buf[:2]) == "#!":
		line := buf[2:]
		if i := strings.IndexByte(string(line), '\n'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(string(line))
		if len(fields) > 0 {
			interp = fields[0]
		}
		return interp, true
	}
	return "", false
}

// keepalivedStop matches a shell command that stops keepalived by its name.
var keepalivedStop = regexp.MustCompile(`(?:^|[\s;&|(` + "`" + `])(` +
	`(?:killall|pkill)(?:\s+-\S+)*\s+keepalived` +
	`|systemctl\s+(?:stop|kill|restart)\s+keepalived(?:\.service)?` +
	`|service\s+keepalived\s+(?:stop|restart)` +
	`|/etc/init\.d/keepalived\s+(?:stop|restart)` +
	`)(?:$|[\s;&|)` + "`" + `])`)

// stopsKeepalived finds, in a shell script of at most 64 KiB, the first
// command that stops keepalived by name (seed 001's check script ends in
// `killall keepalived` to force a failover), ignoring comments and the
// "#!" line. It returns the line number and the command, or "".
func stopsKeepalived(path string) (line int, cmd string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil || bytes.HasPrefix(b, []byte("\x7fELF")) || bytes.IndexByte(b, 0) >= 0 {
		return 0, ""
	}
	for i, l := range strings.Split(string(b), "\n") {
		if i == 0 && strings.HasPrefix(l, "#!") {
			continue
		}
		l = stripShellComment(l)
		if m := keepalivedStop.FindStringSubmatch(l); m != nil {
			return i + 1, m[1]
		}
	}
	return 0, ""
}

// stripShellComment cuts a line at a '#' that starts a word.
func stripShellComment(l string) string {
	for i := 0; i < len(l); i++ {
		if l[i] == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t' || l[i-1] == ';') {
			return l[:i]
		}
	}
	return l
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(fa, fb)
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// shellQuote renders args as keepalived's cmd_str does for system(): each
// word in single quotes, except a first word starting with '<' or '>' (the
// "</dev/tcp/host/port" idiom). Unlike keepalived, a single quote inside a
// word is escaped ('\”) so the shell sees the word keepalived meant.
func shellQuote(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == 0 && a != "" && (a[0] == '<' || a[0] == '>') {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}
