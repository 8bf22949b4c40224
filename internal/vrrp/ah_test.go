package vrrp

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// ahCfg is v2cfg with `auth_type AH` and auth_pass secret12.
func ahCfg() Config {
	return with(v2cfg(), func(c *Config) {
		c.Name, c.AuthType, c.AuthPass = "VI_AH", packet.AuthAH, [8]byte{'s', 'e', 'c', 'r', 'e', 't', '1', '2'}
	})
}

// ipv4Header is the header keepalived (and vrrpnet) sends an AH advert
// with: TOS 0xc0, no flags, TTL 255, protocol 51. The checksum is left
// zero: the ICV does not cover it.
func ipv4Header(src, dst netip.Addr, id uint16, payloadLen int) []byte {
	s, d := src.As4(), dst.As4()
	h := []byte{0x45, 0xc0, 0, 0, 0, 0, 0, 0, 255, packet.ProtocolAH, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(20+payloadLen))
	binary.BigEndian.PutUint16(h[4:], id)
	return append(append(h, s[:]...), d[:]...)
}

// sealed is the datagram an instance with configuration c sends for s, as
// the engine builds it: IPv4 header, AH with s.AHSeq, the advert, sealed
// with c.AuthPass.
func sealed(c Config, s SendAdvert, src, dst netip.Addr, id uint16) ([]byte, error) {
	payload, err := s.Advert.Append(packet.NewAH(src, s.AHSeq).Append(nil), src, dst)
	if err != nil {
		return nil, err
	}
	hdr := ipv4Header(src, dst, id, len(payload))
	if err := packet.Seal(hdr, payload, c.AuthPass, c.Unicast); err != nil {
		return nil, err
	}
	return append(hdr, payload...), nil
}

// opened is what the engine delivers for an AH datagram.
func opened(b []byte) (Received, error) {
	d, msg, err := packet.ParseDatagram(b)
	if err != nil {
		return Received{}, err
	}
	src, dst := netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
	a, err := packet.Parse(msg, src, dst)
	if err != nil {
		return Received{}, err
	}
	return Received{Src: src, TTL: int(b[8]), Unicast: !dst.IsMulticast(), Advert: a, AH: &d}, nil
}

// ahRx is a valid AH advert for configuration c from src at priority p with
// sequence number seq, sealed with c's auth_pass (edit the Config to seal
// with another) and received with TTL 255.
func ahRx(t testing.TB, c Config, src netip.Addr, p uint8, seq uint32, edits ...func(*Config)) Received {
	t.Helper()
	sc := c
	sc.Source = src
	for _, e := range edits {
		e(&sc)
	}
	dst := packet.MulticastIPv4()
	if c.Unicast {
		dst = c.Source
	}
	b, err := sealed(sc, SendAdvert{Priority: p, Advert: advertOf(sc, p), AHSeq: seq}, src, dst, 7)
	if err != nil {
		t.Fatal(err)
	}
	r, err := opened(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sendAH(c Config, p uint8, seq uint32) SendAdvert {
	s := send(c, p)
	s.AHSeq = seq
	return s
}

func TestAHConfig(t *testing.T) {
	if _, err := New(ahCfg()); err != nil {
		t.Fatalf("VRRPv2 IPv4 with AH: %v", err)
	}
	v6 := with(ahCfg(), func(c *Config) { c.Source, c.VIPs = self6, []netip.Addr{vip6} })
	if _, err := New(v6); err == nil || !strings.Contains(err.Error(), "no authentication") {
		t.Errorf("AH over IPv6: %v, want refused (keepalived drops it: config layer)", err)
	}
	v3 := with(v3cfg(), func(c *Config) { c.AuthType = packet.AuthAH })
	if _, err := New(v3); err == nil {
		t.Errorf("AH with VRRPv3 accepted")
	}
}

// TestAHScenarios: keepalived 2.2.7's sequence number rules (ah.go), each
// against what vrrp.c does.
func TestAHScenarios(t *testing.T) {
	c := ahCfg()
	mdi := masterDown(2, 100, time.Second, 3)
	start := step{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "start")}, state: StateBackup, deadline: mdi}
	s := time.Second
	wrongKey := func(k *Config) { k.AuthPass[0] ^= 1 }
	drop := func(r DropReason) []Action { return []Action{dropped(r, higher4)} }

	t.Run("backup follows the master's sequence, drops replays and forgeries, continues it as master", func(t *testing.T) {
		// A valid ICV over an SPI that is not the source.
		b, err := sealed(c, SendAdvert{Priority: 150, Advert: advertOf(c, 150), AHSeq: 9}, higher4, packet.MulticastIPv4(), 1)
		if err != nil {
			t.Fatal(err)
		}
		b[20+7]++
		if err := packet.Seal(b[:20], b[20:], c.AuthPass, false); err != nil {
			t.Fatal(err)
		}
		spi, err := opened(b)
		if err != nil {
			t.Fatal(err)
		}
		inst := runScenario(t, c, []step{
			start,
			{at: 1 * s, ev: ahRx(t, c, higher4, 150, 5), state: StateBackup, deadline: 1*s + mdi},
			// keepalived vrrp_in_chk_ipsecah: "sequence number %u already processed".
			{at: 2 * s, ev: ahRx(t, c, higher4, 150, 5), want: drop(DropAHSequence), state: StateBackup, deadline: 1*s + mdi},
			{at: 2 * s, ev: ahRx(t, c, higher4, 150, 3), want: drop(DropAHSequence), state: StateBackup, deadline: 1*s + mdi},
			// "invalid IPSEC HMAC-MD5 value": another auth_pass; the counter stays.
			{at: 2 * s, ev: ahRx(t, c, higher4, 150, 8, wrongKey), want: drop(DropAuthFailure), state: StateBackup, deadline: 1*s + mdi},
			// "invalid IPSEC SPI value".
			{at: 2 * s, ev: spi, want: drop(DropAuthFailure), state: StateBackup, deadline: 1*s + mdi},
			{at: 2 * s, ev: ahRx(t, c, higher4, 150, 6), state: StateBackup, deadline: 2*s + mdi},
			// The master goes quiet: we continue its sequence (keepalived's
			// capture: the backup's first advert carried 8 after the
			// master's 7).
			{at: 2*s + mdi, ev: Timeout{}, want: []Action{sendAH(c, 100, 7), TakeOver{}, trans(StateBackup, StateMaster, "")}, state: StateMaster},
			{at: 3*s + mdi, ev: Timeout{}, want: []Action{sendAH(c, 100, 8)}, state: StateMaster},
			// The priority-0 advert takes a number too.
			{at: 3*s + mdi, ev: Stop{}, want: []Action{sendAH(c, 0, 9), Release{}, trans(StateMaster, StateStopped, "stop")}, state: StateStopped},
		})
		if got := inst.Status().AHSequence; got != 9 {
			t.Errorf("AHSequence %d, want 9", got)
		}
	})

	t.Run("a valid advert moves the counter even when a later check drops it", func(t *testing.T) {
		runScenario(t, c, []step{
			start,
			{at: 1 * s, ev: ahRx(t, c, higher4, 50, 10, func(k *Config) { k.AdvertInt = 2 * s }), want: drop(DropInterval), state: StateBackup},
			{at: 1 * s, ev: ahRx(t, c, higher4, 150, 10), want: drop(DropAHSequence), state: StateBackup},
			{at: 1 * s, ev: ahRx(t, c, higher4, 150, 11), state: StateBackup, deadline: 1*s + mdi},
		})
	})

	t.Run("master answers a lower priority from its sequence number plus one", func(t *testing.T) {
		up, m := toMaster(c)
		up[1].want[0] = sendAH(c, 100, 1)
		inst := runScenario(t, c, concat(up, []step{
			// keepalived vrrp_state_master_rx: "IPSEC-AH : Syncing seq_num
			// - Increment seq": 40+1, then the advert increments.
			{at: m + s/2, ev: ahRx(t, c, lower4, 50, 40), want: []Action{sendAH(c, 100, 42), LowerPriorityAdvert{Src: lower4, Priority: 50}}, state: StateMaster},
			{at: m + s/2, ev: ahRx(t, c, lower4, 50, 40), want: []Action{dropped(DropAHSequence, lower4)}, state: StateMaster},
			{at: m + 3*s/2, ev: Timeout{}, want: []Action{sendAH(c, 100, 43)}, state: StateMaster},
		}))
		if got := inst.Status().AHSequence; got != 43 {
			t.Errorf("AHSequence %d, want 43", got)
		}
	})

	t.Run("a restarted higher priority router is heard once its sequence passes ours", func(t *testing.T) {
		up, m := toMaster(c)
		up[1].want[0] = sendAH(c, 100, 1)
		runScenario(t, c, concat(up, []step{
			{at: m + s, ev: Timeout{}, want: []Action{sendAH(c, 100, 2)}, state: StateMaster},
			// An address owner that restarted starts from 1: a replay to us.
			{at: m + 3*s/2, ev: ahRx(t, c, higher4, 255, 1), want: drop(DropAHSequence), state: StateMaster},
			{at: m + 3*s/2, ev: ahRx(t, c, higher4, 255, 2), want: drop(DropAHSequence), state: StateMaster},
			{at: m + 3*s/2, ev: ahRx(t, c, higher4, 255, 3), want: []Action{sendAH(c, 100, 4), Release{}, trans(StateMaster, StateBackup, "higher priority")}, state: StateBackup},
		}))
	})

	t.Run("a counter past 0xFFFFFFFD stops, and restarts from 0 at the next takeover", func(t *testing.T) {
		const top = 0xFFFFFFFE
		runScenario(t, c, []step{
			start,
			{at: 1 * s, ev: ahRx(t, c, higher4, 150, top), state: StateBackup, deadline: 1*s + mdi},
			{at: 1*s + mdi, ev: Timeout{}, want: []Action{sendAH(c, 100, top), TakeOver{}, trans(StateBackup, StateMaster, "")}, state: StateMaster},
			{at: 2*s + mdi, ev: Timeout{}, want: []Action{sendAH(c, 100, top)}, state: StateMaster},
			{at: 2*s + mdi, ev: LinkChanged{Up: false}, want: []Action{sendAH(c, 0, top), Release{}, trans(StateMaster, StateFault, "")}, state: StateFault},
			{at: 3 * s, ev: LinkChanged{Up: true}, want: []Action{trans(StateFault, StateBackup, "")}, state: StateBackup, deadline: 3*s + mdi},
			// keepalived vrrp_state_goto_master: "we reset the anti-replay".
			{at: 3*s + mdi, ev: Timeout{}, want: []Action{sendAH(c, 100, 1), TakeOver{}, trans(StateBackup, StateMaster, "")}, state: StateMaster},
		})
	})

	t.Run("AH and plain adverts do not mix", func(t *testing.T) {
		plain := rx(c, higher4, 150) // auth type 2 in the message, no AH header
		pass := v2cfg()
		withAH := ahRx(t, c, higher4, 150, 1)
		passAH := withAH
		passAH.Advert = advertOf(pass, 150)
		runScenario(t, c, []step{start,
			{at: s, ev: plain, want: drop(DropAuthType), state: StateBackup, deadline: mdi},
		})
		runScenario(t, pass, []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "start")}, state: StateBackup},
			{at: s, ev: withAH, want: drop(DropAuthType), state: StateBackup},
			{at: s, ev: passAH, want: drop(DropAuthType), state: StateBackup},
		})
	})

	t.Run("unicast: the TTL is outside the ICV, a multicast-sealed advert fails", func(t *testing.T) {
		u := with(c, func(k *Config) { k.Unicast, k.Peers = true, []Peer{{Addr: higher4}} })
		r := ahRx(t, u, higher4, 150, 1)
		r.TTL = 64
		r.AH.IPHeader[8] = 64
		multi := ahRx(t, u, higher4, 150, 2, func(k *Config) { k.Unicast = false })
		runScenario(t, u, []step{start,
			{at: s, ev: r, state: StateBackup, deadline: s + mdi},
			{at: s, ev: multi, want: drop(DropAuthFailure), state: StateBackup, deadline: s + mdi},
		})
	})
}

// TestAHKeepalivedCaptureDrivesABackup: the adverts keepalived 2.2.7 sent
// with AH (packet/testdata/vrrpv2-ah.hex) keep a vigil backup at priority
// 50 (auth_pass secret12); its priority-0 advert (sequence 7) hands over,
// and vigil's first advert carries 8, as the other keepalived's did in the
// same capture.
func TestAHKeepalivedCaptureDrivesABackup(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("packet", "testdata", "vrrpv2-ah.hex"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(raw))
	capture := func(n int) Received {
		b, err := hex.DecodeString(lines[n])
		if err != nil {
			t.Fatal(err)
		}
		r, err := opened(b[14:])
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	c := with(ahCfg(), func(c *Config) { c.Source, c.Priority = lower4, 50 })
	mdi := masterDown(2, 50, time.Second, 3)
	const skew50 = 804687 * time.Microsecond
	s := time.Second
	steps := []step{{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi}}
	// Lines 0, 2, ..., 10: VRID 55, sequence 1 to 6.
	for n := 0; n <= 10; n += 2 {
		at := time.Duration(n/2+1) * s
		steps = append(steps, step{at: at, ev: capture(n), state: StateBackup, deadline: at + mdi})
	}
	steps = append(steps,
		step{at: 7 * s, ev: capture(0), want: []Action{dropped(DropAHSequence, ka)}, state: StateBackup, deadline: 6*s + mdi},
		step{at: 7 * s, ev: capture(12), state: StateBackup, deadline: 7*s + skew50},
		step{at: 7*s + skew50, ev: Timeout{}, want: []Action{sendAH(c, 50, 8), TakeOver{}, trans(StateBackup, StateMaster, "")}, state: StateMaster},
	)
	runScenario(t, c, steps)
}

var ka = netip.MustParseAddr("192.168.1.105")

// TestLANAH: two routers with AH on the in-memory LAN, every advert sealed
// and verified: the backup tracks the master's sequence; the master
// restarts (counter 0, BACKUP first), learns the sequence from the new
// master and preempts it without a replay drop.
func TestLANAH(t *testing.T) {
	base := ahCfg()
	l := newLAN(t, map[string]Config{"A": lanCfg(base, higher4, 150), "B": lanCfg(base, lower4, 100)})
	for _, r := range l.routers {
		l.do(r.name, Start{})
	}
	l.run(10 * time.Second)
	a, b := l.router("A"), l.router("B")
	if h := l.holders(); !slices.Equal(h, []string{"A"}) {
		t.Fatalf("holders %v", h)
	}
	sa, sb := a.inst.Status(), b.inst.Status()
	if sa.AHSequence < 5 || sb.AHSequence != sa.AHSequence {
		t.Fatalf("sequence: master %d, backup %d", sa.AHSequence, sb.AHSequence)
	}
	l.do("A", Stop{})
	l.run(15 * time.Second)
	if h := l.holders(); !slices.Equal(h, []string{"B"}) {
		t.Fatalf("after A stopped: holders %v", h)
	}
	inst, err := New(a.inst.Config())
	if err != nil {
		t.Fatal(err)
	}
	a.inst = inst
	l.do("A", Start{})
	l.events = nil
	l.run(25 * time.Second)
	if h := l.holders(); !slices.Equal(h, []string{"A"}) {
		t.Fatalf("after A restarted: holders %v\n%s", h, strings.Join(l.events, "\n"))
	}
	for _, r := range l.routers {
		st := r.inst.Status().Counters
		for _, reason := range []DropReason{DropAHSequence, DropAuthFailure, DropAuthType} {
			if n := st.DroppedFor(reason); n > 0 {
				t.Errorf("%s dropped %d adverts: %v", r.name, n, reason)
			}
		}
	}
	if sa, sb := a.inst.Status().AHSequence, b.inst.Status().AHSequence; sa != sb {
		t.Errorf("sequence after the restart: A %d, B %d", sa, sb)
	}
}
