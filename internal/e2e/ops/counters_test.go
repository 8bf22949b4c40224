package ops

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/status"
)

// TestMetricsShowKernelCountersAfterNATTraffic runs one director of the
// LVS-NAT lab with --metrics-listen, sends requests from the client
// through the VIP, and scrapes /metrics: each real server that served a
// request shows connections, packets and bytes both ways, labelled by
// vip, port and protocol; the virtual server's counters add up to its real
// servers'; `vigil status --json` carries the same counters.
func TestMetricsShowKernelCountersAfterNATTraffic(t *testing.T) {
	t.Parallel()
	x := newLVSLab(t)
	d := newDaemon(t, x.dir1, lvsConf{routerID: "dir1", state: "MASTER", priority: 150, web1Weight: 1}.String())
	d.start("--metrics-listen", "127.0.0.1:9651")
	d.waitFor("dir1 MASTER", 20*time.Second, inState("MASTER", "VI_FRONT", "VI_BACK"))
	d.waitFor("real servers up", 20*time.Second, func(s status.Snapshot) bool {
		a, _ := realServer(s, lvsVS, "10.0.0.11:80")
		b, _ := realServer(s, lvsVS, "10.0.0.12:80")
		return a.Healthy && b.Healthy
	})
	served := map[string]int{}
	if err := x.client.Do(func() error {
		for range 10 {
			body, err := fetchOnce(netip.AddrPortFrom(frontVIP, 80))
			if err != nil {
				return err
			}
			served[body]++
		}
		return nil
	}); err != nil {
		t.Fatalf("requests through the VIP: %v", err)
	}
	if served["web1"] != 5 || served["web2"] != 5 {
		t.Fatalf("rr served %v, want 5 each", served)
	}

	fams := scrape(t, d, "http://127.0.0.1:9651/metrics")
	vs := map[string]string{"vip": frontVIP.String(), "port": "80", "protocol": "TCP"}
	rs := func(addr string, more ...string) map[string]string {
		m := map[string]string{"real_server": addr}
		for k, v := range vs {
			m[k] = v
		}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	var sumConns float64
	for _, addr := range []string{"10.0.0.11:80", "10.0.0.12:80"} {
		c := fams.value(t, "vigil_real_server_connections_total", rs(addr))
		if c != 5 {
			t.Errorf("%s: %v connections, want 5", addr, c)
		}
		sumConns += c
		for _, dir := range []string{"in", "out"} {
			// A request and its answer: SYN, ACK, request, FIN... at least
			// 3 packets each way per connection.
			if p := fams.value(t, "vigil_real_server_packets_total", rs(addr, "direction", dir)); p < 15 {
				t.Errorf("%s: %v packets %s, want >= 15", addr, p, dir)
			}
			if b := fams.value(t, "vigil_real_server_bytes_total", rs(addr, "direction", dir)); b < 15*40 {
				t.Errorf("%s: %v bytes %s, want >= 600", addr, b, dir)
			}
		}
	}
	if v := fams.value(t, "vigil_virtual_server_connections_total", vs); v != sumConns {
		t.Errorf("virtual server: %v connections, real servers %v", v, sumConns)
	}
	st := d.status()
	r, _ := realServer(st, lvsVS, "10.0.0.11:80")
	if r.Kernel == nil || r.Kernel.Connections < 5 || r.Kernel.BytesOut == 0 {
		t.Errorf("status of web1: kernel counters %+v", r.Kernel)
	}
}
