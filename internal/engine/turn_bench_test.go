package engine

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// The per-packet paths of the engine, without sockets: a reader's turn for
// one received advert (parse, state machine, deadline heap, timer), and the
// timer's turn that sends the adverts of one phase slot. vigil-bench's scale
// mode measures the same paths with real sockets and a peer, at 1,000
// instances; these give their ns and allocations in a second.

// countConn is a Conn that counts what it is asked to send.
type countConn struct {
	sent, batches int
	once          sync.Once
	closed        chan struct{}
}

func (c *countConn) ReadLoop([][]byte, []vrrpnet.Packet, func([]vrrpnet.Packet) error) error {
	<-c.closed
	return net.ErrClosed
}
func (c *countConn) WritePacket([]byte, netip.Addr, netip.Addr) error { c.sent++; return nil }
func (c *countConn) WriteBatch(m []vrrpnet.Message) int {
	c.sent += len(m)
	c.batches++
	return 0
}
func (c *countConn) Pending() bool { return false }
func (c *countConn) Close() error  { c.once.Do(func() { close(c.closed) }); return nil }

// benchNet is the fake host with every socket a countConn.
type benchNet struct {
	*fakeHost
	conn *countConn
}

func (n benchNet) OpenConn(vrrpnet.Config) (Conn, error) { return n.conn, nil }

// nopTimer is a timer that never fires: the benchmark calls the turns.
type nopTimer struct{}

func (nopTimer) Reset(time.Duration) {}
func (nopTimer) Close()              {}

// benchInstances are n VRRPv3 instances on eth0 (advert_int 1 s, VRIDs
// 1..n, VIP 10.1.0.VRID) as vigil-bench's scale mode configures them.
func benchInstances(n int, state vrrp.State, prio uint8) []runspec.InstanceSpec {
	var out []runspec.InstanceSpec
	for i := 1; i <= n; i++ {
		s := tutorialInstance(state, prio)
		s.VRRP.Version, s.VRRP.AuthType, s.VRRP.AuthPass = 3, 0, [8]byte{}
		s.VRRP.Name, s.VRRP.VRID = fmt.Sprintf("VI_%d", i), uint8(i)
		a := netip.AddrFrom4([4]byte{10, 1, 0, byte(i)})
		s.VRRP.VIPs = []netip.Addr{a}
		s.VIPs = []netif.VIP{{Prefix: netip.PrefixFrom(a, 32), Dev: "eth0"}}
		out = append(out, s)
	}
	return out
}

// benchEngine starts the instances of specs as Run would, without Run's
// goroutines: the benchmark takes the turns itself.
func benchEngine(b testing.TB, specs []runspec.InstanceSpec) (*Engine, *countConn) {
	h := newFakeHost(&fakeLAN{}, "a", map[string]string{"eth0": "192.168.1.105/24"})
	cc := &countConn{closed: make(chan struct{})}
	e, err := New(runspec.Spec{Instances: specs}, Options{Net: benchNet{h, cc}})
	if err != nil {
		b.Fatal(err)
	}
	startBench(b, e, h.AddVIPs, cc)
	return e, cc
}

// startBench readies e as Run would, without Run's goroutines, its
// addresses added by addVIPs on the effects worker.
func startBench(b testing.TB, e *Engine, addVIPs func([]netif.VIPAt) []error, cc *countConn) {
	var wg sync.WaitGroup
	bg, cancel := context.WithCancel(context.Background())
	e.wg, e.bg = &wg, bg
	e.fx = newEffects(addVIPs)
	e.timer = nopTimer{}
	e.finished, e.inputDone = make(chan struct{}), make(chan struct{}, 1)
	b.Cleanup(func() {
		cc.Close()
		cancel()
		wg.Wait()
		e.fx.close()
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, in := range e.insts {
		e.resolveLinks(in)
		e.setPending(in, true)
	}
	e.startWaiting(time.Now())
	e.arm()
}

// receiveBench starts n backups (benchInstances) as benchEngine does and
// returns their socket and one advert from each one's master, in VRID order.
func receiveBench(tb testing.TB, n int) (*Engine, *conn, []vrrpnet.Packet) {
	tb.Helper()
	e, _ := benchEngine(tb, benchInstances(n, vrrp.StateBackup, 99))
	var c *conn
	for _, x := range e.conns {
		c = x
	}
	peer, group := netip.MustParseAddr("192.168.1.106"), vrrpnet.DefaultGroup(vrrpnet.IPv4)
	pkts := make([]vrrpnet.Packet, n)
	for i := range pkts {
		a := packet.Advert{Version: 3, Type: packet.TypeAdvertisement, VRID: uint8(i + 1), Priority: 100,
			CountIPAddrs: 1, AdvertInt: 100, Addrs: []netip.Addr{netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)})}}
		p, err := a.Marshal(peer, group)
		if err != nil {
			tb.Fatal(err)
		}
		pkts[i] = vrrpnet.Packet{Payload: p, Src: peer, Dst: group, TTL: 255, IfIndex: 2}
	}
	return e, c, pkts
}

// BenchmarkReceiveTurn: a backup's turn for one advert from its master,
// 255 backups on one socket, each hearing its master once a second.
func BenchmarkReceiveTurn(b *testing.B) {
	const n = 255
	e, c, pkts := receiveBench(b, n)
	now := time.Now()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second / n)
		e.mu.Lock()
		e.fx.hold()
		e.receive(now, c, pkts[i])
		e.endTurn(now)
		e.mu.Unlock()
		i = (i + 1) % n
	}
	for _, in := range e.insts {
		if st := in.m.State(); st != vrrp.StateBackup {
			b.Fatalf("%s is %s", in.spec.VRRP.Name, st)
		}
	}
}

// BenchmarkFireTurn: the timer's turn for one phase slot of 255 masters
// (their adverts spread over 64 slots a second: 4 per slot). It reports the time
// per advert sent too.
func BenchmarkFireTurn(b *testing.B) {
	const n = 255
	e, cc := benchEngine(b, benchInstances(n, vrrp.StateMaster, 255))
	turn := func() {
		e.mu.Lock()
		e.fx.hold()
		now := e.nextDeadline()
		e.fire(now, true)
		e.endTurn(now)
		e.mu.Unlock()
	}
	// Past the takeover's gratuitous ARP schedule (garp_master_delay 5 s):
	// the turns left are the adverts'.
	start := e.nextDeadline()
	for e.nextDeadline().Before(start.Add(10 * time.Second)) {
		turn()
	}
	sent := cc.sent
	b.ReportAllocs()
	t0 := time.Now()
	for b.Loop() {
		turn()
	}
	el := time.Since(t0)
	adverts := cc.sent - sent
	if adverts == 0 {
		b.Fatal("no advert sent")
	}
	b.ReportMetric(float64(el.Nanoseconds())/float64(adverts), "ns/advert")
	b.ReportMetric(float64(adverts)/float64(b.N), "adverts/op")
}

// TestMasterSendsInBurstsOfEight: 255 masters of one interface (one socket)
// at advert_int 1 send, once the takeover is over, in wake-ups of at most
// eight adverts, each wake-up's in one system call (a burst's last advert
// carries the variation of every send before it), and in no more wake-ups
// than 32 a second (each one a wake-up of every receiver too).
func TestMasterSendsInBurstsOfEight(t *testing.T) {
	const n = 255
	e, cc := benchEngine(t, benchInstances(n, vrrp.StateMaster, 255))
	turn := func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.fx.hold()
		now := e.nextDeadline()
		e.fire(now, true)
		e.endTurn(now)
		return now
	}
	start := e.nextDeadline()
	for e.nextDeadline().Before(start.Add(10 * time.Second)) {
		turn()
	}
	from := e.nextDeadline()
	wakes, sent := 0, cc.sent
	for e.nextDeadline().Before(from.Add(time.Second)) {
		s, b := cc.sent, cc.batches
		at := turn()
		if cc.sent == s {
			continue
		}
		wakes++
		if k, calls := cc.sent-s, cc.batches-b; k > 8 || calls != 1 {
			t.Errorf("turn at +%v: %d adverts in %d system calls, want at most 8 in one", at.Sub(from), k, calls)
		}
	}
	if got := cc.sent - sent; got != n {
		t.Errorf("%d adverts in a second, want %d", got, n)
	}
	if wakes > 32 {
		t.Errorf("%d send turns in a second, want at most 32", wakes)
	}
}

// TestSteadyTurnsAllocateNothing pins what BenchmarkFireTurn and
// BenchmarkReceiveTurn show: once the takeover's gratuitous ARPs are over,
// a master's send turn and a backup's turn for its master's advert
// allocate nothing, so that 1,000 instances at one advert a second give
// the collector no work.
func TestSteadyTurnsAllocateNothing(t *testing.T) {
	const n = 255
	t.Run("send", func(t *testing.T) {
		e, cc := benchEngine(t, benchInstances(n, vrrp.StateMaster, 255))
		turn := func() {
			e.mu.Lock()
			e.fx.hold()
			now := e.nextDeadline()
			e.fire(now, true)
			e.endTurn(now)
			e.mu.Unlock()
		}
		start := e.nextDeadline()
		for e.nextDeadline().Before(start.Add(10 * time.Second)) {
			turn()
		}
		sent := cc.sent
		if a := testing.AllocsPerRun(200, turn); a != 0 {
			t.Errorf("a send turn allocates %v times, want 0", a)
		}
		if cc.sent == sent {
			t.Fatal("no advert sent")
		}
	})
	t.Run("receive", func(t *testing.T) {
		e, c, pkts := receiveBench(t, n)
		now := time.Now()
		i := 0
		turn := func() {
			now = now.Add(time.Second / n)
			e.mu.Lock()
			e.fx.hold()
			e.receive(now, c, pkts[i])
			e.endTurn(now)
			e.mu.Unlock()
			i = (i + 1) % n
		}
		for range n {
			turn() // every backup has heard its master once
		}
		if a := testing.AllocsPerRun(2*n, turn); a != 0 {
			t.Errorf("a receive turn allocates %v times, want 0", a)
		}
		for _, in := range e.insts {
			if in.m.Status().Counters.AdvertsReceived == 0 || in.m.State() != vrrp.StateBackup {
				t.Fatalf("%s: %s, %d adverts received", in.spec.VRRP.Name, in.m.State(), in.m.Status().Counters.AdvertsReceived)
			}
		}
	})
}

// quietBenchNet is a quietHost (no record of addresses and announcements)
// with every socket a countConn.
type quietBenchNet struct {
	quietHost
	conn *countConn
}

func (n quietBenchNet) OpenConn(vrrpnet.Config) (Conn, error) { return n.conn, nil }

// BenchmarkMassTakeover: 1,000 backups (vigil-bench's scale mode, four
// interfaces) whose master falls silent take over, each when its own
// Master_Down_Timer fires: they heard its last adverts spread over a
// second, as a master's advert phases send them, so the takeovers come in
// about as many timer turns. B/takeover is what the engine allocates from
// the first expiry to the last takeover, with a VIPsChanged hook as the
// daemon sets one; turns counts the timer's turns.
//
//	go test -run '^$' -bench MassTakeover -benchtime 3x ./internal/engine
func BenchmarkMassTakeover(b *testing.B) {
	const n = 1000
	var bytes, turns, reports float64
	for range b.N {
		b.StopTimer()
		nreports := 0
		r := silentMaster(b, n, func(time.Time, map[netip.Addr]bool) { nreports++ })
		nreports = 0
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		b.StartTimer()
		t := r.takeOver(b, nil)
		b.StopTimer()
		runtime.ReadMemStats(&m1)
		bytes += float64(m1.TotalAlloc - m0.TotalAlloc)
		turns += float64(t)
		reports += float64(nreports)
		r.cc.Close()
	}
	b.ReportMetric(bytes/float64(b.N), "B/takeover")
	b.ReportMetric(turns/float64(b.N), "turns")
	b.ReportMetric(reports/float64(b.N), "reports")
}

// massRig is an engine of backups whose master fell silent; at is the
// time of its turn in progress.
type massRig struct {
	e  *Engine
	cc *countConn
	n  int
	at time.Time
}

// silentMaster readies n backups (scaleInstances) that heard their
// master's last adverts spread over a second, as Run would without its
// goroutines; report is the VIPsChanged hook, given the time of the turn
// that reports.
func silentMaster(tb testing.TB, n int, report func(time.Time, map[netip.Addr]bool)) *massRig {
	ifaces := map[string]string{}
	for k := 1; k <= (n+254)/255; k++ {
		ifaces[fmt.Sprintf("eth%d", k)] = fmt.Sprintf("10.%d.0.1/24", k)
	}
	h := quietHost{newFakeHost(&fakeLAN{}, "b", ifaces)}
	cc := &countConn{closed: make(chan struct{})}
	r := &massRig{cc: cc, n: n}
	hooks := Hooks{VIPsChanged: func(m map[netip.Addr]bool) { report(r.at, m) }}
	e, err := New(runspec.Spec{Instances: scaleInstances(n, false)}, Options{Net: quietBenchNet{h, cc}, Hooks: hooks})
	if err != nil {
		tb.Fatal(err)
	}
	r.e = e
	startBench(tb, e, h.AddVIPs, cc)
	var pkts []vrrpnet.Packet
	var conns []*conn
	group := vrrpnet.DefaultGroup(vrrpnet.IPv4)
	for _, c := range e.conns {
		for vrid, in := range c.insts.by {
			if in == nil {
				continue
			}
			a := in.spec.VRRP.VIPs[0]
			peer := netip.AddrFrom4([4]byte{10, a.As4()[1], 0, 2})
			adv := packet.Advert{Version: 3, Type: packet.TypeAdvertisement, VRID: uint8(vrid), Priority: 100,
				CountIPAddrs: 1, AdvertInt: 100, Addrs: []netip.Addr{a}}
			p, err := adv.Marshal(peer, group)
			if err != nil {
				tb.Fatal(err)
			}
			pkts = append(pkts, vrrpnet.Packet{Payload: p, Src: peer, Dst: group, TTL: 255, IfIndex: 2})
			conns = append(conns, c)
		}
	}
	if len(pkts) != n {
		tb.Fatalf("%d instances on sockets, want %d", len(pkts), n)
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for j := range pkts {
		at := now.Add(time.Duration(j) * time.Second / time.Duration(n))
		e.fx.hold()
		r.at = at
		e.receive(at, conns[j], pkts[j])
		e.endTurn(at)
	}
	return r
}

// turn takes the timer's turn of the next deadline.
func (r *massRig) turn() time.Time {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fx.hold()
	now := e.nextDeadline()
	r.at = now
	e.fire(now, true)
	e.endTurn(now)
	return now
}

// takeOver takes the timer's turns until every instance is master and
// returns how many it took; turn, if set, is called after each.
func (r *massRig) takeOver(tb testing.TB, turn func(at time.Time)) int {
	e, n := r.e, r.n
	masters := func() int {
		k := 0
		for _, in := range e.insts {
			if in.m.State() == vrrp.StateMaster {
				k++
			}
		}
		return k
	}
	t := 0
	for masters() < n {
		if t++; t > 100*n {
			tb.Fatalf("%d masters after %d turns", masters(), t)
		}
		now := r.turn()
		if turn != nil {
			turn(now)
		}
	}
	return t
}

// TestMassTakeoverSpacesHeldReports: 255 backups take over one by one over
// a second. The first change of the held addresses is reported at once;
// later ones at most once per vipsReportGap, each report the set held at
// that turn, the last no later than vipsReportGap after the last
// takeover.
func TestMassTakeoverSpacesHeldReports(t *testing.T) {
	const n = 255
	type report struct {
		at   time.Time
		size int
	}
	var reports []report
	var r *massRig
	r = silentMaster(t, n, func(at time.Time, m map[netip.Addr]bool) {
		if r == nil || r.e == nil {
			return
		}
		want := map[netip.Addr]bool{}
		for _, in := range r.e.insts {
			if in.held {
				for _, v := range in.spec.VIPs {
					want[v.Addr()] = true
				}
			}
		}
		if !maps.Equal(m, want) {
			t.Errorf("report at %v: %d addresses, %d held", at, len(m), len(want))
		}
		reports = append(reports, report{at, len(m)})
	})
	reports = nil
	held := func() int {
		k := 0
		for _, in := range r.e.insts {
			if in.held {
				k++
			}
		}
		return k
	}
	var first, last time.Time
	count := 0
	note := func(at time.Time) {
		if k := held(); k != count {
			count = k
			if first.IsZero() {
				first = at
			}
			last = at
		}
	}
	r.takeOver(t, note)
	for i := 0; r.e.vipsDirty; i++ {
		if i > 10 {
			t.Fatal("the last report never comes")
		}
		note(r.turn())
	}
	if len(reports) == 0 {
		t.Fatal("no report")
	}
	if reports[0].at != first || reports[0].size != 1 {
		t.Errorf("first report at %v of %d addresses, want at the first takeover (%v), of 1", reports[0].at, reports[0].size, first)
	}
	for k := 1; k < len(reports); k++ {
		if gap := reports[k].at.Sub(reports[k-1].at); gap < vipsReportGap {
			t.Errorf("reports %d and %d %v apart, want ≥ %v", k-1, k, gap, vipsReportGap)
		}
	}
	end := reports[len(reports)-1]
	if end.size != n {
		t.Errorf("last report of %d addresses, want %d", end.size, n)
	}
	if d := end.at.Sub(last); d < 0 || d > vipsReportGap {
		t.Errorf("last report %v after the last takeover, want within %v", d, vipsReportGap)
	}
	// At most one report per 100 ms, whatever vipsReportGap becomes.
	if span := last.Sub(first); len(reports) > int(span/(100*time.Millisecond))+2 {
		t.Errorf("%d reports over %v, want one at most every 100 ms", len(reports), span)
	}
	t.Logf("%d reports, takeovers over %v", len(reports), last.Sub(first))
}
