package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// fakeLAN is an in-memory Ethernet segment: every packet a fakeConn writes is
// delivered, with TTL 255, to the other hosts' conns on the same LAN whose
// group or unicast address matches the destination. A drop hook lets a test
// lose packets. Safe for concurrent use.
type fakeLAN struct {
	mu    sync.Mutex
	conns []*fakeConn
	drop  func(src, dst netip.Addr) bool
	// announced records every gratuitous ARP / NA: VIP -> hosts, in order.
	announced []announce
	// segments makes each interface name a segment of its own: a packet
	// sent on eth1 reaches the other hosts' eth1 only.
	segments bool
}

type announce struct {
	host string
	vip  netip.Addr
}

// fakeHost is one node's Net on a fakeLAN: interfaces, addresses, links.
type fakeHost struct {
	name   string
	lan    *fakeLAN
	mu     sync.Mutex
	links  map[string]netif.LinkInfo
	addrs  map[string][]netip.Prefix // by interface: primary first
	vips   map[netip.Prefix]string   // VIP -> interface
	watch  []chan netif.LinkEvent
	awatch []chan netif.AddrEvent
	// overrun ends the address watch with netif.ErrOverrun.
	overrun chan struct{}
	// flags are the IFA_F_* flags of the interface addresses (tentative).
	flags   map[netip.Prefix]uint32
	sysctls map[string]string
	// history records VIP adds and deletes in order; at their times.
	history []string
	at      []time.Time
	// wire records VIP adds (+ADDR), deletes (-ADDR) and gratuitous
	// announcements (arp ADDR) in order; batches the sizes of the
	// AddVIPs calls.
	wire    []string
	wireAt  []time.Time
	batches []int
	// openErr, while set, fails OpenConn (a daemon out of descriptors).
	openErr error
}

// onWire records a wire entry (h.mu held).
func (h *fakeHost) onWire(s string) {
	h.wire = append(h.wire, s)
	h.wireAt = append(h.wireAt, time.Now())
}

func newFakeHost(lan *fakeLAN, name string, ifaces map[string]string) *fakeHost {
	h := &fakeHost{name: name, lan: lan, links: map[string]netif.LinkInfo{}, addrs: map[string][]netip.Prefix{}, vips: map[netip.Prefix]string{}, flags: map[netip.Prefix]uint32{}, overrun: make(chan struct{}, 1)}
	idx := 2
	for ifname, addr := range ifaces {
		h.links[ifname] = netif.LinkInfo{Index: idx, Name: ifname, Up: true, Running: true, LowerUp: true, MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(idx)}, MTU: 1500}
		h.addrs[ifname] = []netip.Prefix{netip.MustParsePrefix(addr)}
		idx++
	}
	return h
}

func (h *fakeHost) OpenConn(cfg vrrpnet.Config) (Conn, error) {
	h.mu.Lock()
	_, ok := h.links[cfg.Interface]
	openErr := h.openErr
	h.mu.Unlock()
	if !ok {
		return nil, &netif.LinkNotFoundError{Name: cfg.Interface}
	}
	if openErr != nil {
		return nil, openErr
	}
	c := &fakeConn{host: h, cfg: cfg, rx: make(chan vrrpnet.Packet, 256), closed: make(chan struct{})}
	h.lan.mu.Lock()
	h.lan.conns = append(h.lan.conns, c)
	h.lan.mu.Unlock()
	return c, nil
}

func (h *fakeHost) Link(name string) (netif.LinkInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	li, ok := h.links[name]
	if !ok {
		return netif.LinkInfo{}, &netif.LinkNotFoundError{Name: name}
	}
	return li, nil
}

func (h *fakeHost) Addrs() ([]netif.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []netif.Addr
	for name, ps := range h.addrs {
		li, ok := h.links[name]
		if !ok {
			continue
		}
		for _, p := range ps {
			out = append(out, netif.Addr{Prefix: p, Flags: h.flags[p], LinkIndex: li.Index})
		}
	}
	return out, nil
}

// WatchAddrs reports the interface addresses (not the VIPs: the engine
// ignores its own) present, then every change made with setAddr.
func (h *fakeHost) WatchAddrs(ctx context.Context, f func(netif.AddrEvent)) error {
	ch := make(chan netif.AddrEvent, 256)
	h.mu.Lock()
	h.awatch = append(h.awatch, ch)
	h.mu.Unlock()
	initial, _ := h.Addrs()
	for _, a := range initial {
		f(netif.AddrEvent{Addr: a, Initial: true})
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.overrun:
			h.mu.Lock()
			h.awatch = slices.DeleteFunc(h.awatch, func(c chan netif.AddrEvent) bool { return c == ch })
			h.mu.Unlock()
			return fmt.Errorf("fake: %w", netif.ErrOverrun)
		case ev := <-ch:
			f(ev)
		}
	}
}

// loseAddr removes an interface address without telling the watchers, then
// ends their watch with netif.ErrOverrun, as when the kernel dropped the
// notification.
func (h *fakeHost) loseAddr(dev, addr string) {
	p := netip.MustParsePrefix(addr)
	h.mu.Lock()
	h.addrs[dev] = slices.DeleteFunc(h.addrs[dev], func(x netip.Prefix) bool { return x == p })
	delete(h.flags, p)
	h.mu.Unlock()
	h.overrun <- struct{}{}
}

// setAddr adds (or changes the flags of) an interface address, or removes
// it, and tells the watchers, as RTM_NEWADDR / RTM_DELADDR would.
func (h *fakeHost) setAddr(dev, addr string, flags uint32, del bool) {
	p := netip.MustParsePrefix(addr)
	h.mu.Lock()
	ps := slices.DeleteFunc(h.addrs[dev], func(x netip.Prefix) bool { return x == p })
	if del {
		delete(h.flags, p)
	} else {
		ps = append(ps, p)
		h.flags[p] = flags
	}
	h.addrs[dev] = ps
	ev := netif.AddrEvent{Addr: netif.Addr{Prefix: p, Flags: flags, LinkIndex: h.links[dev].Index}, Deleted: del}
	ws := slices.Clone(h.awatch)
	h.mu.Unlock()
	for _, w := range ws {
		w <- ev
	}
}

// delLink removes an interface and its addresses.
func (h *fakeHost) delLink(name string) {
	h.mu.Lock()
	li := h.links[name]
	delete(h.links, name)
	delete(h.addrs, name)
	ws := slices.Clone(h.watch)
	h.mu.Unlock()
	for _, w := range ws {
		w <- netif.LinkEvent{Link: li, Deleted: true}
	}
}

// AddVIPs checks that each index is its VIP's interface's (0: by name),
// then adds as AddVIP; it counts the calls.
func (h *fakeHost) AddVIPs(vs []netif.VIPAt) []error {
	h.mu.Lock()
	h.batches = append(h.batches, len(vs))
	h.mu.Unlock()
	errs := make([]error, len(vs))
	for i, x := range vs {
		li, err := h.Link(x.VIP.Dev)
		switch {
		case err != nil:
			errs[i] = err
		case x.Index != 0 && li.Index != x.Index:
			errs[i] = fmt.Errorf("fake: %s has index %d, not %d", x.VIP.Dev, li.Index, x.Index)
		default:
			errs[i] = h.AddVIP(x.VIP)
		}
	}
	return errs
}

func (h *fakeHost) AddVIP(v netif.VIP) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.vips[v.Prefix]; !ok {
		h.history = append(h.history, "+"+v.Prefix.String())
		h.at = append(h.at, time.Now())
		h.onWire("+" + v.Addr().String())
	}
	h.vips[v.Prefix] = v.Dev
	h.addrEvent(v, false)
	return nil
}

// addrEvent tells the address watchers (h.mu held).
func (h *fakeHost) addrEvent(v netif.VIP, deleted bool) {
	ev := netif.AddrEvent{Addr: netif.Addr{Prefix: v.Prefix, LinkIndex: h.links[v.Dev].Index}, Deleted: deleted}
	for _, w := range h.awatch {
		select {
		case w <- ev:
		default:
		}
	}
}

// removeByHand is `ip addr del`: the VIP goes, the watchers are told.
func (h *fakeHost) removeByHand(p string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pp := netip.MustParsePrefix(p)
	dev, ok := h.vips[pp]
	if !ok {
		return
	}
	delete(h.vips, pp)
	h.history = append(h.history, "-"+p+" (by hand)")
	h.at = append(h.at, time.Now())
	h.addrEvent(netif.VIP{Prefix: pp, Dev: dev}, true)
}

func (h *fakeHost) WatchRoutes(ctx context.Context, f func(netif.RouteEvent)) error {
	<-ctx.Done()
	return nil
}

func (h *fakeHost) DelVIPAt(v netif.VIPAt) error { return h.DelVIP(v.VIP) }

func (h *fakeHost) DelVIP(v netif.VIP) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.vips[v.Prefix]; ok {
		h.history = append(h.history, "-"+v.Prefix.String())
		h.at = append(h.at, time.Now())
		h.onWire("-" + v.Addr().String())
		h.addrEvent(v, true)
	}
	delete(h.vips, v.Prefix)
	return nil
}

func (h *fakeHost) AddRoute(r netif.Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history = append(h.history, "+route "+r.String())
	h.at = append(h.at, time.Now())
	return nil
}

func (h *fakeHost) DelRoute(r netif.Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history = append(h.history, "-route "+r.String())
	h.at = append(h.at, time.Now())
	return nil
}

func (h *fakeHost) ReplaceRoute(r netif.Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history = append(h.history, "=route "+r.String())
	h.at = append(h.at, time.Now())
	return nil
}

func (h *fakeHost) AddRule(r netif.Rule) error { return nil }
func (h *fakeHost) DelRule(r netif.Rule) error { return nil }

func (h *fakeHost) RemoveStale(vips []netif.VIP, others bool) ([]netif.Addr, []netif.Addr, error) {
	var out []netif.Addr
	for _, v := range vips {
		h.mu.Lock()
		_, ok := h.vips[v.Prefix]
		h.mu.Unlock()
		if ok {
			h.DelVIP(v)
			out = append(out, netif.Addr{Prefix: v.Prefix})
		}
	}
	return out, nil, nil
}

func (h *fakeHost) WatchLinks(ctx context.Context, f func(netif.LinkEvent)) error {
	ch := make(chan netif.LinkEvent, 16)
	h.mu.Lock()
	var initial []netif.LinkInfo
	for _, li := range h.links {
		initial = append(initial, li)
	}
	h.watch = append(h.watch, ch)
	h.mu.Unlock()
	for _, li := range initial {
		f(netif.LinkEvent{Link: li, Initial: true})
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-ch:
			f(ev)
		}
	}
}

// setLink changes an interface's carrier and tells the watchers.
func (h *fakeHost) setLink(name string, up bool) {
	h.mu.Lock()
	li := h.links[name]
	li.Running, li.LowerUp = up, up
	h.links[name] = li
	ws := slices.Clone(h.watch)
	h.mu.Unlock()
	for _, w := range ws {
		w <- netif.LinkEvent{Link: li}
	}
}

// addLink creates an interface, as when it appears after start (with addr
// unless it is empty).
func (h *fakeHost) addLink(name, addr string, index int) {
	h.mu.Lock()
	li := netif.LinkInfo{Index: index, Name: name, Up: true, Running: true, LowerUp: true, MAC: net.HardwareAddr{2, 0, 0, 0, 1, byte(index)}, MTU: 1500}
	h.links[name] = li
	if addr != "" {
		h.addrs[name] = []netip.Prefix{netip.MustParsePrefix(addr)}
	}
	ws := slices.Clone(h.watch)
	h.mu.Unlock()
	for _, w := range ws {
		w <- netif.LinkEvent{Link: li}
	}
}

func (h *fakeHost) SendARP(ifindex int, mac net.HardwareAddr, vip netip.Addr) error {
	h.mu.Lock()
	h.onWire("arp " + vip.String())
	h.mu.Unlock()
	h.lan.mu.Lock()
	h.lan.announced = append(h.lan.announced, announce{h.name, vip})
	h.lan.mu.Unlock()
	return nil
}

func (h *fakeHost) SendNA(ifindex int, mac net.HardwareAddr, vip netip.Addr, router bool) error {
	return h.SendARP(ifindex, mac, vip)
}

func (h *fakeHost) IPv6Forwarding(string) bool { return false }

func (h *fakeHost) Sysctl(key, value string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if dev, ok := strings.CutPrefix(key, "net/ipv4/conf/"); ok {
		dev, _, _ = strings.Cut(dev, "/")
		if _, ok := h.links[dev]; !ok {
			return fmt.Errorf("fake: no %s", key)
		}
	}
	if h.sysctls == nil {
		h.sysctls = map[string]string{}
	}
	h.sysctls[key] = value
	return nil
}

// holds reports whether the host has the VIP.
func (h *fakeHost) holds(p string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.vips[netip.MustParsePrefix(p)]
	return ok
}

type fakeConn struct {
	host   *fakeHost
	cfg    vrrpnet.Config
	rx     chan vrrpnet.Packet
	once   sync.Once
	closed chan struct{}
}

func (c *fakeConn) ReadPacket(buf []byte) (vrrpnet.Packet, error) {
	select {
	case p := <-c.rx:
		n := copy(buf, p.Payload)
		p.Payload = buf[:n]
		return p, nil
	case <-c.closed:
		return vrrpnet.Packet{}, net.ErrClosed
	}
}

// ReadLoop hands over each packet when it comes, with those queued behind
// it, until the conn is closed.
func (c *fakeConn) ReadLoop(bufs [][]byte, pkts []vrrpnet.Packet, handle func([]vrrpnet.Packet) error) error {
	for {
		n, err := c.readBatch(bufs, pkts)
		if err != nil {
			return err
		}
		if err := handle(pkts[:n]); err != nil {
			return err
		}
	}
}

// readBatch returns the first packet when it comes, with those queued
// behind it.
func (c *fakeConn) readBatch(bufs [][]byte, pkts []vrrpnet.Packet) (int, error) {
	n := min(len(bufs), len(pkts))
	p, err := c.ReadPacket(bufs[0])
	if err != nil {
		return 0, err
	}
	pkts[0] = p
	k := 1
	for ; k < n; k++ {
		select {
		case p := <-c.rx:
			m := copy(bufs[k], p.Payload)
			p.Payload = bufs[k][:m]
			pkts[k] = p
			continue
		default:
		}
		break
	}
	return k, nil
}

func (c *fakeConn) WriteBatch(msgs []vrrpnet.Message) int {
	failed := 0
	for i := range msgs {
		m := &msgs[i]
		if m.Seal != nil {
			m.Err = c.WriteSealed(m.Payload, m.Src, m.Dst, m.Seal)
		} else {
			m.Err = c.WritePacket(m.Payload, m.Src, m.Dst)
		}
		if m.Err != nil {
			failed++
		}
	}
	return failed
}

func (c *fakeConn) WritePacket(payload []byte, src, dst netip.Addr) error {
	lan := c.host.lan
	c.host.mu.Lock()
	up := c.host.links[c.cfg.Interface].Running
	c.host.mu.Unlock()
	if !up {
		return nil // no carrier: the frame goes nowhere
	}
	lan.mu.Lock()
	conns := slices.Clone(lan.conns)
	drop, segments := lan.drop, lan.segments
	lan.mu.Unlock()
	if drop != nil && drop(src, dst) {
		return nil
	}
	for _, o := range conns {
		if o.host == c.host || o.cfg.Family != c.cfg.Family || segments && o.cfg.Interface != c.cfg.Interface {
			continue
		}
		select {
		case <-o.closed:
			continue
		default:
		}
		o.host.mu.Lock()
		oup := o.host.links[o.cfg.Interface].Running
		o.host.mu.Unlock()
		if !oup {
			continue
		}
		if o.cfg.Unicast {
			if dst != o.cfg.Src {
				continue
			}
		} else {
			g := o.cfg.Group
			if !g.IsValid() {
				g = vrrpnet.DefaultGroup(o.cfg.Family)
			}
			if dst != g {
				continue
			}
		}
		p := vrrpnet.Packet{Payload: slices.Clone(payload), Src: src, Dst: dst, TTL: 255, IfIndex: 2}
		select {
		case o.rx <- p:
		default: // receive queue full: lost, like a busy socket
		}
	}
	return nil
}

func (c *fakeConn) Pending() bool { return len(c.rx) > 0 }

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// lastChange returns when the host last added (+) or removed (-) the VIP.
func (h *fakeHost) lastChange(op, p string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.history) - 1; i >= 0; i-- {
		if h.history[i] == op+p {
			return h.at[i]
		}
	}
	return time.Time{}
}
