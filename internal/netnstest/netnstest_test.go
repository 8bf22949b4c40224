package netnstest_test

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

func TestTwoHostsReachEachOther(t *testing.T) {
	l := netnstest.New(t, "ping")
	a := netnstest.AddHost(t, l, "a", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24", "fd00::105/64"}})
	netnstest.AddHost(t, l, "b", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.106/24", "fd00::106/64"}})

	if out, err := a.Run("ping", "-c1", "-W2", "192.168.1.106"); err != nil {
		t.Fatalf("ping v4: %v\n%s", err, out)
	}
	if out, err := a.Run("ping", "-6", "-c1", "-W2", "fd00::106"); err != nil {
		t.Fatalf("ping v6: %v\n%s", err, out)
	}
	out, err := a.Run("ip", "-br", "addr", "show", "dev", "eth0")
	if err != nil || !strings.Contains(out, "192.168.1.105/24") {
		t.Fatalf("eth0 in host a: %v %q", err, out)
	}
}

func TestDoRunsInsideTheHost(t *testing.T) {
	l := netnstest.New(t, "do")
	a := netnstest.AddHost(t, l, "a", lab.Iface{Name: "eth7", LAN: "lan", Addrs: []string{"10.9.0.1/24"}})
	var names []string
	if err := a.Do(func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "lo,eth7" {
		t.Fatalf("interfaces seen inside host: %v, want lo,eth7", names)
	}
}

func TestCloseRemovesNamespacesAndProcesses(t *testing.T) {
	netnstest.RequireRoot(t)
	l, err := lab.New("close")
	if err != nil {
		t.Fatal(err)
	}
	h, err := l.AddHost("a", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.9.0.1/24"}})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	p, err := h.Start("sleep", "600")
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	ns := []string{h.NS(), l.SwitchNS()}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !p.Wait(5 * time.Second) {
		t.Fatalf("process %d still running after Close", p.PID())
	}
	for _, n := range ns {
		if _, err := os.Stat("/run/netns/" + n); !os.IsNotExist(err) {
			t.Errorf("namespace %s still exists after Close (%v)", n, err)
		}
	}
}

func TestSweepRemovesLeftoversOfDeadRuns(t *testing.T) {
	netnstest.RequireRoot(t)
	// A process that has exited: its PID names the leftover namespace.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	name := lab.Prefix + strconv.Itoa(dead) + "-old1-a"
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	// And one of this live process that must survive.
	live := netnstest.New(t, "live")
	if _, err := lab.Sweep(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + name); !os.IsNotExist(err) {
		t.Errorf("leftover %s not swept", name)
	}
	if _, err := os.Stat("/run/netns/" + live.SwitchNS()); err != nil {
		t.Errorf("live namespace %s swept: %v", live.SwitchNS(), err)
	}
}

func TestMulticastCrossesTheLAN(t *testing.T) {
	l := netnstest.New(t, "mcast")
	a := netnstest.AddHost(t, l, "a", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.9.0.1/24"}})
	b := netnstest.AddHost(t, l, "b", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.9.0.2/24"}})
	group := &net.UDPAddr{IP: net.IPv4(224, 0, 0, 18), Port: 9999}
	var rx *net.UDPConn
	if err := b.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		rx, err = net.ListenMulticastUDP("udp4", ifi, group)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := a.Do(func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 9, 0, 1)}, group)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rx.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, src, err := rx.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no multicast datagram arrived: %v", err)
	}
	if string(buf[:n]) != "hello" || !src.IP.Equal(net.IPv4(10, 9, 0, 1)) {
		t.Fatalf("got %q from %v", buf[:n], src)
	}
}
