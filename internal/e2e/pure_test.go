package e2e_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// captures reads the first frame of a keepalived capture in
// testdata/captures.
func captures(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "captures", name))
	if err != nil {
		t.Fatal(err)
	}
	frames, err := netnstest.ParsePcap(b)
	if err != nil || len(frames) == 0 {
		t.Fatalf("%s: %v (%d frames)", name, err, len(frames))
	}
	return frames[0]
}

// TestParseVRRPCaptures reads keepalived 2.2.7's real frames.
func TestParseVRRPCaptures(t *testing.T) {
	mac := "02:00:c0:a8:01:69"
	for _, tc := range []struct {
		file string
		want e2e.VRRPFrame
	}{
		{"vrrpv2-advert.pcap", e2e.VRRPFrame{Version: 2, VRID: 55, Priority: 100}},
		{"vrrpv2-prio0.pcap", e2e.VRRPFrame{Version: 2, VRID: 55, Priority: 0}},
		{"vrrpv3-advert-10cs.pcap", e2e.VRRPFrame{Version: 3, VRID: 55, Priority: 100}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, ok := e2e.ParseVRRP(captures(t, tc.file))
			if !ok {
				t.Fatal("not recognised as VRRP")
			}
			tc.want.Src, tc.want.Dst, tc.want.TTL = netip.MustParseAddr("192.168.1.105"), netip.MustParseAddr("224.0.0.18"), 255
			if got.SrcMAC.String() != mac {
				t.Errorf("source MAC %v, want %s", got.SrcMAC, mac)
			}
			got.SrcMAC = nil
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
	garp := captures(t, "vrrpv2-garp.pcap")
	a, ok := e2e.ParseAnnouncement(garp)
	if !ok || a.Addr != e2e.VIP4 || a.SrcMAC.String() != mac {
		t.Errorf("gratuitous ARP: %+v %v", a, ok)
	}
	if _, ok := e2e.ParseVRRP(garp); ok {
		t.Error("a gratuitous ARP parsed as VRRP")
	}
	if _, ok := e2e.ParseAnnouncement(captures(t, "vrrpv2-advert.pcap")); ok {
		t.Error("an advert parsed as an announcement")
	}
	// Truncations never panic and are rejected.
	for i := range len(garp) {
		e2e.ParseAnnouncement(garp[:i])
		e2e.ParseVRRP(garp[:i])
	}
}

func TestSummarise(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := func(ms int, held ...bool) e2e.HoldSample {
		return e2e.HoldSample{At: at(ms), End: at(ms + 1), Held: held}
	}
	for _, tc := range []struct {
		name    string
		samples []e2e.HoldSample
		want    e2e.HoldStats
	}{
		{"clean handover", []e2e.HoldSample{s(0, true, false), s(10, true, false), s(20, false, true), s(30, false, true)},
			e2e.HoldStats{Samples: 4, MaxGap: 10 * time.Millisecond}},
		{"overlap of two rounds", []e2e.HoldSample{s(0, true, false), s(10, true, true), s(20, true, true), s(30, false, true)},
			// at least 10 ms .. 21 ms, at most 1 ms .. 30 ms
			e2e.HoldStats{Samples: 4, MaxOverlap: 11 * time.Millisecond, MaxOverlapUpper: 29 * time.Millisecond, MaxGap: 10 * time.Millisecond}},
		{"a late round cannot inflate the lower bound", []e2e.HoldSample{s(0, true, false), s(10, true, true), s(500, false, true)},
			e2e.HoldStats{Samples: 3, MaxOverlap: 1 * time.Millisecond, MaxOverlapUpper: 499 * time.Millisecond, MaxGap: 490 * time.Millisecond}},
		{"nobody", []e2e.HoldSample{s(0, true, false), s(10, false, false), s(20, false, true)},
			e2e.HoldStats{Samples: 3, MaxNone: 1 * time.Millisecond, MaxNoneUpper: 19 * time.Millisecond, NoneRounds: 1, MaxGap: 10 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e2e.Summarise(tc.samples)
			got.MaxGapTook = nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestSummarisePolls(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	reset := errors.New("read tcp 1->2: read: connection reset by peer")
	timeout := errors.New("dial tcp 192.168.1.100:80: i/o timeout")
	answerTimeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	reqs := []e2e.Request{
		{At: at(0), End: at(1), Body: "r1"},
		{At: at(10), End: at(1010), Err: timeout},
		{At: at(20), End: at(21), Err: reset},  // moved
		{At: at(30), End: at(300), Err: reset}, // reset after a retransmission: gap
		{At: at(40), End: at(41), Body: "r2"},
		// Acknowledged by the old master, whose answer came after it
		// released the VIP: moved. Unacknowledged: gap.
		{At: at(50), End: at(5050), Err: answerTimeout, Delivered: true},
		{At: at(60), End: at(5060), Err: answerTimeout},
	}
	got := e2e.SummarisePolls(reqs)
	want := e2e.PollStats{
		Requests: 7, Failed: 5, By: map[string]int{"r1": 1, "r2": 1},
		MaxUnanswered: 30 * time.Millisecond,
		Errors:        map[string]int{"i/o timeout": 3, "connection reset by peer": 2},
		Classes:       map[string]int{e2e.FailGap: 3, e2e.FailMoved: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// TestConfsLoad: every configuration the tests and the bench generate is one
// vigil's parser accepts without a diagnostic.
func TestConfsLoad(t *testing.T) {
	uni := e2e.Tutorial(true)
	uni.UnicastSrc, uni.UnicastPeers = "192.168.1.105", []string{"192.168.1.106"}
	v3 := e2e.Instance{Name: "VI_1", State: "BACKUP", Interface: "eth0", VRID: 55, Priority: 99, AdvertInt: "0.01",
		Version: 3, Nopreempt: true, VIPs: []string{"192.168.1.100/24 dev eth0 label eth0:1"}}
	pd := v3
	pd.Nopreempt, pd.PreemptDelay, pd.AdvertInt = false, "2", "0.1"
	v6 := ipv6Instance("MASTER", 100)
	for name, c := range map[string]e2e.Conf{
		"tutorial":      {RouterID: "wyl01", Instances: []e2e.Instance{e2e.Tutorial(true)}},
		"unicast":       {Instances: []e2e.Instance{uni}},
		"v3-nopreempt":  {Instances: []e2e.Instance{v3}},
		"preempt_delay": {Instances: []e2e.Instance{pd}},
		"ipv6":          {Instances: []e2e.Instance{v6}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "keepalived.conf"), []byte(c.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			_, ds := config.Load(os.DirFS(dir), "keepalived.conf", config.Options{ConfigID: "r1"})
			want := 0
			if name == "ipv6" {
				// The brief's VIP fd00::100/64 is not link-local; vigil
				// warns (RFC 5798 §5.2.9), as keepalived does.
				want = 1
			}
			if len(ds) != want || ds.HasErrors() {
				t.Errorf("diagnostics (want %d warnings):\n%v\nconfiguration:\n%s", want, ds, c)
			}
		})
	}
}

// TestKeepalivedState reads keepalived 2.2.7's transition lines, including
// those of an instance that starts in FAULT (lower case, as 2.2.7 logs
// them).
func TestKeepalivedState(t *testing.T) {
	log := `Mon Dec  7 01:43:43 2026: (VI_1): entering FAULT state (interface eth0 down)
Mon Dec  7 01:43:43 2026: (VI_1) entering FAULT state (no IPv4 address for interface)
Mon Dec  7 01:43:43 2026: (VI_2) Entering BACKUP STATE (init)
`
	if got := e2e.KeepalivedState(log, "VI_1"); got != "FAULT" {
		t.Errorf("VI_1: %q, want FAULT", got)
	}
	log += "Mon Dec  7 01:43:45 2026: (VI_1) Entering BACKUP STATE\n"
	for name, want := range map[string]string{"VI_1": "BACKUP", "VI_2": "BACKUP", "VI_3": ""} {
		if got := e2e.KeepalivedState(log, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
