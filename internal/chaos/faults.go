package chaos

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// step is one action of the schedule.
type step struct {
	at   time.Duration
	f    int // index into the plan
	heal bool
	k    int // rolling reloads: which node
}

// execute runs the plan's actions at their times from start.
func (c *cluster) execute(ctx context.Context, start time.Time, plan []Fault) error {
	c.mu.Lock()
	c.applied = make([]Applied, len(plan))
	for i, f := range plan {
		c.applied[i] = Applied{Fault: f}
	}
	c.mu.Unlock()
	var steps []step
	for i, f := range plan {
		switch f.Kind {
		case ReloadVIPs, ReloadPrio:
			for k := range c.nodes {
				steps = append(steps, step{at: f.At + time.Duration(k)*f.Step, f: i, k: k, heal: k == len(c.nodes)-1})
			}
		case VIPDelete:
			steps = append(steps, step{at: f.At, f: i})
		default:
			steps = append(steps, step{at: f.At, f: i}, step{at: f.End(), f: i, heal: true})
		}
	}
	slices.SortStableFunc(steps, func(a, b step) int { return int(a.at - b.at) })
	for _, s := range steps {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(s.at))):
		}
		c.act(plan[s.f], s)
	}
	return nil
}

// set updates the record of fault n.
func (c *cluster) set(n int, f func(a *Applied)) {
	c.mu.Lock()
	f(&c.applied[n-1])
	c.mu.Unlock()
}

func (c *cluster) get(n int) Applied {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied[n-1]
}

// act performs one step of a fault.
func (c *cluster) act(f Fault, s step) {
	now := time.Now()
	a := c.get(f.N)
	if a.Skipped != "" {
		return
	}
	first := s.k == 0 && !s.heal || f.Kind == VIPDelete || (s.k == 0 && (f.Kind == ReloadVIPs || f.Kind == ReloadPrio))
	if first {
		c.set(f.N, func(a *Applied) { a.Start = now })
		c.logf("%s", f)
	}
	healed := func() { c.set(f.N, func(a *Applied) { a.Heal = time.Now() }) }
	fail := func(err error) {
		c.logf("  #%d %s: %v", f.N, f.Kind, err)
	}
	target := func() *node {
		if f.Node >= 0 {
			return c.nodes[f.Node]
		}
		return nil
	}
	switch f.Kind {
	case Kill:
		n := target()
		if !s.heal {
			c.set(f.N, func(a *Applied) { a.Targets = []int{n.i} })
			c.expect(n)
			n.d.Kill()
			return
		}
		if n.d.Running() {
			healed()
			return
		}
		if err := c.start(n); err != nil {
			fail(err)
			healed()
			return
		}
		// Healed when the daemon answers again (vigil's API, keepalived's
		// VRRP child): its boot is part of the fault.
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := n.d.WaitReady(30 * time.Second); err != nil {
				fail(err)
			}
			healed()
		}()
	case Stop:
		n := target()
		pid, err := n.d.VRRPPid()
		if err != nil || !n.d.Running() {
			if !s.heal {
				c.set(f.N, func(a *Applied) { a.Skipped = "daemon not running" })
			} else {
				healed()
			}
			return
		}
		if !s.heal {
			c.set(f.N, func(a *Applied) { a.Targets = []int{n.i} })
			syscall.Kill(pid, syscall.SIGSTOP)
			return
		}
		syscall.Kill(pid, syscall.SIGCONT)
		healed()
	case Link:
		n := target()
		if !s.heal {
			c.set(f.N, func(a *Applied) { a.Targets = []int{n.i} })
			if err := n.host.SetCable("eth0", false); err != nil {
				fail(err)
			}
			return
		}
		if err := n.host.SetCable("eth0", true); err != nil {
			fail(err)
		}
		healed()
	case Loss, OneWay:
		n := target()
		if !s.heal {
			c.set(f.N, func(a *Applied) { a.Targets = []int{n.i} })
			rules := fmt.Sprintf("table inet chaos {\n chain cin { type filter hook input priority -300; iifname \"eth0\" numgen random mod 100 < %d drop; }\n", f.Loss)
			if f.Kind == Loss {
				rules += fmt.Sprintf(" chain cout { type filter hook output priority -300; oifname \"eth0\" numgen random mod 100 < %d drop; }\n", f.Loss)
				rules += fmt.Sprintf(" chain cfwd { type filter hook forward priority -300; numgen random mod 100 < %d drop; }\n", f.Loss)
			} else {
				rules = "table inet chaos {\n chain cin { type filter hook input priority -300; iifname \"eth0\" drop; }\n"
			}
			rules += "}\n"
			if err := nft(n.host.NS(), rules); err != nil {
				fail(err)
			}
			return
		}
		if _, err := n.host.Run("nft", "delete", "table", "inet", "chaos"); err != nil {
			fail(err)
		}
		healed()
	case Partition:
		if !s.heal {
			c.set(f.N, func(a *Applied) { a.Targets = f.Side })
			var a, b []string
			for _, n := range c.nodes {
				front, back := n.host.Iface("eth0").Peer, n.host.Iface("eth1").Peer
				if slices.Contains(f.Side, n.i) {
					a = append(a, front, back)
				} else {
					b = append(b, front, back)
				}
			}
			// The client and the real servers are on one side: a split
			// LAN, not a switch that lets third parties hear both sides
			// (whose ARP caches would follow the other side's gratuitous
			// ARP and age out only seconds after the heal).
			others := []string{c.client.Iface("eth0").Peer}
			for _, h := range c.rs {
				others = append(others, h.Iface("eth0").Peer)
			}
			if f.ClientWithSide {
				a = append(a, others...)
			} else {
				b = append(b, others...)
			}
			set := func(xs []string) string { return `{ "` + strings.Join(xs, `", "`) + `" }` }
			rules := fmt.Sprintf("table bridge chaos {\n chain cfwd {\n  type filter hook forward priority 0;\n  iifname %s oifname %s drop\n  iifname %s oifname %s drop\n }\n}\n",
				set(a), set(b), set(b), set(a))
			if err := nft(c.l.SwitchNS(), rules); err != nil {
				fail(err)
			}
			return
		}
		if out, err := exec.Command("ip", "netns", "exec", c.l.SwitchNS(), "nft", "delete", "table", "bridge", "chaos").CombinedOutput(); err != nil {
			fail(fmt.Errorf("%v: %s", err, out))
		}
		healed()
	case ReloadVIPs, ReloadPrio:
		if s.k == 0 {
			if f.Kind == ReloadVIPs {
				c.extra = !c.extra
			}
			c.set(f.N, func(a *Applied) { a.Targets = []int{0, 1, 2} })
		}
		n := c.nodes[s.k]
		if f.Kind == ReloadPrio {
			n.prio = f.Prio[s.k]
		}
		if err := n.d.WriteConfig(c.conf(n)); err != nil {
			fail(err)
		}
		if n.d.Running() {
			if err := n.d.Proc().Signal(syscall.SIGHUP); err != nil {
				fail(err)
			}
		}
		if s.heal {
			healed()
			if f.Kind == ReloadVIPs {
				c.mu.Lock()
				c.config = append(c.config, ConfigChange{At: c.applied[f.N-1].Heal, Addr: VIPExtra, On: c.extra})
				c.mu.Unlock()
				c.logf("  %v now configured: %v", VIPExtra, c.extra)
			}
		}
	case VIPDelete:
		h := c.holder()
		if h < 0 {
			c.set(f.N, func(a *Applied) { a.Skipped = "no single holder"; a.Heal = now })
			return
		}
		c.set(f.N, func(a *Applied) { a.Targets = []int{h} })
		if _, err := c.nodes[h].host.Run("ip", "addr", "del", VIPFront.String()+"/24", "dev", "eth0"); err != nil {
			fail(err)
		}
		healed()
	case RSFlap:
		if !s.heal {
			if c.srv[f.RS] == nil {
				c.set(f.N, func(a *Applied) { a.Skipped = "real server already down" })
				return
			}
			if err := c.srv[f.RS].Close(); err != nil {
				fail(err)
			}
			c.srv[f.RS] = nil
			return
		}
		srv, err := e2e.StartServer(c.rs[f.RS], 80)
		if err != nil {
			fail(err)
		} else {
			c.srv[f.RS] = srv
		}
		healed()
	case CPUHog:
		n := target()
		if !s.heal {
			c.set(f.N, func(a *Applied) { a.Targets = []int{n.i} })
			for range 2 {
				p, err := n.host.Start("sha256sum", "/dev/zero")
				if err != nil {
					fail(err)
					continue
				}
				n.hogs = append(n.hogs, p)
			}
			return
		}
		for _, p := range n.hogs {
			p.Kill()
		}
		n.hogs = nil
		healed()
	case Handover:
		if !s.heal {
			h := c.holder()
			switch {
			case h < 0:
				c.set(f.N, func(a *Applied) { a.Skipped = "no single holder" })
				return
			case c.nodes[h].d.Kind != e2e.Vigil:
				c.set(f.N, func(a *Applied) { a.Skipped = "the holder runs keepalived" })
				return
			}
			c.set(f.N, func(a *Applied) { a.Targets = []int{h} })
			if out, err := exec.Command(c.o.VigilBin, "handover", "--api-socket", c.nodes[h].d.Socket()).CombinedOutput(); err != nil {
				fail(fmt.Errorf("vigil handover: %v: %s", err, strings.TrimSpace(string(out))))
			}
			return
		}
		n := c.nodes[a.Targets[0]]
		if n.d.Running() {
			if out, err := exec.Command(c.o.VigilBin, "handover", "--reclaim", "--api-socket", n.d.Socket()).CombinedOutput(); err != nil {
				fail(fmt.Errorf("vigil handover --reclaim: %v: %s", err, strings.TrimSpace(string(out))))
			}
		}
		healed()
	}
}
