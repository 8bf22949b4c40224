package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// A health checker opens and closes thousands of short TCP connections a
// second. net.Dialer costs a dozen system calls per connection (poller
// registration, keep-alive and no-delay options, address lookups); connect
// below makes only socket, connect and a second connect that reports the
// outcome, and reaches the runtime's poller only for a connection that
// really has to wait. On loopback and on a LAN
// most connections complete within the connect call.

// connect opens a TCP connection to c's target honouring bindto, bind_port,
// bind_if, fwmark, connect_timeout and ctx. It returns the connected
// socket's descriptor; the caller owns it.
func (c *Conn) connect(ctx context.Context) (int, error) {
	fd, sa, pending, err := c.startConnect()
	if err != nil || !pending {
		return fd, err
	}
	return c.waitConnect(ctx, fd, sa)
}

// startConnect opens a non-blocking socket to c's target and starts
// connecting. pending reports a connect still under way (learn its outcome
// with connected once the socket is writable); otherwise the socket is
// connected, or fd is -1 and err says why.
func (c *Conn) startConnect() (fd int, sa unix.Sockaddr, pending bool, err error) {
	target := c.Target()
	family := unix.AF_INET
	if target.Addr().Is6() && !target.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, nil, false, os.NewSyscallError("socket", err)
	}
	if err := c.prepare(fd, family); err != nil {
		unix.Close(fd)
		return -1, nil, false, err
	}
	sa = sockaddr(target, family)
	err = unix.Connect(fd, sa)
	switch err {
	case nil:
		return fd, sa, false, nil
	case unix.EINPROGRESS, unix.EINTR, unix.EALREADY:
	default:
		unix.Close(fd)
		return -1, nil, false, os.NewSyscallError("connect", err)
	}
	// The handshake usually completes while connect runs (loopback) or
	// within microseconds; look before involving the poller.
	if done, err := connected(fd, sa); done {
		if err != nil {
			unix.Close(fd)
			return -1, nil, false, err
		}
		return fd, sa, false, nil
	}
	return fd, sa, true, nil
}

// waitConnect waits for a pending connect through the runtime's poller.
func (c *Conn) waitConnect(ctx context.Context, fd int, sa unix.Sockaddr) (int, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("dup", err)
	}
	unix.CloseOnExec(dup)
	// f owns dup: closing f (on cancel, or below) deregisters it from the
	// poller without touching fd, which the caller gets back.
	f := os.NewFile(uintptr(dup), "connect")
	defer f.Close()
	_ = f.SetWriteDeadline(deadline(ctx, c.timeout()))
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	var cerr error
	werr := rc.Write(func(uintptr) bool {
		var done bool
		done, cerr = connected(fd, sa)
		return done
	})
	switch {
	case ctx.Err() != nil:
		unix.Close(fd)
		return -1, ctx.Err()
	case werr != nil:
		unix.Close(fd)
		return -1, werr
	case cerr != nil:
		unix.Close(fd)
		return -1, cerr
	}
	return fd, nil
}

// connected asks a connecting socket whether it has finished, by calling
// connect again (one system call where poll and getsockopt take two):
// EISCONN means connected, EALREADY still pending, anything else is the
// connect's error.
func connected(fd int, sa unix.Sockaddr) (done bool, err error) {
	for {
		switch err := unix.Connect(fd, sa); err {
		case nil, unix.EISCONN:
			return true, nil
		case unix.EALREADY, unix.EINPROGRESS:
			return false, nil
		case unix.EINTR:
			continue
		default:
			return true, os.NewSyscallError("connect", err)
		}
	}
}

// prepare applies the source options before connect.
func (c *Conn) prepare(fd, family int) error {
	if c.BindIf != "" {
		if err := unix.BindToDevice(fd, c.BindIf); err != nil {
			return fmt.Errorf("bind_if %s: %w", c.BindIf, err)
		}
	}
	if c.FWMark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(c.FWMark)); err != nil {
			return fmt.Errorf("fwmark %d: %w", c.FWMark, err)
		}
	}
	if c.BindPort != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("bind_port %d: %w", c.BindPort, err)
		}
	}
	if c.BindTo.IsValid() || c.BindPort != 0 {
		a := c.BindTo
		if !a.IsValid() {
			a = netip.IPv4Unspecified()
			if family == unix.AF_INET6 {
				a = netip.IPv6Unspecified()
			}
		}
		if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(a, c.BindPort), family)); err != nil {
			return fmt.Errorf("bindto %s: %w", netip.AddrPortFrom(a, c.BindPort), err)
		}
	}
	return nil
}

func sockaddr(a netip.AddrPort, family int) unix.Sockaddr {
	if family == unix.AF_INET {
		return &unix.SockaddrInet4{Addr: a.Addr().Unmap().As4(), Port: int(a.Port())}
	}
	sa := &unix.SockaddrInet6{Addr: a.Addr().As16(), Port: int(a.Port())}
	if z := a.Addr().Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa
}

// sockConn is a connected socket as a net.Conn, driven by the runtime's
// poller through os.File (deadlines included).
type sockConn struct {
	*os.File
	remote net.Addr
}

func (s *sockConn) LocalAddr() net.Addr  { return &net.TCPAddr{} }
func (s *sockConn) RemoteAddr() net.Addr { return s.remote }

// dialConn connects and wraps the socket for I/O.
func (c *Conn) dialConn(ctx context.Context) (net.Conn, error) {
	fd, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "tcp")
	if f == nil {
		unix.Close(fd)
		return nil, errors.New("probe: bad socket")
	}
	return &sockConn{File: f, remote: net.TCPAddrFromAddrPort(c.Target())}, nil
}

var _ net.Conn = (*sockConn)(nil)
