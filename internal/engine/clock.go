package engine

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// wakeTimer is the loop's one timer.
type wakeTimer interface {
	C() <-chan time.Time
	// Reset arms the timer to fire after d (at once when d <= 0).
	Reset(d time.Duration)
	Close()
}

// goTimer is a wakeTimer on the Go runtime's timers. Tests use it (it
// follows testing/synctest's clock); its wake-ups come from the runtime's
// network poller, whose epoll waits are rounded up to whole milliseconds.
type goTimer struct{ t *time.Timer }

func newGoTimer() *goTimer               { return &goTimer{t: time.NewTimer(time.Hour)} }
func (g *goTimer) C() <-chan time.Time   { return g.t.C }
func (g *goTimer) Reset(d time.Duration) { g.t.Reset(d) }
func (g *goTimer) Close()                { g.t.Stop() }

// fdTimer is a wakeTimer on a timerfd (CLOCK_MONOTONIC): it wakes within
// tens of microseconds of the deadline, where the runtime's timers round to
// a millisecond. VRRP timers are what a failover is measured by: the daemon
// uses this one.
//
// The timerfd is read through the runtime's network poller: at the expiry
// the thread waiting in epoll runs the reader, whose send on C hands the
// loop goroutine to the same thread, which runs it next. A read blocking on
// a thread of its own would need a second thread woken for the loop, one
// more scheduling delay on a busy machine at every wake-up.
type fdTimer struct {
	fd     int
	f      *os.File // fd, in the poller; nil for a timer that only arms (tests)
	c      chan time.Time
	closed atomic.Bool
	wg     sync.WaitGroup
	// fallbacks counts expiries the kernel refused to arm, which the Go
	// runtime's timer delivered instead.
	fallbacks atomic.Uint64
}

func newFDTimer() (*fdTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	t := &fdTimer{fd: fd, f: os.NewFile(uintptr(fd), "timerfd"), c: make(chan time.Time, 1)}
	t.wg.Add(1)
	go t.run()
	return t, nil
}

func (t *fdTimer) run() {
	defer t.wg.Done()
	buf := make([]byte, 8)
	for {
		_, err := t.f.Read(buf)
		if t.closed.Load() {
			return
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return
		}
		t.fire()
	}
}

// fire delivers one wake-up; when one is already waiting, the loop re-reads
// its deadlines anyway.
func (t *fdTimer) fire() {
	select {
	case t.c <- time.Now():
	default:
	}
}

func (t *fdTimer) C() <-chan time.Time { return t.c }

func (t *fdTimer) Reset(d time.Duration) {
	if d <= 0 {
		d = time.Nanosecond // zero would disarm the timer
	}
	if err := t.arm(d); err != nil {
		// The deadline must still wake the loop: the runtime's timer
		// delivers it, at millisecond resolution.
		t.fallbacks.Add(1)
		time.AfterFunc(d, t.fire)
	}
}

func (t *fdTimer) arm(d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	return unix.TimerfdSettime(t.fd, 0, &spec, nil)
}

// Close stops the reader and frees the fd.
func (t *fdTimer) Close() {
	if t.closed.Swap(true) || t.f == nil {
		return
	}
	t.f.Close() // wakes the reader
	t.wg.Wait()
}

// newWakeTimer returns the timer Options ask for, falling back to the Go
// runtime's when no timerfd can be had.
func (e *Engine) newWakeTimer() wakeTimer {
	if e.opts.PreciseTimer {
		t, err := newFDTimer()
		if err == nil {
			return t
		}
		e.log.Warn("no timerfd; VRRP timers run on the Go runtime's (millisecond) resolution", "err", err)
	}
	return newGoTimer()
}
