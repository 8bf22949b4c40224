package main

import (
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

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

// keepalivedChildEnv marks the detached daemon that `keepalived` without
// --dont-fork started, so that it runs instead of forking again.
const keepalivedChildEnv = "VIGIL_KEEPALIVED_DAEMON"

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
			return runVersion(nil, stdout, stderr)
		case a == "-h" || a == "--help":
			return runRun([]string{"--help"}, stdout, stderr)
		case a == "--signum" && i+1 < len(args):
			return keepalivedSignum(args[i+1], stdout, stderr)
		case strings.HasPrefix(a, "--signum="):
			return keepalivedSignum(strings.TrimPrefix(a, "--signum="), stdout, stderr)
		}
	}
	kf := scanKeepalivedFlags(args)
	if !kf.pidSet {
		// First, so a -p later on the line still wins.
		args = append([]string{"--pid=" + keepalivedPidFile}, args...)
	}
	if kf.dontFork || kf.configTest {
		return runRun(args, stdout, stderr)
	}
	if os.Getenv(keepalivedChildEnv) != "" {
		os.Unsetenv(keepalivedChildEnv)
		// Detached: stderr is /dev/null. keepalived logs to syslog; so
		// does this daemon when a syslog socket answers.
		if w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, keepalivedName); err == nil {
			defer w.Close()
			stderr = w
		}
		return runRun(args, stdout, stderr)
	}
	if _, err := parseRunFlags(args, io.Discard); err != nil {
		// Refused flags are said here, where the caller sees them.
		return runRun(args, stdout, stderr)
	}
	return forkKeepalived(args, kf.pidFile(), stderr)
}

// keepalivedFlags is what runKeepalived must know of a keepalived command
// line before `vigil run` parses it.
type keepalivedFlags struct {
	dontFork, configTest, pidSet bool
	pid                          string
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
			if c == 'p' {
				k.pidSet, k.pid = true, val
			}
			break
		}
	}
	return k
}

// forkKeepalived starts this program again as a detached daemon (its own
// session, standard streams on /dev/null) and returns once the daemon has
// written its pid file, as keepalived's parent returns after the fork. A
// daemon that exits first (a refused configuration, another daemon
// running) makes this exit with its status, so an init script reports the
// failure instead of a start that did not happen.
func forkKeepalived(args []string, pidFile string, stderr io.Writer) int {
	self, err := selfAsKeepalived()
	if err != nil {
		fmt.Fprintf(stderr, "keepalived (vigil): %v\n", err)
		return 1
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "keepalived (vigil): %v\n", err)
		return 1
	}
	defer null.Close()
	cmd := exec.Command(self, args...)
	cmd.Args[0] = keepalivedName
	cmd.Env = append(os.Environ(), keepalivedChildEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "keepalived (vigil): start the daemon: %v\n", err)
		return 1
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	want := strconv.Itoa(cmd.Process.Pid)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-exited:
			code := 1
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() > 0 {
				code = ee.ExitCode()
			}
			fmt.Fprintf(stderr, "keepalived (vigil): the daemon exited at start (%v); its messages went to syslog, if one listens on /dev/log: run it with -n (--dont-fork) to see them here\n", err)
			return code
		case <-deadline:
			fmt.Fprintf(stderr, "keepalived (vigil): daemon %s has not written %s yet; leaving it running\n", want, pidFile)
			return 0
		case <-tick.C:
			if b, err := os.ReadFile(pidFile); err == nil && strings.TrimSpace(string(b)) == want {
				return 0
			}
		}
	}
}

// selfAsKeepalived is the file to execute for the daemon: the name this
// program was started by (/usr/sbin/keepalived, a link to vigil), so that
// the kernel names the daemon keepalived (ps, killall keepalived, pidof),
// or this executable when that name cannot be found again.
func selfAsKeepalived() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	name := os.Args[0]
	if !strings.Contains(name, "/") {
		if name, err = exec.LookPath(name); err != nil {
			return self, nil
		}
	}
	if name, err = filepath.Abs(name); err != nil { // the daemon starts in /
		return self, nil
	}
	a, errA := os.Stat(name)
	b, errB := os.Stat(self)
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		return self, nil
	}
	return name, nil
}

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
