// Package vrrpnet carries VRRP advertisements: raw IP protocol 112 sockets
// for IPv4 and IPv6 (and protocol 51 for IPsec AH, ah.go), one Conn per
// (interface, family, protocol, group or unicast source), set up as
// keepalived 2.2.7 sets up its sockets (vrrp.c
// open_vrrp_read_socket / open_vrrp_send_socket, vrrp_if.c). Payloads are
// opaque bytes: the codec (internal/vrrp/packet) builds and parses them.
//
// What a Conn does:
//   - SO_BINDTODEVICE to its interface, so it sees only that link's packets.
//   - Multicast mode: joins the group (224.0.0.18 / ff02::12, or
//     vrrp_mcast_group4/6) on the interface and binds to it, so unicast
//     protocol-112 packets are not delivered to it; IP_MULTICAST_ALL /
//     IPV6_MULTICAST_ALL off, so groups other sockets joined do not leak in;
//     multicast loop off, so its own adverts do not come back.
//   - Unicast mode (unicast_peer): binds to the unicast source address, so it
//     receives exactly the adverts addressed to unicast_src_ip (binding fails,
//     and Listen with it, when that address is not on the host: keepalived
//     then puts the instance in FAULT). Sources that are not configured
//     peers arrive too: vrrp drops them with check_unicast_src (DropNotPeer)
//     and reports them otherwise (NonPeerAdvert).
//   - IPv4: builds the IP header itself (IP_HDRINCL, as keepalived does):
//     TOS 0xc0 (CS6), TTL 255, an identification counter that skips 0, no DF,
//     any source address (mcast_src_ip need not be primary). Multicast sends
//     use MSG_DONTROUTE like keepalived.
//   - IPv6: hop limit 255 for multicast and unicast (keepalived 2.2.7 leaves
//     unicast at the kernel default unless unicast_ttl is set; RFC 5798
//     §5.1.2.3 says 255), traffic class 0xc0, source and interface chosen per
//     packet with IPV6_PKTINFO. Unlike keepalived it does not set
//     IPV6_CHECKSUM: the codec computes the checksum (identical bytes on the
//     wire) and a bad checksum on receive reaches the codec, which drops it
//     with a counted reason instead of the kernel dropping it silently.
//   - Receive: reports source, destination, TTL / hop limit and ifindex
//     (IP_PKTINFO, IPV6_PKTINFO, IPV6_RECVHOPLIMIT; IPv4 TTL from the
//     header), and drops, counting them, packets whose source is the Conn's
//     own source address (defence in depth: loop is off).
//
// Concurrency: one goroutine at a time may call ReadPacket, ReadBatch or
// ReadLoop while any number call WritePacket or WriteBatch; Close,
// SetReadDeadline, Pending and Stats may be called from any goroutine.
// Close makes a blocked ReadPacket or ReadBatch return net.ErrClosed, and
// ReadLoop once its handle returns.
package vrrpnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/inet"
	"github.com/vigil-ha/vigil/internal/netif"
)

// Protocol is VRRP's IP protocol number (RFC 5798 §5.1.1.4).
const Protocol = 112

// DefaultTTL is the TTL / hop limit VRRP packets are sent with (RFC 5798
// §5.1.1.3, §5.1.2.3).
const DefaultTTL = 255

// tos is the IPv4 TOS / IPv6 traffic class keepalived sends with:
// IPTOS_PREC_INTERNETCONTROL, DSCP CS6.
const tos = 0xc0

// Family selects IPv4 or IPv6 (the project's one family type).
type Family = inet.Family

// The two families.
const (
	IPv4 = inet.IPv4
	IPv6 = inet.IPv6
)

// DefaultGroup returns the VRRP multicast group of the family: 224.0.0.18
// or ff02::12 (RFC 5798 §5.1.1.2, §5.1.2.2).
func DefaultGroup(f Family) netip.Addr {
	if f == IPv6 {
		return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
	}
	return netip.AddrFrom4([4]byte{224, 0, 0, 18})
}

// Config describes one Conn.
type Config struct {
	// Interface is the link the Conn sends and receives on.
	Interface string
	Family    Family
	// Group is the multicast group (vrrp_mcast_group4/6); zero means
	// DefaultGroup. Ignored in unicast mode.
	Group netip.Addr
	// Src is the source address (mcast_src_ip / unicast_src_ip). Zero means
	// the interface's first IPv4 address, or its first IPv6 link-local
	// address. The engine should pass netif.Handle.PrimaryAddr, which skips
	// VIPs, as keepalived does.
	Src netip.Addr
	// Unicast selects unicast mode (unicast_peer configured): no group is
	// joined and the socket is bound to Src.
	Unicast bool
	// TTL is the TTL / hop limit to send with; 0 means DefaultTTL. Set it
	// from keepalived's unicast_ttl.
	TTL int
	// ReadBuffer sets SO_RCVBUF when non-zero.
	ReadBuffer int
	// Protocol is the IP protocol of the socket: 0 or Protocol for VRRP,
	// ProtocolAH (IPv4 only) for instances with `auth_type AH`, as
	// keepalived opens one socket per protocol (ah.go).
	Protocol int
}

// Packet is one received advertisement.
type Packet struct {
	// Payload is the VRRP packet (after the IPv4 header; for an AH Conn,
	// the whole IPv4 datagram); it aliases the buffer given to ReadPacket.
	Payload []byte
	Src     netip.Addr
	Dst     netip.Addr
	// TTL is the IPv4 TTL or IPv6 hop limit it arrived with; RFC 5798
	// §7.1 requires 255 (the caller drops others, in multicast mode).
	TTL     int
	IfIndex int
}

// Stats counts what a Conn did. Dropped* packets never reach the caller.
type Stats struct {
	Received         uint64
	Sent             uint64
	SendErrors       uint64
	DroppedOwn       uint64 // source is our own address
	DroppedMalformed uint64 // IPv4 header unusable
	DroppedTruncated uint64 // larger than the read buffer
}

// Conn is a raw protocol-112 socket bound to one interface.
type Conn struct {
	family  Family
	ifname  string
	ifindex int
	src     netip.Addr
	group   netip.Addr // zero in unicast mode
	ttl     int
	proto   int // Protocol or ProtocolAH

	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool
	ipID   atomic.Uint32

	// The batch paths' memory (batch.go) and the functions the poller
	// calls with the fd, made once so that a call allocates nothing.
	rxMu, txMu sync.Mutex
	rx         rxScratch
	tx         txScratch
	rxFn, txFn func(fd uintptr) bool
	loopFn     func(fd uintptr) bool
	// loopMu orders Close with ReadLoop's handle: a Close while handle
	// runs is left to the loop (closeDeferred).
	loopMu                  sync.Mutex
	inHandle, closeDeferred bool
	// taking is set by ReadLoop from just before its recvmmsg until the
	// batch's handle returns (or the read found nothing): packets it took
	// out of the queue and has not handed over yet still count as
	// Pending.
	taking atomic.Bool

	received, sent, sendErrors           atomic.Uint64
	droppedOwn, droppedMal, droppedTrunc atomic.Uint64
}

// ErrNoSource is returned (wrapped) by Listen when Config.Src is zero and the
// interface has no address to send from. keepalived puts such an instance
// in FAULT until an address appears.
var ErrNoSource = errors.New("vrrpnet: no source address on interface")

// Listen opens a Conn in the network namespace of the calling thread. A
// missing interface gives an error matching netif.ErrLinkNotFound.
func Listen(cfg Config) (*Conn, error) {
	if cfg.Family != IPv4 && cfg.Family != IPv6 {
		return nil, fmt.Errorf("vrrpnet: invalid family %d", cfg.Family)
	}
	c := &Conn{family: cfg.Family, ifname: cfg.Interface, ttl: cfg.TTL, proto: cfg.Protocol}
	if c.ttl == 0 {
		c.ttl = DefaultTTL
	}
	if err := c.checkProtocol(); err != nil {
		return nil, err
	}
	if c.ttl < 1 || c.ttl > 255 {
		return nil, fmt.Errorf("vrrpnet: invalid TTL %d", cfg.TTL)
	}
	if !cfg.Unicast {
		c.group = cfg.Group
		if !c.group.IsValid() {
			c.group = DefaultGroup(cfg.Family)
		}
		if !c.group.IsMulticast() || c.group.Is4() != (cfg.Family == IPv4) {
			return nil, fmt.Errorf("vrrpnet: %s is not an %s multicast group", c.group, cfg.Family)
		}
	}
	if cfg.Src.IsValid() && cfg.Src.Unmap().Is4() != (cfg.Family == IPv4) {
		return nil, fmt.Errorf("vrrpnet: source %s is not %s", cfg.Src, cfg.Family)
	}

	domain := unix.AF_INET
	if cfg.Family == IPv6 {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, c.proto)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()

	ifr, err := unix.NewIfreq(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: interface %q: %w", cfg.Interface, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("vrrpnet: %w", &netif.LinkNotFoundError{Name: cfg.Interface})
		}
		return nil, fmt.Errorf("vrrpnet: interface %q: %w", cfg.Interface, err)
	}
	c.ifindex = int(ifr.Uint32())

	c.src = cfg.Src.Unmap()
	if !c.src.IsValid() {
		if c.src, err = defaultSource(c.ifindex, cfg.Family); err != nil {
			return nil, fmt.Errorf("vrrpnet: %s: %w", cfg.Interface, err)
		}
	}

	if err := c.setup(fd, cfg); err != nil {
		return nil, err
	}
	c.f = os.NewFile(uintptr(fd), "vrrp-"+cfg.Family.String()+"-"+cfg.Interface)
	ok = true
	c.rxFn = func(fd uintptr) bool { return c.recvmmsg(int(fd)) }
	c.txFn = func(fd uintptr) bool { return c.sendmmsg(int(fd)) }
	c.loopFn = func(fd uintptr) bool { return c.readLoop(int(fd)) }
	if c.rc, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, fmt.Errorf("vrrpnet: %w", err)
	}
	return c, nil
}

// setup applies keepalived's socket options, joins the group and binds.
func (c *Conn) setup(fd int, cfg Config) error {
	type opt struct {
		name       string
		level, opt int
		val        int
	}
	var opts []opt
	if cfg.Family == IPv4 {
		opts = []opt{
			{"IP_HDRINCL", unix.IPPROTO_IP, unix.IP_HDRINCL, 1},
			{"IP_MULTICAST_ALL", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0},
			{"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
			{"IP_PKTINFO", unix.IPPROTO_IP, unix.IP_PKTINFO, 1},
			{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, tos},
		}
	} else {
		opts = []opt{
			{"IPV6_MULTICAST_ALL", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0},
			{"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
			{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, c.ttl},
			{"IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, c.ttl},
			{"IPV6_MULTICAST_IF", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, c.ifindex},
			{"IPV6_RECVPKTINFO", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1},
			{"IPV6_RECVHOPLIMIT", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1},
			{"IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tos},
		}
	}
	if cfg.ReadBuffer > 0 {
		opts = append(opts, opt{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.ReadBuffer})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			return fmt.Errorf("vrrpnet: setsockopt %s: %w", o.name, err)
		}
	}
	if err := unix.BindToDevice(fd, cfg.Interface); err != nil {
		return fmt.Errorf("vrrpnet: SO_BINDTODEVICE %s: %w", cfg.Interface, err)
	}
	if cfg.Family == IPv4 {
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF,
			&unix.IPMreqn{Ifindex: int32(c.ifindex)}); err != nil {
			return fmt.Errorf("vrrpnet: setsockopt IP_MULTICAST_IF: %w", err)
		}
	}

	var bindTo unix.Sockaddr
	if c.group.IsValid() {
		if cfg.Family == IPv4 {
			err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
				&unix.IPMreqn{Multiaddr: c.group.As4(), Ifindex: int32(c.ifindex)})
			if err != nil {
				return fmt.Errorf("vrrpnet: join %s on %s: %w", c.group, cfg.Interface, err)
			}
		} else {
			err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP,
				&unix.IPv6Mreq{Multiaddr: c.group.As16(), Interface: uint32(c.ifindex)})
			if err != nil {
				return fmt.Errorf("vrrpnet: join %s on %s: %w", c.group, cfg.Interface, err)
			}
		}
		// keepalived: binding to the group stops unicast packets being
		// queued to a multicast socket.
		bindTo = c.sockaddr(c.group)
	} else {
		bindTo = c.sockaddr(c.src)
	}
	if err := unix.Bind(fd, bindTo); err != nil {
		addr := c.src
		if c.group.IsValid() {
			addr = c.group
		}
		return fmt.Errorf("vrrpnet: bind %s: %w", addr, err)
	}
	return nil
}

// sockaddr returns the socket address of a, scoped to the interface when it
// needs a scope (IPv6 link-local unicast or multicast).
func (c *Conn) sockaddr(a netip.Addr) unix.Sockaddr {
	if a.Is4() {
		return &unix.SockaddrInet4{Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Addr: a.As16(), ZoneId: c.scopeID(a)}
}

// scopeID is the IPv6 scope of a: the interface for an address that needs
// one (link-local unicast or multicast), 0 otherwise.
func (c *Conn) scopeID(a netip.Addr) uint32 {
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return uint32(c.ifindex)
	}
	return 0
}

// defaultSource picks keepalived's default source without a netlink handle:
// the first IPv4 address, or the first IPv6 link-local address.
func defaultSource(ifindex int, f Family) (netip.Addr, error) {
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if f == IPv4 && ip.Is4() {
			return ip, nil
		}
		if f == IPv6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	return netip.Addr{}, ErrNoSource
}

// Source returns the address the Conn sends from by default.
func (c *Conn) Source() netip.Addr { return c.src }

// Group returns the multicast group, or the zero Addr in unicast mode.
func (c *Conn) Group() netip.Addr { return c.group }

// IfIndex returns the interface index the Conn is bound to.
func (c *Conn) IfIndex() int { return c.ifindex }

// Interface returns the interface name the Conn is bound to.
func (c *Conn) Interface() string { return c.ifname }

// Family returns the Conn's address family.
func (c *Conn) Family() Family { return c.family }

// SetReadDeadline sets the deadline for ReadPacket; a zero time means none.
// A ReadPacket that reaches it returns an error matching
// os.ErrDeadlineExceeded.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

// Close closes the socket; a blocked ReadPacket returns net.ErrClosed, and
// ReadLoop returns it once its handle (if running) returns.
func (c *Conn) Close() error {
	c.loopMu.Lock()
	if c.closed.Swap(true) {
		c.loopMu.Unlock()
		return nil
	}
	if c.inHandle {
		c.closeDeferred = true
		c.loopMu.Unlock()
		return nil
	}
	c.loopMu.Unlock()
	return c.f.Close()
}

// Stats returns the Conn's counters.
func (c *Conn) Stats() Stats {
	return Stats{
		Received:         c.received.Load(),
		Sent:             c.sent.Load(),
		SendErrors:       c.sendErrors.Load(),
		DroppedOwn:       c.droppedOwn.Load(),
		DroppedMalformed: c.droppedMal.Load(),
		DroppedTruncated: c.droppedTrunc.Load(),
	}
}

func (c *Conn) wrapErr(op string, err error) error {
	if c.closed.Load() {
		return fmt.Errorf("vrrpnet: %s: %w", op, net.ErrClosed)
	}
	return fmt.Errorf("vrrpnet: %s on %s: %w", op, c.ifname, err)
}

// ReadPacket blocks until an advertisement arrives and returns it. buf should
// hold a full packet (an IPv4 header plus the largest VRRP packet; 1500 bytes
// is plenty); larger packets are dropped and counted. Packets from the
// Conn's own source address are dropped and counted. ReadBatch reads
// several with one system call.
func (c *Conn) ReadPacket(buf []byte) (Packet, error) {
	var p [1]Packet
	b := [1][]byte{buf}
	if _, err := c.ReadBatch(b[:], p[:]); err != nil {
		return Packet{}, err
	}
	return p[0], nil
}

// parse fills a Packet from what recvmsg returned: the datagram, its
// control messages and, for IPv6, the source address.
func (c *Conn) parse(b, oob []byte, from netip.Addr) (Packet, bool) {
	p := Packet{IfIndex: c.ifindex}
	if c.family == IPv4 {
		// The kernel hands raw IPv4 sockets the whole datagram, header
		// included, fields in network order.
		h, ok := parseIPv4Header(b, c.proto)
		if !ok {
			return Packet{}, false
		}
		p.Src, p.Dst, p.TTL, p.Payload = h.src, h.dst, h.ttl, b[c.payloadStart(h):h.totLen]
	} else {
		p.Payload = b
		p.Src = from
	}
	controlMessages(oob, func(level, typ int32, data []byte) {
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			p.IfIndex = int(int32(binary.NativeEndian.Uint32(data[0:4])))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			p.Dst = netip.AddrFrom16([16]byte(data[0:16]))
			p.IfIndex = int(binary.NativeEndian.Uint32(data[16:20]))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_HOPLIMIT && len(data) >= 4:
			p.TTL = int(int32(binary.NativeEndian.Uint32(data[0:4])))
		}
	})
	return p, p.Src.IsValid()
}

type ipv4Header struct {
	ihl, totLen int
	ttl         int
	src, dst    netip.Addr
}

// parseIPv4Header checks and decodes the IPv4 header of a received packet
// of IP protocol proto.
func parseIPv4Header(b []byte, proto int) (ipv4Header, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return ipv4Header{}, false
	}
	h := ipv4Header{ihl: int(b[0]&0x0f) * 4, totLen: int(binary.BigEndian.Uint16(b[2:4])), ttl: int(b[8])}
	if h.ihl < 20 || h.ihl > len(b) || h.totLen < h.ihl || h.totLen > len(b) || int(b[9]) != proto {
		return ipv4Header{}, false
	}
	h.src = netip.AddrFrom4([4]byte(b[12:16]))
	h.dst = netip.AddrFrom4([4]byte(b[16:20]))
	return h, true
}

// appendIPv4Header appends the 20-byte header keepalived 2.2.7 builds
// (vrrp.c vrrp_build_ip4): version 4, IHL 5, TOS 0xc0, no flags, the given
// identification, TTL and protocol, and the header checksum (the kernel
// recomputes it for IP_HDRINCL sockets; computing it keeps the bytes
// testable).
func appendIPv4Header(b []byte, src, dst netip.Addr, id uint16, ttl, proto uint8, payloadLen int) []byte {
	start := len(b)
	s, d := src.As4(), dst.As4()
	b = append(b,
		0x45, tos, // version 4, IHL 5; TOS 0xc0
		byte((20+payloadLen)>>8), byte(20+payloadLen), // total length
		byte(id>>8), byte(id), // identification
		0, 0, // flags, fragment offset
		ttl, proto,
		0, 0, // checksum, below
		s[0], s[1], s[2], s[3],
		d[0], d[1], d[2], d[3])
	var sum uint32
	for i := start; i < start+20; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[start+10:], ^uint16(sum))
	return b
}

// nextID returns the next IPv4 identification. keepalived 2.2.7 (vrrp.c
// vrrp_update_pkt): the kernel fills in an ID of 0, so the counter skips it.
func (c *Conn) nextID() uint16 {
	for {
		if id := uint16(c.ipID.Add(1)); id != 0 {
			return id
		}
	}
}

// WritePacket sends one VRRP payload from src to dst. A zero src means
// Source(); a zero dst means the group (multicast mode only). For VRRPv3 the
// payload's checksum covers src and dst (RFC 5798 §5.2.8), so the caller
// marshals with the same addresses it passes here, once per unicast peer.
// WriteBatch sends several with one system call.
func (c *Conn) WritePacket(payload []byte, src, dst netip.Addr) error {
	m := [1]Message{{Payload: payload, Src: src, Dst: dst}}
	c.WriteBatch(m[:])
	return m[0].Err
}

// Pending reports whether a packet waits in the socket's receive queue
// (FIONREAD) or in ReadLoop's hands, read but not yet through its handle.
// The engine asks before acting on an expired Master_Down_Timer: after a
// stall (a paused VM, a starved CPU) the master's adverts may be queued but
// not yet handled, and must win over the timer.
func (c *Conn) Pending() bool {
	if c.taking.Load() {
		return true
	}
	n := 0
	err := c.rc.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return err == nil && n > 0
}
