package dump

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/status"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 250_000_000, time.UTC)

func fakeSnapshot() status.Snapshot {
	return status.Snapshot{
		Daemon: status.Daemon{Version: "1.2.3", RouterID: "wyl01"},
		Instances: []status.Instance{
			{
				Name: "VI_1", Interface: "eth0", Family: "inet", Version: 2, VRID: 55, State: "MASTER",
				BasePriority: 100, EffectivePriority: 90, AdvertInterval: status.Duration(time.Second),
				VIPs: []string{"192.168.1.100/24 dev eth0 label eth0:1", "192.168.1.101/32"}, SyncGroup: "G1",
				Since: t0,
				Trackers: []status.Tracker{
					{Kind: "script", Name: "chk_nginx", OK: false, Weight: -10},
					{Kind: "interface", Name: "eth1", OK: true, Weight: 0},
				},
				Counters: status.Counters{AdvertsSent: 1200, AdvertsReceived: 7, Transitions: 3, BecameMaster: 2,
					PriorityZeroRx: 1, PriorityZeroTx: 4,
					Dropped: map[string]uint64{StatAuthFailure[0]: 3, StatAuthFailure[1]: 2, StatTTL[0]: 1, StatPacketLength[0]: 2,
						StatInvalidType[0]: 3, StatAdvertInterval[0]: 4, StatAddressList[0]: 6, StatInvalidAuthType[0]: 7,
						StatAuthTypeMismatch[0]: 8, "vigil_own_reason": 9}},
			},
			{
				Name: "VI_6", Interface: "eth0", Family: "inet6", Version: 3, VRID: 56, State: "BACKUP",
				BasePriority: 99, EffectivePriority: 99, AdvertInterval: status.Duration(500 * time.Millisecond),
				Master: "fe80::1", VIPs: []string{"fd00::100/64", "fd00::101/128"}, Since: t0.Add(-time.Hour),
				Trackers: []status.Tracker{{Kind: "script", Name: "chk_nginx", OK: false, Weight: -5}},
				Counters: status.Counters{AdvertsReceived: 40, BecameMaster: 1},
			},
		},
		SyncGroups: []status.SyncGroup{{Name: "G1", State: "MASTER", Instances: []string{"VI_1"}}},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got)\n%s", path, diff)
	}
}

func TestGolden(t *testing.T) {
	s := fakeSnapshot()
	for _, tc := range []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"keepalived.data", func(b *bytes.Buffer) error { return writeData(b, s, time.UTC) }},
		{"keepalived.stats", func(b *bytes.Buffer) error { return WriteStats(b, s) }},
		{"keepalived.json", func(b *bytes.Buffer) error { return WriteJSON(b, s) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, b.Bytes())
		})
	}
}

// TestExportersReadTheDumps parses the three dumps with the exporters'
// readers and checks what they would export.
func TestExportersReadTheDumps(t *testing.T) {
	s := fakeSnapshot()
	var data, stats, js bytes.Buffer
	if err := WriteData(&data, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteStats(&stats, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, s); err != nil {
		t.Fatal(err)
	}

	wantData := map[string]*exVRRPData{
		"VI_1": {IName: "VI_1", State: 2, WantState: 2, Intf: "eth0", VRID: 55,
			VIPs: []string{"192.168.1.100/24 dev eth0 scope global label eth0:1 set", "192.168.1.101 dev eth0 scope global set"}},
		"VI_6": {IName: "VI_6", State: 1, WantState: 1, Intf: "eth0", VRID: 56,
			VIPs: []string{"fd00::100/64 dev eth0 scope global preferred_lft forever", "fd00::101 dev eth0 scope global preferred_lft forever"}},
	}
	gotData, err := exParseVRRPData(strings.NewReader(data.String()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantData, gotData); diff != "" {
		t.Errorf("keepalived.data (-want +got)\n%s\n%s", diff, data.String())
	}
	if vip, dev, ok := exParseVIP(gotData["VI_1"].VIPs[0]); !ok || vip != "192.168.1.100/24" || dev != "eth0" {
		t.Errorf("ParseVIP: %q %q %v", vip, dev, ok)
	}
	if diff := cmp.Diff([]exScript{{Name: "chk_nginx", Status: "BAD", State: "idle"}}, exParseVRRPScript(strings.NewReader(data.String()))); diff != "" {
		t.Errorf("scripts (-want +got)\n%s", diff)
	}

	wantStats := map[string]*exVRRPStats{
		"VI_1": {AdvertRcvd: 7, AdvertSent: 1200, BecomeMaster: 2, ReleaseMaster: 1, PacketLenErr: 2, AdvertIntervalErr: 4,
			IPTTLErr: 1, InvalidTypeRcvd: 3, AddrListErr: 6, InvalidAuthType: 7, AuthTypeMismatch: 8, AuthFailure: 5,
			PRIZeroRcvd: 1, PRIZeroSent: 4},
		"VI_6": {AdvertRcvd: 40, BecomeMaster: 1, ReleaseMaster: 1},
	}
	gotStats, err := exParseStats(strings.NewReader(stats.String()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantStats, gotStats); diff != "" {
		t.Errorf("keepalived.stats (-want +got)\n%s", diff)
	}

	gotJSON, err := exParseJSON(strings.NewReader(js.String()))
	if err != nil {
		t.Fatalf("mehdy's decoder: %v\n%s", err, js.String())
	}
	if len(gotJSON) != 2 {
		t.Fatalf("got %d instances", len(gotJSON))
	}
	for i, in := range gotJSON {
		name := in.Data.IName
		want := *wantData[name]
		if diff := cmp.Diff(want, in.Data); diff != "" {
			t.Errorf("json %d data (-want +got)\n%s", i, diff)
		}
		if diff := cmp.Diff(*wantStats[name], in.Stats); diff != "" {
			t.Errorf("json %d stats (-want +got)\n%s", i, diff)
		}
	}
	var ka []exKA
	if err := json.Unmarshal(js.Bytes(), &ka); err != nil {
		t.Fatalf("gen2brain's decoder: %v", err)
	}
	if got, want := ka[0].Data.LastTransition, float64(t0.UnixMicro())/1e6; got != want {
		t.Errorf("last_transition %f, want %f", got, want)
	}
}

func TestEmptySnapshot(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, status.Snapshot{}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "[]\n" {
		t.Errorf("got %q", b.String())
	}
	b.Reset()
	if err := WriteStats(&b, status.Snapshot{}); err != nil || b.Len() != 0 {
		t.Errorf("stats of nothing: %q %v", b.String(), err)
	}
}

func TestStateNumbers(t *testing.T) {
	got := map[string]int{}
	for _, s := range []string{"INIT", "BACKUP", "MASTER", "FAULT", "master", "STOP", "bogus"} {
		got[s] = StateNumber(s)
	}
	want := map[string]int{"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3, "master": 2, "STOP": 98, "bogus": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestDefaultPaths(t *testing.T) {
	env := func(v string) func(string) string { return func(string) string { return v } }
	if got := DefaultPaths(env("")); got != PathsIn("/tmp") {
		t.Errorf("no TMPDIR: %+v", got)
	}
	if got := DefaultPaths(env("relative")); got != PathsIn("/tmp") {
		t.Errorf("relative TMPDIR: %+v", got)
	}
	if got := DefaultPaths(env("/run/x")).JSON; got != "/run/x/keepalived.json" {
		t.Errorf("TMPDIR=/run/x: %s", got)
	}
}

func TestSignum(t *testing.T) {
	for name, want := range map[string]syscall.Signal{"DATA": syscall.SIGUSR1, "STATS": syscall.SIGUSR2, "JSON": 36,
		"RELOAD": syscall.SIGHUP, "STOP": syscall.SIGTERM} {
		if got, ok := Signum(name); !ok || got != want {
			t.Errorf("%s: %v %v", name, got, ok)
		}
		if k, ok := SignalKind(want); ok != (name == "DATA" || name == "STATS" || name == "JSON") {
			t.Errorf("SignalKind(%v) = %v %v", want, k, ok)
		}
	}
	if _, ok := Signum("STATS_CLEAR"); ok {
		t.Error("STATS_CLEAR offered but vigil does not clear counters")
	}
}

func TestWriteFileIsAtomicPrivateAndDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := PathsIn(dir)
	if err := os.Symlink(victim, p.JSON); err != nil {
		t.Fatal(err)
	}
	path, err := p.Write(JSONDump, fakeSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("symlink target overwritten: %q", b)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v, want a regular file with 0600", path, fi.Mode())
	}
	// A failing writer leaves neither the file nor a temporary behind.
	err = WriteFile(p.Data, status.Snapshot{}, func(w io.Writer, _ status.Snapshot) error {
		w.Write([]byte("half"))
		return errors.New("boom")
	})
	if err == nil {
		t.Fatal("writer error lost")
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"keepalived.json", "victim"}, names); diff != "" {
		t.Errorf("directory after a failed write (-want +got)\n%s", diff)
	}
}

func TestServeWritesOnSignal(t *testing.T) {
	dir := t.TempDir()
	sigs := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	calls := 0
	snap := func(context.Context) (status.Snapshot, error) {
		calls++
		if calls == 2 {
			return status.Snapshot{}, errors.New("engine: busy")
		}
		return fakeSnapshot(), nil
	}
	go func() { done <- Serve(ctx, sigs, PathsIn(dir), snap, slog.New(slog.DiscardHandler)) }()
	sigs <- syscall.SIGUSR1
	sigs <- syscall.SIGUSR2 // snapshot fails: nothing written, no exit
	sigs <- SIGJSON
	sigs <- syscall.SIGHUP // not a dump signal
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]bool{"keepalived.data": true, "keepalived.stats": false, "keepalived.json": true} {
		_, err := os.Stat(filepath.Join(dir, file))
		if (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", file, err == nil, want)
		}
	}
}

// TestRunAnswersRealSignals sends SIGUSR2 to this process. The test
// subscribes first, so an early signal cannot kill the test binary.
func TestRunAnswersRealSignals(t *testing.T) {
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGUSR2, SIGJSON)
	defer signal.Stop(guard)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Run(ctx, PathsIn(dir), func(context.Context) (status.Snapshot, error) { return fakeSnapshot(), nil },
			slog.New(slog.DiscardHandler))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for _, f := range []string{"keepalived.stats", "keepalived.json"} {
		sig := map[string]syscall.Signal{"keepalived.stats": syscall.SIGUSR2, "keepalived.json": SIGJSON}[f]
		for {
			syscall.Kill(os.Getpid(), sig)
			time.Sleep(50 * time.Millisecond)
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not written after %v", f, sig)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestVIPText(t *testing.T) {
	for _, tc := range []struct {
		name, vip string
		set       bool
		want      string
	}{
		{"host prefix dropped", "10.0.0.1/32", false, "10.0.0.1 dev eth0 scope global"},
		{"no prefix", "10.0.0.1", true, "10.0.0.1 dev eth0 scope global set"},
		{"keepalived options kept", "10.0.0.1/24 dev eth9 scope link label eth9:3", true, "10.0.0.1/24 dev eth9 scope link label eth9:3 set"},
		{"ipv6 forever", "fd00::1/64", false, "fd00::1/64 dev eth0 scope global preferred_lft forever"},
		{"ipv6 host prefix", "fd00::1/128", false, "fd00::1 dev eth0 scope global preferred_lft forever"},
		{"ipv6 deprecated", "fd00::1/64 preferred_lft 0", true, "fd00::1/64 dev eth0 scope global deprecated set"},
		{"empty", "", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := vipText(tc.vip, "eth0", tc.set); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
