package resource

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// IPCommand manages addresses with `ip addr` (iproute2), the stand-in for
// internal/netif.
type IPCommand struct {
	Run Runner // nil: ExecRunner
}

func (c IPCommand) run(ctx context.Context, args ...string) error {
	r := c.Run
	if r == nil {
		r = ExecRunner
	}
	out, err := r(ctx, "ip", args...)
	if err != nil {
		return fmt.Errorf("ip %v: %w: %s", args, err, bytes.TrimSpace(out))
	}
	return nil
}

// Add adds p to dev; an address already present is not an error.
func (c IPCommand) Add(ctx context.Context, p netip.Prefix, dev, label string) error {
	args := []string{"addr", "replace", p.String(), "dev", dev}
	if label != "" {
		args = append(args, "label", label)
	}
	return c.run(ctx, args...)
}

// Del removes p from dev; an address already gone is not an error.
func (c IPCommand) Del(ctx context.Context, p netip.Prefix, dev string) error {
	err := c.run(ctx, "addr", "del", p.String(), "dev", dev)
	if err != nil && bytes.Contains([]byte(err.Error()), []byte("Cannot assign requested address")) {
		return nil
	}
	return err
}

// Find returns the up interface with an address whose network contains ip.
func (IPCommand) Find(_ context.Context, ip netip.Addr) (string, int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", 0, err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			pfx, err := netip.ParsePrefix(n.String())
			if err != nil || !pfx.Addr().Is4() {
				continue
			}
			if pfx.Masked().Contains(ip) && pfx.Bits() < 32 {
				return i.Name, pfx.Bits(), nil
			}
		}
	}
	return "", 0, fmt.Errorf("no interface has a network containing %s (give ip/prefix/dev)", ip)
}

// RawARP sends gratuitous ARP requests on an AF_PACKET socket, the stand-in
// for internal/garp. heartbeat's IPaddr (send_arp) repeats 5 times at 200 ms;
// RawARP sends Count at Interval.
type RawARP struct {
	Count    int
	Interval time.Duration
}

// GARP broadcasts "who-has ip tell ip" from dev's MAC.
func (r RawARP) GARP(ctx context.Context, ip netip.Addr, dev string) error {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return fmt.Errorf("garp: %w", err)
	}
	if len(ifi.HardwareAddr) != 6 || !ip.Is4() {
		return fmt.Errorf("garp: %s: not an Ethernet interface or not IPv4", dev)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("garp: socket: %w", err)
	}
	defer unix.Close(fd)
	frame := make([]byte, 42)
	copy(frame[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(frame[6:12], ifi.HardwareAddr)
	binary.BigEndian.PutUint16(frame[12:14], unix.ETH_P_ARP)
	binary.BigEndian.PutUint16(frame[14:16], 1)      // hardware type Ethernet
	binary.BigEndian.PutUint16(frame[16:18], 0x0800) // protocol IPv4
	frame[18], frame[19] = 6, 4
	binary.BigEndian.PutUint16(frame[20:22], 1) // request
	copy(frame[22:28], ifi.HardwareAddr)
	a4 := ip.As4()
	copy(frame[28:32], a4[:])
	copy(frame[38:42], a4[:]) // target = sender: gratuitous
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	n := max(r.Count, 1)
	for i := range n {
		if err := unix.Sendto(fd, frame, 0, sa); err != nil {
			return fmt.Errorf("garp: send on %s: %w", dev, err)
		}
		if i < n-1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(r.Interval):
			}
		}
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
