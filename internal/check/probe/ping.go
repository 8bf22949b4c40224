package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/vigil-ha/vigil/internal/check"
)

// PingMode selects the ICMP socket PING_CHECK uses.
type PingMode uint8

const (
	// PingAuto tries an unprivileged ICMP datagram socket and falls back
	// to a raw socket (which needs CAP_NET_RAW).
	PingAuto PingMode = iota
	// PingUnprivileged uses a datagram socket (SOCK_DGRAM, IPPROTO_ICMP),
	// as keepalived does; the caller's group must be in
	// net.ipv4.ping_group_range (keepalived widens that sysctl; vigil
	// does not touch it).
	PingUnprivileged
	// PingRaw uses a raw socket.
	PingRaw
)

// Ping is PING_CHECK: one ICMP (or ICMPv6) echo request carrying 128 bytes
// of keepalived's filler; an echo reply from the target within
// connect_timeout is success (keepalived 2.2.7 check_ping.c). The port of
// the target is ignored.
//
// Concurrency: Check may be called concurrently.
type Ping struct {
	Conn Conn
	Mode PingMode
	seq  atomic.Uint32
}

// icmpPayload is check_ping.c ICMP_BUFSIZE.
const icmpPayload = 128

// Check sends one echo request and waits for its reply.
func (p *Ping) Check(ctx context.Context) check.Result {
	start := time.Now()
	to := p.Conn.timeout()
	dst := p.Conn.Target().Addr().Unmap()
	fail := func(format string, args ...any) check.Result {
		return check.Result{Reason: fmt.Sprintf(format, args...), Latency: elapsed(start)}
	}
	dl := deadline(ctx, to)
	pc, raw, err := p.open(dst)
	if err != nil {
		return fail("ping %s: %v", dst, err).WithErr(err)
	}
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer func() {
		stop()
		pc.Close()
	}()
	_ = pc.SetDeadline(dl)

	id := uint16(rand.Uint32())
	seq := uint16(p.seq.Add(1))
	var typ, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if dst.Is6() {
		typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(id), Seq: int(seq), Data: Filler(icmpPayload)}}
	b, err := msg.Marshal(nil) // ICMPv6 checksums are the kernel's job
	if err != nil {
		return fail("ping %s: %v", dst, err)
	}
	var dstAddr net.Addr = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if raw {
		dstAddr = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	if _, err := pc.WriteTo(b, dstAddr); err != nil {
		return fail("ping %s: send: %s", dst, describe(err, to))
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if isTimeout(err) {
				return fail("ping %s: no echo reply within %v", dst, to)
			}
			return fail("ping %s: %s", dst, describe(err, to))
		}
		if a, ok := addrOf(from); !ok || a != dst.WithZone("") {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			continue // raw sockets also see our own request and others' traffic
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.Seq != int(seq) || (raw && e.ID != int(id)) {
			continue
		}
		return check.Result{OK: true, Reason: fmt.Sprintf("echo reply from %s", dst), Latency: elapsed(start)}
	}
}

func addrOf(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch v := a.(type) {
	case *net.UDPAddr:
		ip = v.IP
	case *net.IPAddr:
		ip = v.IP
	default:
		return netip.Addr{}, false
	}
	na, ok := netip.AddrFromSlice(ip)
	return na.Unmap(), ok
}

// open returns an ICMP socket for dst and whether it is raw.
func (p *Ping) open(dst netip.Addr) (net.PacketConn, bool, error) {
	if p.Mode != PingRaw {
		pc, err := p.socket(dst, syscall.SOCK_DGRAM)
		if err == nil || p.Mode == PingUnprivileged {
			return pc, false, err
		}
	}
	pc, err := p.socket(dst, syscall.SOCK_RAW)
	return pc, true, err
}

// socket opens an ICMP socket of the given type, with bindto, bind_if and
// fwmark applied.
func (p *Ping) socket(dst netip.Addr, typ int) (net.PacketConn, error) {
	family, proto := syscall.AF_INET, syscall.IPPROTO_ICMP
	if dst.Is6() {
		family, proto = syscall.AF_INET6, syscall.IPPROTO_ICMPV6
	}
	fd, err := syscall.Socket(family, typ|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	fail := func(what string, err error) (net.PacketConn, error) {
		syscall.Close(fd)
		return nil, os.NewSyscallError(what, err)
	}
	if p.Conn.BindIf != "" {
		if err := syscall.BindToDevice(fd, p.Conn.BindIf); err != nil {
			return fail("bind_if", err)
		}
	}
	if p.Conn.FWMark != 0 {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_MARK, int(p.Conn.FWMark)); err != nil {
			return fail("fwmark", err)
		}
	}
	if p.Conn.BindTo.IsValid() {
		var sa syscall.Sockaddr
		if b := p.Conn.BindTo.Unmap(); b.Is4() {
			sa = &syscall.SockaddrInet4{Addr: b.As4()}
		} else {
			sa = &syscall.SockaddrInet6{Addr: b.As16()}
		}
		if err := syscall.Bind(fd, sa); err != nil {
			return fail("bind", err)
		}
	}
	f := os.NewFile(uintptr(fd), "icmp")
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, errors.Join(errors.New("icmp socket"), err)
	}
	return pc, nil
}
