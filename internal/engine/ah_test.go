package engine

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// WriteSealed makes fakeConn an AH conn as vrrpnet's: it builds the IPv4
// header (protocol 51, TTL 255), lets seal complete the payload, and puts
// the whole datagram on the fake LAN, where an AH conn's reader gets it as
// vrrpnet hands it over. The fake LAN does not separate protocols: the
// tests that use it run AH instances only.
func (c *fakeConn) WriteSealed(payload []byte, src, dst netip.Addr, seal vrrpnet.Seal) error {
	if !src.IsValid() {
		src = c.cfg.Src
	}
	s, d := src.As4(), dst.As4()
	hdr := []byte{0x45, 0xc0, 0, 0, 0, 1, 0, 0, 255, packet.ProtocolAH, 0, 0}
	binary.BigEndian.PutUint16(hdr[2:], uint16(20+len(payload)))
	hdr = append(append(hdr, s[:]...), d[:]...)
	if err := seal(hdr, payload); err != nil {
		return err
	}
	return c.WritePacket(append(hdr, payload...), src, dst)
}

func ahInstance(state vrrp.State, prio uint8, pass string) runspec.InstanceSpec {
	s := tutorialInstance(state, prio)
	s.VRRP.AuthType = packet.AuthAH
	s.VRRP.AuthPass = [8]byte{}
	copy(s.VRRP.AuthPass[:], pass)
	return s
}

// TestAHOverTheEngine: two engines with auth_type AH elect one master; the
// backup accepts its adverts (same sequence number on both), takes over
// when it stops, continuing the sequence; a third engine with another
// auth_pass has its adverts dropped as auth_failure.
func TestAHOverTheEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", ahInstance(vrrp.StateBackup, 150, "secret12"))
		b := startNode(t, lan, "b", "192.168.1.106/24", ahInstance(vrrp.StateBackup, 100, "secret12"))
		time.Sleep(6 * time.Second)
		sa, sb := a.snapshot(t).Instances[0], b.snapshot(t).Instances[0]
		if sa.State != "MASTER" || sb.State != "BACKUP" || !a.host.holds(vip) || b.host.holds(vip) {
			t.Fatalf("a %s, b %s", sa.State, sb.State)
		}
		if sb.Counters.AdvertsReceived < 2 || sb.AHSequence != sa.AHSequence || sb.AHSequence < 2 {
			t.Fatalf("b accepted %d adverts, sequence %d, a's %d", sb.Counters.AdvertsReceived, sb.AHSequence, sa.AHSequence)
		}
		seq := sa.AHSequence
		a.stop(t) // priority 0 under AH: b takes over after Skew_Time
		time.Sleep(2 * time.Second)
		sb = b.snapshot(t).Instances[0]
		if sb.State != "MASTER" || sb.AHSequence <= seq+1 {
			t.Fatalf("b %s with sequence %d, want MASTER past %d", sb.State, sb.AHSequence, seq+1)
		}

		c := startNode(t, lan, "c", "192.168.1.107/24", ahInstance(vrrp.StateBackup, 200, "wrong123"))
		time.Sleep(5 * time.Second)
		sb, sc := b.snapshot(t).Instances[0], c.snapshot(t).Instances[0]
		if sb.Counters.Dropped["auth_failure"] == 0 || sc.Counters.Dropped["auth_failure"] == 0 {
			t.Errorf("auth_failure drops: b %v, c %v", sb.Counters.Dropped, sc.Counters.Dropped)
		}
		if sb.State != "MASTER" || sc.State != "MASTER" {
			t.Errorf("b %s, c %s: each ignores the other, as keepalived", sb.State, sc.State)
		}
		if h := slices.DeleteFunc([]*node{b, c}, func(n *node) bool { return !n.host.holds(vip) }); len(h) != 2 {
			t.Errorf("%d hosts hold the VIP, want both", len(h))
		}
		b.stop(t)
		c.stop(t)
	})
}

// TestAHSealKept: an instance's adverts share one seal and its HMAC state,
// which allocates nothing once built; another auth_pass (a reload) gets a
// new one, which seals with the new key.
func TestAHSealKept(t *testing.T) {
	s := ahInstance(vrrp.StateMaster, 100, "secret12")
	in := &instance{spec: &s}
	src, dst := netip.MustParseAddr("192.168.1.105"), packet.MulticastIPv4()
	payload := packet.NewAH(src, 1).Append(nil)
	payload = append(payload, make([]byte, 16)...)
	hdr := []byte{0x45, 0xc0, 0, 0, 0, 1, 0, 0, 255, packet.ProtocolAH, 0, 0}
	hdr = append(append(hdr, src.AsSlice()...), dst.AsSlice()...)
	binary.BigEndian.PutUint16(hdr[2:], uint16(len(hdr)+len(payload)))
	if n := testing.AllocsPerRun(100, func() {
		if err := ahSeal(in)(hdr, payload); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("sealing an advert: %v allocations, want 0", n)
	}
	d, _, err := packet.ParseDatagram(append(slices.Clone(hdr), payload...))
	if err != nil || !d.Verify(s.VRRP.AuthPass, false) {
		t.Fatalf("the kept seal's ICV does not verify (%v)", err)
	}
	s2 := ahInstance(vrrp.StateMaster, 100, "other")
	in.spec = &s2
	if err := ahSeal(in)(hdr, payload); err != nil {
		t.Fatal(err)
	}
	d, _, _ = packet.ParseDatagram(append(slices.Clone(hdr), payload...))
	if !d.Verify(s2.VRRP.AuthPass, false) || d.Verify(s.VRRP.AuthPass, false) {
		t.Error("after a change of auth_pass the seal still uses the old key")
	}
}

// BenchmarkAHSeal: sealing one AH advert with the instance's kept seal.
func BenchmarkAHSeal(b *testing.B) {
	s := ahInstance(vrrp.StateMaster, 100, "secret12")
	in := &instance{spec: &s}
	src, dst := netip.MustParseAddr("192.168.1.105"), packet.MulticastIPv4()
	payload := append(packet.NewAH(src, 1).Append(nil), make([]byte, 16)...)
	hdr := []byte{0x45, 0xc0, 0, 0, 0, 1, 0, 0, 255, packet.ProtocolAH, 0, 0}
	hdr = append(append(hdr, src.AsSlice()...), dst.AsSlice()...)
	b.ReportAllocs()
	for b.Loop() {
		if err := ahSeal(in)(hdr, payload); err != nil {
			b.Fatal(err)
		}
	}
}
