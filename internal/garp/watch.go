package garp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Claim is what another host said on an interface: that Addr is at MAC.
// From ARP (ParseClaim), the sender addresses of a gratuitous ARP, a reply
// or a request from that address; from a neighbour advertisement
// (ParseNA), its target and target link-layer address.
type Claim struct {
	Addr netip.Addr
	MAC  net.HardwareAddr
}

// ParseClaim reads the sender of an Ethernet/IPv4 ARP request or reply
// (the ARP header and body, without the Ethernet header). Probes (sender
// address 0.0.0.0) and anything else are not claims.
func ParseClaim(b []byte) (Claim, bool) {
	if len(b) < 28 || b[0] != 0 || b[1] != 1 || b[2] != 0x08 || b[3] != 0x00 || b[4] != 6 || b[5] != 4 {
		return Claim{}, false
	}
	if op := uint16(b[6])<<8 | uint16(b[7]); op != 1 && op != 2 {
		return Claim{}, false
	}
	addr := netip.AddrFrom4([4]byte(b[14:18]))
	if addr.IsUnspecified() {
		return Claim{}, false
	}
	return Claim{Addr: addr, MAC: net.HardwareAddr(append([]byte(nil), b[8:14]...))}, true
}

// WatchClaims reports the ARP claims that reach the interface ifindex from
// other hosts (frames this host sends are not reported) until ctx is done
// or the socket fails (the interface went away).
func WatchClaims(ctx context.Context, ifindex int, f func(Claim)) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("garp: ARP socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex}); err != nil {
		return fmt.Errorf("garp: bind ARP socket to ifindex %d: %w", ifindex, err)
	}
	// A receive timeout lets the loop notice ctx.
	tv := unix.NsecToTimeval((250 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("garp: ARP socket: %w", err)
	}
	buf := make([]byte, 128)
	for ctx.Err() == nil {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("garp: ARP socket on ifindex %d: %w", ifindex, err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if c, ok := ParseClaim(buf[:n]); ok {
			f(c)
		}
	}
	return nil
}
