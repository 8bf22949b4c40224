package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// Start before the network (issue 20): the daemon starts while its
// interface is down, without an address, with its IPv6 link-local address
// still tentative, or before the interface exists; it must leave FAULT when
// the network is ready. The time from "ready" (seen in the host's kernel by
// netlink: link up and running, a usable source address) to the daemon
// leaving FAULT (its notify FIFO line, read as written) is measured by
// BenchmarkBootRecovery for vigil and keepalived 2.2.7; the tests check the
// outcome with generous bounds.

// fifoLine is one notify FIFO line and when it was read.
type fifoLine struct {
	at   time.Time
	line string
}

// fifoLog reads a notify FIFO (keepalived's notify_fifo format) and keeps
// every line with the time it was read.
type fifoLog struct {
	path  string
	f     *os.File
	mu    sync.Mutex
	lines []fifoLine
	done  chan struct{}
}

func openFIFO(t testing.TB, dir string) *fifoLog {
	t.Helper()
	p := filepath.Join(dir, "notify.fifo")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	// O_RDWR: the open does not wait for a writer, and a daemon that exits
	// does not end the reads.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fl := &fifoLog{path: p, f: f, done: make(chan struct{})}
	go func() {
		defer close(fl.done)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			now := time.Now()
			fl.mu.Lock()
			fl.lines = append(fl.lines, fifoLine{now, sc.Text()})
			fl.mu.Unlock()
		}
	}()
	t.Cleanup(func() { f.Close(); <-fl.done })
	return fl
}

// states returns the instance's states in order, with when each was read.
func (fl *fifoLog) states(instance string) []fifoLine {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	var out []fifoLine
	prefix := fmt.Sprintf("INSTANCE %q ", instance)
	for _, l := range fl.lines {
		if rest, ok := strings.CutPrefix(l.line, prefix); ok {
			out = append(out, fifoLine{l.at, strings.Fields(rest)[0]})
		}
	}
	return out
}

// leftFault returns when the instance first reported a state other than
// FAULT after having reported FAULT; fault is false when it never did.
func (fl *fifoLog) leftFault(instance string) (at time.Time, to string, fault, left bool) {
	for _, s := range fl.states(instance) {
		if s.line == "FAULT" {
			fault = true
			continue
		}
		if fault {
			return s.at, s.line, true, true
		}
	}
	return time.Time{}, "", fault, false
}

// waitState waits until the instance's last state is state and returns when
// it was read; the zero time after timeout.
func (fl *fifoLog) waitState(instance, state string, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for {
		ss := fl.states(instance)
		if len(ss) > 0 && ss[len(ss)-1].line == state {
			return ss[len(ss)-1].at
		}
		if time.Now().After(deadline) {
			return time.Time{}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readiness watches one interface of a host over netlink and records when
// it first became ready for a VRRP instance of the family: up and running,
// with a usable source address (netif.SourceAddr).
type readiness struct {
	mu    sync.Mutex
	links map[string]netif.LinkInfo
	addrs map[netip.Prefix]netif.Addr
	at    time.Time
	dev   string
	v6    bool
}

func watchReadiness(t testing.TB, h *lab.Host, dev string, v6 bool) *readiness {
	t.Helper()
	var nh *netif.Handle
	if err := h.Do(func() (err error) { nh, err = netif.Open(); return err }); err != nil {
		t.Fatal(err)
	}
	r := &readiness{links: map[string]netif.LinkInfo{}, addrs: map[netip.Prefix]netif.Addr{}, dev: dev, v6: v6}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		nh.WatchLinks(ctx, func(ev netif.LinkEvent) {
			r.mu.Lock()
			if ev.Deleted {
				delete(r.links, ev.Link.Name)
			} else {
				r.links[ev.Link.Name] = ev.Link
			}
			r.update()
			r.mu.Unlock()
		})
	}()
	go func() {
		defer wg.Done()
		nh.WatchAddrs(ctx, func(ev netif.AddrEvent) {
			r.mu.Lock()
			if ev.Deleted {
				delete(r.addrs, ev.Addr.Prefix)
			} else {
				r.addrs[ev.Addr.Prefix] = ev.Addr
			}
			r.update()
			r.mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); wg.Wait(); nh.Close() })
	return r
}

func (r *readiness) update() {
	li, ok := r.links[r.dev]
	ready := false
	if ok && li.Usable() {
		var as []netif.Addr
		for _, a := range r.addrs {
			as = append(as, a)
		}
		_, ready = netif.SourceAddr(as, li.Index, r.v6, netif.AddrProtoKeepalived)
	}
	switch {
	case ready && r.at.IsZero():
		r.at = time.Now()
	case !ready:
		r.at = time.Time{}
	}
}

// readyAt returns when the interface became ready (zero while it is not).
func (r *readiness) readyAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at
}

// bootOrder is one way the network comes up after the daemon.
type bootOrder struct {
	name string
	v6   bool
	// ifaces are the host's interfaces when the lab is built.
	ifaces []lab.Iface
	// before runs after the lab is built, before the daemon starts.
	before func(h *lab.Host) error
	// after brings the network up, the daemon running.
	after func(h *lab.Host) error
	// unicast: the instance sends unicast from unicast_src_ip
	// 192.168.1.105 (or fd00::105) to .106.
	unicast bool
}

func ipIn(h *lab.Host, args ...string) error {
	out, err := h.Run("ip", args...)
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

var bootOrders = []bootOrder{
	{
		// IPv4: eth0 down without an address; 1 s later the link comes up,
		// 1 s after that the address is added (DHCP).
		name:   "ipv4-link-then-address",
		ifaces: []lab.Iface{{Name: "eth0", LAN: "lan"}},
		before: func(h *lab.Host) error { return h.SetLink("eth0", false) },
		after: func(h *lab.Host) error {
			time.Sleep(time.Second)
			if err := h.SetLink("eth0", true); err != nil {
				return err
			}
			time.Sleep(time.Second)
			return ipIn(h, "addr", "add", "192.168.1.105/24", "dev", "eth0")
		},
	},
	{
		// IPv6: the daemon starts right after eth0 came up, its link-local
		// address tentative (DAD stretched to 3 s so that the daemon's
		// start falls inside it).
		name:   "ipv6-tentative-link-local",
		v6:     true,
		ifaces: []lab.Iface{{Name: "eth0", LAN: "lan"}},
		before: func(h *lab.Host) error {
			if err := h.SetLink("eth0", false); err != nil {
				return err
			}
			for _, kv := range [][2]string{
				{"net/ipv6/conf/eth0/accept_dad", "1"},
				{"net/ipv6/conf/eth0/dad_transmits", "1"},
				{"net/ipv6/neigh/eth0/retrans_time_ms", "3000"},
			} {
				if err := h.Sysctl(kv[0], kv[1]); err != nil {
					return err
				}
			}
			return h.SetLink("eth0", true)
		},
		after: func(h *lab.Host) error { return nil },
	},
	{
		// The interface (a VLAN, a bond, a hot-plugged NIC) is created 1 s
		// after the daemon started, with its address.
		name: "interface-created-later",
		after: func(h *lab.Host) error {
			time.Sleep(time.Second)
			return h.Lab().AddIface(h, lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
		},
	},
	{
		// Unicast: unicast_src_ip is the address DHCP adds 1 s after the
		// start, the link being up.
		name:    "ipv4-unicast-source-later",
		ifaces:  []lab.Iface{{Name: "eth0", LAN: "lan"}},
		unicast: true,
		after: func(h *lab.Host) error {
			time.Sleep(time.Second)
			return ipIn(h, "addr", "add", "192.168.1.105/24", "dev", "eth0")
		},
	},
	{
		// Not a boot: the running master's interface is deleted (FAULT)
		// and created again 1 s later, with a new ifindex.
		name:   "interface-deleted-and-recreated",
		ifaces: []lab.Iface{{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}}},
		after: func(h *lab.Host) error {
			time.Sleep(time.Second) // MASTER after 3 × 0.1 s
			if err := h.Lab().DelIface(h, "eth0"); err != nil {
				return err
			}
			time.Sleep(time.Second)
			return h.Lab().AddIface(h, lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
		},
	},
}

// bootInstance is the instance of the boot tests: VRRPv3, advert_int 0.1,
// for 192.168.1.100 or fd00::100.
func bootInstance(v6 bool) e2e.Instance {
	if v6 {
		return ipv6Instance("MASTER", 100)
	}
	return fast("MASTER", 100)
}

// bootRun is the outcome of one boot order.
type bootRun struct {
	ready    time.Time // network ready (netlink)
	left     time.Time // daemon left FAULT (notify FIFO)
	fault    bool      // it was in FAULT
	to       string    // the state it left FAULT for
	master   bool      // it became MASTER and holds the VIP
	masterAt time.Time // when it reported MASTER
	stuck    bool      // it never became MASTER
	recovery time.Duration
}

// runBootOrder builds a one-host lab, starts a daemon of kind before the
// network is ready, brings the network up in order o and waits for MASTER
// (and fails without it when mustMaster).
func runBootOrder(t testing.TB, kind e2e.Kind, o bootOrder, mustMaster bool) bootRun {
	t.Helper()
	l := netnstest.New(t, "boot")
	h, err := l.AddHost("r1", o.ifaces...)
	if err != nil {
		t.Fatal(err)
	}
	// Everything slow (building vigil, the first time) happens before the
	// network is set up: a tentative address must still be tentative when
	// the daemon starts.
	var bin string
	switch kind {
	case e2e.Vigil:
		bin = netnstest.VigilBinary(t)
	case e2e.Keepalived:
		bin = netnstest.RequireCommand(t, "keepalived")
	}
	dir := t.TempDir()
	fl := openFIFO(t, dir)
	nd := e2e.NewNode(kind, h, bin, dir)
	in := bootInstance(o.v6)
	if o.unicast {
		in.UnicastSrc, in.UnicastPeers = e2e.NodeAddr4(0).String(), []string{e2e.NodeAddr4(1).String()}
		if o.v6 {
			in.UnicastSrc, in.UnicastPeers = e2e.NodeAddr6(0).String(), []string{e2e.NodeAddr6(1).String()}
		}
	}
	c := e2e.Conf{RouterID: "r1", Global: []string{"dynamic_interfaces", "notify_fifo " + fl.path}, Instances: []e2e.Instance{in}}
	if err := nd.WriteConfig(c.String()); err != nil {
		t.Fatal(err)
	}
	rd := watchReadiness(t, h, "eth0", o.v6)
	if o.before != nil {
		if err := o.before(h); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Now()
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nd.Kill)
	defer func() {
		if t.Failed() {
			t.Logf("%s", nd.AllLogs())
		}
	}()
	time.Sleep(300 * time.Millisecond) // the daemon reads the network as it is
	if err := o.after(h); err != nil {
		t.Fatal(err)
	}
	vip := e2e.VIP4
	if o.v6 {
		vip = e2e.VIP6
	}
	var run bootRun
	wait := 20 * time.Second
	if !mustMaster {
		wait = 10 * time.Second
	}
	run.masterAt = fl.waitState(in.Name, "MASTER", wait)
	if run.masterAt.IsZero() {
		if mustMaster {
			t.Fatalf("%s: %s not MASTER after %v (FIFO: %v)", kind, in.Name, wait, fl.states(in.Name))
		}
		run.stuck = true
		t.Logf("%s %s: not MASTER after %v (FIFO: %v)", kind, o.name, wait, fl.states(in.Name))
		return run
	}
	// A daemon that did not wait for the network may be MASTER before it is
	// ready (keepalived with a tentative link-local address).
	for deadline := time.Now().Add(10 * time.Second); rd.readyAt().IsZero(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the network never became ready", kind)
		}
	}
	run.ready = rd.readyAt()
	run.left, run.to, run.fault, _ = fl.leftFault(in.Name)
	if !run.fault {
		log := nd.Log()
		if kind == e2e.Vigil {
			log = strings.Join(vigilTransitions(log, in.Name), " ")
		}
		t.Logf("%s %s: no FAULT on the notify FIFO %v (network ready %v after the start); log: %s", kind, o.name, fl.states(in.Name), run.ready.Sub(started), log)
	}
	if !run.left.IsZero() && !run.ready.IsZero() {
		run.recovery = run.left.Sub(run.ready)
	}
	a, err := e2e.OpenAddrs(h)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := a.Has("eth0", vip)
		if err == nil && ok {
			run.master = true
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: MASTER but %v not on eth0", kind, vip)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := nd.Term(10 * time.Second); err != nil {
		t.Error(err)
	}
	return run
}

// TestBootBeforeNetwork: for each boot order vigil starts in FAULT, leaves
// it once the network is ready and becomes MASTER with its VIP.
func TestBootBeforeNetwork(t *testing.T) {
	t.Parallel()
	for _, o := range bootOrders {
		t.Run(o.name, func(t *testing.T) {
			t.Parallel()
			run := runBootOrder(t, e2e.Vigil, o, true)
			if !run.fault {
				t.Fatalf("vigil was never in FAULT although it started before the network")
			}
			if run.ready.IsZero() || run.left.IsZero() {
				t.Fatalf("ready at %v, left FAULT at %v", run.ready, run.left)
			}
			// Generous: the target is 100 ms (BenchmarkBootRecovery measures
			// it); a loaded machine must not fail the test, a poll, a missed
			// event or leaving FAULT a step early (each order's steps are
			// 1 s apart) would. The two sides read the kernel's events in
			// different processes, hence the negative margin.
			if run.recovery < -500*time.Millisecond || run.recovery > 2*time.Second {
				t.Errorf("left FAULT (for %s) %v after the network was ready", run.to, run.recovery)
			}
			t.Logf("network ready → left FAULT for %s: %v", run.to, run.recovery)
		})
	}
}

// BenchmarkBootRecovery measures, for each boot order, the time from the
// network being ready (netlink, in the host) to the daemon leaving FAULT
// (its notify FIFO), for vigil and keepalived 2.2.7:
//
//	CI=true go test -run '^$' -bench BootRecovery -benchtime 3x ./internal/e2e
func BenchmarkBootRecovery(b *testing.B) {
	for _, o := range bootOrders {
		for _, kind := range []e2e.Kind{e2e.Vigil, e2e.Keepalived} {
			b.Run(o.name+"/"+string(kind), func(b *testing.B) {
				var runs, early []time.Duration
				never, stuck := 0, 0
				for b.Loop() {
					run := runBootOrder(b, kind, o, false)
					if run.stuck {
						stuck++
						continue
					}
					if !run.fault {
						never++
						if run.masterAt.Before(run.ready) {
							early = append(early, run.ready.Sub(run.masterAt))
						}
						continue
					}
					runs = append(runs, run.recovery)
				}
				if len(runs) > 0 {
					slices.Sort(runs)
					b.ReportMetric(float64(runs[len(runs)/2].Microseconds())/1000, "median-recovery-ms")
					b.ReportMetric(float64(runs[len(runs)-1].Microseconds())/1000, "max-recovery-ms")
				}
				b.ReportMetric(float64(never), "never-fault")
				b.ReportMetric(float64(stuck), "stuck")
				if len(early) > 0 {
					// MASTER before its source address was usable: adverts
					// cannot leave (keepalived 2.2.7 with a tentative
					// link-local address).
					slices.Sort(early)
					b.ReportMetric(float64(early[len(early)/2].Microseconds())/1000, "master-before-ready-ms")
				}
			})
		}
	}
}

// vipEvents records, from netlink address events in each host, when the VIP
// was added to or removed from it.
type vipEvents struct {
	mu  sync.Mutex
	evs []vipEvent
}

type vipEvent struct {
	at   time.Time
	host int
	held bool
}

func watchVIP(t testing.TB, vip netip.Addr, hosts ...*lab.Host) *vipEvents {
	t.Helper()
	ve := &vipEvents{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, h := range hosts {
		a, err := e2e.OpenAddrs(h)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.Watch(ctx, func(at time.Time, ev netif.AddrEvent) {
				if ev.Addr.Prefix.Addr() != vip {
					return
				}
				ve.mu.Lock()
				ve.evs = append(ve.evs, vipEvent{at, i, !ev.Deleted})
				ve.mu.Unlock()
			})
		}()
		t.Cleanup(func() { a.Close() })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ve
}

// overlap returns the total time two or more hosts held the VIP together,
// and how many times each host added it.
func (ve *vipEvents) overlap(n int) (both time.Duration, adds []int) {
	ve.mu.Lock()
	defer ve.mu.Unlock()
	held := make([]bool, n)
	adds = make([]int, n)
	var since time.Time
	count := func() int {
		c := 0
		for _, h := range held {
			if h {
				c++
			}
		}
		return c
	}
	evs := slices.Clone(ve.evs)
	slices.SortStableFunc(evs, func(a, b vipEvent) int { return a.at.Compare(b.at) })
	for _, ev := range evs {
		before := count()
		if ev.held && !held[ev.host] {
			adds[ev.host]++
		}
		held[ev.host] = ev.held
		after := count()
		switch {
		case before < 2 && after >= 2:
			since = ev.at
		case before >= 2 && after < 2:
			both += ev.at.Sub(since)
		}
	}
	if count() >= 2 {
		both += time.Since(since)
	}
	return both, adds
}

// TestBootLastHigherPriorityEndsMaster: r2 (priority 99, vigil or
// keepalived 2.2.7) runs as MASTER; r1 (vigil, priority 100) boots later, its
// daemon before its network (IPv4: link down and no address; IPv6:
// link-local tentative). r1 leaves FAULT when its network is ready, preempts,
// and ends MASTER; the two hold the VIP together only for the preemption's
// advert exchange (seen by netlink address events in both kernels), never
// as two masters unaware of each other.
func TestBootLastHigherPriorityEndsMaster(t *testing.T) {
	t.Parallel()
	for _, v6 := range []bool{false, true} {
		for _, peer := range []e2e.Kind{e2e.Vigil, e2e.Keepalived} {
			name := map[bool]string{false: "ipv4", true: "ipv6"}[v6] + "/" + string(peer) + "-peer"
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				both, adds := runBootPair(t, e2e.Vigil, peer, v6)
				if adds[0] != 1 || adds[1] != 1 {
					t.Errorf("the VIP moved more than once: added %d times on r1, %d on r2", adds[0], adds[1])
				}
				// One advert interval is 100 ms; r2 releases on r1's first
				// advert, so the overlap is the advert's way plus a netlink
				// request. Generous for a loaded machine.
				if both > time.Second {
					t.Errorf("both nodes held the VIP for %v", both)
				}
			})
		}
	}
}

// runBootPair runs the pair scenario with a late node of kind late and a
// running peer of kind peer, and returns how long both held the VIP and how
// many times each added it.
func runBootPair(t testing.TB, late, peer e2e.Kind, v6 bool) (time.Duration, []int) {
	t.Helper()
	// Built before the network is set up (see runBootOrder).
	netnstest.VigilBinary(t)
	if late == e2e.Keepalived || peer == e2e.Keepalived {
		netnstest.RequireCommand(t, "keepalived")
	}
	l := netnstest.New(t, "bootpair")
	r1, err := l.AddHost("r1", lab.Iface{Name: "eth0", LAN: "lan"})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.AddHost("r2", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.106/24", "fd00::106/64"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitReady(l, r2); err != nil {
		t.Fatal(err)
	}
	order := bootOrders[0]
	inst, vip, iname := fast("BACKUP", 99), e2e.VIP4, "VI_1"
	if v6 {
		order = bootOrders[1]
		inst, vip, iname = ipv6Instance("BACKUP", 99), e2e.VIP6, "VI_6"
	}
	e := &env{t: t, net: &e2e.Net{Lab: l, Nodes: []*lab.Host{r1, r2}}, addrs: map[*lab.Host]*e2e.Addrs{}}
	t.Cleanup(func() {
		for _, a := range e.addrs {
			a.Close()
		}
		if t.Failed() {
			for _, nd := range e.nodes {
				t.Logf("%s", nd.AllLogs())
			}
		}
	})
	ve := watchVIP(t, vip, r1, r2)
	// keepalived 2.2.7 reports a configuration error for an interface
	// without an address at start unless dynamic_interfaces is set (vrrp.c
	// "Cannot find an IP address to use for interface"); vigil always
	// behaves as with it.
	withDyn := func(in e2e.Instance) e2e.Conf {
		c := conf(in)
		c.Global = []string{"dynamic_interfaces"}
		return c
	}
	n2 := e.start(peer, 1, withDyn(inst))
	e.waitState(n2, iname, "MASTER", 10*time.Second)

	if err := order.before(r1); err != nil {
		t.Fatal(err)
	}
	high := inst
	high.State, high.Priority = "MASTER", 100
	n1 := e.start(late, 0, withDyn(high))
	if late == e2e.Vigil {
		e.waitState(n1, iname, "FAULT", 15*time.Second)
	}
	if err := order.after(r1); err != nil {
		t.Fatal(err)
	}
	e.waitState(n1, iname, "MASTER", 15*time.Second)
	e.waitState(n2, iname, "BACKUP", 15*time.Second)
	e.waitHolds(r1, vip, true, 15*time.Second)
	e.waitHolds(r2, vip, false, 15*time.Second)
	time.Sleep(300 * time.Millisecond) // three adverts: nothing moves any more
	both, adds := ve.overlap(2)
	t.Logf("%s after %s: VIP held by both for %v; added %d times on r1, %d on r2", late, peer, both, adds[0], adds[1])
	if !e.holds(r1, vip) || e.holds(r2, vip) {
		t.Errorf("after the boot: r1 holds %v, r2 holds %v", e.holds(r1, vip), e.holds(r2, vip))
	}
	return both, adds
}

// BenchmarkBootPair measures how long the late node of
// TestBootLastHigherPriorityEndsMaster and its running peer hold the VIP
// together, for vigil and keepalived 2.2.7 as the late node (the peer is
// vigil):
//
//	CI=true go test -run '^$' -bench BootPair -benchtime 3x ./internal/e2e
func BenchmarkBootPair(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		for _, late := range []e2e.Kind{e2e.Vigil, e2e.Keepalived} {
			b.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6]+"/"+string(late), func(b *testing.B) {
				var sum time.Duration
				n := 0
				for b.Loop() {
					both, _ := runBootPair(b, late, e2e.Vigil, v6)
					sum += both
					n++
				}
				b.ReportMetric(float64(sum.Microseconds())/float64(n)/1000, "both-ms")
			})
		}
	}
}
