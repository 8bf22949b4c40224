package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

func writeConf(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runVigil(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = dispatch(args, &out, &errb)
	return code, out.String(), errb.String()
}

const goodConf = `global_defs {
    router_id r1
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 55
    priority 150
    virtual_ipaddress {
        192.168.1.100/24 dev eth0
    }
}
virtual_server 192.168.1.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
    }
}
`

// needIface skips a test whose expected output assumes the host has the
// interface: vigil check warns about an interface missing where it runs.
func needIface(t *testing.T, name string) {
	t.Helper()
	if _, err := net.InterfaceByName(name); err != nil {
		netnstest.Unavailable(t, "this host has no interface %s, which the configuration names", name)
	}
}

func TestCheckClean(t *testing.T) {
	needIface(t, "eth0")
	f := writeConf(t, "good.conf", goodConf)
	code, out, errs := runVigil("check", "-f", f)
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if errs != "" {
		t.Errorf("stderr %q, want nothing", errs)
	}
	for _, want := range []string{
		"vrrp instances: 1",
		"VI_1: interface eth0, vrid 55, priority 150, MASTER, v2, advert 1s, multicast 224.0.0.18",
		"VIPs: 192.168.1.100/24 dev eth0",
		"virtual servers: 1, real servers: 1",
		"192.168.1.100:80/TCP: rr NAT, delay_loop 60s, quorum 1",
		"10.0.0.2:80 weight 1: TCP_CHECK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// TestCheckAH: auth_type AH (VRRPv2 over IPv4) is accepted without a
// diagnostic and shown in the summary.
func TestCheckAH(t *testing.T) {
	needIface(t, "eth0")
	f := writeConf(t, "ah.conf", `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 55
    priority 150
    authentication {
        auth_type AH
        auth_pass secret12
    }
    virtual_ipaddress {
        192.168.1.100/24 dev eth0
    }
}
`)
	code, out, errs := runVigil("check", "-f", f)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, want 0 and no diagnostics\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if want := "authentication: AH (IP protocol 51"; !strings.Contains(out, want) {
		t.Errorf("summary lacks %q:\n%s", want, out)
	}
}

var diagLine = regexp.MustCompile(`^(/[^:]+):(\d+):(\d+): (error|warning): .+$`)

func TestCheckErrors(t *testing.T) {
	f := writeConf(t, "bad.conf", `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 0
    priority 300
    prioirty 5
    virtual_ipaddress {
        192.168.1.300
    }
}
}
`)
	code, _, errs := runVigil("check", "--use-file", f, "-q")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	summary := lines[len(lines)-1]
	if summary != f+": 1 error(s), 5 warning(s)" {
		t.Errorf("last line %q", summary)
	}
	diags := lines[:len(lines)-1]
	// keepalived 2.2.7 ignores each bad value and runs on, except that an
	// instance without a valid virtual_router_id stops its VRRP process.
	want := []string{
		f + `:3:5: error: vrrp_instance VI_1 has no valid virtual_router_id (1..255); keepalived does not run without one`,
		f + `:3:23: warning: virtual_router_id 0 is out of range 1..255; the line is ignored and the earlier or default value stays, as keepalived does`,
		f + `:4:14: warning: priority 300 is not valid (1..255); priority 100 is used, as keepalived does`,
		f + `:5:5: warning: unknown keyword "prioirty" in vrrp_instance; did you mean "priority"?`,
		f + `:7:9: warning: address "192.168.1.300" is not a valid IP address; ignored, as keepalived does`,
		f + `:10:1: warning: unexpected '}': no block is open here; ignored, as keepalived does`,
	}
	if strings.Join(diags, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(diags, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range diags {
		if !diagLine.MatchString(l) {
			t.Errorf("not file:line:col: severity: message: %q", l)
		}
	}
	if !sort.SliceIsSorted(diags, func(i, j int) bool { return lineOf(diags[i]) < lineOf(diags[j]) }) {
		t.Errorf("diagnostics not sorted:\n%s", errs)
	}
}

func lineOf(s string) int {
	m := diagLine.FindStringSubmatch(s)
	n := 0
	for _, c := range m[2] {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestCheckWarningsOnlyExitZero(t *testing.T) {
	f := writeConf(t, "warn.conf", strings.Replace(goodConf, "router_id r1", "router_id r1\n    enable_snmp_vrrp", 1))
	code, _, errs := runVigil("check", "-f", f)
	if code != 0 {
		t.Fatalf("exit %d, want 0 (warnings only)\n%s", code, errs)
	}
	if !strings.Contains(errs, ":3:5: warning: enable_snmp_vrrp in global_defs is not supported by vigil") {
		t.Errorf("stderr:\n%s", errs)
	}
}

func TestCheckJSON(t *testing.T) {
	f := writeConf(t, "good.conf", goodConf)
	code, out, errs := runVigil("check", "-f", f, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	var m struct {
		Files     []string `json:"files"`
		Instances []struct {
			Name      string `json:"name"`
			VRID      int    `json:"virtual_router_id"`
			AdvertInt string `json:"advert_int"`
			Pos       string `json:"pos"`
		} `json:"vrrp_instances"`
		VirtualServers []struct {
			RealServers []struct {
				Checkers []struct {
					Type  string `json:"type"`
					Retry int    `json:"retry"`
				} `json:"checkers"`
			} `json:"real_servers"`
		} `json:"virtual_servers"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(m.Instances) != 1 || m.Instances[0].Name != "VI_1" || m.Instances[0].VRID != 55 || m.Instances[0].AdvertInt != "1s" ||
		m.Instances[0].Pos != f+":4:1" {
		t.Errorf("instances: %+v", m.Instances)
	}
	if c := m.VirtualServers[0].RealServers[0].Checkers[0]; c.Type != "TCP_CHECK" || c.Retry != 1 {
		t.Errorf("checker %+v, want TCP_CHECK with keepalived's default retry 1", c)
	}
	if len(m.Files) != 1 || m.Files[0] != f {
		t.Errorf("files %v", m.Files)
	}
}

func TestCheckConfigID(t *testing.T) {
	f := writeConf(t, "id.conf", strings.Replace(goodConf, "priority 150", "@node1 priority 150\n    @^node1 priority 100", 1))
	for id, want := range map[string]string{"node1": "priority 150", "node2": "priority 100"} {
		code, out, errs := runVigil("check", "-f", f, "--config-id", id)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("-i %s: exit %d, want %q in:\n%s%s", id, code, want, out, errs)
		}
	}
}

func TestCheckUsage(t *testing.T) {
	if code, _, _ := runVigil("check", "--bogus"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if code, _, _ := runVigil("check", "extra-arg"); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
	if code, _, _ := runVigil("check", "-h"); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	code, _, errs := runVigil("check", "-f", filepath.Join(t.TempDir(), "missing.conf"))
	if code != 1 || !strings.Contains(errs, "missing.conf: error: cannot read the configuration: no such file or directory") {
		t.Errorf("missing file: exit %d\n%s", code, errs)
	}
}

func TestCheckRelativePathAndIncludes(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.conf"), []byte("include conf.d/*.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf.d", "vi.conf"), []byte(goodConf+"bogus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runVigil("check", "-f", "main.conf", "-q")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	want := filepath.Join(dir, "conf.d", "vi.conf") + `:22:1: warning: unknown keyword "bogus" at the top level; ignored`
	if !strings.Contains(errs, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errs)
	}
}

// A file keepalived 2.2.7 runs after reporting what it ignored: vigil
// check accepts it with warnings, and --strict turns each into an error.
const tolerated = `global_defs {
    vrrp_garp_interval 0
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    authentication {
        auth_type PASS;
        auth_pass 1111
    }
    virtual_ipaddress {
        192.168.1.10/24
    }
}
`

func TestCheckStrict(t *testing.T) {
	needIface(t, "eth0")
	f := writeConf(t, "tolerated.conf", tolerated)
	code, _, errs := runVigil("check", "-f", f, "-q")
	if code != 0 {
		t.Fatalf("without --strict: exit %d, want 0 (keepalived runs this file)\n%s", code, errs)
	}
	if !strings.Contains(errs, ":2:24: warning: vrrp_garp_interval 0 is invalid") || !strings.Contains(errs, `:9:19: warning: auth_type "PASS;"`) {
		t.Errorf("without --strict, stderr:\n%s", errs)
	}
	code, _, errs = runVigil("check", "-f", f, "-q", "--strict")
	if code != 1 {
		t.Fatalf("--strict: exit %d, want 1\n%s", code, errs)
	}
	for _, want := range []string{
		":2:24: error: vrrp_garp_interval 0 is invalid",
		`:9:19: error: auth_type "PASS;"`,
		f + ": 3 error(s), 0 warning(s)",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("--strict: stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "warning:") {
		t.Errorf("--strict left a warning:\n%s", errs)
	}
	// A clean file stays clean under --strict.
	g := writeConf(t, "good.conf", strings.Replace(goodConf, "    virtual_ipaddress", "    advert_int 1\n    virtual_ipaddress", 1))
	if code, _, errs := runVigil("check", "-f", g, "-q", "--strict"); code != 0 {
		t.Errorf("--strict on a clean file: exit %d\n%s", code, errs)
	}
}

const drConf = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 55
    virtual_ipaddress {
        192.168.1.100/24
    }
}
virtual_server 192.168.1.100 80 {
    lb_algo wlc
    lb_kind DR
    protocol TCP
    real_server 192.168.1.11 80 {
        TCP_CHECK {
        }
    }
}
`

// vigil check says which data plane its verdict on virtual servers
// assumes, and --lvs-backend checks for another host's.
func TestCheckLVSBackend(t *testing.T) {
	f := writeConf(t, "dr.conf", drConf)
	code, out, errs := runVigil("check", "-f", f, "--lvs-backend", "ipvs")
	if code != 0 {
		t.Fatalf("--lvs-backend ipvs: exit %d, want 0 (DR is valid on an IPVS director)\n%s", code, errs)
	}
	if !strings.Contains(out, "data plane: ipvs (--lvs-backend ipvs: a target host with IPVS)") {
		t.Errorf("--lvs-backend ipvs: stdout does not name the data plane:\n%s", out)
	}
	_, out, errs = runVigil("check", "-f", f, "--lvs-backend", "nftables")
	if !strings.Contains(out, "data plane: nftables (--lvs-backend nftables: a target host without IPVS)") {
		t.Errorf("--lvs-backend nftables: stdout does not name the data plane:\n%s\n%s", out, errs)
	}
	// lvs_backend in the file wins over the target's kernel.
	g := writeConf(t, "dr-nft.conf", "global_defs {\n    lvs_backend nftables\n}\n"+drConf)
	_, out, _ = runVigil("check", "-f", g, "--lvs-backend", "ipvs")
	if !strings.Contains(out, "data plane: nftables (lvs_backend nftables)") {
		t.Errorf("lvs_backend nftables with --lvs-backend ipvs:\n%s", out)
	}
	if code, _, errs := runVigil("check", "-f", f, "--lvs-backend", "bogus"); code != 2 || !strings.Contains(errs, "want ipvs or nftables") {
		t.Errorf("--lvs-backend bogus: exit %d\n%s", code, errs)
	}
	// Without virtual servers there is no data plane to name.
	v := writeConf(t, "vrrp.conf", drConf[:strings.Index(drConf, "virtual_server")])
	if _, out, _ := runVigil("check", "-f", v); strings.Contains(out, "data plane") {
		t.Errorf("a VRRP-only file names a data plane:\n%s", out)
	}
}

// A script_user this host lacks: keepalived disables the scripts and runs
// the VRRP; vigil check warns that they are disabled and exits 0.
func TestCheckScriptUserMissing(t *testing.T) {
	f := writeConf(t, "su.conf", `global_defs {
    script_user vg-no-such-user-21
}
vrrp_script chk {
    script "/bin/true"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 55
    virtual_ipaddress {
        192.168.1.100/24
    }
    track_script {
        chk
    }
    notify_master "/bin/true master"
}
`)
	code, _, errs := runVigil("check", "-f", f, "-q")
	if code != 0 {
		t.Fatalf("exit %d, want 0 (keepalived runs with the scripts disabled)\n%s", code, errs)
	}
	for _, want := range []string{
		`:5:12: warning: vrrp_script chk: script: script_user: `,
		`the script is disabled, as keepalived does`,
		`:16:19: warning: notify_master of vrrp_instance VI_1: script: script_user: `,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	// The summary shows what will run: not the script it warned about.
	code, out, errs := runVigil("check", "-f", f)
	if code != 0 || strings.Contains(out, "tracks: script chk") || !strings.Contains(out, "chk: \"/bin/true\"") || !strings.Contains(out, "(will not run") {
		t.Errorf("summary (exit %d) lists the disabled script as tracked or running:\n%s\n%s", code, out, errs)
	}
}

// TestCheckStrictAndVMAC: vigil check says at the instance what strict mode
// will do to VIP traffic, and the summary shows the VMAC and accept mode.
func TestCheckStrictAndVMAC(t *testing.T) {
	f := writeConf(t, "strict.conf", `global_defs {
    vrrp_strict
}
vrrp_instance V {
    interface eth0
    virtual_router_id 7
    version 3
    use_vmac
    virtual_ipaddress {
        192.168.1.100/24
    }
}
`)
	code, out, errs := runVigil("check", "-f", f)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, ":4:1: warning: vrrp_instance V: accept mode is off (vrrp_strict): VIP traffic will be dropped on this node while MASTER") {
		t.Errorf("stderr:\n%s", errs)
	}
	for _, want := range []string{"VMAC: vrrp.7 on eth0, adverts from vrrp.7", "strict mode", "accept mode off: traffic to the VIPs is dropped while MASTER"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

// vigil check summarises conntrack_sync and reports its mistakes by line.
func TestCheckConntrackSync(t *testing.T) {
	const inst = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    priority 100
    virtual_ipaddress { 10.0.0.1 }
}
`
	f := writeConf(t, "cs.conf", inst+"conntrack_sync {\n    interface eth2\n    mcast_group 225.0.0.50\n    vrrp_instance VI_1\n}\n")
	code, out, errs := runVigil("check", "-f", f)
	if code != 0 || !strings.Contains(out, "conntrack sync: conntrackd (FTFW) on eth2 to multicast 225.0.0.50 port 3780, follows VI_1, filter virtual_servers") {
		t.Errorf("exit %d\n%s\n%s", code, out, errs)
	}
	g := writeConf(t, "cs-bad.conf", inst+"conntrack_sync {\n    interface eth2\n    vrrp_instance VI_2\n}\n")
	code, _, errs = runVigil("check", "-f", g)
	if code != 1 || !strings.Contains(errs, "cs-bad.conf:7:1: error: conntrack_sync: no unicast_peer and no mcast_group") ||
		!strings.Contains(errs, "cs-bad.conf:7:1: error: conntrack_sync: no vrrp_instance VI_2") {
		t.Errorf("exit %d\n%s", code, errs)
	}
}

// A quorum above the total weight and a hysteresis above the quorum: one
// warning per problem, each naming the value keepalived (and vigil) uses, in
// file order, and the summary shows the values in effect.
func TestCheckQuorumHysteresis(t *testing.T) {
	f := writeConf(t, "q.conf", `virtual_server 10.0.0.1 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 5
    hysteresis 9
    real_server 10.0.0.2 80 {
    }
}
`)
	code, out, errs := runVigil("check", "-f", f, "--lvs-backend", "ipvs")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, errs)
	}
	want := []string{
		f + ":5:5: warning: virtual_server 10.0.0.1:80: quorum 5 exceeds the total weight 1 of the real servers; 1 is used, as keepalived does",
		f + ":6:5: warning: virtual_server 10.0.0.1:80: hysteresis 9 must be below quorum 1; 0 is used, as keepalived does",
		f + ": 0 error(s), 2 warning(s)",
	}
	if got := strings.Split(strings.TrimSpace(errs), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", errs, strings.Join(want, "\n"))
	}
	if !strings.Contains(out, "quorum 1\n") {
		t.Errorf("summary does not show the quorum in effect:\n%s", out)
	}
}

// What the data plane cannot do is reported at the line of the virtual or
// real server concerned, past a virtual server keepalived ignores.
func TestCheckDataPlaneFindingPositions(t *testing.T) {
	f := writeConf(t, "dp.conf", `virtual_server 10.0.0.9 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
}
virtual_server 10.0.0.1 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 80 {
    }
    real_server 10.0.0.3 80 {
        uthreshold 5
    }
}
`)
	_, _, errs := runVigil("check", "-f", f, "--lvs-backend", "nftables")
	want := f + ":12:5: warning: virtual server [10.0.0.1]:tcp:80: real server 10.0.0.3:80: uthreshold/lthreshold are ignored (data plane nftables"
	if !strings.Contains(errs, want) {
		t.Errorf("stderr:\n%s\nwant a line starting %q", errs, want)
	}
}

// TestCheckHaDirAutoFailbackLegacy: an ha.cf without auto_failback gets
// heartbeat's default, legacy, which vigil runs as on; the warning and the
// summary say the same.
func TestCheckHaDirAutoFailbackLegacy(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"ha.cf":       "keepalive 2\ndeadtime 30\nudpport 694\nucast eth1 10.0.0.2\nnode HA1\nnode HA2\n",
		"haresources": "HA1 IPaddr::192.168.0.10/24/eth0 nginx\n",
		"authkeys":    "auth 1\n1 crc\n",
	} {
		mode := os.FileMode(0o644)
		if name == "authkeys" {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	_, out, errs := runVigil("check", "--ha-dir", dir)
	if !strings.Contains(errs+out, `vigil treats it as on`) {
		t.Errorf("no warning about auto_failback legacy:\n%s%s", out, errs)
	}
	if !strings.Contains(out, "auto_failback legacy (run as on)") {
		t.Errorf("summary does not say how legacy runs:\n%s", out)
	}
}

// TestCheckMissingInterface: keepalived 2.2.7 -t prints "WARNING - interface
// vgnone0 for vrrp_instance VI_1 doesn't exist" and "Non-existent interface
// specified in configuration" and its VRRP process refuses the file; vigil
// runs it (FAULT until the interface appears), so check warns, and errs
// under --strict.
func TestCheckMissingInterface(t *testing.T) {
	f := writeConf(t, "noif.conf", strings.ReplaceAll(goodConf, "eth0", "vgnone0"))
	code, _, errs := runVigil("check", "-q", "-f", f)
	want := ":6:15: warning: interface vgnone0 does not exist in this network namespace (where vigil check runs; the daemon's may differ)"
	if code != 0 || !strings.Contains(errs, want) || !strings.Contains(errs, "vrrp_instance VI_1 stays in FAULT until vgnone0 appears") ||
		!strings.Contains(errs, ":10:9: warning: dev vgnone0 does not exist") {
		t.Errorf("exit %d, want 0 and %q:\n%s", code, want, errs)
	}
	code, _, errs = runVigil("check", "-q", "--strict", "-f", f)
	if code != 1 || !strings.Contains(errs, ":6:15: error: interface vgnone0 does not exist") {
		t.Errorf("--strict: exit %d, want 1 and an error:\n%s", code, errs)
	}
	dyn := strings.Replace(goodConf, "router_id r1", "router_id r1\n    dynamic_interfaces", 1)
	f = writeConf(t, "dyn.conf", strings.ReplaceAll(dyn, "eth0", "vgnone0"))
	if code, _, errs = runVigil("check", "-q", "-f", f); code != 0 || strings.Contains(errs, "does not exist") {
		t.Errorf("with dynamic_interfaces: exit %d, want 0 and nothing said of vgnone0 (keepalived waits for it):\n%s", code, errs)
	}
}

// TestCheckSummaryLeavesOutRefusedMiscCheck: under enable_script_security
// a MISC_CHECK whose script others may write is refused (keepalived:
// "Disabling misc script ... due to insecure") and the real server runs
// without it; the summary must not list it as running.
func TestCheckSummaryLeavesOutRefusedMiscCheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sh := filepath.Join(dir, "chk.sh")
	if err := os.WriteFile(sh, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := writeConf(t, "misc.conf", `global_defs {
    enable_script_security
    script_user root
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
        MISC_CHECK {
            misc_path "`+sh+`"
        }
    }
}
`)
	code, out, errs := runVigil("check", "-f", f)
	if code != 0 || !strings.Contains(errs, "the checker left out") {
		t.Fatalf("exit %d, want 0 with a warning that the MISC_CHECK is left out:\n%s", code, errs)
	}
	want := "    10.0.0.2:80 weight 1: TCP_CHECK, 1 left out (see the diagnostics)\n"
	if !strings.Contains(out, want) {
		t.Errorf("summary lacks %q:\n%s", want, out)
	}
}

// TestCheckSummaryRealServerMethod: a real server's own lvs_method
// (keepalived 2.2.7 takes it in real_server) shows in the summary when it
// differs from the virtual server's lb_kind.
func TestCheckSummaryRealServerMethod(t *testing.T) {
	f := writeConf(t, "rsmethod.conf", `virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    real_server 10.0.0.2 80 {
        lvs_method DR
    }
    real_server 10.0.0.3 80 {
    }
}
`)
	_, out, errs := runVigil("check", "--lvs-backend", "ipvs", "-f", f)
	for _, want := range []string{"    10.0.0.2:80 DR weight 1: no checker\n", "    10.0.0.3:80 weight 1: no checker\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s\n%s", want, out, errs)
		}
	}
}
