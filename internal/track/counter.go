package track

// ScriptCounter is a vrrp_script's rise/fall hysteresis, keepalived 2.2.7's
// `result` counter (vrrp_scheduler.c vrrp_script_child_thread,
// vrrp_init_script):
//
//   - result runs from 0 to rise+fall-1; the script is up while result >= rise;
//   - a success below rise-1 counts up; the success that reaches rise makes
//     the script up and sets result to rise+fall-1; a success while up resets
//     result to rise+fall-1 (a partial fall is forgotten);
//   - a failure above rise counts down; the failure at rise makes the script
//     down and sets result to 0; a failure while down resets result to 0 (a
//     partial rise is forgotten);
//   - at start-up (no init_fail) result is rise-1 and the status is Unknown:
//     the first success makes the script up and the first failure makes it
//     down, whatever rise and fall are ("one success is enough");
//   - with init_fail the script starts Down with result 0 and needs rise
//     successes.
//
// A timed-out run counts as a failure (keepalived: "timed_out").
//
// The zero value is not ready; use NewScriptCounter. Not safe for concurrent
// use.
type ScriptCounter struct {
	rise, fall int
	result     int
	init       bool // no result yet (SCRIPT_INIT_STATE_INIT)
	status     Status
}

// NewScriptCounter returns the counter of a script with the given rise and
// fall (values below 1 are taken as 1, keepalived's default and minimum).
func NewScriptCounter(rise, fall int, initFail bool) ScriptCounter {
	if rise < 1 {
		rise = 1
	}
	if fall < 1 {
		fall = 1
	}
	c := ScriptCounter{rise: rise, fall: fall}
	if initFail {
		// SCRIPT_INIT_STATE_FAILED: "assume failed by config".
		c.result = 0
		c.status = Down
	} else {
		// SCRIPT_INIT_STATE_INIT: "one success is enough".
		c.result = rise - 1
		c.init = true
		c.status = Unknown
	}
	return c
}

// Status is the script's current state.
func (c *ScriptCounter) Status() Status { return c.status }

// Observe records one run's outcome and reports whether the status changed.
func (c *ScriptCounter) Observe(ok bool) (changed bool) {
	before := c.status
	if ok {
		switch {
		case c.result < c.rise-1:
			c.result++
		case c.result != c.rise+c.fall-1:
			if c.result < c.rise {
				c.status = Up
			}
			c.result = c.rise + c.fall - 1
		}
	} else {
		if c.result > c.rise {
			c.result--
		} else {
			if c.result == c.rise || c.init {
				c.status = Down
			}
			c.result = 0
		}
	}
	c.init = false
	return c.status != before
}
