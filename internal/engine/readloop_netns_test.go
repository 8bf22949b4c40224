package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// realConnNet is the fake host with real VRRP sockets, opened in a lab
// host's namespace.
type realConnNet struct {
	*fakeHost
	ns *lab.Host
}

func (n realConnNet) OpenConn(cfg vrrpnet.Config) (Conn, error) {
	var c *vrrpnet.Conn
	err := n.ns.Do(func() (err error) { c, err = vrrpnet.Listen(cfg); return err })
	if err != nil {
		return nil, err
	}
	return c, nil
}

// TestReopenWhileReaderWaits: the reader takes its turn inside the
// socket's read loop, and the engine closes sockets with its state held
// (an interface created again, a source address changed, a reload). A
// socket closed while its reader waits for the state must not wait for the
// reader (which waits for the closer): here the socket is reopened with the
// reader stuck in its turn, the old reader then ends, the new socket
// delivers, and the engine stops.
func TestReopenWhileReaderWaits(t *testing.T) {
	l := netnstest.New(t, "eng")
	peer := netnstest.AddHost(t, l, "peer", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
	self := netnstest.AddHost(t, l, "self", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.106/24"}})
	netnstest.WaitLANReady(t, l, peer, self)
	var tx *vrrpnet.Conn
	if err := peer.Do(func() (err error) {
		tx, err = vrrpnet.Listen(vrrpnet.Config{Interface: "eth0", Family: vrrpnet.IPv4})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	send := func() {
		t.Helper()
		// No VRRP message: the codec drops it, after the reader's turn
		// has taken the engine's state.
		if err := tx.WritePacket(make([]byte, 20), netip.Addr{}, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}

	h := newFakeHost(&fakeLAN{}, "self", map[string]string{"eth0": "192.168.1.106/24"})
	e, err := New(runspec.Spec{Instances: []runspec.InstanceSpec{tutorialInstance(vrrp.StateBackup, 90)}}, Options{Net: realConnNet{h, self}})
	if err != nil {
		t.Fatal(err)
	}
	n := runNode(t, h, e)
	sock := func() *vrrpnet.Conn {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, c := range e.conns {
			return c.c.(*vrrpnet.Conn)
		}
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for sock() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the engine opened no socket within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	old := sock()

	e.mu.Lock()
	send()
	for e.rxTurns.Load() == 0 {
		if time.Now().After(deadline) {
			e.mu.Unlock()
			t.Fatal("the reader took no turn within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	// The reader now waits for e.mu inside its read loop.
	reopened := make(chan struct{})
	go func() {
		addrs, err := e.opts.Net.Addrs()
		if err != nil {
			t.Error(err)
		}
		e.reattach(time.Now(), e.insts[0], addrs)
		close(reopened)
	}()
	select {
	case <-reopened:
	case <-time.After(10 * time.Second):
		e.mu.Unlock()
		<-reopened
		t.Fatal("closing the socket waited for its reader's turn")
	}
	e.mu.Unlock()

	cur := sock()
	if cur == nil || cur == old {
		t.Fatalf("socket %p after the reopen, was %p", cur, old)
	}
	for deadline := time.Now().Add(10 * time.Second); cur.Stats().Received == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the new socket delivered nothing within 10 s")
		}
		send()
		time.Sleep(10 * time.Millisecond)
	}
	stopped := make(chan error, 1)
	n.cancel()
	go func() { stopped <- n.wait() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the engine did not stop within 10 s (a reader still running?)")
	}
}
