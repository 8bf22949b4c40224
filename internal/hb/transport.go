package hb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vigil-ha/vigil/internal/hb/hbconf"
	"golang.org/x/sys/unix"
)

// medium is one configured heartbeat path with its send socket.
type medium struct {
	cfg  hbconf.Medium
	dst  *net.UDPAddr
	conn *net.UDPConn // send socket, bound to the device
}

// listener receives on one device and port (heartbeat binds its receive
// socket to the medium's device so packets are told apart by medium).
type listener struct {
	dev   string
	port  int
	conn  *net.UDPConn
	media []int // indexes of the media on this device and port
}

func bindToDevice(dev string) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev); serr != nil {
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
				return
			}
			// heartbeat: write socket priority IPTOS_LOWDELAY.
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, 0x10)
		})
		return errors.Join(err, serr)
	}
}

// openMedia opens every send socket and one receive socket per
// device/port. On error, everything opened is closed.
func openMedia(ctx context.Context, cfg []hbconf.Medium) ([]*medium, []*listener, error) {
	var ms []*medium
	var ls []*listener
	fail := func(err error) ([]*medium, []*listener, error) {
		for _, m := range ms {
			m.conn.Close()
		}
		for _, l := range ls {
			l.conn.Close()
		}
		return nil, nil, err
	}
	for i, c := range cfg {
		m := &medium{cfg: c}
		switch c.Kind {
		case hbconf.Ucast:
			m.dst = net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.Peer, uint16(c.Port)))
		case hbconf.Mcast:
			m.dst = net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.Group, uint16(c.Port)))
		case hbconf.Bcast:
			b, err := broadcastOf(c.Dev)
			if err != nil {
				return fail(err)
			}
			m.dst = net.UDPAddrFromAddrPort(netip.AddrPortFrom(b, uint16(c.Port)))
		}
		lc := net.ListenConfig{Control: bindToDevice(c.Dev)}
		pc, err := lc.ListenPacket(ctx, "udp4", "0.0.0.0:0")
		if err != nil {
			return fail(fmt.Errorf("hb: %s %s: send socket: %w", c.Kind, c.Dev, err))
		}
		m.conn = pc.(*net.UDPConn)
		if c.Kind == hbconf.Mcast {
			if err := mcastSendOpts(m.conn, c); err != nil {
				m.conn.Close()
				return fail(err)
			}
		}
		ms = append(ms, m)
		var l *listener
		for _, x := range ls {
			if x.dev == c.Dev && x.port == c.Port {
				l = x
			}
		}
		if l == nil {
			lc := net.ListenConfig{Control: bindToDevice(c.Dev)}
			pc, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", c.Port))
			if err != nil {
				return fail(fmt.Errorf("hb: %s %s: receive socket on port %d: %w", c.Kind, c.Dev, c.Port, err))
			}
			l = &listener{dev: c.Dev, port: c.Port, conn: pc.(*net.UDPConn)}
			ls = append(ls, l)
		}
		if c.Kind == hbconf.Mcast {
			if err := joinGroup(l.conn, c); err != nil {
				return fail(err)
			}
		}
		l.media = append(l.media, i)
	}
	return ms, ls, nil
}

func broadcastOf(dev string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("hb: bcast %s: %w", dev, err)
	}
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ip := n.IP.To4()
			b := make(net.IP, 4)
			for i := range 4 {
				b[i] = ip[i] | ^n.Mask[i]
			}
			return netip.AddrFrom4([4]byte(b)), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("hb: bcast %s: no IPv4 address", dev)
}

func mcastSendOpts(c *net.UDPConn, m hbconf.Medium) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	ifi, err := net.InterfaceByName(m.Dev)
	if err != nil {
		return fmt.Errorf("hb: mcast %s: %w", m.Dev, err)
	}
	var serr error
	loop := 0
	if m.Loop {
		loop = 1
	}
	err = rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, m.TTL); serr != nil {
			return
		}
		if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, loop); serr != nil {
			return
		}
		serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)})
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("hb: mcast %s: %w", m.Dev, err)
	}
	return nil
}

func joinGroup(c *net.UDPConn, m hbconf.Medium) error {
	ifi, err := net.InterfaceByName(m.Dev)
	if err != nil {
		return fmt.Errorf("hb: mcast %s: %w", m.Dev, err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &unix.IPMreqn{Multiaddr: m.Group.As4(), Ifindex: int32(ifi.Index)})
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("hb: mcast %s join %s: %w", m.Dev, m.Group, err)
	}
	return nil
}
