package demo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
)

// tutorialNode1 is seed 000's keepalived.conf for the master (its comments
// and indentation aside).
const tutorialNode1 = `! Configuration File for keepalived
global_defs {
   notification_email {
     1335234172@qq.com
   }
   notification_email_from Alexandre.Cassen@firewall.loc
   smtp_server 127.0.0.1
   smtp_connect_timeout 30
   router_id wyl01
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 55
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.168.1.100/24 dev eth0 label eth0:1
    }
}
`

func TestConfigIsTheTutorials(t *testing.T) {
	if diff := cmp.Diff(tutorialNode1, Nodes()[0].Config(Tutorial)); diff != "" {
		t.Errorf("node1's keepalived.conf (-want +got):\n%s", diff)
	}
}

// TestConfigLoads checks that the files the demo writes are what vigil's
// own parser makes of the tutorial: no errors, and the tutorial's values.
func TestConfigLoads(t *testing.T) {
	vip := netip.MustParsePrefix("192.168.1.100/24")
	for _, tm := range []struct {
		name string
		t    Timing
	}{{"tutorial", Tutorial}, {"fast", Fast}} {
		for _, n := range Nodes() {
			t.Run(tm.name+"/"+n.Name, func(t *testing.T) {
				fsys := fstest.MapFS{"keepalived.conf": {Data: []byte(n.Config(tm.t))}}
				cfg, ds := config.Load(fsys, "keepalived.conf", config.Options{})
				for _, d := range ds {
					if d.Severity == diag.Error {
						t.Errorf("diagnostic: %s", d)
					}
				}
				if ds.HasErrors() {
					return
				}
				in := cfg.Instance(Instance)
				if in == nil {
					t.Fatalf("no instance %s", Instance)
				}
				type got struct {
					RouterID  string
					State     string
					Priority  int
					VRID      int
					Version   int
					AdvertInt time.Duration
					Auth      string
					VIPs      []string
				}
				want := got{n.RouterID, n.State, n.Priority, VRID, tm.t.Version, tm.t.AdvertInterval, "", []string{fmt.Sprint(vip, " dev eth0 label eth0:1")}}
				if tm.t.Version == 2 {
					want.Auth = "PASS 1111"
				}
				g := got{cfg.Global.RouterID, string(in.State), in.Priority, in.VRID, in.Version, in.AdvertInt, "", nil}
				if in.Auth.Type != "" {
					g.Auth = string(in.Auth.Type) + " " + in.Auth.Pass
				}
				for _, a := range in.VirtualIPs {
					g.VIPs = append(g.VIPs, fmt.Sprint(a.Prefix, " dev ", a.Dev, " label ", a.Label))
				}
				if diff := cmp.Diff(want, g); diff != "" {
					t.Errorf("parsed (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestMasterDownInterval(t *testing.T) {
	tests := []struct {
		name     string
		t        Timing
		prio     int
		mdi      time.Duration
		skew     time.Duration
		formula  string
		advertIn string
	}{
		// RFC 3768 §6.1: 3 × 1 s + (256−99)/256 s.
		{"v2 backup", Tutorial, 99, 3613281 * time.Microsecond, 613281 * time.Microsecond, "3 × 1s + (256−99)/256 s = 3.613s", "1"},
		{"v2 master", Tutorial, 100, 3609375 * time.Microsecond, 609375 * time.Microsecond, "3 × 1s + (256−100)/256 s = 3.609s", "1"},
		// RFC 5798 §6.1: 3 × 0.1 s + (256−99) × 0.1 s/256.
		{"v3 backup", Fast, 99, 361328 * time.Microsecond, 61328 * time.Microsecond, "3 × 100ms + (256−99) × 100ms/256 = 361ms", "0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type res struct {
				MDI, Skew time.Duration
				Formula   string
				AdvertInt string
			}
			want := res{tt.mdi, tt.skew, tt.formula, tt.advertIn}
			got := res{tt.t.MasterDownInterval(tt.prio), tt.t.SkewTime(tt.prio), tt.t.Formula(tt.prio), tt.t.advertInt()}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPageNode(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{pageText(Nodes()[0]), "node1"},
		{pageText(Nodes()[1]), "node2"},
		{"Hello from node2 (192.168.1.106)", "node2"},
		{"<html>502 Bad Gateway</html>", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := pageNode(tt.body); got != tt.want {
			t.Errorf("pageNode(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

// at is a time a given number of milliseconds after a fixed origin.
func at(msec int) time.Time {
	return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(msec) * time.Millisecond)
}

func ok(sent, done int, node string) Sample {
	return Sample{Sent: at(sent), Done: at(done), Node: node}
}
func fail(sent, done int, why string) Sample { return Sample{Sent: at(sent), Done: at(done), Err: why} }

// samples is a power cut at 100 ms: node1 answers until then, requests
// time out until node2 answers from 400 ms on; one request is in flight.
var samples = []Sample{
	ok(80, 82, "node1"),
	ok(90, 93, "node1"),
	fail(100, 1100, ErrTimeout),
	fail(200, 1200, ErrTimeout),
	fail(300, 1300, ErrTimeout),
	ok(350, 420, "node2"), // SYN retransmitted after the takeover
	ok(400, 401, "node2"),
	fail(410, 415, ErrReset),
	ok(500, 502, "node2"),
	{Sent: at(600)}, // in flight
}

func TestSummarise(t *testing.T) {
	tests := []struct {
		name     string
		from, to int
		want     Window
	}{
		{"before the cut", 0, 100, Window{Requests: 2, ByNode: map[string]int{"node1": 2}, Errors: map[string]int{}}},
		{"the cut", 100, 600, Window{Requests: 7, Failed: 4, Cut: 1,
			FailedSamples: []Sample{fail(100, 1100, ErrTimeout), fail(200, 1200, ErrTimeout), fail(300, 1300, ErrTimeout), fail(410, 415, ErrReset)},
			ByNode:        map[string]int{"node2": 3}, Errors: map[string]int{ErrTimeout: 3, ErrReset: 1}}},
		{"in flight is not counted", 600, 700, Window{ByNode: map[string]int{}, Errors: map[string]int{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.From, tt.want.To = at(tt.from), at(tt.to)
			if diff := cmp.Diff(tt.want, Summarise(samples, at(tt.from), at(tt.to))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFirstAndLastAnswer(t *testing.T) {
	tests := []struct {
		name  string
		first bool
		node  string
		from  int
		to    int
		want  Sample
		found bool
	}{
		// The request sent at 350 ms was sent earlier but finished later
		// than the one sent at 400 ms: the first answer is the first to end.
		{"first node2 after the cut", true, "node2", 100, 0, ok(400, 401, "node2"), true},
		{"first node1 after the cut", true, "node1", 100, 0, Sample{}, false},
		{"last node1 before the cut", false, "node1", 0, 100, ok(90, 93, "node1"), true},
		{"last node2 before 450", false, "node2", 0, 450, ok(400, 401, "node2"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Sample
			var found bool
			if tt.first {
				got, found = FirstAnswer(samples, tt.node, at(tt.from))
			} else {
				got, found = LastAnswer(samples, tt.node, at(tt.from), at(tt.to))
			}
			if found != tt.found {
				t.Fatalf("found = %v, want %v", found, tt.found)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSettled(t *testing.T) {
	if !Settled(samples, at(600)) {
		t.Errorf("Settled(600ms) = false; every request sent before 600 ms has finished")
	}
	if Settled(samples, at(601)) {
		t.Errorf("Settled(601ms) = true; the request sent at 600 ms is in flight")
	}
}

func TestErrorText(t *testing.T) {
	w := Window{Errors: map[string]int{ErrReset: 2, ErrTimeout: 31, ErrRefused: 2}}
	if got, want := w.ErrorText(), "31 timeout, 2 connection refused, 2 connection reset"; got != want {
		t.Errorf("ErrorText() = %q, want %q", got, want)
	}
	if got := (Window{}).ErrorText(); got != "" {
		t.Errorf("ErrorText() of no errors = %q, want empty", got)
	}
}

// timeoutErr is a net.Error that timed out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestShortErr(t *testing.T) {
	tests := []struct {
		err  error
		want string
		cut  bool
	}{
		{fmt.Errorf("Get: dial tcp: %w", timeoutErr{}), ErrTimeout, false},
		{fmt.Errorf("dial tcp 192.168.1.100:80: connect: %w", syscall.ECONNREFUSED), ErrRefused, false},
		{fmt.Errorf("read tcp: %w", syscall.ECONNRESET), ErrReset, true},
		{fmt.Errorf("write tcp: %w", syscall.EPIPE), ErrReset, true},
		{fmt.Errorf("Get: %w", io.EOF), ErrClosed, true},
		{io.ErrUnexpectedEOF, ErrClosed, true},
		{fmt.Errorf("connect: %w", syscall.EHOSTUNREACH), "no route to host", false},
		{errors.New("something else"), "something else", false},
	}
	for _, tt := range tests {
		got := shortErr(tt.err).Error()
		if got != tt.want || Cut(got) != tt.cut {
			t.Errorf("shortErr(%v) = %q (cut %v), want %q (cut %v)", tt.err, got, Cut(got), tt.want, tt.cut)
		}
	}
}

func TestPhaseTexts(t *testing.T) {
	p := Phase{Requests: 55, FailedRequests: 1, CutRequests: 1, Failures: []Span{{SentMS: 377.4, DoneMS: 580.1, Err: ErrReset}}}
	if got := p.Unanswered(); got != 0 {
		t.Errorf("Unanswered() = %d, want 0", got)
	}
	text := switchText(p)
	for _, want := range []string{"Of the 55 requests the client sent meanwhile, 0 went unanswered (the VIP was held", "1 were cut in flight (sent at +0.377 s, reset at +0.580 s)"} {
		if !bytes.Contains([]byte(text), []byte(want)) {
			t.Errorf("switchText() = %q, want it to contain %q", text, want)
		}
	}
	p = Phase{Requests: 9, FailedRequests: 2, Failures: []Span{{SentMS: 61.6, DoneMS: 1061.6, Err: ErrTimeout}, {SentMS: 70, DoneMS: 1070, Err: ErrTimeout}}}
	if got := switchText(p); got != "Of the 9 requests the client sent meanwhile, 2 went unanswered (sent at +0.062 s, +0.070 s)." {
		t.Errorf("switchText() = %q", got)
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		measured, lo, hi time.Duration
		want             string
	}{
		{3352 * time.Millisecond, 2613 * time.Millisecond, 3613 * time.Millisecond, "as the timers predict"},
		{3800 * time.Millisecond, 2613 * time.Millisecond, 3613 * time.Millisecond, "as the timers predict"},
		{4000 * time.Millisecond, 2613 * time.Millisecond, 3613 * time.Millisecond, "later than the timers predict (a busy machine delays timers and processes)"},
		{1 * time.Second, 2613 * time.Millisecond, 3613 * time.Millisecond, "sooner than the timers predict"},
	}
	for _, tt := range tests {
		if got := Verdict(tt.measured, tt.lo, tt.hi, 250*time.Millisecond); got != tt.want {
			t.Errorf("Verdict(%s) = %q, want %q", tt.measured, got, tt.want)
		}
	}
}

func TestNarrator(t *testing.T) {
	var b bytes.Buffer
	n := NewNarrator(&b, func() time.Time { return at(1234) })
	n.Section("Step 3: power cut on node1")
	n.Explain("node1 dies without a word.")
	n.Event("node1# kill -9 %d", 4242)
	n.EventAt(at(5000), "two lines\nof text")
	n.Block("inet 192.168.1.100/24 scope global secondary eth0:1\n\n  valid_lft forever\n")
	want := `
=== Step 3: power cut on node1 ===
node1 dies without a word.
03:04:06.234  node1# kill -9 4242
03:04:10.000  two lines
              of text
      inet 192.168.1.100/24 scope global secondary eth0:1

        valid_lft forever
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := Secs(3613281 * time.Microsecond); got != "3.613 s" {
		t.Errorf("Secs = %q", got)
	}
}

func TestHoldsVIP(t *testing.T) {
	const node1 = `2: eth0@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 02:76:67:00:00:01 brd ff:ff:ff:ff:ff:ff link-netns vg1-demo1-sw
    inet 192.168.1.105/24 scope global eth0
       valid_lft forever preferred_lft forever
    inet 192.168.1.100/24 scope global secondary eth0:1
       valid_lft forever preferred_lft forever
`
	const unlabelled = `    inet 192.168.1.100/24 scope global secondary eth0
`
	const other = `    inet 192.168.1.101/24 scope global secondary eth0:1
`
	for _, tt := range []struct {
		name, out string
		want      bool
	}{{"labelled VIP", node1, true}, {"VIP without the label", unlabelled, false}, {"another address", other, false}, {"empty", "", false}} {
		if got := holdsVIP(tt.out); got != tt.want {
			t.Errorf("%s: holdsVIP = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := neighMAC("192.168.1.100 dev eth0 lladdr 02:76:67:00:00:02 DELAY \n"); got != "02:76:67:00:00:02" {
		t.Errorf("neighMAC = %q", got)
	}
	if got := neighMAC("192.168.1.100 dev eth0 FAILED\n"); got != "" {
		t.Errorf("neighMAC of a failed entry = %q, want empty", got)
	}
}

func TestLogLines(t *testing.T) {
	tests := []struct {
		line     string
		at       time.Time
		text     string
		diag     string
		diagSeen bool
	}{
		{`time=2025-01-02T03:04:05.678Z level=INFO msg=transition instance=VI_1 from=BACKUP to=MASTER`,
			time.Date(2025, 1, 2, 3, 4, 5, 678e6, time.UTC), `msg=transition instance=VI_1 from=BACKUP to=MASTER`, "", false},
		{`time=2025-01-02T03:04:05.678Z level=WARN msg=configuration diagnostic="/tmp/vigil-demo-1-2/node1/keepalived.conf:3:4: warning: notification_email in global_defs is not supported by vigil; ignored"`,
			time.Date(2025, 1, 2, 3, 4, 5, 678e6, time.UTC),
			`level=WARN msg=configuration diagnostic="/tmp/vigil-demo-1-2/node1/keepalived.conf:3:4: warning: notification_email in global_defs is not supported by vigil; ignored"`,
			"3:4: warning: notification_email in global_defs is not supported by vigil; ignored", true},
		{`panic: something`, time.Time{}, `panic: something`, "", false},
	}
	for _, tt := range tests {
		gotAt, gotText := logLine(tt.line)
		if !gotAt.Equal(tt.at) || gotText != tt.text {
			t.Errorf("logLine(%q) = %v, %q; want %v, %q", tt.line, gotAt, gotText, tt.at, tt.text)
		}
		d, ok := configDiag(gotText)
		if d != tt.diag || ok != tt.diagSeen {
			t.Errorf("configDiag(%q) = %q, %v; want %q, %v", gotText, d, ok, tt.diag, tt.diagSeen)
		}
	}
}

// TestSweepDirs checks that only the directories of demos that no longer
// run are removed.
func TestSweepDirs(t *testing.T) {
	tmp := t.TempDir()
	// A PID that is certainly dead: a child that has been waited for.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	dead := cmd.Process.Pid
	mine := fmt.Sprintf("%s%d-123", dirPrefix, os.Getpid())
	gone := fmt.Sprintf("%s%d-456", dirPrefix, dead)
	for _, d := range []string{mine, gone, "vigil-demo-x-1", "other"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, gone, "keepalived.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{filepath.Join(tmp, gone)}, sweepDirs(tmp)); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	ents, _ := os.ReadDir(tmp)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if diff := cmp.Diff([]string{"other", mine, "vigil-demo-x-1"}, left); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
}
