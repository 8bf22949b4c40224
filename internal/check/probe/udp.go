package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// UDP is UDP_CHECK: it sends one datagram on a connected socket and waits
// connect_timeout. An ICMP destination unreachable (port, host or network)
// fails the check; silence is success unless a reply is required; a reply,
// when required, must have MinReplyLen..MaxReplyLen bytes and match Reply
// under ReplyMask (keepalived 2.2.7 check_udp.c, layer4.c
// udp_socket_state).
//
// Concurrency: Check may be called concurrently.
type UDP struct {
	Conn Conn
	// Payload is sent; nil sends keepalived's 32-byte filler
	// ("keepalived check - " repeated; layer4.c set_buf).
	Payload []byte
	// RequireReply makes silence a failure (require_reply).
	RequireReply bool
	// Reply, when set, must prefix-match the reply over the shorter of
	// both; bits set in ReplyMask are ignored (require_reply HEX_STR, where
	// an x digit sets mask bits).
	Reply, ReplyMask []byte
	// MinReplyLen and MaxReplyLen bound the reply's length
	// (min_reply_length 0, max_reply_length 255 by default); they apply
	// when Reply is set, as in keepalived.
	MinReplyLen, MaxReplyLen int
}

// Filler returns keepalived's default payload for n bytes: "keepalived check - "
// repeated (layer4.c set_buf).
func Filler(n int) []byte {
	const s = "keepalived check - "
	b := make([]byte, n)
	for i := range b {
		b[i] = s[i%len(s)]
	}
	return b
}

// Check sends the datagram and waits for a reply or an ICMP error.
func (u *UDP) Check(ctx context.Context) check.Result {
	start := time.Now()
	to := u.Conn.timeout()
	target := u.Conn.Target()
	fail := func(format string, args ...any) check.Result {
		return check.Result{Reason: fmt.Sprintf(format, args...), Latency: elapsed(start)}
	}
	dl := deadline(ctx, to)
	c, err := u.Conn.dial(ctx, "udp")
	if err != nil {
		return fail("UDP to %s: %s", target, describe(err, to)).WithErr(err)
	}
	stop := closeOnCancel(ctx, c)
	defer func() {
		stop()
		c.Close()
	}()
	_ = c.SetDeadline(dl)
	p := u.Payload
	if p == nil {
		p = Filler(32) // layer4.c UDP_BUFSIZE
	}
	if _, err := c.Write(p); err != nil {
		return fail("UDP to %s: %s", target, udpCause(err, to))
	}
	max := u.MaxReplyLen
	if max <= 0 {
		max = 255
	}
	buf := make([]byte, max+1)
	n, err := c.Read(buf)
	switch {
	case err != nil && isTimeout(err):
		if u.RequireReply {
			return fail("UDP to %s: no reply within %v", target, to)
		}
		return check.Result{OK: true, Reason: fmt.Sprintf("UDP to %s: no ICMP error within %v", target, to), Latency: elapsed(start)}
	case err != nil:
		return fail("UDP to %s: %s", target, udpCause(err, to))
	}
	if u.Reply != nil {
		if why := u.replyMismatch(buf[:n]); why != "" {
			return fail("UDP to %s: reply %s", target, why)
		}
	}
	return check.Result{OK: true, Reason: fmt.Sprintf("UDP to %s: %d-byte reply", target, n), Latency: elapsed(start)}
}

// udpCause names the ICMP error a connected UDP socket reports.
func udpCause(err error, to time.Duration) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		switch se.Err {
		case syscall.ECONNREFUSED:
			return "ICMP port unreachable (connection refused)"
		case syscall.EHOSTUNREACH:
			return "ICMP host unreachable"
		case syscall.ENETUNREACH:
			return "ICMP network unreachable"
		}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && errors.Is(oe.Err, syscall.ECONNREFUSED) {
		return "ICMP port unreachable (connection refused)"
	}
	return describe(err, to)
}

// replyMismatch is check_udp.c check_udp_reply.
func (u *UDP) replyMismatch(got []byte) string {
	max := u.MaxReplyLen
	if max <= 0 {
		max = 255
	}
	if len(got) < u.MinReplyLen || len(got) > max {
		return fmt.Sprintf("length %d outside %d-%d", len(got), u.MinReplyLen, max)
	}
	n := min(len(got), len(u.Reply))
	for i := 0; i < n; i++ {
		var mask byte
		if i < len(u.ReplyMask) {
			mask = u.ReplyMask[i]
		}
		if (got[i]^u.Reply[i])&^mask != 0 {
			return fmt.Sprintf("byte %d is %#02x, want %#02x", i, got[i], u.Reply[i])
		}
	}
	return ""
}

// ParseHexString parses keepalived's free-format hex strings (payload,
// require_reply; lib/parser.c read_hex_str): blank-separated groups of hex
// digits, read two digits per byte, an odd last digit of a group being a
// byte of its own ("Ab12f 3 456" is AB 12 0F 03 45 06). With allowMask, an x
// or X digit matches anything: its bits are set in mask, which is nil when
// no x appears.
func ParseHexString(s string, allowMask bool) (data, mask []byte, err error) {
	hexVal := func(c byte) (byte, bool, bool) { // value, isMask, ok
		switch {
		case c >= '0' && c <= '9':
			return c - '0', false, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, false, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, false, true
		case allowMask && (c == 'x' || c == 'X'):
			return 0, true, true
		}
		return 0, false, false
	}
	bad := func(c byte) error {
		return fmt.Errorf("probe: invalid hex string %q: unexpected %q", s, c)
	}
	usedMask := false
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		v, m, ok := hexVal(s[i])
		if !ok {
			return nil, nil, bad(s[i])
		}
		i++
		var mv byte
		if m {
			mv, usedMask = 0x0f, true
		}
		if i < len(s) && s[i] != ' ' {
			v2, m2, ok := hexVal(s[i])
			if !ok {
				return nil, nil, bad(s[i])
			}
			i++
			v, mv = v<<4|v2, mv<<4
			if m2 {
				mv |= 0x0f
				usedMask = true
			}
		}
		data = append(data, v)
		mask = append(mask, mv)
	}
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("probe: invalid hex string %q: no digits", strings.TrimSpace(s))
	}
	if !usedMask {
		mask = nil
	}
	return data, mask, nil
}
