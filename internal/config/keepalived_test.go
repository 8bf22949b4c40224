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
// interface or a fatal error -- unless a lesser error came first, since
// report_config_error() keeps the larger enum value: a missing interface,
// reported first as "WARNING - interface X ... doesn't exist", exits 5 --,
// 5 (KEEPALIVED_CHK_EXIT_CONFIG_TEST) for any
// other reported error -- including unknown keywords, deprecated keywords
// and values it replaces with a default -- and 6 for a script security
// violation.
//
// Exit 5 does not mean keepalived refuses to run: nearly every error it
// reports is "ignore and carry on". It refuses to run (its VRRP process
// stops with KEEPALIVED_EXIT_CONFIG) only where vrrp_complete_init(),
// chk_min_cfg() and vrrp_complete_instance() return false, and -t, which
// goes through the same code, prints their message. kaRefusals lists those
// messages, read from keepalived 2.2.7's vrrp/vrrp.c; the checker side
// (check_data.c validate_check_config()) refuses nothing.
//
// So every file is compared twice:
//   - runs: keepalived runs it (exit 0, 5 or 6 and no refusal message)
//     exactly when vigil's Load reports no error;
//   - strict: keepalived -t exits 0 exactly when vigil reports nothing at
//     all, which is what `vigil check --strict` accepts.
var kaRefusals = []string{
	"the virtual router id must be set",                 // chk_min_cfg()
	"Unknown interface!",                                // chk_min_cfg()
	"Non-existent interface specified in configuration", // vrrp_daemon.c start_vrrp(), without dynamic_interfaces
	"No VIP specified; at least one is required",        // vrrp_complete_instance()
	"Unicast peers are not supported in strict mode",    // vrrp_complete_instance()
	"Unicast instances must have unicast_src_ip or interface",
	"Non link-local address required if interface omitted",
	"duplicate VRID conflict with", // check_vrid_conflicts()
	"both use VRID",                // check_vrid_conflicts()
}

// Why vigil and keepalived disagree on a file.
const (
	divSelfKil  = "keepalived 2.2.7 -t kills itself (SIGTERM) when it checks a script run by a non-root script_user: check_script_secure() compares getppid() with main_pid, which only holds in its child processes"
	divLogOnly  = "keepalived only logs this (ipwrapper.c link_vsg_to_vs(): the virtual server is ignored) and -t exits 0; vigil warns"
	divHostUser = "script_user names a user this host lacks: keepalived -t looks the user up, vigil's Load is pure (vigil check warns from its script preparation, and the daemon disables the scripts)"
	divDupVS    = "unsafe, refused: the same virtual_server twice; keepalived says nothing and programs one kernel service from two definitions that fight over its real servers"
	divMixed    = "unsafe, refused: keepalived reports that a sync group mixing address owners and other instances \"won't work\" and runs it; an owner stays MASTER whatever its group does, so the group's addresses can split between the nodes"
	divBlock    = "unsafe, refused: a block keyword without its '{'; keepalived drops the block and reads its lines as unknown top-level keywords, vigil's recovery reads them as the block, so vigil refuses rather than run a guess"
	divUnsup    = "vigil warns about a keyword it parses but does not act on; keepalived acts on it and has nothing to report"
	divAdvice   = "vigil warns where keepalived 2.2.7 is silent"
)

// divergence is why vigil and keepalived disagree on a file, per
// comparison ("" when they agree).
type divergence struct{ runs, strict string }

// divergences lists every corpus file with the reasons vigil and
// keepalived disagree on it. The test fails on a disagreement that is not
// listed, and on a listed one that no longer disagrees.
var divergences = map[string]divergence{
	"cases/advert_fraction.conf":                    {},
	"cases/auth_pass_long.conf":                     {},
	"cases/brace_missing.conf":                      {},
	"cases/brace_missing_open.conf":                 {runs: divBlock},
	"cases/checkers_all.conf":                       {},
	"cases/deprecated.conf":                         {},
	"cases/duplicate_vrid.conf":                     {},
	"cases/full_vrrp.conf":                          {},
	"cases/glued_braces.conf":                       {},
	"cases/include_main.conf":                       {},
	"cases/lvs_full.conf":                           {},
	"cases/lvs_method_as_read.conf":                 {},
	"cases/malformed_addr.conf":                     {},
	"cases/missing_required.conf":                   {},
	"cases/no_protocol.conf":                        {},
	"cases/params.conf":                             {},
	"cases/quoted.conf":                             {},
	"cases/range_errors.conf":                       {},
	"cases/strict.conf":                             {},
	"cases/sync_group_errors.conf":                  {},
	"cases/track_missing.conf":                      {},
	"cases/unicast_family.conf":                     {},
	"cases/unknown_keyword.conf":                    {},
	"cases/unsupported.conf":                        {},
	"cases/vip_families.conf":                       {},
	"cases/vsg_missing.conf":                        {strict: divLogOnly},
	"corpus/ah_master_low_prio.conf":                {},
	"corpus/bad_values_runs.conf":                   {},
	"corpus/dup_virtual_server.conf":                {runs: divDupVS, strict: divDupVS},
	"corpus/sync_group_mixed_owner.conf":            {runs: divMixed},
	"corpus/script_quoting.conf":                    {},
	"corpus/vsg_dr_ports.conf":                      {},
	"corpus/kolla_style_unicast.conf":               {},
	"corpus/neutron_l3ha_style.conf":                {},
	"corpus/homelab_pihole.conf":                    {},
	"corpus/ipv6_v3_router.conf":                    {},
	"corpus/haproxy_pair_relative_script.conf":      {},
	"corpus/k8s_apiserver_vip.conf":                 {},
	"corpus/lvs_dr_director.conf":                   {},
	"corpus/lvs_web_typos.conf":                     {},
	"corpus/maglev_sh_port.conf":                    {strict: divAdvice + ": sh-port under lvs_sched mh sets nothing, and keepalived says nothing"},
	"corpus/misplaced_vrrp_script.conf":             {},
	"corpus/octavia_amphora.conf":                   {},
	"corpus/rhel_sample_strict.conf":                {},
	"corpus/script_user_missing.conf":               {strict: divHostUser},
	"corpus/strict_unicast.conf":                    {strict: divUnsup + " (vrrp_strict)"},
	"corpus/v3_with_auth.conf":                      {},
	"corpus/vrid_invalid.conf":                      {},
	"corpus/vyos_style_auto_priority.conf":          {strict: divUnsup + " (max_auto_priority, min_auto_priority_delay)"},
	"examples/keepalived.conf":                      {runs: divSelfKil, strict: divSelfKil},
	"examples/lvs-nat.conf":                         {},
	"examples/unicast.conf":                         {},
	"samples/keepalived.conf.HTTP_GET.port":         {},
	"samples/keepalived.conf.IPv6":                  {},
	"samples/keepalived.conf.PING_CHECK":            {},
	"samples/keepalived.conf.SMTP_CHECK":            {strict: divAdvice + ": the host block in SMTP_CHECK is deprecated"},
	"samples/keepalived.conf.SSL_GET":               {},
	"samples/keepalived.conf.UDP_CHECK":             {},
	"samples/keepalived.conf.conditional_conf":      {},
	"samples/keepalived.conf.fwmark":                {},
	"samples/keepalived.conf.inhibit":               {},
	"samples/keepalived.conf.misc_check":            {},
	"samples/keepalived.conf.misc_check_arg":        {},
	"samples/keepalived.conf.quorum":                {},
	"samples/keepalived.conf.sample":                {},
	"samples/keepalived.conf.status_code":           {},
	"samples/keepalived.conf.track_interface":       {},
	"samples/keepalived.conf.virtual_server_group":  {},
	"samples/keepalived.conf.virtualhost":           {},
	"samples/keepalived.conf.vrrp":                  {},
	"samples/keepalived.conf.vrrp.localcheck":       {},
	"samples/keepalived.conf.vrrp.lvs_syncd":        {},
	"samples/keepalived.conf.vrrp.routes":           {},
	"samples/keepalived.conf.vrrp.rules":            {},
	"samples/keepalived.conf.vrrp.scripts":          {},
	"samples/keepalived.conf.vrrp.static_ipaddress": {},
	"samples/keepalived.conf.vrrp.sync":             {},
	"seeds/000_annotated.conf":                      {},
	"seeds/000_backup.conf":                         {},
	"seeds/000_master.conf":                         {},
	"seeds/001_backup_repaired.conf":                {},
	"seeds/001_inline_script.conf":                  {},
	"seeds/001_master.conf":                         {},
	"seeds/001_master_repaired.conf":                {},
	"seeds/002_http_get.conf":                       {},
	"seeds/002_http_get_glued.conf":                 {},
	"seeds/002_lvs_dr.conf":                         {},
	"seeds/002_lvs_dr_backup.conf":                  {},
	"seeds/002_lvs_dr_glued.conf":                   {},
	"seeds/002_misc_check.conf":                     {},
	"seeds/002_misc_check_glued.conf":               {},
}

// kaResult is keepalived -t's verdict on one file.
type kaResult struct {
	exit int
	out  string
}

// runs reports whether keepalived would run the file (see kaRefusals).
func (r kaResult) runs() bool {
	switch r.exit {
	case 0, 5, 6:
	default:
		return false
	}
	for _, m := range kaRefusals {
		if strings.Contains(r.out, m) {
			return false
		}
	}
	return true
}

// TestKeepalivedDifferential runs Debian's keepalived -t and vigil's Load
// over the corpus (seeds, diagnostics cases, the drop-in corpus, examples
// and keepalived's own samples) inside a network namespace that has the
// interfaces the files name, and compares whether each runs, and whether
// each is clean.
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

	verdict := func(ok bool, yes, no string) string {
		if ok {
			return yes
		}
		return no
	}
	var table []string
	agreeRuns, agreeStrict := 0, 0
	for _, e := range files {
		cfg, ds := Load(os.DirFS(e.fsRoot), e.fsName, goldenOptions)
		vigilRuns, vigilClean := !ds.HasErrors(), len(ds) == 0
		ka := runKeepalivedT(t, h, kbin, tmp, e.abs, scriptPaths(cfg))
		kaRuns, kaClean := ka.runs(), ka.exit == 0
		div, listed := divergences[e.name]
		if !listed {
			t.Errorf("%s: not in the divergence table; add it with {} when vigil and keepalived agree", e.name)
		}
		row := fmt.Sprintf("%-44s keepalived exit %d (%s), vigil %s, %s", e.name, ka.exit,
			verdict(kaRuns, "runs", "refuses"), verdict(vigilRuns, "runs", "refuses"), verdict(vigilClean, "clean", "not clean"))
		for _, c := range []struct {
			what     string
			ka, vg   bool
			reason   string
			yes, no  string
			agreeCnt *int
		}{
			{"runs", kaRuns, vigilRuns, div.runs, "runs", "refuses", &agreeRuns},
			{"strict", kaClean, vigilClean, div.strict, "clean", "not clean", &agreeStrict},
		} {
			switch {
			case c.ka != c.vg && c.reason == "":
				t.Errorf("%s (%s): keepalived %s (exit %d), vigil %s; not a listed divergence.\nkeepalived:\n%s\nvigil:\n%s",
					e.name, c.what, verdict(c.ka, c.yes, c.no), ka.exit, verdict(c.vg, c.yes, c.no), ka.out, dumpDiags(ds))
			case c.ka == c.vg && c.reason != "":
				t.Errorf("%s (%s): listed as a divergence (%s) but both are %s; remove the entry", e.name, c.what, c.reason, verdict(c.ka, c.yes, c.no))
			case c.reason != "":
				row += "  [" + c.what + " divergence: " + c.reason + "]"
			}
			if c.ka == c.vg {
				*c.agreeCnt++
			}
		}
		table = append(table, row)
	}
	sort.Strings(table)
	t.Logf("keepalived -t vs vigil, %d files: runs agree on %d, strict agrees on %d:\n%s", len(files), agreeRuns, agreeStrict, strings.Join(table, "\n"))
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
