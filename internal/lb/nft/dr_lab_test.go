package nft

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// drLab is the seed tutorial's LVS-DR layout: one LAN holding the client,
// the director (with the VIP) and real servers that hold the VIP on lo with
// arp_ignore=1 / arp_announce=2 and answer the client directly. The
// director's ip_forward stays 0: direct routing does not route.
type drLab struct {
	l      *lab.Lab
	client *lab.Host
	dir    *lab.Host
	webs   map[string]*lab.Host
	be     *Backend
}

var (
	drVIP  = netip.MustParseAddr("192.168.118.110")
	drVIP6 = netip.MustParseAddr("fd01::110")
	drKey  = lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: drVIP, Port: 80}
	drKey6 = lb.ServiceKey{Family: lb.IPv6, Proto: lb.TCP, Addr: drVIP6, Port: 80}
	drWebs = map[string]string{"web1": "192.168.118.131", "web2": "192.168.118.129", "web3": "192.168.118.132"}
	drWeb6 = map[string]string{"web1": "fd01::131", "web2": "fd01::129", "web3": "fd01::132"}
)

func newDRLab(t *testing.T) *drLab {
	t.Helper()
	l := netnstest.New(t, "lbdr")
	d := &drLab{l: l, webs: map[string]*lab.Host{}}
	d.client = netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.118.50/24", "192.168.118.51/24", "192.168.118.60/24", "fd01::50/64"}})
	d.dir = netnstest.AddHost(t, l, "dir", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.118.128/24", "fd01::128/64"}})
	mustRun(t, d.dir, "ip", "addr", "add", drVIP.String()+"/32", "dev", "eth0")
	mustRun(t, d.dir, "ip", "addr", "add", drVIP6.String()+"/128", "dev", "eth0", "nodad")
	for _, name := range []string{"web1", "web2", "web3"} {
		h := netnstest.AddHost(t, l, name, lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{drWebs[name] + "/24", drWeb6[name] + "/64"}})
		for _, k := range []string{"net/ipv4/conf/all/arp_ignore", "net/ipv4/conf/eth0/arp_ignore", "net/ipv4/conf/lo/arp_ignore"} {
			if err := h.Sysctl(k, "1"); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range []string{"net/ipv4/conf/all/arp_announce", "net/ipv4/conf/eth0/arp_announce", "net/ipv4/conf/lo/arp_announce"} {
			if err := h.Sysctl(k, "2"); err != nil {
				t.Fatal(err)
			}
		}
		mustRun(t, h, "ip", "addr", "add", drVIP.String()+"/32", "dev", "lo")
		mustRun(t, h, "ip", "addr", "add", drVIP6.String()+"/128", "dev", "lo")
		serveDR(t, h, name)
		d.webs[name] = h
	}
	netnstest.WaitLANReady(t, l, d.client, d.dir, d.webs["web1"], d.webs["web2"], d.webs["web3"])
	if err := d.dir.Do(func() error {
		var err error
		d.be, err = New(Options{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.be.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

// serveDR answers with the server's name, the client address it saw and
// the local address the connection reached: "web1 192.168.118.50 192.168.118.110".
func serveDR(t *testing.T, h *lab.Host, name string) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", ":80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			local := r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()
			la, _ := netip.ParseAddrPort(local)
			ra, _ := netip.ParseAddrPort(r.RemoteAddr)
			fmt.Fprintf(w, "%s %s %s", name, ra.Addr().Unmap(), la.Addr().Unmap())
		}),
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

func drState(k lb.ServiceKey, svc lb.Service, weights map[string]int) lb.State {
	s := lb.NewState()
	if svc.Netmask == 0 {
		svc.Netmask = lb.FullNetmask(k.Family)
	}
	s.Services[k] = svc
	addrs := drWebs
	if k.Family == lb.IPv6 {
		addrs = drWeb6
	}
	for name, w := range weights {
		a := netip.AddrPortFrom(netip.MustParseAddr(addrs[name]), 80)
		s.Dests[lb.DestKey{Service: k, Addr: a}] = lb.Dest{Weight: uint32(w), Method: lb.DR}
	}
	return s
}

func (d *drLab) apply(t *testing.T, s lb.State) {
	t.Helper()
	if err := d.be.Apply(t.Context(), s); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// get makes one request on a new connection and returns the answer.
func (d *drLab) get(src, vip netip.Addr) (string, error) {
	c, err := dial(d.client, src, netip.AddrPortFrom(vip, 80))
	if err != nil {
		return "", err
	}
	defer c.Close()
	return roundTrip(c, bufio.NewReader(c))
}

// spread makes n requests on new connections from src and counts the
// servers that answered.
func (d *drLab) spread(t *testing.T, n int, src, vip netip.Addr) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		body, err := d.get(src, vip)
		if err != nil {
			t.Fatalf("request to %v from %v: %v", vip, src, err)
		}
		f := strings.Fields(body)
		if len(f) != 3 || f[1] != src.String() || f[2] != vip.String() {
			t.Fatalf("answer %q: want the client %v as source and the VIP %v as destination", body, src, vip)
		}
		got[f[0]]++
	}
	return got
}

func (d *drLab) keepAlive(t *testing.T, vip netip.Addr) *keepAlive {
	t.Helper()
	c, err := dial(d.client, netip.Addr{}, netip.AddrPortFrom(vip, 80))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{c: c, br: bufio.NewReader(c)}
}

func server(body string) string { return strings.Fields(body + " ")[0] }

var cli = netip.MustParseAddr("192.168.118.50")

// TestDRForwards: requests reach both real servers with the client's
// address as source and the VIP as destination; the state reads back.
func TestDRForwards(t *testing.T) {
	d := newDRLab(t)
	st := drState(drKey, lb.Service{Scheduler: "rr"}, map[string]int{"web1": 1, "web2": 1})
	d.apply(t, st)
	got := d.spread(t, 40, cli, drVIP)
	if got["web1"] < 8 || got["web2"] < 8 || len(got) != 2 {
		t.Errorf("rr over 40 connections: %v, want both servers", got)
	}
	obs, err := d.be.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !obs.Equal(project(st)) {
		t.Errorf("observed:\n%v\nwant:\n%v", obs, project(st))
	}
	flows, err := d.be.Flows(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range flows {
		total += n
	}
	if total < 40 {
		t.Errorf("flows remembered: %v, want at least the 40 connections made", flows)
	}
	out, err := d.dir.Run("nft", "list", "table", "netdev", "vigil_dr")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`hook ingress device "eth0"`,
		"meta pkttype != host accept",
		"fwd ip to 192.168.118.131 device \"eth0\"",
		"jhash @nh,96,32 . @nh,128,32 . th sport . th dport mod 1021 seed 0x76696731 map @svc_tcp_192_168_118_110_80_pick_1021",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("nft list table netdev vigil_dr has no %q:\n%s", w, out)
		}
	}
	if testing.Verbose() {
		t.Logf("nft list table netdev vigil_dr:\n%s", out)
	}
	// The same state again sends nothing and keeps serving.
	d.apply(t, st)
	d.spread(t, 4, cli, drVIP)

	// Deleted by hand, the table is found missing and rebuilt; closed, the
	// backend removes it.
	mustRun(t, d.dir, "nft", "delete", "table", "netdev", "vigil_dr")
	if obs, err := d.be.Observe(t.Context()); err != nil || len(obs.Services) != 0 {
		t.Fatalf("observe after deletion: %v %v", obs, err)
	}
	d.apply(t, st)
	d.spread(t, 4, cli, drVIP)
	var be2 *Backend
	if err := d.dir.Do(func() error { var err error; be2, err = New(Options{}); return err }); err != nil {
		t.Fatal(err)
	}
	if obs, err := be2.Observe(t.Context()); err != nil || !obs.Equal(project(st)) {
		t.Errorf("a second backend observes %v, %v", obs, err)
	}
	if err := be2.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := d.dir.Run("nft", "list", "tables"); err != nil || strings.Contains(out, "vigil_dr") {
		t.Errorf("after Close: %q %v", out, err)
	}
}

// TestDRPoolChanges: established connections stay on their real server
// while servers join, drain (weight 0) and leave; a removed server's
// connections are scheduled again; IPv6 forwards the same way; persistence
// groups clients by granularity; a fwmark service sees marks set at ingress.
func TestDRPoolChanges(t *testing.T) {
	d := newDRLab(t)
	svc := lb.Service{Scheduler: "wrr"}
	d.apply(t, drState(drKey, svc, map[string]int{"web1": 1, "web2": 1}))
	conns := map[*keepAlive]string{}
	for range 20 {
		k := d.keepAlive(t, drVIP)
		body, err := k.get()
		if err != nil {
			t.Fatal(err)
		}
		conns[k] = server(body)
	}
	check := func(what string, skip string) {
		t.Helper()
		for k, name := range conns {
			if name == skip {
				continue
			}
			body, err := k.get()
			if err != nil || server(body) != name {
				t.Errorf("%s: connection on %s: %q %v", what, name, body, err)
			}
		}
	}
	// A server joins: it takes only new connections.
	d.apply(t, drState(drKey, svc, map[string]int{"web1": 1, "web2": 1, "web3": 1}))
	check("web3 added", "")
	if got := d.spread(t, 30, cli, drVIP); got["web3"] == 0 {
		t.Errorf("web3 added: new connections %v", got)
	}
	// Weight 0: no new connections, established ones continue.
	d.apply(t, drState(drKey, svc, map[string]int{"web1": 1, "web2": 0, "web3": 1}))
	check("web2 drained", "")
	if got := d.spread(t, 30, cli, drVIP); got["web2"] != 0 {
		t.Errorf("web2 drained: new connections %v", got)
	}
	// web1 leaves: only its connections move.
	d.apply(t, drState(drKey, svc, map[string]int{"web2": 1, "web3": 1}))
	check("web1 removed", "web1")
	for k, name := range conns {
		if name == "web1" {
			if body, err := k.get(); err == nil {
				t.Errorf("a connection of the removed web1 answered %q (it was scheduled to a server without it)", body)
			}
		}
	}

	// sh: each client keeps one server; dh: one VIP, one server; fo: the
	// highest weight takes every new connection.
	d.apply(t, drState(drKey, lb.Service{Scheduler: "sh"}, map[string]int{"web1": 1, "web2": 1, "web3": 1}))
	for _, src := range []string{"192.168.118.50", "192.168.118.51", "192.168.118.60"} {
		if got := d.spread(t, 6, netip.MustParseAddr(src), drVIP); len(got) != 1 {
			t.Errorf("sh: client %s spread over %v", src, got)
		}
	}
	d.apply(t, drState(drKey, lb.Service{Scheduler: "dh"}, map[string]int{"web1": 1, "web2": 1, "web3": 1}))
	if got := d.spread(t, 10, cli, drVIP); len(got) != 1 {
		t.Errorf("dh: %v, want one server for the one VIP", got)
	}
	d.apply(t, drState(drKey, lb.Service{Scheduler: "fo"}, map[string]int{"web1": 1, "web2": 3, "web3": 2}))
	if got := d.spread(t, 10, cli, drVIP); got["web2"] != 10 {
		t.Errorf("fo: %v, want web2 (weight 3) only", got)
	}

	// IPv6: the neighbour form of fwd over ND.
	d.apply(t, drState(drKey6, lb.Service{Scheduler: "rr"}, map[string]int{"web1": 1, "web2": 1}))
	cli6 := netip.MustParseAddr("fd01::50")
	if got := d.spread(t, 30, cli6, drVIP6); got["web1"] == 0 || got["web2"] == 0 {
		t.Errorf("IPv6 DR: %v", got)
	}

	// Persistence with a /24 granularity: clients .50, .51 and .60 share
	// one server; the hash of the masked client picks it.
	d.apply(t, drState(drKey, lb.Service{Scheduler: "rr", Timeout: 60, Netmask: 0xffffff00}, map[string]int{"web1": 1, "web2": 1, "web3": 1}))
	seen := map[string]int{}
	for _, src := range []string{"192.168.118.50", "192.168.118.51", "192.168.118.60"} {
		for name, n := range d.spread(t, 5, netip.MustParseAddr(src), drVIP) {
			seen[name] += n
		}
	}
	if len(seen) != 1 {
		t.Errorf("persistence /24: %v, want one server", seen)
	}

	// fwmark: marked at ingress by the operator's own netdev chain.
	mk := lb.ServiceKey{Family: lb.IPv4, FWMark: 7}
	st := drState(mk, lb.Service{Scheduler: "rr"}, nil)
	for _, name := range []string{"web1", "web2"} {
		st.Dests[lb.DestKey{Service: mk, Addr: netip.AddrPortFrom(netip.MustParseAddr(drWebs[name]), 80)}] = lb.Dest{Weight: 1, Method: lb.DR}
	}
	d.apply(t, st)
	mustRun(t, d.dir, "nft", "add table netdev marker; add chain netdev marker pre { type filter hook ingress device eth0 priority -100; }; add rule netdev marker pre ip daddr 192.168.118.110 tcp dport 80 meta mark set 7")
	if got := d.spread(t, 30, cli, drVIP); got["web1"] == 0 || got["web2"] == 0 {
		t.Errorf("fwmark DR: %v", got)
	}
	obs, err := d.be.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !obs.Equal(project(st)) {
		t.Errorf("observed:\n%v\nwant:\n%v", obs, project(st))
	}
}
