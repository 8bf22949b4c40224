package engine

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/script"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// TestTransitionLogKeepalivedWords: the transition line carries
// keepalived's own words, so that alerting that greps the journal for
// "Entering MASTER STATE" or "(VI_1) Entering BACKUP STATE" keeps working
// after the swap.
func TestTransitionLogKeepalivedWords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		_, m := runLoggedNode(t, &fakeLAN{}, "m", "192.168.1.105/24", []runspec.InstanceSpec{tutorialInstance(vrrp.StateMaster, 100)}, &logs)
		time.Sleep(5 * time.Second)
		m.stop(t)
		for _, want := range []string{
			`msg=transition instance=VI_1 from=INIT to=BACKUP priority=100 reason=start keepalived="(VI_1) Entering BACKUP STATE (init)"`,
			`keepalived="(VI_1) Entering MASTER STATE"` + "\n",
		} {
			if logs.count(want) != 1 {
				t.Errorf("log lacks %q:\n%s", want, logs.b.String())
			}
		}
		if n := logs.count("keepalived="); n != 2 {
			t.Errorf("%d lines with keepalived's words, want 2 (the stop has none):\n%s", n, logs.b.String())
		}
	})
}

func TestKeepalivedEntering(t *testing.T) {
	for _, tc := range []struct {
		from, to vrrp.State
		want     string
	}{
		{vrrp.StateInit, vrrp.StateBackup, "(VI 1) Entering BACKUP STATE (init)"},
		{vrrp.StateInit, vrrp.StateFault, "(VI 1) Entering FAULT STATE (init)"},
		{vrrp.StateBackup, vrrp.StateMaster, "(VI 1) Entering MASTER STATE"},
		{vrrp.StateMaster, vrrp.StateBackup, "(VI 1) Entering BACKUP STATE"},
		{vrrp.StateMaster, vrrp.StateFault, "(VI 1) Entering FAULT STATE"},
		{vrrp.StateMaster, vrrp.StateStopped, ""},
	} {
		if got := keepalivedEntering("VI 1", tc.from, tc.to); got != tc.want {
			t.Errorf("%v -> %v: %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestKeepalivedSyncing(t *testing.T) {
	for _, tc := range []struct {
		from, to vrrp.State
		want     string
	}{
		{vrrp.StateInit, vrrp.StateBackup, ""},
		{vrrp.StateBackup, vrrp.StateMaster, "VRRP_Group(VG_1) Syncing instances to MASTER state"},
		{vrrp.StateMaster, vrrp.StateBackup, "VRRP_Group(VG_1) Syncing instances to BACKUP state"},
		{vrrp.StateBackup, vrrp.StateFault, "VRRP_Group(VG_1) Syncing instances to FAULT state"},
		{vrrp.StateMaster, vrrp.StateStopped, ""},
	} {
		if got := keepalivedSyncing("VG_1", tc.from, tc.to); got != tc.want {
			t.Errorf("%v -> %v: %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestScriptDetail(t *testing.T) {
	for _, tc := range []struct {
		st   script.TrackStats
		want string
	}{
		{script.TrackStats{}, ""},
		{script.TrackStats{Runs: 3, Last: "exit status 0"}, "last run: exit status 0"},
		{script.TrackStats{Runs: 10, Failures: 4, TimeOuts: 1, Last: "timed out after 2s"}, "last run: timed out after 2s; 4 of 10 runs failed (1 timed out)"},
	} {
		if got := scriptDetail(tc.st); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st, got, tc.want)
		}
	}
}
