package packaging

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/sdnotify"
)

// credListener is systemd's end of the notify protocol as far as
// NotifyAccess=main goes: a unixgram socket with SO_PASSCRED, so that each
// message comes with the sender's PID, which systemd compares with the
// service's main PID before it believes the message.
type credListener struct {
	conn *net.UnixConn
	path string
}

func listenNotify(path string) (*credListener, error) {
	_ = os.Remove(path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	raw, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		c.Close()
		return nil, errors.Join(err, serr)
	}
	return &credListener{conn: c, path: path}, nil
}

func (l *credListener) Addr() string { return l.path }

func (l *credListener) Close() error {
	err := l.conn.Close()
	_ = os.Remove(l.path)
	return err
}

// notification is one received message and its sender's PID.
type notification struct {
	fields map[string]string
	pid    int32
}

// next returns the next message, waiting until ctx is done.
func (l *credListener) next(ctx context.Context) (notification, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	for {
		dl := time.Now().Add(200 * time.Millisecond)
		if d, ok := ctx.Deadline(); ok && d.Before(dl) {
			dl = d
		}
		_ = l.conn.SetReadDeadline(dl)
		n, oobn, _, _, err := l.conn.ReadMsgUnix(buf, oob)
		if err == nil {
			msg := notification{fields: sdnotify.ParseMessage(buf[:n]), pid: -1}
			if cms, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for i := range cms {
					if cred, err := syscall.ParseUnixCredentials(&cms[i]); err == nil {
						msg.pid = cred.Pid
					}
				}
			}
			return msg, nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return notification{}, err
		}
		if ctx.Err() != nil {
			return notification{}, ctx.Err()
		}
	}
}

// waitFor returns the first message with key=value. Every message read on
// the way, that one included, must come from pid (NotifyAccess=main: systemd
// ignores the others); skipped ones are appended to skipped.
func (l *credListener) waitFor(ctx context.Context, key, value string, pid int, skipped *[]map[string]string) (map[string]string, error) {
	for {
		m, err := l.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("waiting for %s=%s: %w", key, value, err)
		}
		if int(m.pid) != pid {
			return nil, fmt.Errorf("message %v came from pid %d, not the main pid %d: systemd (NotifyAccess=main) would ignore it", m.fields, m.pid, pid)
		}
		if m.fields[key] == value {
			return m.fields, nil
		}
		if skipped != nil {
			*skipped = append(*skipped, m.fields)
		}
	}
}
