// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) without libsystemd: datagrams of newline-separated
// KEY=VALUE assignments sent to the unix socket named by $NOTIFY_SOCKET.
//
// A Notifier built from an empty NOTIFY_SOCKET is disabled: every method
// returns nil and sends nothing, so the daemon calls it unconditionally and
// behaves the same outside systemd.
//
// Concurrency: a Notifier is safe for concurrent use; each message is one
// datagram on its own connection.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends state changes to the service manager.
type Notifier struct {
	addr string // socket path, or "@name" for an abstract socket; "" = disabled
	// Monotonic returns CLOCK_MONOTONIC, as systemd reads it for
	// MONOTONIC_USEC. Tests replace it.
	Monotonic func() (time.Duration, error)
}

// New returns a notifier for the socket address addr as systemd puts it in
// NOTIFY_SOCKET: an absolute path, or "@name" for an abstract socket. An empty
// addr gives a disabled notifier.
func New(addr string) *Notifier {
	return &Notifier{addr: addr, Monotonic: monotonic}
}

// FromEnv returns a notifier for $NOTIFY_SOCKET read through getenv (pass
// os.Getenv).
func FromEnv(getenv func(string) string) *Notifier { return New(getenv("NOTIFY_SOCKET")) }

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Send sends the assignments in one datagram, e.g. Send("READY=1",
// "STATUS=serving"). Assignments must not contain newlines.
func (n *Notifier) Send(assignments ...string) error {
	if !n.Enabled() {
		return nil
	}
	for _, a := range assignments {
		if strings.ContainsRune(a, '\n') || !strings.Contains(a, "=") {
			return fmt.Errorf("sdnotify: bad assignment %q", a)
		}
	}
	if n.addr[0] != '/' && n.addr[0] != '@' {
		// sd_notify(3): only absolute paths and abstract names are valid
		// (vsock addresses, which systemd also accepts, are not supported).
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET %q: not an absolute path or @abstract name", n.addr)
	}
	// Go maps a leading '@' to the abstract namespace (a leading NUL byte),
	// which is what systemd means by it.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	msg := strings.Join(assignments, "\n") + "\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sdnotify: send %q: %w", strings.Join(assignments, ","), err)
	}
	return nil
}

// Ready tells the manager that start-up (or a reload) is complete. status, if
// not empty, is sent as STATUS= in the same datagram.
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.Send("READY=1")
	}
	return n.Send("READY=1", "STATUS="+oneLine(status))
}

// Reloading tells the manager that a configuration reload starts; send
// Ready when it is done. systemd ≥ 253 (Type=notify-reload) wants
// MONOTONIC_USEC, the CLOCK_MONOTONIC time of the reload, in the same
// datagram (sd_notify(3)); older versions ignore it.
func (n *Notifier) Reloading() error {
	if !n.Enabled() {
		return nil
	}
	now, err := n.Monotonic()
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return n.Send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(now.Microseconds(), 10))
}

// Stopping tells the manager that the daemon is shutting down.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }

// Status sets the free-form status line `systemctl status` shows.
func (n *Notifier) Status(s string) error { return n.Send("STATUS=" + oneLine(s)) }

// Ping sends one WATCHDOG=1 keep-alive.
func (n *Notifier) Ping() error { return n.Send("WATCHDOG=1") }

// WatchdogInterval returns the watchdog timeout the manager set for this
// process (WATCHDOG_USEC), or 0 when none is set or it is meant for another
// process (WATCHDOG_PID names a different pid), as sd_watchdog_enabled(3).
// A malformed value is an error.
func WatchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	us := getenv("WATCHDOG_USEC")
	if us == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(us, 10, 63)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q: not a positive integer", us)
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		wp, err := strconv.Atoi(p)
		if err != nil || wp <= 0 {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID=%q: not a pid", p)
		}
		if wp != pid {
			return 0, nil
		}
	}
	return time.Duration(v) * time.Microsecond, nil
}

// Watchdog pings the manager every interval/2 while healthy returns true,
// until ctx is done; it returns nil at once when interval is 0 (no watchdog)
// or the notifier is disabled. When healthy returns false no ping is sent,
// so a wedged engine lets systemd's WatchdogSec expire and restart the
// service, which is the point. healthy must not block for long: it is called
// on the loop's goroutine (the engine answers it from its own loop with a
// deadline). Send errors are returned through report (may be nil) and do
// not stop the loop: a manager restart (daemon-reexec) is transient.
func (n *Notifier) Watchdog(ctx context.Context, interval time.Duration, healthy func(context.Context) bool, report func(error)) error {
	if interval <= 0 || !n.Enabled() {
		return nil
	}
	period := interval / 2
	tick := time.NewTicker(period)
	defer tick.Stop()
	ping := func() {
		hctx, cancel := context.WithTimeout(ctx, period)
		ok := healthy(hctx)
		cancel()
		if !ok || ctx.Err() != nil {
			return
		}
		if err := n.Ping(); err != nil && report != nil {
			report(err)
		}
	}
	ping()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			ping()
		}
	}
}

// Monotonic reads CLOCK_MONOTONIC, the clock systemd compares
// MONOTONIC_USEC with.
func Monotonic() (time.Duration, error) { return monotonic() }

func monotonic() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_MONOTONIC): %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
