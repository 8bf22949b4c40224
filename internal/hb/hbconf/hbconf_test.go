package hbconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-ha/vigil/internal/diag"
)

func diagStrings(ds diag.Diagnostics) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

// The seed tutorial's files (shared/seeds/004): its `keeplive 2` typo is a
// warning with a suggestion, and keepalive keeps heartbeat's default.
func TestLoadSeed004(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ha.cf", "haresources", "authkeys"} {
		b, err := os.ReadFile(filepath.Join("testdata/seed004", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, ds := Load(dir)
	hacf := filepath.Join(dir, "ha.cf")
	want := []string{
		hacf + `:4:1: warning: unknown directive "keeplive" (ignored) (did you mean "keepalive"?)`,
		hacf + `:15:19: warning: respawn ipfail: vigil has ipfail built in (the node that reaches fewer ping nodes hands the resources over); the program is not started`,
	}
	if diff := cmp.Diff(want, diagStrings(ds)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if c.Keepalive != time.Second || c.Deadtime != 30*time.Second || c.Warntime != 10*time.Second || c.Initdead != 60*time.Second {
		t.Errorf("timings: keepalive %v deadtime %v warntime %v initdead %v", c.Keepalive, c.Deadtime, c.Warntime, c.Initdead)
	}
	wantMedia := []Medium{{Kind: Ucast, Dev: "eth1", Peer: netip.MustParseAddr("10.0.0.2"), Port: 694, Pos: diag.Pos{File: hacf, Line: 9, Col: 1}}}
	if diff := cmp.Diff(wantMedia, c.Media, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("media (-want +got):\n%s", diff)
	}
	if got := c.NodeNames(); !cmp.Equal(got, []string{"HA1", "HA2"}) {
		t.Errorf("nodes %v", got)
	}
	if c.AutoFailback != "on" || len(c.PingNodes) != 1 || c.PingNodes[0].Addr != netip.MustParseAddr("10.168.0.1") {
		t.Errorf("auto_failback %q ping %v", c.AutoFailback, c.PingNodes)
	}
	if len(c.Groups) != 1 || c.Groups[0].Node != "ha1" {
		t.Fatalf("groups %+v", c.Groups)
	}
	var rs []string
	for _, r := range c.Groups[0].Resources {
		rs = append(rs, r.Agent+"("+strings.Join(r.Args, ",")+")")
	}
	if diff := cmp.Diff([]string{"IPaddr(10.168.0.160/24/eth0)", "nginx()"}, rs); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	if c.Auth == nil || c.Auth.Active != 3 || c.Auth.Methods[3] != (AuthMethod{Type: "md5", Key: "hello!"}) {
		t.Errorf("auth %+v", c.Auth)
	}
}

func TestHaCfDiagnostics(t *testing.T) {
	base := "node a b\nucast eth1 10.0.0.2\nauto_failback off\n"
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"ok", base, nil},
		{"bad time", base + "deadtime 3s\n", []string{`ha.cf:4:10: error: deadtime: "3s": unit "s" not understood by heartbeat (use seconds, or NNNms)`}},
		{"ms", base + "keepalive 200ms\ndeadtime 1\ninitdead 2\n", nil},
		{"deadtime small", base + "keepalive 2\ndeadtime 4\n", []string{`ha.cf: error: deadtime 4s is too small compared to keepalive 2s (heartbeat requires deadtime > 2 * keepalive)`}},
		{"initdead small", base + "deadtime 30\ninitdead 10\n", []string{`ha.cf: error: initdead 10s is smaller than deadtime 30s`}},
		{"bad ucast", "node a b\nucast eth1 peer.example\nauto_failback on\n", []string{
			`ha.cf: error: no heartbeat medium: add ucast, bcast or mcast`,
			`ha.cf:2:12: error: ucast: "peer.example" is not an IPv4 address (heartbeat's ucast resolves a host name at start; vigil wants the address)`}},
		{"mcast", base + "mcast eth0 225.0.0.1 694 1 0\n", nil},
		{"mcast bad group", base + "mcast eth0 10.0.0.1 694 1 0\n", []string{`ha.cf:4:12: error: mcast: "10.0.0.1" is not an IPv4 multicast group (224.0.0.0/4)`}},
		{"crm", base + "crm respawn\n", []string{`ha.cf:4:1: error: crm respawn: the CRM (Pacemaker) is not supported by vigil; only haresources resource groups are (use ` + "`crm off`)"}},
		{"crm off", base + "crm off\n", nil},
		{"serial", base + "serial /dev/ttyS0\nbaud 19200\n", []string{
			`ha.cf:4:1: warning: serial: serial heartbeat links are not supported by vigil (ignored); use a second network medium (ucast/bcast/mcast) instead`,
			`ha.cf:5:1: warning: baud: serial heartbeat links are not supported by vigil (ignored); use a second network medium (ucast/bcast/mcast) instead`}},
		{"auto_failback bad", "node a b\nucast eth1 10.0.0.2\nauto_failback maybe\n", []string{
			`ha.cf: warning: auto_failback not set: heartbeat's default is "legacy" (vigil treats it as on); say auto_failback on or off`,
			`ha.cf:3:15: error: auto_failback: "maybe" is not on, off or legacy`}},
		{"typo", base + "deadtim 10\n", []string{`ha.cf:4:1: warning: unknown directive "deadtim" (ignored) (did you mean "deadtime"?)`}},
		{"no nodes", "ucast eth1 10.0.0.2\nauto_failback on\n", []string{"ha.cf: error: no `node` directive: list every cluster node by its `uname -n`"}},
		{"watchdog", base + "watchdog /dev/watchdog\n", nil},
		{"watchdog twice", base + "watchdog /dev/watchdog\nwatchdog /dev/watchdog1\n", []string{`ha.cf:5:1: error: watchdog: device given twice (first /dev/watchdog at line 4); heartbeat refuses this`}},
		{"hbgenmethod", base + "hbgenmethod time\n", nil},
		{"hbgenmethod bad", base + "hbgenmethod clock\n", []string{`ha.cf:4:13: error: hbgenmethod: "clock" is neither file nor time; heartbeat refuses this`}},
		{"bad facility", base + "logfacility local9\n", []string{`ha.cf:4:13: error: logfacility: "local9" is not a syslog facility (auth, authpriv, daemon, local0..local7, user, none...)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ds := ParseHaCf("ha.cf", tc.src)
			ds.Sort()
			if diff := cmp.Diff(tc.want, diagStrings(ds)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHaCfMultipleMediaAndDefaults(t *testing.T) {
	c, ds := ParseHaCf("ha.cf", "node a b\nudpport 700\nbcast eth0 eth2\nucast eth1 10.0.0.2\nauto_failback on\ndeadtime 5\n")
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	var got []string
	for _, m := range c.Media {
		got = append(got, string(m.Kind)+" "+m.Dev+" "+strings.TrimPrefix(m.Peer.String(), "invalid IP"))
	}
	if diff := cmp.Diff([]string{"bcast eth0 ", "bcast eth2 ", "ucast eth1 10.0.0.2"}, got); diff != "" {
		t.Error(diff)
	}
	if c.GenTime {
		t.Error("hbgenmethod defaults to file, as heartbeat")
	}
	if c, _ := ParseHaCf("ha.cf", "node a b\nucast eth1 10.0.0.2\nauto_failback on\nhbgenmethod time\n"); !c.GenTime {
		t.Error("hbgenmethod time not kept")
	}
	// config.c: deadtime < 6 s gives initdead 12 s; warntime deadtime/2.
	if c.Initdead != 12*time.Second || c.Warntime != 2500*time.Millisecond || c.Media[0].Port != 700 {
		t.Errorf("initdead %v warntime %v port %d", c.Initdead, c.Warntime, c.Media[0].Port)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"2": 2 * time.Second, "1500ms": 1500 * time.Millisecond, "0.2": 200 * time.Millisecond, "500us": time.Millisecond} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "2s", "-1", "1m"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestHaResources(t *testing.T) {
	src := "# comment\nha1 10.168.0.160/24/eth0 IPaddr2::10.0.0.9/24/eth0:vip \\\n  Filesystem::/dev/sdb1::/srv::ext4 nginx::arg1::arg2\nha2 apache.service\n"
	gs, ds := ParseHaResources("haresources", src)
	if len(ds) != 0 {
		t.Fatal(ds)
	}
	var got []string
	for _, g := range gs {
		for _, r := range g.Resources {
			got = append(got, g.Node+" "+r.Agent+" "+strings.Join(r.Args, "|")+" "+r.Pos.String())
		}
	}
	want := []string{
		"ha1 IPaddr 10.168.0.160/24/eth0 haresources:2:5",
		"ha1 IPaddr2 10.0.0.9/24/eth0:vip haresources:2:26",
		"ha1 Filesystem /dev/sdb1|/srv|ext4 haresources:3:3",
		"ha1 nginx arg1|arg2 haresources:3:37",
		"ha2 apache.service  haresources:4:5",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	_, ds = ParseHaResources("haresources", "ha1 10.0.0.300/24 IPaddr Filesystem::/dev/x::rel\nha2\n")
	wantD := []string{
		`haresources:1:5: error: haresources: IPaddr: "10.0.0.300" is not an IPv4 address`,
		`haresources:1:19: error: haresources: IPaddr needs an address: IPaddr::ADDR[/PREFIX[/DEV]]`,
		`haresources:1:26: error: haresources: Filesystem: mount point "rel" is not an absolute path`,
		`haresources:2:1: error: haresources: node "ha2" has no resources`,
	}
	if diff := cmp.Diff(wantD, diagStrings(ds)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseIPArg(t *testing.T) {
	a, err := ParseIPArg("10.0.0.1/255.255.255.0/eth0:0")
	if err != nil || a.Prefix != netip.MustParsePrefix("10.0.0.1/24") || a.Dev != "eth0" || a.Label != "eth0:0" {
		t.Errorf("%+v %v", a, err)
	}
	if _, err := ParseIPArg("10.0.0.1/33"); err == nil {
		t.Error("/33 accepted")
	}
}

func TestAuthKeys(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		mode      os.FileMode
		want      []string
		active    AuthMethod
	}{
		{"md5", "auth 3\n3 md5 hello!\n", 0o600, nil, AuthMethod{"md5", "hello!"}},
		{"sha1 among", "auth 2\n1 crc\n2 sha1 k\n", 0o600, []string{"authkeys:2:3: warning: authkeys: crc is a checksum, not authentication: anyone on the link can forge heartbeats; use sha1"}, AuthMethod{"sha1", "k"}},
		{"world readable", "auth 1\n1 sha1 k\n", 0o644, []string{`authkeys: error: authkeys is readable by group or others (mode 0644): heartbeat refuses such a key file ("Bad permissions on keyfile"); run chmod 600 authkeys`}, AuthMethod{}},
		{"missing key", "auth 1\n1 md5\n", 0o600, []string{"authkeys: error: authkeys: no method defined", "authkeys:2:1: error: authkeys: md5 requires a key"}, AuthMethod{}},
		{"auth names nothing", "auth 4\n1 md5 x\n", 0o600, []string{"authkeys:1:1: error: authkeys: auth 4 names no method defined in the file"}, AuthMethod{}},
		{"unknown", "auth 1\n1 sha256 x\n", 0o600, []string{"authkeys: error: authkeys: no method defined", `authkeys:2:3: error: authkeys: unknown method "sha256" (crc, md5 or sha1)`}, AuthMethod{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ds := ParseAuthKeys("authkeys", tc.src, tc.mode)
			ds.Sort()
			if diff := cmp.Diff(tc.want, diagStrings(ds)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			var got AuthMethod
			if a != nil {
				got = a.Methods[a.Active]
			}
			if got != tc.active {
				t.Errorf("active %+v, want %+v", got, tc.active)
			}
		})
	}
}

// Load checks the file's real mode (heartbeat's fstat check).
func TestLoadRefusesReadableAuthkeys(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ha.cf"), []byte("node a b\nucast eth1 10.0.0.2\nauto_failback on\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "authkeys"), []byte("auth 1\n1 sha1 k\n"), 0o644)
	os.Chmod(filepath.Join(dir, "authkeys"), 0o644)
	c, ds := Load(dir)
	if !ds.HasErrors() || c.Auth != nil || !strings.Contains(ds.Err().Error(), "readable by group or others") {
		t.Fatalf("want a mode error, got %v", ds)
	}
}
