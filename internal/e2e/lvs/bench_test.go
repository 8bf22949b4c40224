package lvs

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

// BenchmarkThroughput measures HTTP requests per second from the client
// with wrk, through three paths to the same nginx back ends:
//
//   - vip: vigil's virtual server (nftables DNAT in the director, rr over
//     both web servers);
//   - direct: straight to one web server, routed through the same director
//     (plain forwarding, no NAT);
//   - haproxy: Debian's haproxy in the director (mode http, roundrobin over
//     both web servers), a user-space proxy in front of the same back ends.
//
// Each target runs 3 times, interleaved so that a burst of load from other
// processes on the machine hits all of them alike; the table shows each run,
// the median and the ratios. Targets: vip ≥ 0.9 × direct and ≥ 1.5 ×
// haproxy. It runs the table once whatever b.N is:
//
//	go test -run '^$' -bench Throughput -benchtime 1x -v ./internal/e2e/lvs
//
// VIGIL_BENCH_DURATION (a wrk duration, default 5s) and VIGIL_BENCH_CONNS
// (default 50) tune each wrk run.
func BenchmarkThroughput(b *testing.B) {
	wrk := netnstest.RequireCommand(b, "wrk")
	haproxy := netnstest.RequireCommand(b, "haproxy")
	dur := envOr("VIGIL_BENCH_DURATION", "5s")
	conns := envOr("VIGIL_BENCH_CONNS", "50")
	tp := newTopo(b, "bench", topoOpts{})
	d := tp.dirs[0]
	check := tcpCheck("3", 3, "3")
	d.writeConfig(vrrpSingle() + vs{port: 80, delayLoop: "6", reals: []rs{{addr: web1, checker: check}, {addr: web2, checker: check}}}.String())
	d.start()
	waitServing(b, d, 80)
	startHAProxy(b, d, haproxy)

	targets := []struct{ name, url string }{
		{"vip", "http://" + vip + "/"},
		{"direct", "http://" + web1 + "/"},
		{"haproxy", "http://" + dirFront[0] + ":8080/"},
	}
	for _, tg := range targets {
		// Each path answers before it is measured.
		if _, err := tp.client.getURL(tg.url); err != nil {
			b.Fatalf("%s: %v", tg.name, err)
		}
	}
	const reps = 3
	rps := map[string][]float64{}
	for range b.N {
		for rep := range reps {
			for _, tg := range targets {
				out, err := tp.client.host.Run(wrk, "-t2", "-c"+conns, "-d"+dur, tg.url)
				if err != nil {
					b.Fatal(err)
				}
				r, err := wrkRPS(out)
				if err != nil {
					b.Fatalf("%s run %d: %v\n%s", tg.name, rep+1, err, out)
				}
				rps[tg.name] = append(rps[tg.name], r)
			}
		}
	}
	med := map[string]float64{}
	for _, tg := range targets {
		med[tg.name] = median(rps[tg.name])
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "wrk -t2 -c%s -d%s from the client namespace, %d runs each (interleaved), requests/s:\n", conns, dur, reps)
	fmt.Fprintf(&tbl, "%-8s %10s %10s %10s %10s %12s\n", "target", "run 1", "run 2", "run 3", "median", "vs direct")
	for _, tg := range targets {
		rs := rps[tg.name]
		fmt.Fprintf(&tbl, "%-8s", tg.name)
		for i := range reps {
			fmt.Fprintf(&tbl, " %10.0f", rs[len(rs)-reps+i])
		}
		fmt.Fprintf(&tbl, " %10.0f %11.2fx\n", med[tg.name], med[tg.name]/med["direct"])
	}
	vd, vh := med["vip"]/med["direct"], med["vip"]/med["haproxy"]
	fmt.Fprintf(&tbl, "vip/direct = %.2f (target ≥ 0.90: %s)\nvip/haproxy = %.2f (target ≥ 1.50: %s)\n", vd, met(vd >= 0.9), vh, met(vh >= 1.5))
	fmt.Fprintf(&tbl, "spread (max−min)/median: vip %.0f%%, direct %.0f%%, haproxy %.0f%%\n", spread(rps["vip"]), spread(rps["direct"]), spread(rps["haproxy"]))
	b.Log("\n" + tbl.String())
	b.ReportMetric(med["vip"], "vip_req/s")
	b.ReportMetric(med["direct"], "direct_req/s")
	b.ReportMetric(med["haproxy"], "haproxy_req/s")
	b.ReportMetric(vd, "vip/direct")
	b.ReportMetric(vh, "vip/haproxy")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// startHAProxy runs haproxy in the director on its front address, port
// 8080, balancing over both web servers.
func startHAProxy(tb testing.TB, d *director, bin string) {
	tb.Helper()
	dir := tb.TempDir()
	cfg := fmt.Sprintf(`global
	maxconn 4096
	pidfile %s/haproxy.pid
defaults
	mode http
	option http-keep-alive
	timeout connect 2s
	timeout client 30s
	timeout server 30s
frontend fe
	bind %s:8080
	default_backend be
backend be
	balance roundrobin
	server web1 %s:80
	server web2 %s:80
`, dir, dirFront[0], web1, web2)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	p, err := d.host.Start(bin, "-db", "-f", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Kill)
	waitFor(tb, patience, "haproxy listens", func() (bool, string) {
		select {
		case <-p.Done():
			tb.Fatalf("haproxy exited: %v\n%s", p.Err(), p.Output())
		default:
		}
		err := d.host.Do(func() error {
			c, err := net.DialTimeout("tcp", dirFront[0]+":8080", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		return err == nil, fmt.Sprint(err)
	})
}

var rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// wrkRPS reads wrk's "Requests/sec:" line; socket errors or non-2xx
// answers make the run invalid.
func wrkRPS(out string) (float64, error) {
	if strings.Contains(out, "Non-2xx") || strings.Contains(out, "Socket errors") {
		return 0, fmt.Errorf("wrk saw errors")
	}
	m := rpsRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no Requests/sec in wrk's output")
	}
	return strconv.ParseFloat(m[1], 64)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return 100 * (hi - lo) / median(xs)
}
