package lvs

import (
	"fmt"
	"strings"
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
	targets := []wrkTarget{
		{"dr", []string{"http://" + vip + "/", "http://" + vip + "/"}},
		{"nat", []string{"http://" + vip + ":8080/", "http://" + vip + ":8080/"}},
		{"direct", []string{"http://" + drWeb1 + "/", "http://" + drWeb2 + "/"}},
	}
	const reps = 3
	var med map[string]float64
	var tbl strings.Builder
	for range b.N {
		rps, err := wrkRounds(tp.client.host, wrk, dur, conns, reps, targets)
		if err != nil {
			b.Fatal(err)
		}
		med = wrkTable(&tbl, rps, targets, conns, dur, reps, "two wrk at once from the client namespace (direct: one per real server)")
	}
	dd := med["dr"] / med["direct"]
	fmt.Fprintf(&tbl, "dr/direct = %.2f (target ≥ 0.95: %s)\n", dd, met(dd >= 0.95))
	b.Log("\n" + tbl.String())
	b.ReportMetric(med["dr"], "dr_req/s")
	b.ReportMetric(med["nat"], "nat_req/s")
	b.ReportMetric(med["direct"], "direct_req/s")
	b.ReportMetric(dd, "dr/direct")
}
