package probe

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// twoHosts builds a client (10.9.0.1, fd09::1) and a server (10.9.0.2,
// fd09::2) on one LAN.
func twoHosts(t *testing.T, name string) (client, server *lab.Host) {
	t.Helper()
	l := netnstest.New(t, name)
	client = netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.9.0.1/24", "fd09::1/64"}})
	server = netnstest.AddHost(t, l, "server", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.9.0.2/24", "fd09::2/64"}})
	// A fresh veth and bridge port may drop the first packets: wait until
	// the server answers pings on both families.
	for _, a := range []string{"10.9.0.2", "fd09::2"} {
		p := &Ping{Conn: Conn{Addr: netip.AddrPortFrom(netip.MustParseAddr(a), 0), Timeout: 500 * time.Millisecond}, Mode: PingRaw}
		for i := 0; ; i++ {
			r := in(t, client, p)
			if r.OK {
				break
			}
			if i == 20 {
				t.Fatalf("lab link not up: %s", r.Reason)
			}
		}
	}
	return client, server
}

// in runs a check inside h's namespace: the checker's sockets are created
// there.
func in(t *testing.T, h *lab.Host, c check.Checker) check.Result {
	t.Helper()
	var r check.Result
	if err := h.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r = c.Check(ctx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func nft(t *testing.T, h *lab.Host, rules ...string) {
	t.Helper()
	for _, r := range rules {
		if out, err := h.Run("nft", r); err != nil {
			t.Fatalf("nft %s: %v: %s", r, err, out)
		}
	}
}

// TestLabTCPBlackhole: a server whose packets an nftables rule drops makes
// TCP_CHECK and HTTP_GET time out at connect_timeout.
func TestLabTCPBlackhole(t *testing.T) {
	noLeak(t)
	client, server := twoHosts(t, "tcpbh")
	var ln net.Listener
	if err := server.Do(func() (err error) {
		ln, err = net.Listen("tcp", "10.9.0.2:80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the request first: closing with unread data resets.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			for {
				l, err := br.ReadString('\n')
				if err != nil || l == "\r\n" {
					break
				}
			}
			c.Write([]byte("HTTP/1.0 200 OK\r\n\r\nok"))
			c.Close()
		}
	}()
	conn := Conn{Addr: netip.MustParseAddrPort("10.9.0.2:80"), Timeout: 500 * time.Millisecond}
	tcp, web := &TCP{Conn: conn}, &HTTP{Conn: conn, URLs: []URL{{Path: "/"}}}
	if r := in(t, client, tcp); !r.OK {
		t.Fatalf("TCP_CHECK before the drop rule: %s", r.Reason)
	}
	if r := in(t, client, web); !r.OK {
		t.Fatalf("HTTP_GET before the drop rule: %s", r.Reason)
	}
	if r := viaPoller(t, web, 0, func(loop func()) {
		client.Do(func() error { loop(); return nil })
	}); !r.OK {
		t.Fatalf("HTTP_GET in the poller before the drop rule: %s", r.Reason)
	}
	nft(t, server,
		"add table inet vigiltest",
		"add chain inet vigiltest in { type filter hook input priority 0; }",
		"add rule inet vigiltest in tcp dport 80 drop")
	for _, c := range []check.Checker{tcp, web} {
		start := time.Now()
		r := in(t, client, c)
		if r.OK {
			t.Fatalf("%T through a blackhole succeeded", c)
		}
		wantReason(t, r.Reason, "connect 10.9.0.2:80: timeout after 500ms")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%T took %v with connect_timeout 500ms", c, d)
		}
	}
	// The Runner's poller, its loop in the client's namespace.
	start := time.Now()
	r := viaPoller(t, web, 0, func(loop func()) {
		client.Do(func() error { loop(); return nil })
	})
	if r.OK {
		t.Fatal("HTTP_GET through a blackhole succeeded in the poller")
	}
	wantReason(t, r.Reason, "connect 10.9.0.2:80: timeout after 500ms")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("poller took %v with connect_timeout 500ms", d)
	}
}

// TestLabPing pings another host over IPv4 and IPv6, with raw and (once the
// namespace's ping_group_range allows it) unprivileged sockets; unplugging
// the server makes the check time out.
func TestLabPing(t *testing.T) {
	noLeak(t)
	client, server := twoHosts(t, "ping")
	if err := client.Sysctl("net/ipv4/ping_group_range", "0 2147483647"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.9.0.2", "fd09::2"} {
		for _, mode := range []PingMode{PingRaw, PingUnprivileged} {
			p := &Ping{Conn: Conn{Addr: netip.AddrPortFrom(netip.MustParseAddr(a), 0), Timeout: 2 * time.Second}, Mode: mode}
			if r := in(t, client, p); !r.OK {
				t.Errorf("ping %s mode %d: %s", a, mode, r.Reason)
			}
		}
	}
	if err := server.SetCable("eth0", false); err != nil {
		t.Fatal(err)
	}
	p := &Ping{Conn: Conn{Addr: netip.MustParseAddrPort("10.9.0.2:0"), Timeout: 300 * time.Millisecond}}
	r := in(t, client, p)
	if r.OK {
		t.Fatal("ping of an unplugged host succeeded")
	}
	wantReason(t, r.Reason, "no echo reply within 300ms")
}

// TestLabUDP: a closed port answers with ICMP port unreachable (down); a
// port whose datagrams are dropped stays silent, which UDP_CHECK counts as
// up unless a reply is required (keepalived's semantics).
func TestLabUDP(t *testing.T) {
	noLeak(t)
	client, server := twoHosts(t, "udp")
	u := &UDP{Conn: Conn{Addr: netip.MustParseAddrPort("10.9.0.2:5353"), Timeout: 500 * time.Millisecond}}
	r := in(t, client, u)
	if r.OK {
		t.Fatal("UDP_CHECK of a closed port succeeded")
	}
	wantReason(t, r.Reason, "ICMP port unreachable")
	nft(t, server,
		"add table inet vigiltest",
		"add chain inet vigiltest in { type filter hook input priority 0; }",
		"add rule inet vigiltest in udp dport 5353 drop")
	if r := in(t, client, u); !r.OK {
		t.Fatalf("silent port: %s", r.Reason)
	}
	u.RequireReply = true
	if r := in(t, client, u); r.OK {
		t.Fatal("silent port passed require_reply")
	}
}
