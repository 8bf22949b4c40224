package vrrp

import (
	"testing"
	"time"
)

// TestAnswerFloodBounded: a master answers priority-0 and lower-priority
// adverts (RFC 5798 / RFC 9568 §6.4.3) once per AnswerGap, not once per
// packet: a flood of forged adverts made it send one multicast advert per
// packet. Each lower-priority advert is still reported (notify, GARP), and
// an unanswered one leaves the Adver_Timer where the last answer set it.
func TestAnswerFloodBounded(t *testing.T) {
	c := v2cfg()
	up, m := toMaster(c)
	low := LowerPriorityAdvert{Src: lower4, Priority: 50}
	answer := send(c, 100)
	first := m + 10*time.Millisecond // the first answer, re-arming the timer
	runScenario(t, c, concat(up, []step{
		{at: first, ev: rx(c, lower4, 50), want: []Action{answer, low}, state: StateMaster, deadline: first + time.Second},
		{at: m + 20*time.Millisecond, ev: rx(c, lower4, 50), want: []Action{low}, state: StateMaster, deadline: first + time.Second},
		{at: m + 60*time.Millisecond, ev: rx(c, lower4, 50), want: []Action{low}, state: StateMaster, deadline: first + time.Second},
		{at: m + 70*time.Millisecond, ev: rx(c, lower4, 0), state: StateMaster, deadline: first + time.Second},
		{at: first + AnswerGap, ev: rx(c, lower4, 50), want: []Action{answer, low}, state: StateMaster, deadline: first + AnswerGap + time.Second},
		{at: m + 300*time.Millisecond, ev: rx(c, lower4, 0), want: []Action{answer}, state: StateMaster, deadline: m + 1300*time.Millisecond},
	}))
}
