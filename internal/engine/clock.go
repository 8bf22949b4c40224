package engine

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// wakeTimer is the engine's one timer: it calls the function it was made
// with, on a goroutine of its own, when the time given to Reset has passed.
type wakeTimer interface {
	// Reset arms the timer to fire after d (at once when d <= 0),
	// replacing the previous setting.
	Reset(d time.Duration)
	// Close stops the timer and returns once its function is no longer
	// running or about to run; it must not be called from the function.
	Close()
}

// goTimer is a wakeTimer on the Go runtime's timers. Tests use it (it
// follows testing/synctest's clock); its wake-ups come from the runtime's
// network poller, whose epoll waits are rounded up to whole milliseconds.
type goTimer struct{ t *time.Timer }

func newGoTimer(f func()) *goTimer       { return &goTimer{t: time.AfterFunc(time.Hour, f)} }
func (g *goTimer) Reset(d time.Duration) { g.t.Reset(d) }
func (g *goTimer) Close()                { g.t.Stop() }

// fdTimer is a wakeTimer on a timerfd (CLOCK_MONOTONIC): it wakes within
// tens of microseconds of the deadline, where the runtime's timers round to
// a millisecond. VRRP timers are what a failover is measured by: the daemon
// uses this one.
//
// The timerfd is read through the runtime's network poller, and the
// expiry's work runs on the goroutine that read it: at the expiry the
// thread waiting in epoll runs that goroutine, which takes the engine's
// state and sends the adverts due, with no other thread woken (a hand-off
// to another goroutine would wake one: two context switches, and one more
// scheduling delay on a busy machine, at every wake-up). Reads and
// settings are raw system calls (see vrrpnet's batch.go for why).
type fdTimer struct {
	fd     int
	f      *os.File // fd, in the poller; nil for a timer that only arms (tests)
	rc     syscall.RawConn
	fn     func()
	closed atomic.Bool
	wg     sync.WaitGroup
	// fallbacks counts expiries the kernel refused to arm, which the Go
	// runtime's timer delivered instead.
	fallbacks atomic.Uint64
	// buf and rerr belong to the reading goroutine (readFn).
	buf    [8]byte
	rerr   syscall.Errno
	readFn func(fd uintptr) bool
}

func newFDTimer(f func()) (*fdTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	t := &fdTimer{fd: fd, f: os.NewFile(uintptr(fd), "timerfd"), fn: f}
	if t.rc, err = t.f.SyscallConn(); err != nil {
		t.f.Close()
		return nil, err
	}
	t.readFn = func(fd uintptr) bool {
		_, _, t.rerr = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&t.buf[0])), uintptr(len(t.buf)))
		return t.rerr != unix.EAGAIN
	}
	t.wg.Add(1)
	go t.run()
	return t, nil
}

func (t *fdTimer) run() {
	defer t.wg.Done()
	for {
		err := t.rc.Read(t.readFn)
		if t.closed.Load() {
			return
		}
		if err != nil {
			return
		}
		if t.rerr != 0 {
			continue // EINTR; a read error of a timerfd is no expiry
		}
		t.fn()
	}
}

// fire delivers an expiry the runtime's timer stood in for.
func (t *fdTimer) fire() {
	if !t.closed.Load() {
		t.fn()
	}
}

func (t *fdTimer) Reset(d time.Duration) {
	if d <= 0 {
		d = time.Nanosecond // zero would disarm the timer
	}
	if err := t.arm(d); err != nil {
		// The deadline must still wake the engine: the runtime's timer
		// delivers it, at millisecond resolution.
		t.fallbacks.Add(1)
		time.AfterFunc(d, t.fire)
	}
}

func (t *fdTimer) arm(d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	_, _, errno := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(t.fd), 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Close stops the reader and frees the fd.
func (t *fdTimer) Close() {
	if t.closed.Swap(true) || t.f == nil {
		return
	}
	t.f.Close() // wakes the reader
	t.wg.Wait()
}

// newWakeTimer returns the timer Options ask for, calling f, falling back
// to the Go runtime's when no timerfd can be had.
func (e *Engine) newWakeTimer(f func()) wakeTimer {
	if e.opts.PreciseTimer {
		t, err := newFDTimer(f)
		if err == nil {
			return t
		}
		e.log.Warn("no timerfd; VRRP timers run on the Go runtime's (millisecond) resolution", "err", err)
	}
	return newGoTimer(f)
}
