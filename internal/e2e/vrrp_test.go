package e2e_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// fast is the tutorial's instance over VRRPv3 with advert_int 0.1, which
// keeps these tests short: Master_Down_Interval is 0.3 s + skew.
func fast(state string, prio int) e2e.Instance {
	return e2e.Instance{
		Name: "VI_1", State: state, Interface: "eth0", VRID: 55, Priority: prio,
		AdvertInt: "0.1", Version: 3,
		VIPs: []string{"192.168.1.100/24 dev eth0 label eth0:1"},
	}
}

func conf(in ...e2e.Instance) e2e.Conf { return e2e.Conf{Instances: in} }

// neverMaster fails if vigil's log shows the instance entering MASTER.
func neverMaster(t *testing.T, nd *e2e.Node, instance string) {
	t.Helper()
	for _, tr := range vigilTransitions(nd.Log(), instance) {
		if strings.HasSuffix(tr, ">MASTER") {
			t.Errorf("%s: %s became MASTER (transitions %v)", nd.Name(), instance, vigilTransitions(nd.Log(), instance))
		}
	}
}

// stayHolder checks for d that h keeps the VIP and no other node takes it.
func (e *env) stayHolder(vip netip.Addr, want int, d time.Duration) {
	e.t.Helper()
	h := e.holders(vip)
	time.Sleep(d)
	samples, err := h.Stop()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range samples {
		for i, held := range s.Held {
			if held != (i == want) {
				e.t.Fatalf("at %s %s holds the VIP: %v, want only %s", s.At.Format("15:04:05.000"), e.node(i).Name(), held, e.node(want).Name())
			}
		}
	}
}

// TestNopreempt configures both nodes BACKUP with nopreempt, as the
// tutorials do: the VIP stays where it went. The higher-priority node
// returning after a crash does not take it back.
func TestNopreempt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "nopre", 2)
	a, b := fast("BACKUP", 100), fast("BACKUP", 99)
	a.Nopreempt, b.Nopreempt = true, true
	r1 := e.start(e2e.Vigil, 0, conf(a))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	r2 := e.start(e2e.Vigil, 1, conf(b))
	e.waitState(r2, "VI_1", "BACKUP", 10*time.Second)
	e.onlyHolder(e2e.VIP4, e.node(0))

	r1.Kill()
	e.waitState(r2, "VI_1", "MASTER", 10*time.Second)
	e.waitHolds(e.node(1), e2e.VIP4, true, 15*time.Second)

	e.restart(r1)
	e.waitState(r1, "VI_1", "BACKUP", 10*time.Second)
	e.waitHolds(e.node(0), e2e.VIP4, false, 15*time.Second) // the killed run's VIP, removed at start
	// Ten advert intervals, three times Master_Down_Interval: a
	// preempting node would have taken over long before.
	e.stayHolder(e2e.VIP4, 1, time.Second)
	neverMaster(t, r1, "VI_1")
	if s := status_(t, r1, "VI_1"); s.State != "BACKUP" || s.Master != "192.168.1.106" {
		t.Errorf("returning node: state %s master %s, want BACKUP under 192.168.1.106", s.State, s.Master)
	}
}

// TestPreemptDelay: a higher-priority node that starts while another is
// master waits preempt_delay before it takes over.
func TestPreemptDelay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "pdelay", 2)
	a, b := fast("BACKUP", 100), fast("BACKUP", 99)
	a.PreemptDelay = "2"
	r2 := e.start(e2e.Vigil, 1, conf(b))
	e.waitState(r2, "VI_1", "MASTER", 10*time.Second)
	started := time.Now()
	r1 := e.start(e2e.Vigil, 0, conf(a))
	e.waitState(r1, "VI_1", "BACKUP", 15*time.Second)
	// r2 keeps the VIP until shortly before preempt_delay has passed since
	// r1 started (its start and the wait above take longer on a loaded
	// machine: the window is what is left of it).
	if stay := time.Until(started.Add(1800 * time.Millisecond)); stay > 100*time.Millisecond {
		e.stayHolder(e2e.VIP4, 1, stay)
	} else {
		t.Logf("r1 was BACKUP only %v after its start: no time left to watch r2 keep the VIP", time.Since(started).Round(time.Millisecond))
	}
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	took := time.Since(started)
	t.Logf("the higher-priority node took over %v after it started (preempt_delay 2)", took)
	if took < 1900*time.Millisecond {
		t.Errorf("preempted %v after start, before preempt_delay 2 s", took)
	}
	e.waitState(r2, "VI_1", "BACKUP", 15*time.Second)
	e.waitHolds(e.node(1), e2e.VIP4, false, 15*time.Second)
	e.onlyHolder(e2e.VIP4, e.node(0))
}

// TestUnicast: unicast_src_ip + unicast_peer. Adverts go to the peer's
// address, not to 224.0.0.18; failover works; with check_unicast_src an
// advert from a host that is not a configured peer is dropped and counted as
// not_unicast_peer even though its priority would win; without it (keepalived
// 2.2.7's default) such an advert is not dropped and is logged once.
func TestUnicast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "ucast", 2)
	a, b := fast("MASTER", 100), fast("BACKUP", 99)
	a.UnicastSrc, a.UnicastPeers = "192.168.1.105", []string{"192.168.1.106"}
	a.Extra = append(a.Extra, "check_unicast_src")
	b.UnicastSrc, b.UnicastPeers = "192.168.1.106", []string{"192.168.1.105"}
	sn, err := e2e.StartSniffer(e.node(1), "eth0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Stop()
	r1 := e.start(e2e.Vigil, 0, conf(a))
	r2 := e.start(e2e.Vigil, 1, conf(b))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 10*time.Second)
	// Three of the master's adverts seen (10 s at most on a loaded
	// machine), none of them multicast.
	var unicast, multicast int
	for deadline := time.Now().Add(10 * time.Second); unicast < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		unicast, multicast = 0, 0
		for _, f := range sn.Frames() {
			if v, ok := e2e.ParseVRRP(f.Data); ok && v.Src == e2e.NodeAddr4(0) {
				switch v.Dst {
				case e2e.NodeAddr4(1):
					unicast++
				default:
					multicast++
				}
			}
		}
	}
	if unicast == 0 || multicast != 0 {
		t.Errorf("the master's adverts on the backup's wire: %d to 192.168.1.106, %d elsewhere; want only unicast", unicast, multicast)
	}

	// A third host, not a peer, claims the VIP with priority 254.
	before := status_(t, r1, "VI_1")
	j, err := e2e.NewInjector(e.net.Client, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	adv := packet.Advert{Version: 3, Type: 1, VRID: 55, Priority: 254, CountIPAddrs: 1, AdvertInt: 10,
		Addrs: []netip.Addr{e2e.VIP4}}
	b3, err := adv.Marshal(e2e.Client4, e2e.NodeAddr4(0))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := j.Send(e2e.Client4, e2e.NodeAddr4(0), 255, 112, b3); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitDropped(t, r1, "VI_1", "not_unicast_peer", 5)
	after := status_(t, r1, "VI_1")
	if after.State != "MASTER" || after.Counters.Transitions != before.Counters.Transitions {
		t.Errorf("master after the stranger's adverts: %s, transitions %d -> %d", after.State, before.Counters.Transitions, after.Counters.Transitions)
	}

	// The backup has no check_unicast_src: the stranger's advert, with a
	// priority that changes nothing, is taken and reported once.
	low := packet.Advert{Version: 3, Type: 1, VRID: 55, Priority: 10, CountIPAddrs: 1, AdvertInt: 10,
		Addrs: []netip.Addr{e2e.VIP4}}
	bl, err := low.Marshal(e2e.Client4, e2e.NodeAddr4(1))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := j.Send(e2e.Client4, e2e.NodeAddr4(1), 255, 112, bl); err != nil {
			t.Fatal(err)
		}
	}
	if err := r2.WaitLog("not a unicast_peer", 10*time.Second); err != nil {
		t.Error(err)
	}
	if n := strings.Count(r2.Log(), "not a unicast_peer"); n != 1 {
		t.Errorf("backup logged the stranger's adverts %d times, want once", n)
	}
	if s := status_(t, r2, "VI_1"); s.Counters.Dropped["not_unicast_peer"] != 0 || s.State != "BACKUP" {
		t.Errorf("backup without check_unicast_src: %s, dropped %v", s.State, s.Counters.Dropped)
	}

	r1.Kill()
	e.waitState(r2, "VI_1", "MASTER", 10*time.Second)
	e.waitHolds(e.node(1), e2e.VIP4, true, 15*time.Second)
}

// waitDropped waits until the instance's status counts at least n drops
// for reason.
func waitDropped(t *testing.T, nd *e2e.Node, instance, reason string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := status_(t, nd, instance)
		if s.Counters.Dropped[reason] >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %s counts %v dropped, want %s ≥ %d", nd.Name(), instance, s.Counters.Dropped, reason, n)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ipv6Instance is VRRPv3 over IPv6 at advert_int 0.1 with VIP fd00::100/64;
// the family follows the address (keepalived's native_ipv6 is deprecated).
func ipv6Instance(state string, prio int) e2e.Instance {
	return e2e.Instance{Name: "VI_6", State: state, Interface: "eth0", VRID: 56, Priority: prio,
		AdvertInt: "0.1", Version: 3, VIPs: []string{"fd00::100/64 dev eth0"}}
}

// TestIPv6 runs VRRPv3 over IPv6: adverts go to ff02::12 from the link-local
// address with hop limit 255, the VIP fd00::100/64 moves on kill -9, the
// unsolicited neighbour advertisement updates the client's neighbour entry
// and the client's HTTP requests to [fd00::100] reach the new master.
func TestIPv6(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "ipv6", 2)
	e.servers()
	in := ipv6Instance
	sn, err := e2e.StartSniffer(e.net.Client, "eth0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Stop()
	r1 := e.start(e2e.Vigil, 0, conf(in("MASTER", 100)))
	r2 := e.start(e2e.Vigil, 1, conf(in("BACKUP", 99)))
	e.waitState(r1, "VI_6", "MASTER", 10*time.Second)
	e.waitState(r2, "VI_6", "BACKUP", 10*time.Second)
	e.waitHolds(e.node(0), e2e.VIP6, true, 15*time.Second)
	e.waitAnswer(e2e.VIP6, "r1", 15*time.Second)

	ll1, err := e2e.LinkLocal(e.node(0), "eth0")
	if err != nil {
		t.Fatal(err)
	}
	ll2, err := e2e.LinkLocal(e.node(1), "eth0")
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, f := range sn.Frames() {
		v, ok := e2e.ParseVRRP(f.Data)
		if !ok || v.VRID != 56 {
			continue
		}
		seen++
		if v.Src != ll1 || v.Dst != netip.MustParseAddr("ff02::12") || v.TTL != 255 || v.Version != 3 || v.Priority != 100 {
			t.Fatalf("advert %+v, want v3 priority 100 from %v to ff02::12 with hop limit 255", v, ll1)
		}
	}
	if seen == 0 {
		t.Fatal("the client saw no IPv6 advert")
	}
	if s := status_(t, r2, "VI_6"); s.Master != ll1.String() || s.Family != "inet6" {
		t.Errorf("backup's status: master %q family %s, want %v inet6", s.Master, s.Family, ll1)
	}

	sn.Reset()
	r1.Kill()
	e.waitState(r2, "VI_6", "MASTER", 10*time.Second)
	e.waitHolds(e.node(1), e2e.VIP6, true, 15*time.Second)
	mac2 := e.node(1).Iface("eth0").MAC
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := e.net.Client.Run("ip", "-6", "neigh", "show", "fd00::100", "dev", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, mac2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client's neighbour entry for fd00::100: %q, want r2's %s", out, mac2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.waitAnswer(e2e.VIP6, "r2", 15*time.Second)
	var na, adverts bool
	for _, f := range sn.Frames() {
		if a, ok := e2e.ParseAnnouncement(f.Data); ok && a.Addr == e2e.VIP6 && a.SrcMAC.String() == mac2 {
			na = true
		}
		if v, ok := e2e.ParseVRRP(f.Data); ok && v.VRID == 56 && v.Src == ll2 && v.Priority == 99 {
			adverts = true
		}
	}
	if !na || !adverts {
		t.Errorf("after the failover the client saw an unsolicited NA for fd00::100 from r2: %v, r2's adverts from %v: %v", na, ll2, adverts)
	}
}

// TestThreeNodes: three nodes of priority 100, 90 and 80. The highest is
// master; when it dies the middle one wins and the lowest stays backup.
func TestThreeNodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "three", 3)
	r1 := e.start(e2e.Vigil, 0, conf(fast("BACKUP", 100)))
	r2 := e.start(e2e.Vigil, 1, conf(fast("BACKUP", 90)))
	r3 := e.start(e2e.Vigil, 2, conf(fast("BACKUP", 80)))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 10*time.Second)
	e.waitState(r3, "VI_1", "BACKUP", 10*time.Second)
	e.waitHolds(e.node(0), e2e.VIP4, true, 15*time.Second)
	time.Sleep(500 * time.Millisecond)
	e.onlyHolder(e2e.VIP4, e.node(0))

	r1.Kill()
	e.waitState(r2, "VI_1", "MASTER", 10*time.Second)
	e.waitHolds(e.node(1), e2e.VIP4, true, 15*time.Second)
	// r1's killed vigil left its VIP: ignore r1, watch r2 and r3.
	time.Sleep(500 * time.Millisecond)
	if e.holds(e.node(2), e2e.VIP4) {
		t.Error("the lowest-priority node holds the VIP")
	}
	if s := status_(t, r3, "VI_1"); s.State != "BACKUP" || s.Master != "192.168.1.106" {
		t.Errorf("lowest node: %s under %s, want BACKUP under 192.168.1.106", s.State, s.Master)
	}
	neverMaster(t, r3, "VI_1")
}

// TestLinkDown unplugs the master's cable: it goes to FAULT and removes its
// VIP, the backup takes over; plugged back, the master recovers and takes
// the VIP back, never sharing it for more than one advert interval.
func TestLinkDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "link", 2)
	r1 := e.start(e2e.Vigil, 0, conf(fast("MASTER", 100)))
	r2 := e.start(e2e.Vigil, 1, conf(fast("BACKUP", 99)))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 10*time.Second)
	e.waitHolds(e.node(0), e2e.VIP4, true, 15*time.Second)

	h := e.holders(e2e.VIP4)
	if err := e.node(0).SetCable("eth0", false); err != nil {
		t.Fatal(err)
	}
	e.waitState(r1, "VI_1", "FAULT", 10*time.Second)
	e.waitHolds(e.node(0), e2e.VIP4, false, 15*time.Second)
	e.waitState(r2, "VI_1", "MASTER", 10*time.Second)
	e.waitHolds(e.node(1), e2e.VIP4, true, 15*time.Second)
	s := status_(t, r1, "VI_1")
	if !strings.Contains(s.Reason, "interface") {
		t.Errorf("FAULT reason %q does not name the interface", s.Reason)
	}

	if err := e.node(0).SetCable("eth0", true); err != nil {
		t.Fatal(err)
	}
	e.waitState(r1, "VI_1", "MASTER", 15*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 15*time.Second)
	e.waitHolds(e.node(1), e2e.VIP4, false, 15*time.Second)
	time.Sleep(100 * time.Millisecond)
	e.checkOverlap(h, 100*time.Millisecond)
	e.onlyHolder(e2e.VIP4, e.node(0))
	tr := strings.Join(waitTransitions(r1, "VI_1", func(tr []string) bool { return len(tr) > 0 && tr[len(tr)-1] == "BACKUP>MASTER" }), " ")
	if !strings.Contains(tr, "MASTER>FAULT") || !strings.Contains(tr, "FAULT>BACKUP") {
		t.Errorf("master's transitions %s, want MASTER>FAULT ... FAULT>BACKUP ... BACKUP>MASTER", tr)
	}
}

// TestBadAdverts: a third host sends adverts for the tutorial's VRID with
// priority 254 (they would make the master step down) but a wrong
// password, TTL 64, a wrong checksum; and a valid advert for another VRID.
// The master ignores them all and `vigil status --json` counts each under
// its reason.
func TestBadAdverts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "bad", 2)
	r1 := e.start(e2e.Vigil, 0, conf(e2e.Tutorial(true)))
	r2 := e.start(e2e.Vigil, 1, conf(e2e.Tutorial(false)))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	e.waitState(r2, "VI_1", "BACKUP", 10*time.Second)
	before := status_(t, r1, "VI_1")

	j, err := e2e.NewInjector(e.net.Client, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	group := netip.MustParseAddr("224.0.0.18")
	advert := func(vrid uint8, pass string) []byte {
		a := packet.Advert{Version: 2, Type: 1, VRID: vrid, Priority: 254, CountIPAddrs: 1, AuthType: packet.AuthPass,
			AdvertInt: 1, Addrs: []netip.Addr{e2e.VIP4}}
		copy(a.AuthData[:], pass)
		b, err := a.Marshal(e2e.Client4, group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	badSum := advert(55, "1111")
	badSum[6] ^= 0xff
	cases := []struct {
		reason string
		ttl    int
		b      []byte
	}{
		{"auth_failure", 255, advert(55, "2222")},
		{"bad_ttl", 64, advert(55, "1111")},
		{"bad_checksum", 255, badSum},
		{"unknown_vrid", 255, advert(56, "1111")},
	}
	const n = 3
	for range n {
		for _, c := range cases {
			if err := j.Send(e2e.Client4, group, c.ttl, 112, c.b); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range cases[:3] {
		waitDropped(t, r1, "VI_1", c.reason, n)
		waitDropped(t, r2, "VI_1", c.reason, n)
	}
	after := status_(t, r1, "VI_1")
	if after.State != "MASTER" || after.Counters.Transitions != before.Counters.Transitions ||
		after.Counters.AdvertsReceived != before.Counters.AdvertsReceived {
		t.Errorf("master after the bad adverts: %s, transitions %d -> %d, adverts accepted %d -> %d",
			after.State, before.Counters.Transitions, after.Counters.Transitions,
			before.Counters.AdvertsReceived, after.Counters.AdvertsReceived)
	}
	if !e.holds(e.node(0), e2e.VIP4) {
		t.Error("the master lost its VIP")
	}
	// The advert for VRID 56 belongs to no instance here; the daemon must
	// still count it somewhere in `vigil status --json`.
	out, err := e.net.Nodes[0].Run(netnstest.VigilBinary(t), "status", "--json", "--api-socket", r1.Socket())
	if err != nil {
		t.Fatal(err)
	}
	var snap map[string]any
	if err := json.Unmarshal([]byte(out), &snap); err != nil {
		t.Fatalf("vigil status --json: %v\n%s", err, out)
	}
	if got := countReason(snap, "unknown_vrid"); got < n {
		t.Errorf("vigil status --json counts %v adverts with an unknown VRID, want ≥ %d:\n%s", got, n, out)
	}
	if !waitLogged(r1, "reason=auth_failure") {
		t.Errorf("no log line for the failed authentication:\n%s", r1.Log())
	}
}

// countReason sums every number under a key named reason anywhere in v.
func countReason(v any, reason string) float64 {
	var sum float64
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			if n, ok := y.(float64); ok && k == reason {
				sum += n
			} else {
				sum += countReason(y, reason)
			}
		}
	case []any:
		for _, y := range x {
			sum += countReason(y, reason)
		}
	}
	return sum
}

// TestVirtualRoutesFollowTheMaster: virtual_routes and virtual_rules are
// installed on the MASTER with its VIP and removed when it stops being
// MASTER (keepalived's vrrp_instance routes).
func TestVirtualRoutesFollowTheMaster(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "vroute", 2)
	a, b := fast("MASTER", 100), fast("BACKUP", 99)
	for _, in := range []*e2e.Instance{&a, &b} {
		in.Extra = append(in.Extra,
			"virtual_routes {", "  10.77.0.0/16 via 192.168.1.1 dev eth0 table 100", "  blackhole 10.78.0.0/16", "}",
			"virtual_rules {", "  from 192.168.1.100/32 table 100 priority 1000", "}")
	}
	r1 := e.start(e2e.Vigil, 0, conf(a))
	e.waitState(r1, "VI_1", "MASTER", 10*time.Second)
	r2 := e.start(e2e.Vigil, 1, conf(b))
	e.waitState(r2, "VI_1", "BACKUP", 10*time.Second)
	has := func(i int, want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			routes, _ := e.node(i).Run("ip", "route", "show", "table", "all")
			rules, _ := e.node(i).Run("ip", "rule", "show")
			got := strings.Contains(routes, "10.77.0.0/16 via 192.168.1.1 dev eth0 table 100 proto keepalived") &&
				strings.Contains(routes, "blackhole 10.78.0.0/16 proto keepalived") &&
				strings.Contains(rules, "from 192.168.1.100 lookup 100")
			none := !strings.Contains(routes, "10.77.0.0") && !strings.Contains(routes, "10.78.0.0") && !strings.Contains(rules, "lookup 100")
			if (want && got) || (!want && none) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: want routes=%v\nroutes:\n%s\nrules:\n%s", i, want, routes, rules)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	has(0, true)
	has(1, false)
	if _, err := r1.Term(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	e.waitState(r2, "VI_1", "MASTER", 10*time.Second)
	has(1, true)
	has(0, false)
}
