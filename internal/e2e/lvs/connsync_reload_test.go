package lvs

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestReloadConnSync changes conntrack_sync on a running NAT director
// pair with reloads, against Debian's conntrackd: added, it starts
// conntrackd on both and the BACKUP's external cache receives the
// MASTER's flow; changed on the BACKUP alone, the BACKUP's conntrackd
// restarts and its empty cache is filled again by the resync it asks the
// MASTER for (the MASTER's conntrackd does not restart); a new channel on
// both restarts both; removed, it stops them. The VRRP states and an
// established connection through the VIP are untouched throughout.
func TestReloadConnSync(t *testing.T) {
	t.Parallel()
	netnstest.RequireCommand(t, "conntrackd")
	tp := newTopo(t, "csrl", topoOpts{directors: 2, gateway: backVIP, syncLink: true})
	master, backup := tp.dirs[0], tp.dirs[1]
	conf := func(i int, sync, mcast bool, extra string) string {
		c := connSyncConf(i, sync, mcast)
		return strings.Replace(c, "conntrack_sync {\n", "conntrack_sync {\n"+extra, 1)
	}
	master.writeConfig(conf(0, false, false, ""))
	backup.writeConfig(conf(1, false, false, ""))
	startPair(t, master, backup)
	waitChecked(t, master, patience)
	k := tp.client.keepAlive()
	if _, _, err := k.get(80); err != nil {
		t.Fatal(err)
	}

	before := map[*director]int{master: len(master.output()), backup: len(backup.output())}
	reload := func(d *director, c, want string) {
		t.Helper()
		d.writeConfig(c)
		out, err := d.vigil("reload", "--api-socket", d.sock())
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("%s: reload: %v; want %q in\n%s", d.host.Name(), err, want, out)
		}
	}
	// running waits until conntrackd runs, hears its peer and has a
	// role, and returns its PID.
	running := func(d *director, other int) int {
		t.Helper()
		var pid int
		waitFor(t, patience, d.host.Name()+": a new conntrackd runs and hears its peer", func() (bool, string) {
			cs := d.mustStatus().ConnSync
			if cs == nil {
				return false, "no conn_sync in the status"
			}
			pid = cs.PID
			return cs.Alive && pid != other && cs.Restarts == 0 && len(cs.Warnings) == 0 && cs.Role != "INIT", fmt.Sprintf("%+v", *cs)
		})
		return pid
	}
	// replicated waits until the BACKUP's external cache holds the
	// MASTER's flow.
	replicated := func(what string) {
		t.Helper()
		waitFor(t, patience, what, func() (bool, string) {
			cs := backup.mustStatus().ConnSync
			return cs != nil && cs.External > 0, fmt.Sprintf("%+v", cs)
		})
	}

	reload(backup, conf(1, true, false, ""), "+ conntrack_sync")
	reload(master, conf(0, true, false, ""), "+ conntrack_sync")
	mpid, bpid := running(master, 0), running(backup, 0)
	replicated("the BACKUP's external cache receives the MASTER's flow")

	// The BACKUP alone: a new conntrackd there, filled by the resync it
	// requests; the MASTER's keeps running.
	reload(backup, conf(1, true, false, "\ttimeout 6\n"), "~ conntrack_sync")
	bpid2 := running(backup, bpid)
	replicated("the restarted BACKUP's cache is filled by the resync it asked for")
	if cs := master.mustStatus().ConnSync; cs == nil || cs.PID != mpid {
		t.Errorf("the MASTER's conntrackd changed on a reload of the BACKUP: %+v (was pid %d)", cs, mpid)
	}

	// A new channel on both.
	reload(backup, conf(1, true, true, "\ttimeout 6\n"), "~ conntrack_sync")
	reload(master, conf(0, true, true, ""), "~ conntrack_sync")
	mpid2, bpid3 := running(master, mpid), running(backup, bpid2)
	replicated("the BACKUP's cache over the multicast channel")

	reload(backup, conf(1, false, false, ""), "- conntrack_sync")
	reload(master, conf(0, false, false, ""), "- conntrack_sync")
	for _, d := range tp.dirs {
		if cs := d.mustStatus().ConnSync; cs != nil {
			t.Errorf("%s: conn_sync in the status after its removal: %+v", d.host.Name(), cs)
		}
	}
	for _, pid := range []int{mpid2, bpid3} {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("conntrackd %d still runs after conntrack_sync was removed", pid)
		}
	}

	if _, reused, err := k.get(80); err != nil || !reused {
		t.Errorf("the connection established before the reloads: reused %v, %v", reused, err)
	}
	m, b := master.mustStatus(), backup.mustStatus()
	if states(m) != "MASTER MASTER" || states(b) != "BACKUP BACKUP" {
		t.Errorf("states after the reloads: %s / %s", states(m), states(b))
	}
	for _, d := range tp.dirs {
		if o := d.output()[before[d]:]; strings.Contains(o, "msg=transition") {
			t.Errorf("%s: a transition during the reloads:\n%s", d.host.Name(), o)
		}
	}
}
