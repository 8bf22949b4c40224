package main

import (
	"fmt"
	"io"
	"strings"
	"syscall"

	"github.com/vigil-ha/vigil/internal/dump"
)

// keepalivedName is the program name under which vigil takes keepalived's
// command line: /usr/sbin/keepalived replaced by (or linked to) vigil is
// started by keepalived.service (`keepalived --dont-fork $DAEMON_ARGS`), by
// /etc/init.d/keepalived (start-stop-daemon, no flags: keepalived forks) and
// by hand (`keepalived -f FILE -t`, `keepalived -v`).
const keepalivedName = "keepalived"

// keepalivedPidFile is where keepalived 2.2.7 writes its main process ID
// unless -p says otherwise; /etc/init.d/keepalived stops and reloads the
// process named there.
const keepalivedPidFile = "/run/keepalived.pid"

// keepalivedVRRPPidFile and keepalivedCheckersPidFile are where keepalived
// 2.2.7 writes the pids of its VRRP and checker children unless -r or -c
// say otherwise; scripts signal them (kill -HUP $(cat /run/vrrp.pid)).
const (
	keepalivedVRRPPidFile     = "/run/vrrp.pid"
	keepalivedCheckersPidFile = "/run/checkers.pid"
)

// keepalivedPersona is keepalived's name, pid file and fork.
var keepalivedPersona = persona{name: keepalivedName, childEnv: "VIGIL_KEEPALIVED_DAEMON"}

// runKeepalived runs keepalived's command line: the arguments of `vigil
// run`, keepalived's -v and -h, keepalived's default pid file, and the
// fork to the background that init scripts wait for unless -n is given.
func runKeepalived(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-T" || args[0] == "--genhash") {
		return runGenhash(args[1:], stdout, stderr)
	}
scan:
	for i, a := range args {
		switch {
		case a == "--":
			break scan
		case a == "-v" || a == "--version":
			keepalivedVersion(stderr)
			return 0
		case a == "-h" || a == "--help":
			return runRun([]string{"--help"}, stdout, stderr)
		case a == "--signum" && i+1 < len(args):
			return keepalivedSignum(args[i+1], stdout, stderr)
		case strings.HasPrefix(a, "--signum="):
			return keepalivedSignum(strings.TrimPrefix(a, "--signum="), stdout, stderr)
		}
	}
	kf := scanKeepalivedFlags(args)
	args = kf.withDefaults(args)
	if kf.dontFork || kf.configTest {
		return runRun(args, stdout, stderr)
	}
	return keepalivedPersona.background(args, kf.pidFile(), stdout, stderr)
}

// keepalivedFlags is what runKeepalived must know of a keepalived command
// line before `vigil run` parses it.
type keepalivedFlags struct {
	dontFork, configTest, pidSet bool
	pid                          string
	// vrrpPidSet, checkPidSet: -r, -c given.
	vrrpPidSet, checkPidSet bool
}

// withDefaults puts keepalived's default pid files before args, for those
// the line does not name (first, so that a flag later on the line still
// wins).
func (k keepalivedFlags) withDefaults(args []string) []string {
	var d []string
	if !k.pidSet {
		d = append(d, "--pid="+keepalivedPidFile)
	}
	if !k.vrrpPidSet {
		d = append(d, "--vrrp_pid="+keepalivedVRRPPidFile)
	}
	if !k.checkPidSet {
		d = append(d, "--checkers_pid="+keepalivedCheckersPidFile)
	}
	return append(d, args...)
}

func (k keepalivedFlags) pidFile() string {
	if k.pidSet {
		return k.pid
	}
	return keepalivedPidFile
}

// scanKeepalivedFlags finds -n/--dont-fork, -t/--config-test and the pid
// file in keepalived's flags, short flags grouped or not (-nlD, -fFILE).
func scanKeepalivedFlags(args []string) keepalivedFlags {
	var k keepalivedFlags
	const withValue = "fpircSubAMs" // vigil run's short flags that take a value
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if name, ok := strings.CutPrefix(a, "--"); ok {
			val, hasVal := "", false
			if j := strings.IndexByte(name, '='); j >= 0 {
				name, val, hasVal = name[:j], name[j+1:], true
			}
			switch name {
			case "dont-fork":
				k.dontFork = true
			case "config-test":
				k.configTest = true
			case "pid", "pid-file":
				if !hasVal && i+1 < len(args) {
					i++
					val = args[i]
				}
				k.pidSet, k.pid = true, val
			case "vrrp_pid", "checkers_pid":
				if !hasVal && i+1 < len(args) {
					i++
				}
				k.vrrpPidSet = k.vrrpPidSet || name == "vrrp_pid"
				k.checkPidSet = k.checkPidSet || name == "checkers_pid"
			}
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch c {
			case 'n':
				k.dontFork = true
			case 't':
				k.configTest = true
			}
			if strings.IndexByte(withValue, c) < 0 {
				continue
			}
			val := a[j+1:]
			if val == "" && i+1 < len(args) {
				i++
				val = args[i]
			}
			switch c {
			case 'p':
				k.pidSet, k.pid = true, val
			case 'r':
				k.vrrpPidSet = true
			case 'c':
				k.checkPidSet = true
			}
			break
		}
	}
	return k
}

// keepalivedVersion answers keepalived -v as keepalived 2.2.7 does, on
// stderr, with the first line in keepalived's form ("Keepalived v2.2.7
// (01/16,2022)") so that scripts reading the version from
// `keepalived -v 2>&1 | head -1` find the release whose configuration and
// command line vigil takes; the parentheses and the next lines say it is
// vigil.
func keepalivedVersion(w io.Writer) {
	fmt.Fprintf(w, "Keepalived v%s (vigil %s)\n\n", keepalivedCompatVersion, strings.TrimSpace(version))
	fmt.Fprintf(w, "This is vigil %s installed as keepalived: it takes keepalived %s's configuration and command line, and is not keepalived.\n", buildVersion(), keepalivedCompatVersion)
}

// keepalivedCompatVersion is the keepalived release whose configuration,
// command line and VRRP packets vigil matches.
const keepalivedCompatVersion = "2.2.7"

// keepalivedSignum answers `keepalived --signum=NAME`: the signal that asks
// the daemon for NAME, for scripts such as
// `kill -s $(keepalived --signum=JSON) $(cat /run/keepalived.pid)`. The
// numbers are keepalived 2.2.7's; vigil acts on each but STATS_CLEAR,
// which it ignores.
func keepalivedSignum(name string, stdout, stderr io.Writer) int {
	n, ok := map[string]int{
		"STOP": int(syscall.SIGTERM), "RELOAD": int(syscall.SIGHUP), "DATA": int(syscall.SIGUSR1),
		"STATS": int(syscall.SIGUSR2), "STATS_CLEAR": 63, "JSON": int(dump.SIGJSON),
	}[name]
	if !ok {
		fmt.Fprintf(stderr, "Unknown sigfunc %s\n", name)
		return 1
	}
	fmt.Fprintln(stdout, n)
	return 0
}
