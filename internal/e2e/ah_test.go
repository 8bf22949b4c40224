package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// ahInstance is the tutorial's VI_1 (VRID 55, advert_int 1, VIP
// 192.168.1.100) with `auth_type AH` and the given auth_pass.
func ahInstance(prio int, pass string) e2e.Instance {
	in := e2e.Tutorial(false)
	in.Priority, in.AuthType, in.AuthPass = prio, "AH", pass
	return in
}

// keepalivedAuthErrors returns the lines of keepalived's log that say it
// rejected an advert for its authentication (vrrp.c vrrp_in_chk_ipsecah,
// vrrp_check_packet).
func keepalivedAuthErrors(log string) []string {
	var bad []string
	for _, l := range strings.Split(log, "\n") {
		for _, s := range []string{"IPSEC-AH : invalid", "already processed", "invalid IPSEC SPI",
			"AH header but auth type", "No AH header", "auth, expecting"} {
			if strings.Contains(l, s) {
				bad = append(bad, l)
				break
			}
		}
	}
	return bad
}

// TestAHInterop: keepalived 2.2.7 and vigil in one VRRPv2 group with
// `auth_type AH`, so a keepalived pair using AH migrates one host at a time.
//
//   - keepalived master, vigil backup: vigil verifies keepalived's adverts
//     (ICV, SPI, sequence) and stays BACKUP for longer than a
//     Master_Down_Interval;
//   - kill -9 of keepalived: vigil takes over, continuing keepalived's
//     sequence numbers;
//   - keepalived restarts at a lower priority: it learns the sequence from
//     vigil's adverts and stays BACKUP, and its log shows no authentication
//     error.
//
// Multicast, and unicast (where keepalived leaves the TTL out of the ICV).
func TestAHInterop(t *testing.T) {
	t.Parallel()
	for _, unicast := range []bool{false, true} {
		name := "multicast"
		if unicast {
			name = "unicast"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ahInterop(t, unicast)
		})
	}
}

func ahInterop(t *testing.T, unicast bool) {
	e := newEnv(t, "ah", 2)
	r1, r2 := e.node(0), e.node(1)
	inst := func(i, prio int) e2e.Instance {
		in := ahInstance(prio, "secret12")
		if unicast {
			in.UnicastSrc = e2e.NodeAddr4(i).String()
			in.UnicastPeers = []string{e2e.NodeAddr4(1 - i).String()}
		}
		return in
	}
	ka := e.start(e2e.Keepalived, 0, conf(inst(0, 150)))
	vg := e.start(e2e.Vigil, 1, conf(inst(1, 100)))
	e.waitState(ka, "VI_1", "MASTER", 15*time.Second)
	e.waitState(vg, "VI_1", "BACKUP", 10*time.Second)
	e.waitHolds(r1, e2e.VIP4, true, 10*time.Second)
	// More than one Master_Down_Interval (3.6 s at priority 100): vigil
	// would take over if it rejected keepalived's adverts.
	e.stayHolder(e2e.VIP4, 0, 4*time.Second)
	st := status_(t, vg, "VI_1")
	if st.State != "BACKUP" || st.Counters.AdvertsReceived < 3 || st.AHSequence < 3 {
		t.Fatalf("vigil behind keepalived: %s, %d adverts accepted, AH sequence %d", st.State, st.Counters.AdvertsReceived, st.AHSequence)
	}
	if d := st.Counters.Dropped; d["auth_failure"]+d["ah_sequence"]+d["auth_type_mismatch"] > 0 {
		t.Fatalf("vigil dropped keepalived's adverts: %v", d)
	}
	seqAsBackup := st.AHSequence

	t.Log("kill -9 of keepalived")
	ka.Kill()
	e.waitState(vg, "VI_1", "MASTER", 15*time.Second)
	e.waitHolds(r2, e2e.VIP4, true, 10*time.Second)

	t.Log("keepalived returns at priority 50")
	c := conf(inst(0, 50))
	c.RouterID = r1.Name()
	if err := ka.WriteConfig(c.String()); err != nil {
		t.Fatal(err)
	}
	e.restart(ka)
	if err := ka.WaitLog("Entering BACKUP STATE", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	// keepalived (priority 50) would take over after 3.8 s without valid
	// adverts from vigil.
	e.stayHolder(e2e.VIP4, 1, 4500*time.Millisecond)
	if got := e2e.KeepalivedState(ka.Log(), "VI_1"); got != "BACKUP" {
		t.Errorf("keepalived is %s while vigil is master", got)
	}
	if bad := keepalivedAuthErrors(ka.Log()); len(bad) > 0 {
		t.Errorf("keepalived rejected vigil's adverts:\n%s", strings.Join(bad, "\n"))
	}
	st = status_(t, vg, "VI_1")
	if st.State != "MASTER" || st.AHSequence <= seqAsBackup {
		t.Errorf("vigil: %s, AH sequence %d, want MASTER continuing after %d", st.State, st.AHSequence, seqAsBackup)
	}
	if d := st.Counters.Dropped; d["auth_failure"]+d["ah_sequence"] > 0 {
		t.Errorf("vigil dropped the restarted keepalived's adverts: %v", d)
	}
}

// TestAHWrongPass: vigil and keepalived with different auth_pass values
// drop each other's adverts (both become MASTER, as two keepalived nodes
// would): keepalived logs the invalid HMAC, vigil counts auth_failure.
func TestAHWrongPass(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "ahbad", 2)
	vg := e.start(e2e.Vigil, 0, conf(ahInstance(150, "secret12")))
	ka := e.start(e2e.Keepalived, 1, conf(ahInstance(100, "other123")))
	e.waitState(vg, "VI_1", "MASTER", 15*time.Second)
	if err := ka.WaitLog("IPSEC-AH : invalid IPSEC HMAC-MD5 value", 10*time.Second); err != nil {
		t.Errorf("keepalived did not reject vigil's adverts: %v", err)
	}
	e.waitState(ka, "VI_1", "MASTER", 15*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := vg.InstanceStatus(ctx, "VI_1")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if n := st.Counters.Dropped["auth_failure"]; n > 0 {
			if st.Counters.AdvertsReceived != 0 || st.State != "MASTER" {
				t.Errorf("vigil accepted %d adverts, state %s", st.Counters.AdvertsReceived, st.State)
			}
			t.Logf("vigil dropped %d of keepalived's adverts as auth_failure", n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vigil counted no auth_failure: %v", st.Counters.Dropped)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(vg.Log(), "auth_failure") {
		t.Errorf("vigil's log does not mention the auth_failure drop")
	}
}
