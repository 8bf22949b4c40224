package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// starveSample is one starvation run: the master's adverts as the LAN saw
// them while hogs ran on its CPU.
type starveSample struct {
	adverts   int
	longest   time.Duration
	over      int // gaps longer than 1.5 advert intervals
	failovers int // the backup's transitions to MASTER
}

// starveRun pins the master (every thread) to one CPU, starts hogs
// `nice -n -20` pinned there too, and for window watches the master's
// adverts on the LAN's bridge and the backup's transitions.
func (p *pair) starveRun(cpu, hogs int, adv, window time.Duration) (starveSample, error) {
	var s starveSample
	pid := p.nodes[0].Pid()
	if out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return s, fmt.Errorf("taskset: %w: %s", err, out)
	}
	sn, err := e2e.StartSnifferNS(p.lab.SwitchNS(), p.lab.Bridge("lan"), nil)
	if err != nil {
		return s, err
	}
	var cmds []*exec.Cmd
	stop := func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}
	for range hogs {
		c := exec.Command("nice", "-n", "-20", "taskset", "-c", strconv.Itoa(cpu), "sha256sum", "/dev/zero")
		if err := c.Start(); err != nil {
			stop()
			sn.Stop()
			return s, fmt.Errorf("hog: %w", err)
		}
		cmds = append(cmds, c)
	}
	start := time.Now()
	time.Sleep(window)
	end := time.Now()
	stop()
	if err := sn.Stop(); err != nil {
		return s, err
	}
	var at []time.Time
	for _, f := range sn.Frames() {
		if v, ok := e2e.ParseVRRP(f.Data); ok && v.VRID == 55 && v.Src == e2e.NodeAddr4(0) && !f.At.Before(start) && !f.At.After(end) {
			at = append(at, f.At)
		}
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	s.adverts = len(at)
	for i := 1; i < len(at); i++ {
		g := at[i].Sub(at[i-1])
		s.longest = max(s.longest, g)
		if g > adv*3/2 {
			s.over++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := p.nodes[1].Status(ctx)
	if err != nil {
		return s, err
	}
	for _, tr := range st.Transitions {
		if tr.Name == "VI_1" && tr.To == "MASTER" && tr.At.After(start) {
			s.failovers++
		}
	}
	return s, nil
}

// starveTable measures the master under 8 CPU hogs at nice -20 pinned to
// its CPU, at advert_int 0.1, without and with vrrp_rt_priority.
func (b *bench) starveTable(load string) error {
	const adv = 100 * time.Millisecond
	window := b.o.window
	if window == 0 {
		window = 10 * time.Second
	}
	fmt.Fprintf(b.out, "starvation (%s): 8 hogs at nice -20 pinned to the master's CPU, advert_int 0.1, %v\n", load, window)
	w := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scheduling\tadverts\tlongest gap\tgaps > 1.5 × advert_int\tbackup → MASTER\t")
	for _, rt := range []int{0, 50} {
		m, err := singleConf("0.1", true)
		if err != nil {
			return err
		}
		sc, _ := singleConf("0.1", false)
		name := "SCHED_OTHER"
		if rt > 0 {
			m.Global = append(m.Global, fmt.Sprintf("vrrp_rt_priority %d", rt))
			name = fmt.Sprintf("vrrp_rt_priority %d", rt)
		}
		p, err := b.newPair(e2e.Vigil, 0, [2]e2e.Conf{m, sc}, false, vi1)
		if err != nil {
			return err
		}
		if err := p.waitAll(1, vi1, "BACKUP", 60*time.Second); err != nil {
			p.close()
			return err
		}
		time.Sleep(time.Second)
		s, err := p.starveRun(1, 8, adv, window)
		p.close()
		if err != nil {
			return err
		}
		b.vlogf("%s: %+v", name, s)
		fmt.Fprintf(w, "%s\t%d\t%v\t%d\t%d\t\n", name, s.adverts, s.longest.Round(time.Millisecond), s.over, s.failovers)
	}
	return w.Flush()
}
