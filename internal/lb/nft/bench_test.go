package nft

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// bigState is n virtual servers (TCP 10.x.y.z:80, wrr) with m real servers
// each.
func bigState(n, m int) lb.State {
	s := lb.NewState()
	for i := range n {
		k := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80}
		s.Services[k] = lb.Service{Scheduler: "wrr", Netmask: 0xffffffff}
		for j := range m {
			a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(j), byte(i % 250)}), 8080)
			s.Dests[lb.DestKey{Service: k, Addr: a}] = lb.Dest{Weight: uint32(1 + j%3), Method: lb.NAT}
		}
	}
	return s
}

func benchBackend(b *testing.B) (*lab.Host, *Backend) {
	l := netnstest.New(b, "lbbench")
	h := netnstest.AddHost(b, l, "dir", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.0.0.1/24"}})
	var be *Backend
	if err := h.Do(func() error { var err error; be, err = New(Options{}); return err }); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return h, be
}

// BenchmarkApplyFromNothing: 1,000 virtual servers x 10 real servers in one
// batch into an empty namespace (target < 1 s for the services; the
// counters' second batch adds about 1.5 s, see stats.go).
func BenchmarkApplyFromNothing(b *testing.B) {
	_, be := benchBackend(b)
	st := bigState(1000, 10)
	for b.Loop() {
		b.StopTimer()
		be.conn.DelTable(be.table())
		_ = be.conn.Flush()
		be.cache = &observed{state: lb.NewState()}
		b.StartTimer()
		if err := be.Apply(b.Context(), st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyOneChange: one real server's weight changes among 1,000 x 10
// (target < 10 ms).
func BenchmarkApplyOneChange(b *testing.B) {
	_, be := benchBackend(b)
	st := bigState(1000, 10)
	if err := be.Apply(b.Context(), st); err != nil {
		b.Fatal(err)
	}
	var dk lb.DestKey
	for k := range st.Dests {
		dk = k
		break
	}
	i := 0
	for b.Loop() {
		i++
		d := st.Dests[dk]
		d.Weight = uint32(1 + i%5)
		st.Dests[dk] = d
		if err := be.Apply(b.Context(), st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkObserve: the reconciler's periodic re-read of 1,000 x 10.
func BenchmarkObserve(b *testing.B) {
	_, be := benchBackend(b)
	st := bigState(1000, 10)
	if err := be.Apply(b.Context(), st); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		got, err := be.Observe(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if len(got.Dests) != 10000 {
			b.Fatalf("observed %d destinations", len(got.Dests))
		}
	}
}

// TestThroughput compares requests per second through the VIP (nftables
// DNAT) with requests straight to one backend and through haproxy on the
// director, measured by wrk from the client, nginx serving. It takes about
// a minute (5 paths x 3 rounds x 3 s) and prints a table; it runs only with VIGIL_BENCH=1.
//
//	VIGIL_BENCH=1 go test -run Throughput -v ./internal/lb/nft
func TestThroughput(t *testing.T) {
	if os.Getenv("VIGIL_BENCH") != "1" {
		t.Skip("set VIGIL_BENCH=1 to run the throughput comparison")
	}
	for _, c := range []string{"wrk", "nginx", "haproxy"} {
		netnstest.RequireCommand(t, c)
	}
	tt := newTutorial(t)
	dir := t.TempDir()
	for i, w := range []*lab.Host{tt.web1, tt.web2} {
		conf := filepath.Join(dir, fmt.Sprintf("nginx%d.conf", i))
		os.WriteFile(conf, []byte(fmt.Sprintf(`daemon off; worker_processes 1; pid %s/nginx%d.pid; error_log stderr;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;
  server { listen 8081 reuseport backlog=4096; location / { return 200 "%s\n"; } } }
`, dir, i, dir, dir, dir, dir, dir, w.Name())), 0o644)
		if _, err := w.Start("nginx", "-c", conf, "-e", "stderr"); err != nil {
			t.Fatal(err)
		}
	}
	hcfg := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(hcfg, []byte(`global
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend f1
  bind 192.168.118.110:8091
  default_backend one
frontend f2
  bind 192.168.118.110:8092
  default_backend two
backend one
  server w1 10.0.0.2:8081
backend two
  balance roundrobin
  server w1 10.0.0.2:8081
  server w2 10.0.0.3:8081
`), 0o644)
	hp, err := tt.dir.Start("haproxy", "-f", hcfg, "-db")
	if err != nil {
		t.Fatal(err)
	}
	one := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: tutVIP, Port: 81}
	two := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: tutVIP, Port: 82}
	s := lb.NewState()
	s.Services[one] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
	s.Services[two] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
	s.Dests[lb.DestKey{Service: one, Addr: netip.MustParseAddrPort("10.0.0.2:8081")}] = lb.Dest{Weight: 1, Method: lb.NAT}
	s.Dests[lb.DestKey{Service: two, Addr: netip.MustParseAddrPort("10.0.0.2:8081")}] = lb.Dest{Weight: 1, Method: lb.NAT}
	s.Dests[lb.DestKey{Service: two, Addr: netip.MustParseAddrPort("10.0.0.3:8081")}] = lb.Dest{Weight: 1, Method: lb.NAT}
	tt.apply(t, s)
	time.Sleep(500 * time.Millisecond) // nginx and haproxy up

	type run struct{ name, url string }
	runs := []run{
		{"direct to web1", "http://10.0.0.2:8081/"},
		{"VIP (nftables DNAT) -> web1", "http://192.168.118.110:81/"},
		{"haproxy -> web1", "http://192.168.118.110:8091/"},
		{"VIP (nftables DNAT) -> web1+web2", "http://192.168.118.110:82/"},
		{"haproxy -> web1+web2", "http://192.168.118.110:8092/"},
	}
	// The client reaches the back LAN for the direct run through the
	// director (plain routing).
	mustRun(t, tt.client, "ip", "route", "add", "10.0.0.0/24", "via", "192.168.118.128")
	// The machine is shared: interleave rounds and report the median.
	const rounds = 3
	samples := map[string][]float64{}
	for range rounds {
		for _, r := range runs {
			out, err := tt.client.Run("wrk", "-t2", "-c64", "-d3s", r.url)
			if err != nil {
				t.Fatalf("%s: %v\nhaproxy: %s", r.name, err, hp.Output())
			}
			m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("%s: no rate in %s", r.name, out)
			}
			if e := regexp.MustCompile(`Non-2xx or 3xx responses: \d+|Socket errors: .*`).FindString(out); e != "" {
				t.Errorf("%s: %s", r.name, e)
			}
			v, _ := strconv.ParseFloat(m[1], 64)
			samples[r.name] = append(samples[r.name], v)
		}
	}
	rps := map[string]float64{}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-34s %10s %10s %10s   (wrk -t2 -c64 -d3s, keep-alive, %d rounds)\n", "path", "median", "min", "max", rounds)
	for _, r := range runs {
		v := append([]float64(nil), samples[r.name]...)
		slices.Sort(v)
		rps[r.name] = v[len(v)/2]
		fmt.Fprintf(&b, "%-34s %10.0f %10.0f %10.0f\n", r.name, v[len(v)/2], v[0], v[len(v)-1])
	}
	fmt.Fprintf(&b, "VIP/direct  (one backend):  %.2f (target >= 0.9)\n", rps[runs[1].name]/rps[runs[0].name])
	fmt.Fprintf(&b, "VIP/haproxy (one backend):  %.2f (target >= 1.5)\n", rps[runs[1].name]/rps[runs[2].name])
	fmt.Fprintf(&b, "VIP/haproxy (two backends): %.2f\n", rps[runs[3].name]/rps[runs[4].name])
	if out, err := tt.dir.Run("cat", "/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "load average during the run: %s", out)
	}
	t.Log(b.String())
}

// drBigState is bigState with DR destinations.
func drBigState(n, m int) lb.State {
	s := bigState(n, m)
	for k, d := range s.Dests {
		d.Method = lb.DR
		s.Dests[k] = d
	}
	return s
}

// BenchmarkDRApplyOneChange: one real server leaves and comes back among
// 1,000 DR services x 10 real servers (each change rebuilds that service's
// 1021-slot Maglev table; flows are kept).
func BenchmarkDRApplyOneChange(b *testing.B) {
	l := netnstest.New(b, "lbdrben")
	h := netnstest.AddHost(b, l, "dir", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.0.0.1/8"}})
	var be *Backend
	if err := h.Do(func() error { var err error; be, err = New(Options{}); return err }); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	st := drBigState(1000, 10)
	start := time.Now()
	if err := be.Apply(b.Context(), st); err != nil {
		b.Fatal(err)
	}
	b.Logf("1,000 DR services x 10 real servers from nothing: %v", time.Since(start).Round(time.Millisecond))
	var dk lb.DestKey
	for k := range st.Dests {
		dk = k
		break
	}
	d := st.Dests[dk]
	less := st.Clone()
	delete(less.Dests, dk)
	i := 0
	for b.Loop() {
		i++
		s := st
		if i%2 == 1 {
			s = less
		}
		if err := be.Apply(b.Context(), s); err != nil {
			b.Fatal(err)
		}
	}
	_ = d
}
