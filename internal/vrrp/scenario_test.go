package vrrp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// t0 is the scenarios' origin; step times are offsets from it.
var t0 = time.Date(2026, 11, 22, 2, 27, 40, 0, time.UTC)

var (
	self4   = netip.MustParseAddr("192.168.1.105") // the instance under test
	higher4 = netip.MustParseAddr("192.168.1.106") // a peer with a greater address
	lower4  = netip.MustParseAddr("192.168.1.104") // a peer with a smaller address
	vip4    = netip.MustParseAddr("192.168.1.100")
	self6   = netip.MustParseAddr("fe80::105")
	higher6 = netip.MustParseAddr("fe80::106")
	lower6  = netip.MustParseAddr("fe80::104")
	vip6ll  = netip.MustParseAddr("fe80::100")
	vip6    = netip.MustParseAddr("2001:db8::100")
)

// v2cfg is the instance of the keepalived captures: VRID 55, priority 100,
// advert_int 1, auth PASS 1111, VIP 192.168.1.100.
func v2cfg() Config {
	return Config{Name: "VI_2", VRID: 55, Version: 2, Priority: 100, AdvertInt: time.Second,
		VIPs: []netip.Addr{vip4}, Source: self4,
		AuthType: packet.AuthPass, AuthPass: [8]byte{'1', '1', '1', '1'}}
}

// v3cfg is the same instance in VRRPv3.
func v3cfg() Config {
	return Config{Name: "VI_3", VRID: 55, Version: 3, Priority: 100, AdvertInt: time.Second,
		VIPs: []netip.Addr{vip4}, Source: self4}
}

// v6cfg is VRRPv3 over IPv6: link-local source, the VIPs in the advert.
func v6cfg() Config {
	return Config{Name: "VI_6", VRID: 55, Version: 3, Priority: 100, AdvertInt: time.Second,
		VIPs: []netip.Addr{vip6ll, vip6}, Source: self6}
}

func with(c Config, edit func(*Config)) Config { edit(&c); return c }

func us(n int64) time.Duration { return time.Duration(n) * time.Microsecond }

// advertOf is what an instance with configuration c sends at priority p.
func advertOf(c Config, p uint8) packet.Advert {
	a := packet.Advert{Version: c.Version, Type: 1, VRID: c.VRID, Priority: p,
		CountIPAddrs: uint8(len(c.VIPs)), Addrs: c.VIPs}
	if c.Version == 2 {
		a.AdvertInt = uint16(c.AdvertInt / time.Second)
		a.AuthType = c.AuthType
		if c.AuthType == packet.AuthPass {
			a.AuthData = c.AuthPass
		}
	} else {
		a.AdvertInt = uint16(c.AdvertInt / (10 * time.Millisecond))
	}
	return a
}

// send is the SendAdvert an instance with configuration c emits at priority p.
func send(c Config, p uint8) SendAdvert { return SendAdvert{Priority: p, Advert: advertOf(c, p)} }

// sendMode is send with a checksum mode.
func sendMode(c Config, p uint8, m packet.ChecksumMode) SendAdvert {
	s := send(c, p)
	s.Advert.ChecksumMode = m
	return s
}

// rx is a valid advert for configuration c from src at priority p, received
// with TTL 255 by multicast (unicast if c.Unicast). Edits adjust it.
func rx(c Config, src netip.Addr, p uint8, edits ...func(*Received)) Received {
	r := Received{Src: src, TTL: 255, Unicast: c.Unicast, Advert: advertOf(c, p)}
	for _, e := range edits {
		e(&r)
	}
	return r
}

func trans(from, to State, reason string) Transition {
	return Transition{From: from, To: to, Reason: reason}
}

func dropped(r DropReason, src netip.Addr) Dropped { return Dropped{Reason: r, Src: src} }

// noTimer as a step's deadline means Deadline() must be zero.
const noTimer time.Duration = -1

// step is one line of a scenario: at t0+at, deliver ev; the instance must
// return want (a Transition's Reason there must be a substring of the actual
// one, so "" matches any; a Dropped's Detail is not compared), be in state,
// and have its deadline at t0+deadline (0: not checked; noTimer: none).
type step struct {
	at       time.Duration
	ev       Event
	want     []Action
	state    State
	deadline time.Duration
}

func runScenario(t *testing.T, cfg Config, steps []step) *Instance {
	t.Helper()
	inst, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for n, s := range steps {
		got := inst.Step(t0.Add(s.at), s.ev)
		where := fmt.Sprintf("step %d (at %v, %T)", n, s.at, s.ev)
		if diff := diffActions(s.want, got); diff != "" {
			t.Fatalf("%s: actions (-want +got):\n%s", where, diff)
		}
		if inst.State() != s.state {
			t.Fatalf("%s: state %v, want %v", where, inst.State(), s.state)
		}
		switch d := inst.Deadline(); {
		case s.deadline == noTimer && !d.IsZero():
			t.Fatalf("%s: deadline %v, want none", where, d.Sub(t0))
		case s.deadline > 0 && !d.Equal(t0.Add(s.deadline)):
			t.Fatalf("%s: deadline %v, want %v", where, d.Sub(t0), s.deadline)
		}
	}
	return inst
}

var cmpOpts = cmp.Options{cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()}

// diffActions compares actions, matching Transition reasons by substring and
// ignoring Dropped details.
func diffActions(want, got []Action) string {
	norm := make([]Action, len(got))
	copy(norm, got)
	for k := range norm {
		if k >= len(want) {
			break
		}
		switch g := norm[k].(type) {
		case Transition:
			if w, ok := want[k].(Transition); ok && strings.Contains(g.Reason, w.Reason) {
				g.Reason = w.Reason
				norm[k] = g
			}
		case Dropped:
			g.Detail = ""
			norm[k] = g
		}
	}
	return cmp.Diff(want, norm, cmpOpts)
}

// toMaster brings an instance with configuration cfg to Master at t0+MDI and
// returns the steps doing so, and MDI.
func toMaster(cfg Config) ([]step, time.Duration) {
	c, err := cfg.validate()
	if err != nil {
		panic(err)
	}
	mdi := masterDown(c.Version, c.Priority, c.AdvertInt, c.DownTimerAdverts)
	return []step{
		{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "start")}, state: StateBackup, deadline: mdi},
		{at: mdi, ev: Timeout{}, want: []Action{send(c, c.Priority), TakeOver{}, trans(StateBackup, StateMaster, "master down timer expired")},
			state: StateMaster, deadline: mdi + c.AdvertInt},
	}, mdi
}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
