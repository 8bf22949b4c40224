package vrrp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Two instances in a group: VI_A (VRID 51, VIP .51) and VI_B (VRID 52, VIP
// .52), priority 100, VRRPv3, 1 s.
func groupCfgs() (Config, Config) {
	a := with(v3cfg(), func(c *Config) {
		c.Name, c.VRID, c.VIPs = "VI_A", 51, []netip.Addr{netip.MustParseAddr("192.168.1.51")}
	})
	b := with(v3cfg(), func(c *Config) {
		c.Name, c.VRID, c.VIPs = "VI_B", 52, []netip.Addr{netip.MustParseAddr("192.168.2.52")}
	})
	return a, b
}

type gstep struct {
	at     time.Duration
	member int // -1: every member
	ev     Event
	want   []MemberAction
	states []State // of the members
	group  State
}

func ma(m int, a Action) MemberAction { return MemberAction{Member: m, Action: a} }

func gt(from, to State, reason string) MemberAction {
	return MemberAction{Member: -1, Action: GroupTransition{Group: "G", From: from, To: to, Reason: reason}}
}

func runGroup(t *testing.T, cfgs []Config, steps []gstep) *SyncGroup {
	t.Helper()
	var insts []*Instance
	for _, c := range cfgs {
		i, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, i)
	}
	g, err := NewSyncGroup("G", insts)
	if err != nil {
		t.Fatal(err)
	}
	for n, s := range steps {
		got := g.Step(t0.Add(s.at), s.member, s.ev)
		where := fmt.Sprintf("step %d (at %v, member %d, %T)", n, s.at, s.member, s.ev)
		if diff := diffMemberActions(s.want, got); diff != "" {
			t.Fatalf("%s: actions (-want +got):\n%s", where, diff)
		}
		var states []State
		for _, m := range g.Members() {
			states = append(states, m.State())
		}
		if diff := cmp.Diff(s.states, states); diff != "" || g.State() != s.group {
			t.Fatalf("%s: member states (-want +got):\n%s group %v, want %v", where, diff, g.State(), s.group)
		}
	}
	return g
}

func diffMemberActions(want, got []MemberAction) string {
	norm := make([]MemberAction, len(got))
	copy(norm, got)
	for k := range norm {
		if k >= len(want) || norm[k].Member != want[k].Member {
			continue
		}
		w, g := []Action{want[k].Action}, []Action{norm[k].Action}
		if diffActions(w, g) == "" {
			norm[k].Action = want[k].Action
		}
		if wg, ok := want[k].Action.(GroupTransition); ok {
			if gg, ok := norm[k].Action.(GroupTransition); ok && gg.From == wg.From && gg.To == wg.To && strings.Contains(gg.Reason, wg.Reason) {
				norm[k].Action = wg
			}
		}
	}
	return cmp.Diff(want, norm, cmpOpts)
}

func TestSyncGroup(t *testing.T) {
	const mdi = 3609375 * time.Microsecond
	a, b := groupCfgs()
	B, M, F := StateBackup, StateMaster, StateFault
	// keepalived 2.2.7 vrrp_init_state notifies a group that starts in
	// BACKUP, before its members.
	start := gstep{at: 0, member: -1, ev: Start{}, want: []MemberAction{
		gt(StateInit, B, "start"), ma(0, trans(StateInit, B, "start")), ma(1, trans(StateInit, B, "start")),
	}, states: []State{B, B}, group: B}
	masterB := rx(b, higher4, 150)
	// Both timers fire at the same instant: VI_A is refused (VI_B does not
	// want master yet), VI_B goes and takes VI_A along.
	bothMaster := []MemberAction{
		ma(1, send(b, 100)), ma(1, TakeOver{}), ma(1, trans(B, M, "master down timer expired")),
		ma(0, send(a, 100)), ma(0, TakeOver{}), ma(0, trans(B, M, "sync group G: member VI_B went MASTER")),
		gt(B, M, "member VI_B went MASTER"),
	}

	t.Run("keepalived notify_shutdown: the group is STOP once its members are, also after a handover", func(t *testing.T) {
		S := StateStopped
		runGroup(t, []Config{a, b}, []gstep{
			start,
			{at: 3 * time.Second, member: -1, ev: Stop{}, want: []MemberAction{
				ma(0, trans(B, S, "stop")), ma(1, trans(B, S, "stop")), gt(B, S, "stop"),
			}, states: []State{S, S}, group: S},
		})
		ho := with(a, func(c *Config) { c.HandoverOnStop = true; c.HandoverTimeout = 2 * time.Second })
		hb := with(b, func(c *Config) { c.HandoverOnStop = true; c.HandoverTimeout = 2 * time.Second })
		runGroup(t, []Config{ho, hb}, []gstep{
			start,
			{at: mdi, member: -1, ev: Timeout{}, want: bothMaster, states: []State{M, M}, group: M},
			{at: mdi + time.Second, member: -1, ev: Stop{}, want: []MemberAction{
				ma(0, send(ho, 0)), ma(0, HandoverStarted{Until: t0.Add(mdi + 3*time.Second)}),
				ma(1, send(hb, 0)), ma(1, HandoverStarted{Until: t0.Add(mdi + 3*time.Second)}),
			}, states: []State{M, M}, group: M},
			{at: mdi + 1500*time.Millisecond, member: 0, ev: rx(ho, higher4, 100), want: []MemberAction{
				ma(0, Release{}), ma(0, trans(M, S, "handover: new master")),
			}, states: []State{S, M}, group: M},
			{at: mdi + 3*time.Second, member: -1, ev: Timeout{}, want: []MemberAction{
				ma(1, Release{}), ma(1, trans(M, S, "handover: no new master heard")), gt(M, S, "stop"),
			}, states: []State{S, S}, group: S},
		})
	})

	t.Run("keepalived vrrp_sync_can_goto_master: a member alone does not go master, it re-arms and waits", func(t *testing.T) {
		g := runGroup(t, []Config{a, b}, []gstep{
			start,
			// VI_B still hears its master, VI_A does not.
			{at: 3 * time.Second, member: 1, ev: masterB, states: []State{B, B}, group: B},
			{at: mdi, member: -1, ev: Timeout{}, states: []State{B, B}, group: B},
		})
		s := g.Members()[0].Status()
		if !s.WantMaster || !s.Deadline.Equal(t0.Add(2*mdi)) {
			t.Fatalf("VI_A: want master %v, deadline %v", s.WantMaster, s.Deadline.Sub(t0))
		}
	})

	t.Run("keepalived vrrp_state_backup: an accepted advert takes back a member's wish to be master", func(t *testing.T) {
		g := runGroup(t, []Config{a, b}, []gstep{
			start,
			{at: 3 * time.Second, member: 1, ev: masterB, states: []State{B, B}, group: B},
			{at: mdi, member: -1, ev: Timeout{}, states: []State{B, B}, group: B},
			{at: mdi + time.Second/2, member: 0, ev: rx(a, higher4, 150), states: []State{B, B}, group: B},
			{at: 3*time.Second + mdi, member: -1, ev: Timeout{}, states: []State{B, B}, group: B},
		})
		if a, b := g.Members()[0].Status(), g.Members()[1].Status(); a.WantMaster || !b.WantMaster {
			t.Fatalf("want master: VI_A %v, VI_B %v", a.WantMaster, b.WantMaster)
		}
	})

	t.Run("keepalived vrrp_sync_master: the last member to want master takes the group to MASTER", func(t *testing.T) {
		runGroup(t, []Config{a, b}, []gstep{
			start,
			{at: 3 * time.Second, member: 1, ev: masterB, states: []State{B, B}, group: B},
			{at: mdi, member: -1, ev: Timeout{}, states: []State{B, B}, group: B},
			// VI_B's master goes quiet; its timer fires at 3 s + mdi.
			{at: 3*time.Second + mdi, member: 1, ev: Timeout{}, want: []MemberAction{
				ma(1, send(b, 100)), ma(1, TakeOver{}), ma(1, trans(B, M, "master down timer expired")),
				ma(0, send(a, 100)), ma(0, TakeOver{}), ma(0, trans(B, M, "sync group G: member VI_B went MASTER")),
				gt(B, M, "member VI_B went MASTER"),
			}, states: []State{M, M}, group: M},
		})
	})

	t.Run("keepalived vrrp_sync_backup: a member hearing a higher priority takes the others to BACKUP without priority 0", func(t *testing.T) {
		runGroup(t, []Config{a, b}, []gstep{
			start,
			{at: mdi, member: -1, ev: Timeout{}, want: bothMaster, states: []State{M, M}, group: M},
			{at: mdi + time.Second/2, member: 0, ev: rx(a, higher4, 150), want: []MemberAction{
				ma(0, send(a, 100)), ma(0, Release{}), ma(0, trans(M, B, "higher priority")),
				ma(1, Release{}), ma(1, trans(M, B, "sync group G: member VI_A went BACKUP")),
				gt(M, B, "member VI_A went BACKUP"),
			}, states: []State{B, B}, group: B},
		})
	})

	t.Run("keepalived vrrp_sync_fault: a member's fault takes the group to FAULT, masters send priority 0", func(t *testing.T) {
		runGroup(t, []Config{a, b}, []gstep{
			start,
			{at: mdi, member: -1, ev: Timeout{}, states: []State{M, M}, group: M, want: bothMaster},
			{at: 5 * time.Second, member: 1, ev: LinkChanged{Up: false}, want: []MemberAction{
				ma(1, send(b, 0)), ma(1, Release{}), ma(1, trans(M, F, "fault: interface down")),
				ma(0, send(a, 0)), ma(0, Release{}), ma(0, trans(M, F, "sync group G: member VI_B fault: interface down")),
				gt(M, F, "member VI_B fault: interface down"),
			}, states: []State{F, F}, group: F},
			// A second fault, then the first clears: still FAULT.
			{at: 6 * time.Second, member: 0, ev: FaultChanged{Fault: true}, states: []State{F, F}, group: F},
			{at: 7 * time.Second, member: 1, ev: LinkChanged{Up: true}, states: []State{F, F}, group: F},
			// keepalived try_up_instance: the last one clears, all to BACKUP.
			{at: 8 * time.Second, member: 0, ev: FaultChanged{Fault: false}, want: []MemberAction{
				ma(0, trans(F, B, "fault cleared")),
				ma(1, trans(F, B, "sync group G: fault cleared")),
				gt(F, B, "fault cleared"),
			}, states: []State{B, B}, group: B},
			{at: 9 * time.Second, member: 0, ev: rx(a, higher4, 150), states: []State{B, B}, group: B},
		})
	})

	t.Run("keepalived vrrp_complete_init: a member faulted at start puts every member in FAULT", func(t *testing.T) {
		runGroup(t, []Config{a, b}, []gstep{
			{at: 0, member: 1, ev: FaultChanged{Fault: true, Reason: "chk"}, want: []MemberAction{gt(B, F, "member VI_B fault: chk")},
				states: []State{StateInit, StateInit}, group: F},
			{at: 0, member: -1, ev: Start{}, want: []MemberAction{
				ma(0, trans(StateInit, F, "fault at start")), ma(1, trans(StateInit, F, "fault at start: chk")),
			}, states: []State{F, F}, group: F},
			{at: time.Second, member: 1, ev: FaultChanged{Fault: false}, want: []MemberAction{
				ma(1, trans(F, B, "")), ma(0, trans(F, B, "")), gt(F, B, ""),
			}, states: []State{B, B}, group: B},
		})
	})

	t.Run("keepalived vrrp_sync_set_group: a group of address owners starts MASTER", func(t *testing.T) {
		oa := with(a, func(c *Config) { c.Priority = 255 })
		ob := with(b, func(c *Config) { c.Priority = 255 })
		runGroup(t, []Config{oa, ob}, []gstep{
			{at: 0, member: -1, ev: Start{}, want: []MemberAction{
				ma(0, send(oa, 255)), ma(0, TakeOver{}), ma(0, trans(StateInit, M, "address owner")),
				ma(1, send(ob, 255)), ma(1, TakeOver{}), ma(1, trans(StateInit, M, "address owner")),
			}, states: []State{M, M}, group: M},
		})
	})

	t.Run("keepalived vrrp_sync_set_group: an owner grouped with a non-owner starts BACKUP", func(t *testing.T) {
		oa := with(a, func(c *Config) { c.Priority = 255 })
		runGroup(t, []Config{oa, b}, []gstep{
			{at: 0, member: -1, ev: Start{}, want: []MemberAction{
				gt(StateInit, B, "start"), ma(0, trans(StateInit, B, "start")), ma(1, trans(StateInit, B, "start")),
			}, states: []State{B, B}, group: B},
		})
	})

	t.Run("a group Handover hands every master over; the first to hear the new master releases the others", func(t *testing.T) {
		until := t0.Add(mdi + time.Second + 4*time.Second + us(996093))
		runGroup(t, []Config{a, b}, []gstep{
			start,
			{at: mdi, member: -1, ev: Timeout{}, states: []State{M, M}, group: M, want: bothMaster},
			{at: mdi + time.Second, member: -1, ev: Handover{}, want: []MemberAction{
				ma(0, send(a, 0)), ma(0, HandoverStarted{Until: until}),
				ma(1, send(b, 0)), ma(1, HandoverStarted{Until: until}),
			}, states: []State{M, M}, group: M},
			{at: mdi + 2*time.Second, member: 1, ev: rx(b, higher4, 100), want: []MemberAction{
				ma(1, Release{}), ma(1, trans(M, B, "handover: new master")),
				ma(0, Release{}), ma(0, trans(M, B, "sync group G")),
				gt(M, B, ""),
			}, states: []State{B, B}, group: B},
		})
	})
}

func TestSyncGroupErrors(t *testing.T) {
	a, b := groupCfgs()
	ia, _ := New(a)
	ib, _ := New(b)
	if _, err := NewSyncGroup("empty", nil); err == nil {
		t.Error("empty group accepted")
	}
	if _, err := NewSyncGroup("G1", []*Instance{ia, ib}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSyncGroup("G2", []*Instance{ia}); err == nil {
		t.Error("an instance joined two groups")
	}
	ic, _ := New(a)
	ic.Step(t0, Start{})
	if _, err := NewSyncGroup("G3", []*Instance{ic}); err == nil {
		t.Error("a started instance joined a group")
	}
}

func TestSyncGroupDeadline(t *testing.T) {
	a, b := groupCfgs()
	ia, _ := New(a)
	ib, _ := New(with(b, func(c *Config) { c.Priority = 200 }))
	g, _ := NewSyncGroup("G", []*Instance{ia, ib})
	if !g.Deadline().IsZero() {
		t.Fatal("deadline before start")
	}
	g.Step(t0, -1, Start{})
	if want := t0.Add(3*time.Second + us(218750)); !g.Deadline().Equal(want) {
		t.Fatalf("deadline %v, want the earliest member's %v", g.Deadline().Sub(t0), want.Sub(t0))
	}
}

func TestSyncGroupBuiltWithAFaultedMember(t *testing.T) {
	a, b := groupCfgs()
	ia, _ := New(a)
	ib, _ := New(b)
	ib.Step(t0, LinkChanged{Up: false})
	g, err := NewSyncGroup("G", []*Instance{ia, ib})
	if err != nil {
		t.Fatal(err)
	}
	if g.State() != StateFault {
		t.Fatalf("group state %v, want FAULT (keepalived vrrp_sync_set_group)", g.State())
	}
	g.Step(t0, -1, Start{})
	if ia.State() != StateFault || ib.State() != StateFault {
		t.Fatalf("members %v %v, want FAULT", ia.State(), ib.State())
	}
}

// TestRegroup: a reload that puts two running instances in one sync group
// keeps their states; the group follows its members from then on
// (keepalived vrrp_sync_backup on the next Master→Backup).
func TestRegroup(t *testing.T) {
	a, _ := New(with(v3cfg(), func(c *Config) { c.Name = "A" }))
	b, _ := New(with(v3cfg(), func(c *Config) { c.Name, c.VRID = "B", 56 }))
	a.Step(t0, Start{})
	b.Step(t0, Start{})
	mdi := MasterDownInterval(3, 100, time.Second)
	a.Step(t0.Add(mdi), Timeout{})
	b.Step(t0.Add(mdi), Timeout{})
	g, err := Regroup("G", []*Instance{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if g.State() != StateMaster || a.State() != StateMaster || b.State() != StateMaster {
		t.Fatalf("after Regroup: group %v, a %v, b %v", g.State(), a.State(), b.State())
	}
	// A higher priority master for A: the group takes B to Backup too.
	g.Step(t0.Add(mdi+time.Second/2), 0, rx(v3cfg(), higher4, 150))
	if g.State() != StateBackup || a.State() != StateBackup || b.State() != StateBackup {
		t.Fatalf("after A went Backup: group %v, a %v, b %v", g.State(), a.State(), b.State())
	}
	a.LeaveGroup()
	if acts := a.Step(t0.Add(3*mdi), Timeout{}); a.State() != StateMaster || len(acts) == 0 {
		t.Fatalf("A out of its group did not go master alone: %v %v", a.State(), acts)
	}
	if b.State() != StateBackup {
		t.Fatalf("B followed A although A left the group: %v", b.State())
	}
}
