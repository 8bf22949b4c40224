package status

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTimelineKeepsTheLastN(t *testing.T) {
	tl := NewTimeline(3)
	for i := range 5 {
		tl.Add(Transition{Name: string(rune('a' + i))})
	}
	var got []string
	for _, tr := range tl.List() {
		got = append(got, tr.Name)
	}
	if diff := cmp.Diff([]string{"c", "d", "e"}, got); diff != "" {
		t.Fatalf("(-want +got)\n%s", diff)
	}
}

func TestSnapshotJSONRoundTrip(t *testing.T) {
	in := Snapshot{
		Daemon:    Daemon{Version: "dev", PID: 7, Started: time.Unix(1700000000, 0).UTC()},
		Instances: []Instance{{Name: "VI_1", State: "MASTER", AdvertInterval: Duration(100 * time.Millisecond), VIPs: []string{"192.168.1.100/24"}}},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"advert_interval":"100ms"`)) {
		t.Fatalf("duration not human readable: %s", b)
	}
	var out Snapshot
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Fatalf("(-want +got)\n%s", diff)
	}
}

func TestWriteTextShowsInstances(t *testing.T) {
	var b bytes.Buffer
	err := WriteText(&b, Snapshot{Instances: []Instance{{Name: "VI_1", Interface: "eth0", VRID: 55, Version: 2,
		State: "BACKUP", BasePriority: 100, EffectivePriority: 80, Master: "192.168.1.105", VIPs: []string{"192.168.1.100/24"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VI_1", "eth0", "55", "BACKUP", "80(100)", "192.168.1.105", "192.168.1.100/24"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestWriteTextShowsMissingRoutes: a master holding its addresses shows
// them held, and the virtual routes the kernel lacks on a line of their own.
func TestWriteTextShowsMissingRoutes(t *testing.T) {
	var b bytes.Buffer
	err := WriteText(&b, Snapshot{Instances: []Instance{{Name: "VI_1", Interface: "eth0", VRID: 55, Version: 2, State: "MASTER",
		VIPs: []string{"192.168.1.100/24"}, VIPsHeld: true, HeldVIPs: []string{"192.168.1.100/24"},
		MissingRoutes: []string{"10.2.0.0/16 via 192.168.9.9 table 100"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "ROUTES VI_1: not in the kernel: 10.2.0.0/16 via 192.168.9.9 table 100") || strings.Contains(out, "(192.168.1.100/24)") {
		t.Errorf("want the addresses held and the missing route on a line:\n%s", out)
	}
}

func TestWriteTextShowsVMACAndAcceptMode(t *testing.T) {
	var b strings.Builder
	s := Snapshot{Instances: []Instance{
		{Name: "VI_1", Interface: "eth0", State: "MASTER", VMAC: "vrrp.55", VMACAddr: "00:00:5e:00:01:37", Strict: true, NoAccept: true, DroppingVIPs: true},
		{Name: "VI_2", Interface: "eth0", State: "BACKUP", VMAC: "vrrp.56", VMACAddr: "00:00:5e:00:01:38", XmitBase: true},
		{Name: "VI_3", Interface: "eth0", State: "BACKUP", NoAccept: true},
	}}
	if err := WriteText(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"VI_1: VIPs on VMAC vrrp.55 (00:00:5e:00:01:37); strict mode; accept mode off: traffic to the VIPs is DROPPED now",
		"VI_2: VIPs on VMAC vrrp.56 (00:00:5e:00:01:38), adverts from eth0\n",
		"VI_3: accept mode off: traffic to the VIPs will be dropped while MASTER",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

func TestWriteTextShowsPeersAndZones(t *testing.T) {
	var b bytes.Buffer
	now := time.Now()
	err := WriteText(&b, Snapshot{Instances: []Instance{{Name: "VI_1", Interface: "eth0", VRID: 55, Version: 2,
		State: "BACKUP", VIPs: []string{"192.168.1.100/24", "192.168.1.101/24"}, HeldVIPs: []string{"192.168.1.100/24"},
		Handover: "yielding", Counters: Counters{Dropped: map[string]uint64{"auth_failure": 4}},
		Peers: []Peer{{Addr: "192.168.1.105", Priority: 100, LastHeard: now.Add(-300 * time.Millisecond), Adverts: 9}}}},
		VirtualServers: []VirtualServer{{Name: "[10.0.0.1]:tcp:80", RealServers: []RealServer{{Addr: "10.0.0.11:80", Healthy: true, Weight: 1,
			Kernel: &Kernel{Connections: 5, BytesIn: 900, BytesOut: 12000}}}}},
		Transitions: []Transition{{At: now, Kind: "instance", Name: "VI_1", From: "INIT", To: "BACKUP"}}})
	if err != nil {
		t.Fatal(err)
	}
	zone := now.Format("MST")
	for _, want := range []string{"PEER", "192.168.1.105\t", "100", "ago", "never", "holds 192.168.1.100/24 of 2", "--reclaim VI_1", zone, "DROPPED VI_1: auth_failure 4", "5 conns, 900 B in, 12000 B out"} {
		if !strings.Contains(strings.ReplaceAll(b.String(), "  ", "\t"), want) && !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteTextShowsConnSync(t *testing.T) {
	at := time.Date(2026, 12, 7, 2, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		cs   ConnSync
		want []string
	}{
		{"running", ConnSync{Daemon: "conntrackd", Interface: "eth2", Peer: "10.9.0.2", Follows: "VG_1", Role: "MASTER",
			Alive: true, PID: 42, LinkUp: true, Internal: 31, External: 2, LastResync: at},
			[]string{"connection sync conntrackd  running (pid 42) on eth2 to 10.9.0.2  follows VG_1 (MASTER)",
				"internal 31", "external 2", "last resync 2026-12-07T02:30:00Z"}},
		{"dead", ConnSync{Daemon: "conntrackd", Interface: "eth2", Peer: "10.9.0.2", Follows: "VG_1", Role: "BACKUP", Restarts: 3,
			Warnings: []string{"conntrackd is not running (signal: killed); restarted 3 times", "sync link eth2 is down"}},
			[]string{"NOT RUNNING", "DOWN", "restarts 3", "last resync never",
				"WARNING: conntrackd is not running (signal: killed); restarted 3 times", "WARNING: sync link eth2 is down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			cs := tc.cs
			if err := WriteText(&b, Snapshot{ConnSync: &cs}); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("status text lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestWriteTextShowsFailedReload(t *testing.T) {
	for _, tc := range []struct {
		d    Daemon
		want bool
	}{
		{Daemon{ReloadFailures: 2, LastReloadError: "/etc/vigil/vigil.conf:3:1: error: x", LastReloadFailed: time.Now().Add(-time.Minute)}, true},
		{Daemon{ReloadFailures: 2}, false}, // a reload applied since
	} {
		var b bytes.Buffer
		if err := WriteText(&b, Snapshot{Daemon: tc.d}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		full := strings.Contains(out, "RELOAD FAILED 1m0s ago, the running configuration is older than the file: /etc/vigil/vigil.conf:3:1: error: x")
		if got := strings.Contains(out, "RELOAD FAILED"); got != tc.want || got != full {
			t.Errorf("%+v: RELOAD FAILED line %v, want %v:\n%s", tc.d, got, tc.want, out)
		}
	}
}
