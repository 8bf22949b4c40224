package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// How keepalived 2.2.7 reports on -t (keepalived/core/main.c
// config_test_exit()): exit 0 when no configuration error was reported,
// 4 (KEEPALIVED_CHK_EXIT_CONFIG) for a file it cannot read, a missing
// interface or a fatal error, 5 (KEEPALIVED_CHK_EXIT_CONFIG_TEST) for any
// other reported error -- including unknown keywords, deprecated keywords
// and values it replaces with a default -- and 6 for a script security
// violation. Every non-zero status counts as "rejected" below; vigil
// rejects when it reports an error (warnings do not reject).

// Why vigil and keepalived -t disagree on a file.
const (
	divUnknown = "unknown keyword: vigil warns (with a suggestion) and skips it, keepalived -t skips it too but exits 5"
	divIgnored = "a setting keepalived ignores or resets (vigil warns, keepalived -t exits 5 for the same finding)"
	divScripts = "scripts without enable_script_security: vigil warns, keepalived -t reports a security violation (exit 6)"
	divHostIf  = "keepalived -t reads the host's interfaces (eth0.1 sits on eth0, so tracking eth0 is ignored); vigil's check is pure"
	divSelfKil = "keepalived 2.2.7 -t kills itself (SIGTERM) when it checks a script run by a non-root script_user: check_script_secure() compares getppid() with main_pid, which only holds in its child processes"
	divVSGroup = "vigil stricter: virtual_server group NAME with no such virtual_server_group is an error; keepalived -t does not check it (the virtual server then does nothing)"
)

// divergences lists every corpus file with the reason vigil and
// keepalived -t disagree on accepting it, or "" when they agree. The test
// fails on a disagreement that is not listed, and on a listed one that no
// longer disagrees.
var divergences = map[string]string{
	"seeds/000_master.conf":           "",
	"seeds/000_backup.conf":           "",
	"seeds/000_annotated.conf":        divUnknown,
	"seeds/001_master.conf":           "",
	"seeds/001_master_repaired.conf":  divScripts + "; and nopreempt with state MASTER: " + divIgnored,
	"seeds/001_backup_repaired.conf":  divScripts,
	"seeds/001_inline_script.conf":    divUnknown,
	"seeds/002_lvs_dr_glued.conf":     "",
	"seeds/002_lvs_dr.conf":           "",
	"seeds/002_lvs_dr_backup.conf":    "",
	"seeds/002_misc_check_glued.conf": divUnknown + " (real_server at the top level)",
	"seeds/002_misc_check.conf":       divScripts,
	"seeds/002_http_get_glued.conf":   "",
	"seeds/002_http_get.conf":         "",

	"cases/advert_fraction.conf":    "",
	"cases/auth_pass_long.conf":     divIgnored + ": auth_pass is truncated to 8 characters",
	"cases/brace_missing.conf":      "",
	"cases/brace_missing_open.conf": "",
	"cases/checkers_all.conf":       "",
	"cases/deprecated.conf":         divIgnored + ": nb_get_retry is deprecated",
	"cases/duplicate_vrid.conf":     "",
	"cases/full_vrrp.conf":          "",
	"cases/glued_braces.conf":       "",
	"cases/include_main.conf":       divUnknown + " (in an included file)",
	"cases/lvs_full.conf":           "",
	"cases/malformed_addr.conf":     "",
	"cases/missing_required.conf":   "",
	"cases/no_protocol.conf":        "",
	"cases/params.conf":             "",
	"cases/quoted.conf":             "",
	"cases/range_errors.conf":       "",
	"cases/strict.conf":             "",
	"cases/sync_group_errors.conf":  "",
	"cases/track_missing.conf":      "",
	"cases/unicast_family.conf":     "",
	"cases/unknown_keyword.conf":    divUnknown,
	"cases/unsupported.conf":        divIgnored + ": vrrp_iptables is replaced by nftables (vigil: unsupported, warned)",
	"cases/vip_families.conf":       "",
	"cases/vsg_missing.conf":        divVSGroup,

	"examples/keepalived.conf": divSelfKil,
	"examples/lvs-nat.conf":    "",
	"examples/unicast.conf":    "",

	"samples/keepalived.conf.HTTP_GET.port":         "",
	"samples/keepalived.conf.IPv6":                  "",
	"samples/keepalived.conf.PING_CHECK":            "",
	"samples/keepalived.conf.SMTP_CHECK":            "",
	"samples/keepalived.conf.SSL_GET":               "",
	"samples/keepalived.conf.UDP_CHECK":             "",
	"samples/keepalived.conf.conditional_conf":      "",
	"samples/keepalived.conf.fwmark":                divIgnored + ": protocol given for a fwmark service",
	"samples/keepalived.conf.inhibit":               "",
	"samples/keepalived.conf.misc_check":            divScripts,
	"samples/keepalived.conf.misc_check_arg":        divScripts,
	"samples/keepalived.conf.quorum":                divScripts,
	"samples/keepalived.conf.sample":                "",
	"samples/keepalived.conf.status_code":           "",
	"samples/keepalived.conf.track_interface":       divHostIf,
	"samples/keepalived.conf.virtual_server_group":  "",
	"samples/keepalived.conf.virtualhost":           "",
	"samples/keepalived.conf.vrrp":                  "",
	"samples/keepalived.conf.vrrp.localcheck":       divScripts,
	"samples/keepalived.conf.vrrp.lvs_syncd":        "",
	"samples/keepalived.conf.vrrp.routes":           divIgnored + ": routes without dev are not tracked, \"or\" and \"gw\" are deprecated",
	"samples/keepalived.conf.vrrp.rules":            "",
	"samples/keepalived.conf.vrrp.scripts":          divScripts,
	"samples/keepalived.conf.vrrp.static_ipaddress": divIgnored + ": a static route without dev is not tracked (vigil: static routes unsupported, warned)",
	"samples/keepalived.conf.vrrp.sync":             divScripts,
}

// kaResult is keepalived -t's verdict on one file.
type kaResult struct {
	exit int
	out  string
}

// TestKeepalivedDifferential runs Debian's keepalived -t and vigil's Load
// over the corpus (seeds, diagnostics cases, examples and keepalived's own
// samples) inside a network namespace that has the interfaces the files
// name, and compares accept/reject.
func TestKeepalivedDifferential(t *testing.T) {
	kbin := netnstest.RequireCommand(t, "keepalived")
	netnstest.RequireCommand(t, "unshare")
	l := netnstest.New(t, "kadiff")
	h := netnstest.AddHost(t, l, "k",
		lab.Iface{Name: "eth0", LAN: "a", Addrs: []string{"192.168.1.105/24", "10.63.0.154/24", "192.168.200.1/24", "fd00::5/64"}},
		lab.Iface{Name: "eth1", LAN: "b", Addrs: []string{"192.168.2.105/24"}},
		lab.Iface{Name: "eth2", LAN: "c"},
		lab.Iface{Name: "eth3", LAN: "d"},
		lab.Iface{Name: "ens160", LAN: "e", Addrs: []string{"192.168.118.128/24"}},
		lab.Iface{Name: "ens224", LAN: "f", Addrs: []string{"192.168.40.128/24"}},
	)
	// The kernel has no 8021q; a macvlan gives keepalived the name it wants.
	if _, err := h.Run("ip", "link", "add", "link", "eth0", "name", "eth0.1", "type", "macvlan"); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()

	type entry struct {
		name   string // corpus name, e.g. seeds/000_master.conf
		fsRoot string // directory for Load
		fsName string
		abs    string
	}
	var files []entry
	td, _ := filepath.Abs("testdata")
	for _, n := range corpus(t) {
		files = append(files, entry{n, td, n, filepath.Join(td, n)})
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	ex, _ := filepath.Glob(filepath.Join(root, "examples", "*.conf"))
	for _, f := range ex {
		n := "examples/" + filepath.Base(f)
		files = append(files, entry{n, root, n, f})
	}
	samples, _ := filepath.Glob("/usr/share/doc/keepalived/samples/keepalived.conf.*")
	for _, f := range samples {
		n := "samples/" + filepath.Base(f)
		files = append(files, entry{n, "/usr/share/doc/keepalived/samples", filepath.Base(f), f})
	}

	var table []string
	for _, e := range files {
		cfg, ds := Load(os.DirFS(e.fsRoot), e.fsName, goldenOptions)
		vigilRejects := ds.HasErrors()
		ka := runKeepalivedT(t, h, kbin, tmp, e.abs, scriptPaths(cfg))
		kaRejects := ka.exit != 0
		reason, listed := divergences[e.name]
		if !listed {
			t.Errorf("%s: not in the divergence table; add it with \"\" when vigil and keepalived agree", e.name)
		}
		verdict := func(rej bool) string {
			if rej {
				return "reject"
			}
			return "accept"
		}
		row := fmt.Sprintf("%-40s keepalived exit %d (%s), vigil %s", e.name, ka.exit, verdict(kaRejects), verdict(vigilRejects))
		switch {
		case kaRejects != vigilRejects && reason == "":
			t.Errorf("%s: keepalived -t %s (exit %d), vigil %s; not a listed divergence.\nkeepalived:\n%s\nvigil:\n%s",
				e.name, verdict(kaRejects), ka.exit, verdict(vigilRejects), ka.out, dumpDiags(ds))
		case kaRejects == vigilRejects && reason != "":
			t.Errorf("%s: listed as a divergence (%s) but both %s; remove the entry", e.name, reason, verdict(kaRejects))
		case reason != "":
			row += "  [divergence: " + reason + "]"
		}
		table = append(table, row)
	}
	sort.Strings(table)
	t.Logf("keepalived -t vs vigil:\n%s", strings.Join(table, "\n"))
}

// runKeepalivedT runs keepalived -t on file inside the host, in a private
// mount namespace where the scripts the file names exist (keepalived -t
// checks them; the tmpfs mounts are private to that one process tree).
func runKeepalivedT(t *testing.T, h *lab.Host, kbin, tmp, file string, scripts []string) kaResult {
	t.Helper()
	var prep strings.Builder
	prep.WriteString("set -e\n")
	for _, s := range scripts {
		dir := path.Dir(s)
		anc := dir
		for {
			if st, err := os.Stat(anc); err == nil && st.IsDir() {
				break
			}
			anc = path.Dir(anc)
		}
		if !mountable(anc) {
			continue
		}
		fmt.Fprintf(&prep, "grep -q ' %s tmpfs ' /proc/self/mounts || mount -t tmpfs vigil-test %s\n", anc, shQuote(anc))
		fmt.Fprintf(&prep, "mkdir -p %s\nprintf '#!/bin/sh\\nexit 0\\n' > %s\nchmod 755 %s\n", shQuote(dir), shQuote(s), shQuote(s))
	}
	prep.WriteString(`exec "$@"` + "\n")
	pid := filepath.Join(tmp, "k")
	args := []string{"-m", "--propagation", "private", "sh", "-c", prep.String(), "sh",
		kbin, "-t", "-f", file, "-i", goldenOptions.ConfigID,
		"-p", pid + ".pid", "-r", pid + ".vrrp.pid", "-c", pid + ".check.pid", "-b", pid + ".bfd.pid"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := h.Command(ctx, "unshare", args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return kaResult{0, string(out)}
	case errors.As(err, &ee):
		return kaResult{ee.ExitCode(), string(out)}
	}
	t.Fatalf("keepalived -t %s: %v\n%s", file, err, out)
	return kaResult{}
}

// mountable says whether a tmpfs may be mounted over dir in the private
// mount namespace without hiding what keepalived itself needs.
func mountable(dir string) bool {
	switch dir {
	case "/", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/usr/bin", "/usr/sbin",
		"/usr/lib", "/usr/share", "/proc", "/sys", "/dev", "/run", "/tmp", "/var", "/work", "/root", "/home":
		return false
	}
	return strings.Count(dir, "/") >= 2
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// scriptPaths returns the absolute programs a configuration runs.
func scriptPaths(c *Config) []string {
	set := map[string]bool{}
	add := func(cmd Command) {
		if cmd.IsSet() && strings.HasPrefix(cmd.Args[0], "/") {
			set[path.Clean(cmd.Args[0])] = true
		}
	}
	for _, s := range c.Scripts {
		add(s.Script)
	}
	for _, vi := range c.Instances {
		for _, cmd := range []Command{vi.NotifyMaster, vi.NotifyBackup, vi.NotifyFault, vi.NotifyStop, vi.NotifyDeleted, vi.Notify, vi.NotifyMasterRxLowerPri} {
			add(cmd)
		}
	}
	for _, g := range c.SyncGroups {
		for _, cmd := range []Command{g.NotifyMaster, g.NotifyBackup, g.NotifyFault, g.NotifyStop, g.Notify} {
			add(cmd)
		}
	}
	for _, vs := range c.VirtualServers {
		add(vs.QuorumUp)
		add(vs.QuorumDown)
		for _, rs := range vs.RealServers {
			add(rs.NotifyUp)
			add(rs.NotifyDown)
			for _, ch := range rs.Checkers {
				if ch.Misc != nil {
					add(ch.Misc.Path)
				}
			}
		}
	}
	var out []string
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
