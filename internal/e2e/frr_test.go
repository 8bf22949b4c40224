package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// frrDir holds FRR's daemons (Debian's frr 8.4).
const frrDir = "/usr/lib/frr"

// frrNode is zebra and vrrpd of FRRouting running inside one lab host, with
// their own configuration, pid files and vty / zserv sockets in a private
// directory (nothing under /etc/frr or /run/frr).
type frrNode struct {
	t            *testing.T
	h            *lab.Host
	dir          string
	v6           bool
	zebra, vrrpd *lab.Proc
}

// newFRR writes vrrpd.conf for one VRRP group on eth0 and makes the macvlan
// FRR's documentation asks for: vrrp4-2-VRID (vrrp6-2-VRID for an IPv6 VIP,
// with a random link-local address) on eth0, mode bridge, with the virtual
// MAC and the VIP, up. FRR's daemons drop privileges to user frr, which must
// own the directory.
func newFRR(t *testing.T, h *lab.Host, vrid, version, prio int, advert time.Duration, vip netip.Addr) *frrNode {
	t.Helper()
	for _, d := range []string{"zebra", "vrrpd"} {
		if _, err := os.Stat(filepath.Join(frrDir, d)); err != nil {
			netnstest.Unavailable(t, "FRR's %s is not installed (scripts/setup installs frr)", d)
		}
	}
	netnstest.RequireCommand(t, "vtysh")
	netnstest.RequireCommand(t, "chrt")
	u, err := user.Lookup("frr")
	if err != nil {
		netnstest.Unavailable(t, "no user frr (Debian's frr package creates it)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not under t.TempDir: its 0700 parent would keep user frr out.
	dir, err := os.MkdirTemp("", "vigil-frr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := lab.MkdirOwned(dir, 0o755, uid, gid); err != nil {
		t.Fatal(err)
	}
	v6 := vip.Is6()
	fam, plen, kw := 1, 24, "ip"
	if v6 {
		fam, plen, kw = 2, 64, "ipv6"
	}
	mac := fmt.Sprintf("00:00:5e:00:0%d:%02x", fam, vrid)
	dev := fmt.Sprintf("vrrp%d-2-%d", map[bool]int{false: 4, true: 6}[v6], vrid)
	// addrgenmode cannot be given at creation here (EAFNOSUPPORT): set after.
	for _, args := range [][]string{
		{"link", "add", dev, "link", "eth0", "type", "macvlan", "mode", "bridge"},
		{"link", "set", "dev", dev, "address", mac},
		{"link", "set", "dev", dev, "addrgenmode", "random"},
		{"addr", "add", fmt.Sprintf("%s/%d", vip, plen), "dev", dev},
		{"link", "set", "dev", dev, "up"},
	} {
		if out, err := h.Run("ip", args...); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	confs := map[string]string{
		"zebra.conf": "hostname " + h.Name() + "\n",
		"vrrpd.conf": fmt.Sprintf("interface eth0\n vrrp %d version %d\n vrrp %d priority %d\n vrrp %d advertisement-interval %d\n vrrp %d %s %s\n",
			vrid, version, vrid, prio, vrid, advert.Milliseconds(), vrid, kw, vip),
	}
	for name, c := range confs {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	f := &frrNode{t: t, h: h, dir: dir, v6: v6}
	t.Cleanup(f.kill)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s/frr ---\n%s", h.Name(), f.logs())
		}
	})
	f.start()
	return f
}

// frrRTPriority is the SCHED_RR priority FRR's daemons run at (chrt), as
// vigil runs at vrrp_rt_priority in these tests: the steady-state check
// demands that neither side stalls past a Master_Down_Interval, and on a
// loaded 2-core machine a daemon at normal priority has been seen to miss
// its adverts for longer than that (FRR's v2 master, at load 10).
const frrRTPriority = "50"

func (f *frrNode) daemon(name string) *lab.Proc {
	f.t.Helper()
	p, err := f.h.Start("chrt", "-r", frrRTPriority, filepath.Join(frrDir, name), "-z", filepath.Join(f.dir, "zserv.api"),
		"-i", filepath.Join(f.dir, name+".pid"), "--vty_socket", f.dir, "-f", filepath.Join(f.dir, name+".conf"),
		"-P", "0", "--log", "stdout")
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// start starts zebra, then vrrpd once zebra's socket is there.
func (f *frrNode) start() {
	f.t.Helper()
	f.zebra = f.daemon("zebra")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(f.dir, "zserv.api")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("zebra did not open its socket:\n%s", f.zebra.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.vrrpd = f.daemon("vrrpd")
}

// kill9 kills vrrpd with SIGKILL (zebra stays, as when only vrrpd dies).
func (f *frrNode) kill9() { f.vrrpd.Kill() }

func (f *frrNode) restartVRRPD() { f.vrrpd = f.daemon("vrrpd") }

func (f *frrNode) kill() {
	for _, p := range []*lab.Proc{f.vrrpd, f.zebra} {
		if p != nil {
			p.Kill()
		}
	}
}

func (f *frrNode) logs() string {
	var b strings.Builder
	for _, p := range []*lab.Proc{f.zebra, f.vrrpd} {
		if p != nil {
			b.WriteString(p.Output())
		}
	}
	return b.String()
}

// state is vrrpd's status of the group in its family ("Master", "Backup",
// ...).
func (f *frrNode) state(vrid int) string {
	out, err := f.h.Run("vtysh", "--vty_socket", f.dir, "-c", fmt.Sprintf("show vrrp %d json", vrid))
	if err != nil {
		return ""
	}
	type fam struct {
		Status string `json:"status"`
	}
	var rs []struct {
		V4 fam `json:"v4"`
		V6 fam `json:"v6"`
	}
	if json.Unmarshal([]byte(out), &rs) != nil || len(rs) != 1 {
		return ""
	}
	if f.v6 {
		return rs[0].V6.Status
	}
	return rs[0].V4.Status
}

func (f *frrNode) waitState(vrid int, want string, timeout time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := f.state(vrid)
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("FRR on %s is %q after %v, want %s", f.h.Name(), st, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFRRInterop runs vigil (use_vmac) and FRRouting's vrrpd (8.4) in one
// VRRP group, VRRPv3 and v2, each as master with the other as backup:
// steady state for several Master_Down_Intervals (the backup accepts the
// master's adverts), kill -9 of the master (the backup takes over), and the
// master back (it preempts, the other returns to backup).
func TestFRRInterop(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		version int
		f       vmacFamily
	}{{"v3", 3, vmacFamilies[0]}, {"v2", 2, vmacFamilies[0]}, {"v3-ipv6", 3, vmacFamilies[1]}} {
		for _, vigilMaster := range []bool{true, false} {
			name := c.name + "/frr-master"
			if vigilMaster {
				name = c.name + "/vigil-master"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				frrInterop(t, c.version, c.f, vigilMaster)
			})
		}
	}
}

// rtConf is conf with vrrp_rt_priority (at FRR's priority, for the FRR
// tests), for tests whose timing a loaded machine would stretch.
func rtConf(in ...e2e.Instance) e2e.Conf {
	c := conf(in...)
	c.Global = append(c.Global, "vrrp_rt_priority "+frrRTPriority)
	return c
}

func frrInterop(t *testing.T, version int, f vmacFamily, vigilMaster bool) {
	vrid := f.vrid
	// 0.5 s, not 0.1, and both daemons at a real-time priority (vigil's
	// vrrp_rt_priority, chrt for FRR): the steady-state check demands no
	// flap, and a daemon at normal priority is not scheduled promptly on a
	// loaded machine.
	advert, advertConf := 500*time.Millisecond, "0.5"
	if version == 2 {
		advert, advertConf = time.Second, "1"
	}
	e := newEnv(t, "frr", 2)
	vigilPrio, frrPrio := 99, 100
	vigilHost, frrHost := e.node(1), e.node(0)
	if vigilMaster {
		vigilPrio, frrPrio = 100, 99
		vigilHost, frrHost = e.node(0), e.node(1)
	}
	in := f.instance("BACKUP", vigilPrio)
	in.AdvertInt, in.Version = advertConf, version
	// The master starts first, so the backup never runs alone.
	var vg *e2e.Node
	var fr *frrNode
	if vigilMaster {
		vg = e.start(e2e.Vigil, 0, rtConf(in))
		e.waitState(vg, "VI_1", "MASTER", 15*time.Second)
		fr = newFRR(t, frrHost, vrid, version, frrPrio, advert, f.vip)
	} else {
		fr = newFRR(t, frrHost, vrid, version, frrPrio, advert, f.vip)
		fr.waitState(vrid, "Master", 15*time.Second)
		vg = e.start(e2e.Vigil, 1, rtConf(in))
	}
	down := 4*advert + 500*time.Millisecond

	check := func(vigilState, frrState string) {
		t.Helper()
		e.waitState(vg, "VI_1", vigilState, 15*time.Second)
		fr.waitState(vrid, frrState, 15*time.Second)
	}
	if vigilMaster {
		check("MASTER", "Backup")
	} else {
		check("BACKUP", "Master")
	}
	t.Log("steady state")
	time.Sleep(down)
	if vigilMaster {
		check("MASTER", "Backup")
		e.waitHoldsOn(vigilHost, f.dev, f.vip, true, 15*time.Second)
	} else {
		check("BACKUP", "Master")
		e.waitHoldsOn(vigilHost, f.dev, f.vip, false, 15*time.Second)
		if s := status_(t, vg, "VI_1"); s.Counters.AdvertsReceived == 0 || s.Counters.BecameMaster != 0 {
			t.Errorf("vigil as backup: %+v", s.Counters)
		}
	}

	t.Log("kill -9 of the master, then it comes back and preempts")
	if vigilMaster {
		vg.Kill()
		fr.waitState(vrid, "Master", 15*time.Second)
		e.restart(vg)
		check("MASTER", "Backup")
		e.waitHoldsOn(vigilHost, f.dev, f.vip, true, 15*time.Second)
	} else {
		fr.kill9()
		e.waitState(vg, "VI_1", "MASTER", 15*time.Second)
		e.waitHoldsOn(vigilHost, f.dev, f.vip, true, 15*time.Second)
		fr.restartVRRPD()
		check("BACKUP", "Master")
		e.waitHoldsOn(vigilHost, f.dev, f.vip, false, 15*time.Second)
	}
}
