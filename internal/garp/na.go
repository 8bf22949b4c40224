package garp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// NA drop reasons: why a neighbour advertisement read by WatchNAs is not a
// claim. They are stable names, for metric labels.
const (
	DropNAMalformed = "malformed"   // short, code not 0, a zero-length or truncated option (RFC 4861 §7.1.2)
	DropNAHopLimit  = "hop-limit"   // hop limit not 255: it crossed a router, and neighbours discard it (RFC 4861 §7.1.2)
	DropNATarget    = "target"      // multicast or unspecified target (RFC 4861 §7.1.2)
	DropNANoLLAddr  = "no-lladdr"   // no target link-layer address: it moves no cache entry (RFC 4861 §7.2.5)
	DropNABadLLAddr = "bad-lladdr"  // a target link-layer address option that is not Ethernet's 6 bytes
	DropNAInterface = "wrong-iface" // read on another interface than the watched one
)

// ParseNA reads a neighbour advertisement as an ICMPv6 socket delivers it
// (the ICMPv6 message, from its type byte) and returns its claim: the target
// address at the target link-layer address. An NA without that option
// names no link-layer address and moves no neighbour cache entry (RFC 4861
// §7.2.5), so it is not a claim; its reason says so. Checking lengths
// before indexing, it never panics.
func ParseNA(b []byte) (Claim, string) {
	// RFC 4861 §4.4: type 136, code 0, checksum, R|S|O flags and 29
	// reserved bits, the 16-byte target, then options.
	if len(b) < 24 || b[0] != 136 || b[1] != 0 {
		return Claim{}, DropNAMalformed
	}
	target := netip.AddrFrom16([16]byte(b[8:24]))
	if target.IsMulticast() || target.IsUnspecified() {
		return Claim{}, DropNATarget
	}
	var mac net.HardwareAddr
	bad := false
	for opts := b[24:]; len(opts) > 0; {
		// RFC 4861 §4.6: type, length in units of 8 bytes; a length of 0
		// makes the whole packet invalid.
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return Claim{}, DropNAMalformed
		}
		n := int(opts[1]) * 8
		if opts[0] == 2 { // target link-layer address
			if n != 8 {
				bad = true
			} else if mac == nil {
				mac = net.HardwareAddr(append([]byte(nil), opts[2:8]...))
			}
		}
		opts = opts[n:]
	}
	switch {
	case mac != nil:
		return Claim{Addr: target, MAC: mac}, ""
	case bad:
		return Claim{}, DropNABadLLAddr
	}
	return Claim{}, DropNANoLLAddr
}

// naFilter is the ICMP6_FILTER passing neighbour advertisements only:
// Linux blocks the types whose bit is set.
func naFilter() *unix.ICMPv6Filter {
	var f unix.ICMPv6Filter
	for i := range f.Data {
		f.Data[i] = 0xffffffff
	}
	f.Data[136>>5] &^= 1 << (136 & 31)
	return &f
}

// WatchNAs reports the claims in the neighbour advertisements that reach
// the interface ifindex (f) and counts the others by reason (drop), until
// ctx is done or the socket fails (the interface went away).
//
// It reads an ICMPv6 raw socket rather than an AF_PACKET one: the kernel's
// ICMP6_FILTER passes type 136 only, so the process wakes for no other
// packet, and SO_BINDTOIFINDEX keeps it to one interface. Unsolicited NAs
// go to ff02::1, which every IPv6 interface has joined; a raw socket bound
// to no address takes every destination the interface accepts, so it joins
// no group. This host's own NAs leave through garp's packet socket and
// never enter the IPv6 input path, so they are not read back. What an
// ICMPv6 socket cannot give is the Ethernet source, which only an NA
// without a target link-layer address would need, and such an NA moves no
// neighbour cache (ParseNA). mdlayher/ndp's Conn is not used: it binds to an
// address of the interface (a VMAC may have none, and "::" would take every
// interface's NAs) and allocates a buffer per read.
func WatchNAs(ctx context.Context, ifindex int, f func(Claim), drop func(reason string)) error {
	fd, err := naSocket(ifindex)
	if err != nil {
		return err
	}
	// An NA with one target link-layer address option is 32 bytes; a
	// longer one is read up to its options' first 256 bytes (MSG_TRUNC
	// flags it, and truncated options are malformed).
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4)+unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	err = readLoop(ctx, fd, "icmpv6", func(fd int) error {
		n, oobn, flags, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
		if err != nil {
			return err
		}
		hop, in := naControl(oob[:oobn])
		switch {
		case flags&unix.MSG_TRUNC != 0:
			drop(DropNAMalformed)
			return nil
		case in != 0 && in != ifindex:
			drop(DropNAInterface)
			return nil
		case hop != 255:
			drop(DropNAHopLimit)
			return nil
		}
		c, reason := ParseNA(buf[:n])
		if reason != "" {
			drop(reason)
			return nil
		}
		f(c)
		return nil
	})
	if err != nil {
		return fmt.Errorf("garp: ICMPv6 socket on ifindex %d: %w", ifindex, err)
	}
	return nil
}

// naSocket opens WatchNAs's non-blocking socket.
func naSocket(ifindex int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_ICMPV6)
	if err != nil {
		return -1, fmt.Errorf("garp: ICMPv6 socket: %w", err)
	}
	if err := unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, naFilter()); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("garp: ICMPv6 filter: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, ifindex); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("garp: bind ICMPv6 socket to ifindex %d: %w", ifindex, err)
	}
	for _, o := range []int{unix.IPV6_RECVHOPLIMIT, unix.IPV6_RECVPKTINFO} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("garp: ICMPv6 socket: %w", err)
		}
	}
	return fd, nil
}

// naControl returns the hop limit (-1 when absent) and the receiving
// interface (0 when absent) of a received packet's control messages.
func naControl(oob []byte) (hop, ifindex int) {
	hop = -1
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		oob = rest
		if h.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch {
		case h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			hop = int(int32(binary.NativeEndian.Uint32(data)))
		case h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			ifindex = int(binary.NativeEndian.Uint32(data[16:20]))
		}
	}
	return hop, ifindex
}
