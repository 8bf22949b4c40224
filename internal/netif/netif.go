// Package netif owns what vigil does to network links and addresses over
// rtnetlink: reading link state, adding and removing virtual IP addresses
// (VIPs) the way keepalived's virtual_ipaddress does, and watching link and
// address changes.
//
// Everything goes through an explicit *Handle bound to the network namespace
// that was current on the calling thread when Open ran; there is no package
// state. Link operations use github.com/vishvananda/netlink; address
// operations build their rtnetlink messages here, because vishvananda/netlink
// v1.3.1 cannot set or read IFA_PROTO, which vigil uses to mark the addresses
// it adds (see AddrProto).
//
// Concurrency: a Handle is safe for concurrent use by several goroutines;
// requests on one netlink socket are serialised. WatchLinks and WatchAddrs
// each open their own subscription socket and may run concurrently with
// everything else.
package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrLinkNotFound is matched (errors.Is) by every error this package, vrrpnet
// and garp return when a named interface does not exist. The engine turns it
// into the FAULT state instead of failing the daemon: keepalived does the same
// for an interface missing at start.
var ErrLinkNotFound = errors.New("netif: link not found")

// LinkNotFoundError reports the name (or index) of a missing interface. It
// matches ErrLinkNotFound.
type LinkNotFoundError struct {
	Name  string
	Index int
}

func (e *LinkNotFoundError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("netif: link index %d not found", e.Index)
	}
	return fmt.Sprintf("netif: link %q not found", e.Name)
}

// Is makes errors.Is(err, ErrLinkNotFound) true.
func (e *LinkNotFoundError) Is(target error) bool { return target == ErrLinkNotFound }

// ErrNoAddress is returned by PrimaryAddr when the link has no usable address
// of the family (keepalived: an instance whose interface has no address goes
// to FAULT).
var ErrNoAddress = errors.New("netif: no usable address on link")

// AddrProtoKeepalived is the ifa_proto value (IFA_PROTO, Linux >= 5.18) vigil
// stores on every address it adds: RTPROT_KEEPALIVED (18), the value
// keepalived >= 2.3.2 uses for its own addresses when /etc/iproute2/
// rt_addrprotos names no "keepalived" protocol (keepalived 2.2.7 sets none).
// vigil is a drop-in replacement, so it marks its VIPs the same way; tools
// that look for keepalived's addresses keep working, and RemoveStale
// recognises what a killed earlier run (of vigil or of a recent keepalived)
// left on the configured interfaces. Older kernels ignore the attribute.
const AddrProtoKeepalived = unix.RTPROT_KEEPALIVED

// Handle is an rtnetlink handle in one network namespace.
type Handle struct {
	nh  *netlink.Handle
	req *nl.SocketHandle // address requests (IFA_PROTO)
	// reqReader reads req's answers to sendBatch (nil until the first);
	// req.Socket's lock guards it.
	reqReader *nlReader
	ns        netns.NsHandle // for subscriptions opened from other goroutines
	proto     uint8
	// marks is true when the kernel keeps IFA_PROTO (Linux >= 5.18): an
	// address's mark then tells whether vigil added it.
	marks bool
}

// kernelMarks reports whether the running kernel stores IFA_PROTO.
func kernelMarks() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 5 || major == 5 && minor >= 18
}

// Open returns a handle on the network namespace of the calling thread. Close
// releases it.
func Open() (*Handle, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("netif: current netns: %w", err)
	}
	// The calling thread is in ns already: no setns(2), which needs
	// CAP_SYS_ADMIN and which systemd's RestrictNamespaces= refuses.
	nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netif: netlink handle: %w", err)
	}
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		nh.Close()
		ns.Close()
		return nil, fmt.Errorf("netif: netlink socket: %w", err)
	}
	return &Handle{nh: nh, req: &nl.SocketHandle{Socket: s}, ns: ns, proto: AddrProtoKeepalived, marks: kernelMarks()}, nil
}

// target is the namespace to open a socket in from the calling thread:
// netns.None() (no move) when the thread is in h.ns already, as every thread
// of the daemon is, so that setns(2) is only asked for where a move is
// needed (tests that open a handle inside a namespace and watch from
// another goroutine).
func (h *Handle) target() netns.NsHandle {
	cur, err := netns.Get()
	if err != nil {
		return h.ns
	}
	defer cur.Close()
	if cur.Equal(h.ns) {
		return netns.None()
	}
	return h.ns
}

// Close releases the handle's sockets. Watches running on it must have been
// stopped (their contexts cancelled) first.
func (h *Handle) Close() error {
	h.nh.Close()
	if h.reqReader != nil {
		h.reqReader.Close()
	}
	h.req.Close()
	return h.ns.Close()
}

// AddrProto returns the ifa_proto value the handle marks its addresses with.
func (h *Handle) AddrProto() uint8 { return h.proto }

// LinkInfo is the state of one interface.
type LinkInfo struct {
	Index int
	Name  string
	// Up is IFF_UP: the administrative state (`ip link set dev X up`).
	Up bool
	// Running is IFF_RUNNING: operationally up (carrier present and, for
	// stacked devices, the lower device up). keepalived treats a link as up
	// when both IFF_UP and IFF_RUNNING are set; so should the engine.
	Running bool
	// LowerUp is IFF_LOWER_UP: the driver reports a carrier.
	LowerUp   bool
	OperState string // "up", "down", "lowerlayerdown", ...
	MAC       net.HardwareAddr
	MTU       int
	NoARP     bool // IFF_NOARP: keepalived sends no GARP/NA on such links
}

// Usable reports whether keepalived would consider the link up
// (IFF_UP and IFF_RUNNING).
func (l LinkInfo) Usable() bool { return l.Up && l.Running }

func linkInfo(l netlink.Link) LinkInfo {
	a := l.Attrs()
	return LinkInfo{
		Index:     a.Index,
		Name:      a.Name,
		Up:        a.RawFlags&unix.IFF_UP != 0,
		Running:   a.RawFlags&unix.IFF_RUNNING != 0,
		LowerUp:   a.RawFlags&unix.IFF_LOWER_UP != 0,
		OperState: a.OperState.String(),
		MAC:       append(net.HardwareAddr(nil), a.HardwareAddr...),
		MTU:       a.MTU,
		NoARP:     a.RawFlags&unix.IFF_NOARP != 0,
	}
}

// Link returns the state of the named interface, or a *LinkNotFoundError.
func (h *Handle) Link(name string) (LinkInfo, error) {
	l, err := h.link(name)
	if err != nil {
		return LinkInfo{}, err
	}
	return linkInfo(l), nil
}

// LinkByIndex returns the state of the interface with the given index.
func (h *Handle) LinkByIndex(index int) (LinkInfo, error) {
	l, err := h.nh.LinkByIndex(index)
	if err != nil {
		if isNotFound(err) {
			return LinkInfo{}, &LinkNotFoundError{Index: index}
		}
		return LinkInfo{}, fmt.Errorf("netif: link %d: %w", index, err)
	}
	return linkInfo(l), nil
}

func (h *Handle) link(name string) (netlink.Link, error) {
	l, err := h.nh.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil, &LinkNotFoundError{Name: name}
		}
		return nil, fmt.Errorf("netif: link %q: %w", name, err)
	}
	return l, nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// PrimaryAddr returns the address keepalived would use as the source of
// adverts on the link: for IPv4 the first primary (non-secondary) address,
// for IPv6 the first usable link-local address (SourceAddr has the rule). It
// returns an error matching ErrNoAddress when there is none.
func (h *Handle) PrimaryAddr(dev string, v6 bool) (netip.Addr, error) {
	l, err := h.link(dev)
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := h.listAddrs(l.Attrs().Index)
	if err != nil {
		return netip.Addr{}, err
	}
	if src, ok := SourceAddr(addrs, l.Attrs().Index, v6, h.proto); ok {
		return src, nil
	}
	return netip.Addr{}, noSourceError(dev, v6)
}
