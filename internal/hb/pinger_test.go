package hb

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// Echo replies carrying the pinger's id from addresses that are no ping
// node (forged: the id is in every request on the LAN) are ignored: each
// used to take a place in the pinger's table of last replies, copied
// whole for every reply, without bound.
func TestPingerIgnoresRepliesFromStrangers(t *testing.T) {
	netnstest.RequireRoot(t)
	l := netnstest.New(t, "hbping")
	h := netnstest.AddHost(t, l, "n", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.9.0.1/24"}})
	if out, err := h.Run("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	const id = 0x4242
	var conn *icmp.PacketConn
	var forgers []*icmp.PacketConn
	if err := h.Do(func() error {
		var err error
		if conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0"); err != nil {
			return err
		}
		for i := 2; i <= 201; i++ {
			c, err := icmp.ListenPacket("ip4:icmp", fmt.Sprintf("127.0.%d.%d", i/256, i%256))
			if err != nil {
				return err
			}
			forgers = append(forgers, c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range forgers {
			c.Close()
		}
	}()
	p := &pinger{nodes: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, interval: 50 * time.Millisecond, deadping: time.Second, id: id}
	var mu sync.Mutex
	most := 0
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan int, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx, conn, out, func(m map[netip.Addr]time.Time) {
			mu.Lock()
			most = max(most, len(m))
			mu.Unlock()
		})
	}()
	go func() {
		for range out {
		}
	}()
	reply, err := (&icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("x")}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range forgers {
		if _, err := c.WriteTo(reply, &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the replies read, the real node's among them
	cancel()
	<-done
	close(out)
	if most > 1 {
		t.Errorf("the pinger kept %d sources for 1 ping node after %d forged replies", most, len(forgers))
	}
}
