package e2e_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// TestMassTakeoverOnTheWire: 200 VRRPv3 backups (advert_int 0.1) on one
// interface with no master take over together, Master_Down_Interval after
// start. Every address is installed, and each is announced exactly
// garp_master_repeat (5) times on the LAN by the first burst.
func TestMassTakeoverOnTheWire(t *testing.T) {
	t.Parallel()
	const n = 200
	e := newEnv(t, "burst", 1)
	var c e2e.Conf
	vips := map[netip.Addr]bool{}
	for vrid := 1; vrid <= n; vrid++ {
		a := netip.AddrFrom4([4]byte{10, 77, 0, byte(vrid)})
		vips[a] = true
		c.Instances = append(c.Instances, e2e.Instance{
			Name: fmt.Sprintf("VI_%d", vrid), State: "BACKUP", Interface: "eth0", VRID: vrid, Priority: 99,
			AdvertInt: "0.1", Version: 3, VIPs: []string{a.String() + "/32 dev eth0"},
		})
	}
	sn, err := e2e.StartSniffer(e.net.Client, "eth0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Stop()
	r1 := e.start(e2e.Vigil, 0, c)
	mac := macOf(t, e.node(0), "eth0").String()

	// All of them master and their addresses on eth0.
	deadline := time.Now().Add(10 * time.Second)
	for {
		addrs, err := e.addrsOf(e.node(0)).List("eth0")
		if err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, a := range addrs {
			if vips[a.Prefix.Addr()] {
				held++
			}
		}
		if held == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d addresses on eth0 after 10 s", held, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Each announced 5 times (the garp_master_delay burst comes 5 s
	// later).
	counts := func() map[netip.Addr]int {
		m := map[netip.Addr]int{}
		for _, f := range sn.Frames() {
			if a, ok := e2e.ParseAnnouncement(f.Data); ok && a.SrcMAC.String() == mac && vips[a.Addr] {
				m[a.Addr]++
			}
		}
		return m
	}
	deadline = time.Now().Add(3 * time.Second)
	for {
		m := counts()
		full := 0
		for _, k := range m {
			if k >= 5 {
				full++
			}
		}
		if full == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d addresses announced 5 times (%d announced at all; capture dropped %d frames)", full, n, len(m), sn.Drops())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for a, k := range counts() {
		if k != 5 {
			t.Errorf("%v announced %d times, want 5", a, k)
		}
	}
	st, err := r1.States(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range st {
		if s != "MASTER" {
			t.Errorf("%s is %s", name, s)
		}
	}
}
