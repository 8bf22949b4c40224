package hb_test

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/hb/hblab"
	"github.com/vigil-ha/vigil/internal/hb/machine"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

const vip = "10.168.0.160"

// tutorial builds the seed tutorial's topology (shared/seeds/004): ha1 and
// ha2 with eth0 on the service LAN and eth1 on a heartbeat link, a client,
// and the gateway 10.168.0.1 used as ping node.
type tutorial struct {
	l                 *lab.Lab
	ha1, ha2, cli, gw *lab.Host
	n1, n2            *hblab.Vigil
}

func haCf(peerHB, peerLAN string, keepalive, deadtime, warntime, initdead string) string {
	return fmt.Sprintf(`# the tutorial's ha.cf, scaled, with a second path on eth0
keepalive %s
deadtime %s
warntime %s
initdead %s
udpport 694
ucast eth1 %s
ucast eth0 %s
auto_failback on
node ha1
node ha2
ping 10.168.0.1
`, keepalive, deadtime, warntime, initdead, peerHB, peerLAN)
}

func newTutorial(t *testing.T, timing [4]string) *tutorial {
	netnstest.RequireRoot(t)
	netnstest.RequireCommand(t, "python3")
	netnstest.RequireCommand(t, "curl")
	l := netnstest.New(t, "hbtut")
	tu := &tutorial{l: l}
	tu.ha1, tu.ha2 = addPair(t, l)
	tu.cli = netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.168.0.8/24"}})
	tu.gw = netnstest.AddHost(t, l, "gw", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.168.0.1/24"}})
	files := func(name, peerHB, peerLAN string) hblab.Files {
		return hblab.Files{
			HaCf:        haCf(peerHB, peerLAN, timing[0], timing[1], timing[2], timing[3]),
			HaResources: "ha1 " + vip + "/24/eth0 web\n",
			AuthKeys:    "auth 3\n3 md5 hello!\n",
			Extra:       map[string]string{"resource.d/web": hblab.WebScript(vip), "www/index.html": name + "\n"},
		}
	}
	tu.n1 = hblab.NewVigil(t, tu.ha1, "ha1", files("ha1", "10.0.0.2", "10.168.0.162"))
	tu.n2 = hblab.NewVigil(t, tu.ha2, "ha2", files("ha2", "10.0.0.1", "10.168.0.161"))
	return tu
}

// startSteadyPair builds the tutorial at fast timings (keepalive 200ms,
// deadtime 1, warntime 500ms, initdead 5), starts both nodes and returns
// once ha1 holds the VIP and ha2 sees ha1 active.
func startSteadyPair(t *testing.T) *tutorial {
	t.Helper()
	tu := newTutorial(t, [4]string{"200ms", "1", "500ms", "5"})
	tu.n1.Start()
	tu.n2.Start()
	tu.waitHolder(t, "ha1", 10*time.Second)
	waitStatus(t, tu.n2, func(st hb.Status) bool { return len(st.Peers) == 1 && st.Peers[0].Status == machine.StatusActive })
	return tu
}

// dialHA2 opens a UDP socket on the client host to ha2's heartbeat port on
// the service LAN, closed when the test ends.
// addPair adds the two nodes of the tutorial's cluster to l: eth0 on the
// LAN (ha1 10.168.0.161, ha2 .162), eth1 on the heartbeat link (10.0.0.1,
// .2).
func addPair(t *testing.T, l *lab.Lab) (ha1, ha2 *lab.Host) {
	ha1 = netnstest.AddHost(t, l, "ha1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.168.0.161/24"}}, lab.Iface{Name: "eth1", LAN: "hb", Addrs: []string{"10.0.0.1/24"}})
	ha2 = netnstest.AddHost(t, l, "ha2", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.168.0.162/24"}}, lab.Iface{Name: "eth1", LAN: "hb", Addrs: []string{"10.0.0.2/24"}})
	return ha1, ha2
}

func (tu *tutorial) dialHA2(t *testing.T) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := tu.cli.Do(func() error {
		var err error
		c, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP("10.168.0.162"), Port: 694})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// holder returns which of ha1/ha2 has the VIP (vipHolder).
func (tu *tutorial) holder() string { return vipHolder(tu.ha1, tu.ha2) }

func (tu *tutorial) waitHolder(t *testing.T, want string, limit time.Duration) time.Duration {
	t.Helper()
	return waitVIPHolder(t, tu.ha1, tu.ha2, want, limit, func() string {
		return "ha1:\n" + tu.n1.Output() + "\nha2:\n" + tu.n2.Output()
	})
}

// vipHolder returns which of ha1/ha2 has the VIP: "ha1", "ha2", "both", "".
func vipHolder(ha1, ha2 *lab.Host) string {
	a, b := hblab.HasAddr(ha1, vip), hblab.HasAddr(ha2, vip)
	switch {
	case a && b:
		// The two reads are not one instant: ha1 letting go and ha2
		// taking over between them reads as both. Only ha1 still
		// holding after ha2's read is an overlap.
		if hblab.HasAddr(ha1, vip) {
			return "both"
		}
		return "ha2"
	case a:
		return "ha1"
	case b:
		return "ha2"
	}
	return ""
}

// waitVIPHolder waits up to limit for vipHolder to say want and returns
// how long that took; past limit it fails the test with logs().
func waitVIPHolder(t *testing.T, ha1, ha2 *lab.Host, want string, limit time.Duration, logs func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if vipHolder(ha1, ha2) == want {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("VIP holder is %q after %v, want %q\n%s", vipHolder(ha1, ha2), limit, want, logs())
	return 0
}

// curl asks the client for the page on the VIP.
func (tu *tutorial) curl(t *testing.T, want string) {
	t.Helper()
	var out string
	for range 30 {
		o, err := tu.cli.Run("curl", "-s", "--max-time", "1", "http://"+vip+"/")
		out = strings.TrimSpace(o)
		if err == nil && out == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("client got %q from %s, want %q", out, vip, want)
}

// sampler watches both nodes' addresses and records every moment both
// hold the VIP while allowed is false, with the step under way.
type sampler struct {
	mu      sync.Mutex
	allowed bool
	step    string
	bad     []overlap
	stop    chan struct{}
	done    chan struct{}
}

type overlap struct {
	at   time.Time
	step string
}

func (tu *tutorial) sample() *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
			if tu.holder() == "both" {
				now := time.Now()
				s.mu.Lock()
				if !s.allowed {
					s.bad = append(s.bad, overlap{at: now, step: s.step})
				}
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *sampler) allow(v bool) { s.mu.Lock(); s.allowed = v; s.mu.Unlock() }

// at names the step under way, for the failure message.
func (s *sampler) at(step string) { s.mu.Lock(); s.step = step; s.mu.Unlock() }

func (s *sampler) finish(t *testing.T, tu *tutorial) {
	close(s.stop)
	<-s.done
	if len(s.bad) == 0 {
		return
	}
	var b strings.Builder
	var times []time.Time
	for _, o := range s.bad {
		fmt.Fprintf(&b, "  %s during %q\n", o.at.UTC().Format("15:04:05.000"), o.step)
		times = append(times, o.at)
	}
	logs := map[string]string{"ha1": tu.n1.Output(), "ha2": tu.n2.Output()}
	t.Errorf("both nodes held %s outside a full partition at %d samples:\n%sresource and membership events within 3 s (UTC):\n%s\nha1:\n%s\nha2:\n%s",
		vip, len(s.bad), b.String(), timeline(logs, times, 3*time.Second), logs["ha1"], logs["ha2"])
}

// timeline merges the nodes' log lines about resources, standby, stops and
// deaths that lie within d of one of the times, in time order, each
// prefixed by its node: who acquired and released what, when.
func timeline(logs map[string]string, times []time.Time, d time.Duration) string {
	keys := []string{"resource group", "standby", "shutting down", "stopping", "shutdown", "is dead", "Resources being acquired", "giving up", "transition completed", "node status"}
	type entry struct {
		at   time.Time
		line string
	}
	var es []entry
	for node, out := range logs {
		for _, l := range strings.Split(out, "\n") {
			ts, rest, ok := strings.Cut(strings.TrimPrefix(l, "time="), " ")
			if !ok || !strings.HasPrefix(l, "time=") {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				continue
			}
			near := false
			for _, x := range times {
				near = near || (at.After(x.Add(-d)) && at.Before(x.Add(d)))
			}
			relevant := false
			for _, k := range keys {
				relevant = relevant || strings.Contains(rest, k)
			}
			if near && relevant {
				es = append(es, entry{at, fmt.Sprintf("  %s %s %s", at.UTC().Format("15:04:05.000"), node, rest)})
			}
		}
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].at.Before(es[j].at) })
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.line + "\n")
	}
	return b.String()
}

// TestTutorialFailures runs the tutorial's five failure tests on a vigil
// pair with scaled timings (keepalive 0.2 s, deadtime 1 s): each takeover
// happens (within 10 s: a generous bound for a loaded machine; the time
// taken, about deadtime + one keepalive, is logged), never both holding the
// VIP outside a full partition, auto_failback bringing it back.
func TestTutorialFailures(t *testing.T) {
	const keepalive, deadtime = 200 * time.Millisecond, time.Second
	// initdead 5 s: a restarted node that hears nothing from its peer for
	// initdead takes everything (heartbeat does the same); on this shared
	// machine 2 s proved too short under load.
	tu := newTutorial(t, [4]string{"200ms", "1", "500ms", "5"})
	s := tu.sample()
	defer s.finish(t, tu)

	s.at("start")
	tu.n1.Start()
	tu.n2.Start()
	tu.waitHolder(t, "ha1", 10*time.Second)
	tu.curl(t, "ha1")
	waitStatus(t, tu.n2, func(st hb.Status) bool { return len(st.Peers) == 1 && st.Peers[0].Status == machine.StatusActive })

	t.Run("1 graceful stop moves the service cleanly", func(t *testing.T) {
		s.at(t.Name())
		start := time.Now()
		if err := tu.n1.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		d := tu.waitHolder(t, "ha2", 15*time.Second)
		t.Logf("graceful hand-over: VIP on ha2 %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		_ = d
		tu.curl(t, "ha2")
		tu.n1.Start()
		d = tu.waitHolder(t, "ha1", 10*time.Second)
		t.Logf("auto_failback: VIP back on ha1 %v after restart", d.Round(time.Millisecond))
		tu.curl(t, "ha1")
	})

	t.Run("2 ifdown eth0 on the primary (ipfail)", func(t *testing.T) {
		s.at(t.Name())
		waitStatus(t, tu.n2, func(st hb.Status) bool { return st.PingUp == 1 })
		waitStatus(t, tu.n1, func(st hb.Status) bool { return st.PingUp == 1 && len(st.Peers) == 1 && st.Peers[0].PingUp == 1 })
		start := time.Now()
		if err := tu.ha1.SetLink("eth0", false); err != nil {
			t.Fatal(err)
		}
		tu.waitHolder(t, "ha2", 10*time.Second)
		took := time.Since(start)
		t.Logf("FIGURE ifdown eth0: VIP on ha2 after %v (deadping %v + standby exchange)", took.Round(time.Millisecond), deadtime)
		tu.curl(t, "ha2")
		if err := tu.ha1.SetLink("eth0", true); err != nil {
			t.Fatal(err)
		}
		d := tu.waitHolder(t, "ha1", 10*time.Second)
		t.Logf("eth0 up again: VIP back on ha1 after %v", d.Round(time.Millisecond))
		tu.curl(t, "ha1")
	})

	t.Run("4 heartbeat link cut: no takeover while eth0 carries heartbeats", func(t *testing.T) {
		s.at(t.Name())
		if err := tu.ha1.SetCable("eth1", false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * deadtime)
		if h := tu.holder(); h != "ha1" {
			t.Fatalf("holder %q after cutting eth1, want ha1", h)
		}
		waitStatus(t, tu.n2, func(st hb.Status) bool {
			p := st.Peers[0]
			return p.Status == machine.StatusActive && !p.Links[0].Up && p.Links[1].Up
		})
		tu.curl(t, "ha1")
		if err := tu.ha1.SetCable("eth1", true); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, tu.n2, func(st hb.Status) bool { return st.Peers[0].Links[0].Up })
	})

	t.Run("3 power off the primary (kill -9 + cables pulled)", func(t *testing.T) {
		s.at(t.Name())
		start := time.Now()
		tu.n1.Kill()
		tu.ha1.SetCable("eth0", false)
		tu.ha1.SetCable("eth1", false)
		// A machine that is off holds no address.
		tu.ha1.Run("ip", "addr", "del", vip+"/24", "dev", "eth0")
		tu.waitHolder(t, "ha2", 10*time.Second)
		took := time.Since(start)
		t.Logf("FIGURE power off: VIP on ha2 after %v (deadtime %v + keepalive %v)", took.Round(time.Millisecond), deadtime, keepalive)
		tu.curl(t, "ha2")
		tu.ha1.SetCable("eth0", true)
		tu.ha1.SetCable("eth1", true)
		tu.n1.Start()
		d := tu.waitHolder(t, "ha1", 10*time.Second)
		t.Logf("power on: auto_failback after %v", d.Round(time.Millisecond))
		tu.curl(t, "ha1")
	})

	t.Run("5 kill -9 the daemon", func(t *testing.T) {
		s.at(t.Name())
		// The killed node keeps its address until the kernel watchdog
		// resets it (ha.cf's watchdog; TestKernelWatchdog shows the
		// softdog firing in the VM tier). Namespaces share one kernel, so
		// the reset is emulated by removing the address once ha2 took over.
		s.allow(true)
		defer s.allow(false)
		start := time.Now()
		tu.n1.KillDaemon()
		for !hblab.HasAddr(tu.ha2, vip) && time.Since(start) < 10*time.Second {
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(start)
		t.Logf("FIGURE kill -9: VIP on ha2 after %v", took.Round(time.Millisecond))
		if !hblab.HasAddr(tu.ha2, vip) {
			t.Fatalf("ha2 did not take %s over within %v of the kill -9", vip, took.Round(time.Millisecond))
		}
		tu.n1.Kill() // the watchdog reboot: resources gone
		tu.ha1.Run("ip", "addr", "del", vip+"/24", "dev", "eth0")
		tu.waitHolder(t, "ha2", 15*time.Second)
		tu.curl(t, "ha2")
	})
}

func waitStatus(t *testing.T, v *hblab.Vigil, ok func(hb.Status) bool) hb.Status {
	t.Helper()
	var st hb.Status
	var err error
	for range 200 {
		st, err = v.Status()
		if err == nil && ok(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: status never matched: %+v (%v)\n%s", v.Name, st, err, v.Output())
	return st
}

// TestTutorialRealTimings runs one case at the tutorial's own values
// (keepalive 2, deadtime 30; about 45 s): a power-off takeover. -short
// skips it.
func TestTutorialRealTimings(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the tutorial's real timings take about 45 s")
	}
	// Mostly waiting for deadtime: beside the heartbeat interop test.
	t.Parallel()
	tu := newTutorial(t, [4]string{"2", "30", "10", "30"})
	tu.n1.Start()
	tu.n2.Start()
	tu.waitHolder(t, "ha1", 20*time.Second)
	start := time.Now()
	tu.n1.Kill()
	tu.ha1.SetCable("eth0", false)
	tu.ha1.SetCable("eth1", false)
	tu.ha1.Run("ip", "addr", "del", vip+"/24", "dev", "eth0")
	tu.waitHolder(t, "ha2", 40*time.Second)
	took := time.Since(start)
	t.Logf("power off at tutorial timings: takeover after %v", took.Round(time.Millisecond))
	// Not before deadtime (less the keepalive the last heartbeat may
	// have been sent before the kill); the wait above bounds it above.
	if took < 28*time.Second {
		t.Errorf("takeover after %v, before deadtime (30 s) - keepalive (2 s)", took)
	}
	tu.curl(t, "ha2")
}
