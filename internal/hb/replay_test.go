package hb_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/hb/machine"
	"github.com/vigil-ha/vigil/internal/hb/wire"
)

// TestReplayedHeartbeatsDoNotHideADeadPeer: on the tutorial's pair (md5
// authkeys), a host on the LAN replays a status message of ha1's current
// generation (one it captured: a sequence number ha2 has seen) to ha2
// every 100 ms, and ha1 powers off. ha2 still declares ha1 dead and takes
// the VIP over: a duplicate keeps a link up, not the node (heartbeat's
// process_clustermsg). It used to keep ha1 alive for as long as the replay
// went on.
func TestReplayedHeartbeatsDoNotHideADeadPeer(t *testing.T) {
	tu := startSteadyPair(t)
	gen := waitStatus(t, tu.n1, func(st hb.Status) bool { return st.Generation > 0 }).Generation

	m := &wire.Message{}
	for _, f := range [][2]string{{wire.FType, wire.TStatus}, {wire.FStatus, "active"}, {wire.FOrig, "ha1"},
		{wire.FSeq, "2"}, {wire.FGen, strconv.FormatUint(gen, 16)}, {wire.FTime, strconv.FormatInt(time.Now().Unix(), 16)}, {wire.FTTL, "3"}} {
		m.Set(f[0], f[1])
	}
	pkt, err := wire.Marshal(m, &wire.Auth{Active: 3, Methods: map[int]wire.Method{3: {Type: "md5", Key: "hello!"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := tu.dialHA2(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c.Write(pkt) // ha2 may not listen for a moment: errors are fine
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-done }()

	// ha1 powers off (as TestTutorialFailures' case 3).
	start := time.Now()
	tu.n1.Kill()
	tu.ha1.SetCable("eth0", false)
	tu.ha1.SetCable("eth1", false)
	tu.ha1.Run("ip", "addr", "del", vip+"/24", "dev", "eth0")
	tu.waitHolder(t, "ha2", 10*time.Second)
	t.Logf("VIP on ha2 %v after the power-off, replays going on", time.Since(start).Round(time.Millisecond))
	// The replays reach ha2: its link to ha1 on eth0 is heard after ha1
	// died (the medium is "ucast eth0").
	st := waitStatus(t, tu.n2, func(st hb.Status) bool {
		for _, l := range st.Peers[0].Links {
			if l.Medium == "ucast eth0" && l.Up && l.LastHeard.After(start.Add(2*time.Second)) {
				return true
			}
		}
		return false
	})
	if st.Peers[0].Status != machine.StatusDead {
		t.Errorf("ha2 sees ha1 %q while only replays arrive; want dead", st.Peers[0].Status)
	}
}
