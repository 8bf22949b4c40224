package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// releasedRE matches the debug line of textpages.ReleaseAndLog.
var releasedRE = regexp.MustCompile(`released the binary's pages"? mappings=(\d+) mapped_kb=(\d+) resident_kb=(\d+)`)

// TestDaemonReleasesTextPages: the daemon, with 50 VRRP instances, drops
// its binary's resident text and rodata once started, and again after a
// reload (SIGHUP): its RssFile right after that is well below what the
// release dropped, the reload having run the configuration's code again.
func TestDaemonReleasesTextPages(t *testing.T) {
	bin := netnstest.VigilBinary(t)
	l := netnstest.New(t, "pages")
	h := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.168.0.1/24"}})
	var c e2e.Conf
	const n = 50
	for i := 1; i <= n; i++ {
		c.Instances = append(c.Instances, e2e.Instance{
			Name: fmt.Sprintf("VI_%d", i), State: "MASTER", Interface: "eth0", VRID: i, Priority: 100,
			AdvertInt: "1", Version: 3, VIPs: []string{fmt.Sprintf("10.168.1.%d/32 dev eth0", i)},
		})
	}
	d := e2e.NewNode(e2e.Vigil, h, bin, t.TempDir())
	d.Args = []string{"--log-level", "debug"}
	if err := d.WriteConfig(c.String()); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Kill)
	if err := d.WaitReady(30 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	// released waits for the k-th release and returns its figures.
	released := func(k int, what string) (mappings, residentKB int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if m := releasedRE.FindAllStringSubmatch(d.Log(), -1); len(m) >= k {
				mappings, _ = strconv.Atoi(m[k-1][1])
				residentKB, _ = strconv.Atoi(m[k-1][3])
				return mappings, residentKB
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no debug line releasing the binary's pages\n%s", what, d.Log())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The binary's text and rodata are about 15 MB, several of them
	// resident before a release.
	if m, kb := released(1, "start"); m < 2 || kb < 2048 {
		t.Errorf("start: released %d mappings, %d kB resident before", m, kb)
	}
	// The instances' takeovers and their gratuitous ARPs run after the
	// start: let them pass, then reload.
	if err := d.WaitState(fmt.Sprintf("VI_%d", n), "MASTER", 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	k := len(releasedRE.FindAllString(d.Log(), -1)) + 1
	if err := d.Proc().Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m, kb := released(k, "reload")
	file := rssFileOf(t, d.Pid())
	t.Logf("reload: released %d mappings, %d kB resident before; RssFile right after %d kB", m, kb, file)
	// The daemon's steady work (adverts, timers) faults back a small part.
	if m < 2 || kb < 2048 || file > kb*3/4 {
		t.Errorf("reload: released %d mappings, %d kB resident before; RssFile right after %d kB", m, kb, file)
	}
	if !d.Running() {
		t.Fatalf("the daemon exited\n%s", d.Log())
	}
}

// rssFileOf reads RssFile from /proc/PID/status, in kB.
func rssFileOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no RssFile in /proc/%d/status", pid)
	return 0
}
