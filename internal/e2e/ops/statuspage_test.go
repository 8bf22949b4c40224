package ops

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
)

// TestStatusPageFollowsTheRealDaemon loads the status page of a real
// MASTER (--http-listen 127.0.0.1:8080) in headless Chromium inside the
// same namespace, then hands the instance over with `vigil handover`: the
// page, without a reload, shows VI_1 BACKUP with the daemon's reason, and
// the handover at the top of its timeline, within a few seconds, with the
// backup heard as a peer and the handover in the instance's one-hour
// strip; the browser reports no console error, exception or failed load.
func TestStatusPageFollowsTheRealDaemon(t *testing.T) {
	t.Parallel()
	chromium := netnstest.RequireCommand(t, "chromium")
	x := newPairLab(t, "page")
	d1 := newDaemon(t, x.n1, pairConf("n1", "MASTER", 150))
	d1.start("--http-listen", "127.0.0.1:8080")
	d1.waitFor("n1 MASTER", 20*time.Second, inState("MASTER", "VI_1"))
	d2 := newDaemon(t, x.n2, pairConf("n2", "BACKUP", 100))
	d2.start()
	d2.waitFor("n2 BACKUP", 20*time.Second, inState("BACKUP", "VI_1"))
	// The down real server's transition comes first, so that the handover
	// is the newest entry of the timeline.
	d1.waitFor("real servers checked", 20*time.Second, func(s status.Snapshot) bool {
		up, _ := realServer(s, pairVS, pairRealUp)
		down, ok := realServer(s, pairVS, pairRealDown)
		return up.Healthy && ok && !down.Healthy
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	b := startBrowser(t, ctx, x.n1, chromium)
	t.Logf("chromium ready in %v", time.Since(t0).Round(time.Millisecond))
	if err := b.call(ctx, b.session, "Page.navigate", map[string]any{"url": "http://127.0.0.1:8080/"}, nil); err != nil {
		t.Fatal(err)
	}
	state := textOf(`[data-instance="VI_1"] [data-field=state]`)
	loaded := b.waitFor(t, ctx, "VI_1 state at load", state, "MASTER", time.Minute)
	t.Logf("page loaded and showing VI_1 in %v", loaded.Round(time.Millisecond))
	b.waitFor(t, ctx, "real server shown", textOf(`[data-realserver="`+pairVS+` `+pairRealUp+`"] [data-field=weight]`), "2", 30*time.Second)
	if _, err := b.eval(ctx, `window.__vigilMarker = 7`); err != nil {
		t.Fatal(err)
	}

	// The transition, caused on the real daemon.
	out, errOut, code := d1.cli("handover", "VI_1")
	if code != 0 {
		t.Fatalf("vigil handover VI_1: exit %d: %s%s", code, out, errOut)
	}
	took := b.waitFor(t, ctx, "VI_1 state after the handover", state, "BACKUP", 20*time.Second)
	t.Logf("the page showed BACKUP %v after `vigil handover` returned (it polls every second)", took.Round(10*time.Millisecond))
	d2.waitFor("n2 took over", 10*time.Second, inState("MASTER", "VI_1"))

	// The page shows what the daemon says: its reason, and the handover at
	// the top of the timeline.
	s := d1.status()
	in, _ := instance(s, "VI_1")
	var last status.Transition
	for _, tr := range s.Transitions {
		if tr.Name == "VI_1" {
			last = tr
		}
	}
	if last.From != "MASTER" || last.To != "BACKUP" {
		t.Fatalf("n1's timeline ends with %+v, want VI_1 MASTER→BACKUP", last)
	}
	b.waitFor(t, ctx, "VI_1 reason", textOf(`[data-instance="VI_1"] [data-field=reason]`), in.Reason, 10*time.Second)
	v, err := b.eval(ctx, textOf(`[data-transition]`))
	if err != nil {
		t.Fatal(err)
	}
	var row string
	_ = json.Unmarshal(v, &row)
	for _, want := range []string{"VI_1", "MASTER→BACKUP", last.Reason} {
		if !strings.Contains(row, want) {
			t.Errorf("the timeline's first row %q lacks %q", row, want)
		}
	}
	// The engine's own bookkeeping on the page: n2 heard as a peer with
	// its priority, and VI_1's last hour with the handover as a period of
	// its own (INIT, BACKUP, MASTER, then BACKUP: at least three periods,
	// the last one BACKUP, and a mark per transition).
	b.waitFor(t, ctx, "n2 heard as a peer", textOf(`[data-instance="VI_1"] [data-peer="192.168.50.2"]`)+`.indexOf("prio 100") >= 0`, true, 10*time.Second)
	b.waitFor(t, ctx, "timeline ends BACKUP", `(function(){var s=Array.from(document.querySelectorAll('svg[data-timeline="VI_1"] [data-segment]'));
		return s.length>=3 && s[s.length-1].getAttribute("data-state")==="BACKUP" && s[s.length-2].getAttribute("data-state")==="MASTER"})()`, true, 10*time.Second)
	if n := len(in.History); n < 3 {
		t.Errorf("VI_1's history has %d transitions, want INIT→BACKUP, BACKUP→MASTER, MASTER→BACKUP", n)
	}
	b.waitFor(t, ctx, "no reload", `window.__vigilMarker`, 7, time.Second)
	if p := b.pageProblems(); len(p) > 0 {
		t.Errorf("the browser reported problems:\n%s", strings.Join(p, "\n"))
	}
}
