package e2e

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// The tutorial's addresses (seed 000), plus IPv6 ones for the VRRPv3 tests.
var (
	VIP4    = netip.MustParseAddr("192.168.1.100")
	VIP6    = netip.MustParseAddr("fd00::100")
	Client4 = netip.MustParseAddr("192.168.1.10")
	Client6 = netip.MustParseAddr("fd00::10")
)

// NodeAddr4 is the address of node i (0-based): 192.168.1.105, .106, ...
func NodeAddr4(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 168, 1, byte(105 + i)}) }

// NodeAddr6 is fd00::105, fd00::106, ...
func NodeAddr6(i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("fd00::%d", 105+i))
}

// Net is the tutorial's LAN: nodes r1, r2, ... and a client on one switch.
type Net struct {
	Lab    *lab.Lab
	Nodes  []*lab.Host
	Client *lab.Host
}

// BuildNet adds n nodes (r1..rn, eth0 192.168.1.105+i/24 and fd00::105+i/64)
// and a client (192.168.1.10/24, fd00::10/64) on LAN "lan" of l, and waits
// until every port forwards. extra adds that many more interfaces to each
// node (eth1..ethN on LANs lan1..lanN, 10.<k>.0.<i+1>/24), for tests and
// benchmarks with hundreds of instances.
func BuildNet(l *lab.Lab, n, extra int) (*Net, error) {
	nt := &Net{Lab: l}
	for i := range n {
		ifs := []lab.Iface{{Name: "eth0", LAN: "lan", Addrs: []string{
			netip.PrefixFrom(NodeAddr4(i), 24).String(), netip.PrefixFrom(NodeAddr6(i), 64).String()}}}
		for k := 1; k <= extra; k++ {
			ifs = append(ifs, lab.Iface{Name: fmt.Sprintf("eth%d", k), LAN: fmt.Sprintf("lan%d", k),
				Addrs: []string{fmt.Sprintf("10.%d.0.%d/24", k, i+1), fmt.Sprintf("fd%02x::%d/64", k, i+1)}})
		}
		h, err := l.AddHost(fmt.Sprintf("r%d", i+1), ifs...)
		if err != nil {
			return nil, err
		}
		nt.Nodes = append(nt.Nodes, h)
	}
	c, err := l.AddHost("client", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{
		netip.PrefixFrom(Client4, 24).String(), netip.PrefixFrom(Client6, 64).String()}})
	if err != nil {
		return nil, err
	}
	nt.Client = c
	return nt, WaitReady(l, append(nt.Nodes, c)...)
}

// WaitReady waits until every interface of hosts is up and its bridge port
// forwards (as netnstest.WaitLANReady, without a testing.TB).
func WaitReady(l *lab.Lab, hosts ...*lab.Host) error {
	deadline := time.Now().Add(15 * time.Second)
	for _, h := range hosts {
		for _, ifc := range h.Ifaces {
			for {
				host, _ := exec.Command("ip", "-n", h.NS(), "-o", "link", "show", "dev", ifc.Name).Output()
				port, _ := exec.Command("bridge", "-n", l.SwitchNS(), "link", "show", "dev", ifc.Peer).Output()
				if strings.Contains(string(host), "state UP") && strings.Contains(string(port), "state forwarding") {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("e2e: %s %s not ready: %s / %s", h.Name(), ifc.Name, host, port)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	return nil
}

// LinkLocal returns the IPv6 link-local address of dev in h.
func LinkLocal(h *lab.Host, dev string) (netip.Addr, error) {
	a, err := OpenAddrs(h)
	if err != nil {
		return netip.Addr{}, err
	}
	defer a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		as, err := a.List(dev)
		if err != nil {
			return netip.Addr{}, err
		}
		for _, x := range as {
			if x.Prefix.Addr().Is6() && x.Prefix.Addr().IsLinkLocalUnicast() {
				return x.Prefix.Addr(), nil
			}
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, fmt.Errorf("e2e: %s %s has no link-local address", h.Name(), dev)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
