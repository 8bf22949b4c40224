package probe

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/check"
)

// TCP is TCP_CHECK: it connects to the target and closes the connection
// (keepalived 2.2.7 check_tcp.c: a completed connect is success, a refused,
// unreachable or timed-out one is failure).
//
// Concurrency: Check may be called concurrently.
type TCP struct {
	Conn Conn
}

// Check connects and closes.
func (t *TCP) Check(ctx context.Context) check.Result {
	start := time.Now()
	fd, err := t.Conn.connect(ctx)
	if err != nil {
		return check.Result{
			Reason:    fmt.Sprintf("connect %s: %s", t.Conn.Target(), describe(err, t.Conn.timeout())),
			NoVerdict: check.OutOfResources(err),
			Latency:   elapsed(start),
		}
	}
	unix.Close(fd)
	return check.Result{OK: true, Reason: "connected", Latency: elapsed(start)}
}
