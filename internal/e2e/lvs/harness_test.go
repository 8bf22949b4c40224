package lvs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
)

// The tutorial's addresses where they fit: the VIP 192.168.118.110, the
// directors 192.168.118.128 (MASTER) and .130 (BACKUP), the web servers
// .131 and .129. In LVS-NAT the web servers sit on a back LAN; the
// tutorial's second network, 192.168.40.0/24, is used for it.
const (
	vip      = "192.168.118.110"
	backVIP  = "192.168.40.110" // the web servers' gateway in the director pair
	clientIP = "192.168.118.50"
	web1     = "192.168.40.131"
	web2     = "192.168.40.129"
	web3     = "192.168.40.132"
	sorryIP  = "192.168.40.200"
)

var (
	dirFront  = []string{"192.168.118.128", "192.168.118.130"}
	dirBack   = []string{"192.168.40.128", "192.168.40.130"}
	syncAddrs = []string{"10.9.0.1", "10.9.0.2"}
)

// topoOpts shapes a lab.
type topoOpts struct {
	directors int      // 1 (default) or 2
	gateway   string   // the web servers' default route (default: the first director's back address)
	webs      []string // web server addresses (default web1, web2)
	sorry     bool     // add a sorry server at sorryIP
	syncLink  bool     // a third link between the directors (eth2, syncAddrs)
}

// topo is one lab: a client on the front LAN, directors on both LANs, web
// servers on the back LAN.
type topo struct {
	t      testing.TB
	l      *lab.Lab
	bin    string
	client *client
	dirs   []*director
	web    map[string]*webServer // by address
}

func newTopo(t testing.TB, name string, o topoOpts) *topo {
	t.Helper()
	netnstest.RequireCommand(t, "nginx")
	bin := netnstest.VigilBinary(t)
	l := netnstest.New(t, name)
	if o.directors == 0 {
		o.directors = 1
	}
	if o.gateway == "" {
		o.gateway = dirBack[0]
	}
	if o.webs == nil {
		o.webs = []string{web1, web2}
	}
	tp := &topo{t: t, l: l, bin: bin, web: map[string]*webServer{}}
	ch := netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{clientIP + "/24"}})
	// The route to the back LAN through the first director is used only by
	// the benchmark's "direct" column (plain forwarding, no NAT).
	mustRun(t, ch, "ip", "route", "add", "192.168.40.0/24", "via", dirFront[0])
	tp.client = newClient(ch)
	hosts := []*lab.Host{ch}
	for i := range o.directors {
		ifs := []lab.Iface{{Name: "eth0", LAN: "front", Addrs: []string{dirFront[i] + "/24"}},
			{Name: "eth1", LAN: "back", Addrs: []string{dirBack[i] + "/24"}}}
		if o.syncLink {
			ifs = append(ifs, lab.Iface{Name: "eth2", LAN: "sync", Addrs: []string{syncAddrs[i] + "/24"}})
		}
		h := netnstest.AddHost(t, l, fmt.Sprintf("dir%d", i+1), ifs...)
		if err := h.Sysctl("net/ipv4/ip_forward", "1"); err != nil {
			t.Fatal(err)
		}
		d := &director{t: t, host: h, bin: bin, dir: t.TempDir()}
		t.Cleanup(d.dumpOnFailure)
		tp.dirs = append(tp.dirs, d)
		hosts = append(hosts, h)
	}
	addrs := append([]string(nil), o.webs...)
	if o.sorry {
		addrs = append(addrs, sorryIP)
	}
	for i, a := range addrs {
		name := fmt.Sprintf("web%d", i+1)
		if a == sorryIP {
			name = "sorry"
		}
		h := netnstest.AddHost(t, l, name, lab.Iface{Name: "eth0", LAN: "back", Addrs: []string{a + "/24"}})
		mustRun(t, h, "ip", "route", "add", "default", "via", o.gateway)
		w := newWebServer(t, h, a)
		tp.web[a] = w
		hosts = append(hosts, h)
	}
	netnstest.WaitLANReady(t, l, hosts...)
	for _, w := range tp.web {
		w.start()
	}
	return tp
}

func mustRun(t testing.TB, h *lab.Host, name string, args ...string) string {
	t.Helper()
	out, err := h.Run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// --- web servers --------------------------------------------------------

// webServer is a Debian nginx(-light) with a private prefix, serving the
// tutorial's page: "This is a test page which from IP:<addr>".
type webServer struct {
	t    testing.TB
	host *lab.Host
	addr string
	dir  string

	mu   sync.Mutex
	proc *lab.Proc
}

func pageOf(addr string) string { return "This is a test page which from IP:" + addr + "\n" }

func newWebServer(t testing.TB, h *lab.Host, addr string) *webServer {
	t.Helper()
	dir := t.TempDir()
	w := &webServer{t: t, host: h, addr: addr, dir: dir}
	for _, d := range []string{"html", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := strings.NewReplacer("DIR", dir).Replace(`daemon off;
master_process off;
worker_processes 1;
pid DIR/nginx.pid;
error_log DIR/error.log warn;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
	access_log off;
	default_type text/plain;
	client_body_temp_path DIR/tmp/body;
	proxy_temp_path DIR/tmp/proxy;
	fastcgi_temp_path DIR/tmp/fastcgi;
	uwsgi_temp_path DIR/tmp/uwsgi;
	scgi_temp_path DIR/tmp/scgi;
	keepalive_requests 1000000;
	keepalive_timeout 120s;
	server {
		listen 80 backlog=4096;
		listen 8080 backlog=4096;
		root DIR/html;
		index index.html;
		# Who answered, and the addresses the connection had at the server.
		location = /who { return 200 "$server_addr $remote_addr\n"; }
	}
}
`)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	w.setPage(pageOf(addr))
	t.Cleanup(w.stop)
	return w
}

// setPage replaces index.html (nginx serves the new content at once).
func (w *webServer) setPage(body string) {
	w.t.Helper()
	p := filepath.Join(w.dir, "html", "index.html")
	tmp := p + ".new"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		w.t.Fatal(err)
	}
}

// removePage deletes index.html: nginx answers 404 (no autoindex).
func (w *webServer) removePage() {
	w.t.Helper()
	if err := os.Remove(filepath.Join(w.dir, "html", "index.html")); err != nil {
		w.t.Fatal(err)
	}
}

// start runs nginx and waits until it accepts connections.
func (w *webServer) start() {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.host.Start("nginx", "-p", w.dir, "-e", filepath.Join(w.dir, "error.log"), "-c", filepath.Join(w.dir, "nginx.conf"))
	if err != nil {
		w.t.Fatal(err)
	}
	w.proc = p
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := w.host.Do(func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(w.addr, "80"), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return
		}
		select {
		case <-p.Done():
			log, _ := os.ReadFile(filepath.Join(w.dir, "error.log"))
			w.t.Fatalf("nginx on %s exited: %v\n%s\n%s", w.addr, p.Err(), p.Output(), log)
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("nginx on %s does not accept connections: %v", w.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills nginx (the tutorial's "stop one web server"): connections to
// port 80 are refused from then on.
func (w *webServer) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc != nil {
		w.proc.Kill()
		w.proc = nil
	}
}

// --- directors -------------------------------------------------------------

// director is one host running `vigil run`.
type director struct {
	t    testing.TB
	host *lab.Host
	bin  string
	dir  string

	mu    sync.Mutex
	proc  *lab.Proc
	older []string
	kd    *kernelDests
}

// kernel returns the director's netlink reader of the nftables maps.
func (d *director) kernel() *kernelDests {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kd == nil {
		d.kd = newKernelDests(d.t, d.host)
	}
	return d.kd
}

func (d *director) confPath() string { return filepath.Join(d.dir, "keepalived.conf") }
func (d *director) sock() string     { return filepath.Join(d.dir, "vigil.sock") }

func (d *director) writeConfig(c string) {
	d.t.Helper()
	if err := os.WriteFile(d.confPath(), []byte(c), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// start runs `vigil run -f keepalived.conf --api-socket S -p PIDFILE` in
// the director and waits until its API answers.
func (d *director) start() {
	d.t.Helper()
	d.mu.Lock()
	if d.proc != nil {
		d.older = append(d.older, d.proc.Output())
	}
	p, err := d.host.Start(d.bin, "run", "-f", d.confPath(), "--api-socket", d.sock(), "-p", filepath.Join(d.dir, "vigil.pid"), "--log-level", "debug")
	d.proc = p
	d.mu.Unlock()
	if err != nil {
		d.t.Fatal(err)
	}
	waitFor(d.t, patience, d.host.Name()+": vigil API answers", func() (bool, string) {
		select {
		case <-p.Done():
			d.t.Fatalf("%s: vigil exited: %v\n%s", d.host.Name(), p.Err(), p.Output())
		default:
		}
		_, err := d.status()
		return err == nil, fmt.Sprint(err)
	})
}

// kill9 kills vigil with SIGKILL, as a crash would: what it installed (the
// VIPs, the nftables table) stays behind in the kernel.
func (d *director) kill9() {
	d.t.Helper()
	d.mu.Lock()
	p := d.proc
	d.mu.Unlock()
	if err := syscall.Kill(p.PID(), syscall.SIGKILL); err != nil {
		d.t.Fatal(err)
	}
	if !p.Wait(10 * time.Second) {
		d.t.Fatal("vigil survived SIGKILL")
	}
}

func (d *director) signal(sig syscall.Signal) {
	d.t.Helper()
	d.mu.Lock()
	p := d.proc
	d.mu.Unlock()
	if err := p.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
}

func (d *director) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := strings.Join(d.older, "\n--- restart ---\n")
	if d.proc != nil {
		s += d.proc.Output()
	}
	return s
}

func (d *director) dumpOnFailure() {
	if d.t.Failed() {
		d.t.Logf("%s: vigil output:\n%s", d.host.Name(), d.output())
		if out, err := d.host.Run("nft", "list", "table", "inet", "vigil"); err == nil {
			d.t.Logf("%s: nft list table inet vigil:\n%s", d.host.Name(), out)
		}
		if out, err := d.host.Run("nft", "list", "table", "netdev", "vigil_dr"); err == nil {
			d.t.Logf("%s: nft list table netdev vigil_dr:\n%s", d.host.Name(), out)
		}
	}
}

func (d *director) status() (status.Snapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return api.NewClient(d.sock()).Status(ctx)
}

func (d *director) mustStatus() status.Snapshot {
	d.t.Helper()
	s, err := d.status()
	if err != nil {
		d.t.Fatalf("%s: status: %v", d.host.Name(), err)
	}
	return s
}

// vigil runs the vigil binary's client commands (status, reload, genhash)
// inside the director.
func (d *director) vigil(args ...string) (string, error) {
	return d.host.Run(d.bin, args...)
}

// realServer returns a real server's status: vs is the port of the VIP's
// virtual server, rs the real server's address (port 80).
func realServer(s status.Snapshot, vsPort int, rs string) (status.RealServer, bool) {
	name := fmt.Sprintf("[%s]:tcp:%d", vip, vsPort)
	for _, v := range s.VirtualServers {
		if v.Name != name {
			continue
		}
		for _, r := range v.RealServers {
			if r.Addr == rs+":80" {
				return r, true
			}
		}
	}
	return status.RealServer{}, false
}

func virtualServer(s status.Snapshot, vsPort int) (status.VirtualServer, bool) {
	name := fmt.Sprintf("[%s]:tcp:%d", vip, vsPort)
	for _, v := range s.VirtualServers {
		if v.Name == name {
			return v, true
		}
	}
	return status.VirtualServer{}, false
}

// --- the kernel's table ----------------------------------------------------

// nftDests reads `nft list table inet vigil` in the director and returns the
// destinations of the VIP's service on vsPort with their weights, as the
// service's `_dests` map holds them (weight-0 destinations included). ok is
// false when the table or the service is absent.
func nftDests(h *lab.Host, vsPort int) (dests map[string]int, ok bool, err error) {
	out, err := h.Run("nft", "list", "table", "inet", "vigil")
	if err != nil {
		if strings.Contains(err.Error(), "No such file") {
			return nil, false, nil
		}
		return nil, false, err
	}
	return parseDests(out, vsPort)
}

// parseDests finds `map svc_tcp_192_168_118_110_<port>_dests { ... elements
// = { ADDR . PORT : WEIGHT, ... } }` in nft's listing.
func parseDests(listing string, vsPort int) (map[string]int, bool, error) {
	name := fmt.Sprintf("svc_tcp_%s_%d_dests", strings.ReplaceAll(vip, ".", "_"), vsPort)
	i := strings.Index(listing, "map "+name+" {")
	if i < 0 {
		return nil, false, nil
	}
	block := listing[i:]
	if j := strings.Index(block, "\n\t}"); j >= 0 {
		block = block[:j]
	}
	dests := map[string]int{}
	k := strings.Index(block, "elements = {")
	if k < 0 {
		return dests, true, nil // an empty map
	}
	el := block[k+len("elements = {"):]
	if j := strings.Index(el, "}"); j >= 0 {
		el = el[:j]
	}
	for _, e := range strings.Split(el, ",") {
		e = strings.Join(strings.Fields(e), " ")
		if e == "" {
			continue
		}
		m := destRE.FindStringSubmatch(e)
		if m == nil {
			return nil, true, fmt.Errorf("nft map %s: element %q", name, e)
		}
		w, err := strconv.ParseInt(m[3], 0, 64) // nft prints the mark-typed weight in hex
		if err != nil {
			return nil, true, fmt.Errorf("nft map %s: element %q: %w", name, e, err)
		}
		dests[m[1]+":"+m[2]] = int(w)
	}
	return dests, true, nil
}

var destRE = regexp.MustCompile(`^([0-9.]+) \. ([0-9]+) : (0x[0-9a-f]+|[0-9]+)$`)

// --- the client ------------------------------------------------------------

// client makes HTTP requests from the client host, one new connection per
// request (so that every request is scheduled afresh, as curl in the
// tutorial's loop).
type client struct {
	host *lab.Host
	hc   *http.Client
}

func newClient(h *lab.Host) *client {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: dialIn(h)}
	return &client{host: h, hc: &http.Client{Transport: tr, Timeout: 3 * time.Second}}
}

// dialIn dials from inside h's namespace (the socket stays there).
func dialIn(h *lab.Host) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := h.Do(func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// keepAlive is one persistent HTTP connection from the client to the VIP.
type keepAlive struct {
	hc    *http.Client
	local string // the connection's client address
}

func (c *client) keepAlive() *keepAlive {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, IdleConnTimeout: 5 * time.Minute, DialContext: dialIn(c.host)}
	return &keepAlive{hc: &http.Client{Transport: tr, Timeout: 2 * time.Second}}
}

// get requests the page on the connection; reused tells whether the
// request went over the connection the previous one used.
func (k *keepAlive) get(port int) (server string, reused bool, err error) {
	var local string
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		reused = ci.Reused
		local = ci.Conn.LocalAddr().String()
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, fmt.Sprintf("http://%s:%d/", vip, port), nil)
	if err != nil {
		return "", false, err
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", false, err
	}
	if k.local != "" && local != k.local {
		reused = false
	}
	k.local = local
	return serverOf(string(b)), reused, nil
}

// get fetches http://vip:port/ and returns the server's address, as the
// page names it.
func (c *client) get(port int) (string, error) {
	return c.getURL(fmt.Sprintf("http://%s:%d/", vip, port))
}

func (c *client) getURL(url string) (string, error) {
	resp, err := c.hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return serverOf(string(b)), nil
}

func serverOf(page string) string {
	return strings.TrimSpace(strings.TrimPrefix(page, "This is a test page which from IP:"))
}

// spread makes n requests and counts the answers per server; failures are
// counted under "error".
func (c *client) spread(port, n int) map[string]int {
	m := map[string]int{}
	for range n {
		s, err := c.get(port)
		if err != nil {
			s = "error"
		}
		m[s]++
	}
	return m
}

// result is one request of a poller.
type result struct {
	start, end time.Time
	server     string
	err        error
}

// poller requests the VIP continuously from the client.
type poller struct {
	c     *client
	port  int
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	res   []result
	every time.Duration
}

// startPoller starts n workers each requesting every `every`.
func (c *client) startPoller(port, workers int, every time.Duration) *poller {
	p := &poller{c: c, port: port, stop: make(chan struct{}), done: make(chan struct{}), every: every}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-p.stop:
					return
				default:
				}
				r := result{start: time.Now()}
				r.server, r.err = c.get(port)
				r.end = time.Now()
				p.mu.Lock()
				p.res = append(p.res, r)
				p.mu.Unlock()
				select {
				case <-p.stop:
					return
				case <-time.After(every):
				}
			}
		}()
	}
	go func() { wg.Wait(); close(p.done) }()
	return p
}

// halt stops the poller and returns its results in start order.
func (p *poller) halt() []result {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]result(nil), p.res...)
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// tally counts a poller's results: answers per server and failures.
func tally(rs []result) (per map[string]int, failed []result) {
	per = map[string]int{}
	for _, r := range rs {
		if r.err != nil {
			failed = append(failed, r)
			continue
		}
		per[r.server]++
	}
	return per, failed
}

// --- waiting -----------------------------------------------------------------

// patience bounds each wait for something that normally takes a second or
// two: the machine is shared with other builds and tests, and a loaded one
// stretches everything. Timing assertions use their own, tighter slack.
const patience = 60 * time.Second

// waitFor polls cond until it holds and returns how long that took; at the
// timeout the test fails with cond's last detail.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, timeout, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitVIP waits until the director holds the VIP (its VRRP instance is
// MASTER) and the virtual service on vsPort is in the kernel.
func waitServing(t testing.TB, d *director, vsPorts ...int) {
	t.Helper()
	waitFor(t, patience, d.host.Name()+" holds the VIP", func() (bool, string) {
		out, err := d.host.Run("ip", "-o", "-4", "addr", "show", "dev", "eth0")
		return err == nil && strings.Contains(out, " "+vip+"/32"), out
	})
	for _, p := range vsPorts {
		waitFor(t, patience, fmt.Sprintf("%s: service %s:%d in nftables", d.host.Name(), vip, p), func() (bool, string) {
			dests, ok, err := nftDests(d.host, p)
			return ok && len(dests) > 0, fmt.Sprint(dests, err)
		})
	}
}

// errString renders a result's error briefly.
func errString(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// waitPool waits until addr is (in) or is not (!in) a destination with a
// weight above 0 of the VIP's service on vsPort, and returns how long that
// took.
func waitPool(t testing.TB, d *director, vsPort int, addr string, in bool, timeout time.Duration) time.Duration {
	t.Helper()
	what := fmt.Sprintf("%s: %s leaves the service on port %d", d.host.Name(), addr, vsPort)
	if in {
		what = fmt.Sprintf("%s: %s joins the service on port %d", d.host.Name(), addr, vsPort)
	}
	return waitFor(t, timeout, what, func() (bool, string) {
		dests, ok, err := d.kernel().dests(vsPort)
		if err != nil || !ok {
			return false, fmt.Sprint(ok, err)
		}
		return (dests[addr+":80"] > 0) == in, fmt.Sprint(dests)
	})
}

// waitChecked waits until every checker of every real server of the VIP's
// virtual servers has run once and succeeded.
func waitChecked(t testing.TB, d *director, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, d.host.Name()+": first checks succeed", func() (bool, string) {
		s := d.mustStatus()
		for _, v := range s.VirtualServers {
			for _, r := range v.RealServers {
				for _, c := range r.Checkers {
					if c.LastRun.IsZero() || !c.OK {
						return false, fmt.Sprintf("%s %s: %+v", v.Name, r.Addr, c)
					}
				}
			}
		}
		return len(s.VirtualServers) > 0, "no virtual servers"
	})
}

// kernelDests reads the same `_dests` map as nftDests, over netlink from a
// socket opened inside the director: no process to start, so it can poll
// every few milliseconds on a loaded machine where `nft list` (through `ip
// netns exec`) may take seconds. It does not use vigil's code.
type kernelDests struct {
	c *nftables.Conn
}

func newKernelDests(t testing.TB, h *lab.Host) *kernelDests {
	t.Helper()
	var c *nftables.Conn
	if err := h.Do(func() error {
		var err error
		c, err = nftables.New(nftables.AsLasting())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseLasting() })
	return &kernelDests{c: c}
}

// dests returns address:port -> weight; ok is false when the table or the
// service is absent.
func (k *kernelDests) dests(vsPort int) (map[string]int, bool, error) {
	name := fmt.Sprintf("svc_tcp_%s_%d_dests", strings.ReplaceAll(vip, ".", "_"), vsPort)
	set, err := k.c.GetSetByName(&nftables.Table{Name: "vigil", Family: nftables.TableFamilyINet}, name)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || strings.Contains(err.Error(), "no such file") {
			return nil, false, nil
		}
		return nil, false, err
	}
	els, err := k.c.GetSetElements(set)
	if err != nil {
		return nil, false, err
	}
	out := map[string]int{}
	for _, e := range els {
		// ipv4_addr . inet_service (padded to 4 bytes) : mark (big endian,
		// as nft prints it).
		if len(e.Key) != 8 || len(e.Val) != 4 {
			return nil, true, fmt.Errorf("%s: element %x : %x", name, e.Key, e.Val)
		}
		a := net.IP(e.Key[:4]).String()
		port := int(e.Key[4])<<8 | int(e.Key[5])
		out[fmt.Sprintf("%s:%d", a, port)] = int(binary.BigEndian.Uint32(e.Val))
	}
	return out, true, nil
}

// noteScript writes into dir a shell script that appends its arguments,
// one call a line, to a notes file; it returns both paths.
func noteScript(t testing.TB, dir string) (script, notes string) {
	t.Helper()
	notes = filepath.Join(dir, "notes")
	script = filepath.Join(dir, "note.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$*\" >> "+notes+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, notes
}
