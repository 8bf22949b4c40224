package ipvs

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// These tests need a kernel with IPVS; they skip (everywhere, CI included)
// through the one gate netnstest.IPVS.

func run(t *testing.T, h *lab.Host, name string, args ...string) {
	t.Helper()
	if _, err := h.Run(name, args...); err != nil {
		t.Fatal(err)
	}
}

func serve(t *testing.T, h *lab.Host, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, name) })}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

// ioWait bounds one connection or read: generous, because an emulated
// guest on a busy host has been seen to take more than 3 s for one request.
const ioWait = 15 * time.Second

func get(h *lab.Host, dst netip.AddrPort) (string, error) {
	var c net.Conn
	if err := h.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", dst.String(), ioWait)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioWait))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func newBackend(t *testing.T, h *lab.Host) *Backend {
	t.Helper()
	var b *Backend
	if err := h.Do(func() error {
		var err error
		b, err = New(Options{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func count(t *testing.T, h *lab.Host, dst netip.AddrPort, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		body, err := get(h, dst)
		if err != nil {
			t.Fatalf("request to %v: %v", dst, err)
		}
		got[body]++
	}
	return got
}

// LVS-NAT: the real servers route back through the director.
func TestKernelNAT(t *testing.T) {
	netnstest.IPVS(t)
	l := netnstest.New(t, "ipvsnat")
	client := netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{"192.168.118.50/24"}})
	dir := netnstest.AddHost(t, l, "dir",
		lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{"192.168.118.128/24", "192.168.118.110/32"}},
		lab.Iface{Name: "eth1", LAN: "back", Addrs: []string{"10.0.0.1/24"}})
	if err := dir.Sysctl("net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"web1", "web2"} {
		h := netnstest.AddHost(t, l, name, lab.Iface{Name: "eth0", LAN: "back", Addrs: []string{fmt.Sprintf("10.0.0.%d/24", i+2)}})
		run(t, h, "ip", "route", "add", "default", "via", "10.0.0.1")
		serve(t, h, ":8080", name)
	}
	b := newBackend(t, dir)
	k := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}
	st := lb.NewState()
	st.Services[k] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("10.0.0.2:8080")}] = lb.Dest{Weight: 1, Method: lb.NAT}
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("10.0.0.3:8080")}] = lb.Dest{Weight: 1, Method: lb.NAT}
	if err := b.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	got, err := b.Observe(t.Context())
	if err != nil || !got.Equal(st) {
		t.Fatalf("observed %v (%v), want %v", got, err, st)
	}
	vip := netip.AddrPortFrom(k.Addr, 80)
	if c := count(t, client, vip, 10); c["web1"] != 5 || c["web2"] != 5 {
		t.Errorf("rr: %v", c)
	}
	// Weight 0: no new connections.
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("10.0.0.3:8080")}] = lb.Dest{Weight: 0, Method: lb.NAT}
	if err := b.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	if c := count(t, client, vip, 6); c["web1"] != 6 {
		t.Errorf("after weight 0: %v", c)
	}
}

// LVS-DR as in the seed tutorial: one LAN; the real servers hold the VIP on
// lo with arp_ignore=1 / arp_announce=2 and answer the client directly.
func TestKernelDR(t *testing.T) {
	netnstest.IPVS(t)
	l := netnstest.New(t, "ipvsdr")
	client := netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.118.50/24"}})
	dir := netnstest.AddHost(t, l, "dir", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.118.128/24", "192.168.118.110/32"}})
	for i, name := range []string{"web1", "web2"} {
		h := netnstest.AddHost(t, l, name, lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{fmt.Sprintf("192.168.118.%d/24", 129+2*i)}})
		run(t, h, "ip", "addr", "add", "192.168.118.110/32", "dev", "lo")
		for _, kv := range [][2]string{
			{"net/ipv4/conf/lo/arp_ignore", "1"}, {"net/ipv4/conf/lo/arp_announce", "2"},
			{"net/ipv4/conf/all/arp_ignore", "1"}, {"net/ipv4/conf/all/arp_announce", "2"},
			{"net/ipv4/conf/eth0/arp_ignore", "1"}, {"net/ipv4/conf/eth0/arp_announce", "2"},
		} {
			if err := h.Sysctl(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
		serve(t, h, ":80", name)
	}
	b := newBackend(t, dir)
	k := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}
	st := lb.NewState()
	st.Services[k] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("192.168.118.129:80")}] = lb.Dest{Weight: 1, Method: lb.DR}
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("192.168.118.131:80")}] = lb.Dest{Weight: 1, Method: lb.DR}
	if err := b.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	if c := count(t, client, netip.AddrPortFrom(k.Addr, 80), 10); c["web1"] != 5 || c["web2"] != 5 {
		t.Errorf("DR rr: %v", c)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := newBackend(t, dir)
	b2.opts.All = true
	if got, err := b2.Observe(t.Context()); err != nil || len(got.Services) != 0 {
		t.Errorf("after Close: %v %v", got, err)
	}
}

// identServe accepts connections on addr, writes name and a newline on each
// and holds it open until the client closes it.
func identServe(t *testing.T, h *lab.Host, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() {
				fmt.Fprintln(c, name)
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
}

// hold opens a connection from h (from the address local, when valid) to
// dst and returns the name the real server sent; the connection stays open
// until the test ends or the caller closes it.
func hold(t *testing.T, h *lab.Host, dst netip.AddrPort, local netip.Addr) (string, net.Conn) {
	t.Helper()
	var c net.Conn
	if err := h.Do(func() error {
		d := net.Dialer{Timeout: ioWait}
		if local.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
		}
		var err error
		c, err = d.Dial("tcp", dst.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(ioWait))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("connection to %v: %v", dst, err)
	}
	return strings.TrimSpace(line), c
}

// natLab is TestKernelNAT's shape: a client, a director with the VIP, two
// real servers (10.0.0.2, 10.0.0.3) on a back LAN routed through it, each
// running identServe on :8080.
func natLab(t *testing.T, name string) (client, dir *lab.Host) {
	t.Helper()
	l := netnstest.New(t, name)
	client = netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{"192.168.118.50/24", "192.168.118.51/24", "192.168.119.50/24"}})
	dir = netnstest.AddHost(t, l, "dir",
		lab.Iface{Name: "eth0", LAN: "front", Addrs: []string{"192.168.118.128/24", "192.168.119.128/24", "192.168.118.110/32"}},
		lab.Iface{Name: "eth1", LAN: "back", Addrs: []string{"10.0.0.1/24"}})
	if err := dir.Sysctl("net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"web1", "web2"} {
		h := netnstest.AddHost(t, l, name, lab.Iface{Name: "eth0", LAN: "back", Addrs: []string{fmt.Sprintf("10.0.0.%d/24", i+2)}})
		run(t, h, "ip", "route", "add", "default", "via", "10.0.0.1")
		identServe(t, h, ":8080", name)
	}
	return client, dir
}

var natVIP = lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}

func natState(svc lb.Service, w1, w2 uint32) lb.State {
	st := lb.NewState()
	st.Services[natVIP] = svc
	st.Dests[lb.DestKey{Service: natVIP, Addr: netip.MustParseAddrPort("10.0.0.2:8080")}] = lb.Dest{Weight: w1, Method: lb.NAT}
	st.Dests[lb.DestKey{Service: natVIP, Addr: netip.MustParseAddrPort("10.0.0.3:8080")}] = lb.Dest{Weight: w2, Method: lb.NAT}
	return st
}

// lc and wlc schedule by the connections each real server holds, which
// nftables can only approximate: with weights 3 and 1, wlc gives eight held
// connections 6 and 2; lc sends new connections to the server whose
// connections were closed.
func TestKernelLeastConnection(t *testing.T) {
	netnstest.IPVS(t)
	client, dir := natLab(t, "ipvslc")
	b := newBackend(t, dir)
	vip := netip.AddrPortFrom(natVIP.Addr, 80)

	if err := b.Apply(t.Context(), natState(lb.Service{Scheduler: "wlc", Netmask: 0xffffffff}, 3, 1)); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	var conns []net.Conn
	for range 8 {
		name, c := hold(t, client, vip, netip.Addr{})
		got[name]++
		conns = append(conns, c)
	}
	if got["web1"] != 6 || got["web2"] != 2 {
		t.Errorf("wlc 3:1 with 8 held connections: %v, want web1 6, web2 2", got)
	}
	for _, c := range conns {
		c.Close()
	}

	if err := b.Apply(t.Context(), natState(lb.Service{Scheduler: "lc", Netmask: 0xffffffff}, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Observe(t.Context()); err != nil || got.Services[natVIP].Scheduler != "lc" {
		t.Fatalf("scheduler after Apply: %v %v", got.Services[natVIP], err)
	}
	// Four held connections (2:2 whatever the order), then web1's are closed:
	// lc sends the next two to web1 (rr would alternate).
	byServer := map[string][]net.Conn{}
	for range 4 {
		name, c := hold(t, client, vip, netip.Addr{})
		byServer[name] = append(byServer[name], c)
	}
	if len(byServer["web1"]) != 2 || len(byServer["web2"]) != 2 {
		t.Fatalf("lc with 4 connections: web1 %d, web2 %d", len(byServer["web1"]), len(byServer["web2"]))
	}
	for _, c := range byServer["web1"] {
		c.Close()
	}
	for i := range 2 {
		if name, _ := hold(t, client, vip, netip.Addr{}); name != "web1" {
			t.Errorf("lc: new connection %d went to %s, want web1 (fewest connections)", i, name)
		}
	}
}

// persistence_timeout sends a client's connections to one real server, and
// persistence_granularity widens "a client" to its network.
func TestKernelPersistence(t *testing.T) {
	netnstest.IPVS(t)
	client, dir := natLab(t, "ipvspers")
	b := newBackend(t, dir)
	vip := netip.AddrPortFrom(natVIP.Addr, 80)
	c1, c2 := netip.MustParseAddr("192.168.118.50"), netip.MustParseAddr("192.168.118.51")
	for _, tc := range []struct {
		mask     uint32
		sameNext bool // c2 lands where c1 did
	}{
		{0xffffffff, false}, // per address: rr moves on for the second client
		{0xffffff00, true},  // per /24: both clients are one
	} {
		svc := lb.Service{Scheduler: "rr", Timeout: 50, Netmask: tc.mask}
		// A new service each round: no persistence template carries over.
		if err := b.Apply(t.Context(), lb.NewState()); err != nil {
			t.Fatal(err)
		}
		st := natState(svc, 1, 1)
		if err := b.Apply(t.Context(), st); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Observe(t.Context()); err != nil || !got.Equal(st) {
			t.Fatalf("observed %v (%v), want %v", got, err, st)
		}
		first, _ := hold(t, client, vip, c1)
		for i := range 5 {
			if name, _ := hold(t, client, vip, c1); name != first {
				t.Errorf("mask %#x: connection %d of %v went to %s, first to %s", tc.mask, i+2, c1, name, first)
			}
		}
		other, _ := hold(t, client, vip, c2)
		if (other == first) != tc.sameNext {
			t.Errorf("mask %#x: %v went to %s, %v to %s", tc.mask, c1, first, c2, other)
		}
	}
}

// LVS-TUN: the director encapsulates requests in IPIP to the real servers,
// which hold the VIP on tunl0 and answer the client directly.
func TestKernelTUN(t *testing.T) {
	netnstest.IPVS(t)
	l := netnstest.New(t, "ipvstun")
	client := netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.118.50/24"}})
	dir := netnstest.AddHost(t, l, "dir", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.118.128/24", "192.168.118.110/32"}})
	for i, name := range []string{"web1", "web2"} {
		h := netnstest.AddHost(t, l, name, lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{fmt.Sprintf("192.168.118.%d/24", 131+2*i)}})
		// tunl0 is the fallback IPIP device the ipip module puts in every
		// namespace.
		run(t, h, "ip", "link", "set", "tunl0", "up")
		run(t, h, "ip", "addr", "add", "192.168.118.110/32", "dev", "tunl0")
		for _, kv := range [][2]string{
			{"net/ipv4/conf/all/rp_filter", "0"}, {"net/ipv4/conf/tunl0/rp_filter", "0"},
			{"net/ipv4/conf/all/arp_ignore", "1"}, {"net/ipv4/conf/all/arp_announce", "2"},
		} {
			if err := h.Sysctl(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
		identServe(t, h, ":80", name)
	}
	b := newBackend(t, dir)
	k := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}
	st := lb.NewState()
	st.Services[k] = lb.Service{Scheduler: "wrr", Netmask: 0xffffffff}
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("192.168.118.131:80")}] = lb.Dest{Weight: 2, Method: lb.TUN}
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("192.168.118.133:80")}] = lb.Dest{Weight: 1, Method: lb.TUN}
	if err := b.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Observe(t.Context()); err != nil || !got.Equal(st) {
		t.Fatalf("observed %v (%v), want %v", got, err, st)
	}
	got := map[string]int{}
	for range 6 {
		name, c := hold(t, client, netip.AddrPortFrom(k.Addr, 80), netip.Addr{})
		got[name]++
		c.Close()
	}
	if got["web1"] != 4 || got["web2"] != 2 {
		t.Errorf("TUN wrr 2:1 over 6 connections: %v", got)
	}
	out, err := dir.Run("ipvsadm", "-L", "-n")
	if err != nil || strings.Count(out, "Tunnel") != 2 {
		t.Errorf("ipvsadm -Ln on the director:\n%s%v", out, err)
	}
}
