package netif

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrOverrun is returned (wrapped) by WatchLinks and WatchAddrs when the
// kernel dropped notifications because the socket buffer was full (ENOBUFS).
// The caller should re-read the state it depends on and watch again.
var ErrOverrun = errors.New("netif: netlink notifications lost (ENOBUFS)")

// LinkEvent is a change of one interface.
type LinkEvent struct {
	Link LinkInfo
	// Deleted is true when the interface went away (RTM_DELLINK).
	Deleted bool
	// Initial is true for the events that report the links present when
	// the watch started.
	Initial bool
}

// AddrEvent is an address added to or removed from an interface.
type AddrEvent struct {
	Addr    Addr
	Deleted bool
	Initial bool
}

// watchRcvBuf is the receive buffer of the subscription sockets: large
// enough for a burst of changes on a few hundred interfaces.
const watchRcvBuf = 1 << 20

// WatchLinks calls fn for every link of the handle's namespace present when
// the watch starts (Initial), then for every change: administrative up/down,
// carrier changes, renames, deletions. The kernel may repeat a state; fn must
// compare. fn runs on the calling goroutine, one event at a time.
//
// WatchLinks returns nil when ctx is done, after its socket is closed and
// every goroutine it started has exited; it returns an error wrapping
// ErrOverrun if notifications were lost.
func (h *Handle) WatchLinks(ctx context.Context, fn func(LinkEvent)) error {
	return h.watch(ctx, unix.RTM_GETLINK, nl.NewIfInfomsg(unix.AF_UNSPEC),
		[]uint{unix.RTNLGRP_LINK}, func(m syscall.NetlinkMessage, initial bool) {
			if m.Header.Type != unix.RTM_NEWLINK && m.Header.Type != unix.RTM_DELLINK {
				return
			}
			hdr := unix.NlMsghdr(m.Header)
			if len(m.Data) < unix.SizeofIfInfomsg {
				return // the kernel never sends it
			}
			l, err := netlink.LinkDeserialize(&hdr, m.Data)
			if err != nil {
				return
			}
			fn(LinkEvent{Link: linkInfo(l), Deleted: m.Header.Type == unix.RTM_DELLINK, Initial: initial})
		})
}

// WatchAddrs is WatchLinks for addresses of both families: fn sees every
// address present at start (Initial), then every address added or removed,
// for example a VIP removed by hand with `ip addr del`.
func (h *Handle) WatchAddrs(ctx context.Context, fn func(AddrEvent)) error {
	return h.watch(ctx, unix.RTM_GETADDR, nl.NewIfAddrmsg(unix.AF_UNSPEC),
		[]uint{unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR}, func(m syscall.NetlinkMessage, initial bool) {
			if m.Header.Type != unix.RTM_NEWADDR && m.Header.Type != unix.RTM_DELADDR {
				return
			}
			a, err := parseAddrMsg(m.Data)
			if err != nil {
				return
			}
			fn(AddrEvent{Addr: a, Deleted: m.Header.Type == unix.RTM_DELADDR, Initial: initial})
		})
}

// watch subscribes to groups in the handle's namespace, dumps the current
// state with a getType request, and feeds every message to handle until ctx
// is done.
func (h *Handle) watch(ctx context.Context, getType int, dumpMsg nl.NetlinkRequestData, groups []uint,
	handle func(m syscall.NetlinkMessage, initial bool)) error {
	runtime.LockOSThread() // target() and the socket on one thread
	s, err := nl.SubscribeAt(h.target(), netns.None(), unix.NETLINK_ROUTE, groups...)
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("netif: subscribe: %w", err)
	}
	if err := s.SetReceiveBufferSize(watchRcvBuf, false); err != nil {
		s.Close()
		return fmt.Errorf("netif: subscribe: %w", err)
	}
	r, err := newNLReader(s)
	if err != nil {
		s.Close()
		return err
	}
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		r.Close()
		s.Close()
		close(closed)
	})
	defer func() {
		if stop() {
			r.Close()
			s.Close()
		} else {
			<-closed // the AfterFunc goroutine is closing the socket
		}
	}()

	dump := nl.NewNetlinkRequest(getType, unix.NLM_F_DUMP)
	dump.AddData(dumpMsg)
	if err := s.Send(dump); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("netif: dump request: %w", err)
	}
	dumpSeq := dump.Seq
	dumping := true
	for {
		msgs, from, err := r.receive()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, unix.ENOBUFS) {
				return fmt.Errorf("%w: %w", ErrOverrun, err)
			}
			return fmt.Errorf("netif: receive: %w", err)
		}
		if from != nl.PidKernel {
			continue
		}
		for _, m := range msgs {
			initial := dumping && m.Header.Seq == dumpSeq
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				if initial {
					dumping = false
				}
				continue
			case unix.NLMSG_ERROR:
				if initial {
					dumping = false
				}
				continue
			}
			handle(m, initial)
		}
	}
}
