package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// TestReconfigure: keepalived's reload keeps an instance whose interface and
// VRID are unchanged, with its state; vigil's Reconfigure does the same for
// everything but the identity (VRID, version, family), and a master whose
// advert changed sends the new one at once.
func TestReconfigure(t *testing.T) {
	const mdi = 3609375 * time.Microsecond
	c := v3cfg()
	up := []step{
		{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
		{at: mdi, ev: Timeout{}, want: []Action{send(c, 100), TakeOver{}, trans(StateBackup, StateMaster, "")}, state: StateMaster, deadline: mdi + time.Second},
	}
	twoVIPs := with(c, func(c *Config) { c.VIPs = []netip.Addr{vip4, vip4.Next()} })
	prio150 := with(c, func(c *Config) { c.Priority = 150 })
	fast := with(c, func(c *Config) { c.AdvertInt = 100 * time.Millisecond })
	runAll(t, []scenario{
		{"vigil: the same configuration changes nothing", c, concat(up, []step{
			{at: mdi + 100*time.Millisecond, ev: Reconfigure{c}, state: StateMaster, deadline: mdi + time.Second},
		})},
		{"keepalived reload: a master given one more VIP stays master and advertises both at once", c, concat(up, []step{
			{at: mdi + 100*time.Millisecond, ev: Reconfigure{twoVIPs}, want: []Action{send(twoVIPs, 100)}, state: StateMaster, deadline: mdi + 1100*time.Millisecond},
		})},
		{"vigil: a master given a new priority advertises it at once, no transition", c, concat(up, []step{
			{at: mdi + 100*time.Millisecond, ev: Reconfigure{prio150}, want: []Action{send(prio150, 150)}, state: StateMaster, deadline: mdi + 1100*time.Millisecond},
		})},
		{"vigil: a master given a new advert_int uses it from now", c, concat(up, []step{
			{at: mdi + 100*time.Millisecond, ev: Reconfigure{fast}, want: []Action{send(fast, 100)}, state: StateMaster, deadline: mdi + 200*time.Millisecond},
		})},
		{"keepalived: a backup given a higher priority moves its timer by the change of the down interval", c, []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: Reconfigure{prio150}, state: StateBackup, deadline: 3*time.Second + us(414062)},
		}},
		{"vigil: another VRID is another router: ignored (the engine restarts it)", c, concat(up, []step{
			{at: mdi + 100*time.Millisecond, ev: Reconfigure{with(c, func(c *Config) { c.VRID = 56 })}, state: StateMaster, deadline: mdi + time.Second},
		})},
	})
}

// TestReconfigureKeepsTrackerOffset: a tracker's weight stays applied to the
// new base priority.
func TestReconfigureKeepsTrackerOffset(t *testing.T) {
	inst, _ := New(v3cfg())
	inst.Step(t0, Start{})
	inst.Step(t0, PriorityChanged{Priority: 80}) // base 100, a tracker -20
	inst.Step(t0, Reconfigure{with(v3cfg(), func(c *Config) { c.Priority = 150 })})
	if s := inst.Status(); s.BasePriority != 150 || s.Priority != 130 {
		t.Errorf("after reload to 150 with a -20 tracker: base %d, effective %d; want 150, 130", s.BasePriority, s.Priority)
	}
	if s := inst.Status(); s.State != StateBackup || s.Counters.AdvertsSent != 0 {
		t.Errorf("a backup's reload: %+v", s)
	}
}
