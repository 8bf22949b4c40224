package hb

import (
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hbconf"
	"github.com/vigil-ha/vigil/internal/hb/machine"
	"github.com/vigil-ha/vigil/internal/hb/wire"
)

// floodNode is node "a" of a two-node cluster with crc authkeys (which
// anyone on the LAN can forge), sending on one loopback medium whose
// datagrams the returned counter counts.
func floodNode(t *testing.T) (*Node, *atomic.Int64) {
	t.Helper()
	c := &hbconf.Config{
		Nodes:     []hbconf.Node{{Name: "a"}, {Name: "b"}},
		Keepalive: time.Second, Deadtime: 10 * time.Second, Warntime: 5 * time.Second, Initdead: 10 * time.Second,
		Media: []hbconf.Medium{{Kind: hbconf.Ucast, Dev: "lo", Peer: netip.MustParseAddr("127.0.0.1"), Port: 694}},
		Auth:  &hbconf.Auth{Active: 1, Methods: map[int]hbconf.AuthMethod{1: {Type: "crc"}}},
	}
	n, err := NewNode(Options{Config: c, NodeName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = sink.SetReadBuffer(4 << 20)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 65536)
		for {
			if _, err := sink.Read(b); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	t.Cleanup(func() { conn.Close(); sink.Close(); <-done })
	n.media = []*medium{{cfg: c.Media[0], dst: sink.LocalAddr().(*net.UDPAddr), conn: conn}}
	n.gen = 1
	return n, &got
}

// fromB signs a message from node b.
func fromB(t *testing.T, n *Node, fields ...string) rxPacket {
	t.Helper()
	m := &wire.Message{}
	for i := 0; i < len(fields); i += 2 {
		m.Set(fields[i], fields[i+1])
	}
	m.Set(wire.FOrig, "b")
	b, err := wire.Marshal(m, n.auth)
	if err != nil {
		t.Fatal(err)
	}
	return rxPacket{data: b, media: []int{0}}
}

// A peer whose sequence numbers jump by 100 again and again (a lossy link
// for months, or a forger) must not grow the set of sequence numbers the
// node waits for: heartbeat gives them up past its history.
func TestReceiveSequenceGapsBounded(t *testing.T) {
	n, _ := floodNode(t)
	for i := range 2000 {
		n.receive(fromB(t, n, wire.FType, wire.TStatus, wire.FStatus, "active",
			wire.FSeq, strconv.FormatUint(uint64(1+100*i), 16), wire.FGen, "1"))
	}
	if k := len(n.track["b"].missing); k > maxMissing {
		t.Errorf("node waits for %d missing sequence numbers of b after 2000 gaps of 99; want at most %d", k, maxMissing)
	}
}

// NS_rexmit asks for up to 200 messages at once: a flood of them (forged
// with crc authkeys, or from a confused peer) must not make the node send
// 200 packets per request.
func TestRetransmitRequestsBounded(t *testing.T) {
	n, got := floodNode(t)
	for range 200 {
		n.send([]wire.Field{{Name: wire.FType, Value: []byte(wire.TStatus)}, {Name: wire.FStatus, Value: []byte("active")}}, "")
	}
	const requests = 100
	for range requests {
		n.receive(fromB(t, n, wire.FType, wire.TRexmit, wire.FFirstSeq, "1", wire.FLastSeq, strconv.FormatUint(200, 16), wire.FTo, "a"))
	}
	// The sink's reader counts what arrived: wait until it stops growing.
	want := int64(200 + 2*maxRexmitPerSecond)
	for last := int64(-1); got.Load() != last; {
		last = got.Load()
		time.Sleep(100 * time.Millisecond)
	}
	if g := got.Load(); g > want {
		t.Errorf("%d NS_rexmit for 200 messages made the node send %d packets (200 of them its own); want at most %d", requests, g, want)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.drops["rexmit-rate"] == 0 || n.drops["rexmit-batch"] == 0 {
		t.Errorf("drops counted: %v; want rexmit-rate and rexmit-batch", n.drops)
	}
}

// A dead peer's captured packets, replayed (they authenticate with any
// authkeys method), must not keep it alive: heartbeat treats them as
// duplicates, which keep a link up but not the node.
func TestReplayedStatusDoesNotKeepPeerAlive(t *testing.T) {
	n, _ := floodNode(t)
	t0 := time.Unix(1_700_000_000, 0)
	now := t0
	n.clock = func() time.Time { return now }
	n.m.Step(now, machine.Start{})
	status := fromB(t, n, wire.FType, wire.TStatus, wire.FStatus, "active", wire.FSeq, "5", wire.FGen, "1")
	n.receive(status)
	if st := n.m.PeerStatus("b"); st != "active" {
		t.Fatalf("b after its status: %q; want active", st)
	}
	for now.Before(t0.Add(15 * time.Second)) {
		now = now.Add(100 * time.Millisecond)
		n.receive(status)
		n.m.Step(now, machine.Tick{})
	}
	if st := n.m.PeerStatus("b"); st != machine.StatusDead {
		t.Errorf("b, silent for 15 s (deadtime 10 s) but for replays of one status packet, is %q; want dead", st)
	}
}
