package ops

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestLogOutputStalledThenGone: the reader of the daemon's stderr first
// stalls (journald busy or restarting: the pipe fills), then goes away
// (the pipe breaks). A master must go on defending its address through
// both, and survive the broken pipe: a write that blocks would hold the
// engine, and SIGPIPE would kill the daemon with the address left on the
// box while the backup takes over.
func TestLogOutputStalledThenGone(t *testing.T) {
	l := netnstest.New(t, "logout")
	n1 := netnstest.AddHost(t, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.53.1/24"}})
	netnstest.WaitLANReady(t, l, n1)
	vip := netip.MustParseAddr("192.168.53.100")

	// stderr goes to a FIFO of one page whose only reader is this test,
	// which never reads: the first few lines fill it.
	fifo := filepath.Join(t.TempDir(), "stderr")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	reader, err := os.OpenFile(fifo, os.O_RDWR, 0) // a reader, so the daemon's open does not wait
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := unix.FcntlInt(reader.Fd(), unix.F_SETPIPE_SZ, os.Getpagesize()); err != nil {
		t.Fatal(err)
	}

	d := newDaemon(t, n1, `global_defs {
    router_id logout
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    version 3
    virtual_router_id 73
    priority 150
    advert_int 0.1
    virtual_ipaddress {
        192.168.53.100/24
    }
}
`)
	d.prelude = "exec 2>" + fifo + ";"
	d.start()
	d.waitFor("MASTER", 20*time.Second, inState("MASTER", "VI_1"))
	addrs, err := e2e.OpenAddrs(n1)
	if err != nil {
		t.Fatal(err)
	}
	defer addrs.Close()

	// removed takes the address away behind the daemon's back and waits
	// for the master to put it back, which it logs.
	removed := func(when string) {
		t.Helper()
		if _, err := n1.Run("ip", "addr", "del", "192.168.53.100/24", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			ok, err := addrs.Has("eth0", vip)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the master did not put %v back within 10 s", when, vip)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Stalled: each reload logs a line; a few dozen overflow the page.
	for range 40 {
		d.signal(syscall.SIGHUP)
		time.Sleep(5 * time.Millisecond)
	}
	if n, err := unix.IoctlGetInt(int(reader.Fd()), unix.TIOCINQ); err != nil || n < os.Getpagesize()-512 {
		t.Fatalf("the log pipe holds %d bytes (%v): the test did not fill it", n, err)
	}
	removed("log output stalled")
	if _, err := d.snapshot(); err != nil {
		t.Fatalf("log output stalled: the API does not answer: %v", err)
	}

	// Gone: the only reader closes; the next write breaks the pipe.
	reader.Close()
	d.signal(syscall.SIGHUP)
	removed("log output gone")
	select {
	case <-d.p.Done():
		t.Fatalf("the daemon died when its log output went away: %v", d.p.Err())
	default:
	}
	if s := d.waitFor("MASTER", 10*time.Second, inState("MASTER", "VI_1")); len(s.Instances) != 1 {
		t.Fatal(fmt.Sprint(s.Instances))
	}
}
