package probe

import (
	"net"
	"testing"
	"time"
)

// trickle serves every connection with head, then one byte of body every
// 10 ms until the client goes away: each read completes well within any
// connect timeout, and the answer never ends.
func trickle(t *testing.T, head string) net.Addr {
	t.Helper()
	l := listen(t, "127.0.0.1:0")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Write([]byte(head)); err != nil {
					return
				}
				for {
					time.Sleep(10 * time.Millisecond)
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr()
}

// An HTTP_GET target that trickles an endless body used to hold its
// checker forever (keepalived bounds each read only): the attempt now fails
// after attemptSteps connect timeouts, on both paths.
func TestHTTPTrickleBudget(t *testing.T) {
	noLeak(t)
	a := trickle(t, "HTTP/1.0 200 OK\r\n\r\n")
	h := &HTTP{Conn: Conn{Addr: ap(a), Timeout: 50 * time.Millisecond}, URLs: []URL{{Path: "/"}}}
	r := h.Check(ctxT(t))
	if r.OK {
		t.Fatal("check of an endless body succeeded")
	}
	wantReason(t, r.Reason, "still running after 1s (20 × connect_timeout)")
	if p := viaPoller(t, h, 0, nil); p.OK || p.Reason != r.Reason {
		t.Errorf("poller: OK = %v (%s), Check: %s", p.OK, p.Reason, r.Reason)
	}
}

// The same for a header that trickles (4095 bytes at one per connect
// timeout would take over an hour) and an SMTP banner without an end.
func TestTrickledHeaderAndBannerBudget(t *testing.T) {
	noLeak(t)
	h := &HTTP{Conn: Conn{Addr: ap(trickle(t, "HTTP/1.0 200 OK\r\n")), Timeout: 50 * time.Millisecond}, URLs: []URL{{Path: "/"}}}
	// 10 ms a byte: the 4095-byte header limit would end it after 40 s.
	if r := h.Check(ctxT(t)); r.OK {
		t.Error("check of a trickled header succeeded")
	} else {
		wantReason(t, r.Reason, "still running after 1s")
	}
	s := &SMTP{Conn: Conn{Addr: ap(trickle(t, "220")), Timeout: 50 * time.Millisecond}}
	if r := s.Check(ctxT(t)); r.OK {
		t.Error("SMTP check of an endless banner succeeded")
	} else {
		wantReason(t, r.Reason, "read banner from")
		wantReason(t, r.Reason, "still running after 1s")
	}
}
