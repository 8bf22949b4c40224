package garp_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

const (
	masterMAC = "02:00:c0:a8:01:69" // the MAC of keepalived's capture
	staleMAC  = "02:00:00:00:00:99" // where clients think the VIP is
)

type garpLab struct {
	master, client, newcomer *lab.Host
	sender                   *garp.Sender
	ifindex                  int
	mac                      net.HardwareAddr
}

func newGarpLab(t *testing.T) *garpLab {
	l := netnstest.New(t, "garp")
	g := &garpLab{}
	g.master = netnstest.AddHost(t, l, "master", lab.Iface{Name: "eth0", LAN: "lan", MAC: masterMAC,
		Addrs: []string{"192.168.1.105/24", "fd00::105/64"}})
	g.client = netnstest.AddHost(t, l, "client", lab.Iface{Name: "eth0", LAN: "lan",
		Addrs: []string{"192.168.1.20/24", "fd00::20/64"}})
	g.newcomer = netnstest.AddHost(t, l, "newcomer", lab.Iface{Name: "eth0", LAN: "lan",
		Addrs: []string{"192.168.1.21/24"}})
	netnstest.WaitLANReady(t, l, g.master, g.client, g.newcomer)
	err := g.master.Do(func() error {
		h, err := netif.Open()
		if err != nil {
			return err
		}
		defer h.Close()
		li, err := h.Link("eth0")
		if err != nil {
			return err
		}
		g.ifindex, g.mac = li.Index, li.MAC
		for _, p := range []string{"192.168.1.100/24", "fd00::100/64"} {
			if err := h.AddVIP(netif.VIP{Prefix: netip.MustParsePrefix(p), Dev: "eth0"}); err != nil {
				return err
			}
		}
		g.sender, err = garp.Open()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.sender.Close() })
	return g
}

// neigh returns the client's neighbour entry for addr ("" if none).
func neigh(t *testing.T, h *lab.Host, addr string) string {
	t.Helper()
	out, err := h.Run("ip", "neigh", "show", addr, "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func waitNeigh(t *testing.T, h *lab.Host, addr, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := neigh(t, h, addr)
		if strings.Contains(got, want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNamespaceGARP: a client whose ARP cache points the VIP at another MAC
// follows keepalived's gratuitous ARP to the new master; the frame on the
// wire is keepalived's captured frame byte for byte.
func TestNamespaceGARP(t *testing.T) {
	g := newGarpLab(t)
	if _, err := g.client.Run("ip", "neigh", "replace", "192.168.1.100", "lladdr", staleMAC, "dev", "eth0", "nud", "stale"); err != nil {
		t.Fatal(err)
	}
	// A host with no entry learns one only with arp_accept=1 (Linux creates
	// entries from gratuitous ARP only then); existing entries are updated
	// either way.
	if err := g.newcomer.Sysctl("net/ipv4/conf/eth0/arp_accept", "1"); err != nil {
		t.Fatal(err)
	}
	if got := neigh(t, g.client, "192.168.1.100"); !strings.Contains(got, staleMAC) {
		t.Fatalf("precondition: client entry %q, want %s", got, staleMAC)
	}
	if got := neigh(t, g.newcomer, "192.168.1.100"); got != "" {
		t.Fatalf("precondition: newcomer has an entry %q", got)
	}
	cap := netnstest.StartCapture(t, g.client, "eth0", "arp")

	if err := g.sender.SendARP(g.ifindex, g.mac, netip.MustParseAddr("192.168.1.100")); err != nil {
		t.Fatal(err)
	}
	if got := waitNeigh(t, g.client, "192.168.1.100", masterMAC); !strings.Contains(got, "lladdr "+masterMAC) {
		t.Errorf("client neighbour entry %q, want lladdr %s", got, masterMAC)
	}
	if got := waitNeigh(t, g.newcomer, "192.168.1.100", masterMAC); !strings.Contains(got, "lladdr "+masterMAC) {
		t.Errorf("newcomer (arp_accept=1) entry %q, want lladdr %s", got, masterMAC)
	}

	b, err := os.ReadFile("testdata/vrrpv2-garp.hex")
	if err != nil {
		t.Fatal(err)
	}
	golden, _ := hex.DecodeString(strings.TrimSpace(string(b)))
	frames := cap.Frames(t, 1, 5*time.Second)
	if len(frames) == 0 {
		t.Fatal("nothing captured")
	}
	if !bytes.Equal(frames[0], golden) {
		t.Errorf("captured\n %x\nwant keepalived's\n %x", frames[0], golden)
	}
}

// TestNamespaceNA: an unsolicited NA (override flag) moves a client's IPv6
// neighbour entry to the new master; the router flag reaches it too.
func TestNamespaceNA(t *testing.T) {
	g := newGarpLab(t)
	if _, err := g.client.Run("ip", "-6", "neigh", "replace", "fd00::100", "lladdr", staleMAC, "dev", "eth0", "nud", "stale"); err != nil {
		t.Fatal(err)
	}
	if got := neigh(t, g.client, "fd00::100"); !strings.Contains(got, staleMAC) {
		t.Fatalf("precondition: client entry %q, want %s", got, staleMAC)
	}
	cap := netnstest.StartCapture(t, g.client, "eth0", "icmp6 and ip6[40] == 136")
	vip := netip.MustParseAddr("fd00::100")
	if err := g.sender.SendNA(g.ifindex, g.mac, vip, false); err != nil {
		t.Fatal(err)
	}
	got := waitNeigh(t, g.client, "fd00::100", masterMAC)
	if !strings.Contains(got, "lladdr "+masterMAC) || strings.Contains(got, "router") {
		t.Errorf("client neighbour entry %q, want lladdr %s without router", got, masterMAC)
	}
	want, _ := garp.NAFrame(g.mac, vip, false)
	frames := cap.Frames(t, 1, 5*time.Second)
	if len(frames) == 0 || !bytes.Equal(frames[0], want) {
		t.Errorf("captured %x\nwant %x", frames, want)
	}

	// The master forwards IPv6: keepalived sets the router flag.
	if err := g.master.Sysctl("net/ipv6/conf/eth0/forwarding", "1"); err != nil {
		t.Fatal(err)
	}
	var router bool
	if err := g.master.Do(func() (err error) { router, err = garp.IPv6Forwarding("eth0"); return err }); err != nil || !router {
		t.Fatalf("IPv6Forwarding(eth0) = %v, %v; want true", router, err)
	}
	if err := g.sender.SendNA(g.ifindex, g.mac, vip, router); err != nil {
		t.Fatal(err)
	}
	if got := waitNeigh(t, g.client, "fd00::100", "router"); !strings.Contains(got, "router") {
		t.Errorf("client neighbour entry %q, want the router flag", got)
	}
}

func TestNamespaceSendErrors(t *testing.T) {
	g := newGarpLab(t)
	err := g.sender.SendARP(9999, g.mac, netip.MustParseAddr("192.168.1.100"))
	if !errors.Is(err, netif.ErrLinkNotFound) {
		t.Errorf("SendARP on a missing ifindex: %v, want ErrLinkNotFound", err)
	}
	if err := g.master.Do(func() error { _, err := garp.IPv6Forwarding("eth9"); return err }); !errors.Is(err, netif.ErrLinkNotFound) {
		t.Errorf("IPv6Forwarding(eth9): %v, want ErrLinkNotFound", err)
	}
	if _, err := garp.IPv6Forwarding("../all"); err == nil {
		t.Error("IPv6Forwarding accepted a path")
	}
}

// TestNamespaceWatchNAs: the master's NA watch on eth0 reads another
// host's unsolicited NA for the VIP (sent to ff02::1 from the VIP itself,
// as keepalived sends it) as a claim by that host's MAC; the master's own
// NAs, sent through garp's packet socket, are not read back; an NA with
// hop limit 64 (sent from an ICMPv6 socket) is counted as a drop, not a
// claim.
func TestNamespaceWatchNAs(t *testing.T) {
	g := newGarpLab(t)
	vip := netip.MustParseAddr("fd00::100")
	claims := make(chan garp.Claim, 16)
	drops := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- g.master.Do(func() error {
			return garp.WatchNAs(ctx, g.ifindex, func(c garp.Claim) { claims <- c }, func(r string) { drops <- r })
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchNAs: %v", err)
		}
	}()

	var s *garp.Sender
	var ifindex int
	var mac net.HardwareAddr
	if err := g.newcomer.Do(func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		ifindex, mac = ifc.Index, ifc.HardwareAddr
		s, err = garp.Open()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Ours first: had it been read, it would come before the newcomer's.
	// Both are sent again until the watch, which may not have opened its
	// socket yet, reads one.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := g.sender.SendNA(g.ifindex, g.mac, vip, false); err != nil {
			t.Fatal(err)
		}
		if err := s.SendNA(ifindex, mac, vip, false); err != nil {
			t.Fatal(err)
		}
		var c garp.Claim
		select {
		case c = <-claims:
		case <-time.After(300 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the newcomer's NA was not read")
			}
			continue
		}
		if c.Addr != vip || c.MAC.String() != mac.String() {
			t.Fatalf("claim %s at %s, want %s at the newcomer's %s", c.Addr, c.MAC, vip, mac)
		}
		break
	}
	// Claims of the NAs sent again after the first one was read.
	for drained := false; !drained; {
		select {
		case c := <-claims:
			if c.Addr != vip || c.MAC.String() != mac.String() {
				t.Fatalf("claim %s at %s, want %s at the newcomer's %s", c.Addr, c.MAC, vip, mac)
			}
		case <-time.After(300 * time.Millisecond):
			drained = true
		}
	}

	// An NA that crossed a router (hop limit below 255): neighbours ignore
	// it (RFC 4861 §7.1.2), so does the watch.
	if out, err := g.newcomer.Run("python3", "-c", `
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 64)
na = bytes([136, 0, 0, 0, 0x20, 0, 0, 0]) + socket.inet_pton(socket.AF_INET6, "fd00::100") + bytes([2, 1, 2, 0, 0, 0, 0, 0x77])
s.sendto(na, ("ff02::1%eth0", 0))
`); err != nil {
		t.Fatalf("sending an NA with hop limit 64: %v\n%s", err, out)
	}
	select {
	case r := <-drops:
		if r != garp.DropNAHopLimit {
			t.Errorf("drop %q, want %q", r, garp.DropNAHopLimit)
		}
	case c := <-claims:
		t.Fatalf("hop limit 64 read as a claim: %+v", c)
	case <-time.After(5 * time.Second):
		t.Fatal("the NA with hop limit 64 was not counted")
	}
	select {
	case c := <-claims:
		t.Errorf("unexpected claim %+v", c)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestNamespaceWatchClaims: the watch reports another host's ARP (here the
// client's request, which claims its own address) with its MAC, and returns
// soon after its context ends.
func TestNamespaceWatchClaims(t *testing.T) {
	g := newGarpLab(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	claims := make(chan garp.Claim, 64)
	done := make(chan error, 1)
	go func() {
		done <- g.master.Do(func() error {
			return garp.WatchClaims(ctx, g.ifindex, func(c garp.Claim) {
				select {
				case claims <- c:
				default:
				}
			})
		})
	}()
	client := netip.MustParseAddr("192.168.1.20")
	// awaitClient makes the client ask for an address nobody holds, until
	// its request, which claims its own address, is reported.
	awaitClient := func() garp.Claim {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			g.client.Run("ping", "-c", "1", "-W", "0.2", "192.168.1.99")
			for len(claims) > 0 {
				if c := <-claims; c.Addr == client {
					return c
				}
			}
		}
		t.Fatal("no claim of the client's address seen")
		return garp.Claim{}
	}
	got := awaitClient() // the watch runs
	if want := g.client.Iface("eth0").MAC; got.MAC.String() != want {
		t.Errorf("claim MAC %v, want the client's %s", got.MAC, want)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WatchClaims after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchClaims still running 5 s after its context ended")
	}
}
