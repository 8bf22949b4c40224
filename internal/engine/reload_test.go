package engine

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/owner"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/translate"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// bigConf is a configuration with every kind of block a reload compares:
// scripts, sync groups, notify scripts of instances and groups, trackers,
// VIPs, excluded VIPs, routes, rules.
func bigConf(notifyScript, checkScript string, instances int) string {
	var b strings.Builder
	b.WriteString("global_defs {\n  router_id big\n  script_user root\n}\n")
	fmt.Fprintf(&b, "vrrp_script chk {\n  script %q\n  interval 2\n  weight -10\n}\n", checkScript)
	for i := range instances {
		fmt.Fprintf(&b, `vrrp_instance VI_%d {
  state BACKUP
  interface eth0
  virtual_router_id %d
  priority %d
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass 1111
  }
  track_script {
    chk
  }
  notify_master %q
  notify_backup "%s backup"
  notify %q
  virtual_ipaddress {
    10.0.%d.1/24 dev eth0 label eth0:%d
  }
  virtual_ipaddress_excluded {
    10.1.%d.1/32
  }
  virtual_routes {
    10.2.%d.0/24 via 10.0.%d.254 dev eth0
  }
}
`, i, i+1, 100+i, notifyScript, notifyScript, notifyScript, i, i, i, i, i)
	}
	for i := 0; i+1 < instances; i += 2 {
		fmt.Fprintf(&b, "vrrp_sync_group G%d {\n  group {\n    VI_%d\n    VI_%d\n  }\n  notify_master %q\n}\n", i, i, i+1, notifyScript)
	}
	return b.String()
}

// commentAbove inserts a comment line above every block and every line
// inside blocks: every position moves, nothing else.
func commentAbove(conf string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(conf, "\n") {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "}") {
			b.WriteString("# moved\n")
		}
		b.WriteString(l)
	}
	return b.String()
}

func specOf(t *testing.T, conf string) runspec.Spec {
	t.Helper()
	cfg, ds := config.Load(fstest.MapFS{"keepalived.conf": {Data: []byte(conf)}}, "keepalived.conf", config.Options{})
	if ds.HasErrors() {
		t.Fatalf("config: %v", ds)
	}
	spec, ds := translate.FromConfig(cfg)
	if ds.HasErrors() {
		t.Fatalf("FromConfig: %v", ds)
	}
	return spec
}

// TestReloadIgnoresPositions: a reload of the same configuration with a
// comment line inserted above every block and line (every source position
// moved) plans no change at all: specs hold values, not positions.
func TestReloadIgnoresPositions(t *testing.T) {
	script := filepath.Join(t.TempDir(), "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := bigConf(script, "/bin/true", 20)
	old, moved := specOf(t, conf), specOf(t, commentAbove(conf))
	if len(old.Instances) != 20 || len(old.SyncGroups) != 10 || old.Instances[0].Notify.Master == nil || len(old.Instances[0].Routes) != 1 {
		t.Fatalf("the configuration did not give what the test compares: %d instances, %d groups, notify %v, routes %v",
			len(old.Instances), len(old.SyncGroups), old.Instances[0].Notify.Master, old.Instances[0].Routes)
	}
	if p := PlanReload(old, moved); !p.Empty() || p.Unchanged != 20 {
		t.Fatalf("a position-only change plans %+v; want nothing", p)
	}
	// The test can fail: a real change is seen.
	changed := specOf(t, strings.Replace(conf, "priority 105", "priority 106", 1))
	if p := PlanReload(old, changed); len(p.Update) != 1 || p.Update[0] != "VI_5" || len(p.Restart) != 0 {
		t.Fatalf("a priority change plans %+v; want VI_5 updated in place", p)
	}
	vrid := specOf(t, strings.Replace(conf, "virtual_router_id 6\n", "virtual_router_id 66\n", 1))
	if p := PlanReload(old, vrid); strings.Join(p.Restart, ",") != "VI_4,VI_5" || len(p.Update) != 0 {
		t.Fatalf("a VRID change plans %+v; want VI_5 restarted with its sync group G4 (VI_4)", p)
	}
}

// TestReloadPositionOnlyRunsNoNotify: the engine given the moved
// configuration's spec reports no change, and no notify script runs.
func TestReloadPositionOnlyRunsNoNotify(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "notify.sh")
	log := filepath.Join(dir, "ran")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := bigConf(script, "/bin/true", 4)
	old, moved := specOf(t, conf), specOf(t, commentAbove(conf))
	nt := notify.New(notify.Options{})
	lan := &fakeLAN{}
	h := newFakeHost(lan, "a", map[string]string{"eth0": "10.0.0.5/16"})
	e, err := New(old, Options{Net: h, Notifier: nt})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	go nt.Run(ctx)
	// Let the start notifications (BACKUP) run, then reload.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(log)
		if strings.Count(string(b), "\n") >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = nt.Drain(context.Background())
	before, _ := os.ReadFile(log)
	if n := strings.Count(string(before), "BACKUP"); n < 4 {
		t.Fatalf("the notify scripts did not run at start (%d BACKUP lines): the test would prove nothing", n)
	}
	changes, err := e.Apply(context.Background(), moved)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0] != "= 4 vrrp_instance(s) unchanged" {
		t.Fatalf("changes = %q; want only the unchanged count", changes)
	}
	time.Sleep(200 * time.Millisecond)
	_ = nt.Drain(context.Background())
	after, _ := os.ReadFile(log)
	if string(after) != string(before) {
		t.Fatalf("notify ran on a position-only reload:\nbefore %q\nafter  %q", before, after)
	}
}

// TestReloadAddsVIPInPlace: keepalived's reload adds a VIP to a master
// without a state change; so does vigil: no transition, the old VIP never
// leaves, the new one is added and announced. The backup, still on the old
// list (a rolling change), hears a master with two addresses and stays
// BACKUP (vrrp.AddrMismatch), showing the difference in its status.
func TestReloadAddsVIPInPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" || b.state(t, "VI_1") != "BACKUP" {
			t.Fatal("the pair did not settle")
		}
		before := a.snapshot(t).Instances[0].Counters.Transitions
		hist := a.host.vipHistory()
		arps := len(a.host.arps())
		two := tutorialInstance(vrrp.StateMaster, 100)
		two.VIPs = append(two.VIPs, two.VIPs[0])
		two.VIPs[1].Prefix, two.VIPs[1].Label = netip.MustParsePrefix("192.168.1.101/24"), ""
		two.VRRP.VIPs = []netip.Addr{netip.MustParseAddr("192.168.1.100"), netip.MustParseAddr("192.168.1.101")}
		changes, err := a.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{two}})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changes, "\n"); !strings.Contains(got, "* vrrp_instance VI_1 (updated in place: virtual_ipaddress") {
			t.Fatalf("changes %q", got)
		}
		time.Sleep(8 * time.Second)
		sa, sb := a.snapshot(t).Instances[0], b.snapshot(t).Instances[0]
		if sa.State != "MASTER" || sa.Counters.Transitions != before || sb.State != "BACKUP" {
			t.Fatalf("after the reload: a %s (transitions %d -> %d), b %s", sa.State, before, sa.Counters.Transitions, sb.State)
		}
		if got := a.host.vipHistory()[len(hist):]; strings.Join(got, ",") != "+192.168.1.101/24" {
			t.Fatalf("VIP changes on a after the reload: %v; want only +192.168.1.101/24", got)
		}
		if !slices0(a.host.arps()[arps:], netip.MustParseAddr("192.168.1.101")) {
			t.Fatalf("no gratuitous ARP for the new VIP: %v", a.host.arps()[arps:])
		}
		if b.host.holds(vip) || b.host.holds("192.168.1.101/24") {
			t.Fatal("b took a VIP: two masters")
		}
		if sb.Counters.AddrMismatch == 0 || !regexp.MustCompile(`master 192\.168\.1\.105 advertises 2 addresses, ours 1`).MatchString(sb.Warning) {
			t.Fatalf("b's status: mismatch count %d, warning %q", sb.Counters.AddrMismatch, sb.Warning)
		}
		// The second half of the rolling change: the warning clears.
		two.VRRP.InitialState, two.VRRP.Priority = vrrp.StateBackup, 99
		if _, err := b.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{two}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if sb := b.snapshot(t).Instances[0]; sb.State != "BACKUP" || sb.Warning != "" {
			t.Fatalf("b after its reload: %s, warning %q", sb.State, sb.Warning)
		}
	})
}

// TestReloadPriorityInPlace: a master given a lower priority advertises it
// at once and the backup preempts (one transition each, no restart); a
// VRID change restarts.
func TestReloadPriorityInPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))
		time.Sleep(5 * time.Second)
		low := tutorialInstance(vrrp.StateMaster, 50)
		changes, err := a.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{low}})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changes, "\n"); !strings.Contains(got, "updated in place: priority") {
			t.Fatalf("changes %q", got)
		}
		if p := a.snapshot(t).Instances[0]; p.EffectivePriority != 50 || p.State != "MASTER" {
			t.Fatalf("a right after the reload: %s prio %d", p.State, p.EffectivePriority)
		}
		time.Sleep(6 * time.Second)
		if a.state(t, "VI_1") != "BACKUP" || b.state(t, "VI_1") != "MASTER" {
			t.Fatalf("after lowering a's priority: a %s, b %s", a.state(t, "VI_1"), b.state(t, "VI_1"))
		}
		moved := tutorialInstance(vrrp.StateMaster, 50)
		moved.VRRP.VRID = 56
		changes, err = a.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{moved}})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changes, "\n"); !strings.Contains(got, "~ vrrp_instance VI_1 (restarts") {
			t.Fatalf("a VRID change: %q", got)
		}
	})
}

func slices0(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// arps returns the addresses the host announced, in order.
func (h *fakeHost) arps() []netip.Addr {
	h.lan.mu.Lock()
	defer h.lan.mu.Unlock()
	var out []netip.Addr
	for _, a := range h.lan.announced {
		if a.host == h.name {
			out = append(out, a.vip)
		}
	}
	return out
}

// TestVIPRemovedByHandIsRestored: a VIP removed by someone else while
// MASTER is added back and announced at once; status counts it, and
// vips_held follows the kernel's addresses in between.
func TestVIPRemovedByHandIsRestored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		time.Sleep(5 * time.Second)
		if !a.snapshot(t).Instances[0].VIPsHeld {
			t.Fatal("the master does not hold its VIP")
		}
		arps := len(a.host.arps())
		before := a.snapshot(t).Instances[0].Counters.Transitions
		a.host.removeByHand(vip)
		synctest.Wait()
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if !a.host.holds(vip) {
			t.Fatalf("the VIP was not added back: %v", a.host.vipHistory())
		}
		si := a.snapshot(t).Instances[0]
		if si.Counters.VIPsRestored != 1 || !si.VIPsHeld || si.State != "MASTER" || si.Counters.Transitions != before {
			t.Fatalf("status after the restore: %+v", si)
		}
		if !slices0(a.host.arps()[arps:], netip.MustParseAddr("192.168.1.100")) {
			t.Fatal("the restored VIP was not announced")
		}
	})
}

// TestVIPFlushedWithItsLinkIsNotRestored: the kernel flushes IPv6
// addresses when a link goes down, and the address events may come before
// the link event: the master does not add its VIP back on a link that is
// down (it failed, and its announcements with it), and faults on the link
// event.
func TestVIPFlushedWithItsLinkIsNotRestored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		time.Sleep(5 * time.Second)
		h := a.host
		h.mu.Lock()
		li := h.links["eth0"]
		li.Running, li.LowerUp = false, false
		h.links["eth0"] = li
		h.mu.Unlock()
		h.removeByHand(vip)
		synctest.Wait()
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if h.holds(vip) || a.snapshot(t).Instances[0].Counters.VIPsRestored != 0 {
			t.Fatalf("the VIP was added back on a link that is down: %v", h.vipHistory())
		}
		h.setLink("eth0", false)
		synctest.Wait()
		if got := a.state(t, "VI_1"); got != "FAULT" {
			t.Fatalf("a is %s after the link event, want FAULT", got)
		}
	})
}

// TestReloadRegroupsInPlace: two running instances put in one sync group
// by a reload keep their states (no restart, no transition); taking them
// out again does not restart them either.
func TestReloadRegroupsInPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		v1 := tutorialInstance(vrrp.StateMaster, 100)
		v2 := tutorialInstance(vrrp.StateMaster, 100)
		v2.VRRP.Name, v2.VRRP.VRID = "VI_2", 56
		v2.VIPs[0].Prefix = netip.MustParsePrefix("192.168.1.101/24")
		v2.VRRP.VIPs = []netip.Addr{netip.MustParseAddr("192.168.1.101")}
		a := startNode(t, lan, "a", "192.168.1.105/24", v1, v2)
		time.Sleep(5 * time.Second)
		tr := func() (uint64, uint64) {
			s := a.snapshot(t)
			return s.Instances[0].Counters.Transitions, s.Instances[1].Counters.Transitions
		}
		t1, t2 := tr()
		grouped := runspec.Spec{Instances: []runspec.InstanceSpec{v1, v2}, SyncGroups: []runspec.SyncGroupSpec{{Name: "G", Members: []string{"VI_1", "VI_2"}}}}
		if p := PlanReload(runspec.Spec{Instances: []runspec.InstanceSpec{v1, v2}}, grouped); len(p.Restart) != 0 || strings.Join(p.Regroup, ",") != "G" {
			t.Fatalf("plan %+v", p)
		}
		changes, err := a.eng.Apply(context.Background(), grouped)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changes, "\n"); !strings.Contains(got, "* vrrp_sync_group G (formed in place") || strings.Contains(got, "restarts") {
			t.Fatalf("changes %q", got)
		}
		time.Sleep(3 * time.Second)
		s := a.snapshot(t)
		if n1, n2 := tr(); n1 != t1 || n2 != t2 || s.Instances[0].State != "MASTER" || s.Instances[1].State != "MASTER" || len(s.SyncGroups) != 1 || s.SyncGroups[0].State != "MASTER" {
			t.Fatalf("after grouping: transitions %d,%d -> %d,%d; %+v", t1, t2, n1, n2, s)
		}
		if _, err := a.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{v1, v2}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		s = a.snapshot(t)
		if n1, n2 := tr(); n1 != t1 || n2 != t2 || len(s.SyncGroups) != 0 || !a.host.holds(vip) || !a.host.holds("192.168.1.101/24") {
			t.Fatalf("after ungrouping: transitions %d,%d -> %d,%d; %+v", t1, t2, n1, n2, s)
		}
	})
}

// fakeOwner is an owner.Registry where some keys belong to another daemon.
type fakeOwner struct {
	taken map[owner.Key]bool
	held  map[owner.Key]bool
}

func (o *fakeOwner) Claim(keys []owner.Key) error {
	for _, k := range keys {
		if o.taken[k] {
			return &owner.ConflictError{Key: k, PID: 4242}
		}
	}
	for _, k := range keys {
		o.held[k] = true
	}
	return nil
}
func (o *fakeOwner) Release(keys []owner.Key) {
	for _, k := range keys {
		delete(o.held, k)
	}
}
func (o *fakeOwner) Held() []owner.Key {
	var ks []owner.Key
	for k := range o.held {
		ks = append(ks, k)
	}
	return ks
}
func (o *fakeOwner) Alone() bool { return false }
func (o *fakeOwner) Settle()     {}

// TestReloadClaimsNewRouters: a reload adding a virtual router another
// daemon owns is refused as a whole, naming it; one removing a router
// gives it up.
func TestReloadClaimsNewRouters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v1 := tutorialInstance(vrrp.StateMaster, 100)
		v2 := tutorialInstance(vrrp.StateBackup, 100)
		v2.VRRP.Name, v2.VRRP.VRID = "VI_2", 56
		o := &fakeOwner{taken: map[owner.Key]bool{{Interface: "eth0", VRID: 56}: true}, held: map[owner.Key]bool{{Interface: "eth0", VRID: 55}: true}}
		h := newFakeHost(&fakeLAN{}, "a", map[string]string{"eth0": "192.168.1.105/24"})
		e, err := New(runspec.Spec{Instances: []runspec.InstanceSpec{v1}}, Options{Net: h, Owner: o})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		defer func() { cancel(); <-done }()
		time.Sleep(5 * time.Second)
		_, err = e.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{v1, v2}})
		if err == nil || !strings.Contains(err.Error(), "eth0 inet VRID 56 is already managed by vigil pid 4242") {
			t.Fatalf("reload adding a router owned elsewhere: %v", err)
		}
		if s, _ := e.Snapshot(context.Background()); len(s.Instances) != 1 || s.Instances[0].State != "MASTER" {
			t.Fatalf("after the refused reload: %+v", s.Instances)
		}
		delete(o.taken, owner.Key{Interface: "eth0", VRID: 56})
		moved := tutorialInstance(vrrp.StateMaster, 100)
		moved.VRRP.VRID = 57
		if _, err := e.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{moved}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Second) // the old VRID hands over and leaves
		if o.held[owner.Key{Interface: "eth0", VRID: 55}] || !o.held[owner.Key{Interface: "eth0", VRID: 57}] {
			t.Fatalf("held after moving VRID 55 to 57: %v", o.held)
		}
	})
}

// TestReloadRenameKeepsState: renaming an instance (same VRID, interface,
// family) keeps its state, as keepalived 2.2.7 does (vrrp_exist finds the
// old instance by VRID, family and interface): the master stays MASTER with
// its VIP, no priority 0 goes out and the backup does not move.
func TestReloadRenameKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" || b.state(t, "VI_1") != "BACKUP" {
			t.Fatal("the pair did not settle")
		}
		before, bBefore := a.snapshot(t).Instances[0].Counters, b.snapshot(t).Instances[0].Counters
		hist := a.host.vipHistory()
		web := tutorialInstance(vrrp.StateMaster, 100)
		web.VRRP.Name = "VI_WEB"
		changes, err := a.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{web}})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changes, "\n"); got != "* vrrp_instance VI_WEB (renamed from VI_1; state kept, as keepalived finds it by VRID and interface)" {
			t.Errorf("changes %q", got)
		}
		time.Sleep(8 * time.Second)
		sa, sb := a.snapshot(t).Instances[0], b.snapshot(t).Instances[0]
		if sa.Name != "VI_WEB" || sa.State != "MASTER" || sa.Counters.Transitions != before.Transitions || sa.Counters.PriorityZeroTx != before.PriorityZeroTx {
			t.Errorf("after the rename: %s %s, transitions %d -> %d, priority 0 sent %d -> %d", sa.Name, sa.State,
				before.Transitions, sa.Counters.Transitions, before.PriorityZeroTx, sa.Counters.PriorityZeroTx)
		}
		if sb.State != "BACKUP" || sb.Counters.Transitions != bBefore.Transitions {
			t.Errorf("the backup moved: %s, transitions %d -> %d", sb.State, bBefore.Transitions, sb.Counters.Transitions)
		}
		if got := a.host.vipHistory()[len(hist):]; len(got) != 0 {
			t.Errorf("VIP changes on a after the rename: %v", got)
		}
		if a.state(t, "VI_WEB") != "MASTER" {
			t.Errorf("VI_WEB is %s", a.state(t, "VI_WEB"))
		}
	})
}

func TestRenames(t *testing.T) {
	spec := func(names ...string) runspec.Spec {
		var s runspec.Spec
		for i, n := range names {
			is := tutorialInstance(vrrp.StateBackup, 100)
			is.VRRP.Name, is.VRRP.VRID = n, uint8(50+i)
			s.Instances = append(s.Instances, is)
		}
		return s
	}
	other := spec("VI_B")
	other.Instances[0].Interface = "eth1"
	grouped := spec("VI_B")
	grouped.SyncGroups = []runspec.SyncGroupSpec{{Name: "G", Members: []string{"VI_B"}}}
	for _, tc := range []struct {
		name     string
		old, new runspec.Spec
		want     map[string]string
	}{
		{"renamed", spec("VI_A"), spec("VI_B"), map[string]string{"VI_A": "VI_B"}},
		{"kept", spec("VI_A"), spec("VI_A"), nil},
		{"another interface", spec("VI_A"), other, nil},
		{"into a sync group", spec("VI_A"), grouped, nil},
	} {
		if got := Renames(tc.old, tc.new); !maps.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReloadUnicastPeerAdded: a master reloaded with one more unicast_peer
// (a node being added, one host at a time) advertises to it at once, in
// place: the new node, started afterwards, stays BACKUP.
func TestReloadUnicastPeerAdded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		uni := func(st vrrp.State, prio uint8, src string, peers ...string) runspec.InstanceSpec {
			s := tutorialInstance(st, prio)
			s.VRRP.Unicast, s.VRRP.Source = true, netip.MustParseAddr(src)
			for _, p := range peers {
				s.VRRP.Peers = append(s.VRRP.Peers, vrrp.Peer{Addr: netip.MustParseAddr(p)})
			}
			return s
		}
		a := startNode(t, lan, "a", "192.168.1.105/24", uni(vrrp.StateMaster, 100, "192.168.1.105", "192.168.1.106"))
		startNode(t, lan, "b", "192.168.1.106/24", uni(vrrp.StateBackup, 99, "192.168.1.106", "192.168.1.105"))
		time.Sleep(5 * time.Second)
		before := a.snapshot(t).Instances[0].Counters.Transitions
		changes, err := a.eng.Apply(context.Background(), runspec.Spec{Instances: []runspec.InstanceSpec{
			uni(vrrp.StateMaster, 100, "192.168.1.105", "192.168.1.106", "192.168.1.107")}})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changes, "\n"); !strings.Contains(got, "* vrrp_instance VI_1 (updated in place") {
			t.Errorf("changes %q", got)
		}
		c := startNode(t, lan, "c", "192.168.1.107/24", uni(vrrp.StateBackup, 98, "192.168.1.107", "192.168.1.105"))
		time.Sleep(10 * time.Second)
		if got := c.state(t, "VI_1"); got != "BACKUP" || c.host.holds(vip) {
			t.Errorf("the added node is %s (holds the VIP %v): it does not hear the master", got, c.host.holds(vip))
		}
		if sa := a.snapshot(t).Instances[0]; sa.State != "MASTER" || sa.Counters.Transitions != before {
			t.Errorf("the master after the reload: %s, transitions %d -> %d", sa.State, before, sa.Counters.Transitions)
		}
	})
}
