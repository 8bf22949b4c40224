package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/atomicfile"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/logsink"
	"github.com/vigil-ha/vigil/internal/notify"
)

// runFlags are `vigil run`'s flags. keepalived's flags that matter for a
// unit file are accepted under the same names so that ExecStart can swap the
// binary (keepalived -D -f /etc/keepalived/keepalived.conf -p ...).
type runFlags struct {
	file       string
	configID   string
	apiSocket  string
	pidFile    string // --pid: the main pid file
	vrrpPid    string // --vrrp_pid: keepalived's VRRP child pid file
	checkPid   string // --checkers_pid: keepalived's checker child pid file
	vrrpOnly   bool
	checkOnly  bool
	configTest bool
	logFormat  string
	logLevel   string
	haDir      string
	metrics    string
	httpListen string
	debug      string // --debug-listen: net/http/pprof on loopback
	gcPercent  int    // GOGC tuneGC set for reading the configuration (0: none)
	fileSet    bool   // -f given explicitly
	keepLB     bool   // keepalived -I: leave the kernel's virtual services at exit
	hbNode     string
	// logIdent names the daemon in heartbeat's log lines (ha.cf logfile,
	// debugfile, logfacility): "heartbeat" under the heartbeat persona.
	logIdent string
	// stderrSyslog: stderr is a syslog writer (a persona's detached
	// daemon); see heartbeatLogging.
	stderrSyslog bool
	hbStatus     string
	hbInitDir    string
	hbGenFile    string
	limits       config.Limits
	// notifyTimeout bounds one notify script (--notify-timeout);
	// notifyGrace is how long one runs alone (--notify-grace).
	notifyTimeout, notifyGrace time.Duration
	// warnings are said in the log once it is open (flags accepted with
	// a different effect than keepalived's).
	warnings []string
}

func parseRunFlags(args []string, stderr io.Writer) (runFlags, error) {
	var f runFlags
	fs := newFlagSet("run", "[-f FILE] [flags]", stderr)
	fs.StringVarP(&f.file, "use-file", "f", "/etc/keepalived/keepalived.conf", "configuration file")
	fs.StringVarP(&f.configID, "config-id", "i", "", "configuration id for @id conditional lines (default: short host name)")
	fs.StringVar(&f.apiSocket, "api-socket", api.DefaultSocket, "control API unix socket (mode 0600)")
	fs.StringVarP(&f.pidFile, "pid", "p", "", "write the process ID to this file (keepalived -p)")
	fs.StringVar(&f.pidFile, "pid-file", "", "same as --pid")
	fs.StringVarP(&f.vrrpPid, "vrrp_pid", "r", "", "keepalived's VRRP child pid file, written when VRRP instances run: vigil is one process and writes its own pid there")
	fs.StringVarP(&f.checkPid, "checkers_pid", "c", "", "keepalived's checker child pid file, written when virtual servers run: as --vrrp_pid")
	fs.BoolVarP(&f.vrrpOnly, "vrrp", "P", false, "run only VRRP (no virtual servers)")
	fs.BoolVarP(&f.checkOnly, "check", "C", false, "run only virtual servers and their checkers (no VRRP)")
	fs.BoolVarP(&f.configTest, "config-test", "t", false, "check the configuration and exit with keepalived -t's status: 0 clean, 5 warnings only, 4 errors or an unreadable file, 6 scripts without enable_script_security")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.haDir, "ha-dir", "", "run heartbeat-style resource groups from ha.cf, haresources and authkeys in this directory")
	fs.StringVar(&f.hbNode, "node", "", "heartbeat node name (default: uname -n, as heartbeat)")
	fs.StringVar(&f.logIdent, "log-ident", "vigil", "the program name in ha.cf's logfile, debugfile and logfacility lines")
	fs.MarkHidden("log-ident") // set by the heartbeat persona
	fs.StringVar(&f.hbStatus, "ha-status-file", "", "write the heartbeat status as JSON to this file after every change")
	fs.StringVar(&f.hbGenFile, "ha-generation-file", "/var/lib/vigil/hb_generation", "keep the heartbeat generation (raised at every start) in this file, as heartbeat's hb_generation; ignored with ha.cf's hbgenmethod time")
	fs.StringVar(&f.hbInitDir, "ha-init-dir", "/etc/init.d", "where haresources' LSB scripts live (besides <ha-dir>/resource.d)")
	fs.StringVar(&f.metrics, "metrics-listen", "", "serve Prometheus metrics on this address (off when empty)")
	fs.StringVar(&f.httpListen, "http-listen", "", "serve the read-only status page and JSON on this address (off when empty)")
	fs.StringVar(&f.debug, "debug-listen", "", "serve Go's profiler (net/http/pprof: CPU profile, trace, heap) on this loopback address (off when empty)")
	addLimitsFlag(fs, &f.limits)
	fs.DurationVar(&f.notifyTimeout, "notify-timeout", notify.DefaultTimeout, "kill a notify script that runs longer than this")
	fs.DurationVar(&f.notifyGrace, "notify-grace", notify.DefaultGrace, "an instance's notify scripts run one at a time, in order; one still running after this runs on beside the next (until --notify-timeout)")
	// keepalived flags accepted for compatibility, with no effect: vigil
	// always runs in the foreground, logs to stderr (journald), is one
	// process.
	fs.BoolVarP(&f.keepLB, "dont-release-ipvs", "I", false, "leave the virtual services in the kernel (nftables table or IPVS) when vigil stops")
	var ignoredBool bool
	var ignoredStr string
	for _, n := range []struct{ long, short string }{{"dont-fork", "n"}, {"log-console", "l"}, {"log-detail", "D"}, {"dont-respawn", "R"}, {"no-syslog", "G"}, {"dump-conf", "d"}, {"release-vips", "X"}} {
		fs.BoolVarP(&ignoredBool, n.long, n.short, false, "accepted for keepalived compatibility; no effect")
	}
	fs.StringVarP(&ignoredStr, "log-facility", "S", "", "accepted for keepalived compatibility; no effect")
	// keepalived 2.2.7's other flags, as /etc/default/keepalived's
	// DAEMON_ARGS may carry them: no effect either (no BFD, SNMP, core
	// dumps or address monitoring here).
	for _, n := range []struct{ long, short string }{{"no_bfd", "B"}, {"all", ""}, {"address-monitoring", "a"}, {"snmp", "x"}, {"core-dump", "m"}, {"all-config", "e"}} {
		fs.BoolVarP(&ignoredBool, n.long, n.short, false, "accepted for keepalived compatibility; no effect")
	}
	for _, n := range []struct{ long, short string }{{"umask", "u"}, {"bfd_pid", "b"}, {"snmp-agent-socket", "A"}, {"core-dump-pattern", "M"}} {
		fs.StringVarP(&ignoredStr, n.long, n.short, "", "accepted for keepalived compatibility; no effect")
	}
	var keepVRRP bool
	fs.BoolVarP(&keepVRRP, "dont-release-vrrp", "V", false, "accepted for keepalived compatibility; vigil still removes its addresses when it stops")
	var netns string
	fs.StringVarP(&netns, "namespace", "s", "", "refused: run vigil in the namespace with ip netns exec NAME (keepalived -s)")
	if code, ok := parseFlags(fs, args); !ok {
		return f, flagExit(code)
	}
	if code, ok := noArgs(fs); !ok {
		return f, flagExit(code)
	}
	f.fileSet = fs.Changed("use-file")
	if keepVRRP {
		f.warnings = append(f.warnings, "--dont-release-vrrp (-V) has no effect: vigil removes its virtual addresses and routes when it stops (a restarted vigil takes over addresses left by a crash)")
	}
	if netns != "" {
		return f, fmt.Errorf("--namespace %s: vigil runs in the network namespace it is started in: ip netns exec %s vigil run ...", netns, netns)
	}
	if f.notifyTimeout <= 0 {
		return f, fmt.Errorf("--notify-timeout %v: want a positive duration", f.notifyTimeout)
	}
	if f.notifyGrace <= 0 {
		return f, fmt.Errorf("--notify-grace %v: want a positive duration", f.notifyGrace)
	}
	if f.vrrpOnly && f.checkOnly {
		return f, errors.New("--vrrp and --check exclude each other")
	}
	return f, nil
}

// pidFiles are the pid files the daemon writes: the main one (--pid), and
// keepalived's VRRP and checker child pid files (--vrrp_pid,
// --checkers_pid) when keepalived 2.2.7 would start that child, that is
// when the configuration has VRRP instances (vrrp) or virtual servers
// (checker) that this daemon runs. vigil is one process: its own pid goes
// in each, so that `kill -HUP $(cat /run/vrrp.pid)` reloads and SIGUSR1
// dumps as with keepalived.
func (f runFlags) pidFiles(vrrp, checker bool) []string {
	var out []string
	for _, p := range []struct {
		path string
		runs bool
	}{{f.pidFile, true}, {f.vrrpPid, vrrp}, {f.checkPid, checker}} {
		if p.path != "" && p.runs {
			out = append(out, p.path)
		}
	}
	return out
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func runRun(args []string, stdout, stderr io.Writer) int {
	f, err := parseRunFlags(args, stderr)
	if err != nil {
		var fe flagExit
		if errors.As(err, &fe) {
			return int(fe)
		}
		fmt.Fprintf(stderr, "vigil run: %v\n", err)
		return 2
	}
	if f.configTest {
		// keepalived 2.2.7's -t prints nothing on stdout, its
		// messages go to stderr: the diagnostics alone (-q), on stderr.
		args := []string{"-q", "-f", f.file, "-i", f.configID}
		if f.limits != (config.Limits{}) {
			// Unset fields stay 0 here and take their defaults in Load.
			for _, kv := range limitArgs(f.limits) {
				args = append(args, "--config-limit", kv)
			}
		}
		// keepalived's -t: scripts run `keepalived -t && reload`, and
		// read its exit status.
		return configTestExit(checkConfig(args, stdout, stderr))
	}
	_, f.stderrSyslog = stderr.(*syslog.Writer)
	if _, err := newLogger(io.Discard, f.logFormat, f.logLevel); err != nil {
		fmt.Fprintf(stderr, "vigil run: %v\n", err)
		return 2
	}
	// The log lines go through a sink that never blocks (logsink): a
	// stalled or vanished reader of stderr neither stops nor kills the
	// daemon. A broken pipe on stderr is an error to count, not SIGPIPE;
	// handled (not ignored), the signal is back to its default in scripts.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)
	sink := logsink.New(stderr, 0, func(dropped uint64) []byte {
		var b bytes.Buffer
		if l, err := newLogger(&b, f.logFormat, "warn"); err == nil {
			l.Warn("log lines lost: the log output did not take them in time", "dropped", dropped)
		}
		return b.Bytes()
	})
	sinkCtx, stopSink := context.WithCancel(context.Background())
	go sink.Run(sinkCtx)
	defer func() {
		stopSink()
		sink.Close(2 * time.Second)
	}()
	log, _ := newLogger(sink, f.logFormat, f.logLevel)
	for _, w := range f.warnings {
		log.Warn(w)
	}
	if hint := privilegeHint(); hint != "" {
		fmt.Fprintf(stderr, "vigil run: %s\n", hint)
		return 1
	}
	if err := closeInherited(); err != nil {
		log.Error("vigil run", "err", err)
		return 1
	}
	sampleHeap(f.debug != "")
	f.gcPercent = tuneGC(os.Getenv, log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := daemonMain(ctx, f, log); err != nil {
		log.Error("vigil stopped with an error", "err", err)
		return 1
	}
	return 0
}

// flagExit ends vigil run with this code after its flags were refused or
// its help was printed (both already said on stderr).
type flagExit int

func (e flagExit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// writePidFiles writes the process ID (atomicfile) and returns a function that removes
// the files.
func writePidFiles(paths []string) (func(), error) {
	pid := strconv.Itoa(os.Getpid()) + "\n"
	var written []string
	cleanup := func() {
		for _, p := range written {
			// Only while it is still this daemon's: a daemon started
			// while this one stops has written its own.
			if b, err := os.ReadFile(p); err == nil && string(b) == pid {
				os.Remove(p)
			}
		}
	}
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			cleanup()
			return nil, err
		}
		if n := runningPid(p); n != 0 && n != os.Getpid() {
			cleanup()
			return nil, fmt.Errorf("pid file %s: process %d is running", p, n)
		}
		// Replaced, not written through: a pid file in a world-writable
		// directory may be a planted symlink (keepalived opens it
		// O_NOFOLLOW).
		if err := atomicfile.WriteFile(p, []byte(pid), atomicfile.Options{Perm: 0o644}); err != nil {
			cleanup()
			return nil, err
		}
		written = append(written, p)
	}
	return cleanup, nil
}

// waitForSignal returns a channel of SIGHUP deliveries.
func hangups() (<-chan os.Signal, func()) {
	c := make(chan os.Signal, 4)
	signal.Notify(c, syscall.SIGHUP)
	return c, func() { signal.Stop(c) }
}
