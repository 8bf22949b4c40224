package procwatch

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// dialInitialNetns retries Dial in another network namespace after the
// listen request was refused in the caller's (refused is the error dialHere
// returned).
//
// The kernel's connector exists only in the initial network namespace
// (drivers/connector/connector.c creates its netlink socket in init_net): a
// connector socket opened in any other network namespace has no kernel peer,
// so the listen request fails with ECONNREFUSED and no event ever arrives.
// vigil is started inside a namespace with `ip netns exec` (it has no
// net_namespace keyword), and process events concern the PID namespace, not
// the network one, so the socket is opened in the initial network namespace
// and used from there: a socket keeps the namespace it was created in.
// keepalived 2.2.7 opens it in its own namespace (track_process.c
// nl_connect), so its vrrp_track_process cannot work from inside one.
//
// The initial namespace is reached through PID 1 and, where PID 1's
// namespaces are hidden (containers, sandboxes), through the parent process:
// the shell, service manager or test that ran `ip netns exec`. Each candidate
// must accept the listen request; entering one needs CAP_SYS_ADMIN.
func dialInitialNetns(rcvBuf int, refused error) (*Conn, error) {
	var errs []error
	for _, ns := range []string{"/proc/1/ns/net", fmt.Sprintf("/proc/%d/ns/net", os.Getppid())} {
		c, err := dialInNetns(ns, rcvBuf)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", ns, err))
	}
	return nil, fmt.Errorf("%w (the proc connector answers only in the initial network namespace, which could not be used: %w)", refused, errors.Join(errs...))
}

// dialInNetns runs dialHere on a locked thread inside the network namespace
// at path (a /proc/PID/ns/net file), unless that is the thread's own.
func dialInNetns(path string, rcvBuf int) (*Conn, error) {
	type result struct {
		c   *Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, err, back := dialLocked(path, rcvBuf)
		if back {
			runtime.UnlockOSThread()
		} // else the thread is stuck in the other namespace: it stays
		// locked and the runtime discards it with the goroutine.
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// dialLocked is dialInNetns on the current, locked thread; back reports
// whether the thread is in its own namespace again.
func dialLocked(path string, rcvBuf int) (c *Conn, err error, back bool) {
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err, true
	}
	defer unix.Close(target)
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err, true
	}
	defer unix.Close(self)
	var a, b unix.Stat_t
	if err := unix.Fstat(target, &a); err != nil {
		return nil, err, true
	}
	if err := unix.Fstat(self, &b); err != nil {
		return nil, err, true
	}
	if a.Dev == b.Dev && a.Ino == b.Ino {
		return nil, errors.New("the same namespace"), true
	}
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("setns: %w", err), true
	}
	c, err = dialHere(rcvBuf)
	return c, err, unix.Setns(self, unix.CLONE_NEWNET) == nil
}
