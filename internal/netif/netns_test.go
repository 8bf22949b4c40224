package netif_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// openIn opens a netif handle inside the host's namespace; it is closed at
// the end of the test.
func openIn(t *testing.T, h *lab.Host) *netif.Handle {
	t.Helper()
	var nh *netif.Handle
	if err := h.Do(func() (err error) { nh, err = netif.Open(); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nh.Close() })
	return nh
}

// vipOn is the VIP "PREFIX dev DEV" ("ADDR" alone: a host prefix).
func vipOn(prefix, dev string) netif.VIP {
	if !strings.Contains(prefix, "/") {
		a := netip.MustParseAddr(prefix)
		return netif.VIP{Prefix: netip.PrefixFrom(a, a.BitLen()), Dev: dev}
	}
	return netif.VIP{Prefix: netip.MustParsePrefix(prefix), Dev: dev}
}

// labelled sets a VIP's label.
func labelled(v netif.VIP, label string) netif.VIP { v.Label = label; return v }

func ipAddr(t *testing.T, h *lab.Host, args ...string) string {
	t.Helper()
	out, err := h.Run("ip", append([]string{"addr", "show"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lineWith returns the `ip addr` line that mentions addr.
func lineWith(out, addr string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " "+addr+"/") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

func TestNamespaceVIP(t *testing.T) {
	l := netnstest.New(t, "vip")
	r1 := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24", "fd00::105/64"}})
	h := openIn(t, r1)

	vips := []netif.VIP{
		labelled(vipOn("192.168.1.100/24", "eth0"), "eth0:1"),
		netif.VIP{Prefix: netip.MustParsePrefix("192.168.1.101/24"), Broadcast: netip.MustParseAddr("192.168.1.255"), Dev: "eth0"},
		netif.VIP{Prefix: netip.MustParsePrefix("10.20.30.40/32"), Dev: "eth0", Scope: netif.ScopeLink},
		vipOn("fd00::100/64", "eth0"),
		vipOn("fd00::200", "eth0"),
	}
	li, err := h.Link("eth0")
	if err != nil {
		t.Fatal(err)
	}
	// Every other VIP through AddVIPs with the interface's index, then
	// again through the other call.
	add := func(k int, v netif.VIP) error {
		if k%2 == 1 {
			return h.AddVIPs([]netif.VIPAt{{Index: li.Index, VIP: v}})[0]
		}
		return h.AddVIP(v)
	}
	for k, v := range vips {
		if err := add(k, v); err != nil {
			t.Fatalf("AddVIP(%s): %v", v, err)
		}
		// Idempotent: adding again is success (EEXIST).
		if err := add(k+1, v); err != nil {
			t.Fatalf("AddVIP(%s) again: %v", v, err)
		}
		if ok, err := h.HasVIP(v); err != nil || !ok {
			t.Fatalf("HasVIP(%s) = %v, %v; want true", v, ok, err)
		}
	}

	out := ipAddr(t, r1, "dev", "eth0")
	t.Logf("ip addr show dev eth0:\n%s", out)
	for _, c := range []struct{ addr, want string }{
		{"192.168.1.100", "inet 192.168.1.100/24 scope global secondary eth0:1"},
		{"192.168.1.101", "inet 192.168.1.101/24 brd 192.168.1.255 scope global secondary eth0"},
		{"10.20.30.40", "inet 10.20.30.40/32 scope link eth0"},
		{"fd00::100", "inet6 fd00::100/64 scope global nodad"},
		{"fd00::200", "inet6 fd00::200/128 scope global nodad deprecated"},
	} {
		if got := lineWith(out, c.addr); got != c.want {
			t.Errorf("ip addr line for %s = %q, want %q", c.addr, got, c.want)
		}
	}

	// The kernel keeps vigil's mark (IFA_PROTO) on both families.
	addrs, err := h.ListAddrs("eth0")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vips {
		i := slices.IndexFunc(addrs, func(a netif.Addr) bool { return a.Prefix.Addr() == v.Addr() })
		if i < 0 {
			t.Fatalf("ListAddrs: %s missing", v)
		}
		if addrs[i].Proto != netif.AddrProtoKeepalived {
			t.Errorf("%s: proto %d, want %d", v, addrs[i].Proto, netif.AddrProtoKeepalived)
		}
		if addrs[i].Prefix != v.Prefix {
			t.Errorf("%s: prefix %s", v, addrs[i].Prefix)
		}
	}
	if i := slices.IndexFunc(addrs, func(a netif.Addr) bool { return a.Prefix.Addr().String() == "192.168.1.105" }); i < 0 || addrs[i].Proto != 0 {
		t.Errorf("the lab's own address should be listed unmarked: %+v", addrs)
	}

	// 10.20.30.40 (scope link) sorts first in the kernel's list, but it is
	// one of vigil's VIPs, which keepalived also skips.
	p4, err := h.PrimaryAddr("eth0", false)
	if err != nil || p4.String() != "192.168.1.105" {
		t.Errorf("PrimaryAddr(v4) = %v, %v; want 192.168.1.105", p4, err)
	}
	p6, err := h.PrimaryAddr("eth0", true)
	if err != nil || !p6.IsLinkLocalUnicast() {
		t.Errorf("PrimaryAddr(v6) = %v, %v; want the link-local address", p6, err)
	}

	for _, v := range vips {
		if err := h.DelVIP(v); err != nil {
			t.Fatalf("DelVIP(%s): %v", v, err)
		}
		if err := h.DelVIP(v); err != nil {
			t.Fatalf("DelVIP(%s) again: %v", v, err)
		}
		if ok, err := h.HasVIP(v); err != nil || ok {
			t.Fatalf("HasVIP(%s) after delete = %v, %v", v, ok, err)
		}
	}
	out = ipAddr(t, r1, "dev", "eth0")
	for _, v := range vips {
		if lineWith(out, v.Addr().String()) != "" {
			t.Errorf("%s still in ip addr:\n%s", v, out)
		}
	}
}

// TestNamespaceNoDAD shows why IPv6 VIPs get IFA_F_NODAD: with DAD enabled
// on the link, a VIP added with nodad is usable at once, one added with
// keepalived's "-nodad" is tentative.
func TestNamespaceNoDAD(t *testing.T) {
	l := netnstest.New(t, "dad")
	r1 := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"fd00::105/64"}})
	if err := r1.Sysctl("net/ipv6/conf/eth0/accept_dad", "1"); err != nil {
		t.Fatal(err)
	}
	if err := r1.Sysctl("net/ipv6/conf/eth0/dad_transmits", "3"); err != nil {
		t.Fatal(err)
	}
	h := openIn(t, r1)
	if err := h.AddVIP(vipOn("fd00::100/64", "eth0")); err != nil {
		t.Fatal(err)
	}
	if err := h.AddVIP(netif.VIP{Prefix: netip.MustParsePrefix("fd00::101/64"), Dev: "eth0", KeepDAD: true}); err != nil {
		t.Fatal(err)
	}
	out := ipAddr(t, r1, "dev", "eth0")
	if got := lineWith(out, "fd00::100"); strings.Contains(got, "tentative") || !strings.Contains(got, "nodad") {
		t.Errorf("nodad VIP: %q, want nodad and not tentative", got)
	}
	if got := lineWith(out, "fd00::101"); !strings.Contains(got, "tentative") {
		t.Errorf("-nodad VIP: %q, want tentative (DAD running)", got)
	}
}

func TestNamespaceMissingInterface(t *testing.T) {
	l := netnstest.New(t, "miss")
	r1 := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
	h := openIn(t, r1)

	_, err := h.Link("eth9")
	var lnf *netif.LinkNotFoundError
	if !errors.Is(err, netif.ErrLinkNotFound) || !errors.As(err, &lnf) || lnf.Name != "eth9" {
		t.Errorf("Link(eth9) error = %v, want LinkNotFoundError{eth9}", err)
	}
	if err := h.AddVIP(vipOn("192.168.1.100", "eth9")); !errors.Is(err, netif.ErrLinkNotFound) {
		t.Errorf("AddVIP on eth9: %v, want ErrLinkNotFound", err)
	}
	if _, err := h.ListAddrs("eth9"); !errors.Is(err, netif.ErrLinkNotFound) {
		t.Errorf("ListAddrs(eth9): %v, want ErrLinkNotFound", err)
	}
	if _, err := h.PrimaryAddr("eth9", false); !errors.Is(err, netif.ErrLinkNotFound) {
		t.Errorf("PrimaryAddr(eth9): %v, want ErrLinkNotFound", err)
	}
	if err := h.DelVIP(vipOn("192.168.1.100", "eth9")); err != nil {
		t.Errorf("DelVIP on a missing interface: %v, want nil", err)
	}
	// This kernel has no dummy driver: a veth pair, down, has no address.
	if _, err := r1.Run("ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"); err != nil {
		t.Fatal(err)
	}
	for _, v6 := range []bool{false, true} {
		if _, err := h.PrimaryAddr("d0", v6); !errors.Is(err, netif.ErrNoAddress) {
			t.Errorf("PrimaryAddr(d0 without address, v6=%v): %v, want ErrNoAddress", v6, err)
		}
	}

	// linkwatch may report carrier-on up to a second after the lab set
	// eth0 up: poll.
	var li netif.LinkInfo
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if li, err = h.Link("eth0"); err != nil {
			t.Fatal(err)
		}
		if li.Usable() || time.Now().After(deadline) {
			break
		}
	}
	if li.Name != "eth0" || !li.Up || !li.Running || !li.Usable() || li.MTU != 1500 || li.MAC.String() != r1.Iface("eth0").MAC {
		t.Errorf("Link(eth0) = %+v", li)
	}
	if byIdx, err := h.LinkByIndex(li.Index); err != nil || byIdx.Name != "eth0" {
		t.Errorf("LinkByIndex(%d) = %+v, %v", li.Index, byIdx, err)
	}
	if _, err := h.LinkByIndex(9999); !errors.Is(err, netif.ErrLinkNotFound) {
		t.Errorf("LinkByIndex(9999): %v", err)
	}
}

// TestNamespaceAddVIPs adds 150 addresses of both families in one call,
// several netlink messages of up to 64 requests each, with failures among
// them, while another goroutine reads addresses on the same handle: each
// failure is reported at its own position, every other address is on the
// interface with vigil's mark.
func TestNamespaceAddVIPs(t *testing.T) {
	l := netnstest.New(t, "batch")
	r1 := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24", "fd00::105/64"}})
	h := openIn(t, r1)
	li, err := h.Link("eth0")
	if err != nil {
		t.Fatal(err)
	}
	var vs []netif.VIPAt
	for i := range 150 {
		v := vipOn(fmt.Sprintf("10.9.%d.%d", i/100, i%100+1), "eth0")
		if i%3 == 2 {
			v = vipOn(fmt.Sprintf("fd00::9:%d", i), "eth0")
		}
		vs = append(vs, netif.VIPAt{Index: li.Index, VIP: v})
	}
	vs[5].Index = 0                                          // looked up by name
	vs[70].Index = 9999                                      // no such interface
	vs[100] = vs[4]                                          // there already: success
	vs[120].VIP.Dev, vs[120].Index = "", 0                   // invalid
	vs[130].VIP.Dev, vs[130].Index = "eth9", 0               // missing by name
	vs[149].Index = 9998                                     // the last of a message fails
	vs[127] = netif.VIPAt{Index: li.Index, VIP: vs[126].VIP} // within one message
	fails := map[int]func(error) bool{
		70:  func(err error) bool { return errors.Is(err, netif.ErrLinkNotFound) },
		120: func(err error) bool { return err != nil && strings.Contains(err.Error(), "no interface") },
		130: func(err error) bool { return errors.Is(err, netif.ErrLinkNotFound) },
		149: func(err error) bool { return errors.Is(err, netif.ErrLinkNotFound) },
	}

	stop := make(chan struct{})
	reads := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				reads <- nil
				return
			default:
			}
			if _, err := h.ListAddrs("eth0"); err != nil {
				reads <- err
				return
			}
		}
	}()
	errs := h.AddVIPs(vs)
	close(stop)
	if err := <-reads; err != nil {
		t.Errorf("ListAddrs beside AddVIPs: %v", err)
	}
	if len(errs) != len(vs) {
		t.Fatalf("%d results for %d VIPs", len(errs), len(vs))
	}
	for i, err := range errs {
		if ok := fails[i]; ok != nil {
			if !ok(err) {
				t.Errorf("VIP %d (%s): error %v, not the expected one", i, vs[i].VIP, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("VIP %d (%s): %v", i, vs[i].VIP, err)
		}
	}
	addrs, err := h.ListAddrs("eth0")
	if err != nil {
		t.Fatal(err)
	}
	have := map[netip.Addr]uint8{}
	for _, a := range addrs {
		have[a.Prefix.Addr()] = a.Proto
	}
	for i, x := range vs {
		p, ok := have[x.VIP.Addr()]
		if fails[i] != nil {
			if ok {
				t.Errorf("VIP %d (%s) is on eth0 although its add failed", i, x.VIP)
			}
			continue
		}
		if !ok || p != netif.AddrProtoKeepalived {
			t.Errorf("VIP %d (%s): on eth0 %v, proto %d", i, x.VIP, ok, p)
		}
	}
}

func TestNamespaceRemoveStale(t *testing.T) {
	l := netnstest.New(t, "stale")
	r1 := netnstest.AddHost(t, l, "r1",
		lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}},
		lab.Iface{Name: "eth1", LAN: "lan2", Addrs: []string{"192.168.2.105/24"}})
	h := openIn(t, r1)

	// A killed earlier run left 192.168.1.50 (marked, since dropped from the
	// configuration) and 192.168.1.100 (still configured); an operator (or
	// another daemon) added .60 (not configured) and .101 (configured) by
	// hand: both stay, .101 is reported as foreign; eth1's marked address
	// stays because the configuration does not use eth1. While another
	// vigil runs (others false), .50 stays too: it may be that one's.
	for _, v := range []netif.VIP{vipOn("192.168.1.50/24", "eth0"), labelled(vipOn("192.168.1.100/24", "eth0"), "eth0:1"), vipOn("fd00::50/64", "eth0"), vipOn("192.168.2.50/24", "eth1")} {
		if err := h.AddVIP(v); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"192.168.1.60/24", "192.168.1.101/24"} {
		if _, err := r1.Run("ip", "addr", "add", a, "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	configured := []netif.VIP{
		labelled(vipOn("192.168.1.100/24", "eth0"), "eth0:1"),
		vipOn("192.168.1.101/24", "eth0"),
		vipOn("192.168.1.102/24", "eth0"), // not present
		vipOn("192.168.9.1/24", "eth7"),   // interface missing: skipped
	}
	prefixes := func(as []netif.Addr) []string {
		var got []string
		for _, a := range as {
			got = append(got, a.Prefix.String())
		}
		slices.Sort(got)
		return got
	}
	removed, foreign, err := h.RemoveStale(configured, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := prefixes(removed), []string{"192.168.1.100/24"}; !slices.Equal(got, want) {
		t.Errorf("RemoveStale(others false) removed %v, want %v", got, want)
	}
	if got, want := prefixes(foreign), []string{"192.168.1.101/24"}; !slices.Equal(got, want) {
		t.Errorf("RemoveStale foreign %v, want %v", got, want)
	}
	removed, _, err = h.RemoveStale(configured, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.168.1.50/24", "fd00::50/64"}
	if got := prefixes(removed); !slices.Equal(got, want) {
		t.Errorf("RemoveStale(others true) removed %v, want %v", got, want)
	}
	// DelVIP leaves an address it did not add.
	if err := h.DelVIP(vipOn("192.168.1.101/24", "eth0")); !errors.Is(err, netif.ErrNotOurs) {
		t.Errorf("DelVIP of an address added by hand: %v, want ErrNotOurs", err)
	}
	out := ipAddr(t, r1)
	for _, keep := range []string{"192.168.1.105", "192.168.1.60", "192.168.1.101", "192.168.2.50", "192.168.2.105"} {
		if lineWith(out, keep) == "" {
			t.Errorf("%s was removed:\n%s", keep, out)
		}
	}
	for _, gone := range append(want, "192.168.1.100/24") {
		if lineWith(out, strings.Split(gone, "/")[0]) != "" {
			t.Errorf("%s still present:\n%s", gone, out)
		}
	}
}

// waitFor reads events until one satisfies ok, or fails after a timeout.
func waitFor[E any](t *testing.T, ch <-chan E, what string, ok func(E) bool) E {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-ch:
			if ok(e) {
				return e
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestNamespaceWatchLinks(t *testing.T) {
	l := netnstest.New(t, "wlink")
	r1 := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
	h := openIn(t, r1)

	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan netif.LinkEvent, 256)
	done := make(chan error, 1)
	go func() { done <- h.WatchLinks(ctx, func(e netif.LinkEvent) { events <- e }) }()

	eth0 := func(e netif.LinkEvent) bool { return e.Link.Name == "eth0" && !e.Deleted }
	first := waitFor(t, events, "initial eth0", eth0)
	if !first.Initial || !first.Link.Up {
		t.Errorf("first event %+v, want Initial and up", first)
	}
	// Just after `ip link set up` the kernel may still report eth0 not
	// running: linkwatch applies carrier-on with a delay (up to 1 s). Start
	// from a usable link.
	if !first.Link.Usable() {
		waitFor(t, events, "eth0 running", func(e netif.LinkEvent) bool { return eth0(e) && e.Link.Usable() })
	}

	steps := []struct {
		name   string
		do     func() error
		want   func(netif.LinkInfo) bool
		expect string
	}{
		{"ip link set eth0 down", func() error { return r1.SetLink("eth0", false) },
			func(li netif.LinkInfo) bool { return !li.Up && !li.Running }, "down"},
		{"ip link set eth0 up", func() error { return r1.SetLink("eth0", true) },
			func(li netif.LinkInfo) bool { return li.Up && li.Running && li.LowerUp }, "up and running"},
		{"cable pulled", func() error { return r1.SetCable("eth0", false) },
			func(li netif.LinkInfo) bool { return li.Up && !li.Running && !li.LowerUp }, "up without carrier"},
		{"cable plugged", func() error { return r1.SetCable("eth0", true) },
			func(li netif.LinkInfo) bool { return li.Usable() && li.LowerUp }, "usable again"},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		e := waitFor(t, events, s.name+": eth0 "+s.expect, func(e netif.LinkEvent) bool { return eth0(e) && s.want(e.Link) })
		t.Logf("%s: %+v", s.name, e.Link)
	}

	// This kernel has no dummy driver; a veth pair will do.
	if _, err := r1.Run("ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, events, "d0 created", func(e netif.LinkEvent) bool { return e.Link.Name == "d0" && !e.Deleted })
	if _, err := r1.Run("ip", "link", "del", "d0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, events, "d0 deleted", func(e netif.LinkEvent) bool { return e.Link.Name == "d0" && e.Deleted })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WatchLinks returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchLinks did not return after cancel")
	}
}

func TestNamespaceWatchAddrs(t *testing.T) {
	l := netnstest.New(t, "waddr")
	r1 := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
	h := openIn(t, r1)

	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan netif.AddrEvent, 256)
	done := make(chan error, 1)
	go func() { done <- h.WatchAddrs(ctx, func(e netif.AddrEvent) { events <- e }) }()

	is := func(a string) func(netif.AddrEvent) bool {
		p := netip.MustParseAddr(a)
		return func(e netif.AddrEvent) bool { return e.Addr.Prefix.Addr() == p }
	}
	if e := waitFor(t, events, "initial 192.168.1.105", is("192.168.1.105")); !e.Initial || e.Deleted {
		t.Errorf("initial event %+v", e)
	}
	vip := labelled(vipOn("192.168.1.100/24", "eth0"), "eth0:1")
	if err := h.AddVIP(vip); err != nil {
		t.Fatal(err)
	}
	e := waitFor(t, events, "VIP added", is("192.168.1.100"))
	if e.Deleted || e.Initial || e.Addr.Proto != netif.AddrProtoKeepalived || e.Addr.Label != "eth0:1" {
		t.Errorf("add event %+v", e)
	}
	// Removed by hand: the engine notices.
	if _, err := r1.Run("ip", "addr", "del", "192.168.1.100/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	if e := waitFor(t, events, "VIP removed", is("192.168.1.100")); !e.Deleted {
		t.Errorf("delete event %+v", e)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WatchAddrs returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchAddrs did not return after cancel")
	}
}

func TestNamespaceWatchRoutes(t *testing.T) {
	l := netnstest.New(t, "wroute")
	r1 := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
	h := openIn(t, r1)

	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan netif.RouteEvent, 256)
	done := make(chan error, 1)
	go func() { done <- h.WatchRoutes(ctx, func(e netif.RouteEvent) { events <- e }) }()

	lan := netif.RouteKey{Dst: netip.MustParsePrefix("192.168.1.0/24")}
	if e := waitFor(t, events, "initial 192.168.1.0/24", func(e netif.RouteEvent) bool { return e.Key == lan }); !e.Initial || e.Deleted {
		t.Errorf("initial event %+v", e)
	}
	r := netif.Route{Dst: netip.MustParsePrefix("10.9.0.0/24"), Dev: "eth0", Table: 100, Scope: netif.ScopeLink}
	if err := h.AddRoute(r); err != nil {
		t.Fatal(err)
	}
	e := waitFor(t, events, "route added", func(e netif.RouteEvent) bool { return e.Key == r.Key() })
	if e.Deleted || e.Initial || e.Proto != netif.AddrProtoKeepalived {
		t.Errorf("add event %+v", e)
	}
	if _, err := r1.Run("ip", "route", "del", "10.9.0.0/24", "dev", "eth0", "table", "100"); err != nil {
		t.Fatal(err)
	}
	if e := waitFor(t, events, "route removed", func(e netif.RouteEvent) bool { return e.Key == r.Key() }); !e.Deleted {
		t.Errorf("delete event %+v", e)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WatchRoutes returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchRoutes did not return after cancel")
	}
}
