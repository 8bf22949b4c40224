// Package pace is the one home of the "at most once per period" rule that
// rate-limits log lines and answers: a gate keeps the time it last let
// something through and lets the next through once a period has passed.
// It reads no clock: the caller passes now (pure, as package vrrp needs).
package pace

import "time"

// Allow reports whether now is at least every after *last, or *last is
// unset, or *last is after now (the clock was stepped back: the gate
// reopens rather than stay shut for as long as the step); it then sets
// *last to now. A caller that is refused counts what it held back and says
// so in the next line it is allowed.
func Allow(last *time.Time, now time.Time, every time.Duration) bool {
	if d := now.Sub(*last); !last.IsZero() && d >= 0 && d < every {
		return false
	}
	*last = now
	return true
}
