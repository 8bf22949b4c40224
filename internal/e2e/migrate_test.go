package e2e_test

import (
	"fmt"
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

var migrateCases = []migrateCase{
	{"seed000", seed000(false, false), true, false},
	{"seed000-nopreempt", seed000(true, false), false, false},
	{"seed000-unicast", seed000(false, true), true, false},
	// The seed's check script stops keepalived by name: vigil runs under it.
	{"seed001-nginx", seed001, true, true},
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
// After each step exactly one node holds the VIP for several advert
// intervals, two nodes never hold it together for longer than one advert
// interval, and the master is the node priority and preempt name. Failed
// requests are counted per step and logged; they may only fall inside the
// windows of steps that stop or start a master, and vigil's handover loses
// no request for want of a VIP holder.
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
	steps  []drillStep
	advert time.Duration
}

// A drillStep is the window from an action to the moment the expected
// master answers the client.
type drillStep struct {
	name     string
	from, to time.Time
	loss     loss
}

// loss is what a step may cost the client.
type loss int

const (
	// lossNone: nothing (a backup moves).
	lossNone loss = iota
	// lossMoved: vigil's make-before-break handover: only connections open
	// at the instant the client's ARP entry moves (e2e.FailMoved).
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

// dumpState is what an exporter sees of VI_1 on node i: it signals the pid
// in the node's pid file with SIGUSR1 and reads "State" from the instance
// in keepalived.data in the node's TMPDIR.
func (d *drill) dumpState(i int) string {
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
		if err == nil {
			in := false
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, " VRRP Instance = ") {
					in = strings.TrimPrefix(l, " VRRP Instance = ") == "VI_1"
				}
				if k, v, ok := strings.Cut(strings.TrimSpace(l), " = "); in && ok && k == "State" {
					return v
				}
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: no VI_1 state in %s 10 s after SIGUSR1: %v\n%s", d.nodes[i].Name(), data, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// step runs action, waits until node master alone holds the VIP and
// answers, and checks the overlap during the step and the settled state.
func (d *drill) step(name string, l loss, master int, action func()) {
	d.t.Helper()
	d.t.Logf("step: %s", name)
	h := d.holders(e2e.VIP4)
	s := drillStep{name: name, from: time.Now(), loss: l}
	action()
	d.waitHolds(d.node(master), e2e.VIP4, true, 20*time.Second)
	d.waitHolds(d.node(1-master), e2e.VIP4, false, 20*time.Second)
	d.waitAnswer(e2e.VIP4, d.node(master).Name(), 15*time.Second)
	s.to = time.Now()
	d.steps = append(d.steps, s)
	d.checkOverlap(h, d.advert)
	// Settled: the one holder keeps the VIP over several advert intervals.
	d.stayHolder(e2e.VIP4, master, 3*d.advert)
	for i, nd := range d.nodes {
		if nd == nil || !nd.Running() {
			continue
		}
		want := "BACKUP"
		if i == master {
			want = "MASTER"
		}
		d.waitState(nd, "VI_1", want, 10*time.Second)
		if got := d.dumpState(i); got != want {
			d.t.Errorf("%s: keepalived.data says VI_1 is %s, want %s", nd.Name(), got, want)
		}
	}
}

func migrationDrill(t *testing.T, c migrateCase) {
	d := &drill{env: newEnv(t, "mig", 2), c: c, advert: time.Second, bins: map[e2e.Kind]string{
		e2e.Vigil:      netnstest.VigilBinary(t),
		e2e.Keepalived: netnstest.RequireCommand(t, "keepalived"),
	}}
	d.servers()
	for i := range d.dirs {
		// The node's /etc/keepalived: one file both daemons read.
		d.dirs[i] = t.TempDir()
		if err := os.WriteFile(filepath.Join(d.dirs[i], "keepalived.conf"), []byte(c.conf(i, d.dirs[i])), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	original := [2][]byte{}
	for i := range d.dirs {
		original[i], _ = os.ReadFile(filepath.Join(d.dirs[i], "keepalived.conf"))
	}

	// 1. The keepalived pair. r1 starts first: with nopreempt and both in
	// BACKUP it is the one whose Master_Down_Interval runs out.
	d.run(e2e.Keepalived, 0)
	d.waitState(d.nodes[0], "VI_1", "MASTER", 20*time.Second)
	d.run(e2e.Keepalived, 1)
	d.waitState(d.nodes[1], "VI_1", "BACKUP", 20*time.Second)
	d.waitHolds(d.node(0), e2e.VIP4, true, 15*time.Second)
	p := d.poll(e2e.VIP4, "r1")
	start := time.Now()
	d.stayHolder(e2e.VIP4, 0, 3*d.advert)

	// 2. Swap the backup: clients see nothing.
	d.step("swap the backup r2 to vigil", lossNone, 0, func() {
		d.stop(1)
		d.run(e2e.Vigil, 1)
	})
	if st := status_(t, d.nodes[1], "VI_1"); st.Master != e2e.NodeAddr4(0).String() {
		t.Errorf("vigil on r2 hears master %q, want keepalived on %v", st.Master, e2e.NodeAddr4(0))
	}

	// 3. Swap the master last: keepalived stops (priority 0), vigil on r2
	// takes over; vigil on r1 takes the VIP back if preempt says so.
	d.step("stop keepalived on the master r1", lossAny, 1, func() { d.stop(0) })
	back := 1
	if c.preempt {
		back = 0
	}
	d.step("start vigil on r1", preemptLoss(c.preempt), back, func() { d.run(e2e.Vigil, 0) })

	if !c.preempt {
		// Without preempt the VIP stays on r2; a planned move back to r1 is
		// vigil's handover (make before break).
		d.step("vigil handover on r2", lossMoved, 0, func() {
			vigilCLI(t, "handover", "VI_1", "--api-socket", d.nodes[1].Socket())
		})
		back = 0
	}

	// 4. Roll the master's node back: vigil hands over, then keepalived
	// starts on the unchanged file.
	m := back
	d.step(fmt.Sprintf("stop vigil on the master %s", d.node(m).Name()), lossMoved, 1-m, func() { d.stop(m) })
	final := 1 - m
	if c.preempt {
		final = 0
	}
	d.step(fmt.Sprintf("start keepalived on %s", d.node(m).Name()), preemptLoss(c.preempt), final, func() { d.run(e2e.Keepalived, m) })

	reqs, err := p.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drill: %v", e2e.SummarisePolls(reqs))
	d.account(start, reqs)
	for i := range d.dirs {
		if b, _ := os.ReadFile(filepath.Join(d.dirs[i], "keepalived.conf")); string(b) != string(original[i]) {
			t.Errorf("%s's keepalived.conf changed during the drill", d.node(i).Name())
		}
	}
}

// account logs the failed requests per step and fails on those a step
// may not have: none while the backup is swapped, none for want of a VIP
// holder in vigil's handover (a connection open at the instant the
// client's ARP entry moves is reset whatever VRRP does), and any kind only
// inside the window of a step that stops or starts a master.
func (d *drill) account(start time.Time, reqs []e2e.Request) {
	d.t.Helper()
	// Step k covers the requests from its start to the next step's start;
	// step 0 is the keepalived pair before the first move.
	steps := append([]drillStep{{name: "keepalived pair", from: start, to: start}}, d.steps...)
	type fig struct{ all, failed, gap, outside int }
	figs := make([]fig, len(steps))
	for _, r := range reqs {
		k := 0
		for k+1 < len(steps) && !r.At.Before(steps[k+1].from) {
			k++
		}
		figs[k].all++
		if r.OK() {
			continue
		}
		figs[k].failed++
		gap := r.Class() == e2e.FailGap
		if gap {
			figs[k].gap++
		}
		s := steps[k]
		switch {
		case r.At.After(s.to):
			figs[k].outside++
		case s.loss == lossNone, s.loss == lossMoved && gap:
			figs[k].outside++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s %8s %8s %8s %8s %8s\n", "step", "requests", "failed", "gap", "outside", "window")
	for k, f := range figs {
		s := steps[k]
		fmt.Fprintf(&b, "%-40s %8d %8d %8d %8d %8s\n", s.name, f.all, f.failed, f.gap, f.outside, s.to.Sub(s.from).Round(time.Millisecond))
		if f.outside > 0 {
			d.t.Errorf("step %q: %d requests failed where the procedure promises none", s.name, f.outside)
		}
	}
	d.t.Logf("client requests per step:\n%s", b.String())
}

// preemptLoss is what a node's start may cost: a preemption moves the VIP
// (lossAny); without one nothing moves.
func preemptLoss(preempt bool) loss {
	if preempt {
		return lossAny
	}
	return lossNone
}
