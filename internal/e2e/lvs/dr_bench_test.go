package lvs

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

// BenchmarkDRThroughput measures HTTP requests per second from the client
// with wrk on the seed's single LAN, through three paths to the same two
// nginx real servers:
//
//   - dr: the VIP on port 80, lb_kind DR (nftables netdev ingress, fwd to
//     the real servers' MACs; replies go straight to the client);
//   - nat: the VIP on port 8080, lb_kind NAT (nftables DNAT; the real
//     servers route replies from port 8080 back through the director by a
//     policy rule, as LVS-NAT needs);
//   - direct: the client straight to both real servers.
//
// Every target is two wrk processes at once with half the connections each
// (direct: one per real server), their rates summed.
//
// Each target runs 3 times, interleaved; the table shows each run, the
// median and the ratio to direct (target: dr ≥ 0.95 × direct):
//
//	go test -run '^$' -bench DRThroughput -benchtime 1x -v ./internal/e2e/lvs
func BenchmarkDRThroughput(b *testing.B) {
	wrk := netnstest.RequireCommand(b, "wrk")
	dur := envOr("VIGIL_BENCH_DURATION", "5s")
	conns := 50
	tp := newDRTopo(b)
	d := tp.dirs[0]
	if err := d.host.Sysctl("net/ipv4/ip_forward", "1"); err != nil {
		b.Fatal(err)
	}
	for _, k := range []string{"all", "ens160"} {
		if err := d.host.Sysctl("net/ipv4/conf/"+k+"/send_redirects", "0"); err != nil {
			b.Fatal(err)
		}
	}
	for _, a := range []string{drWeb1, drWeb2} {
		h := tp.web[a].host
		mustRun(b, h, "ip", "rule", "add", "sport", "8080", "lookup", "100")
		mustRun(b, h, "ip", "route", "add", "default", "via", drDirs[0], "table", "100")
	}
	d.writeScript()
	conf := seedDR("LVS_1", "MASTER", 100, d.scriptPath()) + fmt.Sprintf(`virtual_server %s 8080 {
delay_loop 6
lb_algo rr
lb_kind NAT
protocol TCP
real_server %s 8080 {
weight 1
TCP_CHECK {
connect_timeout 3
}
}
real_server %s 8080 {
weight 1
TCP_CHECK {
connect_timeout 3
}
}
}
`, vip, drWeb1, drWeb2)
	d.writeConfig(conf)
	d.start()
	waitFor(b, patience, "the director serves both paths", func() (bool, string) {
		_, e1 := tp.client.getURL("http://" + vip + "/")
		_, e2 := tp.client.getURL("http://" + vip + ":8080/")
		return e1 == nil && e2 == nil, fmt.Sprint(e1, e2)
	})
	run := func(url string, c int) (float64, error) {
		out, err := tp.client.host.Run(wrk, "-t2", fmt.Sprintf("-c%d", c), "-d"+dur, url)
		if err != nil {
			return 0, err
		}
		r, err := wrkRPS(out)
		if err != nil {
			return 0, fmt.Errorf("%v\n%s", err, out)
		}
		return r, nil
	}
	// Every target is two wrk processes at once with half the connections
	// each, so that the client does the same work on every path: direct
	// sends one to each real server.
	pair := func(url1, url2 string) (float64, error) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var sum float64
		var errs []error
		for _, u := range []string{url1, url2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := run(u, conns/2)
				mu.Lock()
				defer mu.Unlock()
				sum += r
				if err != nil {
					errs = append(errs, err)
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			return 0, errs[0]
		}
		return sum, nil
	}
	targets := []struct {
		name string
		rps  func() (float64, error)
	}{
		{"dr", func() (float64, error) { return pair("http://"+vip+"/", "http://"+vip+"/") }},
		{"nat", func() (float64, error) { return pair("http://"+vip+":8080/", "http://"+vip+":8080/") }},
		{"direct", func() (float64, error) { return pair("http://"+drWeb1+"/", "http://"+drWeb2+"/") }},
	}
	const reps = 3
	rps := map[string][]float64{}
	for range b.N {
		for rep := range reps {
			for _, tg := range targets {
				r, err := tg.rps()
				if err != nil {
					b.Fatalf("%s run %d: %v", tg.name, rep+1, err)
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
	fmt.Fprintf(&tbl, "two wrk -t2 -c%d -d%s at once from the client namespace (direct: one per real server), %d runs each (interleaved), requests/s summed:\n", conns/2, dur, reps)
	fmt.Fprintf(&tbl, "%-8s %10s %10s %10s %10s %12s\n", "target", "run 1", "run 2", "run 3", "median", "vs direct")
	for _, tg := range targets {
		rs := rps[tg.name]
		fmt.Fprintf(&tbl, "%-8s", tg.name)
		for i := range reps {
			fmt.Fprintf(&tbl, " %10.0f", rs[len(rs)-reps+i])
		}
		fmt.Fprintf(&tbl, " %10.0f %11.2fx\n", med[tg.name], med[tg.name]/med["direct"])
	}
	dd := med["dr"] / med["direct"]
	fmt.Fprintf(&tbl, "dr/direct = %.2f (target ≥ 0.95: %s)\n", dd, met(dd >= 0.95))
	fmt.Fprintf(&tbl, "spread (max−min)/median: dr %.0f%%, nat %.0f%%, direct %.0f%%\n", spread(rps["dr"]), spread(rps["nat"]), spread(rps["direct"]))
	b.Log("\n" + tbl.String())
	b.ReportMetric(med["dr"], "dr_req/s")
	b.ReportMetric(med["nat"], "nat_req/s")
	b.ReportMetric(med["direct"], "direct_req/s")
	b.ReportMetric(dd, "dr/direct")
}
