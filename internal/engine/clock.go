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
	// fallbacks counts expiries the kernel refused to arm, which the Go
	// runtime's timer delivered instead.
	fallbacks atomic.Uint64
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

// Close stops the reader (waking it with a last expiry) and frees the fd.
// Should the kernel refuse that expiry, the reader cannot be woken: Close
// leaves it and its fd (closing an fd a read blocks on could hand the read
// a reused descriptor) and returns rather than hang.
func (t *fdTimer) Close() {
	if t.closed.Swap(true) {
		return
	}
	if t.arm(time.Nanosecond) != nil {
		return
	}
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
