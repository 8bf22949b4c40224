package lvs

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// resync is the reconciler's repair interval in `vigil run` (reconcile.Options'
// default; the daemon does not change it).
const resync = 10 * time.Second

// The reconciler repairs drift: `nft delete table inet vigil` by hand in
// the director, and the table comes back within the resync interval. A
// reload that adds a real server (`vigil reload`) applies one
// incremental change to the table (no table rebuilt, seen with `nft
// monitor`) and keeps every established keep-alive connection to the other
// servers; a SIGHUP that removes it again does the same.
func TestDriftRepairAndIncrementalReload(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, "drift", topoOpts{webs: []string{web1, web2, web3}})
	d := tp.dirs[0]
	check := tcpCheck("1", 1, "1")
	two := vs{port: 80, delayLoop: "1", reals: []rs{{addr: web1, checker: check}, {addr: web2, checker: check}}}
	three := two
	three.reals = append(append([]rs(nil), two.reals...), rs{addr: web3, checker: check})
	d.writeConfig(vrrpSingle() + two.String())
	d.start()
	waitServing(t, d, 80)
	waitChecked(t, d, patience)

	// Drift: the table deleted by hand. Connections established before
	// it do not survive: their NAT binding stays in conntrack, but the
	// kernel unregisters its NAT hooks with the namespace's last nat chain
	// (nf_nat_core.c nf_nat_unregister_fn), so their packets are no longer
	// translated. That is the kernel's doing, logged here, not asserted.
	pre := tp.client.keepAlive()
	if _, _, err := pre.get(80); err != nil {
		t.Fatal(err)
	}
	mustRun(t, d.host, "nft", "delete", "table", "inet", "vigil")
	deleted := time.Now()
	if _, err := tp.client.get(80); err == nil {
		t.Logf("a new connection right after the deletion still got an answer (vigil was quicker than this request)")
	} else {
		t.Logf("a new connection while the table is gone: %s", errString(err))
	}
	if srv, reused, err := pre.get(80); err != nil || !reused {
		t.Logf("a keep-alive connection established before the deletion: reused=%v err=%v (lost with the NAT hooks)", reused, err)
	} else {
		t.Logf("a keep-alive connection established before the deletion still answers (from %s)", srv)
	}
	waitFor(t, resync+patience, "the table comes back", func() (bool, string) {
		dests, _, err := d.kernel().dests(80)
		return err == nil && len(dests) == 2, fmt.Sprint(dests, err)
	})
	took := time.Since(deleted)
	t.Logf("table inet vigil restored %v after it was deleted (resync interval %v)", took.Round(time.Millisecond), resync)
	if took > resync+10*time.Second {
		t.Errorf("the table came back after %v; the resync interval is %v", took, resync)
	}
	if per := tp.client.spread(80, 10); per[web1] != 5 || per[web2] != 5 {
		t.Errorf("after the repair: %v", per)
	}

	// Four keep-alive connections: rr puts two on each server.
	var conns []*keepAlive
	owner := map[*keepAlive]string{}
	for range 4 {
		k := tp.client.keepAlive()
		srv, _, err := k.get(80)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, k)
		owner[k] = srv
	}
	t.Logf("keep-alive connections: %v", ownerList(conns, owner))
	stillThere := func(step string) {
		t.Helper()
		for _, k := range conns {
			srv, reused, err := k.get(80)
			switch {
			case err != nil:
				t.Errorf("%s: keep-alive connection %s to %s: %v", step, k.local, owner[k], err)
			case !reused || srv != owner[k]:
				t.Errorf("%s: keep-alive connection %s to %s: reused=%v, answered by %s; want the same connection and server", step, k.local, owner[k], reused, srv)
			}
		}
	}

	// Reload with a third real server: one incremental change.
	handle := tableHandle(t, d)
	mon, err := d.host.Start("nft", "monitor")
	if err != nil {
		t.Fatal(err)
	}
	waitMonitor(t, d.host, mon)
	d.writeConfig(vrrpSingle() + three.String())
	out, err := d.vigil("reload", "--api-socket", d.sock())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vigil reload:\n%s", out)
	var changed []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "+ ") || strings.HasPrefix(l, "- ") || strings.HasPrefix(l, "~ ") {
			changed = append(changed, l)
		}
	}
	if len(changed) != 1 || changed[0] != "~ virtual_server ["+vip+"]:tcp:80" || !strings.Contains(out, "(1 changes)") {
		t.Errorf("vigil reload output %q, want one change: ~ virtual_server [%s]:tcp:80 (1 changes)", out, vip)
	}
	waitPool(t, d, 80, web3, true, patience)
	// The monitor prints the reload's events in the order of the
	// transaction: wait for web3's element, then a little for anything
	// after it.
	if !mon.WaitOutput(web3, patience) {
		t.Errorf("nft monitor printed nothing about %s within %v", web3, patience)
	}
	time.Sleep(300 * time.Millisecond)
	mon.Kill()
	events := monitorEvents(mon.Output())
	t.Logf("nft monitor during the reload (%d events):\n%s", len(events), strings.Join(events, "\n"))
	if h := tableHandle(t, d); h != handle {
		t.Errorf("table handle %s before the reload, %s after: the table was rebuilt", handle, h)
	}
	var added bool
	for _, e := range events {
		if strings.HasPrefix(e, "delete table") || strings.HasPrefix(e, "add table") {
			t.Errorf("the reload re-created the table: %q", e)
		}
		if strings.Contains(e, web3) && strings.HasPrefix(e, "add element") {
			added = true
		}
		if (strings.Contains(e, web1) || strings.Contains(e, web2)) && strings.HasPrefix(e, "delete element inet vigil svc_tcp_192_168_118_110_80_dests") {
			t.Errorf("the reload took an unchanged real server out of the service: %q", e)
		}
	}
	if !added {
		t.Errorf("nft monitor saw no element added for %s", web3)
	}
	stillThere("after vigil reload")
	if per := tp.client.spread(80, 30); per[web1] != 10 || per[web2] != 10 || per[web3] != 10 {
		t.Errorf("rr over three servers: %v", per)
	}

	// SIGHUP (keepalived's reload signal) removing it again.
	d.writeConfig(vrrpSingle() + two.String())
	d.signal(syscall.SIGHUP)
	waitFor(t, patience, "SIGHUP reload done", func() (bool, string) {
		s := d.mustStatus()
		return s.Daemon.Reloads == 2, fmt.Sprint("reloads ", s.Daemon.Reloads)
	})
	waitFor(t, patience, web3+" leaves the service", func() (bool, string) {
		dests, _, err := nftDests(d.host, 80)
		_, in := dests[web3+":80"]
		return err == nil && !in && len(dests) == 2, fmt.Sprint(dests, err)
	})
	if h := tableHandle(t, d); h != handle {
		t.Errorf("table handle %s before, %s after the SIGHUP: the table was rebuilt", handle, h)
	}
	stillThere("after SIGHUP")
	if per := tp.client.spread(80, 10); per[web1] != 5 || per[web2] != 5 {
		t.Errorf("after the SIGHUP: %v", per)
	}
}

func ownerList(conns []*keepAlive, owner map[*keepAlive]string) string {
	var s []string
	for _, k := range conns {
		s = append(s, k.local+"→"+owner[k])
	}
	return strings.Join(s, ", ")
}

var handleRE = regexp.MustCompile(`table inet vigil \{ # handle ([0-9]+)`)

// tableHandle is the kernel's handle of `table inet vigil`: a table deleted
// and created again gets a new one.
func tableHandle(t testing.TB, d *director) string {
	t.Helper()
	out := mustRun(t, d.host, "nft", "-a", "list", "table", "inet", "vigil")
	m := handleRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no table handle in:\n%s", out)
	}
	return m[1]
}

// probeTable is the table waitMonitor adds and deletes to see that nft
// monitor has subscribed; monitorEvents leaves its events out.
const probeTable = "vgmonprobe"

// waitMonitor returns once nft monitor, started in h, prints events:
// it subscribes some time after it starts, later still on a loaded
// machine, and prints nothing when it has.
func waitMonitor(t testing.TB, h *lab.Host, mon *lab.Proc) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !strings.Contains(mon.Output(), probeTable) {
		if time.Now().After(deadline) {
			t.Fatalf("nft monitor printed no event within %v:\n%s", patience, mon.Output())
		}
		mustRun(t, h, "nft", "add table inet "+probeTable)
		mustRun(t, h, "nft", "delete table inet "+probeTable)
		time.Sleep(50 * time.Millisecond)
	}
}

// monitorEvents returns nft monitor's event lines (without waitMonitor's).
func monitorEvents(out string) []string {
	var ev []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") && !strings.Contains(l, probeTable) {
			ev = append(ev, l)
		}
	}
	return ev
}
