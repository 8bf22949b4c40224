package lvs

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// checkTimings are a TCP_CHECK's knobs, in seconds.
type checkTimings struct {
	delayLoop, connectTimeout, retry, delayBeforeRetry int
}

func (c checkTimings) d(n int) time.Duration { return time.Duration(n) * time.Second }

// The tutorial's experiment: requests through the VIP spread over both web
// servers (rr); one web server is stopped and leaves the pool after the
// checker's retries, with no client request failing once it has left; it
// is started again and comes back within one check.
//
// keepalived 2.2.7 check_tcp.c tcp_epilog(): a failure of an up checker is
// retried `retry` times, `delay_before_retry` apart, and the next failure
// marks it down; the first check after the stop comes at most `delay_loop`
// later. With nginx stopped, connections are refused at once, so the server
// leaves between retry × delay_before_retry and delay_loop + retry ×
// delay_before_retry after the stop. With the host gone (its cable
// unplugged) every attempt also waits connect_timeout, the first and each
// retry: (retry+1) × connect_timeout more. A down checker is probed every
// delay_before_retry (retry times) or delay_loop, so it returns within the
// longer of the two.
func TestTCPCheckRemovesAndRestoresRealServer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tm     checkTimings
		unplug bool
	}{
		{"scaled", checkTimings{delayLoop: 1, connectTimeout: 1, retry: 1, delayBeforeRetry: 1}, false},
		{"scaled_host_unplugged", checkTimings{delayLoop: 1, connectTimeout: 1, retry: 1, delayBeforeRetry: 1}, true},
		// The tutorial's values: "about 9 s later it is gone from
		// ipvsadm; enabling it again takes about 3 s".
		{"tutorial", checkTimings{delayLoop: 6, connectTimeout: 3, retry: 3, delayBeforeRetry: 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testRemoveRestore(t, tc.tm, tc.unplug)
		})
	}
}

func testRemoveRestore(t *testing.T, tm checkTimings, unplug bool) {
	tp := newTopo(t, "tcpck", topoOpts{})
	d := tp.dirs[0]
	check := tcpCheck(fmt.Sprint(tm.connectTimeout), tm.retry, fmt.Sprint(tm.delayBeforeRetry))
	d.writeConfig(vrrpSingle() + vs{port: 80, delayLoop: fmt.Sprint(tm.delayLoop), reals: []rs{
		{addr: web1, checker: check}, {addr: web2, checker: check},
	}}.String())
	d.start()
	waitServing(t, d, 80)

	// rr: a lone client alternates between the two servers.
	per := tp.client.spread(80, 20)
	t.Logf("20 requests through the VIP: %v", per)
	if per[web1] < 8 || per[web2] < 8 || per["error"] > 0 {
		t.Fatalf("rr spread over %s and %s: %v", web1, web2, per)
	}

	// The first check of web1 must have succeeded before the stop: until
	// then keepalived lets one failure take a server down ("for non alpha
	// mode, one failure is enough initially").
	waitFor(t, d.dur(tm.delayLoop)+patience, "first TCP_CHECK of "+web1, func() (bool, string) {
		r, ok := realServer(d.mustStatus(), 80, web1)
		return ok && len(r.Checkers) == 1 && !r.Checkers[0].LastRun.IsZero() && r.Checkers[0].OK, fmt.Sprintf("%+v", r)
	})

	p := tp.client.startPoller(80, 2, 20*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	// The bounds of the removal time (see the test's comment).
	lower := tm.d(tm.retry * tm.delayBeforeRetry)
	bound := tm.d(tm.delayLoop + tm.connectTimeout + tm.retry*tm.delayBeforeRetry)
	how := "nginx stopped"
	// stopping is when the action began, stopped when it had taken effect
	// (`ip link set` or the kill can take a while on a loaded machine).
	stopping := time.Now()
	if unplug {
		how = "its cable was unplugged"
		lower += tm.d((tm.retry + 1) * tm.connectTimeout)
		bound = tm.d(tm.delayLoop + (tm.retry+1)*tm.connectTimeout + tm.retry*tm.delayBeforeRetry)
		if err := tp.web[web1].host.SetCable("eth0", false); err != nil {
			t.Fatal(err)
		}
	} else {
		tp.web[web1].stop()
	}
	stopped := time.Now()
	waitFor(t, bound+patience, web1+" leaves the nftables service", func() (bool, string) {
		dests, ok, err := d.kernel().dests(80)
		_, in := dests[web1+":80"]
		return ok && !in && err == nil, fmt.Sprint(dests, err)
	})
	left := time.Now()
	if dests, _, err := nftDests(d.host, 80); err != nil || fmt.Sprint(dests) != fmt.Sprint(map[string]int{web2 + ":80": 1}) {
		t.Errorf("nft list table inet vigil after the removal: %v %v; want only %s", dests, err, web2)
	}
	// Measured from when the server was surely gone (for the lower bound)
	// and from when its stop began (for the upper one).
	removal, removalMax := left.Sub(stopped), left.Sub(stopping)
	if r, _ := realServer(d.mustStatus(), 80, web1); r.Healthy || r.Weight != 0 {
		t.Errorf("%s out of the kernel's service but vigil status says %+v", web1, r)
	} else {
		t.Logf("vigil status: %s down: %s", web1, r.Reason)
	}
	t.Logf("%s left the pool %v after %s; expected %v ≤ t ≤ %v (delay_loop %ds, connect_timeout %ds, retry %d, delay_before_retry %ds)",
		web1, removal.Round(time.Millisecond), how, lower, bound, tm.delayLoop, tm.connectTimeout, tm.retry, tm.delayBeforeRetry)
	// The lower bound is safe under load (load only delays); it shows the
	// retries (and connect timeouts) are spent. The upper one gets slack
	// for a loaded machine.
	if removal < lower-300*time.Millisecond {
		t.Errorf("%s left after %v, before its retries were spent (%v)", web1, removal, lower)
	}
	if removalMax > bound+10*time.Second {
		t.Errorf("%s left after %v; keepalived's bound is %v", web1, removalMax, bound)
	}

	// Traffic after the removal: every request served by web2.
	time.Sleep(3 * time.Second)
	restarted := time.Now()
	if unplug {
		if err := tp.web[web1].host.SetCable("eth0", true); err != nil {
			t.Fatal(err)
		}
	} else {
		tp.web[web1].start()
	}
	ret := waitFor(t, tm.d(max(tm.delayLoop, tm.delayBeforeRetry)+tm.connectTimeout)+patience, web1+" back in the nftables service", func() (bool, string) {
		dests, _, err := d.kernel().dests(80)
		return dests[web1+":80"] == 1, fmt.Sprint(dests, err)
	})
	// Down, the checker tries every max(delay_loop, delay_before_retry);
	// an unplugged host also costs each try its connect_timeout.
	returnBound := tm.d(max(tm.delayLoop, tm.delayBeforeRetry))
	if unplug {
		returnBound += tm.d(tm.connectTimeout)
	}
	t.Logf("%s returned %v after it was back (within one check: ≤ %v)", web1, ret.Round(time.Millisecond), returnBound)
	if ret > returnBound+tm.d(tm.connectTimeout)+10*time.Second {
		t.Errorf("%s returned after %v; a down checker runs every %v", web1, ret, returnBound)
	}
	time.Sleep(2 * time.Second)
	res := p.halt()

	// Account the requests: those over before the stop, those that started
	// before the server left (including any in flight at the stop), those
	// that started after.
	var before, during, after []result
	for _, r := range res {
		switch {
		case r.end.Before(stopping):
			before = append(before, r)
		case r.start.Before(left):
			during = append(during, r)
		default:
			after = append(after, r)
		}
	}
	pb, fb := tally(before)
	pd, fd := tally(during)
	pa, fa := tally(after)
	t.Logf("requests before the stop: %d %v, failed %d", len(before), pb, len(fb))
	t.Logf("requests while %s was dead but in the pool (%v): %d %v, failed %d%s", web1, removal.Round(time.Millisecond), len(during), pd, len(fd), summarize(fd))
	t.Logf("requests after it left (incl. its return): %d %v, failed %d%s", len(after), pa, len(fa), summarize(fa))
	if len(fb) > 0 {
		t.Errorf("%d requests failed before anything was stopped:%s", len(fb), summarize(fb))
	}
	if len(fa) > 0 {
		t.Errorf("%d requests failed after %s had left the pool:%s", len(fa), web1, summarize(fa))
	}
	// rr sends every other new connection to the dead server until it
	// leaves: failures there show the traffic really went through it.
	late := 0 // answers from web1 to requests that started after the stop
	for _, r := range during {
		if r.err == nil && r.server == web1 && r.start.After(stopped) {
			late++
		}
	}
	if len(fd) == 0 || late > 0 {
		t.Errorf("while %s was dead and in the pool: %v answered (%d by it after the stop), %d failed; want failures and no answer from it", web1, pd, late, len(fd))
	}
	// After the return rr uses web1 again.
	var back map[string]int
	for _, r := range after {
		if r.start.After(restarted.Add(ret)) {
			if back == nil {
				back = map[string]int{}
			}
			back[r.server]++
		}
	}
	if back[web1] == 0 || back[web2] == 0 {
		t.Errorf("after %s returned: %v; want both servers", web1, back)
	}
}

func (d *director) dur(s int) time.Duration { return time.Duration(s) * time.Second }

// summarize lists failed requests briefly: when they started relative to the
// first, and the error.
func summarize(rs []result) string {
	if len(rs) == 0 {
		return ""
	}
	kinds := map[string]int{}
	for _, r := range rs {
		kinds[errString(r.err)]++
	}
	var b strings.Builder
	b.WriteString(" (")
	first := true
	for k, n := range kinds {
		if !first {
			b.WriteString(", ")
		}
		first = false
		fmt.Fprintf(&b, "%d× %s", n, k)
	}
	b.WriteString(")")
	return b.String()
}
