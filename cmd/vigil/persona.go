package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/owner"
)

// persona is another daemon's program name under which vigil takes that
// daemon's command line (keepalived, heartbeat): installed as (or linked
// to) /usr/sbin/keepalived or heartbeat's binary, vigil forks to the
// background as that daemon does, under that name, so init scripts,
// killall NAME and pidof NAME find it.
type persona struct {
	name string
	// childEnv marks the detached daemon the foreground command started,
	// so that it runs instead of forking again.
	childEnv string
}

// background runs `vigil run args` as the persona's detached daemon: the
// command forks, and the forked daemon (childEnv set) runs, logging to
// syslog under the persona's name as the original daemon does.
func (p persona) background(args []string, pidFile string, stdout, stderr io.Writer) int {
	if os.Getenv(p.childEnv) != "" {
		os.Unsetenv(p.childEnv)
		// Detached: stderr is /dev/null.
		if w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, p.name); err == nil {
			defer w.Close()
			stderr = w
		}
		return runRun(args, stdout, stderr)
	}
	if _, err := parseRunFlags(args, io.Discard); err != nil {
		// Refused flags are said here, where the caller sees them.
		return runRun(args, stdout, stderr)
	}
	return p.fork(args, pidFile, stderr)
}

// fork starts this program again as a detached daemon (its own session,
// standard streams on /dev/null) and returns once the daemon has written
// its pid file, as the original daemon's parent returns after its fork. A
// daemon that exits first (a refused configuration, another daemon
// running) makes this exit with its status, so an init script reports the
// failure instead of a start that did not happen.
func (p persona) fork(args []string, pidFile string, stderr io.Writer) int {
	self, err := p.self()
	if err != nil {
		fmt.Fprintf(stderr, "%s (vigil): %v\n", p.name, err)
		return 1
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "%s (vigil): %v\n", p.name, err)
		return 1
	}
	defer null.Close()
	cmd := exec.Command(self, args...)
	cmd.Args[0] = p.name
	cmd.Env = append(os.Environ(), p.childEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "%s (vigil): start the daemon: %v\n", p.name, err)
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
			fmt.Fprintf(stderr, "%s (vigil): the daemon exited at start (%v); its messages went to syslog, if one listens on /dev/log: run it in the foreground to see them here\n", p.name, err)
			return code
		case <-deadline:
			fmt.Fprintf(stderr, "%s (vigil): daemon %s has not written %s yet; leaving it running\n", p.name, want, pidFile)
			return 0
		case <-tick.C:
			if b, err := os.ReadFile(pidFile); err == nil && strings.TrimSpace(string(b)) == want {
				return 0
			}
		}
	}
}

// self is the file to execute for the daemon: the name this program was
// started by (/usr/sbin/keepalived, a link to vigil), so that the kernel
// names the daemon after the persona (ps, killall NAME, pidof), or this
// executable when that name cannot be found again.
func (p persona) self() (string, error) {
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

// runningPid is the process named in pidFile when it is alive and a
// daemon (0 when the file is missing, unreadable or names no process, a
// zombie, a killed daemon whose new parent has not reaped it yet, or another
// program that took the pid of a daemon that died without removing its file:
// see daemonLike).
func runningPid(pidFile string) int {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 || !alive(n) || !daemonLike(n) {
		return 0
	}
	return n
}

// daemonNames are the executables whose pid files vigil reads: its own, and
// the daemons it stands in for (a real one, or vigil copied under its name).
var daemonNames = []string{"vigil", "keepalived", "heartbeat"}

// daemonLike reports whether process pid runs vigil (under any name this
// binary has) or a daemon vigil stands in for, from its executable's name,
// as heartbeat's pid file check does (cluster-glue IsRunning compares
// /proc/PID/exe): a pid file left by a daemon killed with SIGKILL may name a
// process that reused the pid, and must neither keep a daemon from starting
// nor get signalled by `heartbeat -k` or `-r`. The name, not the file, is
// compared, so a daemon whose binary an upgrade replaced (its exe link then
// ends in " (deleted)") is still recognised. When /proc cannot tell
// (hidepid, no /proc), the process is taken for a daemon.
func daemonLike(pid int) bool {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return true
	}
	name := owner.ExeName(exe)
	if self, err := os.Executable(); err == nil && name == filepath.Base(self) {
		return true
	}
	return slices.Contains(daemonNames, name)
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: the signal test is all there is
	}
	// pid (comm) S ...: the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}
