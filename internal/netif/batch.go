package netif

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// sendBatch sends the requests on the handle's request socket in one
// netlink message and returns one result per request: nil, the kernel's
// errno (a unix.Errno), or an error of the socket (then for every request
// the kernel had not answered yet, since which of them ran is unknown).
//
// Only the last request asks for an ACK (NLM_F_ACK); the kernel answers the
// others only when they fail. It runs the requests of one message in order
// and answers in order, so reading up to the last request's answer collects
// every failure. vishvananda/netlink v1.3.1 executes one request per round
// trip, hence this small batch of its own.
func (h *Handle) sendBatch(reqs []*nl.NetlinkRequest) []error {
	out := make([]error, len(reqs))
	if len(reqs) == 0 {
		return out
	}
	s := h.req.Socket
	s.Lock() // as NetlinkRequest.Execute: one exchange at a time on the socket
	defer s.Unlock()
	seqs := make([]uint32, len(reqs))
	var buf []byte
	for k, r := range reqs {
		r.Flags &^= unix.NLM_F_ACK
		if k == len(reqs)-1 {
			r.Flags |= unix.NLM_F_ACK
		}
		r.Seq = atomic.AddUint32(&h.req.Seq, 1)
		seqs[k] = r.Seq
		buf = append(buf, r.Serialize()...)
		for len(buf)%unix.NLMSG_ALIGNTO != 0 {
			buf = append(buf, 0)
		}
	}
	answered := make([]bool, len(reqs))
	fail := func(err error) []error {
		for k := range out {
			if !answered[k] {
				out[k] = err
			}
		}
		return out
	}
	if err := unix.Sendto(s.GetFd(), buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fail(fmt.Errorf("netif: netlink send: %w", err))
	}
	pid, err := s.GetPid()
	if err != nil {
		return fail(fmt.Errorf("netif: netlink socket: %w", err))
	}
	if h.reqReader == nil {
		if h.reqReader, err = newNLReader(s); err != nil {
			return fail(err)
		}
	}
	last := seqs[len(seqs)-1]
	for {
		msgs, from, err := h.reqReader.receive()
		if err != nil {
			return fail(fmt.Errorf("netif: netlink receive: %w", err))
		}
		if from != nl.PidKernel {
			continue
		}
		for _, m := range msgs {
			if m.Header.Pid != pid || m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue // an answer to an earlier exchange that gave up
			}
			k := -1
			for j, q := range seqs {
				if q == m.Header.Seq {
					k = j
					break
				}
			}
			if k < 0 {
				continue
			}
			answered[k] = true
			if errno := -int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
				out[k] = unix.Errno(errno)
			}
			if m.Header.Seq == last {
				return out
			}
		}
	}
}
