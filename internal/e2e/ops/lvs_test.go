package ops

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// lvsLab is keepalived's classic LVS-NAT pair: two directors share a
// front VIP (the virtual server's address) and a back VIP (the real
// servers' default gateway) in one sync group; three web servers sit on the
// back LAN; a client on the front LAN.
//
//	client 192.168.118.50 ── front ── dir1 .1 / dir2 .2   (VIP .100, VI_EXTRA's .101)
//	                                  dir1 10.0.0.1 / dir2 10.0.0.2 ── back ── web1..3 10.0.0.11-13
//	                                  (VIP 10.0.0.254: the web servers' gateway)
type lvsLab struct {
	l                *lab.Lab
	client           *lab.Host
	dir1, dir2       *lab.Host
	web1, web2, web3 *lab.Host
}

var (
	frontVIP = netip.MustParseAddr("192.168.118.100")
	backVIP  = netip.MustParseAddr("10.0.0.254")
	extraVIP = netip.MustParseAddr("192.168.118.101")
	dir1Fr   = netip.MustParseAddr("192.168.118.1")
	dir1Bk   = netip.MustParseAddr("10.0.0.1")
)

const lvsVS = "[192.168.118.100]:tcp:80"

func newLVSLab(t *testing.T) *lvsLab {
	t.Helper()
	l := netnstest.New(t, "lvs")
	x := &lvsLab{l: l}
	x.client = netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{"192.168.118.50/24"}})
	x.dir1 = netnstest.AddHost(t, l, "dir1",
		lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{"192.168.118.1/24"}},
		lab.Iface{Name: "eth1", LAN: "back", Addrs: []string{"10.0.0.1/24"}})
	x.dir2 = netnstest.AddHost(t, l, "dir2",
		lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{"192.168.118.2/24"}},
		lab.Iface{Name: "eth1", LAN: "back", Addrs: []string{"10.0.0.2/24"}})
	for i, h := range []**lab.Host{&x.web1, &x.web2, &x.web3} {
		name := fmt.Sprintf("web%d", i+1)
		*h = netnstest.AddHost(t, l, name, lab.Iface{Name: "eth0", LAN: "back", Addrs: []string{fmt.Sprintf("10.0.0.%d/24", 11+i)}})
		mustRun(t, *h, "ip", "route", "add", "default", "via", backVIP.String())
		serveWeb(t, *h, ":80", name)
	}
	for _, d := range []*lab.Host{x.dir1, x.dir2} {
		sysctl(t, d, "net/ipv4/ip_forward", "1")
	}
	netnstest.WaitLANReady(t, l, x.client, x.dir1, x.dir2, x.web1, x.web2, x.web3)
	return x
}

// lvsConf is one director's keepalived.conf, with the knobs the reload
// test turns.
type lvsConf struct {
	routerID   string
	state      string
	priority   int
	extra      bool // a third vrrp_instance, VRID 60, outside the sync group
	web1Weight int
	web3       bool // a third real server
	broken     bool // VI_FRONT's virtual_router_id out of range: keepalived would not run the file
	rtPriority int  // vrrp_rt_priority (0: none)
}

func (c lvsConf) String() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("! written by internal/e2e/ops")
	p("global_defs {")
	p("    router_id %s", c.routerID)
	p("    vrrp_version 3")
	p("    vrrp_garp_master_delay 1")
	if c.rtPriority > 0 {
		p("    vrrp_rt_priority %d", c.rtPriority)
	}
	p("}")
	p("")
	p("vrrp_sync_group G1 {")
	p("    group {")
	p("        VI_FRONT")
	p("        VI_BACK")
	p("    }")
	p("}")
	frontVRID := 51
	if c.broken {
		frontVRID = 300
	}
	inst := func(name, iface string, vrid, prio int, state, vip string) {
		p("")
		p("vrrp_instance %s {", name)
		p("    state %s", state)
		p("    interface %s", iface)
		p("    virtual_router_id %d", vrid)
		p("    priority %d", prio)
		p("    advert_int 0.2")
		p("    virtual_ipaddress {")
		p("        %s", vip)
		p("    }")
		p("}")
	}
	inst("VI_FRONT", "eth0", frontVRID, c.priority, c.state, "192.168.118.100/24")
	inst("VI_BACK", "eth1", 52, c.priority, c.state, "10.0.0.254/24")
	if c.extra {
		inst("VI_EXTRA", "eth0", 60, 100, "BACKUP", "192.168.118.101/24")
	}
	p("")
	p("virtual_server 192.168.118.100 80 {")
	p("    delay_loop 1")
	p("    lb_algo rr")
	p("    lb_kind NAT")
	p("    protocol TCP")
	rs := func(addr string, weight int) {
		p("    real_server %s 80 {", addr)
		p("        weight %d", weight)
		p("        TCP_CHECK {")
		p("            connect_timeout 1")
		p("        }")
		p("    }")
	}
	rs("10.0.0.11", c.web1Weight)
	rs("10.0.0.12", 1)
	if c.web3 {
		rs("10.0.0.13", 1)
	}
	p("}")
	return b.String()
}

// brokenPos is where `vigil check` must point for c.broken: VI_FRONT's
// virtual_router_id line, as "line:col".
func (c lvsConf) brokenPos() string {
	for i, line := range strings.Split(c.String(), "\n") {
		if j := strings.Index(line, "virtual_router_id 300"); j >= 0 {
			return fmt.Sprintf("%d:%d", i+1, j+1)
		}
	}
	return "?"
}

// poller is an HTTP client that opens a new connection to the VIP for
// every request, from inside the client host, until stopped.
type poller struct {
	mu        sync.Mutex
	total     int
	byBackend map[string]int
	failures  []string
	slowest   time.Duration
	stop      chan struct{}
	done      chan struct{}
}

func startPoller(t *testing.T, h *lab.Host, target netip.AddrPort, every time.Duration, backends ...string) *poller {
	t.Helper()
	pl := &poller{byBackend: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	known := map[string]bool{}
	for _, b := range backends {
		known[b] = true
	}
	go func() {
		defer close(pl.done)
		// One locked thread inside the client's namespace for the whole
		// run: every socket it opens is the client's.
		err := h.Do(func() error {
			for {
				select {
				case <-pl.stop:
					return nil
				default:
				}
				start := time.Now()
				body, err := fetchOnce(target)
				took := time.Since(start)
				pl.mu.Lock()
				pl.total++
				if took > pl.slowest {
					pl.slowest = took
				}
				switch {
				case err != nil:
					pl.failures = append(pl.failures, fmt.Sprintf("%s: %v (after %v)", start.Format("15:04:05.000"), err, took))
				case !known[body]:
					pl.failures = append(pl.failures, fmt.Sprintf("%s: unexpected body %q", start.Format("15:04:05.000"), body))
				default:
					pl.byBackend[body]++
				}
				pl.mu.Unlock()
				time.Sleep(every)
			}
		})
		if err != nil {
			pl.mu.Lock()
			pl.failures = append(pl.failures, "poller: "+err.Error())
			pl.mu.Unlock()
		}
	}()
	return pl
}

// fetchOnce makes one request on a new connection; the server closes it.
func fetchOnce(target netip.AddrPort) (string, error) {
	c, err := net.DialTimeout("tcp4", target.String(), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(b), nil
}

// finish stops the poller and returns its counts.
func (pl *poller) finish() (total int, byBackend map[string]int, failures []string, slowest time.Duration) {
	close(pl.stop)
	<-pl.done
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.total, pl.byBackend, pl.failures, pl.slowest
}

func (pl *poller) served() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	n := 0
	for _, v := range pl.byBackend {
		n += v
	}
	return n
}

// durations summarises reload times.
type durations []time.Duration

func (ds durations) median() time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append(durations(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func (ds durations) max() time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func (ds durations) percentile(p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append(durations(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}
