package probe

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func ap(a net.Addr) netip.AddrPort { return a.(*net.TCPAddr).AddrPort() }

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) netip.AddrPort {
	l := listen(t, "127.0.0.1:0")
	a := ap(l.Addr())
	l.Close()
	return a
}

// fullListener returns a loopback listener whose accept queue is full, so
// the kernel drops further SYNs: a connect to it times out.
func fullListener(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp", a.String(), 200*time.Millisecond)
		if err != nil {
			return a
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue of a loopback listener")
	return a
}

func TestTCP(t *testing.T) {
	noLeak(t)
	ctx := ctxT(t)
	l := listen(t, "127.0.0.1:0")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Run("connects", func(t *testing.T) {
		r := (&TCP{Conn: Conn{Addr: ap(l.Addr())}}).Check(ctx)
		if !r.OK {
			t.Fatalf("check failed: %s", r.Reason)
		}
	})
	t.Run("refused", func(t *testing.T) {
		a := closedPort(t)
		r := (&TCP{Conn: Conn{Addr: a}}).Check(ctx)
		if r.OK {
			t.Fatal("check of a closed port succeeded")
		}
		wantReason(t, r.Reason, "connect "+a.String()+": connection refused")
	})
	t.Run("connect_ip and connect_port override the real server", func(t *testing.T) {
		c := Conn{Addr: closedPort(t), ConnectIP: netip.MustParseAddr("127.0.0.1"), ConnectPort: ap(l.Addr()).Port()}
		if r := (&TCP{Conn: c}).Check(ctx); !r.OK {
			t.Fatalf("check failed: %s", r.Reason)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		a := fullListener(t)
		start := time.Now()
		r := (&TCP{Conn: Conn{Addr: a, Timeout: 300 * time.Millisecond}}).Check(ctx)
		if r.OK {
			t.Fatal("check of a listener that never accepts succeeded")
		}
		wantReason(t, r.Reason, "timeout after 300ms")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("check took %v, connect_timeout is 300ms", d)
		}
	})
}

func TestTCPBindTo(t *testing.T) {
	noLeak(t)
	l := listen(t, "127.0.0.1:0")
	got := make(chan netip.AddrPort, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		got <- ap(c.RemoteAddr())
		c.Close()
	}()
	src := closedPort(t) // a free local port
	c := Conn{Addr: ap(l.Addr()), BindTo: netip.MustParseAddr("127.0.0.2"), BindPort: src.Port()}
	if r := (&TCP{Conn: c}).Check(ctxT(t)); !r.OK {
		t.Fatalf("check failed: %s", r.Reason)
	}
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), src.Port())
	if a := <-got; a != want {
		t.Errorf("server saw the check from %v, want %v (bindto, bind_port)", a, want)
	}
}

func TestConnValidate(t *testing.T) {
	bad := []Conn{
		{},
		{Addr: netip.MustParseAddrPort("10.0.0.1:80"), BindTo: netip.MustParseAddr("fd00::1")},
		{Addr: netip.MustParseAddrPort("[fe80::1]:80")},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", c)
		}
	}
	ok := Conn{Addr: netip.MustParseAddrPort("[fe80::1]:80"), BindIf: "eth0"}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(link-local with bind_if): %v", err)
	}
	if got := ok.Target().String(); got != "[fe80::1%eth0]:80" {
		t.Errorf("Target() = %s, want the bind_if as zone", got)
	}
}

func TestTCPIPv6(t *testing.T) {
	noLeak(t)
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	a := ap(l.Addr())
	if r := (&TCP{Conn: Conn{Addr: a}}).Check(ctxT(t)); !r.OK {
		t.Fatalf("[::1]: %s", r.Reason)
	}
	c := Conn{Addr: netip.AddrPortFrom(netip.MustParseAddr("::1"), closedPort(t).Port()), BindTo: netip.MustParseAddr("::1")}
	r := (&TCP{Conn: c}).Check(ctxT(t))
	if r.OK {
		t.Fatal("closed IPv6 port passed")
	}
	wantReason(t, r.Reason, "connection refused")
}

// TestTCPOutOfDescriptors: with no descriptor left for the socket, the
// attempt gives no verdict (the server may well be up). Not parallel: it
// lowers this process's RLIMIT_NOFILE for a moment.
func TestTCPOutOfDescriptors(t *testing.T) {
	l := listen(t, "127.0.0.1:0")
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = 3 // every descriptor number from 3 up is refused
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	r := (&TCP{Conn: Conn{Addr: ap(l.Addr())}}).Check(ctxT(t))
	rh := (&HTTP{Conn: Conn{Addr: ap(l.Addr()), Timeout: time.Second}, URLs: []URL{{Path: "/"}}}).Check(ctxT(t))
	rs := (&SMTP{Conn: Conn{Addr: ap(l.Addr()), Timeout: time.Second}}).Check(ctxT(t))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	for _, r := range []check.Result{r, rh, rs} {
		if r.OK || !r.NoVerdict {
			t.Errorf("result %+v, want no verdict", r)
		}
	}
	if r := (&TCP{Conn: Conn{Addr: ap(l.Addr())}}).Check(ctxT(t)); !r.OK {
		t.Errorf("with descriptors back: %+v", r)
	}
}
