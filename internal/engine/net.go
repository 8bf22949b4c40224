package engine

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/vrrpfw"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// Net is the engine's window on the host's network: VRRP sockets, links,
// addresses and gratuitous ARP. OSNet is the real one; tests use an
// in-memory LAN. Implementations must be safe for concurrent use by the
// engine loop and the reader goroutines it starts.
type Net interface {
	// OpenConn opens a VRRP socket (see vrrpnet.Listen).
	OpenConn(cfg vrrpnet.Config) (Conn, error)
	// Link describes an interface; netif.ErrLinkNotFound when it is missing.
	Link(name string) (netif.LinkInfo, error)
	// Addrs lists the addresses of every interface (netif.SourceAddr picks
	// the source of adverts among them).
	Addrs() ([]netif.Addr, error)
	AddVIP(v netif.VIP) error
	// AddVIPs adds several VIPs, each on the interface with its index (the
	// engine's link table knows it; 0 looks it up by name), and returns
	// one error per VIP (see netif.Handle.AddVIPs).
	AddVIPs(vs []netif.VIPAt) []error
	DelVIP(v netif.VIP) error
	// DelVIPAt is DelVIP on the interface with the given index (0 looks
	// it up by name).
	DelVIPAt(v netif.VIPAt) error
	// Routes and rules (virtual_routes, virtual_rules) follow the VIPs.
	AddRoute(r netif.Route) error
	DelRoute(r netif.Route) error
	// ReplaceRoute puts r in place of the route of its key (a reload's
	// route whose options changed, as keepalived replaces it).
	ReplaceRoute(r netif.Route) error
	AddRule(r netif.Rule) error
	DelRule(r netif.Rule) error
	// RemoveStale removes the marked addresses a killed earlier run left
	// on the interfaces the configuration names: the configured VIPs, and
	// with others every marked address (see netif.Handle.RemoveStale).
	// Configured VIPs present but not marked are returned in foreign.
	RemoveStale(vips []netif.VIP, others bool) (removed, foreign []netif.Addr, err error)
	// WatchLinks reports the links present, then every change, until ctx
	// is done.
	WatchLinks(ctx context.Context, f func(netif.LinkEvent)) error
	// WatchAddrs reports the addresses present, then every address added
	// or removed (or changing flags, as when DAD completes), until ctx is
	// done.
	WatchAddrs(ctx context.Context, f func(netif.AddrEvent)) error
	// WatchRoutes is WatchAddrs for routes.
	WatchRoutes(ctx context.Context, f func(netif.RouteEvent)) error
	SendARP(ifindex int, mac net.HardwareAddr, vip netip.Addr) error
	SendNA(ifindex int, mac net.HardwareAddr, vip netip.Addr, router bool) error
	// IPv6Forwarding tells whether an interface forwards IPv6 (the NA's
	// router flag, as keepalived sets it).
	IPv6Forwarding(dev string) bool
	// Sysctl writes key (below /proc/sys, with slashes) in the namespace.
	Sysctl(key, value string) error
}

// Conn is a VRRP socket (see vrrpnet.Conn).
type Conn interface {
	// ReadLoop calls handle with the packets queued (at most len(pkts),
	// each in the buffer of its index in bufs) whenever some arrive, until
	// the conn is closed (net.ErrClosed), a read fails or handle returns an
	// error. A Close while handle runs returns at once (see
	// vrrpnet.Conn.ReadLoop).
	ReadLoop(bufs [][]byte, pkts []vrrpnet.Packet, handle func([]vrrpnet.Packet) error) error
	WritePacket(payload []byte, src, dst netip.Addr) error
	// WriteBatch sends msgs, setting the Err of those that failed, and
	// returns how many failed.
	WriteBatch(msgs []vrrpnet.Message) int
	// Pending reports whether a packet waits to be read.
	Pending() bool
	Close() error
}

// OSNet is Net over the kernel of the network namespace it was opened in.
type OSNet struct {
	h  *netif.Handle
	g  *garp.Sender
	vm *netif.VMACs
	fw *vrrpfw.Firewall
}

// OpenOSNet opens netlink and packet sockets in the current network
// namespace.
func OpenOSNet() (*OSNet, error) {
	h, err := netif.Open()
	if err != nil {
		return nil, err
	}
	g, err := garp.Open()
	if err != nil {
		h.Close()
		return nil, err
	}
	fw, err := vrrpfw.Open()
	if err != nil {
		g.Close()
		h.Close()
		return nil, err
	}
	return &OSNet{h: h, g: g, vm: netif.NewVMACs(h), fw: fw}, nil
}

// Close releases the sockets.
func (n *OSNet) Close() error {
	n.g.Close()
	n.fw.Close()
	return n.h.Close()
}

func (n *OSNet) CreateVMAC(v netif.VMAC) error       { return n.vm.Create(v) }
func (n *OSNet) DeleteVMAC(name string) error        { return n.vm.Delete(name) }
func (n *OSNet) RemoveStaleVMACs() ([]string, error) { return n.vm.RemoveStale() }
func (n *OSNet) ApplyFirewall(s vrrpfw.State) error  { return n.fw.Apply(s) }

func (n *OSNet) OpenConn(cfg vrrpnet.Config) (Conn, error) { return vrrpnet.Listen(cfg) }
func (n *OSNet) Link(name string) (netif.LinkInfo, error)  { return n.h.Link(name) }
func (n *OSNet) Addrs() ([]netif.Addr, error) {
	return n.h.Addrs()
}
func (n *OSNet) AddVIP(v netif.VIP) error         { return n.h.AddVIP(v) }
func (n *OSNet) AddVIPs(vs []netif.VIPAt) []error { return n.h.AddVIPs(vs) }
func (n *OSNet) DelVIP(v netif.VIP) error         { return n.h.DelVIP(v) }
func (n *OSNet) DelVIPAt(v netif.VIPAt) error     { return n.h.DelVIPAt(v) }
func (n *OSNet) AddRoute(r netif.Route) error     { return n.h.AddRoute(r) }
func (n *OSNet) DelRoute(r netif.Route) error     { return n.h.DelRoute(r) }
func (n *OSNet) ReplaceRoute(r netif.Route) error { return n.h.ReplaceRoute(r) }
func (n *OSNet) AddRule(r netif.Rule) error       { return n.h.AddRule(r) }
func (n *OSNet) DelRule(r netif.Rule) error       { return n.h.DelRule(r) }
func (n *OSNet) RemoveStale(vips []netif.VIP, others bool) ([]netif.Addr, []netif.Addr, error) {
	return n.h.RemoveStale(vips, others)
}
func (n *OSNet) WatchLinks(ctx context.Context, f func(netif.LinkEvent)) error {
	return n.h.WatchLinks(ctx, f)
}
func (n *OSNet) WatchAddrs(ctx context.Context, f func(netif.AddrEvent)) error {
	return n.h.WatchAddrs(ctx, f)
}
func (n *OSNet) WatchRoutes(ctx context.Context, f func(netif.RouteEvent)) error {
	return n.h.WatchRoutes(ctx, f)
}
func (n *OSNet) SendARP(ifindex int, mac net.HardwareAddr, vip netip.Addr) error {
	return n.g.SendARP(ifindex, mac, vip)
}
func (n *OSNet) SendNA(ifindex int, mac net.HardwareAddr, vip netip.Addr, router bool) error {
	return n.g.SendNA(ifindex, mac, vip, router)
}
func (n *OSNet) Sysctl(key, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", filepath.Clean("/"+key)), []byte(value), 0o644)
}

func (n *OSNet) IPv6Forwarding(dev string) bool {
	f, err := garp.IPv6Forwarding(dev)
	return err == nil && f
}
