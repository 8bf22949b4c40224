package engine

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// TestRivalMasterReported: a MASTER that drops a lower-priority master's
// adverts because its virtual_ipaddress list differs (keepalived reloaded
// with one more VIP drops ours: "received an unexpected ip number count",
// and becomes master too) says so in status while the adverts come and in
// one log line, naming the peer and the cause; the warning ends once the
// peer is quiet.
func TestRivalMasterReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		var logs syncBuffer
		_, m := runLoggedNode(t, lan, "m", "192.168.1.105/24", []runspec.InstanceSpec{tutorialInstance(vrrp.StateMaster, 100)}, &logs)
		x := newFakeHost(lan, "x", map[string]string{"eth0": "192.168.1.106/24"})
		c, err := x.OpenConn(vrrpnet.Config{Family: vrrpnet.IPv4, Interface: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		src, group := netip.MustParseAddr("192.168.1.106"), vrrpnet.DefaultGroup(vrrpnet.IPv4)
		addrs := []netip.Addr{netip.MustParseAddr("192.168.1.100"), netip.MustParseAddr("192.168.1.101")}
		send := func(prio uint8) {
			t.Helper()
			a := packet.Advert{Version: 2, Type: packet.TypeAdvertisement, VRID: 55, Priority: prio,
				CountIPAddrs: uint8(len(addrs)), AuthType: packet.AuthPass, AdvertInt: 1, Addrs: addrs}
			copy(a.AuthData[:], "1111")
			buf, err := a.Marshal(src, group)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WritePacket(buf, src, group); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Second)
		if st := m.snapshot(t).Instances[0]; st.State != "MASTER" || st.Warning != "" {
			t.Fatalf("before the rival: %s, warning %q", st.State, st.Warning)
		}
		for range 5 {
			send(99)
			time.Sleep(time.Second)
		}
		st := m.snapshot(t).Instances[0]
		if st.State != "MASTER" || st.RivalMaster != "192.168.1.106" || !strings.Contains(st.Warning, "192.168.1.106 (priority 99) advertises as master too") ||
			!strings.Contains(st.Warning, "virtual_ipaddress list differs (2 addresses, ours 1)") {
			t.Errorf("with a rival master: %s, warning %q", st.State, st.Warning)
		}
		const line = "another router advertises as MASTER too"
		if n := logs.count(line); n != 1 || logs.count("unexpected ip number count") != 1 {
			t.Errorf("%d %q lines for 5 adverts, want 1 naming keepalived's message; log:\n%s", n, line, logs.b.String())
		}
		time.Sleep(rivalQuiet(time.Second) + time.Second)
		if st := m.snapshot(t).Instances[0]; st.Warning != "" || st.RivalMaster != "" {
			t.Errorf("warning %q, rival %q once the rival is quiet", st.Warning, st.RivalMaster)
		}
		// Back, then leaving: its priority 0 ends the warning at once.
		send(99)
		time.Sleep(time.Second)
		if st := m.snapshot(t).Instances[0]; st.Warning == "" || logs.count(line) != 2 {
			t.Errorf("rival back after a silence: warning %q, %d log lines (want 2)", st.Warning, logs.count(line))
		}
		send(0)
		time.Sleep(10 * time.Millisecond)
		if st := m.snapshot(t).Instances[0]; st.Warning != "" {
			t.Errorf("warning %q after the rival's priority 0", st.Warning)
		}
	})
}

// TestRollingAdvertIntOneMaster: a rolling change of a VRRPv2 advert_int
// (the master reloaded first) leaves one master: the backup follows the
// better master at its new interval and says so (status, one log line),
// where RFC 3768 §7.1 and keepalived 2.2.7 drop the master's adverts and
// the backup takes the addresses too.
func TestRollingAdvertIntOneMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		var logs syncBuffer
		ma := tutorialInstance(vrrp.StateMaster, 100)
		a := startNode(t, lan, "a", "192.168.1.105/24", ma)
		hb, b := runLoggedNode(t, lan, "b", "192.168.1.106/24", []runspec.InstanceSpec{tutorialInstance(vrrp.StateBackup, 99)}, &logs)
		time.Sleep(10 * time.Second)
		before := b.snapshot(t).Instances[0]
		if before.State != "BACKUP" {
			t.Fatalf("before the change: b is %s", before.State)
		}
		ma.VRRP.AdvertInt = 2 * time.Second
		if _, err := a.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{ma}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		st := b.snapshot(t).Instances[0]
		if st.State != "BACKUP" || st.Counters.Transitions != before.Counters.Transitions || hb.holds(vip) || !strings.Contains(st.Warning, "advertises every 2s, ours 1s") {
			t.Errorf("backup beside a master reloaded at advert_int 2: %s after %d more transitions, holds the VIP %v, warning %q\n%s",
				st.State, st.Counters.Transitions-before.Counters.Transitions, hb.holds(vip), st.Warning, logs.b.String())
		}
		if n := logs.count("advert_int differs from the master's"); n != 1 {
			t.Errorf("%d log lines naming the advert_int, want 1:\n%s", n, logs.b.String())
		}
		// The master goes: the backup takes over at its Skew_Time.
		a.stop(t)
		time.Sleep(2 * time.Second)
		if st := b.snapshot(t).Instances[0]; st.State != "MASTER" {
			t.Errorf("after the master's stop: %s", st.State)
		}
	})
}
