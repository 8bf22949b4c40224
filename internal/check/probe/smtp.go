package probe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// DefaultHeloName is SMTP_CHECK's default helo_name (check_smtp.h
// SMTP_DEFAULT_HELO).
const DefaultHeloName = "smtpchecker.keepalived.org"

// SMTP is SMTP_CHECK: it connects, expects a 220 banner, sends HELO and
// expects 250, sends QUIT and reads one more line (keepalived 2.2.7
// check_smtp.c smtp_engine_thread).
//
// Concurrency: Check may be called concurrently.
type SMTP struct {
	Conn Conn
	// HeloName is sent with HELO (helo_name); empty means DefaultHeloName.
	HeloName string
}

// smtpBuf is SMTP_BUFF_MAX.
const smtpBuf = 512

// Check runs one SMTP conversation.
func (s *SMTP) Check(ctx context.Context) check.Result {
	start := time.Now()
	to := s.Conn.timeout()
	target := s.Conn.Target()
	fail := func(format string, args ...any) check.Result {
		return check.Result{Reason: fmt.Sprintf(format, args...), Latency: elapsed(start)}
	}
	c, err := s.Conn.dialConn(ctx)
	if err != nil {
		return fail("connect %s: %s", target, describe(err, to)).WithErr(err)
	}
	stop := closeOnCancel(ctx, c)
	defer func() {
		stop()
		c.Close()
	}()
	actx, cancel := attemptContext(ctx, to)
	defer cancel()
	helo := s.HeloName
	if helo == "" {
		helo = DefaultHeloName
	}
	buf := make([]byte, smtpBuf)
	line, err := smtpLine(actx, c, buf, to)
	if err != nil {
		return fail("read banner from %s: %s", target, describe(overBudget(ctx, actx, err, to), to))
	}
	if smtpStatus(line) != 220 {
		return fail("bad greeting banner from %s: %q", target, line)
	}
	ioDeadline(actx, c, to)
	if _, err := io.WriteString(c, "HELO "+helo+"\r\n"); err != nil {
		return fail("send HELO to %s: %s", target, describe(overBudget(ctx, actx, err, to), to))
	}
	if line, err = smtpLine(actx, c, buf, to); err != nil {
		return fail("read HELO response from %s: %s", target, describe(overBudget(ctx, actx, err, to), to))
	}
	if smtpStatus(line) != 250 {
		return fail("bad HELO response from %s: %q", target, line)
	}
	ioDeadline(actx, c, to)
	if _, err := io.WriteString(c, "QUIT\r\n"); err != nil {
		return fail("send QUIT to %s: %s", target, describe(overBudget(ctx, actx, err, to), to))
	}
	// check_smtp.c SMTP_SENT_QUIT: one more line must arrive; its status
	// is not looked at.
	if _, err = smtpLine(actx, c, buf, to); err != nil {
		return fail("read QUIT response from %s: %s", target, describe(overBudget(ctx, actx, err, to), to))
	}
	return check.Result{OK: true, Reason: fmt.Sprintf("SMTP server %s answered", target), Latency: elapsed(start)}
}

// smtpLine reads until a newline arrives and returns what precedes it
// (check_smtp.c smtp_get_line_cb: each read within connect_timeout; a full
// buffer wraps).
func smtpLine(ctx context.Context, c net.Conn, buf []byte, to time.Duration) ([]byte, error) {
	n := 0
	for {
		if n >= len(buf)-1 {
			n = 0
		}
		ioDeadline(ctx, c, to)
		r, err := c.Read(buf[n : len(buf)-1])
		if r > 0 {
			n += r
			if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
				// The line keeps its '\r', as keepalived's does: a bare
				// "220\r\n" has no space after the status and fails.
				return buf[:i], nil
			}
		}
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// smtpStatus parses the status as check_smtp.c smtp_get_status: exactly
// three digits followed by a space or the end of the line; -1 otherwise. A
// multi-line reply ("220-...") therefore fails, as in keepalived.
func smtpStatus(line []byte) int {
	if len(line) < 3 || (len(line) > 3 && line[3] != ' ') {
		return -1
	}
	v := 0
	for _, c := range line[:3] {
		if c < '0' || c > '9' {
			return -1
		}
		v = v*10 + int(c-'0')
	}
	return v
}
