package engine

import (
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// TestStatusShowsPeersHistoryAndHeldVIPs: after a failover the backup's
// status names the master it heard (address, priority, a recent advert),
// its history holds INIT -> BACKUP -> MASTER with times, its held VIPs
// list the address, and it counts the gratuitous ARPs it sent.
func TestStatusShowsPeersHistoryAndHeldVIPs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))
		time.Sleep(5 * time.Second)

		in := b.snapshot(t).Instances[0]
		if len(in.Peers) != 1 || in.Peers[0].Addr != "192.168.1.105" || in.Peers[0].Priority != 100 || in.Peers[0].Adverts == 0 {
			t.Fatalf("b's peers: %+v, want 192.168.1.105 priority 100", in.Peers)
		}
		if age := time.Since(in.Peers[0].LastHeard); age > 2*time.Second {
			t.Errorf("b last heard a %v ago, want within an advert interval", age)
		}
		if len(in.HeldVIPs) != 0 {
			t.Errorf("backup holds %v", in.HeldVIPs)
		}

		a.stop(t)
		time.Sleep(time.Second)
		in = b.snapshot(t).Instances[0]
		if got := historyStates(in.History); got != "INIT>BACKUP BACKUP>MASTER" {
			t.Errorf("b's history %q", got)
		}
		if in.HistoryFrom.IsZero() || in.HistoryFrom.After(in.History[0].At) {
			t.Errorf("history from %v, first change %v", in.HistoryFrom, in.History[0].At)
		}
		if len(in.HeldVIPs) != 1 || in.HeldVIPs[0] != vip {
			t.Errorf("master holds %v, want [%v]", in.HeldVIPs, vip)
		}
		if in.Counters.Announcements == 0 {
			t.Error("no gratuitous ARP counted after taking over")
		}
		// The priority-0 advert of a's stop is the last heard.
		if len(in.Peers) != 1 || in.Peers[0].Priority != 0 {
			t.Errorf("b's peers after a stopped: %+v, want a at priority 0", in.Peers)
		}
		b.stop(t)
	})
}

func historyStates(h []status.Transition) string {
	s := ""
	for i, tr := range h {
		if i > 0 {
			s += " "
		}
		s += tr.From + ">" + tr.To
	}
	return s
}

// TestPeersAndHistoryAreBounded: a flood of sources keeps maxPeers, the
// longest silent evicted; transitions older than an hour or beyond
// maxHistory are forgotten and HistoryFrom moves.
func TestPeersAndHistoryAreBounded(t *testing.T) {
	in := &instance{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		in.notePeer(t0.Add(time.Duration(i)*time.Second), netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", i+1)), 50)
	}
	if len(in.ops.peers) != maxPeers {
		t.Fatalf("%d peers kept, want %d", len(in.ops.peers), maxPeers)
	}
	if in.peer(netip.MustParseAddr("10.0.0.100")) == nil || in.peer(netip.MustParseAddr("10.0.0.1")) != nil {
		t.Error("eviction kept an old peer or lost the newest")
	}
	for i := range 1000 {
		in.noteTransition(transition{at: t0.Add(time.Duration(i) * time.Second), from: vrrp.StateBackup, to: vrrp.StateMaster})
	}
	if len(in.ops.history) != maxHistory {
		t.Errorf("%d transitions kept, want %d", len(in.ops.history), maxHistory)
	}
	if want := in.ops.history[0].at.Add(-time.Second); !in.ops.from.Equal(want) {
		t.Errorf("history from %v, want %v", in.ops.from, want)
	}
	in.noteTransition(transition{at: t0.Add(3 * time.Hour)})
	if len(in.ops.history) != 1 {
		t.Errorf("%d transitions kept after an hour's silence, want 1", len(in.ops.history))
	}
}

// TestCountAnnouncements: each send is credited once per matching entry of
// every held instance's address lists (a VIP without a dev is on the
// instance's interface), through the holders index, which a change of the
// held addresses makes build again.
func TestCountAnnouncements(t *testing.T) {
	va, vb := netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("10.0.0.2/32")
	mk := func(held bool, vips ...netif.VIP) *instance {
		return &instance{held: held, spec: &runspec.InstanceSpec{Interface: "eth0", VIPs: vips}}
	}
	a := mk(true, netif.VIP{Prefix: va})
	b := mk(true, netif.VIP{Prefix: va, Dev: "eth0"}, netif.VIP{Prefix: vb, Dev: "eth1"})
	c := mk(false, netif.VIP{Prefix: va})
	e := &Engine{insts: []*instance{a, b, c}}
	sends := []garp.Send{
		{Target: garp.Target{Addr: va.Addr(), Dev: "eth0"}},
		{Target: garp.Target{Addr: vb.Addr(), Dev: "eth1"}},
		{Target: garp.Target{Addr: vb.Addr(), Dev: "eth0"}}, // no one holds it there
	}
	e.countAnnouncements(sends)
	e.countAnnouncements(sends[:1])
	if a.ops.announced != 2 || b.ops.announced != 3 || c.ops.announced != 0 {
		t.Fatalf("announced a %d b %d c %d, want 2 3 0", a.ops.announced, b.ops.announced, c.ops.announced)
	}
	c.held = true
	e.vipsChanged()
	e.countAnnouncements(sends[:1])
	if a.ops.announced != 3 || b.ops.announced != 4 || c.ops.announced != 1 {
		t.Fatalf("after c took over: announced a %d b %d c %d, want 3 4 1", a.ops.announced, b.ops.announced, c.ops.announced)
	}
}
