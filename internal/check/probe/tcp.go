package probe

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/check"
)

// TCP is TCP_CHECK: it connects to the target and closes the connection
// (keepalived 2.2.7 check_tcp.c: a completed connect is success, a refused,
// unreachable or timed-out one is failure).
//
// Concurrency: Check may be called concurrently; Conn must not change once
// checks run.
type TCP struct {
	Conn Conn

	once sync.Once
	ok   string // the success reason, built once
}

// Check connects and closes.
func (t *TCP) Check(ctx context.Context) check.Result {
	start := time.Now()
	fd, err := t.Conn.connect(ctx)
	if err != nil {
		return check.Result{
			Reason:  fmt.Sprintf("connect %s: %s", t.Conn.Target(), describe(err, t.Conn.timeout())),
			Latency: elapsed(start),
		}
	}
	unix.Close(fd)
	t.once.Do(func() { t.ok = "connected to " + t.Conn.Target().String() })
	return check.Result{OK: true, Reason: t.ok, Latency: elapsed(start)}
}
