package check

import (
	"fmt"
	"time"
)

// Health is one checker's state under keepalived's hysteresis: whether it is
// up, how many retries it has used, which url is due (HTTP_GET/SSL_GET) and
// what weight it asks for. It is a value: copy it to keep a checker's state
// across a reload.
//
// Concurrency: a Health is not safe for concurrent use; the Runner guards each
// with its real server's mutex.
type Health struct {
	p       Policy
	up      bool
	hasRun  bool
	retryIt int
	// step is url_it of check_http.c, failed its failed_url (-1: none).
	step, failed int
	weight       *int
	delta        *int
}

// NewHealth returns the state of a checker before its first check, as
// keepalived 2.2.7 sets it up at start (check_data.c validate_check_config):
// up unless Alpha; retry_it = retry so that, "for non alpha mode, one failure
// is enough initially" (SMTP_CHECK excepted: smtp_start_check_thread resets
// retry_it to 0 before every round, the first included).
func NewHealth(p Policy) Health {
	if p.Steps < 1 {
		p.Steps = 1
	}
	h := Health{p: p, up: !p.Alpha, retryIt: p.Retry, failed: -1}
	switch p.Kind {
	case KindSMTP:
		h.retryIt = 0
	case KindFile:
		// check_file.c add_rs_to_track_files: "Clear Alpha mode - we know
		// the state of the checker immediately"; it counts as having run.
		h.up, h.hasRun, h.retryIt = true, true, 0
	}
	return h
}

// NewHealthOnReload returns the state of a checker that a reload added
// (no checker of the old configuration checked the same thing), as
// keepalived 2.2.7 sets it up: its validate_check_config skips the start-up
// rules on a reload, so the checker starts up with all its retries
// (queue_checker: is_up, retry_it 0); on a real server the reload added,
// check_new_rs_state starts an alpha checker down; on a real server that
// was there, migrate_checkers applies the start-up rules (alpha down, one
// failure enough) only when failed is set: one of its checkers has failed,
// or it is down and none of its checkers has run.
func NewHealthOnReload(p Policy, newServer, failed bool) Health {
	h := NewHealth(p)
	if p.Kind == KindFile || (!newServer && failed) {
		return h
	}
	h.retryIt = 0
	h.up = !(newServer && p.Alpha)
	return h
}

// Policy returns the checker's policy.
func (h *Health) Policy() Policy { return h.p }

// Up reports whether the checker is up.
func (h *Health) Up() bool { return h.up }

// HasRun reports whether the checker has reached a verdict since start.
func (h *Health) HasRun() bool { return h.hasRun }

// Retries returns keepalived's retry_it: the retries used so far.
func (h *Health) Retries() int { return h.retryIt }

// Step returns the step (url index) the next attempt must check.
func (h *Health) Step() int { return h.step }

// Weight returns the dynamic weight the checker holds (see Result.Weight).
func (h *Health) Weight() *int { return h.weight }

// WeightDelta returns the weight offset the checker holds (see
// Result.WeightDelta).
func (h *Health) WeightDelta() *int { return h.delta }

// Reconfigure applies a new policy after a reload, keeping the state (up,
// has run, weights), as keepalived's migrate_checkers() does for a checker
// whose configuration is unchanged.
func (h *Health) Reconfigure(p Policy) {
	if p.Steps < 1 {
		p.Steps = 1
	}
	h.p = p
	if h.retryIt > p.Retry {
		h.retryIt = p.Retry
	}
	if h.step >= p.Steps {
		h.step = 0
	}
	if h.failed >= p.Steps {
		h.failed = -1
	}
}

// Start returns when the first check is due: keepalived 2.2.7
// check_api.c register_checkers_thread() waits BOOTSTRAP_DELAY plus
// warmup × random()/RAND_MAX. rnd is that random number, in [0, 1].
func (h *Health) Start(now time.Time, rnd float64) time.Time {
	if rnd < 0 {
		rnd = 0
	} else if rnd > 1 {
		rnd = 1
	}
	return now.Add(h.p.Bootstrap + time.Duration(float64(h.p.Warmup)*rnd))
}

// Transition reports a change of a checker caused by one result.
type Transition struct {
	At time.Time
	// WasUp and Up are the checker's state before and after the result.
	WasUp, Up bool
	// Weight and WeightDelta are the checker's weight contribution after
	// the result (see Result); WeightChanged says whether it changed.
	Weight, WeightDelta *int
	WeightChanged       bool
	// Reason explains the change: the result's reason, plus the retries
	// spent when a checker goes down after retrying.
	Reason string
}

// StateChanged reports whether the checker went up or down.
func (t Transition) StateChanged() bool { return t.Up != t.WasUp }

// Observe applies the result of one attempt finished at now. It returns when
// the next attempt is due and, when the checker's state or weight changed, a
// Transition.
func (h *Health) Observe(now time.Time, r Result) (next time.Time, tr *Transition) {
	if r.NoVerdict {
		return now.Add(h.p.DelayLoop), nil
	}
	before := *h
	var delay time.Duration
	reason := r.Reason
	switch h.p.Kind {
	case KindHTTP, KindSSL:
		delay, reason = h.observeHTTP(r)
	case KindSMTP:
		delay, reason = h.observeSMTP(r)
	case KindDNS:
		delay, reason = h.observeDNS(r)
	case KindUDP, KindPing:
		delay, reason = h.observeUDP(r)
	case KindMisc:
		next, reason = h.observeMisc(now, r)
	case KindFile:
		delay = h.observeFile(r)
	default: // KindTCP
		delay, reason = h.observeTCP(r)
	}
	if h.p.Kind != KindMisc {
		next = now.Add(delay)
	}
	wchg := !sameInt(before.weight, h.weight) || !sameInt(before.delta, h.delta)
	if before.up == h.up && !wchg {
		return next, nil
	}
	return next, &Transition{
		At: now, WasUp: before.up, Up: h.up,
		Weight: h.weight, WeightDelta: h.delta, WeightChanged: wchg,
		Reason: reason,
	}
}

// set is update_svr_checker_state (ipwrapper.c): it always leaves has_run set.
func (h *Health) set(up bool) {
	h.up = up
	h.hasRun = true
}

func afterRetries(reason string, n int) string {
	if n <= 0 {
		return reason
	}
	s := "retries"
	if n == 1 {
		s = "retry"
	}
	return fmt.Sprintf("%s (failed after %d %s)", reason, n, s)
}

// observeTCP follows keepalived 2.2.7 check_tcp.c tcp_epilog(). A failure
// of an up checker is retried after delay_before_retry until retry_it
// reaches retry; the next failure marks it down. The retry counter cycles
// whatever the state, so a down TCP_CHECK is also probed retry times at
// delay_before_retry, then once after delay_loop.
func (h *Health) observeTCP(r Result) (time.Duration, string) {
	reason := r.Reason
	if r.OK || h.retryIt >= h.p.Retry {
		h.retryIt = 0
		if r.OK && (!h.up || !h.hasRun) {
			h.set(true)
		} else if !r.OK && (h.up || !h.hasRun) {
			// "failed after %u retries" when retry && has_run.
			if h.hasRun {
				reason = afterRetries(reason, h.p.Retry)
			}
			h.set(false)
		}
		h.hasRun = true
		return h.p.DelayLoop, reason
	}
	h.retryIt++
	h.hasRun = true
	return h.p.DelayBeforeRetry, reason
}

// observeUDP follows keepalived 2.2.7 check_udp.c udp_epilog() and
// check_ping.c icmp_epilog(): as TCP_CHECK, except that a down checker is
// not retried: it is probed every delay_loop.
func (h *Health) observeUDP(r Result) (time.Duration, string) {
	reason := r.Reason
	delay := h.p.DelayLoop
	if r.OK || ((h.up || !h.hasRun) && h.retryIt >= h.p.Retry) {
		h.retryIt = 0
		if r.OK && (!h.up || !h.hasRun) {
			h.set(true)
		} else if !r.OK && (h.up || !h.hasRun) {
			if h.hasRun {
				reason = afterRetries(reason, h.p.Retry)
			}
			h.set(false)
		}
	} else if h.up {
		delay = h.p.DelayBeforeRetry
		h.retryIt++
	}
	h.hasRun = true
	return delay, reason
}

// observeDNS follows keepalived 2.2.7 check_dns.c dns_final(): retries while
// up, no retries while down, retry_it reset after every verdict.
func (h *Health) observeDNS(r Result) (time.Duration, string) {
	reason := r.Reason
	if !r.OK {
		if h.up || !h.hasRun {
			if h.retryIt < h.p.Retry {
				h.retryIt++
				h.hasRun = true
				return h.p.DelayBeforeRetry, reason
			}
			if h.hasRun {
				reason = afterRetries(reason, h.p.Retry)
			}
			h.set(false)
		}
	} else if !h.up || !h.hasRun {
		h.set(true)
	}
	h.retryIt = 0
	return h.p.DelayLoop, reason
}

// observeSMTP follows keepalived 2.2.7 check_smtp.c smtp_final() and
// smtp_start_check_thread(): every delay_loop round starts with retry_it = 0
// (so even the first failure after start is retried), each failure is
// retried after delay_before_retry while ++retry_it <= retry, whatever the
// state, and the failure after that marks the checker down.
func (h *Health) observeSMTP(r Result) (time.Duration, string) {
	reason := r.Reason
	if !r.OK {
		h.retryIt++
		if h.retryIt <= h.p.Retry {
			return h.p.DelayBeforeRetry, reason
		}
		if h.up || !h.hasRun {
			reason = afterRetries(reason, h.p.Retry)
			h.set(false)
		}
		h.retryIt = 0 // smtp_start_check_thread, at the next round
		return h.p.DelayLoop, reason
	}
	h.retryIt = 0
	if !h.up || !h.hasRun {
		h.set(true)
	}
	h.hasRun = true
	return h.p.DelayLoop, reason
}

// observeMisc follows keepalived 2.2.7 check_misc.c misc_check_child_thread():
// success (exit 0, or 2..255 with misc_dynamic) sets the dynamic weight and
// marks the checker up; a failure of an up checker is retried until retry_it
// reaches retry, then marks it down and drops its dynamic weight; failures
// of a down checker change nothing. The next run is due delay_loop (or
// delay_before_retry while retrying) after the START of this one, at once if
// that is already past.
//
// keepalived 2.2.7 forgets to take the dynamic weight off the real server
// when a script that timed out (killed by a signal) marks it down; vigil
// drops it on every down.
func (h *Health) observeMisc(now time.Time, r Result) (time.Time, string) {
	reason := r.Reason
	if r.OK {
		if !sameInt(h.weight, r.Weight) {
			h.weight = copyInt(r.Weight)
		}
		if !h.up || !h.hasRun {
			h.set(true)
		}
		h.retryIt = 0
	} else if h.up || !h.hasRun {
		if h.retryIt < h.p.Retry {
			h.retryIt++
		} else {
			if h.hasRun {
				reason = afterRetries(reason, h.p.Retry)
			}
			h.retryIt = 0
			h.weight = nil
			h.set(false)
		}
	}
	h.hasRun = true
	delay := h.p.DelayLoop
	if h.retryIt > 0 {
		delay = h.p.DelayBeforeRetry
	}
	next := now.Add(-r.Latency).Add(delay)
	if !next.After(now) {
		next = now.Add(time.Microsecond)
	}
	return next, reason
}

// observeHTTP follows keepalived 2.2.7 check_http.c epilog() and
// timeout_epilog(). Each attempt checks one url (Step); a success moves to
// the next url after delay_loop, and the checker is up once the last url
// succeeds. A failure of an up checker (or of any checker before its first
// verdict) retries the same url after delay_before_retry; the failure after
// retry retries marks it down and remembers the failed url, which is then
// checked every max(delay_before_retry, delay_loop). When the failed url
// succeeds, all urls are checked again from the first.
//
// fast_recovery checks the next url at once while the checker has not run
// or is down with no failed url. keepalived 2.2.7 also does so after a
// failure in that state, which re-checks a refusing server in a tight loop;
// vigil applies fast_recovery only after a success.
func (h *Health) observeHTTP(r Result) (time.Duration, string) {
	const (
		mNew = iota
		mRetry
		mFailed
	)
	reason := r.Reason
	var method int
	switch {
	case r.OK:
		method = mNew
	case h.up || !h.hasRun:
		h.hasRun = true
		method = mRetry
	default:
		method = mFailed
	}
	done := false
	switch method {
	case mNew:
		h.step++
		done = h.step >= h.p.Steps
		h.retryIt = 0
	case mRetry:
		h.retryIt++
	}
	switch {
	case method == mNew && done && h.failed < 0:
		if !h.up || !h.hasRun {
			h.set(true)
		}
		h.hasRun = true
		h.step = 0
		h.retryIt = 0
	case method == mRetry && h.retryIt > h.p.Retry:
		if h.up {
			reason = afterRetries(reason, h.retryIt-1)
			h.set(false)
		}
		h.failed = h.step
	case method == mNew && h.failed >= 0:
		h.failed = -1
		h.step = 0
		h.retryIt = 0
	}
	var delay time.Duration
	switch {
	case method == mNew:
		delay = h.p.DelayLoop
		if !h.hasRun {
			h.retryIt = h.p.Retry
		}
		if h.p.FastRecovery && (!h.hasRun || (!h.up && h.failed < 0)) {
			delay = 0
		}
	case h.failed >= 0:
		delay = max(h.p.DelayBeforeRetry, h.p.DelayLoop)
	default:
		delay = h.p.DelayBeforeRetry
	}
	return delay, reason
}

// observeFile follows keepalived 2.2.7 track_file.c
// process_update_checker_track_file_status(): no retries; a fault marks the
// checker down and drops its weight, any other value marks it up with the
// value as weight offset.
func (h *Health) observeFile(r Result) time.Duration {
	if r.OK {
		h.delta = copyInt(r.WeightDelta)
		h.set(true)
	} else {
		h.delta = nil
		h.set(false)
	}
	return h.p.DelayLoop
}

func sameInt(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func copyInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
