package lvs

import (
	"fmt"
	"testing"
	"time"
)

// sorry_server, quorum, hysteresis and inhibit_on_failure, on three virtual
// servers over the same two web servers (keepalived 2.2.7 ipwrapper.c):
//
//   - :80 quorum 2, weights 1+1, sorry_server: one server down loses the
//     quorum and the sorry server takes all the traffic (the alive server
//     is taken out too); it gives it back when the quorum returns;
//   - :81 quorum 2, hysteresis 1, weights 2 (web1) + 1 (web2), sorry_server:
//     the quorum is lost only below quorum−hysteresis (1) and regained only
//     at quorum+hysteresis (3): web1 down (sum 1) keeps it, both down loses
//     it (the sorry server serves), web2 back (sum 1) does not regain it,
//     web1 back (sum 3) does;
//   - :82 inhibit_on_failure: a dead server stays in the service at weight
//     0 (no new connections) instead of being removed.
func TestQuorumSorryServerInhibit(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, "quorum", topoOpts{sorry: true})
	d := tp.dirs[0]
	check := tcpCheck("1", 1, "1")
	sorry := "sorry_server " + sorryIP + " 80"
	d.writeConfig(vrrpSingle() +
		vs{port: 80, delayLoop: "1", extra: []string{"quorum 2", sorry}, reals: []rs{
			{addr: web1, weight: 1, checker: check}, {addr: web2, weight: 1, checker: check}}}.String() +
		vs{port: 81, delayLoop: "1", extra: []string{"quorum 2", "hysteresis 1", sorry}, reals: []rs{
			{addr: web1, weight: 2, checker: check}, {addr: web2, weight: 1, checker: check}}}.String() +
		vs{port: 82, delayLoop: "1", extra: []string{"inhibit_on_failure"}, reals: []rs{
			{addr: web1, weight: 1, checker: check}, {addr: web2, weight: 1, checker: check}}}.String())
	d.start()
	waitServing(t, d, 80, 81, 82)
	waitChecked(t, d, patience)

	type want struct {
		dests    map[string]int // address -> weight in nftables
		quorumUp bool
		traffic  map[string]int // of 10 requests; nil: not checked
	}
	expect := func(step string, healthy map[string]bool, ws map[int]want) {
		t.Helper()
		// First the checkers' verdicts, so that a state that must NOT
		// change (hysteresis) is checked after the change was seen.
		waitFor(t, patience, step+": checker verdicts", func() (bool, string) {
			s := d.mustStatus()
			for port := range ws {
				for a, h := range healthy {
					if r, ok := realServer(s, port, a); !ok || r.Healthy != h {
						return false, fmt.Sprintf(":%d %s %+v", port, a, r)
					}
				}
			}
			return true, ""
		})
		for port, w := range ws {
			waitFor(t, patience, fmt.Sprintf("%s: :%d in nftables", step, port), func() (bool, string) {
				dests, _, err := nftDests(d.host, port)
				return err == nil && fmt.Sprint(dests) == fmt.Sprint(keyed(w.dests)), fmt.Sprint(dests, err)
			})
			v, _ := virtualServer(d.mustStatus(), port)
			wantSorry := w.dests[sorryIP] > 0
			if v.QuorumUp != w.quorumUp || v.SorryActive != wantSorry {
				t.Errorf("%s: :%d quorum_up=%v sorry_active=%v, want %v and %v", step, port, v.QuorumUp, v.SorryActive, w.quorumUp, wantSorry)
			}
			if w.traffic != nil {
				if got := tp.client.spread(port, 10); fmt.Sprint(got) != fmt.Sprint(w.traffic) {
					t.Errorf("%s: :%d traffic %v, want %v", step, port, got, w.traffic)
				}
			}
		}
		t.Logf("%s: as expected", step)
	}

	expect("all up", map[string]bool{web1: true, web2: true}, map[int]want{
		80: {map[string]int{web1: 1, web2: 1}, true, map[string]int{web1: 5, web2: 5}},
		81: {map[string]int{web1: 2, web2: 1}, true, nil},
		82: {map[string]int{web1: 1, web2: 1}, true, map[string]int{web1: 5, web2: 5}},
	})
	tp.web[web1].stop()
	expect("web1 down", map[string]bool{web1: false, web2: true}, map[int]want{
		80: {map[string]int{sorryIP: 1}, false, map[string]int{sorryIP: 10}},
		81: {map[string]int{web2: 1}, true, map[string]int{web2: 10}}, // 1 ≥ quorum−hysteresis
		82: {map[string]int{web1: 0, web2: 1}, true, map[string]int{web2: 10}},
	})
	tp.web[web2].stop()
	expect("both down", map[string]bool{web1: false, web2: false}, map[int]want{
		80: {map[string]int{sorryIP: 1}, false, map[string]int{sorryIP: 10}},
		81: {map[string]int{sorryIP: 1}, false, map[string]int{sorryIP: 10}},
		82: {map[string]int{web1: 0, web2: 0}, false, nil},
	})
	// No destination with a weight: the connection must fail (IPVS: "no
	// destination available", the director's stack refuses it).
	start := time.Now()
	if srv, err := tp.client.get(82); err == nil {
		t.Errorf(":82 with every real server inhibited answered from %s", srv)
	} else {
		t.Logf(":82 with every real server at weight 0: request fails after %v: %v", time.Since(start).Round(time.Millisecond), errString(err))
	}
	tp.web[web2].start()
	expect("web2 back", map[string]bool{web1: false, web2: true}, map[int]want{
		80: {map[string]int{sorryIP: 1}, false, map[string]int{sorryIP: 10}},
		81: {map[string]int{sorryIP: 1}, false, map[string]int{sorryIP: 10}}, // 1 < quorum+hysteresis
		82: {map[string]int{web1: 0, web2: 1}, true, map[string]int{web2: 10}},
	})
	tp.web[web1].start()
	expect("web1 back", map[string]bool{web1: true, web2: true}, map[int]want{
		80: {map[string]int{web1: 1, web2: 1}, true, map[string]int{web1: 5, web2: 5}},
		81: {map[string]int{web1: 2, web2: 1}, true, nil},
		82: {map[string]int{web1: 1, web2: 1}, true, map[string]int{web1: 5, web2: 5}},
	})
}
