package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/hb"
)

// heartbeatName is the program name under which vigil takes heartbeat
// 3's command line: Debian's /usr/libexec/heartbeat/heartbeat replaced by
// (or linked to) vigil is started by /etc/init.d/heartbeat (`heartbeat`,
// which forks; `heartbeat -k` to stop, `-s` for the status, `-r` to
// reload) and by heartbeat.service (`heartbeat -f`).
const heartbeatName = "heartbeat"

// heartbeatCompatVersion is the heartbeat release whose command line and
// ha.cf vigil takes.
const heartbeatCompatVersion = "3.0.6"

// heartbeatPidFile is where heartbeat writes its pid (heartbeat.service's
// PIDFile; /var/run is /run).
const heartbeatPidFile = "/run/heartbeat.pid"

// heartbeatPersona is heartbeat's name and fork.
var heartbeatPersona = persona{name: heartbeatName, childEnv: "VIGIL_HEARTBEAT_DAEMON"}

// heartbeatUsage is heartbeat 3.0.6's flag set, with what each does here.
const heartbeatUsage = `usage: heartbeat [-dDkMrRsvWlVf] [-C state] [-- vigil run flags]
  (none)  start: fork a daemon running the resource groups of $HA_DIR (default /etc/ha.d)
  -f      run in the foreground
  -k      stop the running daemon (SIGTERM; it gives up its resources) and wait for it
  -s      report whether the daemon runs (exit 0) or not (exit 3)
  -r      reload the running daemon's configuration (start one if none runs)
  -R, -C  start (heartbeat's restart of itself)
  -V      print the version
  -d -v -l -M -W -D  accepted; no effect
Long flags after the heartbeat flags go to vigil run (--api-socket, --ha-status-file, ...).
`

// runHeartbeat runs heartbeat's command line.
func runHeartbeat(args []string, stdout, stderr io.Writer) int {
	var foreground, kill, status, reload bool
	i := 0
scan:
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			i++
			break scan
		case strings.HasPrefix(a, "--"):
			break scan // vigil run's own flags
		case len(a) < 2 || a[0] != '-':
			fmt.Fprintf(stderr, "heartbeat (vigil): unexpected argument %q\n%s", a, heartbeatUsage)
			return 2
		}
		for j := 1; j < len(a); j++ {
			switch c := a[j]; c {
			case 'f':
				foreground = true
			case 'k':
				kill = true
			case 's':
				status = true
			case 'r':
				reload = true
			case 'V':
				// heartbeat 3.0.6: "3.0.6 (node: HG-CHANGESET)".
				fmt.Fprintf(stdout, "%s (vigil %s installed as heartbeat)\n", heartbeatCompatVersion, buildVersion())
				return 0
			case 'h':
				fmt.Fprint(stdout, heartbeatUsage)
				return 0
			case 'C':
				if j == len(a)-1 {
					i++ // the state is the next argument
				}
				j = len(a)
			case 'R', 'd', 'v', 'l', 'M', 'W', 'D':
			default:
				fmt.Fprintf(stderr, "heartbeat (vigil): invalid option -- '%c'\n%s", c, heartbeatUsage)
				return 2
			}
		}
	}
	rest := args[min(i, len(args)):]
	pidFile := heartbeatPidFile
	switch {
	case status:
		host, _ := os.Hostname()
		return heartbeatStatus(pidFile, host, stdout)
	case kill:
		return heartbeatStop(pidFile, stdout, stderr)
	case reload:
		if pid := runningPid(pidFile); pid != 0 {
			if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
				fmt.Fprintf(stderr, "heartbeat (vigil): reload %d: %v\n", pid, err)
				return 1
			}
			return 0
		}
	}
	if pid := runningPid(pidFile); pid != 0 {
		fmt.Fprintf(stderr, "heartbeat (vigil): already running [pid %d]\n", pid)
		return 1
	}
	dir := os.Getenv("HA_DIR") // exported by /etc/init.d/heartbeat
	if dir == "" {
		dir = "/etc/ha.d"
	}
	run := append([]string{"--ha-dir", dir, "--pid", pidFile, "--log-ident", heartbeatName}, rest...)
	if foreground {
		return runRun(run, stdout, stderr)
	}
	return heartbeatPersona.background(run, pidFile, stdout, stderr)
}

// heartbeatStatus answers `heartbeat -s` as heartbeat does: 0 with the
// pid and node (host's name, in heartbeat's lower case) when the daemon
// runs, 3 (LSB "not running") otherwise.
func heartbeatStatus(pidFile, host string, stdout io.Writer) int {
	pid := runningPid(pidFile)
	if pid == 0 {
		fmt.Fprintln(stdout, "heartbeat is stopped. No process")
		return 3
	}
	node := hb.NodeName(host)
	fmt.Fprintf(stdout, "heartbeat OK [pid %d et al] is running on %s [%s]...\n", pid, node, node)
	return 0
}

// heartbeatStop answers `heartbeat -k`: SIGTERM to the daemon of the pid
// file, then wait until it has exited (it releases its resources first).
func heartbeatStop(pidFile string, stdout, stderr io.Writer) int {
	pid := runningPid(pidFile)
	if pid == 0 {
		fmt.Fprintln(stdout, "heartbeat is stopped.")
		return 0
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		fmt.Fprintf(stderr, "heartbeat (vigil): stop %d: %v\n", pid, err)
		return 1
	}
	for alive(pid) {
		time.Sleep(100 * time.Millisecond)
	}
	return 0
}
