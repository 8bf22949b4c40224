package probe

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"hash"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/check"
)

// poller runs the Runner's plain HTTP_GET attempts (no TLS) the way
// keepalived runs all of its checks: each attempt is a non-blocking socket
// and a little state, and one goroutine waits in epoll_wait for all of
// them. An attempt waiting for a slow server then costs a file descriptor,
// not a worker: it cannot hold up the attempts due after it, and a
// finished GET costs no goroutine switch.
//
// The attempt is the same as HTTP.Get's: the request of Request, read to
// the end of the stream through a respReader, connect_timeout bounding the
// connect and each later write or read, judged by HTTP.judge.
//
// Concurrency: submit may be called from any goroutine; run is the
// poller's own goroutine and calls done from it.
type poller struct {
	epfd, evfd int
	epoch      time.Time
	done       func(j job, started time.Time, res check.Result)

	mu      sync.Mutex
	queue   []pollTask
	waiting bool // in epoll_wait with nothing queued: submit must wake it

	// Owned by run.
	f     *os.File // epfd in the runtime's poller
	rc    syscall.RawConn
	spare []pollTask
	conns []*pollConn // by descriptor
	free  []*pollConn
	// dl orders the attempts in flight by their deadline as it was when
	// last sifted: progress only moves pollConn.deadline later, and expire
	// sifts an attempt down again when its old key comes, so progress costs
	// no heap operation.
	dl     keyHeap[*pollConn]
	buf    []byte
	events []unix.EpollEvent
}

// pollTask is one attempt: check url step of h for job j.
type pollTask struct {
	h    *HTTP
	step int
	j    job
}

// pollConn is one attempt in progress.
type pollConn struct {
	t        pollTask
	u        *URL
	fd       int
	sa       unix.Sockaddr
	state    uint8
	watching bool // registered with epoll
	out      bool // ... for output too
	req      []byte
	off      int
	rr       respReader
	md       hash.Hash
	hdr      []byte
	started  time.Time
	to       time.Duration
	deadline int64 // ns since epoch: the current I/O step's end
	end      int64 // ns since epoch: the attempt's end (attemptSteps)
	hidx     int   // index in poller.dl, -1 when not in it
}

func (c *pollConn) heapPos() *int { return &c.hidx }

// stepEnd is when an I/O step beginning at now must end: a connect
// timeout later, or at the attempt's end if sooner.
func (c *pollConn) stepEnd(now int64) int64 { return min(now+int64(c.to), c.end) }

const (
	pollConnecting = iota
	pollWriting
	pollReading
)

func newPoller(done func(j job, started time.Time, res check.Result)) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &poller{
		epfd: epfd, evfd: evfd, epoch: time.Now(), done: done,
		buf: make([]byte, 16<<10), events: make([]unix.EpollEvent, 1024),
	}, nil
}

// submit queues ts; the poller starts them at once.
func (p *poller) submit(ts ...pollTask) {
	p.mu.Lock()
	p.queue = append(p.queue, ts...)
	wake := p.waiting
	p.waiting = false
	p.mu.Unlock()
	if wake {
		p.wake()
	}
}

func (p *poller) wake() {
	one := [8]byte{1} // eventfd adds a native-endian uint64; 1 on amd64 and arm64
	unix.Write(p.evfd, one[:])
}

func (p *poller) now() int64 { return int64(time.Since(p.epoch)) }

// run starts and drives the attempts until ctx is done, then closes every
// socket (the attempts in flight report nothing, as Runner.attempt after a
// cancellation) and the poller itself.
func (p *poller) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, p.wake)
	defer stop()
	defer p.close()
	// Wait for the epoll descriptor through the runtime's own poller, so
	// that a waiting poller holds neither a thread nor a P: a goroutine
	// blocked in epoll_wait keeps its P until the runtime's monitor takes
	// it back, which on a loaded machine delays the other pollers and the
	// timetable. f owns epfd from here on.
	if unix.SetNonblock(p.epfd, true) == nil {
		p.f = os.NewFile(uintptr(p.epfd), "epoll")
		if p.f.SetReadDeadline(time.Time{}) == nil {
			p.rc, _ = p.f.SyscallConn()
		}
	}
	for ctx.Err() == nil {
		p.mu.Lock()
		q := p.queue
		p.queue, p.spare = p.spare[:0], nil
		p.waiting = len(q) == 0
		p.mu.Unlock()
		for i := range q {
			p.start(q[i])
			q[i] = pollTask{}
		}
		p.spare = q
		timeout := 0 // more may have been queued meanwhile
		if len(q) == 0 {
			timeout = p.timeout()
		}
		n, err := p.wait(timeout)
		if len(q) == 0 {
			p.mu.Lock()
			p.waiting = false
			p.mu.Unlock()
		}
		if err != nil && err != unix.EINTR {
			// Cannot happen with a valid epoll descriptor and buffer;
			// keep the attempts from hanging if it does.
			p.failAll(os.NewSyscallError("epoll_wait", err))
			continue
		}
		for _, ev := range p.events[:max(n, 0)] {
			fd := int(ev.Fd)
			if fd == p.evfd {
				var b [8]byte
				unix.Read(p.evfd, b[:])
				continue
			}
			if fd < len(p.conns) && p.conns[fd] != nil {
				p.handle(p.conns[fd], ev.Events)
			}
		}
		p.expire()
	}
}

// wait returns the number of events in p.events, waiting at most timeout
// ms for the first (-1: no limit).
func (p *poller) wait(timeout int) (int, error) {
	if p.rc == nil || timeout == 0 {
		return unix.EpollWait(p.epfd, p.events, timeout)
	}
	var dl time.Time
	if timeout > 0 {
		dl = time.Now().Add(time.Duration(timeout) * time.Millisecond)
	}
	p.f.SetReadDeadline(dl)
	var n int
	var err error
	// The function runs first without waiting; only when it finds
	// nothing does the runtime wait for epfd to become readable, which
	// it does on any new event (none is lost in between).
	rerr := p.rc.Read(func(uintptr) bool {
		n, err = unix.EpollWait(p.epfd, p.events, 0)
		return n > 0 || (err != nil && err != unix.EINTR)
	})
	if err == unix.EINTR {
		err = nil
	}
	if rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) && err == nil {
		err = rerr
	}
	return max(n, 0), err
}

// timeout returns epoll_wait's timeout in ms: until the earliest deadline
// (rounded up), -1 without one.
func (p *poller) timeout() int {
	if len(p.dl) == 0 {
		return -1
	}
	d := p.dl[0].key - p.now()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

func (p *poller) close() {
	for fd, c := range p.conns {
		if c != nil {
			unix.Close(fd)
			p.conns[fd] = nil
		}
	}
	if p.f != nil {
		p.f.Close()
	} else {
		unix.Close(p.epfd)
	}
	unix.Close(p.evfd)
}

// failAll ends every attempt in flight with err.
func (p *poller) failAll(err error) {
	for _, c := range p.conns {
		if c != nil {
			p.finish(c, nil, err)
		}
	}
}

func (p *poller) get() *pollConn {
	if n := len(p.free); n > 0 {
		c := p.free[n-1]
		p.free = p.free[:n-1]
		return c
	}
	hdr := make([]byte, maxHeader)
	return &pollConn{md: md5.New(), hdr: hdr, fd: -1, hidx: -1}
}

// start begins t: socket, connect, and the request when connected.
func (p *poller) start(t pollTask) {
	c := p.get()
	c.t, c.started, c.to = t, time.Now(), t.h.Conn.timeout()
	c.end = p.now() + attemptSteps*int64(c.to)
	if t.step < 0 || t.step >= len(t.h.URLs) {
		started := c.started
		p.recycle(c)
		p.done(t.j, started, check.Result{Reason: fmt.Sprintf("no url %d", t.step), Latency: elapsed(started)})
		return
	}
	c.u = &t.h.URLs[t.step]
	c.rr.reset(c.u, nil, c.hdr, c.md)
	c.req, c.off = t.h.appendRequest(c.req[:0], c.u), 0
	if len(c.req) > maxRequest-1 {
		p.finish(c, nil, fmt.Errorf("request for %s longer than %d bytes", c.u.Path, maxRequest-1))
		return
	}
	fd, sa, pending, err := t.h.Conn.startConnect()
	if err != nil {
		if check.OutOfResources(err) { // kept for judge: no verdict
			err = fmt.Errorf("connect %s: %w", t.h.Conn.Target(), err)
		} else {
			err = fmt.Errorf("connect %s: %s", t.h.Conn.Target(), describe(err, c.to))
		}
		p.finish(c, nil, err)
		return
	}
	c.fd, c.sa = fd, sa
	for fd >= len(p.conns) {
		p.conns = append(p.conns, nil)
	}
	p.conns[fd] = c
	c.deadline = c.stepEnd(p.now())
	p.dl.push(c.deadline, c)
	if pending {
		c.state = pollConnecting
		p.watch(c, unix.EPOLLOUT)
		return
	}
	c.state = pollWriting
	p.handle(c, 0)
}

// watch registers c's socket, edge-triggered, for input and hang-ups and,
// with out, for output too.
func (p *poller) watch(c *pollConn, out uint32) {
	op := unix.EPOLL_CTL_ADD
	if c.watching {
		op = unix.EPOLL_CTL_MOD
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET | out, Fd: int32(c.fd)}
	if err := unix.EpollCtl(p.epfd, op, c.fd, &ev); err != nil {
		p.finish(c, nil, fmt.Errorf("connect %s: %v", c.t.h.Conn.Target(), os.NewSyscallError("epoll_ctl", err)))
		return
	}
	c.watching, c.out = true, out != 0
}

// handle moves c on as far as its socket allows.
func (p *poller) handle(c *pollConn, events uint32) {
	target := c.t.h.Conn.Target()
	switch c.state {
	case pollConnecting:
		done, err := connected(c.fd, c.sa)
		if !done {
			return
		}
		if err != nil {
			p.finish(c, nil, fmt.Errorf("connect %s: %s", target, describe(err, c.to)))
			return
		}
		c.state = pollWriting
		c.deadline = c.stepEnd(p.now())
		fallthrough
	case pollWriting:
		for c.off < len(c.req) {
			n, err := unix.Write(c.fd, c.req[c.off:])
			if n > 0 {
				c.off += n
				c.deadline = c.stepEnd(p.now())
				continue
			}
			switch err {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				if !c.out {
					p.watch(c, unix.EPOLLOUT)
				}
				return
			}
			p.finish(c, nil, fmt.Errorf("send request to %s: %s", target, describe(os.NewSyscallError("write", err), c.to)))
			return
		}
		c.state = pollReading
		c.deadline = c.stepEnd(p.now())
		if !c.watching {
			// The response is seldom there yet: wait for it. A socket
			// already readable is reported at once.
			p.watch(c, 0)
			return
		}
		fallthrough
	case pollReading:
		for {
			n, err := unix.Read(c.fd, p.buf)
			if n > 0 {
				if err := c.rr.write(p.buf[:n]); err != nil {
					p.finish(c, nil, fmt.Errorf("read from %s: %v", target, err))
					return
				}
				c.deadline = c.stepEnd(p.now())
				continue
			}
			switch {
			case err == nil: // end of stream
				resp, err := c.rr.finish(target)
				p.finish(c, resp, err)
				return
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return
			}
			p.finish(c, nil, fmt.Errorf("read from %s: %s", target, describe(os.NewSyscallError("read", err), c.to)))
			return
		}
	}
}

// expire ends the attempts whose I/O step ran out of time.
func (p *poller) expire() {
	now := p.now()
	for len(p.dl) > 0 && p.dl[0].key <= now {
		c := p.dl[0].v
		if c.deadline <= now {
			// Its socket may be ready with events epoll_wait has not
			// returned yet (a burst larger than p.events): look
			// before calling it a timeout.
			p.handle(c, 0)
			if c.hidx != 0 {
				continue // finished
			}
		}
		if c.deadline > now {
			// It made progress since: wait for its current step's end.
			p.dl[0].key = c.deadline
			p.dl.down(0)
			continue
		}
		what := "connect"
		switch c.state {
		case pollWriting:
			what = "send request to"
		case pollReading:
			what = "read from"
		}
		err := error(os.ErrDeadlineExceeded)
		if c.deadline >= c.end {
			err = budgetErr(c.to)
		}
		p.finish(c, nil, fmt.Errorf("%s %s: %s", what, c.t.h.Conn.Target(), describe(err, c.to)))
	}
}

// finish closes c's socket, judges the outcome and reports it.
func (p *poller) finish(c *pollConn, resp *Response, err error) {
	if c.fd >= 0 {
		unix.Close(c.fd) // also leaves the epoll set
		p.conns[c.fd] = nil
	}
	if c.hidx >= 0 {
		p.dl.remove(c.hidx)
	}
	res := c.t.h.judge(c.u, resp, err, c.started)
	j, started := c.t.j, c.started
	p.recycle(c)
	p.done(j, started, res)
}

func (p *poller) recycle(c *pollConn) {
	*c = pollConn{md: c.md, hdr: c.hdr, req: c.req[:0], fd: -1, hidx: -1}
	p.free = append(p.free, c)
}
