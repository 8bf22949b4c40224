package netif

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// nlReader reads the datagrams of a vishvananda/netlink socket through the
// runtime's network poller, each into a heap buffer of its own size.
//
// nl.NetlinkSocket.Receive reads into a 64 KiB array on the calling
// goroutine's stack and zeroes it at every call. A goroutine that calls it
// grows its stack to 128 KiB, in fresh pages when the daemon has returned
// its free memory to the kernel: the first address add of a takeover
// (AddVIPs) took about 32 page faults for that stack alone. And a goroutine
// parked inside it (a subscription waiting for the next event) can never
// have its stack shrunk, since the array is in use: 128 KiB per
// subscription for the daemon's life.
type nlReader struct {
	f  *os.File // a duplicate of the socket's descriptor
	rc syscall.RawConn
}

// newNLReader reads s. Closing the reader leaves s open, and closing s
// leaves the reader open: close both.
func newNLReader(s *nl.NetlinkSocket) (*nlReader, error) {
	fd, err := unix.FcntlInt(uintptr(s.GetFd()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netif: netlink socket: %w", err)
	}
	// The socket is non-blocking (nl.Subscribe and nl.GetNetlinkSocketAt set
	// it so), which makes the file one the poller waits on.
	f := os.NewFile(uintptr(fd), "netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("netif: netlink socket: %w", err)
	}
	return &nlReader{f: f, rc: rc}, nil
}

func (r *nlReader) Close() error { return r.f.Close() }

// receive waits for the next datagram and returns its messages and the
// sender's port ID (0: the kernel). The messages' data lie in a buffer of
// their own, which the next receive does not touch. Errors of the socket
// (unix.ENOBUFS when notifications were lost) are returned as they are.
func (r *nlReader) receive() ([]syscall.NetlinkMessage, uint32, error) {
	var (
		b    []byte
		n    int
		from unix.Sockaddr
		rerr error
	)
	err := r.rc.Read(func(fd uintptr) bool {
		// The datagram's length first (MSG_TRUNC returns it whole),
		// then the datagram into a buffer that fits it.
		n, _, rerr = unix.Recvfrom(int(fd), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if rerr == nil {
			b = make([]byte, nlmAlign(n))
			n, from, rerr = unix.Recvfrom(int(fd), b, 0)
		}
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, 0, err
	}
	sa, ok := from.(*unix.SockaddrNetlink)
	if !ok {
		return nil, 0, fmt.Errorf("netif: netlink datagram from %T", from)
	}
	if n < unix.NLMSG_HDRLEN {
		return nil, 0, fmt.Errorf("netif: short netlink datagram (%d bytes)", n)
	}
	msgs, err := syscall.ParseNetlinkMessage(b[:nlmAlign(n)])
	if err != nil {
		return nil, 0, err
	}
	return msgs, sa.Pid, nil
}

// nlmAlign rounds n up to netlink's alignment.
func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
