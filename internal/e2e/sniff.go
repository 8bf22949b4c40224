package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/lab"
)

// Frame is one frame a Sniffer received, with the kernel's receive time.
type Frame struct {
	At   time.Time
	Data []byte // from the Ethernet header on
}

// Sniffer receives every frame arriving on one interface of a lab host
// through an AF_PACKET socket with kernel timestamps (SO_TIMESTAMPNS), as
// tcpdump would, without a process.
type Sniffer struct {
	fd      int
	mu      sync.Mutex
	stopped bool
	drops   uint64
	frames  []Frame
	done    chan struct{}
	err     error
	onRecv  func(Frame)
	stream  bool // frames go to onRecv only, none are kept
	// outgoing keeps the frames the host sends instead of those it
	// receives.
	outgoing bool
}

// StartSniffer opens the socket inside h, bound to dev, and starts reading.
// onRecv, if not nil, is called for each frame from the reading goroutine.
func StartSniffer(h *lab.Host, dev string, onRecv func(Frame)) (*Sniffer, error) {
	return StartSnifferNS(h.NS(), dev, onRecv)
}

// StartSnifferNS is StartSniffer in the namespace named ns, for example on a
// LAN's bridge in the lab's switch namespace (lab.SwitchNS, lab.Bridge),
// which receives every multicast and broadcast frame of the LAN: adverts of
// every node and their gratuitous ARPs, timestamped at one place.
func StartSnifferNS(ns, dev string, onRecv func(Frame)) (*Sniffer, error) {
	return startSniffer(ns, dev, onRecv, false)
}

// StreamNS is StartSnifferNS for long captures: every frame goes to onRecv
// (which must not keep Data: the buffer is reused) and none is kept, so
// memory stays flat however long it runs.
func StreamNS(ns, dev string, onRecv func(Frame)) (*Sniffer, error) {
	return startSniffer(ns, dev, onRecv, true)
}

// StreamOutgoingNS is StreamNS for the frames sent through dev rather than
// those received: the kernel stamps each as the sending thread hands it to
// the device (the packet tap of dev_queue_xmit), so their times are when a
// daemon sent, however late the receiving side processed them.
func StreamOutgoingNS(ns, dev string, onRecv func(Frame)) (*Sniffer, error) {
	return newSniffer(ns, dev, onRecv, true, true)
}

func startSniffer(ns, dev string, onRecv func(Frame), stream bool) (*Sniffer, error) {
	return newSniffer(ns, dev, onRecv, stream, false)
}

func newSniffer(ns, dev string, onRecv func(Frame), stream, outgoing bool) (*Sniffer, error) {
	s := &Sniffer{fd: -1, done: make(chan struct{}), onRecv: onRecv, stream: stream, outgoing: outgoing}
	err := lab.DoNS(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		proto := htons(unix.ETH_P_ALL)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			unix.Close(fd)
			return err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		// A timeout lets Stop end the blocking read.
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		s.fd = fd
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("e2e: sniffer on %s %s: %w", ns, dev, err)
	}
	go s.loop(s.fd)
	return s, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *Sniffer) loop(fd int) {
	defer close(s.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			return
		}
		n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && (ll.Pkttype == unix.PACKET_OUTGOING) != s.outgoing {
			continue
		}
		f := Frame{At: time.Now(), Data: buf[:n]}
		if !s.stream {
			f.Data = append([]byte(nil), buf[:n]...)
		}
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
					sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
					nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
					f.At = time.Unix(sec, nsec)
				}
			}
		}
		if !s.stream {
			s.mu.Lock()
			s.frames = append(s.frames, f)
			s.mu.Unlock()
		}
		if s.onRecv != nil {
			s.onRecv(f)
		}
	}
}

// Frames returns the frames received so far.
func (s *Sniffer) Frames() []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Frame(nil), s.frames...)
}

// Reset forgets the frames received so far.
func (s *Sniffer) Reset() {
	s.mu.Lock()
	s.frames = nil
	s.mu.Unlock()
}

// Drops is the number of frames the kernel dropped because the reader was
// too slow (PACKET_STATISTICS), read once by Stop.
func (s *Sniffer) Drops() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drops
}

// Stop closes the socket once the reader has returned.
func (s *Sniffer) Stop() error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	<-s.done // the read times out within 100 ms
	if st, err := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		s.mu.Lock()
		s.drops += uint64(st.Drops)
		s.mu.Unlock()
	}
	unix.Close(s.fd)
	return s.err
}

// VRRPFrame is a VRRP advertisement seen on the wire.
type VRRPFrame struct {
	Src, Dst netip.Addr
	TTL      int
	Version  int
	VRID     int
	Priority int
	SrcMAC   net.HardwareAddr
}

// ParseVRRP recognises an IPv4 or IPv6 VRRP advertisement (IP protocol 112)
// in an Ethernet frame. It checks lengths before reading.
func ParseVRRP(f []byte) (VRRPFrame, bool) {
	if len(f) < 14 {
		return VRRPFrame{}, false
	}
	v := VRRPFrame{SrcMAC: net.HardwareAddr(f[6:12])}
	et := binary.BigEndian.Uint16(f[12:14])
	ip := f[14:]
	var payload []byte
	switch et {
	case 0x0800:
		if len(ip) < 20 || ip[9] != 112 {
			return VRRPFrame{}, false
		}
		ihl := int(ip[0]&0x0f) * 4
		if ihl < 20 || len(ip) < ihl {
			return VRRPFrame{}, false
		}
		v.TTL = int(ip[8])
		v.Src = netip.AddrFrom4([4]byte(ip[12:16]))
		v.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
		payload = ip[ihl:]
	case 0x86dd:
		if len(ip) < 40 || ip[6] != 112 {
			return VRRPFrame{}, false
		}
		v.TTL = int(ip[7])
		v.Src = netip.AddrFrom16([16]byte(ip[8:24]))
		v.Dst = netip.AddrFrom16([16]byte(ip[24:40]))
		payload = ip[40:]
	default:
		return VRRPFrame{}, false
	}
	if len(payload) < 4 {
		return VRRPFrame{}, false
	}
	v.Version = int(payload[0] >> 4)
	v.VRID = int(payload[1])
	v.Priority = int(payload[2])
	return v, true
}

// Announcement is a gratuitous ARP or an unsolicited neighbour advertisement.
type Announcement struct {
	Addr   netip.Addr
	SrcMAC net.HardwareAddr
}

// ParseAnnouncement recognises a gratuitous ARP (sender IP = target IP) or an
// ICMPv6 neighbour advertisement in an Ethernet frame.
func ParseAnnouncement(f []byte) (Announcement, bool) {
	if len(f) < 14 {
		return Announcement{}, false
	}
	src := net.HardwareAddr(f[6:12])
	switch binary.BigEndian.Uint16(f[12:14]) {
	case 0x0806:
		a := f[14:]
		if len(a) < 28 {
			return Announcement{}, false
		}
		spa := netip.AddrFrom4([4]byte(a[14:18]))
		tpa := netip.AddrFrom4([4]byte(a[24:28]))
		if spa != tpa {
			return Announcement{}, false
		}
		return Announcement{Addr: spa, SrcMAC: src}, true
	case 0x86dd:
		ip := f[14:]
		if len(ip) < 40+24 || ip[6] != 58 || ip[40] != 136 { // ICMPv6 NA
			return Announcement{}, false
		}
		return Announcement{Addr: netip.AddrFrom16([16]byte(ip[48:64])), SrcMAC: src}, true
	}
	return Announcement{}, false
}
