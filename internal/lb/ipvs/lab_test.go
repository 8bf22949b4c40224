package ipvs

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
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

func get(h *lab.Host, dst netip.AddrPort) (string, error) {
	var c net.Conn
	if err := h.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", dst.String(), 3*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
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
