package vrrp

import (
	"testing"
	"time"
)

// Make-before-break handover (vigil, not keepalived): priority 0 on the wire
// as RFC 5798 §6.4.3 Shutdown, addresses kept until a new master is heard.
func TestHandover(t *testing.T) {
	const mdi = 3609375 * time.Microsecond
	var scs []scenario
	for _, f := range families {
		c := f.cfg()
		up, m := toMaster(c)
		h := m + 500*time.Millisecond
		until := h + 4*time.Second + us(996093) // default: MDI at priority 1 + one interval
		scs = append(scs,
			scenario{f.name + ": Handover sends priority 0, keeps the addresses until a new master's advert, then yields", c, concat(up, []step{
				{at: h, ev: Handover{}, want: []Action{send(c, 0), HandoverStarted{Until: t0.Add(until)}}, state: StateMaster, deadline: until},
				// Another router leaving, an invalid advert, our own: not a new master.
				{at: h + 100*time.Millisecond, ev: rx(c, f.lower, 0), state: StateMaster, deadline: until},
				{at: h + 200*time.Millisecond, ev: rx(c, f.lower, 90, edit(func(r *Received) { r.TTL = 64 })), want: []Action{dropped(DropTTL, f.lower)}, state: StateMaster, deadline: until},
				{at: h + 300*time.Millisecond, ev: rx(c, c.Source, 90), want: []Action{dropped(DropOwnAddress, c.Source)}, state: StateMaster, deadline: until},
				// Any valid advert with priority > 0, even lower than ours.
				{at: h + 600*time.Millisecond, ev: rx(c, f.lower, 90), want: []Action{Release{}, trans(StateMaster, StateBackup, "handover: new master "+f.lower.String()+" (priority 90)")},
					state: StateBackup, deadline: h + 600*time.Millisecond + mdi},
				// Yielding: the lower priority master is not preempted.
				{at: h + 1600*time.Millisecond, ev: rx(c, f.lower, 90), state: StateBackup, deadline: h + 1600*time.Millisecond + mdi},
				// Reclaim: preemption again; the next lower advert is discarded.
				{at: h + 2*time.Second, ev: Reclaim{}, state: StateBackup, deadline: h + 1600*time.Millisecond + mdi},
				{at: h + 2600*time.Millisecond, ev: rx(c, f.lower, 90), want: []Action{dropped(DropLowerPriority, f.lower)}, state: StateBackup, deadline: h + 1600*time.Millisecond + mdi},
				{at: h + 1600*time.Millisecond + mdi, ev: Timeout{}, want: []Action{send(c, 100), TakeOver{}, trans(StateBackup, StateMaster, "preempting lower priority master")}, state: StateMaster},
			})},
			scenario{f.name + ": Handover with nobody taking over keeps the addresses at the bound: still Master, advertising its priority, no yield (releasing left them unanswered for a Master_Down_Interval)", c, concat(up, []step{
				{at: h, ev: Handover{}, want: []Action{send(c, 0), HandoverStarted{Until: t0.Add(until)}}, state: StateMaster, deadline: until},
				{at: until - 1, ev: Timeout{}, state: StateMaster, deadline: until},
				{at: until, ev: Timeout{}, want: []Action{send(c, 100), HandoverAborted{}}, state: StateMaster, deadline: until + c.AdvertInt},
				{at: until + c.AdvertInt, ev: Timeout{}, want: []Action{send(c, 100)}, state: StateMaster, deadline: until + 2*c.AdvertInt},
				// A lower priority is answered, as by any master.
				{at: until + c.AdvertInt + time.Second/2, ev: rx(c, f.lower, 90), want: []Action{send(c, 100), LowerPriorityAdvert{Src: f.lower, Priority: 90}}, state: StateMaster, deadline: until + c.AdvertInt + time.Second/2 + c.AdvertInt},
			})},
			scenario{f.name + ": HandoverOnStop: Stop hands over, then ends Stopped", with(c, func(c *Config) { c.HandoverOnStop = true; c.HandoverTimeout = 2 * time.Second }), concat(up, []step{
				{at: h, ev: Stop{}, want: []Action{send(c, 0), HandoverStarted{Until: t0.Add(h + 2*time.Second)}}, state: StateMaster, deadline: h + 2*time.Second},
				{at: h + time.Second, ev: rx(c, f.higher, 100), want: []Action{Release{}, trans(StateMaster, StateStopped, "handover: new master")}, state: StateStopped, deadline: noTimer},
			})},
			scenario{f.name + ": Stop during a Handover releases at once without a second priority 0", c, concat(up, []step{
				{at: h, ev: Handover{}, want: []Action{send(c, 0), HandoverStarted{Until: t0.Add(until)}}, state: StateMaster, deadline: until},
				{at: h + time.Second/10, ev: Stop{}, want: []Action{Release{}, trans(StateMaster, StateStopped, "stop")}, state: StateStopped, deadline: noTimer},
			})},
			scenario{f.name + ": a fault during a Handover releases at once without a second priority 0", c, concat(up, []step{
				{at: h, ev: Handover{}, want: []Action{send(c, 0), HandoverStarted{Until: t0.Add(until)}}, state: StateMaster, deadline: until},
				{at: h + time.Second/10, ev: LinkChanged{}, want: []Action{Release{}, trans(StateMaster, StateFault, "interface down")}, state: StateFault, deadline: noTimer},
			})},
			scenario{f.name + ": Handover on a Backup only yields", c, []step{
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
				{at: time.Second, ev: Handover{}, state: StateBackup, deadline: mdi},
				{at: 2 * time.Second, ev: rx(c, f.lower, 50), state: StateBackup, deadline: 2*time.Second + mdi},
			}},
		)
	}
	runAll(t, scs)
}
