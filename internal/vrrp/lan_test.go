package vrrp

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"encoding/hex"

	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// lan is an in-memory multicast LAN: every advert a router sends is encoded
// with packet.Marshal, decoded with packet.Parse by every other connected
// router and delivered as Received at the same instant. Time only moves to
// the earliest deadline. It records TakeOver/Release/Transition as events.
type lan struct {
	t       *testing.T
	now     time.Time
	routers []*router
	queue   []frame
	events  []string
	holding map[string]time.Duration // router -> since when it holds the VIPs
}

type router struct {
	name      string
	inst      *Instance
	connected bool
	ipID      uint16 // IPv4 identification of its AH datagrams
}

type frame struct {
	from *router
	b    []byte
	src  netip.Addr
	dst  netip.Addr
}

func newLAN(t *testing.T, cfgs map[string]Config) *lan {
	l := &lan{t: t, now: t0, holding: map[string]time.Duration{}}
	names := make([]string, 0, len(cfgs))
	for n := range cfgs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		inst, err := New(cfgs[n])
		if err != nil {
			t.Fatal(err)
		}
		l.routers = append(l.routers, &router{name: n, inst: inst, connected: true})
	}
	return l
}

func (l *lan) router(name string) *router {
	for _, r := range l.routers {
		if r.name == name {
			return r
		}
	}
	l.t.Fatalf("no router %s", name)
	return nil
}

func (l *lan) at() time.Duration { return l.now.Sub(t0) }

func (l *lan) logf(format string, args ...any) {
	l.events = append(l.events, fmt.Sprintf("%v ", l.at())+fmt.Sprintf(format, args...))
}

func (l *lan) step(r *router, ev Event) {
	for _, a := range r.inst.Step(l.now, ev) {
		switch a := a.(type) {
		case SendAdvert:
			if !r.connected {
				continue
			}
			src := r.inst.Config().Source
			dst := packet.MulticastIPv4()
			if src.Is6() {
				dst = packet.MulticastIPv6()
			}
			var b []byte
			var err error
			if a.Advert.AuthType == packet.AuthAH {
				r.ipID++
				b, err = sealed(r.inst.Config(), a, src, dst, r.ipID)
			} else {
				b, err = a.Advert.Marshal(src, dst)
			}
			if err != nil {
				l.t.Fatalf("%s: Marshal: %v", r.name, err)
			}
			l.queue = append(l.queue, frame{from: r, b: b, src: src, dst: dst})
		case TakeOver:
			l.logf("%s TakeOver", r.name)
			if _, ok := l.holding[r.name]; ok {
				l.t.Fatalf("%s: TakeOver while holding", r.name)
			}
			l.holding[r.name] = l.at()
		case Release:
			l.logf("%s Release", r.name)
			if _, ok := l.holding[r.name]; !ok {
				l.t.Fatalf("%s: Release while not holding", r.name)
			}
			delete(l.holding, r.name)
		case Transition:
			l.logf("%s %v->%v", r.name, a.From, a.To)
		case HandoverStarted:
			l.logf("%s HandoverStarted", r.name)
		}
	}
}

// deliver drains the queue.
func (l *lan) deliver() {
	for len(l.queue) > 0 {
		f := l.queue[0]
		l.queue = l.queue[1:]
		for _, r := range l.routers {
			if r == f.from || !r.connected {
				continue
			}
			if f.b[0]>>4 == 4 && f.src.Is4() { // an AH datagram (plain messages start with version 2 or 3)
				rx, err := opened(f.b)
				if err != nil {
					l.t.Fatalf("%s -> %s: %v", f.from.name, r.name, err)
				}
				l.step(r, rx)
				continue
			}
			a, err := packet.Parse(f.b, f.src, f.dst)
			if err != nil {
				l.t.Fatalf("%s -> %s: Parse: %v", f.from.name, r.name, err)
			}
			l.step(r, Received{Src: f.src, TTL: packet.TTL, Advert: a})
		}
	}
}

// do delivers ev to the named router now and lets the LAN settle.
func (l *lan) do(name string, ev Event) {
	l.step(l.router(name), ev)
	l.deliver()
}

// run advances time through every deadline up to t0+until.
func (l *lan) run(until time.Duration) {
	end := t0.Add(until)
	for {
		l.deliver()
		var next time.Time
		for _, r := range l.routers {
			if d := r.inst.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if next.IsZero() || next.After(end) {
			l.now = end
			return
		}
		l.now = next
		for _, r := range l.routers {
			if d := r.inst.Deadline(); !d.IsZero() && !d.After(l.now) {
				l.step(r, Timeout{})
			}
		}
	}
}

func (l *lan) holders() []string {
	var h []string
	for n := range l.holding {
		h = append(h, n)
	}
	slices.Sort(h)
	return h
}

func (l *lan) expectEvents(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(l.events, want) {
		t.Fatalf("events:\n got  %s\n want %s", strings.Join(l.events, "\n      "), strings.Join(want, "\n      "))
	}
	l.events = nil
}

func lanCfg(base Config, src netip.Addr, prio uint8) Config {
	return with(base, func(c *Config) { c.Source, c.Priority = src, prio })
}

func TestLANElectionAndFailover(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			base := f.cfg()
			a, b, c := f.higher, base.Source, f.lower
			l := newLAN(t, map[string]Config{
				"A": lanCfg(base, a, 150), "B": lanCfg(base, b, 100), "C": lanCfg(base, c, 50),
			})
			for _, r := range l.routers {
				l.do(r.name, Start{})
			}
			l.events = nil
			l.run(10 * time.Second)
			// RFC 5798 §6.1: the highest priority has the shortest
			// Master_Down_Interval: 3 s + (256-150)/256 s.
			l.expectEvents(t, "3.414062s A TakeOver", "3.414062s A BACKUP->MASTER")
			if h := l.holders(); !slices.Equal(h, []string{"A"}) {
				t.Fatalf("holders %v", h)
			}
			// A stops: priority 0; B's Skew_Time (0.609375 s) beats C's.
			l.do("A", Stop{})
			l.run(20 * time.Second)
			l.expectEvents(t, "10s A Release", "10s A MASTER->STOP",
				"10.609375s B TakeOver", "10.609375s B BACKUP->MASTER")
			// A comes back, hears B's lower priority, preempts after its
			// Master_Down_Interval; B hears A's advert and releases.
			l.do("A", Start{})
			l.run(30 * time.Second)
			l.expectEvents(t, "20s A STOP->BACKUP",
				"23.414062s A TakeOver", "23.414062s A BACKUP->MASTER",
				"23.414062s B Release", "23.414062s B MASTER->BACKUP")
			// A's cable is cut: B takes over after its full interval.
			l.router("A").connected = false
			l.run(40 * time.Second)
			if h := l.holders(); !slices.Equal(h, []string{"A", "B"}) {
				t.Fatalf("split brain expected while A is cut off, holders %v", h)
			}
			l.router("A").connected = true
			l.run(50 * time.Second)
			if h := l.holders(); !slices.Equal(h, []string{"A"}) {
				t.Fatalf("after reconnect holders %v", h)
			}
		})
	}
}

// The point of Handover: the new master's TakeOver comes before the old
// master's Release, where a Stop leaves a gap of Skew_Time.
func TestLANHandoverMakeBeforeBreak(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			base := f.cfg()
			l := newLAN(t, map[string]Config{"A": lanCfg(base, f.higher, 150), "B": lanCfg(base, base.Source, 100)})
			l.do("A", Start{})
			l.do("B", Start{})
			l.run(10 * time.Second)
			l.events = nil
			l.do("A", Handover{})
			l.run(20 * time.Second)
			// B sees priority 0 and waits its Skew_Time, as after a stop; A
			// holds the addresses until B's first advert.
			l.expectEvents(t, "10s A HandoverStarted",
				"10.609375s B TakeOver", "10.609375s B BACKUP->MASTER",
				"10.609375s A Release", "10.609375s A MASTER->BACKUP")
			// A yields: it does not preempt B.
			l.run(60 * time.Second)
			l.expectEvents(t)
			l.do("A", Reclaim{})
			l.run(70 * time.Second)
			if h := l.holders(); !slices.Equal(h, []string{"A"}) {
				t.Fatalf("after Reclaim holders %v", h)
			}
		})
	}
	t.Run("HandoverOnStop", func(t *testing.T) {
		base := v3cfg()
		l := newLAN(t, map[string]Config{
			"A": with(lanCfg(base, higher4, 150), func(c *Config) { c.HandoverOnStop = true }),
			"B": lanCfg(base, self4, 100),
		})
		l.do("A", Start{})
		l.do("B", Start{})
		l.run(10 * time.Second)
		l.events = nil
		l.do("A", Stop{})
		l.run(20 * time.Second)
		l.expectEvents(t, "10s A HandoverStarted",
			"10.609375s B TakeOver", "10.609375s B BACKUP->MASTER",
			"10.609375s A Release", "10.609375s A MASTER->STOP")
	})
}

// The real keepalived 2.2.7 adverts of /work/shared/captures, decoded by
// packet.Parse, drive a vigil backup configured like that keepalived.
func TestKeepalivedCapturesDriveABackup(t *testing.T) {
	read := func(name string) Received {
		raw, err := os.ReadFile(filepath.Join("packet", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		ip := b[14:]
		src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		a, err := packet.Parse(ip[int(ip[0]&0x0f)*4:], src, dst)
		if err != nil {
			t.Fatal(err)
		}
		return Received{Src: src, TTL: int(ip[8]), Advert: a}
	}
	const skew50 = 804687 * time.Microsecond // (256-50)/256 s
	for _, tc := range []struct {
		name          string
		cfg           Config
		advert, prio0 string
		intervalSkew  time.Duration
	}{
		{"v2 PASS", with(v2cfg(), func(c *Config) { c.Source, c.Priority = lower4, 50 }), "vrrpv2-advert.hex", "vrrpv2-prio0.hex", skew50},
		{"v3", with(v3cfg(), func(c *Config) { c.Source, c.Priority = lower4, 50 }), "vrrpv3-advert.hex", "vrrpv3-prio0.hex", skew50},
		{"v3 10 cs", with(v3cfg(), func(c *Config) { c.Source, c.Priority, c.AdvertInt = lower4, 50, 100*time.Millisecond }),
			"vrrpv3-advert-10cs.hex", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mdi := masterDown(tc.cfg.Version, 50, tc.cfg.AdvertInt, 3)
			steps := []step{
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
				{at: time.Second, ev: read(tc.advert), state: StateBackup, deadline: time.Second + mdi},
			}
			if tc.prio0 != "" {
				steps = append(steps, step{at: 2 * time.Second, ev: read(tc.prio0), state: StateBackup, deadline: 2*time.Second + tc.intervalSkew})
			}
			inst := runScenario(t, tc.cfg, steps)
			if s := inst.Status(); s.MasterAddr != netip.MustParseAddr("192.168.1.105") || s.MasterPriority != 100 {
				t.Errorf("status %+v", s)
			}
		})
	}
	// A vigil master at a higher priority than keepalived's answers it.
	c := with(v2cfg(), func(c *Config) { c.Source, c.Priority = lower4, 200 })
	up, m := toMaster(c)
	runScenario(t, c, concat(up, []step{
		{at: m + time.Second/2, ev: read("vrrpv2-advert.hex"), want: []Action{send(c, 200), LowerPriorityAdvert{Src: self4, Priority: 100}}, state: StateMaster},
	}))
}
