package engine

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// syncBuffer is a log sink for one test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// runLoggedNode runs an engine for specs on host name (eth0 at cidr) of
// lan, logging in text to logs.
func runLoggedNode(t *testing.T, lan *fakeLAN, name, cidr string, specs []runspec.InstanceSpec, logs *syncBuffer) (*fakeHost, *node) {
	t.Helper()
	h := newFakeHost(lan, name, map[string]string{"eth0": cidr})
	e, err := New(runspec.Spec{Instances: specs}, Options{Net: h, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return h, runNode(t, h, e)
}

// TestAddrMismatchFloodLogBounded: a forged master whose address list
// changes with every advert (or two masters with different lists) keeps the
// backup's status current but logs one line per 10 s, not one a packet; the
// line that follows says how many changes it stands for, and the log catches
// up with the state once the gate opens.
func TestAddrMismatchFloodLogBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		var logs syncBuffer
		_, b := runLoggedNode(t, lan, "b", "192.168.1.106/24", []runspec.InstanceSpec{tutorialInstance(vrrp.StateBackup, 99)}, &logs)
		x := newFakeHost(lan, "x", map[string]string{"eth0": "192.168.1.107/24"})
		c, err := x.OpenConn(vrrpnet.Config{Family: vrrpnet.IPv4, Interface: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		src, group := netip.MustParseAddr("192.168.1.107"), vrrpnet.DefaultGroup(vrrpnet.IPv4)
		send := func(addrs ...netip.Addr) {
			t.Helper()
			a := packet.Advert{Version: 2, Type: packet.TypeAdvertisement, VRID: 55, Priority: 200,
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
		synctest.Wait() // b's socket is open
		const flood = 300
		for k := range flood {
			send(netip.AddrFrom4([4]byte{10, 0, byte(k >> 8), byte(k)}))
			time.Sleep(10 * time.Millisecond)
		}
		const differs, matches = "address list differs", "matches ours again"
		st := b.snapshot(t).Instances[0]
		if st.State != "BACKUP" || !strings.Contains(st.Warning, "10.0.1.43") {
			t.Fatalf("after the flood: %s, warning %q; want BACKUP naming the last list (10.0.1.43)", st.State, st.Warning)
		}
		if n := logs.count(differs); n != 1 {
			t.Errorf("%d %q lines for %d adverts with changing lists, want 1", n, differs, flood)
		}
		// The master settles on our list: the log says so once the gate
		// opens (10 s after the first line), with the count it covers (the
		// 299 lists after the first, and the match).
		for range 12 {
			send(netip.MustParseAddr("192.168.1.100"))
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if st := b.snapshot(t).Instances[0]; st.Warning != "" {
			t.Errorf("warning %q after matching adverts", st.Warning)
		}
		if n := logs.count(matches); n != 1 || logs.count("changes_since_last_line=300") != 1 {
			t.Errorf("%d %q lines (want 1, with changes_since_last_line=300); log:\n%s", n, matches, logs.b.String())
		}
	})
}

// TestDropLogBudget: bad adverts reaching every instance with several
// reasons log at most dropLogBudget lines per 10 s for the whole engine (the
// per-instance, per-reason limit alone gave instances × reasons lines); the
// next window's first line says how many were held back, and every drop is
// still counted.
func TestDropLogBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		var logs syncBuffer
		const instances = 50
		var specs []runspec.InstanceSpec
		for v := 1; v <= instances; v++ {
			s := tutorialInstance(vrrp.StateBackup, 99)
			s.VRRP.Name, s.VRRP.VRID = fmt.Sprintf("VI_%d", v), uint8(v)
			vip := netip.AddrFrom4([4]byte{10, 1, 0, byte(v)})
			s.VRRP.VIPs = []netip.Addr{vip}
			s.VIPs[0].Prefix, s.VIPs[0].Label = netip.PrefixFrom(vip, 32), ""
			specs = append(specs, s)
		}
		_, b := runLoggedNode(t, lan, "b", "192.168.1.106/24", specs, &logs)
		x := newFakeHost(lan, "x", map[string]string{"eth0": "192.168.1.107/24"})
		c, err := x.OpenConn(vrrpnet.Config{Family: vrrpnet.IPv4, Interface: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		src, group := netip.MustParseAddr("192.168.1.107"), vrrpnet.DefaultGroup(vrrpnet.IPv4)
		round := func() {
			for v := 1; v <= instances; v++ {
				for _, bad := range []packet.Advert{
					{AuthType: packet.AuthNone, AdvertInt: 1}, // auth_type_mismatch
					{AuthType: packet.AuthPass, AdvertInt: 3}, // interval_mismatch (a lower priority: a better master is followed)
				} {
					a := bad
					a.Version, a.Type, a.VRID, a.Priority = 2, packet.TypeAdvertisement, uint8(v), 50
					a.Addrs = []netip.Addr{netip.AddrFrom4([4]byte{10, 1, 0, byte(v)})}
					a.CountIPAddrs = 1
					if a.AuthType == packet.AuthPass {
						copy(a.AuthData[:], "1111")
					}
					buf, err := a.Marshal(src, group)
					if err != nil {
						t.Fatal(err)
					}
					if err := c.WritePacket(buf, src, group); err != nil {
						t.Fatal(err)
					}
					synctest.Wait()
				}
			}
		}
		round()
		if n := logs.count(`msg="packet dropped"`); n != dropLogBudget {
			t.Errorf("%d drop lines for %d instances × 2 reasons, want the budget %d", n, instances, dropLogBudget)
		}
		time.Sleep(11 * time.Second)
		round()
		if n := logs.count("held back"); n != 1 || logs.count("held="+fmt.Sprint(2*instances-dropLogBudget)) != 1 {
			t.Errorf("%d held-back lines, want 1 with held=%d", n, 2*instances-dropLogBudget)
		}
		st := b.snapshot(t)
		var dropped uint64
		for _, in := range st.Instances {
			for _, n := range in.Counters.Dropped {
				dropped += n
			}
		}
		if dropped != 4*instances {
			t.Errorf("%d drops counted, want %d", dropped, 4*instances)
		}
	})
}

// TestHandoverWithNoBackupKeepsTheVIP: `vigil handover` on a master whose
// backup is not running (a maintenance step done in the wrong order) used
// to release the VIP at the handover timeout and take it back a
// Master_Down_Interval later: seconds with nobody answering for it. The
// master now keeps it, stays MASTER, says so, and does not yield.
func TestHandoverWithNoBackupKeepsTheVIP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		var logs syncBuffer
		h, a := runLoggedNode(t, lan, "a", "192.168.1.105/24", []runspec.InstanceSpec{tutorialInstance(vrrp.StateMaster, 100)}, &logs)
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" || !h.holds(vip) {
			t.Fatal("the lone node did not become MASTER with the VIP")
		}
		hist := len(h.vipHistory())
		if err := a.eng.Handover(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Second) // past the handover timeout (about 5 s) and a Master_Down_Interval
		synctest.Wait()
		if got := h.vipHistory()[hist:]; len(got) != 0 {
			t.Errorf("VIP changes after a handover nobody answered: %v; want none", got)
		}
		st := a.snapshot(t).Instances[0]
		if st.State != "MASTER" || st.Handover != "" {
			t.Errorf("after the handover timed out: %s, handover %q; want MASTER, no handover or yield", st.State, st.Handover)
		}
		if logs.count("no router took over") != 1 {
			t.Errorf("no log line saying the handover found no taker:\n%s", logs.b.String())
		}
	})
}

// TestNonPeerSourceLogBounded: a unicast instance takes adverts from
// addresses that are not its unicast_peer (as keepalived) and says so once
// per change of source; a LAN that sends from two addresses in turn made
// that one line per advert. It is now one line per 10 s, which says how
// many it stands for.
func TestNonPeerSourceLogBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		var logs syncBuffer
		s := tutorialInstance(vrrp.StateBackup, 99)
		s.VRRP.Unicast = true
		s.VRRP.Source = netip.MustParseAddr("192.168.1.106")
		s.VRRP.Peers = []vrrp.Peer{{Addr: netip.MustParseAddr("192.168.1.105")}}
		runLoggedNode(t, lan, "b", "192.168.1.106/24", []runspec.InstanceSpec{s}, &logs)
		x := newFakeHost(lan, "x", map[string]string{"eth0": "192.168.1.107/24"})
		c, err := x.OpenConn(vrrpnet.Config{Family: vrrpnet.IPv4, Interface: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		dst := s.VRRP.Source
		const flood = 200
		for k := range flood {
			src := netip.AddrFrom4([4]byte{192, 168, 1, byte(150 + k%2)})
			a := packet.Advert{Version: 2, Type: packet.TypeAdvertisement, VRID: 55, Priority: 200,
				CountIPAddrs: 1, AuthType: packet.AuthPass, AdvertInt: 1, Addrs: s.VRRP.VIPs}
			copy(a.AuthData[:], "1111")
			buf, err := a.Marshal(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WritePacket(buf, src, dst); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		synctest.Wait()
		const line = "not a unicast_peer"
		if n := logs.count(line); n != 1 {
			t.Errorf("%d %q lines for %d adverts from two sources in turn, want 1", n, line, flood)
		}
		time.Sleep(11 * time.Second)
		// Once more after the period: the line says how many it stands for.
		src := netip.MustParseAddr("192.168.1.152")
		a := packet.Advert{Version: 2, Type: packet.TypeAdvertisement, VRID: 55, Priority: 200,
			CountIPAddrs: 1, AuthType: packet.AuthPass, AdvertInt: 1, Addrs: s.VRRP.VIPs}
		copy(a.AuthData[:], "1111")
		buf, _ := a.Marshal(src, dst)
		if err := c.WritePacket(buf, src, dst); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := logs.count(line); n != 2 || logs.count(fmt.Sprintf("suppressed=%d", flood-1)) != 1 {
			t.Errorf("%d lines (want 2, the second with suppressed=%d); log:\n%s", n, flood-1, logs.b.String())
		}
	})
}

// TestOldChecksumFallbackIsShown: one unicast VRRPv3 advert with the old
// checksum switches what the instance sends, as keepalived 2.2.7 does, for
// good; status says so, since peers with old_unicast_checksum never then
// drop this node's adverts.
func TestOldChecksumFallbackIsShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		s := tutorialInstance(vrrp.StateMaster, 100)
		s.VRRP.Version, s.VRRP.AuthType, s.VRRP.AuthPass = 3, packet.AuthNone, [8]byte{}
		s.VRRP.Unicast = true
		s.VRRP.Source = netip.MustParseAddr("192.168.1.105")
		s.VRRP.Peers = []vrrp.Peer{{Addr: netip.MustParseAddr("192.168.1.106")}}
		a := startNode(t, lan, "a", "192.168.1.105/24", s)
		x := newFakeHost(lan, "x", map[string]string{"eth0": "192.168.1.106/24"})
		c, err := x.OpenConn(vrrpnet.Config{Family: vrrpnet.IPv4, Interface: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second)
		if w := a.snapshot(t).Instances[0].Warning; w != "" {
			t.Fatalf("warning before any old-checksum advert: %q", w)
		}
		src, dst := netip.MustParseAddr("192.168.1.106"), s.VRRP.Source
		adv := packet.Advert{Version: 3, Type: packet.TypeAdvertisement, VRID: 55, Priority: 50,
			CountIPAddrs: 1, AdvertInt: 100, Addrs: s.VRRP.VIPs, ChecksumMode: packet.ChecksumMulticastPseudoHeader}
		buf, err := adv.Marshal(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WritePacket(buf, src, dst); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		si := a.snapshot(t).Instances[0]
		if !strings.Contains(si.Warning, "old VRRPv3 unicast checksum") || !strings.Contains(si.Warning, "192.168.1.106") || si.State != "MASTER" {
			t.Fatalf("after an old-checksum advert: %s, warning %q", si.State, si.Warning)
		}
	})
}
