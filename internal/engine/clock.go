package engine

import (
	"os"
	"runtime"
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
// The expiry's work runs on the goroutine that waited for it (a hand-off
// to another goroutine would wake another thread), which waits in one of
// two ways (SetThread):
//
//   - through the runtime's network poller (the default): at the expiry
//     the thread waiting in epoll runs the goroutine, which takes the
//     engine's state and sends the adverts due, with no other thread woken
//     (one context switch per expiry);
//   - on an OS thread of its own, locked to the goroutine, blocked in
//     read(2) on a second, blocking timerfd: the kernel wakes that thread
//     and the expiry runs there, so the thread can be given a scheduling of
//     its own (a real-time priority, internal/sched) that no other thread
//     of the process shares. The read is a system call through the
//     runtime's bookkeeping: the thread's P is handed on while it waits and
//     taken back (or an idle one) when it returns. That wakes the
//     runtime's monitor thread (sysmon) at every wait, which then polls
//     every 20 µs or more until it takes the P back: at 1,000 instances
//     (64 expiries a second) vigil-bench measured the master at 3.9-5.2 %
//     of a core against 1.5-1.7 % through the poller, which is why this
//     way is only for a real-time priority.
//
// Either way, the thread the kernel wakes is placed by the scheduler, and a
// kernel without preemption (PREEMPT_NONE) leaves it waiting on a CPU that
// runs a long kernel thread (a DAMON or kswapd pass, an interrupt storm)
// until that thread yields, milliseconds later, while another CPU idles.
// A backstop covers that: a third, blocking timerfd set backstopDelay after
// each deadline, read by two threads pinned to different CPUs (startBackstop).
// When the expiry ran in time, the next setting moves the backstop before it
// fires, so it costs one timerfd_settime per setting and no wake-up; when
// the expiry is late, the backstop thread on the other CPU runs it.
//
// Reads through the poller and settings are raw system calls (see
// vrrpnet's batch.go for why).
type fdTimer struct {
	fn func()
	// pfd is the timerfd of the poller's way, f its file; tfd the blocking
	// one of the thread's way (0 until first used).
	pfd, tfd int
	f        *os.File // nil for a timer that only arms (tests)
	rc       syscall.RawConn
	// onThread is called on the thread, before its first wait.
	onThread func() func()
	// mu guards the settings below, and orders settings with Close so
	// that no setting reaches an fd number after it was closed.
	mu sync.Mutex
	// thread is the way asked for; closed is set by Close.
	thread, closed bool
	// deadline is the last setting (CLOCK_MONOTONIC ns), for the switch
	// from one fd to the other.
	deadline int64
	// base and baseT pair a CLOCK_MONOTONIC reading with Go's clock
	// (monoNow).
	base  int64
	baseT time.Time
	wg    sync.WaitGroup
	// fallbacks counts expiries the kernel refused to arm, which the Go
	// runtime's timer delivered instead.
	fallbacks atomic.Uint64
	// bfd is the backstop's blocking timerfd (0 without one), bwg its
	// threads; backstops counts the expiries a backstop thread ran.
	bfd       int
	bwg       sync.WaitGroup
	backstops atomic.Uint64
	// btat is the backstop's budget (see backstopBurst), a generic cell
	// rate: CLOCK_MONOTONIC ns at which the budget is whole again.
	btat int64
	// buf and rerr belong to the waiting goroutine (readFn).
	buf    [8]byte
	rerr   syscall.Errno
	readFn func(fd uintptr) bool
}

// newFDTimer starts a timer that waits through the poller; onThread is
// for SetThread.
func newFDTimer(f func(), onThread func() func()) (*fdTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	t := &fdTimer{pfd: fd, f: os.NewFile(uintptr(fd), "timerfd"), fn: f, onThread: onThread}
	if t.rc, err = t.f.SyscallConn(); err != nil {
		t.f.Close()
		return nil, err
	}
	t.readFn = t.pollExpiry
	t.wg.Add(1)
	go t.run()
	t.startBackstop()
	return t, nil
}

// backstopDelay is how late an expiry may run before a backstop thread runs
// it: above the wake-up's usual lateness (tens of µs, a p99 of ~0.2 ms on a
// loaded guest), so that the backstop rarely fires when nothing is wrong.
const backstopDelay = 500 * time.Microsecond

// A firing of the backstop costs far more than the expiry it runs. The
// thread's read(2) goes through the runtime's system call path: back in
// read after the expiry, the thread holds a P in a system call until the
// runtime's monitor thread (sysmon) takes it back 10 ms later, and each
// take-back sets sysmon polling every 20 µs again, about 60 wake-ups before
// it backs off. On a host whose wake-ups often come late (a busy or noisy
// hypervisor) the backstop fired several times a second, and sysmon's
// wake-ups then delayed the timer's own, so the backstop fired more:
// vigil-bench's scale mode at 1,000 instances measured sysmon at 270-1,280
// context switches a second and the master at 3.5-4.9 % of a core against
// 2.8-3.5 % with the backstop's firings rare. So the backstop fires at most
// backstopBurst times at once and then once per backstopRefill (a rate
// limit that keeps its cover for the rare, long stalls it is for): while
// the budget is spent it is left disarmed.
const (
	backstopBurst  = 2
	backstopRefill = time.Second
)

// startBackstop starts the backstop's threads on two CPUs the process may
// run on (none with a single CPU: nothing to move to).
func (t *fdTimer) startBackstop() {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() < 2 {
		return
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return
	}
	t.bfd = fd
	var cpus []int
	for c := 0; len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	for _, c := range cpus {
		t.bwg.Add(1)
		go t.backstopWait(fd, c)
	}
}

// backstopWait is a backstop thread: pinned to cpu and reading fd (the thread ends with
// its goroutine, and its affinity with it), it runs the expiry when the
// backstop's fd fires. Both threads wake at a firing; the first reads it,
// the other finds the fd empty and sleeps on in the kernel.
func (t *fdTimer) backstopWait(fd, cpu int) {
	defer t.bwg.Done()
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return
	}
	var buf [8]byte
	for {
		_, err := unix.Read(fd, buf[:])
		if _, closed := t.state(); closed {
			return
		}
		if err != nil {
			continue // EINTR
		}
		t.spendBackstop()
		t.backstops.Add(1)
		t.fn()
	}
}

// spendBackstop takes one firing from the backstop's budget.
func (t *fdTimer) spendBackstop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now, err := t.monoNow(); err == nil {
		t.btat = max(t.btat, now) + backstopRefill.Nanoseconds()
	}
}

// backstopAllowed reports whether the budget has a firing left at now
// (t.mu held).
func (t *fdTimer) backstopAllowed(now int64) bool {
	return now >= t.btat-(backstopBurst-1)*backstopRefill.Nanoseconds()
}

// state returns the way asked for and whether the timer is closed.
func (t *fdTimer) state() (thread, closed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.thread, t.closed
}

func (t *fdTimer) run() {
	defer t.wg.Done()
	for {
		thread, closed := t.state()
		switch {
		case closed:
			return
		case !thread:
			if !t.pollWait() {
				return
			}
		default:
			// The thread ends with its goroutine (never unlocked), and
			// with it the scheduling onThread gave it.
			done := make(chan struct{})
			go func() {
				defer close(done)
				runtime.LockOSThread()
				if t.onThread != nil {
					if leave := t.onThread(); leave != nil {
						defer leave()
					}
				}
				t.threadWait()
			}()
			<-done
		}
	}
}

// pollWait runs the expiries through the poller until the way changes; it
// reports false when the fd is closed.
func (t *fdTimer) pollWait() bool {
	for {
		err := t.rc.Read(t.readFn)
		thread, closed := t.state()
		switch {
		case closed || err != nil:
			return false
		case thread:
			return true // the wake-up of SetThread, no expiry
		}
		// A read error of a timerfd is no expiry: wait again.
	}
}

// pollExpiry is the poller's read function: it runs the expiry it reads
// and asks to wait again (false), or ends the wait (true) for a change of
// way, a close or a read error (t.rerr). The read after an expiry that
// would only find the fd empty is left out (a system call in every
// wake-up): the fd was emptied by this read, and an expiry from then on
// wakes the wait, which the poller notes even while the expiry runs (the
// loop of the raw read clears no readiness between its calls).
func (t *fdTimer) pollExpiry(fd uintptr) bool {
	for {
		_, _, t.rerr = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&t.buf[0])), uintptr(len(t.buf)))
		if t.rerr != unix.EINTR {
			break
		}
	}
	if t.rerr == unix.EAGAIN {
		return false
	}
	if thread, closed := t.state(); thread || closed || t.rerr != 0 {
		return true
	}
	t.fn()
	return false
}

// threadWait runs the expiries on the calling thread until the way changes.
func (t *fdTimer) threadWait() {
	var buf [8]byte
	for {
		_, err := unix.Read(t.tfd, buf[:])
		if thread, closed := t.state(); closed || !thread {
			return // the wake-up of SetThread or Close, no expiry
		}
		if err != nil {
			continue // EINTR
		}
		t.fn()
	}
}

// SetThread moves the waiting to a thread of its own (on) or back to the
// poller. The deadline set carries over.
func (t *fdTimer) SetThread(on bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.thread == on || t.f == nil {
		return nil
	}
	if on && t.tfd == 0 {
		fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
		if err != nil {
			return err
		}
		t.tfd = fd
	}
	from := t.active()
	t.thread = on
	if t.deadline != 0 {
		// An expiry that comes on the old fd meanwhile is taken for the
		// wake-up: the new one fires at once then (a turn that finds
		// nothing due is harmless).
		if err := t.armAt(t.active(), t.deadline); err != nil {
			t.thread = !on
			return err
		}
	}
	return t.arm(from, time.Nanosecond) // wakes the waiting goroutine
}

// active is the fd of the way asked for (t.mu held).
func (t *fdTimer) active() int {
	if t.thread {
		return t.tfd
	}
	return t.pfd
}

// fire delivers an expiry the runtime's timer stood in for.
func (t *fdTimer) fire() {
	if _, closed := t.state(); !closed {
		t.fn()
	}
}

func (t *fdTimer) Reset(d time.Duration) {
	if d <= 0 {
		d = time.Nanosecond // zero would disarm the timer
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	err := t.arm(t.active(), d)
	t.mu.Unlock()
	if err != nil {
		// The deadline must still wake the engine: the runtime's timer
		// delivers it, at millisecond resolution.
		t.fallbacks.Add(1)
		time.AfterFunc(d, t.fire)
	}
}

// arm sets fd to expire after d and notes the deadline (t.mu held).
func (t *fdTimer) arm(fd int, d time.Duration) error {
	now, err := t.monoNow()
	if err != nil {
		return err
	}
	return t.armAt(fd, now+d.Nanoseconds())
}

// monoNow is CLOCK_MONOTONIC's now in ns (t.mu held). One clock_gettime
// system call sets a base, which Go's monotonic clock (the same clock, read
// through the vDSO) then advances: arming costs no system call besides
// timerfd_settime, and a system call through the runtime wakes its monitor
// thread.
func (t *fdTimer) monoNow() (int64, error) {
	if t.baseT.IsZero() {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			return 0, err
		}
		t.base, t.baseT = ts.Nano(), time.Now()
	}
	return t.base + int64(time.Since(t.baseT)), nil
}

// armAt sets fd to expire at the CLOCK_MONOTONIC time at (t.mu held).
func (t *fdTimer) armAt(fd int, at int64) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(at)}
	_, _, errno := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(fd), unix.TFD_TIMER_ABSTIME, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	if fd == t.active() {
		t.deadline = at
		if t.bfd != 0 {
			// A deadline already past (a turn that put a due timer back,
			// as inputFirst does while adverts wait to be read) fires the
			// poller's fd at once: a backstop would only run the same
			// expiry again, on a second thread competing with the reader
			// for the CPUs. It is disarmed (a zero setting) instead.
			// So is a backstop whose budget is spent.
			spec.Value = unix.Timespec{}
			if now, err := t.monoNow(); err == nil && at > now && t.backstopAllowed(now) {
				spec.Value = unix.NsecToTimespec(at + backstopDelay.Nanoseconds())
			}
			// A refusal leaves the backstop where it was: it fires late
			// or early, and an expiry that finds nothing due is harmless.
			unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(t.bfd), unix.TFD_TIMER_ABSTIME, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
		}
	}
	return nil
}

// Close stops the timer's goroutine and frees the fds. A read blocked on a
// timerfd is not woken by closing it: the thread's timer is set to expire
// at once instead.
func (t *fdTimer) Close() {
	t.mu.Lock()
	if t.closed || t.f == nil {
		t.closed = true
		t.mu.Unlock()
		return
	}
	t.closed = true
	if t.thread && t.arm(t.tfd, time.Nanosecond) != nil {
		// The thread cannot be woken: it is left blocked on its fd (a
		// timerfd that cannot be set is broken anyway).
		t.mu.Unlock()
		return
	}
	if t.bfd != 0 {
		// Every backstop thread must read an expiry to see the close: a
		// firing wakes both, but only one reads it. The fd fires every
		// millisecond until both have.
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(1), Interval: unix.NsecToTimespec(int64(time.Millisecond))}
		if err := unix.TimerfdSettime(t.bfd, 0, &spec, nil); err != nil {
			t.bfd = 0 // the threads stay blocked: a timerfd that cannot be set is broken anyway
		}
	}
	t.mu.Unlock()
	t.f.Close() // wakes the poller's wait
	t.wg.Wait()
	if t.tfd != 0 {
		unix.Close(t.tfd)
	}
	if t.bfd != 0 {
		t.bwg.Wait()
		unix.Close(t.bfd)
	}
}

// newWakeTimer returns the timer Options ask for, calling f, falling back
// to the Go runtime's when no timerfd can be had.
func (e *Engine) newWakeTimer(f func()) wakeTimer {
	if e.opts.PreciseTimer {
		t, err := newFDTimer(f, e.opts.TimerThread)
		if err == nil {
			return t
		}
		e.log.Warn("no timerfd; VRRP timers run on the Go runtime's (millisecond) resolution", "err", err)
	}
	return newGoTimer(f)
}
