package garp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/netif"
)

// Sender writes gratuitous ARPs and unsolicited NAs. One Sender serves every
// interface of its network namespace.
//
// Concurrency: SendARP and SendNA may be called from several goroutines;
// Close must not race with them.
type Sender struct {
	fd int
}

// Open creates the AF_PACKET socket in the network namespace of the calling
// thread. The socket has protocol 0, so it receives nothing.
func Open() (*Sender, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("garp: packet socket: %w", err)
	}
	return &Sender{fd: fd}, nil
}

// Close closes the socket.
func (s *Sender) Close() error { return unix.Close(s.fd) }

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// SendARP sends one gratuitous ARP for vip on the interface ifindex whose
// MAC is mac.
func (s *Sender) SendARP(ifindex int, mac net.HardwareAddr, vip netip.Addr) error {
	f, err := ARPFrame(mac, vip)
	if err != nil {
		return err
	}
	return s.send(ifindex, unix.ETH_P_ARP, f, vip)
}

// SendNA sends one unsolicited neighbour advertisement for vip on the
// interface ifindex whose MAC is mac. router sets the R flag; keepalived sets
// it when the interface forwards IPv6 (see IPv6Forwarding).
func (s *Sender) SendNA(ifindex int, mac net.HardwareAddr, vip netip.Addr, router bool) error {
	f, err := NAFrame(mac, vip, router)
	if err != nil {
		return err
	}
	return s.send(ifindex, unix.ETH_P_IPV6, f, vip)
}

func (s *Sender) send(ifindex int, proto uint16, frame []byte, vip netip.Addr) error {
	sa := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifindex, Halen: 6}
	copy(sa.Addr[:], frame[0:6])
	if err := unix.Sendto(s.fd, frame, 0, sa); err != nil {
		if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("garp: announce %s: %w", vip, &netif.LinkNotFoundError{Index: ifindex})
		}
		return fmt.Errorf("garp: announce %s on ifindex %d: %w", vip, ifindex, err)
	}
	return nil
}

// IPv6Forwarding reports whether the interface forwards IPv6
// (net.ipv6.conf.<ifname>.forwarding), read in the network namespace of the
// calling thread. keepalived 2.2.7 sets the NA router flag from it.
func IPv6Forwarding(ifname string) (bool, error) {
	if ifname == "" || strings.ContainsAny(ifname, "/\x00") || ifname == "." || ifname == ".." {
		return false, fmt.Errorf("garp: invalid interface name %q", ifname)
	}
	b, err := os.ReadFile(filepath.Join("/proc/sys/net/ipv6/conf", ifname, "forwarding"))
	if errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("garp: %w", &netif.LinkNotFoundError{Name: ifname})
	}
	if err != nil {
		return false, fmt.Errorf("garp: %w", err)
	}
	return strings.TrimSpace(string(b)) != "0", nil
}
