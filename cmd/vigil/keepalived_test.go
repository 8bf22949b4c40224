package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

func TestScanKeepalivedFlags(t *testing.T) {
	for _, c := range []struct {
		args           string
		dontFork, test bool
		pid            string
	}{
		{"", false, false, keepalivedPidFile},
		{"--dont-fork", true, false, keepalivedPidFile},
		{"-D -n -l", true, false, keepalivedPidFile},
		{"-nlD", true, false, keepalivedPidFile},
		{"-f /etc/k/n.conf -D", false, false, keepalivedPidFile}, // the n of the file name is not -n
		{"-fn.conf -D", false, false, keepalivedPidFile},
		{"-t -f x", false, true, keepalivedPidFile},
		{"--config-test", false, true, keepalivedPidFile},
		{"-p /tmp/k.pid", false, false, "/tmp/k.pid"},
		{"-Dp/tmp/k.pid -n", true, false, "/tmp/k.pid"},
		{"--pid=/tmp/a --dont-fork", true, false, "/tmp/a"},
		{"--pid-file /tmp/b", false, false, "/tmp/b"},
		{"-- -n", false, false, keepalivedPidFile},
	} {
		k := scanKeepalivedFlags(strings.Fields(c.args))
		if k.dontFork != c.dontFork || k.configTest != c.test || k.pidFile() != c.pid {
			t.Errorf("%q: dont-fork %v, config-test %v, pid file %q; want %v, %v, %q", c.args, k.dontFork, k.configTest, k.pidFile(), c.dontFork, c.test, c.pid)
		}
	}
}

// TestKeepalivedDefaultPidFiles: under keepalived's name vigil writes
// keepalived 2.2.7's pid files where keepalived does unless -p, -r or -c
// name others (/run/vrrp.pid, /run/checkers.pid: scripts signal the pids
// there), the VRRP one when VRRP instances run, the checker one when
// virtual servers do (keepalived starts no child for a part the
// configuration lacks).
func TestKeepalivedDefaultPidFiles(t *testing.T) {
	for _, c := range []struct {
		args            string
		main, vrrp, chk string
	}{
		{"-D -f /etc/keepalived/keepalived.conf", keepalivedPidFile, keepalivedVRRPPidFile, keepalivedCheckersPidFile},
		{"-p /tmp/k.pid", "/tmp/k.pid", keepalivedVRRPPidFile, keepalivedCheckersPidFile},
		{"-r /tmp/v.pid -c /tmp/c.pid", keepalivedPidFile, "/tmp/v.pid", "/tmp/c.pid"},
		{"--vrrp_pid=/tmp/v.pid -f /etc/c.conf", keepalivedPidFile, "/tmp/v.pid", keepalivedCheckersPidFile},
		{"-Dr/tmp/v.pid --checkers_pid /tmp/c.pid", keepalivedPidFile, "/tmp/v.pid", "/tmp/c.pid"},
	} {
		args := strings.Fields(c.args)
		f, err := parseRunFlags(scanKeepalivedFlags(args).withDefaults(args), io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if f.pidFile != c.main || f.vrrpPid != c.vrrp || f.checkPid != c.chk {
			t.Errorf("%q: pid files %q %q %q, want %q %q %q", c.args, f.pidFile, f.vrrpPid, f.checkPid, c.main, c.vrrp, c.chk)
		}
	}
	f := runFlags{pidFile: "/run/k.pid", vrrpPid: "/run/v.pid", checkPid: "/run/c.pid"}
	for _, c := range []struct {
		vrrp, chk bool
		want      string
	}{
		{true, false, "/run/k.pid /run/v.pid"},
		{false, true, "/run/k.pid /run/c.pid"},
		{true, true, "/run/k.pid /run/v.pid /run/c.pid"},
		{false, false, "/run/k.pid"},
	} {
		if got := strings.Join(f.pidFiles(c.vrrp, c.chk), " "); got != c.want {
			t.Errorf("pidFiles(vrrp %v, checker %v) = %q, want %q", c.vrrp, c.chk, got, c.want)
		}
	}
}

// TestDispatchAsKeepalived: installed as keepalived, vigil answers
// keepalived's -v and -t instead of "unknown command".
func TestDispatchAsKeepalived(t *testing.T) {
	var out, errb bytes.Buffer
	// keepalived 2.2.7 -v prints "Keepalived v2.2.7 (01/16,2022)" first,
	// on stderr; `keepalived -v 2>&1 | head -1` reads the version.
	for _, flag := range []string{"-v", "--version"} {
		out.Reset()
		errb.Reset()
		code := dispatchAs("keepalived", []string{flag}, &out, &errb)
		first, rest, _ := strings.Cut(errb.String(), "\n")
		if code != 0 || out.Len() != 0 || !regexp.MustCompile(`^Keepalived v2\.2\.7 \(vigil [^)]+\)$`).MatchString(first) || !strings.Contains(rest, "This is vigil ") {
			t.Errorf("keepalived %s: exit %d, stdout %q, stderr %q", flag, code, out.String(), errb.String())
		}
	}
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 55\n priority 100\n virtual_ipaddress {\n  192.168.1.100/24\n }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := dispatchAs("keepalived", []string{"--dont-fork", "-D", "-t", "-f", conf}, &out, &errb); code != 0 || out.Len() != 0 || errb.Len() != 0 {
		t.Errorf("keepalived --dont-fork -D -t -f: exit %d, out %q, err %q", code, out.String(), errb.String())
	}
}

// TestKeepalivedCommandLineExtras: keepalived's --signum answers with
// keepalived 2.2.7's numbers, -T is genhash, the flags a DAEMON_ARGS may
// carry for BFD, SNMP, core dumps or a umask are accepted, -V is accepted
// with a warning (vigil still releases its addresses), and -s NAME is
// refused (vigil does not enter namespaces).
func TestKeepalivedCommandLineExtras(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := dispatchAs("keepalived", args, &out, &errb)
		return code, out.String(), errb.String()
	}
	for name, want := range map[string]string{"STOP": "15", "RELOAD": "1", "DATA": "10", "STATS": "12", "STATS_CLEAR": "63", "JSON": "36"} {
		if code, out, _ := run("--signum=" + name); code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("--signum=%s: exit %d, %q; want %s", name, code, out, want)
		}
	}
	if code, _, errb := run("--signum", "TDATA"); code != 1 || !strings.Contains(errb, "Unknown sigfunc TDATA") {
		t.Errorf("--signum TDATA: exit %d, %q", code, errb)
	}
	if code, _, errb := run("-T", "--no-such-flag"); code != 1 || !strings.Contains(strings.ToLower(errb), "genhash") {
		t.Errorf("-T: exit %d, %q; want genhash's answer", code, errb)
	}
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 55\n priority 100\n virtual_ipaddress {\n  192.168.1.100/24\n }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errb := run("-D", "-x", "-B", "--all", "-m", "-e", "-a", "-u", "022", "-Mcore", "-b", "/run/bfd.pid", "-A", "/run/agentx", "-Dxt", "-f", conf); code != 0 || out != "" || errb != "" {
		t.Errorf("DAEMON_ARGS flags with -t: exit %d, out %q, err %q", code, out, errb)
	}
	if code, _, errb := run("-n", "-s", "blue", "-f", conf); code != 2 || !strings.Contains(errb, "ip netns exec blue") {
		t.Errorf("-s blue: exit %d, %q", code, errb)
	}
	f, err := parseRunFlags([]string{"-V", "-f", conf}, io.Discard)
	if err != nil || len(f.warnings) != 1 || !strings.Contains(f.warnings[0], "removes its virtual addresses") {
		t.Errorf("-V: %v, warnings %q", err, f.warnings)
	}
}

// TestKeepalivedInitScript: vigil linked as keepalived, started and
// stopped by start-stop-daemon as /etc/init.d/keepalived does (no -n:
// keepalived forks and the parent returns). The daemon detaches, writes
// the pid file, takes the address; a second start is refused through the
// pid file; SIGHUP reloads; --stop ends it and the pid file goes. A
// refused configuration makes the start fail instead of returning 0.
func TestKeepalivedInitScript(t *testing.T) {
	bin := netnstest.VigilBinary(t)
	l := netnstest.New(t, "kainit")
	h := netnstest.AddHost(t, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
	dir := t.TempDir()
	link := filepath.Join(dir, "keepalived")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(`vrrp_instance VI_1 {
state MASTER
interface eth0
virtual_router_id 55
priority 100
advert_int 1
authentication {
auth_type PASS
auth_pass 1111
}
virtual_ipaddress {
192.168.1.100/24 dev eth0 label eth0:1
}
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := filepath.Join(dir, "keepalived.pid")
	sock := filepath.Join(dir, "vigil.sock")
	ssd := func(args ...string) (string, error) {
		return h.Run("start-stop-daemon", append([]string{"--pidfile", pid, "--exec", link}, args...)...)
	}
	vrrpPid, checkPid := filepath.Join(dir, "vrrp.pid"), filepath.Join(dir, "checkers.pid")
	daemonArgs := []string{"--", "-D", "-f", conf, "-p", pid, "-r", vrrpPid, "-c", checkPid, "--api-socket", sock}
	if out, err := ssd(append([]string{"--start"}, daemonArgs...)...); err != nil {
		t.Fatalf("start-stop-daemon --start: %v\n%s", err, out)
	}
	b, err := os.ReadFile(pid)
	if err != nil {
		t.Fatalf("no pid file after the start returned: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || syscall.Kill(n, 0) != nil {
		t.Fatalf("pid file %q: no running process", b)
	}
	t.Cleanup(func() { syscall.Kill(n, syscall.SIGKILL) })
	if comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(n), "comm")); strings.TrimSpace(string(comm)) != "keepalived" {
		t.Errorf("daemon %d is named %q, want keepalived (killall keepalived, pidof keepalived)", n, strings.TrimSpace(string(comm)))
	}
	if sid, _ := unix.Getsid(n); sid != n {
		t.Errorf("daemon %d is in session %d, want a session of its own", n, sid)
	}
	if out, err := ssd(append([]string{"--start"}, daemonArgs...)...); err == nil || !strings.Contains(out, "already running") {
		t.Errorf("second start: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := h.Run("ip", "-4", "addr", "show", "eth0")
		if strings.Contains(out, "192.168.1.100/24") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the detached daemon did not take the address:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := h.Run(bin, "status", "--api-socket", sock); err != nil || !strings.Contains(out, "MASTER") {
		t.Errorf("vigil status: %v\n%s", err, out)
	}
	if out, err := ssd("--stop", "--signal", "1"); err != nil {
		t.Errorf("reload (--signal 1): %v\n%s", err, out)
	}
	// keepalived's VRRP child pid file names the process that runs VRRP,
	// this one (kill -HUP $(cat /run/vrrp.pid) reloads); no checker runs
	// without virtual servers, so there is no checker pid file, as with
	// keepalived.
	if b, err := os.ReadFile(vrrpPid); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(n) {
		t.Errorf("vrrp pid file: %q, %v; want %d", b, err, n)
	} else if out, err := h.Run("sh", "-c", "kill -HUP $(cat "+vrrpPid+")"); err != nil {
		t.Errorf("kill -HUP $(cat vrrp.pid): %v\n%s", err, out)
	}
	if _, err := os.Stat(checkPid); !os.IsNotExist(err) {
		t.Errorf("checker pid file without virtual servers: %v", err)
	}
	if out, err := ssd("--stop", "--retry", "20"); err != nil {
		t.Fatalf("start-stop-daemon --stop: %v\n%s", err, out)
	}
	for _, p := range []string{pid, vrrpPid} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("pid file %s after stop: %v", p, err)
		}
	}

	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 300\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := h.Run(link, "-f", bad, "-p", filepath.Join(dir, "bad.pid"), "-r", vrrpPid, "-c", checkPid, "--api-socket", filepath.Join(dir, "bad.sock"))
	if err == nil || !strings.Contains(out, "exited at start") {
		t.Errorf("keepalived with a refused configuration: %v\n%s", err, out)
	}
}

// trackConf is goodConf with VI_1 tracking a vrrp_script running path.
func trackConf(path string) string {
	return "vrrp_script chk {\n    script \"" + path + "\"\n}\n" +
		strings.Replace(goodConf, "    priority 150", "    priority 150\n    track_script {\n        chk\n    }", 1)
}

// TestConfigTestExitStatus: keepalived's -t, as `vigil run -t` and as
// vigil installed as keepalived, exits as keepalived 2.2.7's
// config_test_exit does (0 clean, 5 errors it would run with, 4 a file it
// cannot run, 6 a script security violation), so `keepalived -t && systemctl reload keepalived` works
// unchanged; `vigil check` keeps its own 0 / 1.
func TestConfigTestExitStatus(t *testing.T) {
	needIface(t, "eth0")
	for _, c := range []struct {
		name            string
		file            string
		keepalived, chk int
	}{
		{"clean", writeConf(t, "clean.conf", goodConf), 0, 0},
		// keepalived: "Unknown keyword 'bogus_keyword'", exit 5.
		{"unknown keyword", writeConf(t, "unknown.conf", strings.Replace(goodConf, "priority 150", "priority 150\n    bogus_keyword 3", 1)), 5, 0},
		// keepalived: "invalid number 'abc'", exit 5.
		{"bad value", writeConf(t, "badval.conf", strings.Replace(goodConf, "priority 150", "priority 150\n    advert_int abc", 1)), 5, 0},
		// keepalived: "the virtual router id must be set"; vigil
		// refuses the file.
		{"refused", writeConf(t, "vrid.conf", strings.Replace(goodConf, "virtual_router_id 55", "virtual_router_id 300", 1)), 4, 1},
		// keepalived: "Unable to read configuration file", exit 4.
		{"missing", filepath.Join(t.TempDir(), "missing.conf"), 4, 1},
		// Seeds 001 and 002: scripts whose files exist, without
		// enable_script_security. keepalived: "SECURITY VIOLATION -
		// scripts are being executed but script_security not enabled",
		// exit 6, over any other status (a refused file included).
		{"vrrp_script without script security", writeConf(t, "track.conf", trackConf("/bin/true")), 6, 0},
		{"MISC_CHECK without script security", writeConf(t, "misc.conf", strings.Replace(goodConf, "TCP_CHECK {", "MISC_CHECK {\n            misc_path \"/bin/true 10.0.0.2 80\"", 1)), 6, 0},
		{"refused, with a script", writeConf(t, "trackvrid.conf", strings.Replace(trackConf("/bin/true"), "virtual_router_id 55", "virtual_router_id 300", 1)), 6, 1},
		// A script file that is not there is no violation: keepalived
		// disables the script, exit 5.
		{"vrrp_script missing", writeConf(t, "trackmissing.conf", trackConf("/nonexistent/chk.sh")), 5, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, cl := range []struct {
				name string
				args []string
				want int
			}{
				{"vigil run -t", []string{"vigil", "run", "-t", "-f", c.file}, c.keepalived},
				{"keepalived -t", []string{"keepalived", "-t", "-f", c.file}, c.keepalived},
				{"keepalived --config-test -n", []string{"keepalived", "--config-test", "-n", "--use-file=" + c.file}, c.keepalived},
				{"vigil check", []string{"vigil", "check", "-f", c.file}, c.chk},
			} {
				var out, errb bytes.Buffer
				if code := dispatchAs(cl.args[0], cl.args[1:], &out, &errb); code != cl.want {
					t.Errorf("%s: exit %d, want %d\n%s", cl.name, code, cl.want, errb.String())
				}
				// keepalived -t writes nothing on stdout, whatever the
				// file; vigil's file:line diagnostics stay on stderr.
				if cl.name != "vigil check" && out.Len() != 0 {
					t.Errorf("%s: stdout %q, want nothing (keepalived -t prints on stderr only)", cl.name, out.String())
				}
				if c.keepalived != 0 && cl.name != "vigil check" && !strings.Contains(errb.String(), c.file) {
					t.Errorf("%s: stderr %q does not name %s", cl.name, errb.String(), c.file)
				}
			}
		})
	}
}
