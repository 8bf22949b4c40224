package vrrp

import (
	"testing"
	"time"
)

// TestAnswerFloodBounded: a master answers priority-0 adverts, and reacts
// to lower-priority ones (RFC 5798 / RFC 9568 §6.4.3), once per AnswerGap,
// not once per packet: a flood of forged adverts made it send one multicast
// advert (and, through LowerPriorityAdvert, one gratuitous ARP burst and
// one notify_master_rx_lower_pri) per packet. The adverts skipped are still
// counted, and leave the Adver_Timer where the last answer set it.
func TestAnswerFloodBounded(t *testing.T) {
	c := v2cfg()
	up, m := toMaster(c)
	low := LowerPriorityAdvert{Src: lower4, Priority: 50}
	answer := send(c, 100)
	first := m + 10*time.Millisecond
	zero := m + 70*time.Millisecond
	steps := concat(up, []step{
		{at: first, ev: rx(c, lower4, 50), want: []Action{answer, low}, state: StateMaster, deadline: first + time.Second},
		{at: m + 20*time.Millisecond, ev: rx(c, lower4, 50), state: StateMaster, deadline: first + time.Second},
		{at: m + 60*time.Millisecond, ev: rx(c, lower4, 50), state: StateMaster, deadline: first + time.Second},
		{at: zero, ev: rx(c, lower4, 0), want: []Action{answer}, state: StateMaster, deadline: zero + time.Second},
		{at: m + 80*time.Millisecond, ev: rx(c, lower4, 0), state: StateMaster, deadline: zero + time.Second},
		{at: first + AnswerGap, ev: rx(c, lower4, 50), want: []Action{answer, low}, state: StateMaster, deadline: first + AnswerGap + time.Second},
		{at: zero + AnswerGap, ev: rx(c, lower4, 0), want: []Action{answer}, state: StateMaster, deadline: zero + AnswerGap + time.Second},
	})
	runScenario(t, c, steps)
	i, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		i.Step(t0.Add(s.at), s.ev)
	}
	if got := i.Status().Counters; got.AdvertsReceived != 7 || got.PriorityZeroReceived != 3 {
		t.Errorf("counters %+v: every advert must still be counted (7 received, 3 of priority 0)", got)
	}
}
