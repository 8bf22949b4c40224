// Package procwatch follows process starts and exits through the kernel's
// process events connector (NETLINK_CONNECTOR, CN_IDX_PROC; linux/cn_proc.h)
// and counts the processes matching keepalived's vrrp_track_process rules
// (keepalived 2.2.7 keepalived/core/track_process.c): an initial scan of
// /proc, then fork/exec/comm/exit events, never polling.
//
// Conn is the connector socket; Parse decodes its messages; Table is the
// pure counting logic (quorum, quorum_max, fork_delay, terminate_delay);
// Watcher ties them to /proc and reports quorum changes.
//
// The proc connector answers only processes in the initial user and PID
// namespaces, through a socket in the initial network namespace (Dial opens
// it there when vigil runs in another one); before Linux 6.6 it also needs
// CAP_NET_ADMIN.
package procwatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Connector constants (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procCnMcastIgnore = 2

	nlmsgHdrLen = 16
	cnMsgLen    = 20
	// procEventDataOff is where event_data starts after cn_msg: what (4),
	// cpu (4), timestamp_ns (8).
	procEventDataOff = 16
)

// EventKind is enum proc_event.what.
type EventKind uint32

const (
	EventNone     EventKind = 0 // an acknowledgement of a listen request
	EventFork     EventKind = 0x00000001
	EventExec     EventKind = 0x00000002
	EventUID      EventKind = 0x00000004
	EventGID      EventKind = 0x00000040
	EventSID      EventKind = 0x00000080
	EventPtrace   EventKind = 0x00000100
	EventComm     EventKind = 0x00000200
	EventCoredump EventKind = 0x40000000
	EventExit     EventKind = 0x80000000
)

func (k EventKind) String() string {
	switch k {
	case EventNone:
		return "none"
	case EventFork:
		return "fork"
	case EventExec:
		return "exec"
	case EventUID:
		return "uid"
	case EventGID:
		return "gid"
	case EventSID:
		return "sid"
	case EventPtrace:
		return "ptrace"
	case EventComm:
		return "comm"
	case EventCoredump:
		return "coredump"
	case EventExit:
		return "exit"
	}
	return fmt.Sprintf("event(%#x)", uint32(k))
}

// Event is one process event. PID is the thread id and TGID the process id
// of the subject (for fork, of the child); keepalived ignores events where
// they differ (threads).
type Event struct {
	Kind EventKind
	CPU  uint32
	// Timestamp is the kernel's monotonic time of the event (ns since boot).
	Timestamp uint64
	// Seq and Ack are cn_msg's; Ack is non-zero on an acknowledgement.
	Seq, Ack uint32

	PID, TGID             int32
	ParentPID, ParentTGID int32  // fork
	ExitCode, ExitSignal  uint32 // exit
	Comm                  string // comm
	Err                   uint32 // acknowledgement: the listen request's error
}

// Parse decodes one connector message: the payload of one netlink message
// (cn_msg followed by proc_event). It checks lengths before reading.
func Parse(b []byte) (Event, error) {
	if len(b) < cnMsgLen {
		return Event{}, fmt.Errorf("procwatch: connector message of %d bytes, want at least %d", len(b), cnMsgLen)
	}
	ne := binary.NativeEndian
	idx, val := ne.Uint32(b[0:]), ne.Uint32(b[4:])
	if idx != cnIdxProc || val != cnValProc {
		return Event{}, fmt.Errorf("procwatch: connector message for %d:%d, not the proc connector", idx, val)
	}
	ev := Event{Seq: ne.Uint32(b[8:]), Ack: ne.Uint32(b[12:])}
	dlen := int(ne.Uint16(b[16:]))
	p := b[cnMsgLen:]
	if dlen > len(p) {
		return Event{}, fmt.Errorf("procwatch: connector data length %d exceeds the %d bytes received", dlen, len(p))
	}
	p = p[:dlen]
	if len(p) < procEventDataOff {
		return Event{}, fmt.Errorf("procwatch: proc_event of %d bytes, want at least %d", len(p), procEventDataOff)
	}
	ev.Kind = EventKind(ne.Uint32(p[0:]))
	ev.CPU = ne.Uint32(p[4:])
	ev.Timestamp = ne.Uint64(p[8:])
	d := p[procEventDataOff:]
	need := func(n int) error {
		if len(d) < n {
			return fmt.Errorf("procwatch: %v event data of %d bytes, want %d", ev.Kind, len(d), n)
		}
		return nil
	}
	i32 := func(off int) int32 { return int32(ne.Uint32(d[off:])) }
	switch ev.Kind {
	case EventNone:
		if err := need(4); err != nil {
			return Event{}, err
		}
		ev.Err = ne.Uint32(d)
	case EventFork:
		if err := need(16); err != nil {
			return Event{}, err
		}
		ev.ParentPID, ev.ParentTGID, ev.PID, ev.TGID = i32(0), i32(4), i32(8), i32(12)
	case EventExec, EventSID:
		if err := need(8); err != nil {
			return Event{}, err
		}
		ev.PID, ev.TGID = i32(0), i32(4)
	case EventComm:
		if err := need(24); err != nil {
			return Event{}, err
		}
		ev.PID, ev.TGID = i32(0), i32(4)
		c := d[8:24]
		for i, ch := range c {
			if ch == 0 {
				c = c[:i]
				break
			}
		}
		ev.Comm = string(c)
	case EventExit:
		if err := need(16); err != nil {
			return Event{}, err
		}
		ev.PID, ev.TGID = i32(0), i32(4)
		ev.ExitCode, ev.ExitSignal = ne.Uint32(d[8:]), ne.Uint32(d[12:])
	default:
		if len(d) >= 8 {
			ev.PID, ev.TGID = i32(0), i32(4)
		}
	}
	return ev, nil
}

// ParseNetlink decodes every netlink message in a datagram from the
// connector socket, skipping NLMSG_NOOP and NLMSG_ERROR.
func ParseNetlink(b []byte) ([]Event, error) {
	var evs []Event
	for len(b) >= nlmsgHdrLen {
		ne := binary.NativeEndian
		l := int(ne.Uint32(b[0:]))
		typ := ne.Uint16(b[4:])
		if l < nlmsgHdrLen || l > len(b) {
			return evs, fmt.Errorf("procwatch: netlink message length %d with %d bytes left", l, len(b))
		}
		if typ != unix.NLMSG_NOOP && typ != unix.NLMSG_ERROR {
			ev, err := Parse(b[nlmsgHdrLen:l])
			if err != nil {
				return evs, err
			}
			evs = append(evs, ev)
		}
		adv := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	return evs, nil
}

// ErrOverrun is returned by Receive when the kernel dropped events because
// the socket's receive buffer was full (ENOBUFS); the caller must rescan.
var ErrOverrun = errors.New("procwatch: proc connector events lost (receive buffer overrun)")

// Conn is a proc connector socket. Receive may block in one goroutine while
// Close is called from another, which makes Receive return.
type Conn struct {
	f   *os.File
	rc  syscall.RawConn
	tag uint32 // cn_msg.ack of our requests; the kernel acknowledges with tag+1
	buf []byte
}

// Dial opens a proc connector socket subscribed to process events; rcvBuf,
// if non-zero, sets SO_RCVBUF (keepalived's process_monitor_rcv_bufs).
// Before Linux 6.6 subscribing needs CAP_NET_ADMIN (the kernel refuses the
// bind, or the request in its acknowledgement); use Subscribe to wait for
// the acknowledgement.
func Dial(rcvBuf int) (*Conn, error) {
	c, err := dialHere(rcvBuf)
	if errors.Is(err, unix.ECONNREFUSED) {
		return dialInitialNetns(rcvBuf, err)
	}
	return c, err
}

// dialHere is Dial in the calling thread's network namespace.
func dialHere(rcvBuf int) (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) {
			return nil, fmt.Errorf("procwatch: proc connector not available (is CONFIG_PROC_EVENTS enabled?): %w", err)
		}
		return nil, fmt.Errorf("procwatch: socket: %w", err)
	}
	if rcvBuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf); err != nil {
				unix.Close(fd)
				return nil, fmt.Errorf("procwatch: SO_RCVBUF: %w", err)
			}
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("procwatch: bind: %w", err)
	}
	f := os.NewFile(uintptr(fd), "proc-connector")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("procwatch: %w", err)
	}
	c := &Conn{f: f, rc: rc, tag: rand.Uint32N(1<<31) + 1, buf: make([]byte, 1<<16)}
	if err := c.send(procCnMcastListen); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) send(op uint32) error {
	b := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.NLMSG_DONE)
	ne.PutUint32(b[16:], cnIdxProc)
	ne.PutUint32(b[20:], cnValProc)
	// cn_msg.seq is left 0; the kernel's acknowledgement carries its own
	// per-CPU sequence number (cn_proc.c send_msg) but ack+1, so the
	// request is tagged through its ack field.
	ne.PutUint32(b[28:], c.tag)
	ne.PutUint16(b[32:], 4)
	ne.PutUint32(b[36:], op)
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("procwatch: send listen request: %w", err)
	}
	return nil
}

// Receive blocks until events arrive and returns them. It returns
// ErrOverrun when events were lost, and os.ErrClosed after Close. Messages
// not sent by the kernel are ignored.
func (c *Conn) Receive() ([]Event, error) {
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := c.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), c.buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		switch {
		case errors.Is(err, unix.ENOBUFS):
			return nil, ErrOverrun
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, fmt.Errorf("procwatch: receive: %w", err)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // keepalived: "Ensure the message has been sent by the kernel"
		}
		evs, err := ParseNetlink(c.buf[:n])
		if err != nil {
			return evs, err
		}
		if len(evs) > 0 {
			return evs, nil
		}
	}
}

// Subscribe waits up to timeout for the acknowledgement of the listen
// request, returning the events received meanwhile. An error means the
// kernel refused (EPERM without CAP_NET_ADMIN before Linux 6.6) or did not
// answer (no proc events support, or not in the initial namespaces).
func (c *Conn) Subscribe(timeout time.Duration) ([]Event, error) {
	if err := c.f.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	defer c.f.SetReadDeadline(time.Time{})
	var held []Event
	for {
		evs, err := c.Receive()
		for _, ev := range evs {
			if ev.Kind == EventNone && ev.Ack == c.tag+1 {
				if ev.Err != 0 {
					return held, fmt.Errorf("procwatch: kernel refused the proc events subscription: %w", syscall.Errno(ev.Err))
				}
				return held, nil
			}
			held = append(held, ev)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return held, errors.New("procwatch: no answer to the proc events subscription (kernel without CONFIG_PROC_EVENTS, or not in the initial PID namespace)")
		}
		if err != nil {
			return held, err
		}
	}
}

// Close unsubscribes and closes the socket.
func (c *Conn) Close() error {
	_ = c.send(procCnMcastIgnore)
	return c.f.Close()
}

func (c *Conn) setRcvBuf(n int) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		if serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
