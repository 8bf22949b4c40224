package owner

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// KeepalivedConf is keepalived's default configuration file.
const KeepalivedConf = "/etc/keepalived/keepalived.conf"

// Process is a keepalived running in the caller's network namespace.
type Process struct {
	PID  int
	Conf string // the configuration file it was started with
	Args []string
}

// Keepalived lists the keepalived processes in the calling thread's network
// namespace (by /proc: command name, and the inode of /proc/PID/ns/net).
// Only the parent is returned, not its VRRP and checker children. A process
// running this program's own executable is not keepalived, whatever its
// name: vigil installed as /usr/sbin/keepalived (itself, and the parent
// that forked it to the background) is vigil, and a second vigil is found
// by Claim. A script named keepalived (the init script) is not keepalived
// either. A process that is exiting (its executable link gone) manages
// nothing and is not listed.
func Keepalived(proc string) ([]Process, error) {
	if proc == "" {
		proc = "/proc"
	}
	ns, err := NetnsID()
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("owner: %w", err)
	}
	self, _ := os.Stat(filepath.Join(proc, "self", "exe"))
	var out []Process
	pids := map[int]bool{}
	ppid := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(proc, e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "keepalived" {
			continue
		}
		exe, err := os.Stat(filepath.Join(proc, e.Name(), "exe"))
		if err != nil {
			// A process whose executable link is gone has released its
			// memory: it is exiting (or a zombie). The parent of a
			// persona's fork exits while the forked daemon looks, and
			// its command line reads empty then, which would name
			// keepalived's default configuration.
			continue
		}
		if self != nil && os.SameFile(exe, self) {
			continue
		}
		link, err := os.Readlink(filepath.Join(proc, e.Name(), "ns/net"))
		if err != nil || link != "net:["+ns+"]" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(proc, e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if target, err := os.Readlink(filepath.Join(proc, e.Name(), "exe")); err == nil && script(target, args) {
			continue
		}
		pids[pid] = true
		if st, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 {
				f := strings.Fields(string(st[i+1:]))
				if len(f) > 1 {
					ppid[pid], _ = strconv.Atoi(f[1])
				}
			}
		}
		out = append(out, Process{PID: pid, Conf: confArg(args), Args: args})
	}
	// Children share the parent's configuration: keep the parents.
	parents := out[:0]
	for _, p := range out {
		if !pids[ppid[p.PID]] {
			parents = append(parents, p)
		}
	}
	return parents, nil
}

// script reports whether a process named keepalived is an interpreter
// running a script of that name (/etc/init.d/keepalived, which is running
// while the daemon it starts looks for a keepalived): the kernel names a
// script's process after the script, but its executable and its argv[0]
// are the interpreter's (/usr/bin/dash, "/bin/sh"). keepalived itself has
// the name in its executable or its argv[0] (a link named keepalived).
func script(exe string, args []string) bool {
	return ExeName(exe) != "keepalived" && (len(args) == 0 || ExeName(args[0]) != "keepalived")
}

// ExeName is the program name in an executable path or a /proc/PID/exe
// link: its last element, without the " (deleted)" the kernel adds once
// the file is replaced (an upgrade) or removed.
func ExeName(p string) string { return filepath.Base(strings.TrimSuffix(p, " (deleted)")) }

// confArg finds keepalived's -f / --use-file argument.
func confArg(args []string) string {
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case (a == "-f" || a == "--use-file") && i+1 < len(args):
			return args[i+1]
		case strings.HasPrefix(a, "--use-file="):
			return strings.TrimPrefix(a, "--use-file=")
		case strings.HasPrefix(a, "-f") && len(a) > 2:
			return a[2:]
		}
	}
	return KeepalivedConf
}

// KeepalivedError says that a keepalived in the namespace uses (or may use)
// a virtual router vigil would manage.
type KeepalivedError struct {
	Process Process
	Keys    []Key // the shared virtual routers; empty when Err is set
	Err     error // its configuration could not be read
}

func (e *KeepalivedError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("owner: keepalived (pid %d) runs in this network namespace and its configuration %s cannot be read (%v), so vigil cannot tell which VRIDs it uses; stop keepalived before starting vigil",
			e.Process.PID, e.Process.Conf, e.Err)
	}
	ks := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		ks[i] = k.String()
	}
	return fmt.Sprintf("owner: keepalived (pid %d, %s) runs in this network namespace and manages %s; two daemons on one virtual router would fight over its addresses: stop keepalived, or change virtual_router_id",
		e.Process.PID, e.Process.Conf, strings.Join(ks, ", "))
}

// CheckKeepalived returns a *KeepalivedError for the first keepalived of
// procs whose configuration (read by load) shares a key with ours.
func CheckKeepalived(procs []Process, ours []Key, load func(path string) ([]Key, error)) error {
	for _, p := range procs {
		theirs, err := load(p.Conf)
		if err != nil {
			return &KeepalivedError{Process: p, Err: err}
		}
		var shared []Key
		for _, k := range theirs {
			if containsKey(ours, k) {
				shared = append(shared, k)
			}
		}
		if len(shared) > 0 {
			return &KeepalivedError{Process: p, Keys: shared}
		}
	}
	return nil
}
