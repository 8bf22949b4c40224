package ops

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigil-ha/vigil/internal/status"
)

// families is a parsed scrape.
type families map[string]*dto.MetricFamily

// scrape fetches url from inside the host and parses it with Prometheus'
// own text parser (which refuses malformed exposition, duplicate series
// and invalid metric names under the legacy validation scheme).
func scrape(t *testing.T, d *daemon, url string) families {
	t.Helper()
	body, hdr := get(t, d.h, url)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the Prometheus text parser rejects /metrics: %v\n%s", err, body)
	}
	return fams
}

// series returns the value of the series of family name whose labels
// include want, and whether exactly one matched.
func (f families) value(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	mf := f[name]
	if mf == nil {
		t.Errorf("no metric family %s", name)
		return -1
	}
	var found []float64
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			found = append(found, m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			found = append(found, m.GetGauge().GetValue())
		default:
			found = append(found, m.GetUntyped().GetValue())
		}
	}
	if len(found) != 1 {
		t.Errorf("%s%v: %d series match, want 1; the family has:\n%s", name, want, len(found), describe(mf))
		return -1
	}
	return found[0]
}

// labelNames returns the sorted label names of a family's first series.
func (f families) labelNames(name string) []string {
	mf := f[name]
	if mf == nil || len(mf.GetMetric()) == 0 {
		return nil
	}
	var out []string
	for _, lp := range mf.GetMetric()[0].GetLabel() {
		out = append(out, lp.GetName())
	}
	sort.Strings(out)
	return out
}

func describe(mf *dto.MetricFamily) string {
	var b strings.Builder
	for _, m := range mf.GetMetric() {
		fmt.Fprintf(&b, "  %v\n", m.GetLabel())
	}
	return b.String()
}

// TestMetricsOnTheRealDaemon scrapes --metrics-listen of a daemon that has
// been MASTER and was preempted (so BACKUP now, with transitions behind
// it), and checks the exposition with Prometheus' parser: the state
// gauges, the transition and advert counters against `vigil status
// --json`, and the real server health series with their labels (one real
// server up, one down). The two real servers share an address (ports 80 and
// 81), as several services of one host do: vigil once refused that at
// start ("real server listed twice").
func TestMetricsOnTheRealDaemon(t *testing.T) {
	t.Parallel()
	x := newPairLab(t, "metrics")
	d2 := newDaemon(t, x.n2, pairConf("n2", "BACKUP", 100))
	d2.start("--metrics-listen", "127.0.0.1:9650")
	d2.waitFor("n2 MASTER alone", 20*time.Second, inState("MASTER", "VI_1"))
	d1 := newDaemon(t, x.n1, pairConf("n1", "MASTER", 150))
	d1.start()
	// The transition the test causes: n1's higher priority preempts n2.
	d2.waitFor("n2 preempted to BACKUP", 20*time.Second, inState("BACKUP", "VI_1"))
	d2.waitFor("real servers checked", 20*time.Second, func(s status.Snapshot) bool {
		up, _ := realServer(s, pairVS, pairRealUp)
		down, ok := realServer(s, pairVS, pairRealDown)
		return up.Healthy && ok && !down.Healthy
	})

	st := d2.status()
	fams := scrape(t, d2, "http://127.0.0.1:9650/metrics")
	in, _ := instance(st, "VI_1")
	il := map[string]string{"vrrp_instance": "VI_1", "interface": "eth0", "vrid": "61"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range il {
			m[a] = b
		}
		return m
	}

	if v := fams.value(t, "vigil_up", nil); v != 1 {
		t.Errorf("vigil_up = %v", v)
	}
	for state, want := range map[string]float64{"BACKUP": 1, "MASTER": 0, "INIT": 0, "FAULT": 0} {
		if v := fams.value(t, "vigil_vrrp_instance_state", with("state", state)); v != want {
			t.Errorf("vigil_vrrp_instance_state{state=%q} = %v, want %v", state, v, want)
		}
	}
	// INIT→BACKUP, BACKUP→MASTER, MASTER→BACKUP at least; the scrape
	// and the status agree (no transition happens between them here).
	if v := fams.value(t, "vigil_vrrp_transitions_total", il); v < 3 || v != float64(in.Counters.Transitions) {
		t.Errorf("vigil_vrrp_transitions_total = %v; status says %d; want >= 3 and equal", v, in.Counters.Transitions)
	}
	if v := fams.value(t, "vigil_vrrp_became_master_total", il); v != 1 {
		t.Errorf("vigil_vrrp_became_master_total = %v, want 1", v)
	}
	// Adverts move between the status and the scrape: the scrape is
	// taken later, so it is at least the status's count.
	if v := fams.value(t, "vigil_vrrp_adverts_sent_total", il); v < 1 || v < float64(in.Counters.AdvertsSent) {
		t.Errorf("vigil_vrrp_adverts_sent_total = %v; status %d; want > 0 (n2 was MASTER)", v, in.Counters.AdvertsSent)
	}
	if v := fams.value(t, "vigil_vrrp_adverts_received_total", il); v < 1 || v < float64(in.Counters.AdvertsReceived) {
		t.Errorf("vigil_vrrp_adverts_received_total = %v; status %d; want > 0 (n1's adverts)", v, in.Counters.AdvertsReceived)
	}
	if v := fams.value(t, "vigil_vrrp_effective_priority", il); v != 100 {
		t.Errorf("vigil_vrrp_effective_priority = %v, want 100", v)
	}
	if v := fams.value(t, "vigil_vrrp_last_transition_timestamp_seconds", il); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("vigil_vrrp_last_transition_timestamp_seconds = %v: not the recent preemption", v)
	}
	if v := fams.value(t, "vigil_vrrp_instance_info", with("vrrp_version", "3")); v != 1 {
		t.Errorf("vigil_vrrp_instance_info{vrrp_version=3} = %v", v)
	}

	rs := func(addr string) map[string]string {
		return map[string]string{"vip": "192.168.50.100", "port": "80", "protocol": "TCP", "real_server": addr}
	}
	vsl := map[string]string{"vip": "192.168.50.100", "port": "80", "protocol": "TCP"}
	if v := fams.value(t, "vigil_real_server_up", rs(pairRealUp)); v != 1 {
		t.Errorf("vigil_real_server_up{%s} = %v, want 1", pairRealUp, v)
	}
	if v := fams.value(t, "vigil_real_server_up", rs(pairRealDown)); v != 0 {
		t.Errorf("vigil_real_server_up{%s} = %v, want 0 (nothing listens on :81)", pairRealDown, v)
	}
	if v := fams.value(t, "vigil_real_server_weight", rs(pairRealUp)); v != 2 {
		t.Errorf("vigil_real_server_weight{%s} = %v, want 2", pairRealUp, v)
	}
	if v := fams.value(t, "vigil_real_server_weight", rs(pairRealDown)); v != 0 {
		t.Errorf("vigil_real_server_weight{%s} = %v, want 0 (down, removed)", pairRealDown, v)
	}
	if v := fams.value(t, "vigil_virtual_server_quorum_up", vsl); v != 1 {
		t.Errorf("vigil_virtual_server_quorum_up = %v, want 1", v)
	}
	if v := fams.value(t, "vigil_checker_up", rs(pairRealDown)); v != 0 {
		t.Errorf("vigil_checker_up{%s} = %v, want 0", pairRealDown, v)
	}
	if v := fams.value(t, "vigil_checker_consecutive_failures", rs(pairRealDown)); v < 1 {
		t.Errorf("vigil_checker_consecutive_failures{%s} = %v, want >= 1", pairRealDown, v)
	}
	for name, want := range map[string]string{
		"vigil_vrrp_instance_state":    "interface state vrid vrrp_instance",
		"vigil_vrrp_transitions_total": "interface vrid vrrp_instance",
		"vigil_real_server_up":         "fwmark group port protocol real_server vip",
		"vigil_checker_up":             "checker fwmark group index port protocol real_server vip",
	} {
		if got := strings.Join(fams.labelNames(name), " "); got != want {
			t.Errorf("%s labels: %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"vigil_vrrp_transitions_total", "vigil_vrrp_adverts_sent_total", "vigil_vrrp_adverts_received_total"} {
		if mf := fams[name]; mf != nil && mf.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s is a %v, want a counter", name, mf.GetType())
		}
	}
	if mf := fams["vigil_vrrp_instance_state"]; mf != nil && mf.GetType() != dto.MetricType_GAUGE {
		t.Errorf("vigil_vrrp_instance_state is a %v, want a gauge", mf.GetType())
	}
	t.Logf("scrape: %d families; VI_1 on n2: %d transitions, %d adverts sent, %d received",
		len(fams), in.Counters.Transitions, in.Counters.AdvertsSent, in.Counters.AdvertsReceived)
}
