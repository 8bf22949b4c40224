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
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// BenchmarkThroughput measures HTTP requests per second from the client
// with wrk, through three paths to the same two nginx back ends:
//
//   - vip: vigil's virtual server (nftables DNAT in the director, rr over
//     both web servers);
//   - haproxy: Debian's haproxy in the director (mode http, roundrobin over
//     both web servers), a user-space proxy in front of the same back ends;
//   - direct: the client straight to both web servers, one wrk each,
//     routed through the same director (plain forwarding, no NAT);
//
// and, per back end, web1 and web2: the client straight to one web server
// with every connection, to show what one back end serves alone.
//
// Every target is two wrk processes at once with half the connections each,
// their rates summed (wrkSum), so that the client does the same work on
// every path. Each target runs 3 times, interleaved so that a burst of load
// from other processes on the machine hits all of them alike; the table
// shows each run, the median and the ratios. Targets: vip ≥ 0.9 × direct
// and ≥ 1.5 × haproxy. It runs the table once whatever b.N is:
//
//	go test -run '^$' -bench '^BenchmarkThroughput$' -benchtime 1x -v ./internal/e2e/lvs
//
// VIGIL_BENCH_DURATION (a wrk duration, default 5s) and VIGIL_BENCH_CONNS
// (default 50) tune each target.
func BenchmarkThroughput(b *testing.B) {
	wrk := netnstest.RequireCommand(b, "wrk")
	haproxy := netnstest.RequireCommand(b, "haproxy")
	dur := envOr("VIGIL_BENCH_DURATION", "5s")
	conns, err := strconv.Atoi(envOr("VIGIL_BENCH_CONNS", "50"))
	if err != nil || conns < 2 {
		b.Fatalf("VIGIL_BENCH_CONNS=%q: want a number ≥ 2", os.Getenv("VIGIL_BENCH_CONNS"))
	}
	tp := newTopo(b, "bench", topoOpts{})
	d := tp.dirs[0]
	check := tcpCheck("3", 3, "3")
	d.writeConfig(vrrpSingle() + vs{port: 80, delayLoop: "6", reals: []rs{{addr: web1, checker: check}, {addr: web2, checker: check}}}.String())
	d.start()
	waitServing(b, d, 80)
	startHAProxy(b, d, haproxy)

	vipURL, hapURL := "http://"+vip+"/", "http://"+dirFront[0]+":8080/"
	w1, w2 := "http://"+web1+"/", "http://"+web2+"/"
	for _, u := range []string{vipURL, hapURL, w1, w2} {
		// Each path answers before it is measured.
		if _, err := tp.client.getURL(u); err != nil {
			b.Fatalf("%s: %v", u, err)
		}
	}
	targets := []wrkTarget{
		{"vip", []string{vipURL, vipURL}},
		{"haproxy", []string{hapURL, hapURL}},
		{"direct", []string{w1, w2}},
		{"web1", []string{w1, w1}},
		{"web2", []string{w2, w2}},
	}
	const reps = 3
	var med map[string]float64
	var tbl strings.Builder
	for range b.N {
		rps, err := wrkRounds(tp.client.host, wrk, dur, conns, reps, targets)
		if err != nil {
			b.Fatal(err)
		}
		med = wrkTable(&tbl, rps, targets, conns, dur, reps, "two wrk at once from the client namespace (direct: one per web server)")
	}
	vd, vh := med["vip"]/med["direct"], med["vip"]/med["haproxy"]
	fmt.Fprintf(&tbl, "vip/direct = %.2f (target ≥ 0.90: %s)\nvip/haproxy = %.2f (target ≥ 1.50: %s)\n", vd, met(vd >= 0.9), vh, met(vh >= 1.5))
	b.Log("\n" + tbl.String())
	b.ReportMetric(med["vip"], "vip_req/s")
	b.ReportMetric(med["direct"], "direct_req/s")
	b.ReportMetric(med["haproxy"], "haproxy_req/s")
	b.ReportMetric(med["web1"], "web1_req/s")
	b.ReportMetric(med["web2"], "web2_req/s")
	b.ReportMetric(vd, "vip/direct")
	b.ReportMetric(vh, "vip/haproxy")
}

// wrkTarget is one path of a throughput benchmark: the URLs of the wrk
// processes run at once (wrkSum).
type wrkTarget struct {
	name string
	urls []string
}

// wrkSum runs one wrk per URL at once from h, conns connections shared
// among them, and returns the sum of their rates and each one's.
func wrkSum(h *lab.Host, wrk, dur string, conns int, urls []string) (float64, []float64, error) {
	each := make([]float64, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := h.Run(wrk, "-t2", fmt.Sprintf("-c%d", conns/len(urls)), "-d"+dur, u)
			if err != nil {
				errs[i] = err
				return
			}
			r, err := wrkRPS(out)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %v\n%s", u, err, out)
			}
			each[i] = r
		}()
	}
	wg.Wait()
	var sum float64
	for i := range urls {
		if errs[i] != nil {
			return 0, nil, errs[i]
		}
		sum += each[i]
	}
	return sum, each, nil
}

// wrkRounds runs every target reps times, interleaved so that a burst of
// load from elsewhere on the machine hits all of them alike, and returns
// each target's summed rates, by name.
func wrkRounds(h *lab.Host, wrk, dur string, conns, reps int, targets []wrkTarget) (map[string][]float64, error) {
	rps := map[string][]float64{}
	for rep := range reps {
		for _, tg := range targets {
			r, _, err := wrkSum(h, wrk, dur, conns, tg.urls)
			if err != nil {
				return nil, fmt.Errorf("%s run %d: %v", tg.name, rep+1, err)
			}
			rps[tg.name] = append(rps[tg.name], r)
		}
	}
	return rps, nil
}

// wrkTable writes the runs, medians, ratios to "direct" and spreads of
// wrkRounds' result to w and returns the medians by name.
func wrkTable(w *strings.Builder, rps map[string][]float64, targets []wrkTarget, conns int, dur string, reps int, how string) map[string]float64 {
	med := map[string]float64{}
	for _, tg := range targets {
		med[tg.name] = median(rps[tg.name])
	}
	fmt.Fprintf(w, "%s, -t2 -c%d in all -d%s, %d runs each (interleaved), requests/s summed:\n", how, conns, dur, reps)
	fmt.Fprintf(w, "%-8s", "target")
	for i := range reps {
		fmt.Fprintf(w, " %10s", fmt.Sprintf("run %d", i+1))
	}
	fmt.Fprintf(w, " %10s %10s %8s\n", "median", "vs direct", "spread")
	for _, tg := range targets {
		rs := rps[tg.name]
		fmt.Fprintf(w, "%-8s", tg.name)
		for i := range reps {
			fmt.Fprintf(w, " %10.0f", rs[len(rs)-reps+i])
		}
		fmt.Fprintf(w, " %10.0f %9.2fx %7.0f%%\n", med[tg.name], med[tg.name]/med["direct"], spread(rs))
	}
	return med
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
