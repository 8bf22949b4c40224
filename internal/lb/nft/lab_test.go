package nft

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/director/reconcile"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// tutorial is the seed tutorial's LVS layout in NAT form: a client on the
// front LAN, the director holding the VIP on the front LAN and routing to
// the back LAN, and two web servers on the back LAN whose default route is
// the director.
type tutorial struct {
	l                       *lab.Lab
	client, dir, web1, web2 *lab.Host
	be                      *Backend
	vip                     netip.Addr
}

var (
	tutVIP  = netip.MustParseAddr("192.168.118.110")
	tutWeb1 = netip.MustParseAddrPort("10.0.0.2:8080")
	tutWeb2 = netip.MustParseAddrPort("10.0.0.3:8080")
	tutKey  = lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: tutVIP, Port: 80}
	tutVIP6 = netip.MustParseAddr("fd01::110")
)

func newTutorial(t *testing.T, opts ...Options) *tutorial {
	t.Helper()
	l := netnstest.New(t, "lbnat")
	tt := &tutorial{l: l, vip: tutVIP}
	tt.client = netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{"192.168.118.50/24", "192.168.118.51/24", "192.168.119.52/24", "fd01::50/64"}})
	tt.dir = netnstest.AddHost(t, l, "dir",
		lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{"192.168.118.128/24", "192.168.119.128/24", "fd01::128/64"}},
		lab.Iface{Name: "eth1", LAN: "back", Addrs: []string{"10.0.0.1/24", "fd00::1/64"}})
	tt.web1 = netnstest.AddHost(t, l, "web1", lab.Iface{Name: "eth0", LAN: "back", Addrs: []string{"10.0.0.2/24", "fd00::2/64"}})
	tt.web2 = netnstest.AddHost(t, l, "web2", lab.Iface{Name: "eth0", LAN: "back", Addrs: []string{"10.0.0.3/24", "fd00::3/64"}})
	// The VIPs: in the product the VRRP engine adds them; here the test does.
	mustRun(t, tt.dir, "ip", "addr", "add", tutVIP.String()+"/32", "dev", "eth0")
	mustRun(t, tt.dir, "ip", "addr", "add", tutVIP6.String()+"/128", "dev", "eth0", "nodad")
	for _, k := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
		if err := tt.dir.Sysctl(k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []*lab.Host{tt.web1, tt.web2} {
		mustRun(t, w, "ip", "route", "add", "default", "via", "10.0.0.1")
		mustRun(t, w, "ip", "-6", "route", "add", "default", "via", "fd00::1")
		serveHTTP(t, w, ":8080", w.Name())
	}
	if err := tt.dir.Do(func() error {
		var err error
		var o Options
		if len(opts) > 0 {
			o = opts[0]
		}
		tt.be, err = New(o)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tt.be.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return tt
}

func mustRun(t *testing.T, h *lab.Host, name string, args ...string) string {
	t.Helper()
	out, err := h.Run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// serveHTTP answers every request with name, from inside h.
func serveHTTP(t *testing.T, h *lab.Host, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, name)
	})}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

// dial connects from inside h (the socket lives in h's namespace).
func dial(h *lab.Host, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		d := net.Dialer{Timeout: 3 * time.Second}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		var err error
		c, err = d.Dial("tcp", dst.String())
		return err
	})
	return c, err
}

// get makes one request on a new connection from the client to VIP:80 and
// returns the body (the web server's name).
func (tt *tutorial) get(src netip.Addr) (string, error) {
	return tt.getFrom(src, netip.AddrPortFrom(tt.vip, 80))
}

func (tt *tutorial) getFrom(src netip.Addr, dst netip.AddrPort) (string, error) {
	c, err := dial(tt.client, src, dst)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return roundTrip(c, bufio.NewReader(c))
}

func roundTrip(c net.Conn, br *bufio.Reader) (string, error) {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// keepAlive is one long-lived HTTP/1.1 connection from the client.
type keepAlive struct {
	c  net.Conn
	br *bufio.Reader
}

func (tt *tutorial) keepAlive(t *testing.T) *keepAlive {
	t.Helper()
	c, err := dial(tt.client, netip.Addr{}, netip.AddrPortFrom(tt.vip, 80))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{c: c, br: bufio.NewReader(c)}
}

func (k *keepAlive) get() (string, error) { return roundTrip(k.c, k.br) }

// count makes n requests on new connections and counts the answers.
func (tt *tutorial) count(t *testing.T, n int, src netip.Addr) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		body, err := tt.get(src)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		got[body]++
	}
	return got
}

// state is the tutorial's virtual server with the given weights (a weight
// < 0 leaves the server out).
func state(svc lb.Service, w1, w2 int) lb.State {
	s := lb.NewState()
	if svc.Netmask == 0 {
		svc.Netmask = 0xffffffff
	}
	s.Services[tutKey] = svc
	if w1 >= 0 {
		s.Dests[lb.DestKey{Service: tutKey, Addr: tutWeb1}] = lb.Dest{Weight: uint32(w1), Method: lb.NAT}
	}
	if w2 >= 0 {
		s.Dests[lb.DestKey{Service: tutKey, Addr: tutWeb2}] = lb.Dest{Weight: uint32(w2), Method: lb.NAT}
	}
	return s
}

func (tt *tutorial) apply(t *testing.T, s lb.State) {
	t.Helper()
	if err := tt.be.Apply(t.Context(), s); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func want(t *testing.T, what string, got, w map[string]int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(w) {
		t.Errorf("%s: got %v, want %v", what, got, w)
	}
}

var (
	src1 = netip.MustParseAddr("192.168.118.50")
	src2 = netip.MustParseAddr("192.168.118.51")
	src3 = netip.MustParseAddr("192.168.119.52")
)

func TestNATSchedulers(t *testing.T) {
	tt := newTutorial(t)

	// rr: numgen inc alternates exactly.
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, 1))
	want(t, "rr", tt.count(t, 20, src1), map[string]int{"web1": 10, "web2": 10})

	// A client on the director itself goes through the output hook.
	local := map[string]int{}
	for range 4 {
		c, err := dial(tt.dir, netip.Addr{}, netip.AddrPortFrom(tutVIP, 80))
		if err != nil {
			t.Fatalf("local client: %v", err)
		}
		body, err := roundTrip(c, bufio.NewReader(c))
		c.Close()
		if err != nil {
			t.Fatalf("local client: %v", err)
		}
		local[body]++
	}
	want(t, "rr from the director", local, map[string]int{"web1": 2, "web2": 2})

	// wrr 3:1: the IPVS period web1 web1 web1 web2.
	tt.apply(t, state(lb.Service{Scheduler: "wrr"}, 3, 1))
	want(t, "wrr 3:1", tt.count(t, 40, src1), map[string]int{"web1": 30, "web2": 10})

	// sh: a client always lands on the same server.
	tt.apply(t, state(lb.Service{Scheduler: "sh"}, 1, 1))
	seen := map[string]bool{}
	for _, src := range []netip.Addr{src1, src2, src3} {
		got := tt.count(t, 8, src)
		if len(got) != 1 {
			t.Errorf("sh: client %v spread over %v", src, got)
		}
		for k := range got {
			seen[k] = true
		}
	}
	t.Logf("sh: servers used by 3 clients: %v", seen)

	// Weight 0 drains: no new connections, established ones continue.
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, 1))
	ka := map[string]*keepAlive{}
	for len(ka) < 2 {
		k := tt.keepAlive(t)
		body, err := k.get()
		if err != nil {
			t.Fatal(err)
		}
		ka[body] = k
	}
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, 0))
	want(t, "web2 drained", tt.count(t, 10, src1), map[string]int{"web1": 10})
	for name, k := range ka {
		for range 3 {
			if body, err := k.get(); err != nil || body != name {
				t.Errorf("established connection to %s after drain: %q %v", name, body, err)
			}
		}
	}
	// Undrain.
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, 1))
	want(t, "web2 back", tt.count(t, 10, src1), map[string]int{"web1": 5, "web2": 5})
}

// persistence_timeout: a client sticks to its server until the timeout runs
// out after its last new connection; persistence_granularity groups clients.
func TestNATPersistence(t *testing.T) {
	tt := newTutorial(t)
	tt.apply(t, state(lb.Service{Scheduler: "rr", Timeout: 2, Netmask: 0xffffff00}, 1, 1))

	first, err := tt.get(src1)
	if err != nil {
		t.Fatal(err)
	}
	// Same client, and a client of the same /24: the same server.
	want(t, "sticky", tt.count(t, 6, src1), map[string]int{first: 6})
	want(t, "same /24", tt.count(t, 6, src2), map[string]int{first: 6})
	// Another /24 takes the next server of the rotation.
	other, err := tt.get(src3)
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Errorf("client of another /24 went to %s too", other)
	}
	// New connections refresh the timeout: 1.5 s apart they stay.
	time.Sleep(1500 * time.Millisecond)
	want(t, "refreshed", tt.count(t, 1, src1), map[string]int{first: 1})
	time.Sleep(1500 * time.Millisecond)
	want(t, "refreshed again", tt.count(t, 1, src1), map[string]int{first: 1})
	// After the timeout both clients are scheduled again: the rotation
	// (web1 web2, two picks made so far) gives web1 to whoever asks first.
	if first != "web1" {
		t.Fatalf("the first pick of a new table went to %s", first)
	}
	time.Sleep(2500 * time.Millisecond)
	want(t, "other /24 rescheduled", tt.count(t, 1, src3), map[string]int{"web1": 1})
	want(t, "first client rescheduled", tt.count(t, 1, src1), map[string]int{"web2": 1})

	// Removing the persisted server sends its clients elsewhere, while the
	// other server's clients stay.
	now, _ := tt.get(src1)
	otherNow, _ := tt.get(src3)
	if now == otherNow {
		t.Fatalf("both clients on %s", now)
	}
	w1, w2 := 1, 1
	if now == "web1" {
		w1 = -1
	} else {
		w2 = -1
	}
	tt.apply(t, state(lb.Service{Scheduler: "rr", Timeout: 2, Netmask: 0xffffff00}, w1, w2))
	want(t, "after removing its server", tt.count(t, 3, src1), map[string]int{otherNow: 3})
	want(t, "the other client stays", tt.count(t, 3, src3), map[string]int{otherNow: 3})
}

// A reload that changes persistence_timeout (and the scheduler) keeps
// every client on its server, as IPVS keeps its persistence templates when
// a service is edited: the client sets stay, with the new timeout for the
// clients they learn or refresh from then on.
func TestNATPersistenceTimeoutChangeKeepsClients(t *testing.T) {
	tt := newTutorial(t)
	tt.apply(t, state(lb.Service{Scheduler: "rr", Timeout: 300, Netmask: 0xffffffff}, 1, 1))
	// rr: the first client gets web1, the second web2.
	want(t, "first client", tt.count(t, 1, src1), map[string]int{"web1": 1})
	want(t, "second client", tt.count(t, 1, src3), map[string]int{"web2": 1})
	tt.apply(t, state(lb.Service{Scheduler: "wrr", Timeout: 600, Netmask: 0xffffffff}, 1, 1))
	// The second client asks first: a rotation started anew would give
	// it web1.
	want(t, "second client after the change", tt.count(t, 3, src3), map[string]int{"web2": 3})
	want(t, "first client after the change", tt.count(t, 3, src1), map[string]int{"web1": 3})
	out := mustRun(t, tt.dir, "nft", "list", "set", "inet", "vigil", "svc_tcp_192_168_118_110_80_aff_rs_10_0_0_2_8080")
	if !strings.Contains(out, "timeout 10m") {
		t.Errorf("the client set kept its old timeout:\n%s", out)
	}
	// A new granularity makes new clients: the sets start empty.
	tt.apply(t, state(lb.Service{Scheduler: "wrr", Timeout: 600, Netmask: 0xffffff00}, 1, 1))
	want(t, "second client after a new granularity", tt.count(t, 1, src3), map[string]int{"web1": 1})
}

// Removing a server from the desired state: no request fails, no new
// connection reaches it, and established connections (to it and to the
// other) live on; adding it back makes it serve again.
func TestNATRemoveAdd(t *testing.T) {
	tt := newTutorial(t)
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, 1))
	ka := map[string]*keepAlive{}
	for len(ka) < 2 {
		k := tt.keepAlive(t)
		body, err := k.get()
		if err != nil {
			t.Fatal(err)
		}
		ka[body] = k
	}

	// Traffic while the change happens.
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var failures []error
	var after map[string]int
	changed := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		past := false
		for ctx.Err() == nil {
			select {
			case <-changed:
				if !past {
					past = true
					mu.Lock()
					after = map[string]int{}
					mu.Unlock()
				}
			default:
			}
			body, err := tt.get(src1)
			mu.Lock()
			if err != nil {
				failures = append(failures, err)
			} else if past {
				after[body]++
			}
			mu.Unlock()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, -1))
	close(changed)
	time.Sleep(700 * time.Millisecond)
	cancel()
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d requests failed during the change: %v", len(failures), failures[0])
	}
	// The request in flight at the change may have been scheduled before it.
	if after["web2"] > 1 || after["web1"] < 5 {
		t.Errorf("after removing web2: %v", after)
	}
	for name, k := range ka {
		if body, err := k.get(); err != nil || body != name {
			t.Errorf("established connection to %s after the removal: %q %v", name, body, err)
		}
	}
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, 1))
	want(t, "web2 added back", tt.count(t, 10, src1), map[string]int{"web1": 5, "web2": 5})
}

// The table deleted by hand comes back within the reconciler's resync
// interval.
func TestNATDriftRepair(t *testing.T) {
	tt := newTutorial(t)
	r := reconcile.New(tt.be, reconcile.Options{Resync: 500 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	r.Set(state(lb.Service{Scheduler: "rr"}, 1, 1))
	waitFor(t, 3*time.Second, "first apply", func() bool { return r.Stats().Applies == 1 })
	want(t, "before", tt.count(t, 4, src1), map[string]int{"web1": 2, "web2": 2})

	mustRun(t, tt.dir, "nft", "delete", "table", "inet", "vigil")
	if _, err := tt.get(src1); err == nil {
		t.Error("request through the VIP succeeded without the table")
	}
	waitFor(t, 3*time.Second, "repair", func() bool { return r.Stats().Repairs >= 1 && r.Stats().Applies >= 2 })
	want(t, "after repair", tt.count(t, 4, src1), map[string]int{"web1": 2, "web2": 2})

	// A rule deleted by hand is a damaged table: rebuilt too.
	out := mustRun(t, tt.dir, "nft", "-a", "list", "chain", "inet", "vigil", serviceName(tutKey))
	i := strings.LastIndex(out, "# handle ")
	if i < 0 {
		t.Fatalf("no rule handle in %s", out)
	}
	var handle int
	fmt.Sscan(out[i+len("# handle "):], &handle)
	mustRun(t, tt.dir, "nft", "delete", "rule", "inet", "vigil", serviceName(tutKey), "handle", fmt.Sprint(handle))
	applies := r.Stats().Applies
	waitFor(t, 3*time.Second, "rule repair", func() bool { return r.Stats().Applies > applies })
	want(t, "after rule repair", tt.count(t, 4, src1), map[string]int{"web1": 2, "web2": 2})
	if st := r.Stats(); st.Errors != 0 {
		t.Errorf("reconciler errors: %+v", st)
	}
}

// With SyncedConntrack, a TCP packet without SYN that would start a
// connection is dropped in prerouting (its state is on its way from the
// other director); connections that start with SYN are scheduled as
// before, and the table reads back undamaged.
func TestNATSyncedConntrackGuard(t *testing.T) {
	tt := newTutorial(t, Options{SyncedConntrack: true})
	if err := tt.dir.Do(func() error { return tt.be.Apply(t.Context(), state(lb.Service{Scheduler: "rr"}, 1, 1)) }); err != nil {
		t.Fatal(err)
	}
	want(t, "new connections", tt.count(t, 4, src1), map[string]int{"web1": 2, "web2": 2})
	out := mustRun(t, tt.dir, "nft", "list", "chain", "inet", "vigil", chainPrerouting)
	if !strings.Contains(out, "tcp flags ! syn drop") {
		t.Errorf("prerouting lacks the guard:\n%s", out)
	}
	if out := mustRun(t, tt.dir, "nft", "list", "chain", "inet", "vigil", chainOutput); strings.Contains(out, "drop") {
		t.Errorf("output chain has the guard too:\n%s", out)
	}
	if err := tt.dir.Do(func() error {
		b := tt.be
		obs, err := b.observe(t.Context())
		if err == nil && obs.damaged {
			err = fmt.Errorf("the table reads back damaged")
		}
		return err
	}); err != nil {
		t.Error(err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// IPv6 services and firewall-mark services.
func TestNATIPv6AndFWMark(t *testing.T) {
	tt := newTutorial(t)
	k6 := lb.ServiceKey{Family: lb.IPv6, Proto: lb.TCP, Addr: tutVIP6, Port: 80}
	fwm := lb.ServiceKey{Family: lb.IPv4, FWMark: 5}
	s := lb.NewState()
	s.Services[k6] = lb.Service{Scheduler: "wrr", Netmask: 128}
	s.Dests[lb.DestKey{Service: k6, Addr: netip.MustParseAddrPort("[fd00::2]:8080")}] = lb.Dest{Weight: 1, Method: lb.NAT}
	s.Dests[lb.DestKey{Service: k6, Addr: netip.MustParseAddrPort("[fd00::3]:8080")}] = lb.Dest{Weight: 2, Method: lb.NAT}
	s.Services[fwm] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
	s.Dests[lb.DestKey{Service: fwm, Addr: tutWeb1}] = lb.Dest{Weight: 1, Method: lb.NAT}
	s.Dests[lb.DestKey{Service: fwm, Addr: tutWeb2}] = lb.Dest{Weight: 1, Method: lb.NAT}
	tt.apply(t, s)

	got := map[string]int{}
	for range 9 {
		body, err := tt.getFrom(netip.Addr{}, netip.AddrPortFrom(tutVIP6, 80))
		if err != nil {
			t.Fatalf("IPv6 request: %v", err)
		}
		got[body]++
	}
	want(t, "IPv6 wrr 1:2", got, map[string]int{"web1": 3, "web2": 6})

	// The mark is set by the administrator's own rules (as for IPVS), in a
	// table vigil does not own, before destination NAT.
	mustRun(t, tt.dir, "nft", "add table ip mangle; add chain ip mangle pre { type filter hook prerouting priority mangle; }; add rule ip mangle pre ip daddr 192.168.118.110 tcp dport 443 meta mark set 5")
	got = map[string]int{}
	for range 4 {
		body, err := tt.getFrom(netip.Addr{}, netip.AddrPortFrom(tutVIP, 443))
		if err != nil {
			t.Fatalf("fwmark request: %v", err)
		}
		got[body]++
	}
	want(t, "fwmark rr", got, map[string]int{"web1": 2, "web2": 2})
	// The other table is left alone at Close.
	if err := tt.be.Close(); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, tt.dir, "nft", "list", "tables")
	if strings.Contains(out, "vigil") || !strings.Contains(out, "table ip mangle") {
		t.Errorf("after Close: %s", out)
	}
}

// keepalived's policy on the wire: the seed's virtual server (as NAT) with a
// quorum of 2 and a sorry server; health verdicts go through Policy,
// Reconciler and the nftables backend.
func TestPolicyOnTheWire(t *testing.T) {
	tt := newTutorial(t)
	serveHTTP(t, tt.web1, ":8081", "sorry")
	spec := lb.VirtualServer{
		Addr: tutVIP, Port: 80, Proto: lb.TCP, Family: lb.IPv4, Scheduler: "rr", Method: lb.NAT,
		Quorum: 2, QuorumDown: "/etc/keepalived/down.sh",
		Sorry: &lb.RealServer{Addr: tutWeb1.Addr(), Port: 8081, Method: lb.NAT},
		Reals: []lb.RealServer{{Addr: tutWeb1.Addr(), Port: 8080, Weight: 1, Method: lb.NAT}, {Addr: tutWeb2.Addr(), Port: 8080, Weight: 1, Method: lb.NAT}},
	}
	specs := []lb.VirtualServer{spec}
	if err := lb.Err(tt.be.Capabilities().Check(specs)); err != nil {
		t.Fatal(err)
	}
	p := lb.NewPolicy(lb.PolicyOptions{})
	r := reconcile.New(tt.be, reconcile.Options{Resync: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	id := specs[0].ID()
	step := func(web2 lb.HealthState) []lb.Event {
		res := p.Desired(specs, lb.Health{{VS: id, Addr: tutWeb2}: {State: web2}, {VS: id, Addr: tutWeb1}: {State: lb.Up}}, nil)
		n := r.Stats().Applies
		r.Set(res.State)
		// Every step changes the state, so it is one more apply.
		waitFor(t, 3*time.Second, "apply", func() bool { return r.Stats().Applies > n })
		return res.Events
	}
	step(lb.Up)
	want(t, "both up", tt.count(t, 4, src1), map[string]int{"web1": 2, "web2": 2})
	evs := step(lb.Down)
	if len(evs) != 2 || evs[1].Kind != lb.QuorumDown || evs[1].Script != "/etc/keepalived/down.sh" {
		t.Errorf("events %+v", evs)
	}
	want(t, "quorum lost: the sorry server", tt.count(t, 4, src1), map[string]int{"sorry": 4})
	step(lb.Up)
	want(t, "quorum back", tt.count(t, 4, src1), map[string]int{"web1": 2, "web2": 2})
}
