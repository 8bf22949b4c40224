package machine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func cfgFor(self, other string, home string) Config {
	return Config{
		Self: self, Peers: []string{other}, Media: []string{"eth1", "eth0"},
		Keepalive: 200 * time.Millisecond, Deadtime: time.Second, Warntime: 500 * time.Millisecond, Initdead: 2 * time.Second,
		AutoFailback: true,
		Groups:       []GroupSpec{{Name: "vip", Local: home == self}, {Name: "web", Local: home == self}},
	}
}

// sim connects two machines through two media and runs resource actions
// instantly (or failing), checking that both never hold a group while any
// medium connects them.
type sim struct {
	t       *testing.T
	now     time.Time
	m       map[string]*Machine
	up      map[string]bool // machine running
	cut     [2]bool         // medium cut
	fail    map[string]bool // node/group whose acquire fails
	holder  map[string]map[string]bool
	log     []string
	stopped map[string]bool
	queue   []func()
	grace   time.Time // a healed partition settles until then
	// serial runs resource actions as the runtime does: one at a time, in
	// order, each taking effect only when work runs it (a slow resource
	// script is one work call away).
	serial bool
	ops    map[string][]Action
	msgs   map[string][]string // each node's log lines (Log actions)
}

func newSim(t *testing.T, a, b Config) *sim {
	s := &sim{t: t, now: t0, m: map[string]*Machine{a.Self: New(a), b.Self: New(b)},
		up: map[string]bool{}, fail: map[string]bool{}, holder: map[string]map[string]bool{a.Self: {}, b.Self: {}}, stopped: map[string]bool{},
		ops: map[string][]Action{}, msgs: map[string][]string{}}
	return s
}

func (s *sim) other(n string) string {
	for k := range s.m {
		if k != n {
			return k
		}
	}
	return ""
}

func (s *sim) connected() bool { return !s.cut[0] || !s.cut[1] }

func (s *sim) step(n string, ev Event) {
	if !s.up[n] {
		if _, ok := ev.(Start); !ok {
			return
		}
		s.up[n] = true
	}
	for _, a := range s.m[n].Step(s.now, ev) {
		s.exec(n, a)
	}
}

func (s *sim) deliver(from string, ev Event, status NodeStatus) {
	to := s.other(from)
	for i := range 2 {
		if s.cut[i] {
			continue
		}
		i := i
		s.queue = append(s.queue, func() { s.step(to, Heard{Node: from, Medium: i, Status: status, PingUp: -1}) })
	}
	if ev != nil && s.connected() {
		s.queue = append(s.queue, func() { s.step(to, ev) })
	}
}

func (s *sim) exec(n string, a Action) {
	switch a.(type) {
	case Acquire, Release:
		if s.serial {
			s.ops[n] = append(s.ops[n], a)
			return
		}
	}
	switch a := a.(type) {
	case Log:
		s.msgs[n] = append(s.msgs[n], a.Msg)
	case SendStatus:
		s.deliver(n, nil, a.Status)
	case SendStarting:
		s.deliver(n, PeerStarting{Node: n}, "")
	case SendResources:
		s.deliver(n, PeerResources{Node: n, Holds: a.Holds, Stable: a.Stable, HasStable: true, Info: a.Info}, "")
	case SendAsk:
		s.deliver(n, AskResources{Node: n, Info: a.Info, Rsc: a.Rsc}, "")
	case SendShutdone:
		s.deliver(n, PeerShutdone{Node: n}, "")
	case Acquire:
		var err error
		if s.fail[n+"/"+a.Group] {
			err = errors.New("start failed")
		} else {
			s.holder[n][a.Group] = true
		}
		s.log = append(s.log, fmt.Sprintf("%v %s acquire %s", s.now.Sub(t0), n, a.Group))
		s.queue = append(s.queue, func() { s.step(n, Done{Group: a.Group, Acquire: true, Err: err}) })
	case Release:
		delete(s.holder[n], a.Group)
		s.log = append(s.log, fmt.Sprintf("%v %s release %s", s.now.Sub(t0), n, a.Group))
		s.queue = append(s.queue, func() { s.step(n, Done{Group: a.Group}) })
	case Stopped:
		s.stopped[n] = true
		s.up[n] = false
	}
}

// work runs n's oldest pending resource action (serial mode), then
// delivers what follows. A node that stopped still finishes its queue, as
// the runtime's worker does before the process exits.
func (s *sim) work(n string) {
	s.t.Helper()
	if len(s.ops[n]) == 0 {
		s.t.Fatalf("%s has no pending resource action", n)
	}
	a := s.ops[n][0]
	s.ops[n] = s.ops[n][1:]
	serial := s.serial
	s.serial = false
	s.exec(n, a)
	s.serial = serial
	s.drain()
}

func (s *sim) drain() {
	for len(s.queue) > 0 {
		f := s.queue[0]
		s.queue = s.queue[1:]
		f()
		s.check()
	}
}

func (s *sim) check() {
	if !s.connected() || s.now.Before(s.grace) {
		return
	}
	for _, g := range []string{"vip", "web"} {
		n := 0
		for node, h := range s.holder {
			// A stopped node counts: it said it released everything.
			if h[g] && (s.up[node] || s.stopped[node]) {
				n++
			}
		}
		if n > 1 {
			s.t.Fatalf("%v: both nodes hold %s while connected\n%s", s.now.Sub(t0), g, strings.Join(s.log, "\n"))
		}
	}
}

// run advances time in 50 ms steps for d, ticking machines at their deadlines.
func (s *sim) run(d time.Duration) {
	end := s.now.Add(d)
	for s.now.Before(end) {
		s.now = s.now.Add(50 * time.Millisecond)
		for n, m := range s.m {
			if s.up[n] {
				if dl := m.Deadline(); !dl.IsZero() && !s.now.Before(dl) {
					s.step(n, Tick{})
				}
			}
		}
		s.drain()
	}
}

func (s *sim) holds(n string) string {
	var g []string
	for _, x := range []string{"vip", "web"} {
		if s.holder[n][x] {
			g = append(g, x)
		}
	}
	return strings.Join(g, ",")
}

func (s *sim) want(t *testing.T, what string, a, b string) {
	t.Helper()
	if got := [2]string{s.holds("ha1"), s.holds("ha2")}; got != [2]string{a, b} {
		t.Fatalf("%s: ha1 holds %q ha2 holds %q, want %q %q\n%s", what, got[0], got[1], a, b, strings.Join(s.log, "\n"))
	}
}

func pair(t *testing.T, autoFailback bool) *sim {
	a, b := cfgFor("ha1", "ha2", "ha1"), cfgFor("ha2", "ha1", "ha1")
	a.AutoFailback, b.AutoFailback = autoFailback, autoFailback
	s := newSim(t, a, b)
	s.step("ha1", Start{})
	s.step("ha2", Start{})
	s.drain()
	s.run(2 * time.Second)
	s.want(t, "after start", "vip,web", "")
	return s
}

// hb_resource.c: both nodes start together; after RQSTDELAY each takes its
// local resources, in haresources order.
func TestBothStartHomeTakesLocal(t *testing.T) {
	s := pair(t, true)
	if diff := cmp.Diff([]string{"1s ha1 acquire vip", "1s ha1 acquire web"}, s.log); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// mach_down: the peer silent on every medium for deadtime is dead; the
// survivor takes everything within deadtime + one keepalive.
func TestPeerDeadTakeover(t *testing.T) {
	s := pair(t, true)
	s.up["ha1"] = false // kill -9 (power off: its addresses go with it)
	s.holder["ha1"] = map[string]bool{}
	s.log = nil
	s.run(1500 * time.Millisecond)
	s.want(t, "ha1 dead", "", "vip,web")
	if s.m["ha2"].PeerStatus("ha1") != StatusDead {
		t.Fatal("ha1 not dead")
	}
	var took time.Duration
	fmt.Sscanf(strings.Fields(s.log[0])[0], "%v", &took)
	d, _ := time.ParseDuration(strings.Fields(s.log[0])[0])
	if d-2*time.Second > 1200*time.Millisecond {
		t.Errorf("takeover %v after death, want <= deadtime+keepalive", d-2*time.Second)
	}
}

// One medium cut: the other still carries heartbeats, nothing moves.
func TestOneMediumCutNoTakeover(t *testing.T) {
	s := pair(t, true)
	s.cut[0] = true
	s.run(3 * time.Second)
	s.want(t, "eth1 cut", "vip,web", "")
	ps := s.m["ha2"].Peers()[0]
	if ps.Status != StatusActive || ps.Links[0].Up || !ps.Links[1].Up {
		t.Errorf("peer state %+v", ps)
	}
}

// Full partition: both hold (heartbeat's split brain); on heal the node
// that is not home releases.
func TestPartitionHeals(t *testing.T) {
	s := pair(t, true)
	s.cut = [2]bool{true, true}
	s.run(2 * time.Second)
	s.want(t, "partitioned", "vip,web", "vip,web")
	// heartbeat itself restarts after a healed partition; vigil lets the
	// node that is not home release within a status round.
	s.cut = [2]bool{false, false}
	s.grace = s.now.Add(500 * time.Millisecond)
	s.run(2 * time.Second)
	s.want(t, "healed", "vip,web", "")
}

// Graceful stop: release, t=shutdone, the peer takes over at once (no
// deadtime wait); auto_failback on returns the group when ha1 restarts.
func TestGracefulStopAndAutoFailback(t *testing.T) {
	s := pair(t, true)
	s.log = nil
	s.step("ha1", Stop{})
	s.drain()
	if !s.stopped["ha1"] {
		t.Fatal("ha1 did not stop")
	}
	s.want(t, "ha1 stopped", "", "vip,web")
	want := []string{"2s ha1 release web", "2s ha1 release vip", "2s ha2 acquire vip", "2s ha2 acquire web"}
	if diff := cmp.Diff(want, s.log); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	s.m["ha1"] = New(cfgFor("ha1", "ha2", "ha1"))
	s.step("ha1", Start{})
	s.drain()
	s.run(2 * time.Second)
	s.want(t, "auto_failback", "vip,web", "")
}

// A graceful stop while the groups are still being acquired (a slow
// resource script): the release is queued behind the acquisitions, and
// t=shutdone goes out only once it ran, so ha2 takes over nothing ha1
// still holds. heartbeat's hb_giveup_resources likewise waits until
// resource activity finishes ("Shutdown delayed until current resource
// activity finishes"). The Done of an acquisition used to end the group's
// busy state while its release was still queued: ha1 said shutdone with
// the address still up, and both held it until the release ran.
func TestStopWhileAcquiring(t *testing.T) {
	for _, c := range []struct {
		started  int
		webFails bool
	}{{0, false}, {1, false}, {0, true}} {
		t.Run(fmt.Sprintf("%d of 2 acquired, web fails %v", c.started, c.webFails), func(t *testing.T) {
			s := newSim(t, cfgFor("ha1", "ha2", "ha1"), cfgFor("ha2", "ha1", "ha1"))
			s.serial = true
			s.fail["ha1/web"] = c.webFails
			s.step("ha1", Start{})
			s.step("ha2", Start{})
			s.drain()
			s.run(1100 * time.Millisecond) // RQSTDELAY: ha1 starts acquiring
			if len(s.ops["ha1"]) != 2 {
				t.Fatalf("ha1 pending %v, want two acquisitions", s.ops["ha1"])
			}
			for range c.started {
				s.work("ha1")
			}
			s.step("ha1", Stop{})
			s.drain()
			// ha2's resource scripts are quick, ha1's slow: ha2 acquires as
			// soon as it is told to; check fails on any overlap.
			for len(s.ops["ha1"])+len(s.ops["ha2"]) > 0 {
				for len(s.ops["ha2"]) > 0 {
					s.work("ha2")
				}
				if len(s.ops["ha1"]) > 0 {
					s.work("ha1")
				}
			}
			if !s.stopped["ha1"] {
				t.Fatal("ha1 did not stop")
			}
			s.want(t, "ha1 stopped", "", "vip,web")
		})
	}
}

// auto_failback off: the group stays where it is when its home returns.
func TestNoAutoFailback(t *testing.T) {
	s := pair(t, false)
	s.step("ha1", Stop{})
	s.drain()
	c := cfgFor("ha1", "ha2", "ha1")
	c.AutoFailback = false
	s.m["ha1"] = New(c)
	s.step("ha1", Start{})
	s.drain()
	s.run(3 * time.Second)
	s.want(t, "home back, no failback", "", "vip,web")
}

// A resource that fails to start: the node releases the group and the
// peer takes it through the standby exchange.
func TestFailedStartHandsOver(t *testing.T) {
	a, b := cfgFor("ha1", "ha2", "ha1"), cfgFor("ha2", "ha1", "ha1")
	s := newSim(t, a, b)
	s.fail["ha1/web"] = true
	s.step("ha1", Start{})
	s.step("ha2", Start{})
	s.drain()
	s.run(3 * time.Second)
	s.want(t, "web failed on ha1", "", "vip,web")
}

// ipfail: the holder reaching fewer ping nodes hands over; the group
// comes back (auto_failback) once ha1 reaches them again.
func TestIpfail(t *testing.T) {
	a, b := cfgFor("ha1", "ha2", "ha1"), cfgFor("ha2", "ha1", "ha1")
	a.PingNodes, b.PingNodes = 1, 1
	s := newSim(t, a, b)
	s.step("ha1", Start{})
	s.step("ha2", Start{})
	// Ping counts travel in status messages (Heard.PingUp) in the real
	// runtime; the sim tells each machine directly.
	tell := func(n string, up int) {
		s.step(n, PingChanged{Up: up})
		s.step(s.other(n), Heard{Node: n, Medium: 0, PingUp: up})
		s.drain()
	}
	tell("ha1", 1)
	tell("ha2", 1)
	s.run(2 * time.Second)
	s.want(t, "start", "vip,web", "")
	tell("ha1", 0)
	s.run(time.Second)
	s.want(t, "ha1 lost its ping node", "", "vip,web")
	tell("ha1", 1)
	s.run(time.Second)
	s.want(t, "ha1 reaches it again", "vip,web", "")
}

// The standby exchange (here ipfail's) ends as heartbeat's
// ask_for_resources does: the node giving its resources away logs "Local
// standby process completed", then takes the other's final done as
// "Other node completed standby takeover" (it logged a warning, "ignored
// standby message "done"", on every hand-over); the node taking them
// logs "Standby resource acquisition done". Both name the resources as
// the node going standby does.
func TestStandbyExchangeEnds(t *testing.T) {
	a, b := cfgFor("ha1", "ha2", "ha1"), cfgFor("ha2", "ha1", "ha1")
	a.PingNodes, b.PingNodes = 1, 1
	s := newSim(t, a, b)
	s.step("ha1", Start{})
	s.step("ha2", Start{})
	tell := func(n string, up int) {
		s.step(n, PingChanged{Up: up})
		s.step(s.other(n), Heard{Node: n, Medium: 0, PingUp: up})
		s.drain()
	}
	tell("ha1", 1)
	tell("ha2", 1)
	s.run(2 * time.Second)
	s.want(t, "start", "vip,web", "")
	s.msgs = map[string][]string{}
	tell("ha1", 0)
	s.run(time.Second)
	s.want(t, "ha1 lost its ping node", "", "vip,web")
	for n, want := range map[string][]string{
		"ha1": {"Local standby process completed [local].", "Other node completed standby takeover of local resources."},
		"ha2": {"ha1 wants to go standby [local]", "standby: acquire [local] resources from ha1", "Standby resource acquisition done [local]."},
	} {
		got := strings.Join(s.msgs[n], "\n")
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s logged no %q:\n%s", n, w, got)
			}
		}
		if strings.Contains(got, "ignored") {
			t.Errorf("%s ignored a message of the exchange:\n%s", n, got)
		}
	}
	if m := s.m["ha1"]; m.sb != sbNot {
		t.Errorf("ha1's standby state %d after the exchange, want sbNot", m.sb)
	}
	tell("ha1", 1)
	s.run(time.Second)
	s.want(t, "ha1 reaches it again", "vip,web", "")
}

// initdead: a peer never heard is declared dead only after initdead.
func TestInitdead(t *testing.T) {
	m := New(cfgFor("ha2", "ha1", "ha1"))
	m.Step(t0, Start{})
	if got := m.Step(t0.Add(1900*time.Millisecond), Tick{}); hasAcquire(got) {
		t.Fatalf("acquired before initdead: %v", got)
	}
	got := m.Step(t0.Add(2*time.Second), Tick{})
	if !hasAcquire(got) || m.PeerStatus("ha1") != StatusDead {
		t.Fatalf("at initdead: %v status %v", got, m.PeerStatus("ha1"))
	}
}

// warntime: a heartbeat later than warntime is logged (HBDoMsg_T_STATUS).
func TestWarntime(t *testing.T) {
	m := New(cfgFor("ha2", "ha1", "ha1"))
	m.Step(t0, Start{})
	m.Step(t0, Heard{Node: "ha1", Medium: 0, Status: StatusActive, PingUp: -1})
	got := m.Step(t0.Add(700*time.Millisecond), Heard{Node: "ha1", Medium: 0, Status: StatusActive, PingUp: -1})
	want := []Action{Log{Warn: true, Msg: "Late heartbeat: Node ha1: interval 700 ms"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// deadtime counts from the last status message: other packets (a replayed
// status, an NS_ackmsg, anything heartbeat calls a duplicate) keep the link
// up, not the node (heartbeat.c process_clustermsg returns before
// HBDoMsg_T_STATUS for a duplicate). Otherwise an attacker replaying a
// dead peer's authenticated packets would keep its resources from moving.
func TestOnlyStatusKeepsPeerAlive(t *testing.T) {
	m := New(cfgFor("ha2", "ha1", "ha1"))
	m.Step(t0, Start{})
	m.Step(t0, Heard{Node: "ha1", Medium: 0, Status: StatusActive, PingUp: -1})
	var acquired bool
	for d := 100 * time.Millisecond; d <= 1500*time.Millisecond; d += 100 * time.Millisecond {
		acquired = hasAcquire(m.Step(t0.Add(d), Heard{Node: "ha1", Medium: 0, PingUp: -1})) || acquired
		acquired = hasAcquire(m.Step(t0.Add(d), Tick{})) || acquired
	}
	if m.PeerStatus("ha1") != StatusDead || !acquired {
		t.Errorf("ha1 silent but for non-status packets for 1.5 s (deadtime 1 s): status %v, acquired %v; want dead, true", m.PeerStatus("ha1"), acquired)
	}
}

func hasAcquire(as []Action) bool {
	for _, a := range as {
		if _, ok := a.(Acquire); ok {
			return true
		}
	}
	return false
}

func TestRscMirror(t *testing.T) {
	for in, want := range map[Rsc]Rsc{RscNone: RscNone, RscLocal: RscForeign, RscForeign: RscLocal, RscAll: RscAll} {
		if in.mirror() != want {
			t.Errorf("%v.mirror() = %v", in, in.mirror())
		}
	}
}

// A peer (or a forger) repeating a standby message this node ignores makes
// one log line per period, which then says how many it stood for.
func TestIgnoredStandbyMessageLogBounded(t *testing.T) {
	s := pair(t, true)
	m := s.m["ha1"]
	lines := func(d time.Duration) (n int, last string) {
		for range 100 {
			for _, a := range m.Step(s.now, AskResources{Node: "ha2", Info: "bogus", Rsc: RscAll}) {
				if l, ok := a.(Log); ok {
					n, last = n+1, l.Msg
				}
			}
			s.now = s.now.Add(d)
		}
		return n, last
	}
	if n, _ := lines(time.Millisecond); n != 1 {
		t.Fatalf("%d lines for 100 ignored standby messages in 0.1 s, want 1", n)
	}
	s.now = s.now.Add(10 * time.Second)
	if n, last := lines(0); n != 1 || !strings.Contains(last, "99 more") {
		t.Fatalf("%d lines after the period, last %q; want 1 saying 99 more", n, last)
	}
}

// A node that took everything over at initdead without ever hearing its
// peer (booted with its links down) asks the peer, when it comes into
// view, for its report (t=starting): heartbeat, which held its group all
// along, sends none on its own, and both would keep the group.
func TestPeerInViewAskedForItsReport(t *testing.T) {
	m := New(cfgFor("ha2", "ha1", "ha1"))
	m.Step(t0, Start{})
	if got := m.Step(t0.Add(2*time.Second), Tick{}); !hasAcquire(got) {
		t.Fatalf("no takeover at initdead: %v", got)
	}
	for _, g := range []string{"vip", "web"} {
		m.Step(t0.Add(2*time.Second), Done{Group: g, Acquire: true})
	}
	got := m.Step(t0.Add(5*time.Second), Heard{Node: "ha1", Medium: 0, Status: StatusActive, PingUp: -1})
	i := slices.IndexFunc(got, func(a Action) bool { _, ok := a.(SendStarting); return ok })
	j := slices.IndexFunc(got, func(a Action) bool { _, ok := a.(SendResources); return ok })
	if i < 0 || j < i {
		t.Fatalf("peer in view: %v, want t=starting then t=resource", got)
	}
	// Its report (all, heartbeat's view) makes us release what is its.
	got = m.Step(t0.Add(5*time.Second), PeerResources{Node: "ha1", Holds: RscAll, HasStable: true, Stable: true})
	if !slices.ContainsFunc(got, func(a Action) bool { _, ok := a.(Release); return ok }) {
		t.Fatalf("after ha1's report: %v, want releases", got)
	}
}

// The peer's report comes while our takeover is still starting the
// groups: once they are up, the groups that are the peer's are released
// (the report is not resent; both held the group for good).
func TestPeerReportDuringTakeover(t *testing.T) {
	m := New(cfgFor("ha2", "ha1", "ha1"))
	m.Step(t0, Start{})
	if got := m.Step(t0.Add(2*time.Second), Tick{}); !hasAcquire(got) {
		t.Fatalf("no takeover at initdead: %v", got)
	}
	m.Step(t0.Add(2100*time.Millisecond), Heard{Node: "ha1", Medium: 0, Status: StatusActive, PingUp: -1})
	if got := m.Step(t0.Add(2200*time.Millisecond), PeerResources{Node: "ha1", Holds: RscAll, HasStable: true, Stable: true}); slices.ContainsFunc(got, func(a Action) bool { _, ok := a.(Release); return ok }) {
		t.Fatalf("released while starting: %v", got)
	}
	m.Step(t0.Add(3*time.Second), Done{Group: "vip", Acquire: true})
	got := m.Step(t0.Add(3*time.Second), Done{Group: "web", Acquire: true})
	if !slices.ContainsFunc(got, func(a Action) bool { _, ok := a.(Release); return ok }) {
		t.Fatalf("groups up with ha1 holding them too: %v, want releases", got)
	}
}

// A peer back in view that does not answer the first t=starting (heartbeat
// took it before the status that brought us back into its view) is asked
// again at its next statuses, a bounded number of times.
func TestPeerInViewAskedAgain(t *testing.T) {
	m := New(cfgFor("ha2", "ha1", "ha1"))
	m.Step(t0, Start{})
	m.Step(t0.Add(2*time.Second), Tick{})
	for _, g := range []string{"vip", "web"} {
		m.Step(t0.Add(2*time.Second), Done{Group: g, Acquire: true})
	}
	starts := 0
	for i := range 20 {
		got := m.Step(t0.Add(5*time.Second+time.Duration(i)*200*time.Millisecond), Heard{Node: "ha1", Medium: 0, Status: StatusActive, PingUp: -1})
		for _, a := range got {
			if _, ok := a.(SendStarting); ok {
				starts++
			}
		}
	}
	if starts < 2 || starts > maxAsks {
		t.Fatalf("%d t=starting to a silent peer, want 2..%d", starts, maxAsks)
	}
}

// lastReport returns the last t=resource among actions.
func lastReport(t *testing.T, what string, got []Action) SendResources {
	t.Helper()
	for j := len(got) - 1; j >= 0; j-- {
		if r, ok := got[j].(SendResources); ok {
			return r
		}
	}
	t.Fatalf("%s: no t=resource in %v", what, got)
	return SendResources{}
}

// A node home of no group still claims its local class when it takes it,
// as heartbeat's req_our_resources and standby exchange set
// i_hold_resources whatever groups the class has: heartbeat on the other
// node audits the reports, and a class nobody claims while both are
// stable is its ERROR "No one owns foreign resources!". vigil reported
// "none" after taking its (empty) local class, at start and after
// heartbeat's auto_failback handed it back.
func TestGrouplessClassClaimed(t *testing.T) {
	cfg := cfgFor("ha1", "ha2", "ha2") // both groups are ha2's
	at := t0
	step := func(m *Machine, ev Event) []Action { at = at.Add(100 * time.Millisecond); return m.Step(at, ev) }

	// Start beside heartbeat holding its own groups: ha1 takes its
	// local class, which has no group, and says so.
	m := New(cfg)
	step(m, Start{})
	step(m, Heard{Node: "ha2", Medium: 0, Status: StatusActive, PingUp: -1})
	got := step(m, PeerResources{Node: "ha2", Holds: RscLocal, Stable: true, HasStable: true})
	if r := lastReport(t, "start", got); r.Holds != RscLocal || !r.Stable {
		t.Errorf("start beside heartbeat holding its own: reported %+v, want local, stable", r)
	}

	// Start while heartbeat holds everything (it took over when ha1
	// stopped): ha1 claims nothing, heartbeat's auto_failback hands the
	// class back through the standby exchange.
	at = t0
	m = New(cfg)
	step(m, Start{})
	step(m, Heard{Node: "ha2", Medium: 0, Status: StatusActive, PingUp: -1})
	if r := lastReport(t, "start", step(m, PeerResources{Node: "ha2", Holds: RscAll, Stable: true, HasStable: true})); r.Holds != RscNone {
		t.Errorf("start beside heartbeat holding all: reported %+v, want none", r)
	}
	step(m, AskResources{Node: "ha2", Info: "me", Rsc: RscForeign})
	step(m, PeerResources{Node: "ha2", Holds: RscLocal, Stable: false, HasStable: true, Info: "standby"})
	got = step(m, AskResources{Node: "ha2", Info: "done", Rsc: RscForeign})
	if !slices.ContainsFunc(got, func(a Action) bool { x, ok := a.(SendAsk); return ok && x.Info == "done" }) {
		t.Fatalf("standby done: %v, want t=ask_resources info=done", got)
	}
	if r := lastReport(t, "auto_failback", got); r.Holds != RscLocal || !r.Stable {
		t.Errorf("after auto_failback: reported %+v, want local, stable", r)
	}

	// A graceful stop gives the claim up.
	got = step(m, Stop{})
	if r := lastReport(t, "stop", got); r.Holds != RscNone || r.Info != "shutdown" {
		t.Errorf("stop: reported %+v, want none, shutdown", r)
	}
}

// The report a stopping node sends says it is unstable ("isstable 0"), as
// heartbeat's hb_giveup_resources: heartbeat, on the other node, audits a
// stable report of "none" as nobody owning that node's classes (ERROR "No
// one owns foreign resources!") before t=shutdone makes it take them.
func TestShutdownReportUnstable(t *testing.T) {
	s := pair(t, true)
	m := s.m["ha1"]
	got := m.Step(s.now, Stop{})
	for _, g := range []string{"web", "vip"} {
		got = append(got, m.Step(s.now, Done{Group: g})...)
	}
	r := lastReport(t, "stop", got)
	if r.Info != "shutdown" || r.Holds != RscNone || r.Stable {
		t.Errorf("stop: reported %+v, want none, shutdown, not stable", r)
	}
}
