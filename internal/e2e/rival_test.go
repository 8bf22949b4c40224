package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// TestRivalKeepalivedMaster: a rolling change of advert_int (VRRPv2) on the
// keepalived side of a mixed pair. keepalived drops the vigil master's
// adverts ("advertisement interval mismatch") and becomes master too, as
// two keepalived would. vigil's status names the peer and the cause while
// it lasts, and SIGTERM hands over to keepalived at its first advert
// instead of waiting out the handover bound for an advert it would accept.
// A vigil backup follows a keepalived master whose advert_int differs.
func TestRivalKeepalivedMaster(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "rival", 2)
	kin := e2e.Tutorial(false)
	kin.AdvertInt = "2"
	v := e.start(e2e.Vigil, 0, e2e.Conf{Instances: []e2e.Instance{e2e.Tutorial(true)}})
	k := e.start(e2e.Keepalived, 1, e2e.Conf{Instances: []e2e.Instance{kin}})
	e.waitHolds(e.node(1), ownVIP, true, 20*time.Second)
	const cause = "192.168.1.106 (priority 99) advertises as master too: its advert_int differs (interval 2s, ours 1s)"
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := status_(t, v, "VI_1")
		if st.State == "MASTER" && strings.Contains(st.Warning, cause) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vigil beside a keepalived master with another advert_int: %s, warning %q; want MASTER naming it (%q)", st.State, st.Warning, cause)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !waitLogged(v, "another router advertises as MASTER too") {
		t.Errorf("no log line naming the rival master")
	}
	if code, err := v.Term(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("SIGTERM: exit %d, %v", code, err)
	}
	if !strings.Contains(v.Log(), `reason="handover: new master 192.168.1.106 (priority 99)"`) {
		t.Errorf("the stop did not hand over to keepalived's advert; vigil:\n%s", v.Log())
	}
	if !e.holds(e.node(1), ownVIP) {
		t.Errorf("keepalived does not hold the VIP after vigil stopped:\n%s", k.Log())
	}

	// The other order: keepalived, master at advert_int 2, and vigil
	// started as its backup at advert_int 1. vigil follows it (keepalived
	// would drop its adverts and take the VIP too) and says why.
	vin := e2e.Tutorial(false)
	vin.Priority = 98
	if err := v.WriteConfig(e2e.Conf{RouterID: e.node(0).Name(), Instances: []e2e.Instance{vin}}.String()); err != nil {
		t.Fatal(err)
	}
	e.restart(v)
	e.waitState(v, "VI_1", "BACKUP", 10*time.Second)
	time.Sleep(6 * time.Second) // more than vigil's Master_Down_Interval (3.6 s)
	st := status_(t, v, "VI_1")
	if st.State != "BACKUP" || e.holds(e.node(0), ownVIP) || !strings.Contains(st.Warning, "advertises every 2s, ours 1s") {
		t.Errorf("vigil backup of a keepalived master at advert_int 2: %s, holds the VIP %v, warning %q\n%s", st.State, e.holds(e.node(0), ownVIP), st.Warning, v.Log())
	}
}
