package track

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// Seed 003 (HAProxy + keepalived, "dual master"): two haproxy nodes, two
// VIPs, two vrrp_instances with crossed priorities so that each node is
// master of one VIP; both haproxys serve both VIPs in front of two web
// servers. vrrp_track_process follows haproxy.
const (
	seed3VIP1 = "10.3.0.201" // VI_1: n1 master
	seed3VIP2 = "10.3.0.202" // VI_2: n2 master
	// seed3Advert is VRRPv3's advert_int here: the tutorial's timing is not
	// the point, the Master_Down_Interval is.
	seed3Advert = 500 * time.Millisecond
)

// haproxyService prepares Debian's haproxy in the host with a private
// configuration: one frontend on both VIPs, balancing over the web servers,
// stamping its responses with X-LB: label. It runs in the foreground (-db).
func haproxyService(t testing.TB, h *lab.Host, dir, label string, webs ...string) *service {
	t.Helper()
	netnstest.RequireCommand(t, "haproxy")
	dir = filepath.Join(dir, "haproxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var servers strings.Builder
	for i, w := range webs {
		fmt.Fprintf(&servers, "    server web%d %s:80 check inter 1s\n", i+1, w)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	body := `# private haproxy of lab host ` + h.Name() + `
global
    pidfile ` + dir + `/haproxy.pid
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend www
    bind ` + seed3VIP1 + `:80
    bind ` + seed3VIP2 + `:80
    http-response set-header X-LB ` + label + `
    default_backend webs
backend webs
    balance roundrobin
` + servers.String()
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return &service{name: "haproxy", host: h, args: []string{"-f", cfg, "-db"}}
}

// seed3Conf is one node's keepalived.conf. vrrp_track_process names
// haproxy; in the lab both nodes' haproxys share one PID namespace (the
// proc connector and /proc see the whole machine), so each node matches
// its own by the configuration file haproxy was started with
// (param_match partial: the configured parameters are the first ones).
// On real machines `process haproxy` alone does.
func seed3Conf(routerID, cfg string, prio1, prio2 int) string {
	state := func(p int) string {
		if p == 100 {
			return "MASTER"
		}
		return "BACKUP"
	}
	inst := func(name string, vrid, prio int, vip string) string {
		return fmt.Sprintf(`vrrp_instance %s {
    state %s
    interface eth0
    version 3
    virtual_router_id %d
    priority %d
    advert_int %g
    track_process {
        chk_haproxy
    }
    virtual_ipaddress {
        %s/24
    }
}
`, name, state(prio), vrid, prio, seed3Advert.Seconds(), vip)
	}
	return fmt.Sprintf(`! seed 003, dual master
global_defs {
    router_id %s
}
vrrp_track_process chk_haproxy {
    process haproxy -f %s
    param_match partial
    weight -20
}
`, routerID, cfg) + inst("VI_1", 51, prio1, seed3VIP1) + inst("VI_2", 52, prio2, seed3VIP2)
}

// lbOf fetches http://vip/ from the client and returns the X-LB header and
// the body.
func lbOf(t *testing.T, cl *lab.Host, vip string) (lb, body string) {
	t.Helper()
	out, err := fetch(cl, vip)
	if err != nil {
		return "", err.Error()
	}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && strings.EqualFold(k, "x-lb") {
			lb = strings.TrimSpace(v)
		}
	}
	if i := strings.Index(out, "\r\n\r\n"); i >= 0 {
		body = strings.TrimSpace(out[i+4:])
	}
	return lb, body
}

// waitLB waits until the client's request to vip is answered by haproxy on
// the node labelled lb.
func waitLB(t *testing.T, cl *lab.Host, vip, want string) {
	t.Helper()
	var lb, body string
	deadline := time.Now().Add(5 * time.Second)
	for {
		lb, body = lbOf(t, cl, vip)
		if lb == want && strings.HasPrefix(body, "served by web") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client -> %s: X-LB %q body %q; want X-LB %q and a web server's page", vip, lb, body, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHAProxyTrackProcess: seed 003. Killing haproxy on n1 (SIGKILL, as a
// crash) moves n1's VIP to n2 within one Master_Down_Interval of the exit
// (the proc connector reports the exit at once; n2's timer was last reset by
// an advert sent before it); the client then reaches both VIPs through n2's
// haproxy. Restarting haproxy brings VIP1 back (preempt).
func TestHAProxyTrackProcess(t *testing.T) {
	t.Parallel()
	l := netnstest.New(t, "haproxy")
	h1 := netnstest.AddHost(t, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.3.0.1/24"}})
	h2 := netnstest.AddHost(t, l, "n2", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.3.0.2/24"}})
	w1 := netnstest.AddHost(t, l, "w1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.3.0.11/24"}})
	w2 := netnstest.AddHost(t, l, "w2", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.3.0.12/24"}})
	cl := netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.3.0.100/24"}})
	netnstest.WaitLANReady(t, l, h1, h2, w1, w2, cl)

	for i, w := range []*lab.Host{w1, w2} {
		addr := fmt.Sprintf("10.3.0.%d", 11+i)
		nginxService(t, w, t.TempDir(), fmt.Sprintf("web%d", i+1), addr).start(t)
		listening(t, w, addr, 80)
	}
	n1, n2 := newNode(t, h1), newNode(t, h2)
	var hp [2]*service
	for i, n := range []*node{n1, n2} {
		if err := n.host.Sysctl("net/ipv4/ip_nonlocal_bind", "1"); err != nil {
			t.Fatal(err)
		}
		hp[i] = haproxyService(t, n.host, n.dir, fmt.Sprintf("n%d", i+1), "10.3.0.11", "10.3.0.12")
		hp[i].start(t)
		waitFor(t, 15*time.Second, "haproxy listening", func() bool {
			out, _ := n.host.Run("ss", "-Hltn")
			return strings.Contains(out, seed3VIP1+":80") && strings.Contains(out, seed3VIP2+":80")
		})
	}
	n1.start(seed3Conf("haproxy1", hp[0].args[1], 100, 90))
	n1.waitState("VI_1", "MASTER", 20*time.Second)
	n2.start(seed3Conf("haproxy2", hp[1].args[1], 90, 100))
	n2.waitState("VI_2", "MASTER", 20*time.Second)
	n1.waitState("VI_2", "BACKUP", 10*time.Second)
	n2.waitState("VI_1", "BACKUP", 10*time.Second)
	for _, n := range []*node{n1, n2} {
		for _, tr := range n.instance("VI_1").Trackers {
			if tr.Kind == "process" && !tr.OK {
				t.Fatalf("%s: vrrp_track_process chk_haproxy is down while haproxy runs: %+v", n.host.Name(), tr)
			}
		}
	}
	if p := n1.instance("VI_1").EffectivePriority; p != 100 {
		t.Fatalf("n1 VI_1 priority %d with haproxy running, want 100", p)
	}
	waitFor(t, 15*time.Second, "VIP1 on n1 and VIP2 on n2", func() bool {
		return holds(h1, seed3VIP1) && holds(h2, seed3VIP2) && !holds(h1, seed3VIP2) && !holds(h2, seed3VIP1)
	})
	waitLB(t, cl, seed3VIP1, "n1")
	waitLB(t, cl, seed3VIP2, "n2")

	t0 := hp[0].stop(t, syscall.SIGKILL)
	took := waitFor(t, 20*time.Second, "VIP1 on n2", func() bool { return holds(h2, seed3VIP1) })
	bound := masterDown(seed3Advert, 90)
	t.Logf("FIGURE haproxy killed on n1: VIP1 on n2 after %v, %v after the kill (Master_Down_Interval of n2 at priority 90: %v)", took.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), bound)
	waitFor(t, 15*time.Second, "VIP1 gone from n1", func() bool { return !holds(h1, seed3VIP1) })
	if in := n1.instance("VI_1"); in.EffectivePriority != 80 || in.State != "BACKUP" {
		t.Errorf("n1 VI_1 without haproxy: %s priority %d, want BACKUP 80", in.State, in.EffectivePriority)
	}
	if in := n1.instance("VI_2"); in.EffectivePriority != 70 || in.State != "BACKUP" {
		t.Errorf("n1 VI_2 without haproxy: %s priority %d, want BACKUP 70", in.State, in.EffectivePriority)
	}
	waitLB(t, cl, seed3VIP1, "n2")
	waitLB(t, cl, seed3VIP2, "n2")

	hp[0].start(t)
	t1 := time.Now()
	took = waitFor(t, 20*time.Second, "VIP1 back on n1", func() bool { return holds(h1, seed3VIP1) })
	bound = masterDown(seed3Advert, 100)
	t.Logf("FIGURE haproxy restarted on n1: VIP1 back on n1 after %v, %v after the start (preempt; Master_Down_Interval at priority 100: %v)", took.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond), bound)
	waitFor(t, 15*time.Second, "VIP1 gone from n2", func() bool { return !holds(h2, seed3VIP1) })
	if !holds(h2, seed3VIP2) || holds(h1, seed3VIP2) {
		t.Errorf("VIP2 moved: on n1 %v, on n2 %v", holds(h1, seed3VIP2), holds(h2, seed3VIP2))
	}
	waitLB(t, cl, seed3VIP1, "n1")
	waitLB(t, cl, seed3VIP2, "n2")
}
