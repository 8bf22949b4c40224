package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
)

// pair is one measurement lab: the tutorial's LAN with two nodes running the
// same daemon (r1 master, priority 100; r2 backup, priority 99), HTTP
// servers on both and the client.
type pair struct {
	b       *bench
	kind    e2e.Kind
	lab     *lab.Lab
	net     *e2e.Net
	nodes   [2]*e2e.Node
	addrs   [2]*e2e.Addrs
	servers []*e2e.Server
}

// newPair builds the lab with extra interfaces per node and starts the
// daemons with confs[0] on r1 and confs[1] on r2. r1 runs alone until the
// named instances are MASTER there.
func (b *bench) newPair(kind e2e.Kind, extra int, confs [2]e2e.Conf, servers bool, instances []string) (*pair, error) {
	l, err := lab.New("bench")
	if err != nil {
		return nil, err
	}
	p := &pair{b: b, kind: kind, lab: l}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	p.net, err = e2e.BuildNet(l, 2, extra)
	if err != nil {
		return nil, err
	}
	for i, h := range p.net.Nodes {
		if p.addrs[i], err = e2e.OpenAddrs(h); err != nil {
			return nil, err
		}
		if servers {
			s, err := e2e.StartServer(h, 80)
			if err != nil {
				return nil, err
			}
			p.servers = append(p.servers, s)
		}
		dir, err := os.MkdirTemp(b.dir, string(kind))
		if err != nil {
			return nil, err
		}
		n := e2e.NewNode(kind, h, b.bin(kind), dir)
		if kind == e2e.Vigil {
			// JSON logs carry nanosecond timestamps.
			n.Args = []string{"--log-format", "json"}
			if b.o.profileDir != "" {
				// Both are profiled in the steady window, the backup
				// also during the failover.
				n.Args = append(n.Args, "--debug-listen", debugAddr)
			}
		}
		confs[i].RouterID = h.Name()
		if err := n.WriteConfig(confs[i].String()); err != nil {
			return nil, err
		}
		p.nodes[i] = n
	}
	// The master first, alone on the LAN until it is master everywhere; the
	// backup then starts into BACKUP without a preemption. (keepalived
	// 2.2.7 with 1,000 instances, started a few seconds before its backup,
	// was still initialising when the backup took the instances over, and
	// then never preempted: it kept logging "received lower priority (99)
	// advert - discarding" for minutes.)
	for _, i := range []int{0, 1} {
		if err := p.nodes[i].Start(); err != nil {
			return nil, err
		}
		if err := p.nodes[i].WaitReady(60 * time.Second); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, p.nodes[i].Log())
		}
		if i == 0 {
			if err := p.waitAll(0, instances, "MASTER", 180*time.Second); err != nil {
				return nil, err
			}
		}
	}
	ok = true
	return p, nil
}

// waitAll waits until every named instance of node i is in state.
func (p *pair) waitAll(i int, instances []string, state string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := p.nodes[i].States(ctx)
		cancel()
		bad := ""
		if err == nil {
			for _, in := range instances {
				if st[in] != state {
					bad = in
					break
				}
			}
			if bad == "" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return &notSteady{err: fmt.Errorf("%s: %s not %s after %v (%v)", p.nodes[i].Name(), bad, state, timeout, err), detail: p.logLines(bad)}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *pair) close() {
	for _, s := range p.servers {
		s.Close()
	}
	for _, n := range p.nodes {
		if n != nil {
			n.Kill()
		}
	}
	for _, a := range p.addrs {
		if a != nil {
			a.Close()
		}
	}
	p.lab.Close()
}

// logs returns both daemons' output, for an error message.
func (p *pair) logs() string {
	var b strings.Builder
	for _, n := range p.nodes {
		log := n.AllLogs()
		if len(log) > 4000 {
			log = "...\n" + log[len(log)-4000:]
		}
		b.WriteString(log)
	}
	return b.String()
}

// waitSteady waits until every named instance is MASTER on r1 and BACKUP on
// r2, r1 holds vip (when valid) and r2 does not, and (when servers run) the
// client's requests are answered by r1.
func (p *pair) waitSteady(instances []string, vip netip.Addr, dev string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	want := [2]string{"MASTER", "BACKUP"}
	for {
		bad, err := p.steady(instances, want, vip, dev)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return &notSteady{err: fmt.Errorf("not steady after %v: %w", timeout, err), detail: p.logLines(bad)}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// notSteady is waitSteady's error: a one-line message and the daemons' log
// lines about the instance at fault.
type notSteady struct {
	err    error
	detail string
}

func (e *notSteady) Error() string { return e.err.Error() + "\n" + e.detail }
func (e *notSteady) Short() string { return e.err.Error() }

// logLines returns the log lines of both daemons that name instance (all
// of the last 4000 bytes when instance is empty).
func (p *pair) logLines(instance string) string {
	if instance == "" {
		return p.logs()
	}
	var b strings.Builder
	for _, n := range p.nodes {
		fmt.Fprintf(&b, "--- %s\n", n.Name())
		for _, l := range strings.Split(n.Log(), "\n") {
			if strings.Contains(l, "("+instance+")") || strings.Contains(l, "instance="+instance+" ") || strings.Contains(l, `"instance":"`+instance+`"`) {
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String()
}

func (p *pair) steady(instances []string, want [2]string, vip netip.Addr, dev string) (string, error) {
	for i, n := range p.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := n.States(ctx)
		cancel()
		if err != nil {
			return "", err
		}
		for _, in := range instances {
			if st[in] != want[i] {
				return in, fmt.Errorf("%s: %s is %q", n.Name(), in, st[in])
			}
		}
	}
	if vip.IsValid() {
		for i, a := range p.addrs {
			has, err := a.Has(dev, vip)
			if err != nil {
				return "", err
			}
			if has != (i == 0) {
				return "", fmt.Errorf("r%d holds %v: %v", i+1, vip, has)
			}
		}
	}
	if len(p.servers) > 0 {
		body, err := p.get(vip)
		if err != nil || body != "r1" {
			return "", fmt.Errorf("client got %q, %v", body, err)
		}
	}
	return "", nil
}

// get makes one HTTP request through addr from the client.
func (p *pair) get(addr netip.Addr) (string, error) {
	var body string
	var gerr error
	err := p.net.Client.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		body, gerr = e2e.Get(ctx, netip.AddrPortFrom(addr, 80))
		return nil
	})
	if err != nil {
		return "", err
	}
	return body, gerr
}

// restartMaster starts r1's daemon again after a kill or a stop and waits
// for it to take the instances back.
func (p *pair) restartMaster(instances []string, vip netip.Addr, dev string) error {
	n := p.nodes[0]
	if err := n.Start(); err != nil {
		return err
	}
	if err := n.WaitReady(60 * time.Second); err != nil {
		return fmt.Errorf("%w\n%s", err, n.Log())
	}
	return p.waitSteady(instances, vip, dev, 60*time.Second)
}
