package dump

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
)

const kaConf = `global_defs {
  router_id wyl01
  script_user root
}
vrrp_script chk_ok {
  script "/bin/true"
  interval 1
  weight -10
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
    192.168.1.101
  }
  track_script {
    chk_ok
  }
}
vrrp_instance VI_6 {
  state BACKUP
  interface eth0
  virtual_router_id 56
  priority 99
  version 3
  advert_int 0.5
  virtual_ipaddress {
    fd00::100/64
  }
}
`

// TestMatchesKeepalived runs Debian's keepalived 2.2.7 in a namespace, makes
// it write its three dumps, rebuilds the same state as a status.Snapshot
// and checks that the exporters' readers get the same thing out of vigil's
// dumps as out of keepalived's, and that every JSON field vigil writes
// exists in keepalived's with the same JSON type.
func TestMatchesKeepalived(t *testing.T) {
	ka := netnstest.RequireCommand(t, "keepalived")
	l := netnstest.New(t, "kadump")
	if err := l.AddLAN("lan"); err != nil {
		t.Fatal(err)
	}
	h := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(kaConf), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := h.Start("env", append([]string{"TMPDIR=" + dir, ka}, e2e.KeepalivedArgs("-P", "-f", conf,
		"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"))...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("keepalived output:\n%s", p.Output())
		}
	}()
	theirs := PathsIn(dir)
	// An RT signal kills keepalived before it has installed its handlers:
	// wait until its VRRP process runs the instances.
	if !p.WaitOutput("Entering", 15*time.Second) {
		t.Fatal("keepalived did not start its VRRP instances")
	}

	// fresh asks keepalived for a dump and returns it once written whole:
	// two reads 100 ms apart agree (a file read as keepalived writes it is
	// cut short, more often on a loaded machine). It asks again every 2 s
	// while nothing comes, not while a dump is being written.
	fresh := func(sig syscall.Signal, path string) []byte {
		t.Helper()
		os.Remove(path)
		deadline := time.Now().Add(15 * time.Second)
		var last []byte
		for ask := time.Now(); ; time.Sleep(100 * time.Millisecond) {
			b, err := os.ReadFile(path)
			if err == nil && len(b) > 0 && bytes.Equal(b, last) {
				return b
			}
			last = b
			if time.Now().After(deadline) {
				t.Fatalf("keepalived wrote no %s after signal %d", path, sig)
			}
			if len(b) == 0 && !time.Now().Before(ask) {
				if err := p.Signal(sig); err != nil {
					t.Fatal(err)
				}
				ask = time.Now().Add(2 * time.Second)
			}
		}
	}
	// Both instances are alone on the LAN: wait until both are MASTER.
	var kaJSON []byte
	for deadline := time.Now().Add(20 * time.Second); ; {
		kaJSON = fresh(SIGJSON, theirs.JSON)
		var v []exVRRP
		if err := json.Unmarshal(kaJSON, &v); err != nil {
			t.Fatalf("keepalived's own JSON: %v\n%s", err, kaJSON)
		}
		if len(v) == 2 && v[0].Data.State == 2 && v[1].Data.State == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keepalived instances did not become MASTER:\n%s", kaJSON)
		}
	}
	kaData := fresh(syscall.SIGUSR1, theirs.Data)
	kaStats := fresh(syscall.SIGUSR2, theirs.Stats)

	// The same state as a snapshot: data from keepalived's JSON, counters
	// from its stats file (adverts go on between the two dumps).
	var raw []struct {
		Data struct {
			IName             string   `json:"iname"`
			Ifp               string   `json:"ifp_ifname"`
			LastTransition    float64  `json:"last_transition"`
			VRID              int      `json:"vrid"`
			BasePriority      int      `json:"base_priority"`
			EffectivePriority int      `json:"effective_priority"`
			AdvertInt         float64  `json:"adver_int"`
			State             int      `json:"state"`
			Version           int      `json:"version"`
			VIPs              []string `json:"vips"`
		} `json:"data"`
	}
	if err := json.Unmarshal(kaJSON, &raw); err != nil {
		t.Fatal(err)
	}
	kaStatsParsed, err := exParseStats(bytes.NewReader(kaStats))
	if err != nil {
		t.Fatalf("keepalived's own stats: %v", err)
	}
	kaScripts := exParseVRRPScript(bytes.NewReader(kaData))
	var s status.Snapshot
	for _, r := range raw {
		d := r.Data
		st := kaStatsParsed[d.IName]
		in := status.Instance{
			Name: d.IName, Interface: d.Ifp, Family: "inet", Version: d.Version, VRID: d.VRID,
			State: exStates[d.State], BasePriority: d.BasePriority, EffectivePriority: d.EffectivePriority,
			AdvertInterval: status.Duration(time.Duration(d.AdvertInt * float64(time.Second))), VIPs: d.VIPs,
			Since: time.UnixMicro(int64(d.LastTransition*1e6 + 0.5)),
			Counters: status.Counters{
				AdvertsSent: uint64(st.AdvertSent), AdvertsReceived: uint64(st.AdvertRcvd), BecameMaster: uint64(st.BecomeMaster),
				PriorityZeroRx: uint64(st.PRIZeroRcvd), PriorityZeroTx: uint64(st.PRIZeroSent),
				Dropped: map[string]uint64{
					StatPacketLength[0]: uint64(st.PacketLenErr), StatTTL[0]: uint64(st.IPTTLErr),
					StatInvalidType[0]: uint64(st.InvalidTypeRcvd), StatAdvertInterval[0]: uint64(st.AdvertIntervalErr),
					StatAddressList[0]: uint64(st.AddrListErr), StatInvalidAuthType[0]: uint64(st.InvalidAuthType),
					StatAuthTypeMismatch[0]: uint64(st.AuthTypeMismatch), StatAuthFailure[0]: uint64(st.AuthFailure),
				},
			},
		}
		if len(d.VIPs) > 0 && strings.Contains(strings.Fields(d.VIPs[0])[0], ":") {
			in.Family = "inet6"
		}
		if d.IName == "VI_1" {
			in.Trackers = []status.Tracker{{Kind: "script", Name: "chk_ok", OK: len(kaScripts) == 1 && kaScripts[0].Status == "GOOD", Weight: -10}}
		}
		s.Instances = append(s.Instances, in)
	}
	var myData, myStats, myJSON bytes.Buffer
	if err := WriteData(&myData, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteStats(&myStats, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&myJSON, s); err != nil {
		t.Fatal(err)
	}

	// keepalived.data through mehdy's reader.
	wantData, err := exParseVRRPData(bytes.NewReader(kaData))
	if err != nil {
		t.Fatalf("keepalived's own data: %v", err)
	}
	gotData, err := exParseVRRPData(bytes.NewReader(myData.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// keepalived writes "Gratuitous ARP delay"; the snapshot does not carry
	// it yet (see the report: Instance.GARPDelay).
	for _, d := range wantData {
		d.GArpDelay = 0
	}
	if diff := cmp.Diff(wantData, gotData); diff != "" {
		t.Errorf("keepalived.data as the exporter reads it (-keepalived +vigil)\n%s\nkeepalived:\n%s\nvigil:\n%s", diff, kaData, myData.String())
	}
	// A script's State is "running" while keepalived runs it, "idle"
	// between runs; compare names and results, and check that vigil's
	// state is one the exporter knows.
	myScripts := exParseVRRPScript(bytes.NewReader(myData.Bytes()))
	for i := range myScripts {
		if myScripts[i].State != "idle" {
			t.Errorf("script %s: state %q", myScripts[i].Name, myScripts[i].State)
		}
		myScripts[i].State = ""
	}
	for i := range kaScripts {
		kaScripts[i].State = ""
	}
	if diff := cmp.Diff(kaScripts, myScripts); diff != "" {
		t.Errorf("scripts (-keepalived +vigil)\n%s", diff)
	}

	// keepalived.stats: byte for byte.
	if diff := cmp.Diff(string(kaStats), myStats.String()); diff != "" {
		t.Errorf("keepalived.stats (-keepalived +vigil)\n%s", diff)
	}

	// keepalived.json through mehdy's decoder.
	wantJSON, err := exParseJSON(bytes.NewReader(kaJSON))
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, err := exParseJSON(bytes.NewReader(myJSON.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range wantJSON {
		wantJSON[i].Data.GArpDelay = 0
		// Stats come from the later stats dump, not from this JSON.
		wantJSON[i].Stats = *kaStatsParsed[wantJSON[i].Data.IName]
	}
	if diff := cmp.Diff(wantJSON, gotJSON); diff != "" {
		t.Errorf("keepalived.json as the exporter reads it (-keepalived +vigil)\n%s", diff)
	}

	// Every field vigil writes is one keepalived writes, with the same type
	// and, for these, the same value.
	var kaAny, myAny []map[string]map[string]any
	if err := json.Unmarshal(kaJSON, &kaAny); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(myJSON.Bytes(), &myAny); err != nil {
		t.Fatal(err)
	}
	var missing []string
	for i := range myAny {
		for obj, fields := range myAny[i] {
			for k, v := range fields {
				kv, ok := kaAny[i][obj][k]
				if !ok {
					t.Errorf("%s.%s: keepalived has no such field", obj, k)
					continue
				}
				if typeName(kv) != typeName(v) {
					t.Errorf("%s.%s: %T in vigil, %T in keepalived", obj, k, v, kv)
				}
				if obj == "data" && !cmp.Equal(kv, v) {
					t.Errorf("%s.%s: vigil %v, keepalived %v", obj, k, v, kv)
				}
			}
			for k := range kaAny[i][obj] {
				if _, ok := fields[k]; !ok {
					missing = append(missing, obj+"."+k)
				}
			}
		}
	}
	sort.Strings(missing)
	t.Logf("keepalived JSON fields vigil does not write (not in the snapshot): %s", strings.Join(dedupe(missing), " "))
}

func typeName(v any) string {
	switch v.(type) {
	case float64:
		return "number"
	case string:
		return "string"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

func dedupe(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
