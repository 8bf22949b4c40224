package garp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

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
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("garp: ARP socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("garp: bind ARP socket to ifindex %d: %w", ifindex, err)
	}
	buf := make([]byte, 128)
	err = readLoop(ctx, fd, "arp", func(fd int) error {
		n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			return err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			return nil
		}
		if c, ok := ParseClaim(buf[:n]); ok {
			f(c)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("garp: ARP socket on ifindex %d: %w", ifindex, err)
	}
	return nil
}

// readLoop calls read with fd, a non-blocking socket it takes over and
// closes, each time the socket is readable, until ctx is done (it returns
// nil) or read fails with another error than EAGAIN or EINTR (it returns
// it). read makes one non-blocking read and handles what it got.
//
// The socket waits in the runtime's network poller, not in a blocking
// system call: a goroutine blocked in a system call keeps the runtime's
// monitor thread polling (every 20 µs at first) until it takes the
// processor back, and a receive timeout ending such a call every quarter
// second, on every interface of a master, started that over and over.
func readLoop(ctx context.Context, fd int, name string, read func(fd int) error) error {
	file := os.NewFile(uintptr(fd), name)
	defer file.Close()
	rc, err := file.SyscallConn()
	if err != nil {
		return err
	}
	// ctx's end closes the socket, which ends the wait.
	defer context.AfterFunc(ctx, func() { file.Close() })()
	var rerr error
	fn := func(fd uintptr) bool {
		rerr = read(int(fd))
		return rerr != unix.EAGAIN
	}
	for {
		err := rc.Read(fn)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = rerr
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
