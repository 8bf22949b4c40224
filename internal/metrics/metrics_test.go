package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigil-ha/vigil/internal/status"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func fakeSnapshot() status.Snapshot {
	return status.Snapshot{
		Daemon: status.Daemon{Version: "1.2.3", PID: 99, Started: t0, ConfigFile: "/etc/vigil/vigil.conf",
			Reloads: 2, LastReload: t0.Add(time.Hour), StaticRouteErrors: 3, LateTimerWakeups: 7,
			ReloadFailures: 4, LastReloadError: "/etc/vigil/vigil.conf:3:1: error: x", LastReloadFailed: t0.Add(2 * time.Hour),
			Dropped:   map[string]uint64{"unknown_vrid": 4, "too_short": 1},
			NADropped: map[string]uint64{"target": 6}},
		Instances: []status.Instance{
			{
				Name: "VI_1", Interface: "eth0", Family: "inet", Version: 2, VRID: 55, State: "MASTER",
				BasePriority: 100, EffectivePriority: 90, AdvertInterval: status.Duration(time.Second),
				VIPs: []string{"192.168.1.100/24"}, SyncGroup: "G1", Since: t0.Add(90 * time.Second),
				Trackers: []status.Tracker{
					{Kind: "script", Name: "chk_nginx", OK: false, Weight: -10},
					{Kind: "interface", Name: "eth1", OK: true, Weight: 0},
				},
				MasterPriority: 90, GARPDelay: status.Duration(5 * time.Second), HeldVIPs: []string{"192.168.1.100/24"},
				MissingRoutes: []string{"10.2.0.0/16 via 192.168.9.9 table 100"},
				Peers:         []status.Peer{{Addr: "192.168.1.106", Priority: 80, LastHeard: t0.Add(2 * time.Second), Adverts: 7}},
				Counters: status.Counters{AdvertsSent: 1200, AdvertsReceived: 7, Transitions: 3, BecameMaster: 2, ReleasedMaster: 1,
					PriorityZeroRx: 1, PriorityZeroTx: 4, Announcements: 10, NotifyFailures: 1,
					Dropped: map[string]uint64{"auth_failure": 5, "ip_ttl_err": 1}},
			},
			{
				Name: "VI_6", Interface: "eth0", Family: "inet6", Version: 3, VRID: 56, State: "BACKUP",
				BasePriority: 99, EffectivePriority: 99, AdvertInterval: status.Duration(100 * time.Millisecond),
				VIPs: []string{"fd00::100/64", "fd00::101/64"}, Since: t0,
				Counters: status.Counters{AdvertsReceived: 40},
			},
			{Name: "VI_STOP", Interface: "eth2", Version: 2, VRID: 7, State: "stop"},
		},
		SyncGroups: []status.SyncGroup{{Name: "G1", State: "MASTER", Instances: []string{"VI_1"}}},
		Reconciler: &status.Reconciler{Backend: "nftables", Applies: 12, Errors: 1, Repairs: 2, LastApply: t0.Add(time.Minute)},
		BGP:        testBGP(),
		ConnSync: &status.ConnSync{Daemon: "conntrackd", Interface: "eth2", Peer: "10.9.0.2", Follows: "G1", Role: "MASTER",
			Alive: false, Restarts: 2, LinkUp: true, Internal: 31, External: 4, SendErrors: 1, RecvErrors: 2, LostMsgs: 3,
			LastResync: t0.Add(2 * time.Minute), CommandFailures: map[string]uint64{"-c": 1},
			Warnings: []string{"conntrackd is not running (signal: killed); restarted 2 times"}},
		VirtualServers: []status.VirtualServer{{
			Name: "[192.168.1.100]:tcp:80", Algo: "wrr", Kind: "NAT", Backend: "nftables", QuorumUp: true, Active: true,
			VIP: "192.168.1.100", Port: 80, Protocol: "TCP",
			Sorry: "192.168.1.200:80", SorryActive: false,
			Kernel: &status.Kernel{Connections: 30, PacketsIn: 300, PacketsOut: 250, BytesIn: 20000, BytesOut: 900000},
			RealServers: []status.RealServer{
				{Addr: "192.168.2.10:80", Weight: 3, Healthy: true, Since: t0.Add(time.Minute), Checkers: []status.Checker{
					{Kind: "HTTP_GET", Name: "HTTP_GET 192.168.2.10:80", OK: true, LastRun: t0.Add(5 * time.Second), Duration: status.Duration(12 * time.Millisecond)},
					{Kind: "TCP_CHECK", OK: true},
					{Kind: "TCP_CHECK", OK: false, Failures: 2},
				}, Kernel: &status.Kernel{Connections: 30, PacketsIn: 300, PacketsOut: 250, BytesIn: 20000, BytesOut: 900000}},
				{Addr: "192.168.2.11:80", Weight: 0, Healthy: false, Reason: "connection refused",
					Checkers: []status.Checker{{Kind: "HTTP_GET", OK: false, Failures: 3}}, Kernel: &status.Kernel{}},
			},
		}, {
			Name: "FWM 7", Algo: "rr", Kind: "NAT", Backend: "nftables", QuorumUp: false, FWMark: 7,
			RealServers: []status.RealServer{{Addr: "192.168.2.12:0", Healthy: false}},
		}},
		Heartbeat: &status.Heartbeat{
			Node: "node1",
			Nodes: []status.HeartbeatNode{
				{Name: "node1", Status: "active"},
				{Name: "node2", Status: "dead", LastHeard: map[string]time.Time{"bcast eth1": t0.Add(-time.Minute)}},
			},
			Pings:  []status.HeartbeatPing{{Addr: "192.168.1.1", Reachable: true}},
			Groups: []status.HeartbeatGroup{{Name: "web", Home: "node2", Owner: "node1", State: "running", Resources: []string{"IPaddr::192.168.1.50"}}},
		},
	}
}

type fakeSource struct {
	snap status.Snapshot
	err  error
	ctx  context.Context // the last context the collector passed
}

func (f *fakeSource) Snapshot(ctx context.Context) (status.Snapshot, error) {
	f.ctx = ctx
	return f.snap, f.err
}

// scrape fetches the handler's output in the text format and parses it with
// Prometheus' own parser.
func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("Prometheus text parser: %v\n%s", err, body)
	}
	return mfs, string(body)
}

// samples flattens families to `name{k="v",...} value` keyed lines with
// labels sorted, and the family types.
func samples(mfs map[string]*dto.MetricFamily, prefix string) (map[string]float64, map[string]dto.MetricType) {
	vals := map[string]float64{}
	types := map[string]dto.MetricType{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		types[name] = mf.GetType()
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == "" {
					continue // Prometheus stores an empty label as absent
				}
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(ls)
			v := m.GetGauge().GetValue()
			if mf.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			vals[name+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return vals, types
}

const (
	vi1 = `interface="eth0",vrid="55",vrrp_instance="VI_1"`
	vs  = `vip="192.168.1.100",port="80",protocol="TCP"`
)

func TestScrapeShowsTheSnapshot(t *testing.T) {
	src := &fakeSource{snap: fakeSnapshot()}
	mfs, body := scrape(t, Handler(src.Snapshot))
	got, types := samples(mfs, "vigil_")

	want := map[string]float64{
		`vigil_up{}`:                                                        1,
		`vigil_build_info{version="1.2.3"}`:                                 1,
		`vigil_start_time_seconds{}`:                                        float64(t0.Unix()),
		`vigil_config_reloads_total{}`:                                      2,
		`vigil_config_last_reload_timestamp_seconds{}`:                      float64(t0.Unix() + 3600),
		`vigil_config_reload_failures_total{}`:                              4,
		`vigil_config_last_reload_successful{}`:                             0,
		`vigil_static_route_errors_total{}`:                                 3,
		`vigil_vrrp_timer_late_wakeups_total{}`:                             7,
		`vigil_vrrp_unmatched_adverts_dropped_total{reason="unknown_vrid"}`: 4,
		`vigil_vrrp_unmatched_adverts_dropped_total{reason="too_short"}`:    1,
		`vigil_vrrp_conflict_watch_na_dropped_total{reason="target"}`:       6,
		`vigil_vrrp_instance_info{family="inet",interface="eth0",sync_group="G1",vrid="55",vrrp_instance="VI_1",vrrp_version="2"}`: 1,
		`vigil_vrrp_instance_state{interface="eth0",state="MASTER",vrid="55",vrrp_instance="VI_1"}`:                                1,
		`vigil_vrrp_instance_state{interface="eth0",state="BACKUP",vrid="55",vrrp_instance="VI_1"}`:                                0,
		`vigil_vrrp_effective_priority{` + vi1 + `}`:                                                                               90,
		`vigil_vrrp_base_priority{` + vi1 + `}`:                                                                                    100,
		`vigil_vrrp_advert_interval_seconds{` + vi1 + `}`:                                                                          1,
		`vigil_vrrp_virtual_addresses{` + vi1 + `}`:                                                                                1,
		`vigil_vrrp_last_transition_timestamp_seconds{` + vi1 + `}`:                                                                float64(t0.Unix() + 90),
		`vigil_vrrp_transitions_total{` + vi1 + `}`:                                                                                3,
		`vigil_vrrp_became_master_total{` + vi1 + `}`:                                                                              2,
		`vigil_vrrp_released_master_total{` + vi1 + `}`:                                                                            1,
		`vigil_vrrp_master_priority{` + vi1 + `}`:                                                                                  90,
		`vigil_lb_reconcile_applies_total{backend="nftables"}`:                                                                     12,
		`vigil_lb_reconcile_errors_total{backend="nftables"}`:                                                                      1,
		`vigil_lb_reconcile_repairs_total{backend="nftables"}`:                                                                     2,
		`vigil_lb_reconcile_last_apply_timestamp_seconds{backend="nftables"}`:                                                      float64(t0.Unix() + 60),
		`vigil_conntrack_sync_up{interface="eth2"}`:                                                                                0,
		`vigil_conntrack_sync_restarts_total{interface="eth2"}`:                                                                    2,
		`vigil_conntrack_sync_link_up{interface="eth2"}`:                                                                           1,
		`vigil_conntrack_sync_cache_entries{cache="internal",interface="eth2"}`:                                                    31,
		`vigil_conntrack_sync_cache_entries{cache="external",interface="eth2"}`:                                                    4,
		`vigil_conntrack_sync_last_resync_timestamp_seconds{interface="eth2"}`:                                                     float64(t0.Unix() + 120),
		`vigil_conntrack_sync_channel_errors_total{interface="eth2",kind="send"}`:                                                  1,
		`vigil_conntrack_sync_channel_errors_total{interface="eth2",kind="lost"}`:                                                  3,
		`vigil_conntrack_sync_command_failures_total{command="-c",interface="eth2"}`:                                               1,
		`vigil_conntrack_sync_command_failures_total{command="-B",interface="eth2"}`:                                               0,
		`vigil_conntrack_sync_warning{interface="eth2"}`:                                                                           1,
		`vigil_vrrp_adverts_sent_total{` + vi1 + `}`:                                                                               1200,
		`vigil_vrrp_adverts_received_total{` + vi1 + `}`:                                                                           7,
		`vigil_vrrp_adverts_dropped_total{interface="eth0",reason="auth_failure",vrid="55",vrrp_instance="VI_1"}`:                  5,
		`vigil_vrrp_adverts_dropped_total{interface="eth0",reason="ip_ttl_err",vrid="55",vrrp_instance="VI_1"}`:                    1,
		`vigil_vrrp_priority_zero_sent_total{` + vi1 + `}`:                                                                         4,
		`vigil_vrrp_priority_zero_received_total{` + vi1 + `}`:                                                                     1,
		`vigil_vrrp_advert_interval_seconds{interface="eth0",vrid="56",vrrp_instance="VI_6"}`:                                      0.1,
		`vigil_vrrp_virtual_addresses{interface="eth0",vrid="56",vrrp_instance="VI_6"}`:                                            2,
		`vigil_vrrp_sync_group_state{state="MASTER",sync_group="G1"}`:                                                              1,
		`vigil_vrrp_sync_group_state{state="BACKUP",sync_group="G1"}`:                                                              0,
		`vigil_vrrp_tracker_up{kind="script",tracker="chk_nginx",vrrp_instance="VI_1"}`:                                            0,
		`vigil_vrrp_tracker_weight{kind="script",tracker="chk_nginx",vrrp_instance="VI_1"}`:                                        -10,
		`vigil_vrrp_tracker_up{kind="interface",tracker="eth1",vrrp_instance="VI_1"}`:                                              1,

		`vigil_virtual_server_quorum_up{vip="192.168.1.100",port="80",protocol="TCP"}`:                                                                      1,
		`vigil_virtual_server_active{vip="192.168.1.100",port="80",protocol="TCP"}`:                                                                         1,
		`vigil_virtual_server_sorry_server_active{vip="192.168.1.100",port="80",protocol="TCP"}`:                                                            0,
		`vigil_real_server_up{real_server="192.168.2.10:80",vip="192.168.1.100",port="80",protocol="TCP"}`:                                                  1,
		`vigil_real_server_weight{real_server="192.168.2.10:80",vip="192.168.1.100",port="80",protocol="TCP"}`:                                              3,
		`vigil_real_server_up{real_server="192.168.2.11:80",vip="192.168.1.100",port="80",protocol="TCP"}`:                                                  0,
		`vigil_real_server_weight{real_server="192.168.2.11:80",vip="192.168.1.100",port="80",protocol="TCP"}`:                                              0,
		`vigil_checker_up{checker="HTTP_GET",index="0",real_server="192.168.2.10:80",vip="192.168.1.100",port="80",protocol="TCP"}`:                         1,
		`vigil_checker_last_run_timestamp_seconds{checker="HTTP_GET",index="0",real_server="192.168.2.10:80",vip="192.168.1.100",port="80",protocol="TCP"}`: float64(t0.Unix() + 5),
		`vigil_checker_up{checker="TCP_CHECK",index="0",real_server="192.168.2.10:80",vip="192.168.1.100",port="80",protocol="TCP"}`:                        1,
		`vigil_checker_up{checker="TCP_CHECK",index="1",real_server="192.168.2.10:80",vip="192.168.1.100",port="80",protocol="TCP"}`:                        0,
		`vigil_checker_consecutive_failures{checker="TCP_CHECK",index="1",real_server="192.168.2.10:80",vip="192.168.1.100",port="80",protocol="TCP"}`:      2,
		`vigil_checker_consecutive_failures{checker="HTTP_GET",index="0",real_server="192.168.2.11:80",vip="192.168.1.100",port="80",protocol="TCP"}`:       3,

		`vigil_virtual_server_connections_total{` + vs + `}`:                                                                  30,
		`vigil_virtual_server_packets_total{direction="in",` + vs + `}`:                                                       300,
		`vigil_virtual_server_bytes_total{direction="out",` + vs + `}`:                                                        900000,
		`vigil_real_server_connections_total{real_server="192.168.2.10:80",` + vs + `}`:                                       30,
		`vigil_real_server_connections_total{real_server="192.168.2.11:80",` + vs + `}`:                                       0,
		`vigil_real_server_packets_total{direction="out",real_server="192.168.2.10:80",` + vs + `}`:                           250,
		`vigil_real_server_bytes_total{direction="in",real_server="192.168.2.10:80",` + vs + `}`:                              20000,
		`vigil_real_server_last_change_timestamp_seconds{real_server="192.168.2.10:80",` + vs + `}`:                           float64(t0.Unix() + 60),
		`vigil_checker_last_duration_seconds{checker="HTTP_GET",index="0",real_server="192.168.2.10:80",` + vs + `}`:          0.012,
		`vigil_virtual_server_quorum_up{fwmark="7"}`:                                                                          0,
		`vigil_real_server_up{fwmark="7",real_server="192.168.2.12:0"}`:                                                       0,
		`vigil_vrrp_gratuitous_announcements_sent_total{` + vi1 + `}`:                                                         10,
		`vigil_vrrp_notify_script_failures_total{` + vi1 + `}`:                                                                1,
		`vigil_vrrp_gratuitous_arp_delay_seconds{` + vi1 + `}`:                                                                5,
		`vigil_vrrp_virtual_addresses_held{` + vi1 + `}`:                                                                      1,
		`vigil_vrrp_virtual_routes_missing{` + vi1 + `}`:                                                                      1,
		`vigil_vrrp_peer_priority{interface="eth0",peer="192.168.1.106",vrid="55",vrrp_instance="VI_1"}`:                      80,
		`vigil_vrrp_peer_last_advert_timestamp_seconds{interface="eth0",peer="192.168.1.106",vrid="55",vrrp_instance="VI_1"}`: float64(t0.Unix() + 2),

		`vigil_heartbeat_node_status{node="node1",status="active"}`:                           1,
		`vigil_heartbeat_node_status{node="node1",status="dead"}`:                             0,
		`vigil_heartbeat_node_status{node="node2",status="dead"}`:                             1,
		`vigil_heartbeat_node_last_heard_timestamp_seconds{medium="bcast eth1",node="node2"}`: float64(t0.Unix() - 60),
		`vigil_heartbeat_ping_node_reachable{ping_node="192.168.1.1"}`:                        1,
		`vigil_heartbeat_group_local{group="web"}`:                                            1,
		`vigil_heartbeat_group_info{group="web",home="node2",owner="node1",state="running"}`:  1,
	}
	// Labels in the keys above are in any order; samples sorts them.
	sorted := map[string]float64{}
	for k, v := range want {
		sorted[sortLabels(k)] = v
	}
	want = sorted
	sub := map[string]float64{}
	for k := range want {
		if v, ok := got[k]; ok {
			sub[k] = v
		}
	}
	if diff := cmp.Diff(want, sub); diff != "" {
		t.Errorf("(-want +got)\n%s\nscraped:\n%s", diff, body)
	}

	// One-hot: each instance has exactly one state at 1 and a series for
	// each of keepalived's four states; an unknown state gets its own.
	ones := map[string]int{}
	series := map[string]int{}
	for k, v := range got {
		if !strings.HasPrefix(k, "vigil_vrrp_instance_state{") {
			continue
		}
		inst := k[strings.Index(k, "vrrp_instance="):]
		series[inst]++
		if v == 1 {
			ones[inst]++
		}
	}
	if diff := cmp.Diff(map[string]int{`vrrp_instance="VI_1"}`: 1, `vrrp_instance="VI_6"}`: 1, `vrrp_instance="VI_STOP"}`: 1}, ones); diff != "" {
		t.Errorf("states at 1 per instance (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{`vrrp_instance="VI_1"}`: 4, `vrrp_instance="VI_6"}`: 4, `vrrp_instance="VI_STOP"}`: 5}, series); diff != "" {
		t.Errorf("state series per instance (-want +got)\n%s", diff)
	}
	if got[`vigil_vrrp_instance_state{interface="eth2",state="STOP",vrid="7",vrrp_instance="VI_STOP"}`] != 1 {
		t.Errorf("unknown state STOP not reported:\n%s", body)
	}

	// Types: _total are counters, everything else gauges.
	for name, typ := range types {
		want := dto.MetricType_GAUGE
		if strings.HasSuffix(name, "_total") {
			want = dto.MetricType_COUNTER
		}
		if typ != want {
			t.Errorf("%s: type %v, want %v", name, typ, want)
		}
	}

	// Every described metric appears with this full snapshot.
	var described []string
	ch := make(chan *prometheus.Desc, 100)
	NewCollector(src.Snapshot).Describe(ch)
	close(ch)
	for d := range ch {
		s := d.String()
		name := s[strings.Index(s, `fqName: "`)+9:]
		name = name[:strings.IndexByte(name, '"')]
		described = append(described, name)
		if _, ok := types[name]; !ok {
			t.Errorf("%s described but not exposed", name)
		}
	}
	if len(described) != len(types) {
		t.Errorf("exposed %d vigil_ families, described %d", len(types), len(described))
	}

	// The standard runtime and process metrics come along.
	for _, n := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := mfs[n]; !ok {
			t.Errorf("%s missing", n)
		}
	}

	// The snapshot was taken with a bounded context.
	if _, ok := src.ctx.Deadline(); !ok {
		t.Error("snapshot context has no deadline")
	}
}

func TestLint(t *testing.T) {
	src := &fakeSource{snap: fakeSnapshot()}
	_, body := scrape(t, Handler(src.Snapshot))
	var vigil []string
	for _, line := range strings.SplitAfter(body, "\n") {
		if strings.Contains(line, "vigil_") {
			vigil = append(vigil, line)
		}
	}
	problems, err := promlint.New(strings.NewReader(strings.Join(vigil, ""))).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	// The collector on its own, as a registry user would register it.
	problems, err = testutil.CollectAndLint(NewCollector(src.Snapshot))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("CollectAndLint: %s: %s", p.Metric, p.Text)
	}
}

func TestEngineErrorKeepsTheScrapeUp(t *testing.T) {
	src := &fakeSource{err: errors.New("engine: busy")}
	mfs, body := scrape(t, Handler(src.Snapshot))
	got, _ := samples(mfs, "vigil_")
	if diff := cmp.Diff(map[string]float64{"vigil_up{}": 0}, got); diff != "" {
		t.Errorf("(-want +got)\n%s\n%s", diff, body)
	}
	if _, ok := mfs["go_goroutines"]; !ok {
		t.Error("runtime metrics lost when the engine fails")
	}
}

func TestDuplicatesDoNotBreakTheScrape(t *testing.T) {
	s := fakeSnapshot()
	s.Instances = append(s.Instances, s.Instances[0]) // same name, interface, VRID
	s.Instances[1].Name = "VI_\xff"                   // not UTF-8, made valid
	src := &fakeSource{snap: s}
	mfs, _ := scrape(t, Handler(src.Snapshot))
	got, _ := samples(mfs, "vigil_vrrp_base_priority")
	if len(got) != 3 {
		t.Errorf("got %d base_priority series, want 3 (duplicate dropped): %v", len(got), got)
	}
}

func TestRegistersInAnInjectedRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	src := &fakeSource{snap: fakeSnapshot()}
	if err := reg.Register(NewCollector(src.Snapshot)); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg, "vigil_vrrp_instance_state")
	if err != nil {
		t.Fatal(err)
	}
	if n != 13 {
		t.Errorf("got %d vigil_vrrp_instance_state series, want 13", n)
	}
}

func TestReadOnly(t *testing.T) {
	src := &fakeSource{snap: fakeSnapshot()}
	rec := httptest.NewRecorder()
	Handler(src.Snapshot).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/metrics", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

// sortLabels sorts the labels of a `name{k="v",...}` key (values hold no
// comma here).
func sortLabels(k string) string {
	i := strings.IndexByte(k, '{')
	body := strings.TrimSuffix(k[i+1:], "}")
	if body == "" {
		return k
	}
	ls := strings.Split(body, ",")
	sort.Strings(ls)
	return k[:i+1] + strings.Join(ls, ",") + "}"
}
