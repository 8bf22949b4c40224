package vrrpnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxBatch is the most packets one ReadBatch returns and one sendmmsg
// carries.
const MaxBatch = 64

// Message is one advertisement for WriteBatch.
type Message struct {
	// Payload is the VRRP packet; for VRRPv3 its checksum covers Src and
	// Dst (see WritePacket).
	Payload []byte
	// Src and Dst as for WritePacket: zero means Source() and the group.
	Src, Dst netip.Addr
	// Seal, on an AH conn, completes Payload once its IPv4 header is built
	// (see WriteSealed); nil otherwise.
	Seal Seal
	// Err is set by WriteBatch when the message could not be sent.
	Err error
}

// The socket calls of the receive and send paths are raw system calls:
// the sockets are non-blocking, so no call blocks, and a raw call does not
// pass through the Go scheduler's system call bookkeeping, which wakes the
// runtime's monitor thread when it sleeps: at a thousand adverts a second
// that was a thread wake-up (two context switches) for most bursts of
// adverts, a sixth of the daemon's CPU time.

// oobLen is the control space of one received packet: IP_PKTINFO, or
// IPV6_PKTINFO and IPV6_HOPLIMIT, with room to spare.
const oobLen = 128

// rxScratch is ReadBatch's memory, reused from call to call (one reader at
// a time, rxMu).
type rxScratch struct {
	hdrs  [MaxBatch]unix.Mmsghdr
	iovs  [MaxBatch]unix.Iovec
	names [MaxBatch]unix.RawSockaddrInet6
	oob   [MaxBatch][oobLen]byte
	// bufs and the results of the last recvmmsg, for rxFn; pkts, handle
	// and handle's error for loopFn.
	bufs   [][]byte
	n      int
	err    error
	pkts   []Packet
	handle func([]Packet) error
	herr   error
}

// txScratch is WriteBatch's memory (one writer at a time, txMu).
type txScratch struct {
	hdrs  [MaxBatch]unix.Mmsghdr
	iovs  [2 * MaxBatch]unix.Iovec
	ip    [MaxBatch][20]byte
	names [MaxBatch]unix.RawSockaddrInet6
	oob   [MaxBatch][40]byte // CmsgSpace(SizeofInet6Pktinfo)
	flags [MaxBatch]int
	// msgs in flight and how far the sending got, for txFn.
	msgs       []Message
	next, fail int
	err        error // an error that ends the batch (EAGAIN is waited out)
}

// recvmmsg reads up to len(bufs) queued packets without blocking. It is
// rxFn's body.
func (c *Conn) recvmmsg(fd int) bool {
	s := &c.rx
	n := len(s.bufs)
	for i := range n {
		b := s.bufs[i]
		s.iovs[i] = unix.Iovec{Base: unsafe.SliceData(b)}
		s.iovs[i].SetLen(len(b))
		h := &s.hdrs[i].Hdr
		*h = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&s.names[i])),
			Namelen: unix.SizeofSockaddrInet6,
			Iov:     &s.iovs[i],
			Control: &s.oob[i][0],
		}
		h.SetIovlen(1)
		h.SetControllen(oobLen)
		s.hdrs[i].Len = 0
	}
	r, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(n),
		unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
	s.n, s.err = int(r), nil
	if errno != 0 {
		s.n, s.err = 0, errno
	}
	return s.err != unix.EAGAIN
}

// ReadBatch blocks until at least one advertisement arrives, then returns
// those queued (up to len(pkts) and MaxBatch) in pkts, each one's payload in
// the buffer of the same index in bufs, with one recvmmsg. Drops are those
// of ReadPacket. One goroutine at a time may call ReadBatch or ReadPacket.
func (c *Conn) ReadBatch(bufs [][]byte, pkts []Packet) (int, error) {
	n := min(len(bufs), len(pkts), MaxBatch)
	if n == 0 {
		return 0, errors.New("vrrpnet: read: no buffers")
	}
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	s := &c.rx
	for {
		s.bufs = bufs[:n]
		err := c.rc.Read(c.rxFn)
		got := s.n
		if err == nil {
			err = s.err
		}
		s.bufs = nil
		if err != nil {
			return 0, c.readErr(err)
		}
		k := 0
		for i := range got {
			if p, ok := c.accept(bufs[i], &s.hdrs[i]); ok {
				pkts[k] = p
				k++
			}
		}
		if k > 0 {
			return k, nil
		}
	}
}

// ReadLoop reads advertisements until the conn is closed, a read fails or
// handle returns an error, which it returns (a close is net.ErrClosed).
// handle gets the packets each recvmmsg returned (at most len(pkts) and
// MaxBatch, each one's payload in the buffer of its index in bufs; drops
// as ReadPacket's), on the calling goroutine; they are valid until it
// returns. One goroutine at a time may read (ReadLoop, ReadBatch or
// ReadPacket).
//
// The loop saves ReadBatch's second system call per burst: a recvmmsg that
// returns fewer packets than it asked for emptied the queue, so the loop
// waits for the poller instead of asking again and finding nothing. It can
// because it stays in one wait of the raw conn: the poller's readiness is
// cleared when a wait begins, and within one the poller notes any packet
// queued after the recvmmsg, even while handle runs. A full batch reads
// again at once.
//
// Close may be called while handle runs, also from handle: it then returns
// at once and the loop closes the socket when handle returns (closing the
// file waits for the read in progress, which would wait for handle).
func (c *Conn) ReadLoop(bufs [][]byte, pkts []Packet, handle func([]Packet) error) error {
	n := min(len(bufs), len(pkts), MaxBatch)
	if n == 0 {
		return errors.New("vrrpnet: read: no buffers")
	}
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	s := &c.rx
	s.bufs, s.pkts, s.handle = bufs[:n], pkts[:n], handle
	err := c.rc.Read(c.loopFn)
	if err == nil {
		err = s.err
	}
	s.bufs, s.pkts, s.handle, s.err = nil, nil, nil, nil
	c.loopMu.Lock()
	closeNow := c.closeDeferred
	c.closeDeferred = false
	c.loopMu.Unlock()
	if closeNow {
		c.f.Close()
	}
	if s.herr != nil {
		err, s.herr = s.herr, nil
		return err
	}
	if err == nil || closeNow {
		err = net.ErrClosed
	}
	return c.readErr(err)
}

// readLoop is loopFn's body: it reads and hands over batches until the
// queue is empty (false: wait) or the loop ends (true: s.err, s.herr or a
// close).
func (c *Conn) readLoop(fd int) bool {
	done := c.takeBatches(fd)
	c.taking.Store(false)
	return done
}

// takeBatches is readLoop's loop; taking (see Pending) is set before each
// recvmmsg.
func (c *Conn) takeBatches(fd int) bool {
	s := &c.rx
	for {
		c.taking.Store(true)
		if !c.recvmmsg(fd) {
			return false // EAGAIN
		}
		if s.err == unix.EINTR {
			continue
		}
		if s.err != nil {
			return true
		}
		got := s.n
		k := 0
		for i := range got {
			if p, ok := c.accept(s.bufs[i], &s.hdrs[i]); ok {
				s.pkts[k] = p
				k++
			}
		}
		if k > 0 {
			c.loopMu.Lock()
			closed := c.closed.Load()
			c.inHandle = !closed
			c.loopMu.Unlock()
			if closed {
				return true
			}
			s.herr = s.handle(s.pkts[:k])
			c.loopMu.Lock()
			c.inHandle = false
			closed = c.closeDeferred
			c.loopMu.Unlock()
			if closed || s.herr != nil {
				return true
			}
		} else if c.closed.Load() {
			return true
		}
		if got < len(s.bufs) {
			return false // the queue was empty: wait for the next packet
		}
	}
}

// accept checks and counts one received packet.
func (c *Conn) accept(buf []byte, m *unix.Mmsghdr) (Packet, bool) {
	n := int(m.Len)
	if m.Hdr.Flags&unix.MSG_TRUNC != 0 || n > len(buf) {
		c.droppedTrunc.Add(1)
		return Packet{}, false
	}
	var from netip.Addr
	if c.family == IPv6 && m.Hdr.Namelen >= unix.SizeofSockaddrInet6 {
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(m.Hdr.Name))
		if sa.Family == unix.AF_INET6 {
			from = netip.AddrFrom16(sa.Addr)
		}
	}
	oob := unsafe.Slice(m.Hdr.Control, oobLen)[:m.Hdr.Controllen]
	p, ok := c.parse(buf[:n], oob, from)
	if !ok {
		c.droppedMal.Add(1)
		return Packet{}, false
	}
	if p.Src == c.src {
		c.droppedOwn.Add(1)
		return Packet{}, false
	}
	c.received.Add(1)
	return p, true
}

// controlMessages calls f with the level, type and data of each control
// message in oob (unix.ParseSocketControlMessage without its allocations).
func controlMessages(oob []byte, f func(level, typ int32, data []byte)) {
	hl := unix.CmsgLen(0)
	for len(oob) >= hl {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hl || l > len(oob) {
			return
		}
		f(h.Level, h.Type, oob[hl:l])
		next := unix.CmsgSpace(l - hl)
		if next > len(oob) {
			return
		}
		oob = oob[next:]
	}
}

// WriteBatch sends msgs with as few sendmmsg calls as it can (one per run
// of messages with the same flags: multicast ones go with MSG_DONTROUTE),
// and returns how many could not be sent, whose Err it sets. The packets
// are byte for byte those WritePacket sends. Any number of goroutines may
// call it.
func (c *Conn) WriteBatch(msgs []Message) int {
	failed := 0
	for len(msgs) > 0 {
		k := min(len(msgs), MaxBatch)
		failed += c.writeBatch(msgs[:k])
		msgs = msgs[k:]
	}
	return failed
}

func (c *Conn) writeBatch(msgs []Message) int {
	c.txMu.Lock()
	defer c.txMu.Unlock()
	s := &c.tx
	invalid := 0
	for i := range msgs {
		m := &msgs[i]
		m.Err = nil
		src, dst, err := c.addrs(m.Src, m.Dst)
		if err != nil {
			m.Err = err
			invalid++
			continue
		}
		m.Src, m.Dst = src, dst
	}
	s.msgs, s.next, s.fail, s.err = msgs, 0, 0, nil
	c.prepare()
	err := c.rc.Write(c.txFn)
	if err == nil {
		err = s.err
	}
	// What was not sent when the batch ended failed with the error that
	// ended it.
	for i := s.next; i < len(msgs); i++ {
		if msgs[i].Err == nil {
			msgs[i].Err = c.wrapErr("send", err)
			s.fail++
		}
	}
	s.msgs = nil
	c.sent.Add(uint64(len(msgs) - invalid - s.fail))
	c.sendErrors.Add(uint64(s.fail))
	return invalid + s.fail
}

// addrs resolves and checks a message's addresses as WritePacket does.
func (c *Conn) addrs(src, dst netip.Addr) (netip.Addr, netip.Addr, error) {
	if !src.IsValid() {
		src = c.src
	}
	if !dst.IsValid() {
		if !c.group.IsValid() {
			return src, dst, errors.New("vrrpnet: write: no destination in unicast mode")
		}
		dst = c.group
	}
	src, dst = src.Unmap(), dst.Unmap()
	if src.Is4() != (c.family == IPv4) || dst.Is4() != (c.family == IPv4) {
		return src, dst, fmt.Errorf("vrrpnet: write %s -> %s on an %s conn", src, dst, c.family)
	}
	return src, dst, nil
}

// prepare fills the mmsghdrs of s.msgs (txMu held).
func (c *Conn) prepare() {
	s := &c.tx
	for i := range s.msgs {
		m := &s.msgs[i]
		if m.Err != nil {
			continue
		}
		h := &s.hdrs[i].Hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.names[i]))}
		s.hdrs[i].Len = 0
		s.flags[i] = 0
		payload := m.Payload
		if c.family == IPv4 {
			hdr := appendIPv4Header(s.ip[i][:0], m.Src, m.Dst, c.nextID(), uint8(c.ttl), uint8(c.proto), len(payload))
			if m.Seal != nil {
				if err := m.Seal(hdr, payload); err != nil {
					m.Err = c.wrapErr("seal", err)
					s.fail++
					continue
				}
			}
			iov := s.iovs[2*i : 2*i+2]
			iov[0] = unix.Iovec{Base: &hdr[0]}
			iov[0].SetLen(len(hdr))
			iov[1] = unix.Iovec{Base: unsafe.SliceData(payload)}
			iov[1].SetLen(len(payload))
			h.Iov = &iov[0]
			h.SetIovlen(2)
			sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.names[i]))
			*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: m.Dst.As4()}
			h.Namelen = unix.SizeofSockaddrInet4
			if m.Dst.IsMulticast() {
				s.flags[i] = unix.MSG_DONTROUTE // keepalived 2.2.7 vrrp_send_pkt
			}
			continue
		}
		iov := &s.iovs[2*i]
		*iov = unix.Iovec{Base: unsafe.SliceData(payload)}
		iov.SetLen(len(payload))
		h.Iov = iov
		h.SetIovlen(1)
		s.names[i] = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: m.Dst.As16(), Scope_id: c.scopeID(m.Dst)}
		h.Namelen = unix.SizeofSockaddrInet6
		// IPV6_PKTINFO selects the source address and the interface.
		oob := s.oob[i][:]
		clear(oob)
		ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		ch.Level = unix.IPPROTO_IPV6
		ch.Type = unix.IPV6_PKTINFO
		ch.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		data := oob[unix.CmsgLen(0):]
		a := m.Src.As16()
		copy(data[0:16], a[:])
		binary.NativeEndian.PutUint32(data[16:20], uint32(c.ifindex))
		h.Control = &oob[0]
		h.SetControllen(unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	}
}

// sendmmsg sends what remains of s.msgs; it is txFn's body and returns
// false to wait for the socket to take more.
func (c *Conn) sendmmsg(fd int) bool {
	s := &c.tx
	for s.next < len(s.msgs) {
		if s.msgs[s.next].Err != nil {
			s.next++
			continue
		}
		end := s.next + 1
		for end < len(s.msgs) && s.msgs[end].Err == nil && s.flags[end] == s.flags[s.next] {
			end++
		}
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&s.hdrs[s.next])),
			uintptr(end-s.next), uintptr(s.flags[s.next]|unix.MSG_DONTWAIT), 0, 0)
		switch {
		case errno == unix.EAGAIN:
			return false
		case errno == unix.EINTR:
		case errno != 0:
			// sendmmsg fails only when its first message does: that one
			// is dropped, the others go on.
			m := &s.msgs[s.next]
			m.Err = c.wrapErr("send "+m.Src.String()+" -> "+m.Dst.String(), errno)
			s.fail++
			s.next++
		default:
			s.next += int(r)
		}
	}
	return true
}

// readErr wraps a read error as ReadPacket reports it.
func (c *Conn) readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("vrrpnet: read on %s: %w", c.ifname, err)
	}
	return c.wrapErr("read", err)
}
