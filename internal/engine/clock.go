package engine

import (
	"errors"
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

// fdTimer is a wakeTimer on a timerfd (CLOCK_MONOTONIC) read by a goroutine
// that blocks in read(2) on its own thread: it wakes within tens of
// microseconds of the deadline, where the runtime's poller rounds to a
// millisecond. VRRP timers are what a failover is measured by: the daemon
// uses this one.
type fdTimer struct {
	fd     int
	c      chan time.Time
	closed atomic.Bool
	wg     sync.WaitGroup
}

func newFDTimer() (*fdTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	t := &fdTimer{fd: fd, c: make(chan time.Time, 1)}
	t.wg.Add(1)
	go t.run()
	return t, nil
}

func (t *fdTimer) run() {
	defer t.wg.Done()
	buf := make([]byte, 8)
	for {
		_, err := unix.Read(t.fd, buf)
		if t.closed.Load() {
			return
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return
		}
		select {
		case t.c <- time.Now():
		default: // a wake-up is already waiting; the loop re-reads its deadlines
		}
	}
}

func (t *fdTimer) C() <-chan time.Time { return t.c }

func (t *fdTimer) Reset(d time.Duration) {
	if d <= 0 {
		d = time.Nanosecond // zero would disarm the timer
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	_ = unix.TimerfdSettime(t.fd, 0, &spec, nil)
}

// Close stops the reader (waking it with a last expiry) and frees the fd.
func (t *fdTimer) Close() {
	if t.closed.Swap(true) {
		return
	}
	t.Reset(time.Nanosecond)
	t.wg.Wait()
	unix.Close(t.fd)
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
