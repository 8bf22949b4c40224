package e2e

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/lab"
)

// Injector sends hand-made IPv4 packets (IP_HDRINCL) from a lab host: a
// third host on the LAN crafting adverts with a wrong TTL, password, VRID or
// checksum, or from a source that is not a unicast peer.
type Injector struct {
	fd int
}

// NewInjector opens a raw IPv4 socket inside h, sending out of dev.
func NewInjector(h *lab.Host, dev string) (*Injector, error) {
	var fd int
	err := h.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.BindToDevice(fd, dev); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("e2e: injector on %s: %w", h.Name(), err)
	}
	return &Injector{fd: fd}, nil
}

// Close closes the socket.
func (j *Injector) Close() error { return unix.Close(j.fd) }

// Send sends payload as IP protocol proto from src to dst with the given TTL.
// The kernel fills in the IP checksum and the ID (IP_HDRINCL).
func (j *Injector) Send(src, dst netip.Addr, ttl, proto int, payload []byte) error {
	if !src.Is4() || !dst.Is4() {
		return fmt.Errorf("e2e: injector: IPv4 only (%v -> %v)", src, dst)
	}
	b := make([]byte, 20+len(payload))
	b[0] = 0x45
	b[1] = 0xc0 // DSCP CS6, as keepalived
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[8] = byte(ttl)
	b[9] = byte(proto)
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	copy(b[20:], payload)
	return unix.Sendto(j.fd, b, 0, &unix.SockaddrInet4{Addr: d})
}
