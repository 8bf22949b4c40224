package hb

import (
	"context"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// pinger sends ICMP echo to the ping nodes every interval and reports, on
// each change, how many ping nodes and ping groups are reachable (heard
// within deadping), as heartbeat's ping/ping_group media do.
type pinger struct {
	nodes    []netip.Addr
	groups   [][]netip.Addr
	interval time.Duration
	deadping time.Duration
	id       int
}

func (p *pinger) targets() []netip.Addr {
	out := append([]netip.Addr(nil), p.nodes...)
	for _, g := range p.groups {
		out = append(out, g...)
	}
	return out
}

func (p *pinger) count(last map[netip.Addr]time.Time, now time.Time) int {
	alive := func(a netip.Addr) bool { t, ok := last[a]; return ok && now.Sub(t) < p.deadping }
	n := 0
	for _, a := range p.nodes {
		if alive(a) {
			n++
		}
	}
	for _, g := range p.groups {
		for _, a := range g {
			if alive(a) {
				n++
				break
			}
		}
	}
	return n
}

// run owns conn until ctx ends; it sends counts to out.
func (p *pinger) run(ctx context.Context, conn *icmp.PacketConn, out chan<- int, status func(map[netip.Addr]time.Time)) {
	defer conn.Close()
	known := map[netip.Addr]bool{}
	for _, a := range p.targets() {
		known[a] = true
	}
	replies := make(chan netip.Addr, 16)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				close(replies)
				return
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			if e, ok := m.Body.(*icmp.Echo); !ok || e.ID != p.id {
				continue
			}
			if ip, ok := peer.(*net.IPAddr); ok {
				// Only a ping node's reply counts: anyone can send an
				// echo reply with our id (it is in every request), and
				// one from each of a million sources would otherwise
				// each take a place in last.
				if a, ok := netip.AddrFromSlice(ip.IP.To4()); ok && known[a] {
					select {
					case replies <- a:
					default:
					}
				}
			}
		}
	}()
	last := map[netip.Addr]time.Time{}
	prev := -1
	seq := 0
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	send := func() {
		seq++
		for _, a := range p.targets() {
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: seq & 0xffff, Data: []byte("vigil-hb")}}
			b, _ := msg.Marshal(nil)
			_, _ = conn.WriteTo(b, &net.IPAddr{IP: a.AsSlice()})
		}
	}
	report := func() {
		c := p.count(last, time.Now())
		if c != prev {
			prev = c
			select {
			case out <- c:
			case <-ctx.Done():
			}
		}
		if status != nil {
			cp := make(map[netip.Addr]time.Time, len(last))
			for k, v := range last {
				cp[k] = v
			}
			status(cp)
		}
	}
	send()
	for {
		select {
		case <-ctx.Done():
			conn.Close()
			for range replies {
			}
			return
		case a, ok := <-replies:
			if !ok {
				return
			}
			last[a] = time.Now()
			report()
		case <-tick.C:
			send()
			report()
		}
	}
}

func newPingID() int { return (os.Getpid() ^ 0x5648) & 0xffff }
