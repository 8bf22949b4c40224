package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Listener is the manager's end of the protocol: a unixgram socket that
// receives notifications. Tests (here, in the engine and in the packaging
// test) use it in place of systemd. It is safe for use by one goroutine.
type Listener struct {
	conn *net.UnixConn
	addr string
}

// Listen binds a unixgram socket at addr (a path, or "@name" for an abstract
// socket) for NOTIFY_SOCKET=addr.
func Listen(addr string) (*Listener, error) {
	if strings.HasPrefix(addr, "/") {
		_ = os.Remove(addr)
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("sdnotify: listen %s: %w", addr, err)
	}
	return &Listener{conn: c, addr: addr}, nil
}

// Addr is the value to put in NOTIFY_SOCKET.
func (l *Listener) Addr() string { return l.addr }

// Close closes the socket and removes its file.
func (l *Listener) Close() error {
	err := l.conn.Close()
	if strings.HasPrefix(l.addr, "/") {
		_ = os.Remove(l.addr)
	}
	return err
}

// Next returns the next message's assignments, waiting until ctx is done.
func (l *Listener) Next(ctx context.Context) (map[string]string, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(24 * time.Hour)
	}
	buf := make([]byte, 64<<10)
	for {
		// Wake up now and then to notice a cancelled ctx without a deadline.
		_ = l.conn.SetReadDeadline(minTime(dl, time.Now().Add(200*time.Millisecond)))
		n, err := l.conn.Read(buf)
		if err == nil {
			return ParseMessage(buf[:n]), nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, fmt.Errorf("sdnotify: read: %w", err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sdnotify: waiting for a notification: %w", ctx.Err())
		}
		if !time.Now().Before(dl) {
			return nil, fmt.Errorf("sdnotify: waiting for a notification: %w", context.DeadlineExceeded)
		}
	}
}

// WaitFor returns the first message that has key=value, skipping others
// (their keys are appended to skipped when it is not nil).
func (l *Listener) WaitFor(ctx context.Context, key, value string, skipped *[]map[string]string) (map[string]string, error) {
	for {
		m, err := l.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w (wanted %s=%s)", err, key, value)
		}
		if m[key] == value {
			return m, nil
		}
		if skipped != nil {
			*skipped = append(*skipped, m)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ParseMessage splits a datagram into its assignments. A later assignment of
// the same key overrides an earlier one.
func ParseMessage(b []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// CheckReloading checks that m is a RELOADING=1 message whose MONOTONIC_USEC
// is a CLOCK_MONOTONIC time no later than now, as systemd ≥ 253 requires.
func CheckReloading(m map[string]string, now time.Duration) error {
	if m["RELOADING"] != "1" {
		return fmt.Errorf("sdnotify: not a RELOADING=1 message: %v", m)
	}
	us, err := strconv.ParseInt(m["MONOTONIC_USEC"], 10, 64)
	if err != nil || us <= 0 {
		return fmt.Errorf("sdnotify: RELOADING=1 without a valid MONOTONIC_USEC: %q", m["MONOTONIC_USEC"])
	}
	if time.Duration(us)*time.Microsecond > now {
		return fmt.Errorf("sdnotify: MONOTONIC_USEC=%d is in the future (now %d)", us, now.Microseconds())
	}
	return nil
}
