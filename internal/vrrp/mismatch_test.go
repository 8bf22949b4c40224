package vrrp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

func mismatchOf(src netip.Addr, prio uint8, theirs []netip.Addr, ours int) AddrMismatch {
	return AddrMismatch{Src: src, Priority: prio, Theirs: theirs, Ours: ours}
}

// TestAddrMismatch: a rolling change of virtual_ipaddress (one node reloaded,
// the other not yet) never makes two masters. RFC 3768 §7.1 and RFC 5798
// §7.1 say a receiver MUST discard an advert whose address count or list
// differs from its own (unless the sender is the owner, priority 255), and
// keepalived 2.2.7 discards it whatever the priority: the backup then stops
// hearing its master and takes over too. vigil accepts the advert when it
// would keep or make us Backup (higher priority, equal priority from a
// higher address, priority 0, or any priority under nopreempt), reports
// AddrMismatch, and drops it as before when we would preempt anyway.
func TestAddrMismatch(t *testing.T) {
	const mdi = 3609375 * time.Microsecond // priority 100, 1 s
	const skew = 609375 * time.Microsecond
	for _, f := range families {
		c := f.cfg()
		more := append(append([]netip.Addr(nil), c.VIPs...), c.VIPs[0].Next().Next())
		fewer := c.VIPs[:len(c.VIPs)-1]
		if len(fewer) == 0 {
			fewer = []netip.Addr{c.VIPs[0].Next().Next()}
		}
		list := func(as []netip.Addr) func(*Received) {
			return func(r *Received) { r.Advert.Addrs, r.Advert.CountIPAddrs = as, uint8(len(as)) }
		}
		start := step{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi}
		n := len(c.VIPs)
		runAll(t, []scenario{
			{f.name + ": RFC 5798 §7.1 vs vigil: a higher priority master listing one more address keeps us Backup", c, []step{
				start,
				{at: time.Second, ev: rx(c, f.higher, 150, list(more)), want: []Action{mismatchOf(f.higher, 150, more, n)}, state: StateBackup, deadline: time.Second + mdi},
				{at: 4 * time.Second, ev: rx(c, f.higher, 150, list(more)), want: []Action{mismatchOf(f.higher, 150, more, n)}, state: StateBackup, deadline: 4*time.Second + mdi},
			}},
			{f.name + ": RFC 5798 §7.1 vs vigil: a higher priority master listing fewer addresses keeps us Backup", c, []step{
				start,
				{at: time.Second, ev: rx(c, f.higher, 150, list(fewer)), want: []Action{mismatchOf(f.higher, 150, fewer, n)}, state: StateBackup, deadline: time.Second + mdi},
			}},
			{f.name + ": RFC 5798 §6.4.2: a mismatching master's priority 0 still sets the timer to Skew_Time", c, []step{
				start,
				{at: time.Second, ev: rx(c, f.higher, 0, list(more)), want: []Action{mismatchOf(f.higher, 0, more, n)}, state: StateBackup, deadline: time.Second + skew},
			}},
			{f.name + ": nopreempt: a lower priority master with other addresses keeps us Backup", with(c, func(c *Config) { c.NoPreempt = true }), []step{
				start,
				{at: time.Second, ev: rx(c, f.higher, 50, list(more)), want: []Action{mismatchOf(f.higher, 50, more, n)}, state: StateBackup, deadline: time.Second + mdi},
			}},
			{f.name + ": RFC 5798 §6.4.2: a lower priority master with other addresses is discarded, we preempt", c, []step{
				start,
				{at: time.Second, ev: rx(c, f.higher, 50, list(more)), want: []Action{dropped(DropAddrCount, f.higher)}, state: StateBackup, deadline: mdi},
				{at: mdi, ev: Timeout{}, want: []Action{send(c, 100), TakeOver{}, trans(StateBackup, StateMaster, "preempting")}, state: StateMaster, deadline: mdi + time.Second},
			}},
			{f.name + ": RFC 5798 §6.4.3 vs vigil: a master hearing a higher priority master with other addresses goes Backup", c, []step{
				start,
				{at: mdi, ev: Timeout{}, want: []Action{send(c, 100), TakeOver{}, trans(StateBackup, StateMaster, "")}, state: StateMaster, deadline: mdi + time.Second},
				{at: mdi + 500*time.Millisecond, ev: rx(c, f.higher, 150, list(more)), want: []Action{mismatchOf(f.higher, 150, more, n), send(c, 100), Release{}, trans(StateMaster, StateBackup, "higher priority")},
					state: StateBackup, deadline: mdi + 500*time.Millisecond + mdi},
			}},
			{f.name + ": a master drops a lower priority master with other addresses (it stays master) and names it a rival: keepalived drops ours too", c, []step{
				start,
				{at: mdi, ev: Timeout{}, want: []Action{send(c, 100), TakeOver{}, trans(StateBackup, StateMaster, "")}, state: StateMaster, deadline: mdi + time.Second},
				{at: mdi + 500*time.Millisecond, ev: rx(c, f.higher, 50, list(more)), want: []Action{dropped(DropAddrCount, f.higher),
					RivalMaster{Src: f.higher, Priority: 50, Reason: DropAddrCount, Detail: fmt.Sprintf("%d addresses, ours %d", n+1, n)}}, state: StateMaster, deadline: mdi + time.Second},
				// Leaving (priority 0): answered, no rival.
				{at: mdi + 600*time.Millisecond, ev: rx(c, f.higher, 0, list(more)), want: []Action{mismatchOf(f.higher, 0, more, n), send(c, 100)}, state: StateMaster, deadline: mdi + 600*time.Millisecond + time.Second},
			}},
		})
	}
}

// TestAddrMismatchCounted: the counter feeds the metric and status.
func TestAddrMismatchCounted(t *testing.T) {
	c := v3cfg()
	inst, _ := New(c)
	inst.Step(t0, Start{})
	more := []netip.Addr{vip4, vip4.Next()}
	for k := range 3 {
		inst.Step(t0.Add(time.Duration(k)*time.Second), rx(c, higher4, 150, func(r *Received) { r.Advert.Addrs, r.Advert.CountIPAddrs = more, 2 }))
	}
	s := inst.Status()
	if s.Counters.AddrMismatch != 3 || s.State != StateBackup || s.MasterAddr != higher4 || s.Counters.AdvertsReceived != 3 {
		t.Errorf("after 3 mismatching adverts from a better master: %+v", s)
	}
}

// TestRivalMaster: a master that drops the adverts of another master for a
// difference of configuration says so (RivalMaster): that router drops ours
// for the same reason (keepalived 2.2.7: "advertisement interval
// mismatch", "received an unexpected ip number count"), so both hold the
// addresses. A stopping master hands over to it (its interval differs, it
// holds the addresses already) instead of waiting out the bound.
func TestRivalMaster(t *testing.T) {
	const mdi = 3609375 * time.Microsecond
	c := v2cfg()
	stop := with(c, func(c *Config) { c.HandoverOnStop = true; c.HandoverTimeout = 5 * time.Second })
	up := func(c Config) []step {
		return []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: mdi, ev: Timeout{}, want: []Action{send(c, 100), TakeOver{}, trans(StateBackup, StateMaster, "")}, state: StateMaster, deadline: mdi + time.Second},
		}
	}
	at := mdi + 500*time.Millisecond
	runAll(t, []scenario{
		{"v2: advert_int differs, lower priority: dropped (RFC 3768 §7.1), a rival", c, append(up(c),
			step{at: at, ev: rx(c, lower4, 50, interval(2)), want: []Action{dropped(DropInterval, lower4),
				RivalMaster{Src: lower4, Priority: 50, Reason: DropInterval, Detail: "interval 2s, ours 1s"}}, state: StateMaster, deadline: mdi + time.Second}),
		},
		{"v2: advert_int differs, higher priority: followed (vigil, not RFC 3768 §7.1), no second master", c, append(up(c),
			step{at: at, ev: rx(c, higher4, 150, interval(2)), want: []Action{IntervalMismatch{Src: higher4, Priority: 150, Theirs: 2 * time.Second, Ours: time.Second},
				send(c, 100), Release{}, trans(StateMaster, StateBackup, "higher priority")}, state: StateBackup}),
		},
		{"v2: a password that differs: a rival", c, append(up(c),
			step{at: at, ev: rx(c, lower4, 50, edit(func(r *Received) { r.Advert.AuthData[0] = '2' })), want: []Action{dropped(DropAuthFailure, lower4),
				RivalMaster{Src: lower4, Priority: 50, Reason: DropAuthFailure}}, state: StateMaster, deadline: mdi + time.Second}),
		},
		{"v2: not a rival: priority 0 (answered), a bad TTL", c, append(up(c),
			step{at: at, ev: rx(c, lower4, 0, interval(2)), want: []Action{IntervalMismatch{Src: lower4, Theirs: 2 * time.Second, Ours: time.Second}, send(c, 100)}, state: StateMaster, deadline: at + time.Second},
			step{at: at + 100*time.Millisecond, ev: rx(c, lower4, 50, edit(func(r *Received) { r.TTL = 64 })), want: []Action{dropped(DropTTL, lower4)}, state: StateMaster, deadline: at + time.Second}),
		},
		{"v2: a stopping master hands over to a master whose advert_int differs", stop, append(up(stop),
			step{at: at, ev: Stop{}, want: []Action{send(stop, 0), HandoverStarted{Until: t0.Add(at + 5*time.Second)}}, state: StateMaster, deadline: at + 5*time.Second},
			step{at: at + 2*time.Second, ev: rx(stop, lower4, 99, interval(2)), want: []Action{IntervalMismatch{Src: lower4, Priority: 99, Theirs: 2 * time.Second, Ours: time.Second}, Release{},
				trans(StateMaster, StateStopped, "handover: new master 192.168.1.104 (priority 99)")}, state: StateStopped, deadline: noTimer}),
		},
		{"v2: a stopping master does not hand over to a priority 0 whose advert_int differs, nor to a bad TTL, nor to an advert that fails authentication", stop, append(up(stop),
			step{at: at, ev: Stop{}, want: []Action{send(stop, 0), HandoverStarted{Until: t0.Add(at + 5*time.Second)}}, state: StateMaster, deadline: at + 5*time.Second},
			step{at: at + time.Second, ev: rx(stop, lower4, 0, interval(2)), state: StateMaster, deadline: at + 5*time.Second},
			step{at: at + 1500*time.Millisecond, ev: rx(stop, lower4, 99, edit(func(r *Received) { r.TTL = 64 })), want: []Action{dropped(DropTTL, lower4)}, state: StateMaster, deadline: at + 5*time.Second},
			// Another host's advert with a wrong password (RFC 2338 §7.1
			// PASS), or with no authentication: the wait goes on.
			step{at: at + 2*time.Second, ev: rx(stop, lower4, 99, edit(func(r *Received) { r.Advert.AuthData[0] = '2' })), want: []Action{dropped(DropAuthFailure, lower4)}, state: StateMaster, deadline: at + 5*time.Second},
			step{at: at + 2500*time.Millisecond, ev: rx(stop, higher4, 150, edit(func(r *Received) { r.Advert.AuthType, r.Advert.AuthData = packet.AuthNone, [8]byte{} })), want: []Action{dropped(DropAuthType, higher4)}, state: StateMaster, deadline: at + 5*time.Second},
			// The backup that authenticates ends it.
			step{at: at + 3*time.Second, ev: rx(stop, lower4, 99), want: []Action{Release{},
				trans(StateMaster, StateStopped, "handover: new master 192.168.1.104 (priority 99)")}, state: StateStopped, deadline: noTimer}),
		},
		{"v2: a stopping master that hears only adverts failing authentication waits out the bound", stop, append(up(stop),
			step{at: at, ev: Stop{}, want: []Action{send(stop, 0), HandoverStarted{Until: t0.Add(at + 5*time.Second)}}, state: StateMaster, deadline: at + 5*time.Second},
			step{at: at + time.Second, ev: rx(stop, higher4, 150, edit(func(r *Received) { r.Advert.AuthData[0] = '2' })), want: []Action{dropped(DropAuthFailure, higher4)}, state: StateMaster, deadline: at + 5*time.Second},
			step{at: at + 5*time.Second, ev: Timeout{}, want: []Action{Release{},
				trans(StateMaster, StateStopped, "handover: no new master heard before the timeout")}, state: StateStopped, deadline: noTimer}),
		},
		{"v2: vigil handover (not a stop) yields to a master whose advert_int differs, not to another password", c, append(up(c),
			step{at: at, ev: Handover{}, want: []Action{send(c, 0), HandoverStarted{Until: t0.Add(at + 4*time.Second + us(996093))}}, state: StateMaster},
			step{at: at + time.Second, ev: rx(c, lower4, 99, edit(func(r *Received) { r.Advert.AuthData[0] = '2' })), want: []Action{dropped(DropAuthFailure, lower4)}, state: StateMaster},
			step{at: at + 2*time.Second, ev: rx(c, lower4, 99, interval(2)), want: []Action{IntervalMismatch{Src: lower4, Priority: 99, Theirs: 2 * time.Second, Ours: time.Second}, Release{},
				trans(StateMaster, StateBackup, "handover: new master 192.168.1.104 (priority 99)")}, state: StateBackup}),
		},
	})
}
