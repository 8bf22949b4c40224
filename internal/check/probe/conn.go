// Package probe holds vigil's real-server health checkers, one type per
// keepalived checker kind (TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK,
// DNS_CHECK, UDP_CHECK, PING_CHECK, MISC_CHECK, FILE_CHECK), each a
// check.Checker, and the Runner that schedules many of them.
//
// Each checker takes its own option struct; the configuration is mapped to
// it elsewhere. Every network checker honours its context and its
// connect_timeout, and leaves no goroutine or socket behind when Check
// returns. Failures carry a reason that names what failed and where:
// "connect 10.0.0.2:80: connection refused", "status 404, want 200-299",
// "digest mismatch: got X, want Y".
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// Conn holds keepalived's connection options, common to the network checkers
// (check_api.c install_checker_common_keywords).
type Conn struct {
	// Addr is the real server (address and port): the default destination.
	Addr netip.AddrPort
	// ConnectIP and ConnectPort, when set, override the destination's
	// address and port (connect_ip, connect_port).
	ConnectIP   netip.Addr
	ConnectPort uint16
	// BindTo and BindPort set the source address and port (bindto,
	// bind_port).
	BindTo   netip.Addr
	BindPort uint16
	// BindIf binds to an interface (bind_if, SO_BINDTODEVICE); needed for
	// an IPv6 link-local destination (check_api.c check_conn_opts).
	BindIf string
	// FWMark marks the checker's packets (fwmark, SO_MARK).
	FWMark uint32
	// Timeout bounds the connection and each later read or write
	// (connect_timeout); 0 means keepalived's 5 s.
	Timeout time.Duration
}

// Target returns the destination after the connect_ip / connect_port
// overrides. An IPv6 link-local address takes BindIf as its zone.
func (c *Conn) Target() netip.AddrPort {
	a, p := c.Addr.Addr(), c.Addr.Port()
	if c.ConnectIP.IsValid() {
		a = c.ConnectIP
	}
	if c.ConnectPort != 0 {
		p = c.ConnectPort
	}
	if a.Is6() && a.IsLinkLocalUnicast() && a.Zone() == "" && c.BindIf != "" {
		a = a.WithZone(c.BindIf)
	}
	return netip.AddrPortFrom(a, p)
}

func (c *Conn) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return check.DefaultConnectTimeout
}

// Validate reports options keepalived would reject.
func (c *Conn) Validate() error {
	t := c.Target()
	if !t.Addr().IsValid() {
		return errors.New("probe: no destination address")
	}
	if c.BindTo.IsValid() && c.BindTo.Is4() != t.Addr().Unmap().Is4() {
		return fmt.Errorf("probe: bindto %s does not match the address family of %s", c.BindTo, t.Addr())
	}
	if a := t.Addr(); a.Is6() && a.IsLinkLocalUnicast() && a.Zone() == "" {
		return fmt.Errorf("probe: link-local address %s requires a bind_if", a)
	}
	return nil
}

// dialer returns a net.Dialer honouring the source and socket options.
func (c *Conn) dialer(network string) *net.Dialer {
	d := &net.Dialer{}
	if c.BindTo.IsValid() || c.BindPort != 0 {
		src := netip.AddrPortFrom(c.BindTo, c.BindPort)
		switch network {
		case "udp":
			d.LocalAddr = net.UDPAddrFromAddrPort(src)
		default:
			d.LocalAddr = net.TCPAddrFromAddrPort(src)
		}
	}
	if c.BindIf != "" || c.FWMark != 0 || c.BindPort != 0 {
		d.Control = c.control
	}
	return d
}

// control sets SO_BINDTODEVICE and SO_MARK; for a bound source port also
// SO_REUSEADDR, so a checker with bind_port can reconnect while its previous
// connection sits in TIME_WAIT.
func (c *Conn) control(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if c.BindIf != "" {
			if err := syscall.BindToDevice(int(fd), c.BindIf); err != nil {
				serr = fmt.Errorf("bind_if %s: %w", c.BindIf, err)
				return
			}
		}
		if c.FWMark != 0 {
			if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, int(c.FWMark)); err != nil {
				serr = fmt.Errorf("fwmark %d: %w", c.FWMark, err)
				return
			}
		}
		if c.BindPort != 0 {
			if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
				serr = fmt.Errorf("bind_port %d: %w", c.BindPort, err)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// dial connects within the connect timeout (and ctx).
func (c *Conn) dial(ctx context.Context, network string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	return c.dialer(network).DialContext(ctx, network, c.Target().String())
}

// describe turns an I/O error into the short cause keepalived users expect:
// "connection refused", "timeout after 3s", "no route to host".
func describe(err error, timeout time.Duration) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("timeout after %v", timeout)
	case errors.Is(err, context.Canceled), errors.Is(err, net.ErrClosed):
		// closeOnCancel closed the socket under a blocked call.
		return "canceled"
	case errors.As(err, &errno):
		return errno.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// attemptSteps bounds a whole HTTP_GET, SSL_GET or SMTP_CHECK attempt at
// this many connect timeouts. keepalived bounds each read alone, so a
// server that trickles a byte before each timeout, or streams an endless
// body, holds its checker forever while the real server keeps the state it
// had; vigil fails such an attempt when its budget runs out.
const attemptSteps = 20

// attemptContext bounds an attempt that began now with a connect timeout
// of to: ioDeadline arms no socket deadline past the returned context's.
// closeOnCancel must still watch the caller's ctx (see there).
func attemptContext(ctx context.Context, to time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, attemptSteps*to)
}

// overBudget reports an attempt whose budget (attemptContext) ran out,
// rather than ctx being cancelled: then err is replaced by a cause saying
// so.
func overBudget(ctx, actx context.Context, err error, to time.Duration) error {
	if !isTimeout(err) {
		return err
	}
	dl, _ := actx.Deadline()
	if pdl, ok := ctx.Deadline(); (!ok || pdl.After(dl)) && ctx.Err() == nil && !time.Now().Before(dl) {
		return budgetErr(to)
	}
	return err
}

// budgetErr says that an attempt with a connect timeout of to ran out of
// its budget.
func budgetErr(to time.Duration) error {
	return fmt.Errorf("%w: still running after %v (%d × connect_timeout); the server is too slow or never ends its answer",
		errAttemptBudget, attemptSteps*to, attemptSteps)
}

// errAttemptBudget is an attempt that exceeded attemptSteps connect timeouts.
var errAttemptBudget = errors.New("attempt budget exhausted")

// ioDeadline arms the connection's deadline for one I/O step: keepalived
// applies connect_timeout to each read and write (thread_add_read/write
// with co->connection_to), and ctx may end it sooner.
func ioDeadline(ctx context.Context, c net.Conn, d time.Duration) {
	_ = c.SetDeadline(deadline(ctx, d))
}

// deadline returns when an exchange bounded by d must end: now + d, or
// ctx's deadline if sooner.
func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		t = dl
	}
	return t
}

// closeOnCancel closes c when ctx is done before stop is called, so a
// blocked read or write returns at once. ctx must be the caller's context,
// not one bounded by the checker's own timeout: that one ends through the
// socket deadline, which reports a timeout rather than a closed socket.
func closeOnCancel(ctx context.Context, c net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { c.Close() })
}

func elapsed(start time.Time) time.Duration { return time.Since(start) }
