package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netif"
)

// The lab's addresses: a front LAN with the nodes and the client, a back LAN
// with the nodes and the real servers, whose gateway is the back VIP.
var (
	VIPFront = netip.MustParseAddr("192.168.1.100")
	VIPExtra = netip.MustParseAddr("192.168.1.101") // added and removed by reload-vips
	VIPBack  = netip.MustParseAddr("10.0.2.254")
	clientIP = "192.168.1.10"
	rsIPs    = []string{"10.0.2.21", "10.0.2.22"}
)

func frontIP(i int) string { return fmt.Sprintf("192.168.1.%d", i+1) }
func backIP(i int) string  { return fmt.Sprintf("10.0.2.%d", i+1) }

// Options configure a run.
type Options struct {
	Seed   uint64
	Faults int
	Kinds  []Kind
	Advert time.Duration
	// Keepalived runs keepalived 2.2.7 on r3 (a mixed cluster) instead of
	// vigil.
	Keepalived    bool
	VigilBin      string
	KeepalivedBin string
	Dir           string    // node directories (created inside)
	Log           io.Writer // progress, one line per fault
	// Every is the client's request interval (20 ms when zero).
	Every time.Duration
	// Cover puts every kind in the schedule at least once (PlanOptions).
	Cover bool
	// Tol is added to the advert interval on two-holder stretches for the
	// delivery of netlink events on a loaded machine (25 ms when zero).
	Tol time.Duration
	// RTPriority, when not zero, is written as vrrp_rt_priority for every
	// node, vigil and keepalived alike (SCHED_RR): what an operator sets on
	// a busy host, so the run judges the daemons' logic rather than the
	// machine's other load.
	RTPriority int
}

// Outcome is what a run recorded and its verdict.
type Outcome struct {
	Options Options
	Plan    []Fault
	Input   Input
	Result  Result
	Logs    map[string]string // every node's daemon output, by node name
}

// masterDown is RFC 5798's Master_Down_Interval as keepalived 2.2.7
// computes it for VRRPv3: 3 × interval + (256 - priority) × interval / 256
// (interval in centiseconds, skew in µs: × 625 / 16).
func masterDown(prio int, adv time.Duration) time.Duration {
	cs := int64(adv / (10 * time.Millisecond))
	return 3*adv + time.Duration(int64(256-prio)*cs*625/16)*time.Microsecond
}

// lowestPrio is the lowest priority a node has in a run (priorities are
// 100, 90, 80 in some order).
const lowestPrio = 80

// Bound is the one-holder bound: the Master_Down_Interval of the
// lowest-priority node plus 100 ms.
func Bound(adv time.Duration) time.Duration {
	return masterDown(lowestPrio, adv) + 100*time.Millisecond
}

// node is one VRRP node of the lab.
type node struct {
	i    int
	host *lab.Host
	d    *e2e.Node
	prio int
	// expected holds the processes told to exit (kill -9, the final stop).
	expected map[*lab.Proc]bool
	hogs     []*lab.Proc
}

// cluster is a running lab.
type cluster struct {
	o      Options
	l      *lab.Lab
	nodes  []*node
	client *lab.Host
	rs     []*lab.Host
	srv    []*e2e.Server
	addrs  []*e2e.Addrs
	extra  bool // VIPExtra configured

	mu      sync.Mutex
	held    map[netip.Addr][]bool
	changes []Change
	crashes []Crash
	applied []Applied
	config  []ConfigChange
	wg      sync.WaitGroup // heal goroutines
}

func (c *cluster) logf(format string, args ...any) {
	if c.o.Log != nil {
		fmt.Fprintf(c.o.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}

// Run builds the lab, runs the schedule Plan gives for o, checks the
// invariants and tears everything down.
func Run(ctx context.Context, o Options) (*Outcome, error) {
	if o.Every == 0 {
		o.Every = 20 * time.Millisecond
	}
	if o.Tol == 0 {
		o.Tol = 25 * time.Millisecond
	}
	if o.KeepalivedBin == "" {
		o.KeepalivedBin = e2e.KeepalivedBin
	}
	plan := Plan(PlanOptions{Seed: o.Seed, Faults: o.Faults, Kinds: o.Kinds, Nodes: 3, Advert: o.Advert, Cover: o.Cover})
	out := &Outcome{Options: o, Plan: plan, Logs: map[string]string{}}
	c, err := build(o)
	if err != nil {
		return nil, err
	}
	defer c.close()
	recCtx, stopRec := context.WithCancel(context.Background())
	if err := c.record(recCtx); err != nil {
		stopRec()
		return nil, err
	}
	defer stopRec()
	if err := c.startAll(); err != nil {
		return nil, err
	}
	// Steady: r1 (priority 100) holds both VIPs for a second.
	if err := c.waitHolder(0, 60*time.Second); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, c.logs())
	}
	poller := &e2e.Poller{Host: c.client, Addr: netip.AddrPortFrom(VIPFront, 80), Every: o.Every, Timeout: 500 * time.Millisecond}
	start := time.Now()
	poller.Start()
	c.logf("chaos: seed %d, %d faults, advert_int %v, bound %v, r3 runs %s", o.Seed, len(plan), o.Advert, Bound(o.Advert), c.nodes[2].d.Kind)
	runErr := c.execute(ctx, start, plan)
	if runErr == nil {
		select {
		case <-time.After(Settle(o.Advert)):
		case <-ctx.Done():
			runErr = ctx.Err()
		}
	}
	end := time.Now()
	reqs, perr := poller.Stop()
	c.wg.Wait()
	leftovers := c.stopAll()
	time.Sleep(200 * time.Millisecond) // the last address events
	leftovers = append(leftovers, c.leftovers()...)
	stopRec()
	c.mu.Lock()
	in := Input{
		Advert: o.Advert, Bound: Bound(o.Advert), Tol: o.Tol, ReqTimeout: poller.Timeout,
		Start: start, End: end,
		VIPs:    []netip.Addr{VIPFront, VIPBack, VIPExtra},
		Initial: map[netip.Addr][]bool{},
		Config:  slices.Clone(c.config), Changes: slices.Clone(c.changes),
		Faults: slices.Clone(c.applied), Crashes: slices.Clone(c.crashes), Leftovers: leftovers,
	}
	c.mu.Unlock()
	for _, n := range c.nodes {
		in.Nodes = append(in.Nodes, n.host.Name())
		if n.d.Kind == e2e.Keepalived {
			in.Keepalived = append(in.Keepalived, n.i)
		}
		log := n.d.AllLogs()
		out.Logs[n.host.Name()] = log
		if what := panicked(log); what != "" {
			in.Crashes = append(in.Crashes, Crash{At: end, Node: n.i, What: what})
		}
	}
	for _, r := range reqs {
		q := Request{At: r.At, End: r.End, By: r.Body}
		if r.Err != nil {
			q.Err = r.Err.Error()
		}
		in.Requests = append(in.Requests, q)
	}
	out.Input = in
	out.Result = Check(in)
	return out, errors.Join(runErr, perr)
}

// panicked returns the first line of a Go panic or fatal error in a log.
func panicked(log string) string {
	for _, l := range strings.Split(log, "\n") {
		for _, p := range []string{"panic: ", "fatal error: ", "segmentation fault", "Segmentation fault"} {
			if strings.Contains(l, p) {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}

func build(o Options) (c *cluster, err error) {
	l, err := lab.New("chaos")
	if err != nil {
		return nil, err
	}
	c = &cluster{o: o, l: l, held: map[netip.Addr][]bool{},
		config: []ConfigChange{{Addr: VIPExtra, On: false}}} // from the beginning of time
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	var hosts []*lab.Host
	for i := range 3 {
		h, err := l.AddHost(fmt.Sprintf("r%d", i+1),
			lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{frontIP(i) + "/24"}},
			lab.Iface{Name: "eth1", LAN: "back", Addrs: []string{backIP(i) + "/24"}})
		if err != nil {
			return nil, err
		}
		if err := h.Sysctl("net/ipv4/ip_forward", "1"); err != nil {
			return nil, err
		}
		kind, bin := e2e.Vigil, o.VigilBin
		if i == 2 && o.Keepalived {
			kind, bin = e2e.Keepalived, o.KeepalivedBin
		}
		dir := filepath.Join(o.Dir, h.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		n := &node{i: i, host: h, d: e2e.NewNode(kind, h, bin, dir), prio: 100 - 10*i, expected: map[*lab.Proc]bool{}}
		c.nodes = append(c.nodes, n)
		hosts = append(hosts, h)
	}
	if c.client, err = l.AddHost("client", lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{clientIP + "/24"}}); err != nil {
		return nil, err
	}
	hosts = append(hosts, c.client)
	for i, a := range rsIPs {
		h, err := l.AddHost(fmt.Sprintf("rs%d", i+1), lab.Iface{Name: "eth0", LAN: "back", Addrs: []string{a + "/24"}})
		if err != nil {
			return nil, err
		}
		if _, err := h.Run("ip", "route", "add", "default", "via", VIPBack.String()); err != nil {
			return nil, err
		}
		c.rs = append(c.rs, h)
		hosts = append(hosts, h)
	}
	if err := e2e.WaitReady(l, hosts...); err != nil {
		return nil, err
	}
	for _, h := range c.rs {
		s, err := e2e.StartServer(h, 80)
		if err != nil {
			return nil, err
		}
		c.srv = append(c.srv, s)
	}
	for _, n := range c.nodes {
		a, err := e2e.OpenAddrs(n.host)
		if err != nil {
			return nil, err
		}
		c.addrs = append(c.addrs, a)
		if n.d.Kind == e2e.Keepalived {
			// keepalived runs VRRP only (-P: its checkers need IPVS): a
			// static NAT to both real servers stands in for its
			// virtual server.
			if err := nft(n.host.NS(), staticLB); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

const staticLB = `table ip chaoslb {
	chain pre {
		type nat hook prerouting priority dstnat;
		ip daddr 192.168.1.100 tcp dport 80 dnat to numgen inc mod 2 map { 0 : 10.0.2.21, 1 : 10.0.2.22 }
	}
}
`

// nft applies a ruleset inside a namespace.
func nft(ns, rules string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: nft in %s: %w: %s", ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *cluster) close() {
	for _, s := range c.srv {
		if s != nil {
			s.Close()
		}
	}
	for _, a := range c.addrs {
		a.Close()
	}
	for _, n := range c.nodes {
		n.d.Kill()
	}
	c.l.Close()
}

// conf renders node n's configuration from the cluster's state.
func (c *cluster) conf(n *node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id %s\n", n.host.Name())
	if c.o.RTPriority != 0 {
		fmt.Fprintf(&b, "  vrrp_rt_priority %d\n", c.o.RTPriority)
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority %d\n", n.prio)
	fmt.Fprintf(&b, "  advert_int %s\n  version 3\n  virtual_ipaddress {\n", strconv.FormatFloat(c.o.Advert.Seconds(), 'f', -1, 64))
	fmt.Fprintf(&b, "    %s/24 dev eth0\n    %s/24 dev eth1\n", VIPFront, VIPBack)
	if c.extra {
		fmt.Fprintf(&b, "    %s/24 dev eth0\n", VIPExtra)
	}
	b.WriteString("  }\n}\n")
	if n.d.Kind == e2e.Vigil {
		fmt.Fprintf(&b, "virtual_server %s 80 {\n  delay_loop 0.5\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n", VIPFront)
		for _, a := range rsIPs {
			fmt.Fprintf(&b, "  real_server %s 80 {\n    TCP_CHECK {\n      connect_timeout 0.3\n      retry 1\n      delay_before_retry 0.2\n    }\n  }\n", a)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// record watches the addresses of every node (netlink events, one
// subscription per namespace) from now until ctx ends.
func (c *cluster) record(ctx context.Context) error {
	vips := []netip.Addr{VIPFront, VIPBack, VIPExtra}
	for _, v := range vips {
		c.held[v] = make([]bool, len(c.nodes))
	}
	for i, a := range c.addrs {
		ready := make(chan struct{})
		var once sync.Once
		go a.Watch(ctx, func(at time.Time, ev netif.AddrEvent) {
			once.Do(func() { close(ready) })
			addr := ev.Addr.Prefix.Addr()
			if !slices.Contains(vips, addr) {
				return
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			c.held[addr][i] = !ev.Deleted
			if !ev.Initial {
				c.changes = append(c.changes, Change{At: at, Node: i, Addr: addr, Added: !ev.Deleted})
			}
		})
		// The subscription is live once the dump has been read; with no
		// VIP present the dump is empty, so give it a moment.
		select {
		case <-ready:
		case <-time.After(300 * time.Millisecond):
		}
	}
	return nil
}

// holder returns the node holding VIPFront alone, or -1.
func (c *cluster) holder() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := -1
	for i, x := range c.held[VIPFront] {
		if x {
			if h >= 0 {
				return -1
			}
			h = i
		}
	}
	return h
}

func (c *cluster) waitHolder(want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	since := time.Time{}
	for time.Now().Before(deadline) {
		if c.holder() == want {
			if since.IsZero() {
				since = time.Now()
			}
			if time.Since(since) > time.Second {
				return nil
			}
		} else {
			since = time.Time{}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("chaos: r%d does not hold %v alone after %v", want+1, VIPFront, timeout)
}

func (c *cluster) startAll() error {
	for _, n := range c.nodes {
		if err := n.d.WriteConfig(c.conf(n)); err != nil {
			return err
		}
		if err := c.start(n); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		if err := n.d.WaitReady(60 * time.Second); err != nil {
			return fmt.Errorf("%w\n%s", err, n.d.AllLogs())
		}
	}
	return nil
}

// start runs n's daemon and watches for an exit nobody asked for.
func (c *cluster) start(n *node) error {
	if err := n.d.Start(); err != nil {
		return err
	}
	p := n.d.Proc()
	go func() {
		<-p.Done()
		c.mu.Lock()
		defer c.mu.Unlock()
		if !n.expected[p] {
			c.crashes = append(c.crashes, Crash{At: time.Now(), Node: n.i, What: fmt.Sprintf("%s exited unexpectedly: %v; last output: %s", n.d.Name(), p.Err(), tail(p.Output(), 600))})
		}
	}()
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

func (c *cluster) expect(n *node) {
	c.mu.Lock()
	if p := n.d.Proc(); p != nil {
		n.expected[p] = true
	}
	c.mu.Unlock()
}

// stopAll stops every daemon with SIGTERM (as an operator would) and
// returns what went wrong.
func (c *cluster) stopAll() []string {
	var out []string
	for _, n := range c.nodes {
		for _, h := range n.hogs {
			h.Kill()
		}
		if !n.d.Running() {
			continue
		}
		if pid, err := n.d.VRRPPid(); err == nil {
			syscall.Kill(pid, syscall.SIGCONT)
		}
		c.expect(n)
		code, err := n.d.Term(15 * time.Second)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", n.d.Name(), err))
			n.d.Kill()
		} else if code != 0 {
			out = append(out, fmt.Sprintf("%s exited with status %d after SIGTERM", n.d.Name(), code))
		}
	}
	return out
}

// leftovers lists what the run left in the nodes' namespaces after the
// daemons stopped: VIPs, nftables rules (the harness's own static NAT
// removed first), processes; and rules in the switch.
func (c *cluster) leftovers() []string {
	var out []string
	for i, n := range c.nodes {
		for _, dev := range []string{"eth0", "eth1"} {
			as, err := c.addrs[i].List(dev)
			if err != nil {
				out = append(out, fmt.Sprintf("%s: %v", n.host.Name(), err))
				continue
			}
			for _, a := range as {
				if v := a.Prefix.Addr(); v == VIPFront || v == VIPBack || v == VIPExtra {
					out = append(out, fmt.Sprintf("%s still holds %v on %s after the daemon stopped", n.host.Name(), v, dev))
				}
			}
		}
		if n.d.Kind == e2e.Keepalived {
			n.host.Run("nft", "delete", "table", "ip", "chaoslb")
		}
		if rules, _ := n.host.Run("nft", "list", "ruleset"); strings.TrimSpace(rules) != "" {
			out = append(out, fmt.Sprintf("%s: nftables rules left: %s", n.host.Name(), tail(rules, 300)))
		}
		if pids, _ := exec.Command("ip", "netns", "pids", n.host.NS()).Output(); strings.TrimSpace(string(pids)) != "" {
			var procs []string
			for _, p := range strings.Fields(string(pids)) {
				comm, _ := os.ReadFile("/proc/" + p + "/comm")
				procs = append(procs, p+" "+strings.TrimSpace(string(comm)))
			}
			out = append(out, fmt.Sprintf("%s: processes left: %s", n.host.Name(), strings.Join(procs, ", ")))
		}
	}
	if rules, _ := exec.Command("ip", "netns", "exec", c.l.SwitchNS(), "nft", "list", "ruleset").Output(); strings.TrimSpace(string(rules)) != "" {
		out = append(out, "switch: nftables rules left: "+tail(string(rules), 300))
	}
	return out
}

func (c *cluster) logs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		b.WriteString(tail(n.d.AllLogs(), 3000))
		b.WriteString("\n")
	}
	return b.String()
}
