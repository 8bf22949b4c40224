package hb_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/hb/machine"
	"github.com/vigil-ha/vigil/internal/hb/wire"
)

// TestBadPacketFloodOnTheWire: a host on the LAN floods ha2's heartbeat
// port with packets it cannot authenticate (a wrong md5 key, the crc an
// outsider can compute, garbage). ha2 keeps ha1 alive and the VIP where it
// is, counts the drops (it reads them as fast as they come), logs them at
// powers of two only, and its memory does not grow with the flood. The CPU
// figure is logged.
func TestBadPacketFloodOnTheWire(t *testing.T) {
	tu := startSteadyPair(t)

	status := func(auth *wire.Auth) []byte {
		m := &wire.Message{}
		for _, f := range [][2]string{{wire.FType, wire.TStatus}, {wire.FStatus, "active"}, {wire.FOrig, "ha1"},
			{wire.FSeq, "ffffff"}, {wire.FGen, "ffffff"}, {wire.FTTL, "3"}} {
			m.Set(f[0], f[1])
		}
		b, err := wire.Marshal(m, auth)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pkts := [][]byte{
		status(&wire.Auth{Active: 3, Methods: map[int]wire.Method{3: {Type: "md5", Key: "guess"}}}),
		status(&wire.Auth{Active: 1, Methods: map[int]wire.Method{1: {Type: "crc"}}}),
		[]byte("###\x00garbage"),
	}
	c := tu.dialHA2(t)
	pid := tu.n2.Proc.PID()
	before, err := e2e.ReadProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	st0, err := tu.n2.Status()
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 5000
	start := time.Now()
	for k := range rounds {
		for _, p := range pkts {
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
		}
		if k%50 == 49 {
			time.Sleep(5 * time.Millisecond) // let the socket drain: the test wants the packets read
		}
	}
	time.Sleep(time.Second) // and a status snapshot written after them
	elapsed := time.Since(start)
	after, err := e2e.ReadProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, tu.n2, func(st hb.Status) bool { return true })
	var dropped uint64
	for r, n := range st.Drops {
		dropped += n - st0.Drops[r]
	}
	t.Logf("ha2: %d of %d bad packets counted as dropped in %v (%v); CPU %v; anon RSS %d -> %d KiB",
		dropped, len(pkts)*rounds, elapsed.Round(time.Millisecond), st.Drops, after.CPU-before.CPU, before.Anon>>10, after.Anon>>10)
	// Paced as it is, the flood is well within what the node reads: it
	// drops nearly every packet itself rather than leave them to overflow
	// its sockets, which would drop the peer's heartbeats with them (a
	// status file written per packet held it to a few thousand a second).
	if sent := uint64(len(pkts) * rounds); dropped < sent*8/10 {
		t.Errorf("only %d of %d bad packets counted: the node fell behind and its sockets overflowed", dropped, sent)
	}
	if st.Peers[0].Status != machine.StatusActive || tu.holder() != "ha1" {
		t.Errorf("after the flood ha2 sees ha1 %q and the VIP is on %q; want active, ha1", st.Peers[0].Status, tu.holder())
	}
	if grow := after.Anon - before.Anon; grow > 16<<20 {
		t.Errorf("ha2's anonymous memory grew by %d KiB over the flood", grow>>10)
	}
	// One line per reason at counts 1, 2, 4, ...: about 14 each for 5,000.
	if lines := strings.Count(tu.n2.Output(), "dropped heartbeat packet"); lines > 3*16 {
		t.Errorf("%d drop log lines for %d bad packets", lines, len(pkts)*rounds)
	}
}
