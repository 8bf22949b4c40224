package ops

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// dumpFile waits until the daemon (re)writes name in its TMPDIR after sig,
// and returns the content.
func dumpFile(t *testing.T, d *daemon, sig syscall.Signal, name string) []byte {
	t.Helper()
	path := filepath.Join(d.tmp, name)
	_ = os.Remove(path)
	d.signal(sig)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(path); err == nil {
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600 (keepalived's umask 0177)", name, fi.Mode().Perm())
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		if time.Now().After(deadline) {
			ents, _ := os.ReadDir(d.tmp)
			t.Fatalf("signal %d: no %s in TMPDIR %s after 10s (it holds %v)", sig, name, d.tmp, ents)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dataInstance is what keepalived exporters read from keepalived.data for
// one instance (mehdy/keepalived-exporter's ParseVRRPData keys).
type dataInstance struct {
	props map[string]string
	vips  []string
}

// parseData reads keepalived.data the way the exporters do: " VRRP Instance
// = NAME" opens an instance, "   Key = value" lines are its properties,
// five-space lines under "Virtual IP (n):" its addresses.
func parseData(t *testing.T, b []byte) (global map[string]string, insts map[string]*dataInstance) {
	t.Helper()
	global, insts = map[string]string{}, map[string]*dataInstance{}
	var cur *dataInstance
	var list string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "------<"):
			cur = nil
		case strings.HasPrefix(l, " VRRP Instance = "):
			cur = &dataInstance{props: map[string]string{}}
			insts[strings.TrimPrefix(l, " VRRP Instance = ")] = cur
		case cur == nil && strings.HasPrefix(l, " ") && strings.Contains(l, " = "):
			k, v, _ := strings.Cut(strings.TrimSpace(l), " = ")
			global[k] = v
		case cur != nil && strings.HasPrefix(l, "     "):
			if strings.HasPrefix(list, "Virtual IP (") {
				cur.vips = append(cur.vips, strings.TrimSpace(l))
			}
		case cur != nil && strings.HasPrefix(l, "   "):
			if k, v, ok := strings.Cut(strings.TrimSpace(l), " = "); ok {
				cur.props[k] = v
				list = ""
			} else {
				list = strings.TrimSpace(l)
			}
		}
	}
	return global, insts
}

// parseStats reads keepalived.stats: "VRRP Instance: NAME", then
// "  Section:" headers with "    Key: n" counters, and "  Key: n" lines.
func parseStats(t *testing.T, b []byte) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	var inst, section string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "VRRP Instance: "):
			inst = strings.TrimPrefix(l, "VRRP Instance: ")
			out[inst] = map[string]int{}
		case strings.HasPrefix(l, "  ") && strings.HasSuffix(l, ":"):
			section = strings.TrimSuffix(strings.TrimSpace(l), ":")
		case inst != "" && strings.HasPrefix(l, "  "):
			k, v, ok := strings.Cut(strings.TrimSpace(l), ": ")
			n, err := strconv.Atoi(v)
			if !ok || err != nil {
				t.Errorf("keepalived.stats line %q: not \"key: integer\"", l)
				continue
			}
			if strings.HasPrefix(l, "    ") {
				k = section + "/" + k
			}
			out[inst][k] = n
		}
	}
	return out
}

// jsonInstance is keepalived.json's element as the exporters decode it.
type jsonInstance struct {
	Data struct {
		Iname          string   `json:"iname"`
		State          int      `json:"state"`
		Wantstate      int      `json:"wantstate"`
		IfpIfname      string   `json:"ifp_ifname"`
		Vrid           int      `json:"vrid"`
		Vips           []string `json:"vips"`
		LastTransition float64  `json:"last_transition"`
	} `json:"data"`
	Stats struct {
		AdvertRcvd   int `json:"advert_rcvd"`
		AdvertSent   int `json:"advert_sent"`
		BecomeMaster int `json:"become_master"`
		PriZeroRcvd  int `json:"pri_zero_rcvd"`
	} `json:"stats"`
}

// TestDumpsOnSignals sends keepalived's dump signals to a running MASTER
// (with a BACKUP peer) and reads the files where keepalived would write
// them, $TMPDIR: SIGUSR1 keepalived.data, SIGUSR2 keepalived.stats, signal
// 36 (SIGRTMIN+2) keepalived.json, each parsed the way the keepalived
// exporters parse them and compared with `vigil status --json`.
func TestDumpsOnSignals(t *testing.T) {
	t.Parallel()
	x := newPairLab(t, "dumps")
	d1 := newDaemon(t, x.n1, pairConf("n1", "MASTER", 150))
	d1.start()
	d1.waitFor("n1 MASTER", 20*time.Second, inState("MASTER", "VI_1"))
	d2 := newDaemon(t, x.n2, pairConf("n2", "BACKUP", 100))
	d2.start()
	d2.waitFor("n2 BACKUP", 20*time.Second, inState("BACKUP", "VI_1"))
	d1.waitFor("adverts flowing", 10*time.Second, func(s status.Snapshot) bool {
		in, _ := instance(s, "VI_1")
		return in.Counters.AdvertsSent >= 5
	})
	st := d1.status()
	in, _ := instance(st, "VI_1")

	global, insts := parseData(t, dumpFile(t, d1, syscall.SIGUSR1, "keepalived.data"))
	if global["Router ID"] != "n1" {
		t.Errorf("keepalived.data: Router ID %q, want n1", global["Router ID"])
	}
	vi := insts["VI_1"]
	if vi == nil {
		t.Fatalf("keepalived.data has no VRRP Instance = VI_1: %v", insts)
	}
	for k, want := range map[string]string{
		"State": "MASTER", "Wantstate": "MASTER", "Interface": "eth0", "Virtual Router ID": "61",
		"Priority": "150", "Effective priority": "150", "VRRP Version": "3", "Advert interval": "200 milli-sec",
	} {
		if got := vi.props[k]; got != want {
			t.Errorf("keepalived.data VI_1: %s = %q, want %q", k, got, want)
		}
	}
	if len(vi.vips) != 1 || !strings.HasPrefix(vi.vips[0], "192.168.50.100/24 dev eth0 ") || !strings.HasSuffix(vi.vips[0], " set") {
		t.Errorf("keepalived.data VI_1 virtual IPs %q, want [192.168.50.100/24 dev eth0 ... set]", vi.vips)
	}

	// Adverts keepalived counts as errors, from a third host: three with
	// TTL 64, three listing another address (VRRPv3: the interval is not
	// checked).
	inj, err := e2e.NewInjector(x.web, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	defer inj.Close()
	src, group := netip.MustParseAddr("192.168.50.11"), netip.MustParseAddr("224.0.0.18")
	bad := func(interval uint16, vip string) []byte {
		a := packet.Advert{Version: 3, Type: 1, VRID: 61, Priority: 10, CountIPAddrs: 1, AdvertInt: interval,
			Addrs: []netip.Addr{netip.MustParseAddr(vip)}}
		b, err := a.Marshal(src, group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for range 3 {
		for _, p := range []struct {
			ttl int
			b   []byte
		}{{64, bad(20, "192.168.50.100")}, {255, bad(20, "192.168.50.99")}} {
			if err := inj.Send(src, group, p.ttl, 112, p.b); err != nil {
				t.Fatal(err)
			}
		}
	}
	d1.waitFor("the bad adverts counted", 10*time.Second, func(s status.Snapshot) bool {
		in, _ := instance(s, "VI_1")
		return in.Counters.Dropped["bad_ttl"] >= 3 && in.Counters.Dropped["addr_list_mismatch"] >= 3
	})

	stats := parseStats(t, dumpFile(t, d1, syscall.SIGUSR2, "keepalived.stats"))
	s1 := stats["VI_1"]
	if s1 == nil {
		t.Fatalf("keepalived.stats has no VRRP Instance: VI_1: %v", stats)
	}
	if s1["Packet Errors/TTL"] != 3 || s1["Packet Errors/Address List"] != 3 {
		t.Errorf("keepalived.stats VI_1 after 3 adverts each with TTL 64 and another address: %v", s1)
	}
	if s1["Advertisements/Sent"] < int(in.Counters.AdvertsSent) || s1["Became master"] != 1 || s1["Priority Zero/Sent"] != 0 {
		t.Errorf("keepalived.stats VI_1: %v; want Advertisements/Sent >= %d (status), Became master 1, Priority Zero/Sent 0", s1, in.Counters.AdvertsSent)
	}
	for _, k := range []string{"Advertisements/Received", "Released master", "Packet Errors/Length", "Packet Errors/TTL",
		"Authentication Errors/Failure", "Priority Zero/Received"} {
		if _, ok := s1[k]; !ok {
			t.Errorf("keepalived.stats VI_1 lacks %q", k)
		}
	}

	var js []jsonInstance
	b := dumpFile(t, d1, syscall.Signal(36), "keepalived.json")
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatalf("keepalived.json: %v\n%s", err, b)
	}
	if len(js) != 1 {
		t.Fatalf("keepalived.json: %d instances, want 1:\n%s", len(js), b)
	}
	j := js[0]
	// keepalived's numeric states: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT.
	if j.Data.Iname != "VI_1" || j.Data.State != 2 || j.Data.Wantstate != 2 || j.Data.Vrid != 61 || j.Data.IfpIfname != "eth0" ||
		len(j.Data.Vips) != 1 || !strings.HasPrefix(j.Data.Vips[0], "192.168.50.100") {
		t.Errorf("keepalived.json data: %+v", j.Data)
	}
	if since := time.Unix(int64(j.Data.LastTransition), 0); since.Sub(in.Since).Abs() > time.Second {
		t.Errorf("keepalived.json last_transition %v, status says %v", since, in.Since)
	}
	if j.Stats.AdvertSent < int(in.Counters.AdvertsSent) || j.Stats.BecomeMaster != 1 {
		t.Errorf("keepalived.json stats: %+v; want advert_sent >= %d, become_master 1", j.Stats, in.Counters.AdvertsSent)
	}
	t.Logf("dumps in %s: VI_1 MASTER, %d adverts sent per keepalived.stats", d1.tmp, s1["Advertisements/Sent"])
}
