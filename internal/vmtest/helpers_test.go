package vmtest

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

var vip = netip.MustParseAddr("192.168.118.110")

// realServer makes h a real server of the seed's LVS-DR shape: the VIP on
// lo, arp_ignore=1 / arp_announce=2, and a line echo server on :80 that
// prefixes each reply with the server's name.
func realServer(t *testing.T, h *lab.Host, name string) {
	t.Helper()
	if _, err := h.Run("ip", "addr", "add", vip.String()+"/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	for _, ifc := range []string{"all", "lo", "eth0"} {
		if err := h.Sysctl("net/ipv4/conf/"+ifc+"/arp_ignore", "1"); err != nil {
			t.Fatal(err)
		}
		if err := h.Sysctl("net/ipv4/conf/"+ifc+"/arp_announce", "2"); err != nil {
			t.Fatal(err)
		}
	}
	var ln net.Listener
	if err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", ":80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	conns := map[net.Conn]bool{}
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewScanner(c)
				for r.Scan() {
					if _, err := fmt.Fprintf(c, "%s %s\n", name, r.Text()); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// vigilNode starts vigil with conf in h and waits for its API.
func vigilNode(t *testing.T, h *lab.Host, conf string) *e2e.Node {
	t.Helper()
	n := e2e.NewNode(e2e.Vigil, h, netnstest.VigilBinary(t), t.TempDir())
	if err := n.WriteConfig(conf); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			t.Logf("%s log:\n%s", n.Name(), n.AllLogs())
		}
	})
	if err := n.WaitReady(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last error %v)", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// addrs reads h's addresses over netlink (no process to start).
func addrs(t *testing.T, h *lab.Host) *e2e.Addrs {
	t.Helper()
	a, err := e2e.OpenAddrs(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}
