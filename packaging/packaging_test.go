package packaging

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/sdnotify"
)

const testVersion = "0.0.0~test1"

var (
	debOnce sync.Once
	debDir  string
	debPath string
	debErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if debDir != "" {
		os.RemoveAll(debDir)
	}
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

// buildDeb runs `make deb` once per test binary.
func buildDeb(t *testing.T) string {
	t.Helper()
	netnstest.RequireCommand(t, "make")
	netnstest.RequireCommand(t, "dpkg-deb")
	debOnce.Do(func() {
		debDir, debErr = os.MkdirTemp("", "vigil-deb-test-")
		if debErr != nil {
			return
		}
		cmd := exec.Command("make", "-s", "--no-print-directory", "-C", repoRoot(), "deb", "VERSION="+testVersion, "OUT="+debDir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			debErr = fmt.Errorf("make deb: %w\n%s", err, out)
			return
		}
		debPath = filepath.Join(debDir, "vigil_"+testVersion+"_amd64.deb")
		if got := strings.TrimSpace(lastLine(string(out))); got != debPath {
			debErr = fmt.Errorf("make deb printed %q, want %q", got, debPath)
		}
	})
	if debErr != nil {
		t.Fatal(debErr)
	}
	return debPath
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// extract unpacks the package's files (dpkg-deb -x) into a new directory.
func extract(t *testing.T, deb string) string {
	t.Helper()
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	return root
}

var wantFiles = map[string]string{
	"./etc/default/vigil":                                                     "-rw-r--r--",
	"./etc/vigil/vigil.conf.example":                                          "-rw-r--r--",
	"./usr/share/bash-completion/completions/vigil":                           "-rw-r--r--",
	"./usr/share/doc/vigil/changelog.gz":                                      "-rw-r--r--",
	"./usr/share/doc/vigil/changelog.Debian.gz":                               "-rw-r--r--",
	"./usr/share/doc/vigil/examples/tutorials/000_master.conf":                "-rw-r--r--",
	"./usr/share/doc/vigil/examples/tutorials/000_backup.conf":                "-rw-r--r--",
	"./usr/share/doc/vigil/examples/tutorials/001_master_repaired.conf":       "-rw-r--r--",
	"./usr/share/doc/vigil/examples/tutorials/001_backup_repaired.conf":       "-rw-r--r--",
	"./usr/share/doc/vigil/examples/tutorials/002_lvs_dr.conf":                "-rw-r--r--",
	"./usr/share/doc/vigil/examples/tutorials/002_lvs_dr_backup.conf":         "-rw-r--r--",
	"./usr/share/doc/vigil/examples/tutorials/004-heartbeat-ha.d/ha.cf":       "-rw-r--r--",
	"./usr/share/doc/vigil/examples/tutorials/004-heartbeat-ha.d/haresources": "-rw-r--r--",
	"./usr/lib/systemd/system/vigil.service":                                  "-rw-r--r--",
	"./usr/sbin/vigil":                                                        "-rwxr-xr-x",
	"./usr/lib/vigil/vigil-bgp":                                               "-rwxr-xr-x",
	"./usr/share/doc/vigil/copyright":                                         "-rw-r--r--",
	"./usr/share/doc/vigil/examples/hardening.conf":                           "-rw-r--r--",
	"./usr/share/doc/vigil/examples/vigil.conf.example":                       "-rw-r--r--",
	"./usr/share/man/man5/vigil.conf.5.gz":                                    "-rw-r--r--",
	"./usr/share/man/man8/vigil.8.gz":                                         "-rw-r--r--",
}

func TestDebMetadataAndContents(t *testing.T) {
	deb := buildDeb(t)
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Section", "Maintainer"} {
		fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, f))
	}
	if diff := cmp.Diff(map[string]string{"Package": "vigil", "Version": testVersion, "Architecture": "amd64",
		"Section": "net", "Maintainer": "vigil maintainers <maintainers@vigil-ha.org>"}, fields); diff != "" {
		t.Errorf("control fields (-want +got)\n%s", diff)
	}
	if size, err := strconv.Atoi(strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Installed-Size"))); err != nil || size < 1000 {
		t.Errorf("Installed-Size %d %v: want the binary's size in KiB", size, err)
	}

	// dpkg-deb -c: every regular file, its mode, owned by root.
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", line)
		}
		if f[1] != "root/root" {
			t.Errorf("%s owned by %s", f[5], f[1])
		}
		if strings.HasPrefix(f[0], "-") {
			got[f[5]] = f[0]
		}
	}
	if diff := cmp.Diff(wantFiles, got); diff != "" {
		t.Errorf("package files (-want +got)\n%s", diff)
	}

	// Control area: conffiles, executable maintainer scripts, md5sums that
	// match the files.
	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(b) != "/etc/default/vigil\n/etc/vigil/vigil.conf.example\n" {
		t.Errorf("conffiles %q", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctl, s))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", s, fi.Mode(), err)
		}
		run(t, "sh", "-n", filepath.Join(ctl, s))
	}
	root := extract(t, deb)
	cmd := exec.Command("md5sum", "--check", "--quiet", filepath.Join(ctl, "md5sums"))
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("md5sums: %v\n%s", err, out)
	}
	notEtc := 0
	for f := range wantFiles {
		if !strings.HasPrefix(f, "./etc/") {
			notEtc++
		}
	}
	if n := strings.Count(string(mustRead(t, filepath.Join(ctl, "md5sums"))), "\n"); n != notEtc {
		t.Errorf("md5sums lists %d files, want %d (all but the conffiles)", n, notEtc)
	}
	if out := run(t, filepath.Join(root, "usr/sbin/vigil"), "version"); !strings.HasPrefix(out, "vigil "+testVersion+" (") {
		t.Errorf("vigil version: %q, want the package version", out)
	}
	// The BGP helper, where vigil looks for it, from the same build.
	if out := run(t, filepath.Join(root, "usr/lib/vigil/vigil-bgp"), "--version"); !strings.HasPrefix(out, "vigil-bgp "+testVersion+" (") {
		t.Errorf("vigil-bgp --version: %q, want the package version", out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unitRoot is an extracted package plus the host's own systemd units, so
// systemd-analyze can resolve the targets vigil.service refers to.
func unitRoot(t *testing.T) string {
	t.Helper()
	root := extract(t, buildDeb(t))
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(dir, "sysinit.target")); err == nil {
			run(t, "cp", "-an", dir+"/.", filepath.Join(root, "usr/lib/systemd/system"))
			return root
		}
	}
	netnstest.Unavailable(t, "no systemd units on this host to verify against")
	return ""
}

func verify(t *testing.T, root string) string {
	t.Helper()
	out, _ := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root,
		"/usr/lib/systemd/system/vigil.service").CombinedOutput()
	return strings.TrimSpace(string(out))
}

// TestUnitVerifies runs systemd-analyze verify on the installed unit, alone
// and with the hardening drop-in: no unknown key, no missing executable,
// no bad dependency. A deliberately broken drop-in shows that verify
// reports such problems here.
func TestUnitVerifies(t *testing.T) {
	netnstest.RequireCommand(t, "systemd-analyze")
	root := unitRoot(t)
	if out := verify(t, root); out != "" {
		t.Errorf("vigil.service:\n%s", out)
	}
	dropin := filepath.Join(root, "etc/systemd/system/vigil.service.d")
	if err := os.MkdirAll(dropin, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "cp", filepath.Join(root, "usr/share/doc/vigil/examples/hardening.conf"), dropin)
	if out := verify(t, root); out != "" {
		t.Errorf("vigil.service with hardening.conf:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(dropin, "zz-broken.conf"), []byte("[Service]\nProtectSystm=strict\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := verify(t, root); !strings.Contains(out, "ProtectSystm") {
		t.Errorf("systemd-analyze did not report an unknown key; got %q", out)
	}

	// The unit's essentials, as systemd reads them.
	u := parseUnit(t, filepath.Join(root, "usr/lib/systemd/system/vigil.service"))
	for key, want := range map[string]string{
		"Type": "notify", "NotifyAccess": "main", "Restart": "on-failure", "KillMode": "mixed",
		"ConditionFileNotEmpty": "/etc/vigil/vigil.conf", "WatchdogSec": "10s",
		// One VRRP daemon per host while a cluster moves to vigil and back;
		// After= orders the conflicting stop before the start.
		"Conflicts": "keepalived.service", "After": "network-online.target keepalived.service",
	} {
		if got := u.get(key); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	for _, bad := range []string{"PrivateTmp", "PrivateNetwork", "RestrictNamespaces"} {
		if v := u.get(bad); v != "" {
			t.Errorf("%s=%s in the main unit would break raw sockets, netlink or the /tmp dumps", bad, v)
		}
	}
	if rf := u.get("RestrictAddressFamilies"); !strings.Contains(rf, "AF_NETLINK") || !strings.Contains(rf, "AF_PACKET") {
		t.Errorf("RestrictAddressFamilies=%s lacks netlink or packet sockets", rf)
	}
}

func TestManPages(t *testing.T) {
	netnstest.RequireCommand(t, "groff")
	for _, page := range []string{"vigil.8", "vigil.conf.5"} {
		t.Run(page, func(t *testing.T) {
			// -ww: all warnings; -z: no output, only diagnostics.
			out, err := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", filepath.Join(repoRoot(), "packaging", page)).CombinedOutput()
			if err != nil || len(out) > 0 {
				t.Errorf("groff: %v\n%s", err, out)
			}
			cmd := exec.Command("groff", "-man", "-Tutf8", "-P-cbou", filepath.Join(repoRoot(), "packaging", page))
			text, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{
				"vigil.8":      {"NAME", "SYNOPSIS", "COMMANDS", "SIGNALS", "FILES", "SEE ALSO", "vigil check", "--http-listen", "/run/vigil/vigil.sock", "keepalived.json"},
				"vigil.conf.5": {"NAME", "vrrp_instance", "virtual_server", "keepalived.conf(5)", "192.168.1.100/24 dev eth0 label eth0:1"},
			}[page]
			for _, w := range want {
				if !strings.Contains(string(text), w) {
					t.Errorf("rendered page lacks %q", w)
				}
			}
		})
	}
}

// TestDpkgRootInstall installs the package into a throwaway root with dpkg
// itself (its maintainer scripts run chrootless with DPKG_ROOT set, as dpkg
// does for --root), then removes and purges it. The real systemctl enables
// the unit inside that root; the host is not touched.
func TestDpkgRootInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		netnstest.Unavailable(t, "dpkg --root installs need root")
	}
	netnstest.RequireCommand(t, "dpkg")
	deb := buildDeb(t)
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hostLink := "/etc/systemd/system/multi-user.target.wants/vigil.service"
	_, hostBefore := os.Lstat(hostLink)
	dpkg := func(args ...string) string {
		t.Helper()
		return run(t, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-unsafe-io"}, args...)...)
	}

	dpkg("-i", deb)
	link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/vigil.service")
	if target, err := os.Readlink(link); err != nil || target != "/usr/lib/systemd/system/vigil.service" {
		t.Errorf("unit not enabled inside the root: %q %v", target, err)
	}
	st := dpkg("-s", "vigil")
	for _, want := range []string{"Status: install ok installed", "Version: " + testVersion, "Conffiles:\n /etc/default/vigil "} {
		if !strings.Contains(st, want) {
			t.Errorf("dpkg -s lacks %q:\n%s", want, st)
		}
	}
	if out := dpkg("-V", "vigil"); strings.TrimSpace(out) != "" {
		t.Errorf("dpkg -V: %s", out)
	}
	for f := range wantFiles {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("installed file: %v", err)
		}
	}

	dpkg("-r", "vigil")
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/vigil")); !os.IsNotExist(err) {
		t.Errorf("binary left after remove: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/default/vigil")); err != nil {
		t.Errorf("conffile gone after remove (should stay until purge): %v", err)
	}
	dpkg("-P", "vigil")
	for _, f := range []string{"etc/default/vigil", "etc/systemd/system/multi-user.target.wants/vigil.service"} {
		if _, err := os.Lstat(filepath.Join(root, f)); !os.IsNotExist(err) {
			t.Errorf("%s left after purge: %v", f, err)
		}
	}
	if _, hostAfter := os.Lstat(hostLink); (hostBefore == nil) != (hostAfter == nil) {
		t.Errorf("the host's %s changed", hostLink)
	}
}

// TestMaintainerScripts runs the package's maintainer scripts in a private
// mount namespace whose /run is a fresh tmpfs, with and without
// /run/systemd/system (systemd running or not), with a recording fake
// systemctl or none at all, and checks what they ask systemd to do.
func TestMaintainerScripts(t *testing.T) {
	if os.Geteuid() != 0 {
		netnstest.Unavailable(t, "needs root for a private mount namespace")
	}
	netnstest.RequireCommand(t, "unshare")
	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", buildDeb(t), ctl)
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "systemctl"), []byte("#!/bin/sh\necho \"$*\" >>\"$CALLS\"\n[ \"$1\" != is-active ] || exit \"$ACTIVE\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, tc := range []struct {
		name       string
		script     string
		args       []string
		running    bool // /run/systemd/system exists
		systemctl  bool
		active     bool
		dpkgRoot   string
		want       []string
		wantStderr string
	}{
		{"install, systemd running", "postinst", []string{"configure", ""}, true, true, false, "",
			[]string{"enable vigil.service", "daemon-reload", "start vigil.service"}, ""},
		{"upgrade, running daemon kept", "postinst", []string{"configure", "0.9.0"}, true, true, true, "",
			[]string{"daemon-reload", "is-active --quiet vigil.service"}, "systemctl restart vigil.service"},
		{"install, systemd not running", "postinst", []string{"configure", ""}, false, true, false, "",
			[]string{"enable vigil.service"}, ""},
		{"install, no systemctl", "postinst", []string{"configure", ""}, false, false, false, "", nil, ""},
		{"install into another root", "postinst", []string{"configure", ""}, true, true, false, "/srv/root",
			[]string{"--root=/srv/root enable vigil.service"}, ""},
		{"remove stops", "prerm", []string{"remove"}, true, true, true, "", []string{"stop vigil.service"}, ""},
		{"upgrade does not stop", "prerm", []string{"upgrade", "1.0.0"}, true, true, true, "", nil, ""},
		{"remove, systemd not running", "prerm", []string{"remove"}, false, true, false, "", nil, ""},
		{"purge", "postrm", []string{"purge"}, true, true, false, "", []string{"disable vigil.service", "daemon-reload"}, ""},
		{"remove", "postrm", []string{"remove"}, true, true, false, "", []string{"daemon-reload"}, ""},
		{"purge, systemd not running", "postrm", []string{"purge"}, false, true, false, "", []string{"disable vigil.service"}, ""},
		{"purge, no systemctl", "postrm", []string{"purge"}, true, false, false, "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := filepath.Join(t.TempDir(), "calls")
			mk := ""
			if tc.running {
				mk = "/bin/mkdir -p /run/systemd/system && "
			}
			args := append([]string{"-m", "/bin/sh", "-c",
				"/bin/mount -t tmpfs tmpfs /run && " + mk + "exec /bin/sh \"$@\"", "sh", filepath.Join(ctl, tc.script)}, tc.args...)
			cmd := exec.Command("unshare", args...)
			path := empty
			if tc.systemctl {
				path = fake
			}
			active := "3"
			if tc.active {
				active = "0"
			}
			cmd.Env = []string{"PATH=" + path, "CALLS=" + calls, "ACTIVE=" + active}
			if tc.dpkgRoot != "" {
				cmd.Env = append(cmd.Env, "DPKG_ROOT="+tc.dpkgRoot)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if out, err := cmd.Output(); err != nil {
				t.Fatalf("%s %v: %v\n%s%s", tc.script, tc.args, err, out, stderr.String())
			}
			var got []string
			if b, err := os.ReadFile(calls); err == nil {
				got = strings.Split(strings.TrimSpace(string(b)), "\n")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("systemctl calls (-want +got)\n%s", diff)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

// subcommands lists the commands `vigil help` prints.
func subcommands(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(bin, "help").CombinedOutput()
	cmds := map[string]bool{}
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "commands:") {
			in = true
			continue
		}
		if f := strings.Fields(line); in && len(f) > 0 && strings.HasPrefix(line, "  ") {
			cmds[f[0]] = true
		}
	}
	return cmds
}

// exampleLab is a lab host whose eth0 matches the example configuration.
func exampleLab(t *testing.T) *lab.Host {
	t.Helper()
	l := netnstest.New(t, "pkg")
	if err := l.AddLAN("lan"); err != nil {
		t.Fatal(err)
	}
	return netnstest.AddHost(t, l, "node", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
}

// TestInstalledBinaryChecksTheExample runs the packaged binary inside a lab
// namespace whose eth0 matches the example configuration: `vigil version`,
// and `vigil check` on the example. keepalived's own config test, when
// keepalived is installed, shows the example is keepalived syntax.
func TestInstalledBinaryChecksTheExample(t *testing.T) {
	root := extract(t, buildDeb(t))
	h := exampleLab(t)
	bin := filepath.Join(root, "usr/sbin/vigil")
	example := filepath.Join(root, "usr/share/doc/vigil/examples/vigil.conf.example")
	out, err := h.Run(bin, "version")
	if err != nil || !strings.HasPrefix(out, "vigil "+testVersion+" (") {
		t.Fatalf("vigil version in the lab: %q %v", out, err)
	}
	if ka, err := exec.LookPath("keepalived"); err == nil {
		// -G: no syslog, so no message to /dev/console (see e2e.KeepalivedArgs).
		if out, err := h.Run(ka, "-t", "-l", "-G", "-f", example); err != nil {
			t.Errorf("keepalived -t rejects the example: %v\n%s", err, out)
		}
	}
	if cmds := subcommands(t, bin); !cmds["check"] || !cmds["run"] {
		t.Fatalf("the packaged binary lacks `vigil check` or `vigil run`: %v", cmds)
	}
	out, err = h.Run(bin, "check", "-f", example)
	if err != nil || strings.Contains(out, "error") || !strings.Contains(out, "VI_1: interface eth0, vrid 55, priority 100, MASTER") {
		t.Errorf("vigil check on the example: %v\n%s", err, out)
	}
	// keepalived's own config-test flag, for unit files that call it.
	if out, err := h.Run(bin, "run", "-t", "-f", example); err != nil {
		t.Errorf("vigil run -t on the example: %v\n%s", err, out)
	}
	// And a broken copy (a virtual_router_id out of range, which
	// keepalived refuses too) is refused with the position of the mistake.
	broken := filepath.Join(t.TempDir(), "broken.conf")
	b := strings.Replace(string(mustRead(t, example)), "\n    virtual_router_id 55\n", "\n    virtual_router_id 300\n", 1)
	if err := os.WriteFile(broken, []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	line := 1 + strings.Count(b[:strings.Index(b, "virtual_router_id 300")], "\n")
	if out, err := h.Run(bin, "check", "-f", broken); err == nil || !strings.Contains(out, fmt.Sprintf("%s:%d:", broken, line)) {
		t.Errorf("vigil check on a broken example: %v; want exit 1 and %s:%d:\n%s", err, broken, line, out)
	}
}

// TestUnitRunsTheInstalledBinary runs the packaged vigil the way
// vigil.service does, since this machine has no running systemd: the
// unit's Environment/EnvironmentFile, ExecStartPre, ExecStart, both
// ExecReload lines and a SIGTERM stop, with NOTIFY_SOCKET and WATCHDOG_USEC
// pointing at a listener the test owns, inside a lab namespace (eth0 as in
// the example) and a private mount namespace with a fresh /run (systemd's
// RuntimeDirectory). It expects, every message from the main PID
// (NotifyAccess=main): READY=1 once the example's VIP is up, WATCHDOG=1 and
// a second one within WatchdogSec; ExecReload with a broken file stopping at
// its `vigil check` line (file:line, no signal sent); RELOADING=1 with
// MONOTONIC_USEC then READY=1 on the real reload; STOPPING=1, the VIP
// released and exit 0 on SIGTERM.
//
// What systemd itself would add is not exercised here: the unit's
// sandboxing (RestrictAddressFamilies, ProtectControlGroups, ...) being
// enforced, the watchdog actually killing a silent daemon, Restart=,
// KillMode=mixed's SIGKILL of leftovers, the cgroup, journald.
// TestUnitHarnessWithStandIn runs the same harness against a stand-in.
func TestUnitRunsTheInstalledBinary(t *testing.T) {
	root := extract(t, buildDeb(t))
	bin := filepath.Join(root, "usr/sbin/vigil")
	if cmds := subcommands(t, bin); !cmds["run"] || !cmds["check"] {
		t.Fatalf("the packaged binary lacks `vigil run` or `vigil check`: %v", cmds)
	}
	runUnit(t, root, bin, true)
}

// TestUnitHarnessWithStandIn checks the harness of
// TestUnitRunsTheInstalledBinary with a stand-in that follows the notify
// protocol (testdata/standin), so that test fails only for the daemon.
func TestUnitHarnessWithStandIn(t *testing.T) {
	root := extract(t, buildDeb(t))
	standin := filepath.Join(t.TempDir(), "vigil")
	cmd := exec.Command("go", "build", "-o", standin, "./packaging/testdata/standin")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build stand-in: %v\n%s", err, out)
	}
	runUnit(t, root, standin, false)
}

type unit struct {
	service [][2]string // key, value in file order
	all     [][2]string
}

func (u unit) get(key string) string {
	v := ""
	for _, kv := range u.all {
		if kv[0] == key {
			v = kv[1]
		}
	}
	return v
}

func (u unit) list(key string) []string {
	var out []string
	for _, kv := range u.service {
		if kv[0] == key {
			out = append(out, kv[1])
		}
	}
	return out
}

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var u unit
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		kv := [2]string{strings.TrimSpace(k), strings.TrimSpace(v)}
		u.all = append(u.all, kv)
		if section == "Service" {
			u.service = append(u.service, kv)
		}
	}
	return u
}

// expand applies systemd's rules for the variables in our unit's command
// lines: "${X}" is replaced in place, a word "$X" becomes the words of X.
// /usr/sbin/vigil is the binary under test.
func expand(line string, env map[string]string, bin string) []string {
	var out []string
	for _, w := range strings.Fields(line) {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			out = append(out, strings.Fields(env[w[1:]])...)
			continue
		}
		for k, v := range env {
			w = strings.ReplaceAll(w, "${"+k+"}", v)
		}
		if w == "/usr/sbin/vigil" {
			w = bin
		}
		out = append(out, w)
	}
	return out
}

func runUnit(t *testing.T, root, bin string, real bool) {
	u := parseUnit(t, filepath.Join(root, "usr/lib/systemd/system/vigil.service"))
	h := exampleLab(t)

	// The environment as systemd builds it: Environment=, then
	// EnvironmentFile= (the packaged /etc/default/vigil), then the
	// administrator's choice of configuration file.
	env := map[string]string{}
	for _, e := range u.list("Environment") {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	for _, ef := range u.list("EnvironmentFile") {
		b, err := os.ReadFile(filepath.Join(root, strings.TrimPrefix(ef, "-")))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
				env[k] = strings.Trim(v, `"'`)
			}
		}
	}
	conf := filepath.Join(t.TempDir(), "vigil.conf")
	example := mustRead(t, filepath.Join(root, "usr/share/doc/vigil/examples/vigil.conf.example"))
	if err := os.WriteFile(conf, example, 0o644); err != nil {
		t.Fatal(err)
	}
	env["VIGIL_CONFIG"] = conf

	notify, err := listenNotify(filepath.Join(t.TempDir(), "notify"))
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	wdSec, err := time.ParseDuration(u.get("WatchdogSec"))
	if err != nil {
		t.Fatalf("WatchdogSec=%q: %v", u.get("WatchdogSec"), err)
	}
	stopTimeout, err := time.ParseDuration(u.get("TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec=%q: %v", u.get("TimeoutStopSec"), err)
	}

	for _, pre := range u.list("ExecStartPre") {
		argv := expand(pre, env, bin)
		if out, err := h.Run(argv[0], argv[1:]...); err != nil {
			t.Fatalf("ExecStartPre %v: %v\n%s", argv, err, out)
		}
	}
	starts := u.list("ExecStart")
	if len(starts) != 1 {
		t.Fatalf("want one ExecStart, got %v", starts)
	}
	argv := expand(starts[0], env, bin)
	wrapper := []string{"NOTIFY_SOCKET=" + notify.Addr(), "WATCHDOG_USEC=" + strconv.FormatInt(wdSec.Microseconds(), 10),
		"unshare", "-m", "/bin/sh", "-c",
		"/bin/mount -t tmpfs tmpfs /run && /bin/mkdir -m 0755 /run/vigil && exec \"$@\"", "sh"}
	p, err := h.Start("env", append(wrapper, argv...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("daemon output:\n%s", p.Output())
		}
	}()
	mainPID := p.PID() // env, unshare and sh exec: the daemon keeps this pid

	wait := func(what, key, value string, within time.Duration) map[string]string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		var skipped []map[string]string
		m, err := notify.waitFor(ctx, key, value, mainPID, &skipped)
		if err != nil {
			t.Fatalf("%s: %v (other messages: %v)", what, err, skipped)
		}
		return m
	}
	hasVIP := func() bool {
		out, _ := h.Run("ip", "-4", "-o", "addr", "show", "dev", "eth0")
		return strings.Contains(out, "192.168.1.100/24")
	}
	wait("start", "READY", "1", time.Minute)
	// The first ping may precede READY=1; wait for one after it, and for
	// the next, each within the watchdog timeout (vigil pings every half
	// of it).
	wait("watchdog", "WATCHDOG", "1", wdSec)
	wait("second watchdog ping", "WATCHDOG", "1", wdSec)
	if real {
		// The example's single node becomes MASTER and adds its VIP.
		deadline := time.Now().Add(15 * time.Second)
		for !hasVIP() {
			if time.Now().After(deadline) {
				out, _ := h.Run("ip", "addr")
				t.Fatalf("the example's VIP 192.168.1.100/24 never appeared on eth0:\n%s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	env["MAINPID"] = strconv.Itoa(mainPID)
	reloads := u.list("ExecReload")
	if real {
		// systemd runs ExecReload= lines in order and stops at the first
		// that fails: a broken file never reaches the daemon.
		broken := strings.Replace(string(example), "\n    virtual_router_id 55\n", "\n    virtual_router_id 300\n", 1)
		line := 1 + strings.Count(broken[:strings.Index(broken, "virtual_router_id 300")], "\n")
		if err := os.WriteFile(conf, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		first := expand(reloads[0], env, bin)
		out, err := h.Run(first[0], first[1:]...)
		if err == nil || !strings.Contains(out, fmt.Sprintf("%s:%d:", conf, line)) {
			t.Errorf("ExecReload %v on a broken file: %v; want a failure at %s:%d\n%s", first, err, conf, line, out)
		}
		if err := os.WriteFile(conf, example, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, reload := range reloads {
		argv := expand(reload, env, bin)
		if out, err := h.Run(argv[0], argv[1:]...); err != nil {
			t.Fatalf("ExecReload %v: %v\n%s", argv, err, out)
		}
	}
	m := wait("reload", "RELOADING", "1", 30*time.Second)
	now, err := sdnotify.Monotonic()
	if err != nil {
		t.Fatal(err)
	}
	if err := sdnotify.CheckReloading(m, now); err != nil {
		t.Error(err)
	}
	wait("reload done", "READY", "1", 30*time.Second)
	if real && !p.WaitOutput("configuration reloaded", 15*time.Second) {
		t.Errorf("the daemon did not log the reload")
	}

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait("stop", "STOPPING", "1", stopTimeout)
	if !p.Wait(stopTimeout) {
		// A Go program prints its goroutines on SIGQUIT: show where it hangs.
		_ = p.Signal(syscall.SIGQUIT)
		p.Wait(5 * time.Second)
		t.Fatalf("still running %v after SIGTERM (TimeoutStopSec)", stopTimeout)
	}
	if err := p.Err(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if real && hasVIP() {
		t.Errorf("the VIP is still on eth0 after the daemon stopped")
	}
}
