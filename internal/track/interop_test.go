package track_test

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
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/track"
)

// TestKeepalivedAgrees runs Debian's keepalived 2.2.7 in a lab host with
// vrrp_scripts and a track_file of several weights, with and without
// reverse, and checks that the effective priority and FAULT state it
// settles on are what track.Compute gives for the same trackers.
func TestKeepalivedAgrees(t *testing.T) {
	ka := netnstest.RequireCommand(t, "keepalived")
	l := netnstest.New(t, "katrk")
	h := netnstest.AddHost(t, l, "a", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.77.0.1/24"}})

	d := t.TempDir()
	tf := d + "/tf"
	if err := os.WriteFile(tf, []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Scripts: "up" ones exit 0, "down" ones exit 1.
	scripts := map[string]struct {
		ok      bool
		weight  int
		reverse bool
	}{
		"up20":   {true, 20, false},
		"down30": {false, -30, false},
		"up7r":   {true, 7, true},
		"down5r": {false, -5, true},
		"down0":  {false, 0, false},
	}
	type ref struct {
		name    string
		weight  *int // per-instance override
		reverse bool
	}
	w := func(n int) *int { return &n }
	instances := []struct {
		name  string
		prio  int
		refs  []ref
		files []ref
	}{
		{"VI_A", 100, []ref{{name: "up20"}, {name: "down30"}, {name: "up7r"}, {name: "down5r"}}, []ref{{name: "tf"}}},
		{"VI_B", 250, []ref{{name: "up20", weight: w(50)}}, nil},
		{"VI_C", 10, []ref{{name: "down30", weight: w(-50)}}, nil},
		{"VI_D", 100, nil, []ref{{name: "tf", weight: w(-127)}}},
		{"VI_E", 100, []ref{{name: "down0"}}, nil},
		{"VI_F", 100, []ref{{name: "up20", weight: w(0), reverse: true}}, nil},
		{"VI_G", 100, []ref{{name: "up20", weight: w(0)}}, nil},
		{"VI_H", 100, nil, []ref{{name: "tf", weight: w(0)}}},
		{"VI_I", 100, []ref{{name: "up20", weight: w(-9), reverse: true}, {name: "down30", weight: w(9), reverse: true}}, []ref{{name: "tf", weight: w(4), reverse: true}}},
	}

	var conf strings.Builder
	conf.WriteString("global_defs {\n  router_id katrk\n}\n")
	for name, s := range scripts {
		prog := "/bin/false"
		if s.ok {
			prog = "/bin/true"
		}
		rev := ""
		if s.reverse {
			rev = " reverse"
		}
		fmt.Fprintf(&conf, "vrrp_script %s {\n  script %s\n  interval 1\n  weight %d%s\n}\n", name, prog, s.weight, rev)
	}
	fmt.Fprintf(&conf, "track_file tf {\n  file %s\n  weight 3\n}\n", tf)
	want := map[string]track.Result{}
	for i, in := range instances {
		fmt.Fprintf(&conf, "vrrp_instance %s {\n  state BACKUP\n  interface eth0\n  virtual_router_id %d\n  priority %d\n  advert_int 1\n", in.name, 60+i, in.prio)
		var trackers []track.Tracker
		line := func(r ref, defWeight int, defReverse bool) (string, int, bool) {
			wt, rev := defWeight, defReverse
			s := "    " + r.name
			if r.weight != nil {
				wt, rev = *r.weight, r.reverse
				s += fmt.Sprintf(" weight %d", wt)
				if rev {
					s += " reverse"
				} else {
					s += " noreverse"
				}
			}
			return s + "\n", wt, rev
		}
		if len(in.refs) > 0 {
			conf.WriteString("  track_script {\n")
			for _, r := range in.refs {
				s := scripts[r.name]
				l, wt, rev := line(r, s.weight, s.reverse)
				conf.WriteString(l)
				st := track.Down
				if s.ok {
					st = track.Up
				}
				trackers = append(trackers, track.Tracker{Kind: track.Script, Name: r.name, Weight: wt, Reverse: rev, Status: st})
			}
			conf.WriteString("  }\n")
		}
		if len(in.files) > 0 {
			conf.WriteString("  track_file {\n")
			for _, r := range in.files {
				l, wt, rev := line(r, 3, false)
				conf.WriteString(l)
				trackers = append(trackers, track.Tracker{Kind: track.File, Name: r.name, Weight: wt, Reverse: rev, Value: 2})
			}
			conf.WriteString("  }\n")
		}
		fmt.Fprintf(&conf, "  virtual_ipaddress {\n    10.77.0.%d/24\n  }\n}\n", 100+i)
		want[in.name] = track.Compute(uint8(in.prio), trackers)
	}
	cf := d + "/keepalived.conf"
	if err := os.WriteFile(cf, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// keepalived writes its SIGUSR1 state dump to $TMPDIR/keepalived.data.
	p, err := h.Start("env", append([]string{"TMPDIR=" + d, ka}, e2e.KeepalivedArgs("-P", "-f", cf, "-p", d+"/k.pid", "-r", d+"/v.pid")...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = p.Signal(syscall.SIGTERM)
		p.Wait(10 * time.Second)
	}()
	// The scripts run every second and the file is read at start: ask for
	// state dumps until keepalived's priorities have settled on Compute's
	// (a generous 30 s on a loaded machine), and report the last dump's
	// differences otherwise.
	type kaState struct {
		state       string
		prio, total int
	}
	compareDump := func(data string) (diffs, notes []string) {
		got := map[string]*kaState{}
		var cur *kaState
		for _, line := range strings.Split(data, "\n") {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "VRRP Instance = "); ok {
				cur = &kaState{}
				got[v] = cur
				continue
			}
			if cur == nil {
				continue
			}
			if v, ok := strings.CutPrefix(line, "State = "); ok && cur.state == "" {
				cur.state = v
			}
			if v, ok := strings.CutPrefix(line, "Effective priority = "); ok {
				cur.prio, _ = strconv.Atoi(v)
			}
			if v, ok := strings.CutPrefix(line, "Total priority = "); ok {
				cur.total, _ = strconv.Atoi(v)
			}
		}
		for _, in := range instances {
			wr := want[in.name]
			g := got[in.name]
			if g == nil {
				diffs = append(diffs, fmt.Sprintf("%s missing from keepalived's dump", in.name))
				continue
			}
			notes = append(notes, fmt.Sprintf("%s: keepalived state %s priority %d (total %d); Compute priority %d fault %v (total %d)", in.name, g.state, g.prio, g.total, wr.Priority, wr.Fault, wr.Total))
			if fault := g.state == "FAULT"; fault != wr.Fault {
				diffs = append(diffs, fmt.Sprintf("%s: keepalived state %s, Compute fault %v (%s)", in.name, g.state, wr.Fault, wr.Reason))
			}
			if !wr.Fault && g.prio != int(wr.Priority) {
				diffs = append(diffs, fmt.Sprintf("%s: keepalived effective priority %d, Compute %d", in.name, g.prio, wr.Priority))
			}
			if !wr.Fault && g.total != wr.Total {
				diffs = append(diffs, fmt.Sprintf("%s: keepalived total priority %d, Compute %d", in.name, g.total, wr.Total))
			}
		}
		return diffs, notes
	}
	// SIGUSR1 before keepalived handles it would end it: wait for its
	// VRRP child and the instances' first states.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(d + "/v.pid"); err == nil && strings.Contains(p.Output(), "Entering") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keepalived did not start its instances within 30 s:\n%s", p.Output())
		}
	}
	dump := d + "/keepalived.data"
	var data string
	var diffs, notes []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		data = stateDump(t, p, dump)
		diffs, notes = compareDump(data)
		if len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, n := range notes {
		t.Log(n)
	}
	for _, d := range diffs {
		t.Error(d)
	}
	if t.Failed() {
		t.Logf("config:\n%s\nkeepalived state dump:\n%s", conf.String(), data)
	}
}

// stateDump asks keepalived (p) for its SIGUSR1 state dump and returns it
// once written whole.
func stateDump(t *testing.T, p *lab.Proc, dump string) string {
	t.Helper()
	os.Remove(dump)
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, err := os.ReadFile(dump)
		// The interfaces section follows the instances (vrrp_data.c dump_data_vrrp).
		if err == nil && strings.Contains(string(b), "< Interfaces >") {
			return string(b)
		}
		if time.Now().After(deadline) {
			ents, _ := os.ReadDir(filepath.Dir(dump))
			t.Fatalf("no keepalived state dump in %s (dir has %v):\n%s", dump, ents, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
