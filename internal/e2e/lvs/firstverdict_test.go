package lvs

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

// A checker's first verdict counts even when it changes nothing
// (keepalived 2.2.7 ipwrapper.c update_svr_checker_state, migrate_checkers):
//
//   - web2 is `alpha` and refuses connections from the start: it never
//     enters the service, and its first failed check runs its notify_down
//     ("if (checker->alpha || !alive) do_rs_notifies"); once it answers it
//     enters and notify_up runs;
//   - web1 fails, then a reload replaces its TCP_CHECK (another
//     connect_timeout) while it is down: when it answers again it returns
//     to the service at the new checker's first success;
//   - SIGTERM with `omega`: the alive real servers' notify_down and the
//     quorum_down script run (ipwrapper.c clear_service_rs /
//     update_vs_notifies with stopping), and the service leaves the kernel
//     (clear_service_vs: LVS_CMD_DEL), as it does without omega.
func TestFirstVerdictAlphaAndCheckerReload(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, "verdict", topoOpts{})
	d := tp.dirs[0]
	script, notes := noteScript(t, t.TempDir())
	notified := func(line string) bool {
		b, _ := os.ReadFile(notes)
		for _, l := range strings.Split(string(b), "\n") {
			if l == line {
				return true
			}
		}
		return false
	}
	conf := func(web1Timeout string) string {
		return vrrpSingle() + vs{port: 80, delayLoop: "1", extra: []string{"omega", fmt.Sprintf("quorum_down \"%s qdown\"", script)}, reals: []rs{
			{addr: web1, weight: 1, checker: tcpCheck(web1Timeout, 1, "1")},
			{addr: web2, weight: 1, checker: tcpCheck("1", 1, "1"), extra: []string{
				"alpha",
				fmt.Sprintf("notify_up \"%s up web2\"", script),
				fmt.Sprintf("notify_down \"%s down web2\"", script),
			}},
		}}.String()
	}
	tp.web[web2].stop()
	d.writeConfig(conf("1"))
	d.start()
	waitServing(t, d, 80)

	waitFor(t, patience, "alpha web2's first failure runs notify_down", func() (bool, string) {
		b, _ := os.ReadFile(notes)
		return notified("down web2"), string(b)
	})
	if dests, _, err := nftDests(d.host, 80); err != nil || fmt.Sprint(dests) != fmt.Sprint(keyed(map[string]int{web1: 1})) {
		t.Errorf("alpha web2 failing: dests %v %v, want web1 only", dests, err)
	}
	tp.web[web2].start()
	waitPool(t, d, 80, web2, true, patience)
	waitFor(t, patience, "web2 up runs notify_up", func() (bool, string) {
		b, _ := os.ReadFile(notes)
		return notified("up web2"), string(b)
	})

	tp.web[web1].stop()
	waitPool(t, d, 80, web1, false, patience)
	d.writeConfig(conf("2"))
	out, err := d.vigil("reload", "--api-socket", d.sock())
	if err != nil {
		t.Fatalf("vigil reload: %v\n%s", err, out)
	}
	tp.web[web1].start()
	took := waitPool(t, d, 80, web1, true, patience)
	t.Logf("web1 back in the service %v after its new checker could succeed", took)
	if b, _ := os.ReadFile(notes); strings.Count(string(b), "down web2") != 1 || notified("qdown") {
		t.Errorf("notes %q, want one notify_down of web2 and no quorum_down", b)
	}

	d.signal(syscall.SIGTERM)
	if !d.proc.Wait(patience) {
		t.Fatal("vigil did not exit on SIGTERM")
	}
	if b, _ := os.ReadFile(notes); strings.Count(string(b), "down web2") != 2 || !notified("qdown") {
		t.Errorf("after SIGTERM with omega: notes %q, want web2's notify_down again and quorum_down", b)
	}
	if dests, ok, err := nftDests(d.host, 80); err != nil || ok {
		t.Errorf("after SIGTERM: the service is still in nftables: %v %v", dests, err)
	}
}
