package e2e_test

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// A migrateCase is one seed's pair of keepalived.conf files, as the seed
// writes them with the lab's interface and addresses, and where VRRP must
// leave the master after the drill's moves.
type migrateCase struct {
	name string
	// conf is node i's file; dir is the node's directory (for a script).
	conf func(i int, dir string) string
	// preempt: the higher-priority node r1 takes the VIP back whenever it
	// returns. Without it the VIP stays where it is.
	preempt bool
	// asKeepalived: vigil runs in keepalived's place (a link named
	// keepalived, keepalived.service's command line).
	asKeepalived bool
	// dual: seed 003's two instances, VI_1 (VIP 192.168.1.100) mastered by
	// r1 and VI_2 (192.168.1.101) by r2, with haproxy answering on both
	// VIPs instead of the nodes' HTTP servers.
	dual bool
}

// seed000 is seed 000's file (the MASTER/BACKUP tutorial) for node i:
// r1 MASTER 100, r2 BACKUP 99. nopreempt puts both in state BACKUP with
// nopreempt; unicast adds unicast_src_ip and unicast_peer.
func seed000(nopreempt, unicast bool) func(i int, dir string) string {
	return func(i int, _ string) string {
		state, prio := "MASTER", 100
		if i == 1 {
			state, prio = "BACKUP", 99
		}
		var extra string
		if nopreempt {
			state, extra = "BACKUP", "nopreempt\n"
		}
		if unicast {
			extra += fmt.Sprintf("unicast_src_ip %v\nunicast_peer {\n%v\n}\n", e2e.NodeAddr4(i), e2e.NodeAddr4(1-i))
		}
		return fmt.Sprintf(`! Configuration File for keepalived
global_defs {
notification_email {
1335234172@qq.com
}
notification_email_from Alexandre.Cassen@firewall.loc
smtp_server 127.0.0.1
smtp_connect_timeout 30
router_id wyl0%d
}
vrrp_instance VI_1 {
state %s
interface eth0
virtual_router_id 55
priority %d
advert_int 1
%sauthentication {
auth_type PASS
auth_pass 1111
}
virtual_ipaddress {
192.168.1.100/24 dev eth0 label eth0:1
}
}
`, i+1, state, prio, extra)
	}
}

// seed001 is seed 001's file (nginx behind keepalived): state MASTER with
// nopreempt (which keepalived ignores with state MASTER), a vrrp_script of
// weight 20 every 2 s, mcast_src_ip, VIP without a prefix length. The
// backup changes what the seed says: priority 98, mcast_src_ip (and, as in
// the repaired seed, router_id and state BACKUP). The lab's stand-in for
// nginx is the node's HTTP server; the check script asks it, as the seed's
// asks ps for nginx.
func seed001(i int, dir string) string {
	script := filepath.Join(dir, "nginx_check.sh")
	// The seed's script restarts nginx and stops keepalived when that fails;
	// the stand-in only reports.
	body := "#!/bin/sh\nexec curl -sf -m 1 -o /dev/null http://127.0.0.1/\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		panic(err)
	}
	router, state, prio := "nginx_master154", "MASTER", 100
	if i == 1 {
		router, state, prio = "nginx_backup155", "BACKUP", 98
	}
	return fmt.Sprintf(`! Configuration File for keepalived
global_defs {
router_id %s
}
vrrp_script chk_nginx {
script %s
interval 2
weight 20
}
vrrp_instance VI_1 {
state %s
interface eth0
virtual_router_id 154
mcast_src_ip %v
priority %d
nopreempt
advert_int 1
authentication {
auth_type PASS
auth_pass 1111
}
track_script {
chk_nginx
}
virtual_ipaddress {
192.168.1.100
}
}
`, router, script, state, e2e.NodeAddr4(i), prio)
}

// vip2 is seed 003's second VIP in the lab.
var vip2 = netip.MustParseAddr("192.168.1.101")

// seed003 is seed 003's file (HAProxy + keepalived, "dual master"): two
// instances with crossed priorities, each node master of one VIP, and
// vrrp_track_process following haproxy (weight -20). Both haproxys share
// the machine's PID namespace in the lab, so each node names its own by
// its configuration file (param_match partial); on real machines
// `process haproxy` alone does. The node's haproxy answers the client.
func seed003(i int, dir string) string {
	inst := func(name string, vrid, prio int, vip netip.Addr) string {
		state := "BACKUP"
		if prio == 100 {
			state = "MASTER"
		}
		return fmt.Sprintf(`vrrp_instance %s {
    state %s
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    track_process {
        chk_haproxy
    }
    virtual_ipaddress {
        %v/24
    }
}
`, name, state, vrid, prio, vip)
	}
	p1, p2 := 100, 90
	if i == 1 {
		p1, p2 = 90, 100
	}
	return fmt.Sprintf(`! seed 003, dual master
global_defs {
    router_id haproxy%d
}
vrrp_track_process chk_haproxy {
    process haproxy -f %s
    param_match partial
    weight -20
}
`, i+1, filepath.Join(dir, "haproxy.cfg")) + inst("VI_1", 51, p1, e2e.VIP4) + inst("VI_2", 52, p2, vip2)
}

// startHAProxy runs Debian's haproxy on node i, bound to both of seed 003's
// VIPs (ip_nonlocal_bind) and answering every request with the node's name.
func (d *drill) startHAProxy(i int) {
	d.t.Helper()
	h := d.node(i)
	if err := h.Sysctl("net/ipv4/ip_nonlocal_bind", "1"); err != nil {
		d.t.Fatal(err)
	}
	cfg := filepath.Join(d.dirs[i], "haproxy.cfg")
	body := fmt.Sprintf(`global
    pidfile %s
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend www
    bind %v:80
    bind %v:80
    http-request return status 200 content-type text/plain string %s
`, filepath.Join(d.dirs[i], "haproxy.pid"), e2e.VIP4, vip2, h.Name())
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		d.t.Fatal(err)
	}
	p, err := h.Start(netnstest.RequireCommand(d.t, "haproxy"), "-f", cfg, "-db")
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(p.Kill)
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := h.Run("ss", "-Hltn")
		if strings.Contains(out, e2e.VIP4.String()+":80") && strings.Contains(out, vip2.String()+":80") {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("haproxy on %s does not listen:\n%s\n%s", h.Name(), out, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var migrateCases = []migrateCase{
	{"seed000", seed000(false, false), true, false, false},
	{"seed000-nopreempt", seed000(true, false), false, false, false},
	{"seed000-unicast", seed000(false, true), true, false, false},
	// The seed's check script stops keepalived by name: vigil runs under it.
	{"seed001-nginx", seed001, true, true, false},
	{"seed003-haproxy", seed003, true, false, true},
}

// TestMigrationDrill follows docs/migrating.md on a keepalived 2.2.7 pair
// running a seed's files, while a client opens a new HTTP connection to
// the VIP every 10 ms:
//
//  1. the keepalived pair settles (r1 master);
//  2. swap the backup r2: stop keepalived, start vigil on the same file;
//  3. swap the master r1 last: stop keepalived (r2 takes over), start
//     vigil on the same file (r1 takes the VIP back with preempt);
//  4. roll back the master's node: stop vigil (it hands over first), start
//     keepalived again.
//
// With nopreempt the VIP is moved back to r1 by `vigil handover` before
// step 4. Seed 003's dual master has no backup node: each node is swapped
// in turn, each stop moving the VIP it masters (dualDrill).
//
// After each step exactly one node holds each VIP for several advert
// intervals, two nodes never hold one together for longer than one advert
// interval, the master is the node priority and preempt name (in the
// daemons and in the keepalived.data an exporter gets through the pid
// file), and a stopped daemon leaves no pid file. Failed requests are
// counted per step and logged; they may only fall inside the windows of
// steps that stop or start a master, and vigil's handover loses no request
// for want of a VIP holder. The files never change.
func TestMigrationDrill(t *testing.T) {
	t.Parallel()
	for _, c := range migrateCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			migrationDrill(t, c)
		})
	}
}

// drill is one run of the migration on a two-node lab.
type drill struct {
	*env
	c      migrateCase
	dirs   [2]string
	bins   map[e2e.Kind]string
	nodes  [2]*e2e.Node
	insts  []string     // the instances, VI_1 (and VI_2)
	vips   []netip.Addr // their VIPs
	steps  []drillStep
	advert time.Duration
}

// A drillStep is the window from an action to the moment every instance's
// expected master answers the client.
type drillStep struct {
	name     string
	from, to time.Time
	loss     []loss // per instance
}

// loss is what a step may cost the clients of one VIP.
type loss int

const (
	// lossNone: nothing (a backup moves).
	lossNone loss = iota
	// lossMoved: vigil's make-before-break handover: only connections open
	// at the instant the client's ARP entry moves (e2e.FailMoved: reset by
	// the new master, or delivered to the old one, whose server answered
	// after the handover's grace), and some node holds the VIP throughout.
	lossMoved
	// lossAny: keepalived stops a master (it removes the VIP before a
	// backup takes over), or a node preempts.
	lossAny
)

// run starts kind on node i from the node's unchanged file.
func (d *drill) run(kind e2e.Kind, i int) *e2e.Node {
	d.t.Helper()
	nd := e2e.NewNode(kind, d.node(i), d.bins[kind], d.dirs[i])
	nd.AsKeepalived = kind == e2e.Vigil && d.c.asKeepalived
	if err := nd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.env.nodes = append(d.env.nodes, nd)
	d.t.Cleanup(nd.Kill)
	if err := nd.WaitReady(20 * time.Second); err != nil {
		d.t.Fatal(err)
	}
	if b, err := os.ReadFile(nd.PidFile()); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(nd.Pid()) {
		d.t.Errorf("%s: pid file holds %q (%v), want %d", nd.Name(), b, err, nd.Pid())
	}
	if nd.AsKeepalived {
		// `killall keepalived` in the seed's script must find it.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", nd.Pid())); err != nil || strings.TrimSpace(string(b)) != "keepalived" {
			d.t.Errorf("vigil in keepalived's place runs as %q (%v), want keepalived", b, err)
		}
	}
	d.nodes[i] = nd
	return nd
}

// stop is `systemctl stop` of node i's daemon: SIGTERM, exit 0.
func (d *drill) stop(i int) {
	d.t.Helper()
	nd := d.nodes[i]
	code, err := nd.Term(15 * time.Second)
	if err != nil {
		d.t.Fatal(err)
	}
	if code != 0 {
		d.t.Errorf("%s exited %d after SIGTERM", nd.Name(), code)
	}
	if _, err := os.Stat(nd.PidFile()); !os.IsNotExist(err) {
		d.t.Errorf("%s left its pid file %s behind (%v)", nd.Name(), nd.PidFile(), err)
	}
}

// dumpState is what an exporter sees on node i: it signals the pid in the
// node's pid file with SIGUSR1 and reads each instance's "State" from
// keepalived.data in the node's TMPDIR.
func (d *drill) dumpState(i int) map[string]string {
	d.t.Helper()
	data := filepath.Join(d.dirs[i], "keepalived.data")
	os.Remove(data)
	b, err := os.ReadFile(d.nodes[i].PidFile())
	if err != nil {
		d.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		d.t.Fatalf("pid file: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		d.t.Fatalf("%s: SIGUSR1 to %d: %v", d.nodes[i].Name(), pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(data)
		states := map[string]string{}
		inst := ""
		for _, l := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(l, " VRRP Instance = "); ok {
				inst = name
			}
			// The instance's own "   State = " comes first; tracked
			// interfaces and scripts have theirs further down.
			if v, ok := strings.CutPrefix(l, "   State = "); ok && inst != "" && states[inst] == "" {
				states[inst] = v
			}
		}
		if len(states) == len(d.insts) {
			return states
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: no state of %v in %s 10 s after SIGUSR1: %v\n%s", d.nodes[i].Name(), d.insts, data, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// step runs action, waits until node masters[k] alone holds instance k's
// VIP and answers on it, and checks the overlap during the step and the
// settled state: daemons and their dumps.
func (d *drill) step(name string, masters []int, losses []loss, action func()) {
	d.t.Helper()
	d.t.Logf("step: %s", name)
	var hs []*e2e.Holders
	for _, vip := range d.vips {
		hs = append(hs, d.holders(vip))
	}
	s := drillStep{name: name, from: time.Now(), loss: losses}
	action()
	for k, vip := range d.vips {
		d.waitHolds(d.node(masters[k]), vip, true, 20*time.Second)
		d.waitHolds(d.node(1-masters[k]), vip, false, 20*time.Second)
		d.waitAnswer(vip, d.node(masters[k]).Name(), 15*time.Second)
	}
	s.to = time.Now()
	d.steps = append(d.steps, s)
	for k, h := range hs {
		st := d.checkOverlap(h, d.advert)
		// Make before break: some node holds the VIP throughout, which
		// is what lets a request broken by the move count as moved.
		if losses[k] == lossMoved && st.NoneRounds > 0 {
			d.t.Errorf("%s: %d sampling rounds saw no node holding %v (up to %v) in a make-before-break step", name, st.NoneRounds, d.vips[k], st.MaxNoneUpper)
		}
	}
	// Settled: the one holder keeps each VIP over several advert intervals.
	d.settled(masters)
	for i, nd := range d.nodes {
		if nd == nil || !nd.Running() {
			continue
		}
		want := map[string]string{}
		for k, in := range d.insts {
			want[in] = "BACKUP"
			if i == masters[k] {
				want[in] = "MASTER"
			}
			d.waitState(nd, in, want[in], 10*time.Second)
		}
		if got := d.dumpState(i); !maps.Equal(got, want) {
			d.t.Errorf("%s: keepalived.data says %v, want %v", nd.Name(), got, want)
		}
	}
}

// settled checks for 3 advert intervals that node masters[k] alone holds
// VIP k.
func (d *drill) settled(masters []int) {
	d.t.Helper()
	var hs []*e2e.Holders
	for _, vip := range d.vips {
		hs = append(hs, d.holders(vip))
	}
	time.Sleep(3 * d.advert)
	for k, h := range hs {
		samples, err := h.Stop()
		if err != nil {
			d.t.Fatal(err)
		}
		for _, sm := range samples {
			for i, held := range sm.Held {
				if held != (i == masters[k]) {
					d.t.Fatalf("at %s %s holds %v: %v, want only %s", sm.At.Format("15:04:05.000"), d.node(i).Name(), d.vips[k], held, d.node(masters[k]).Name())
				}
			}
		}
	}
}

// one is step for a single instance.
func (d *drill) one(name string, l loss, master int, action func()) {
	d.t.Helper()
	d.step(name, []int{master}, []loss{l}, action)
}

func migrationDrill(t *testing.T, c migrateCase) {
	d := &drill{env: newEnv(t, "mig", 2), c: c, advert: time.Second, bins: map[e2e.Kind]string{
		e2e.Vigil:      netnstest.VigilBinary(t),
		e2e.Keepalived: netnstest.RequireCommand(t, "keepalived"),
	}, insts: []string{"VI_1"}, vips: []netip.Addr{e2e.VIP4}}
	if c.dual {
		d.insts, d.vips = []string{"VI_1", "VI_2"}, []netip.Addr{e2e.VIP4, vip2}
	}
	var original [2][]byte
	for i := range d.dirs {
		// The node's /etc/keepalived: one file both daemons read.
		d.dirs[i] = t.TempDir()
		original[i] = []byte(c.conf(i, d.dirs[i]))
		if err := os.WriteFile(filepath.Join(d.dirs[i], "keepalived.conf"), original[i], 0o644); err != nil {
			t.Fatal(err)
		}
		if c.dual {
			d.startHAProxy(i)
		}
	}
	if !c.dual {
		d.servers()
	}

	// 1. The keepalived pair. r1 starts first: with nopreempt and both in
	// BACKUP it is the one whose Master_Down_Interval runs out.
	d.run(e2e.Keepalived, 0)
	d.waitState(d.nodes[0], "VI_1", "MASTER", 20*time.Second)
	d.run(e2e.Keepalived, 1)
	d.waitState(d.nodes[1], "VI_1", "BACKUP", 20*time.Second)
	pair := []int{0, 1}[:len(d.vips)]
	for k, vip := range d.vips {
		d.waitHolds(d.node(pair[k]), vip, true, 20*time.Second)
		d.waitHolds(d.node(1-pair[k]), vip, false, 20*time.Second)
	}
	var ps []*e2e.Poller
	for k, vip := range d.vips {
		ps = append(ps, d.poll(vip, d.node(pair[k]).Name()))
	}
	start := time.Now()
	d.settled(pair)

	if c.dual {
		dualDrill(d)
	} else {
		singleDrill(d)
	}

	for k, p := range ps {
		reqs, err := p.Stop()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("drill, %s: %v", d.insts[k], e2e.SummarisePolls(reqs))
		d.account(k, start, reqs)
	}
	for i := range d.dirs {
		if b, _ := os.ReadFile(filepath.Join(d.dirs[i], "keepalived.conf")); string(b) != string(original[i]) {
			t.Errorf("%s's keepalived.conf changed during the drill", d.node(i).Name())
		}
	}
}

// singleDrill is the procedure for one instance, r1 master, r2 backup.
func singleDrill(d *drill) {
	t, c := d.t, d.c
	// 2. Swap the backup: clients see nothing.
	d.one("swap the backup r2 to vigil", lossNone, 0, func() {
		d.stop(1)
		d.run(e2e.Vigil, 1)
	})
	if st := status_(t.(*testing.T), d.nodes[1], "VI_1"); st.Master != e2e.NodeAddr4(0).String() {
		t.Errorf("vigil on r2 hears master %q, want keepalived on %v", st.Master, e2e.NodeAddr4(0))
	}

	// 3. Swap the master last: keepalived stops (priority 0), vigil on r2
	// takes over; vigil on r1 takes the VIP back if preempt says so.
	d.one("stop keepalived on the master r1", lossAny, 1, func() { d.stop(0) })
	back := 1
	if c.preempt {
		back = 0
	}
	d.one("start vigil on r1", preemptLoss(c.preempt), back, func() { d.run(e2e.Vigil, 0) })

	if !c.preempt {
		// Without preempt the VIP stays on r2; a planned move back to r1 is
		// vigil's handover (make before break).
		d.one("vigil handover on r2", lossMoved, 0, func() {
			vigilCLI(t.(*testing.T), "handover", "VI_1", "--api-socket", d.nodes[1].Socket())
		})
		back = 0
	}

	// 4. Roll the master's node back: vigil hands over, then keepalived
	// starts on the unchanged file.
	m := back
	d.one(fmt.Sprintf("stop vigil on the master %s", d.node(m).Name()), lossMoved, 1-m, func() { d.stop(m) })
	final := 1 - m
	if c.preempt {
		final = 0
	}
	d.one(fmt.Sprintf("start keepalived on %s", d.node(m).Name()), preemptLoss(c.preempt), final, func() { d.run(e2e.Keepalived, m) })
}

// dualDrill is the procedure for seed 003's dual master: every node is the
// master of one VIP, so every keepalived stop moves one VIP, and the
// node's start with preempt takes it back.
func dualDrill(d *drill) {
	both := []int{0, 1}
	n, a, m := lossNone, lossAny, lossMoved
	d.step("stop keepalived on r2", []int{0, 0}, []loss{n, a}, func() { d.stop(1) })
	d.step("start vigil on r2", both, []loss{n, a}, func() { d.run(e2e.Vigil, 1) })
	d.step("stop keepalived on r1", []int{1, 1}, []loss{a, n}, func() { d.stop(0) })
	d.step("start vigil on r1", both, []loss{a, n}, func() { d.run(e2e.Vigil, 0) })
	d.step("stop vigil on r1", []int{1, 1}, []loss{m, n}, func() { d.stop(0) })
	d.step("start keepalived on r1", both, []loss{a, n}, func() { d.run(e2e.Keepalived, 0) })
}

// account logs the failed requests to VIP k per step and fails on those a
// step may not have: none while a backup moves, none for want of a VIP
// holder in vigil's handover (a connection open at the instant the
// client's ARP entry moves is reset whatever VRRP does), and any kind only
// inside the window of a step that stops or starts a master.
func (d *drill) account(k int, start time.Time, reqs []e2e.Request) {
	d.t.Helper()
	// Step j covers the requests from its start to the next step's start;
	// step 0 is the keepalived pair before the first move.
	steps := append([]drillStep{{name: "keepalived pair", from: start, to: start, loss: make([]loss, len(d.vips))}}, d.steps...)
	type fig struct{ all, failed, gap, outside int }
	figs := make([]fig, len(steps))
	for _, r := range reqs {
		j := 0
		for j+1 < len(steps) && !r.At.Before(steps[j+1].from) {
			j++
		}
		figs[j].all++
		if r.OK() {
			continue
		}
		figs[j].failed++
		gap := r.Class() == e2e.FailGap
		if gap {
			figs[j].gap++
		}
		// Excused by the step it started in, or by a later one that began
		// while it was in flight (a master stopped under it).
		excused := func(i int, at time.Time) bool {
			s := steps[i]
			return !at.After(s.to) && s.loss[k] != lossNone && (s.loss[k] != lossMoved || !gap)
		}
		ok := excused(j, r.At)
		for i := j + 1; !ok && i < len(steps) && steps[i].from.Before(r.End); i++ {
			ok = excused(i, steps[i].from)
		}
		if !ok {
			figs[j].outside++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s %8s %8s %8s %8s %8s\n", "step", "requests", "failed", "gap", "outside", "window")
	for j, f := range figs {
		s := steps[j]
		fmt.Fprintf(&b, "%-40s %8d %8d %8d %8d %8s\n", s.name, f.all, f.failed, f.gap, f.outside, s.to.Sub(s.from).Round(time.Millisecond))
		if f.outside > 0 {
			d.t.Errorf("%s, step %q: %d requests failed where the procedure promises none", d.insts[k], s.name, f.outside)
		}
	}
	d.t.Logf("client requests to %s (%v) per step:\n%s", d.insts[k], d.vips[k], b.String())
}

// preemptLoss is what a node's start may cost: a preemption moves the VIP
// (lossAny); without one nothing moves.
func preemptLoss(preempt bool) loss {
	if preempt {
		return lossAny
	}
	return lossNone
}
