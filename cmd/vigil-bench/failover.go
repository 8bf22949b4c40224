package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/netif"
)

// singleConf is the tutorial's instance (VRRPv2 at whole seconds) or its
// VRRPv3 twin at a sub-second advert_int.
func singleConf(adv string, master bool) (e2e.Conf, error) {
	d, err := interval(adv)
	if err != nil {
		return e2e.Conf{}, err
	}
	in := e2e.Tutorial(master)
	in.AdvertInt = adv
	if version(d) == 3 {
		in.Version, in.AuthPass = 3, ""
	}
	return e2e.Conf{Instances: []e2e.Instance{in}}, nil
}

var vi1 = []string{"VI_1"}

// singlePair builds a pair running the single instance at adv.
func (b *bench) singlePair(kind e2e.Kind, adv string) (*pair, error) {
	m, err := singleConf(adv, true)
	if err != nil {
		return nil, err
	}
	s, _ := singleConf(adv, false)
	p, err := b.newPair(kind, 0, [2]e2e.Conf{m, s}, true, vi1)
	if err != nil {
		return nil, err
	}
	if err := p.waitSteady(vi1, e2e.VIP4, "eth0", 60*time.Second); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// failoverSample is one kill -9, measured from the master's last advert.
type failoverSample struct {
	timerErr        time.Duration // backup's first advert - last advert - Master_Down_Interval
	vip, garp, http time.Duration // (a), (b), (c)
}

// watchVIP reports the first time vip is added to (or, with deleted, removed
// from) host i of the pair after the call; stop ends the watch.
func (p *pair) watchVIP(i int, vip netip.Addr, deleted bool) (at func() time.Time, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var t time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.addrs[i].Stamped(ctx, func(now time.Time, ev netif.AddrEvent) {
			if ev.Deleted != deleted || ev.Addr.Prefix.Addr() != vip {
				return
			}
			mu.Lock()
			if t.IsZero() {
				t = now
			}
			mu.Unlock()
		})
	}()
	return func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return t
		}, func() {
			cancel()
			<-done
		}
}

// failoverRun kills r1's daemon and measures the backup's takeover.
func (p *pair) failoverRun(adv, mdi time.Duration) (failoverSample, error) {
	var s failoverSample
	sn, err := e2e.StartSnifferNS(p.lab.SwitchNS(), p.lab.Bridge("lan"), nil)
	if err != nil {
		return s, err
	}
	vipAt, stopWatch := p.watchVIP(1, e2e.VIP4, false)
	answered := make(chan struct{})
	var once sync.Once
	poll := &e2e.Poller{Host: p.net.Client, Addr: netip.AddrPortFrom(e2e.VIP4, 80), Every: 5 * time.Millisecond,
		OnAnswer: func(r e2e.Request) {
			if r.OK() && r.Body == "r2" {
				once.Do(func() { close(answered) })
			}
		}}
	poll.Start()
	time.Sleep(max(3*adv, 300*time.Millisecond)) // adverts in the capture, the watch subscribed
	p.nodes[0].Kill()
	var timeout error
	select {
	case <-answered:
		time.Sleep(100 * time.Millisecond)
	case <-time.After(mdi + 15*time.Second):
		timeout = fmt.Errorf("no answer from r2 within %v of the kill", mdi+15*time.Second)
	}
	reqs, perr := poll.Stop()
	stopWatch()
	serr := sn.Stop()
	if timeout != nil {
		return s, fmt.Errorf("%w\n%s", timeout, p.logs())
	}
	if perr != nil || serr != nil {
		return s, fmt.Errorf("poller %v, sniffer %v", perr, serr)
	}
	r2mac := p.net.Nodes[1].Iface("eth0").MAC
	var last, first, garp, http time.Time
	for _, f := range sn.Frames() {
		if v, ok := e2e.ParseVRRP(f.Data); ok && v.VRID == 55 {
			switch {
			case v.Src == e2e.NodeAddr4(0) && v.Priority > 0:
				last = f.At
			case v.Src == e2e.NodeAddr4(1) && first.IsZero() && !last.IsZero():
				first = f.At
			}
			continue
		}
		if a, ok := e2e.ParseAnnouncement(f.Data); ok && a.Addr == e2e.VIP4 && a.SrcMAC.String() == r2mac &&
			garp.IsZero() && !last.IsZero() {
			garp = f.At
		}
	}
	for _, r := range reqs {
		if r.OK() && r.Body == "r2" && (http.IsZero() || r.End.Before(http)) {
			http = r.End
		}
	}
	if last.IsZero() || first.IsZero() || garp.IsZero() || vipAt().IsZero() || http.IsZero() {
		return s, fmt.Errorf("incomplete capture: last advert %v, backup's first %v, GARP %v, VIP %v, HTTP %v",
			last, first, garp, vipAt(), http)
	}
	s.timerErr = first.Sub(last) - mdi
	s.vip, s.garp, s.http = vipAt().Sub(last), garp.Sub(last), http.Sub(last)
	return s, nil
}

func (b *bench) failoverTable(load string) error {
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(b.out, "FAILOVER after kill -9 of the master (%s), ms from the master's last advert on the LAN; median / min / max\n", load)
	fmt.Fprintln(tw, "daemon\tadvert_int\tVRRP\truns\tMaster_Down_Interval\ttimer error (backup's 1st advert - MDI)\t(a) VIP on backup\t(b) 1st GARP on LAN\t(c) 1st HTTP answer\t(a) - MDI\t")
	for _, d := range b.o.daemons {
		for _, adv := range b.o.intervals {
			kind := e2e.Kind(d)
			iv, err := interval(adv)
			if err != nil {
				return err
			}
			mdi := masterDown(version(iv), 99, iv)
			b.logf("failover: %s advert_int %s (%s), %d runs", d, adv, load, b.o.runs)
			p, err := b.singlePair(kind, adv)
			if err != nil {
				return fmt.Errorf("%s %s: %w", d, adv, err)
			}
			var te, va, ga, ht, vm dist
			var errs int
			for run := 1; run <= b.o.runs; run++ {
				s, err := p.failoverRun(iv, mdi)
				if err != nil {
					b.logf("  run %d: %v", run, err)
					errs++
				} else {
					b.vlogf("  run %d: timer %s ms, VIP %s, GARP %s, HTTP %s", run, ms(s.timerErr), ms(s.vip), ms(s.garp), ms(s.http))
					te, va, ga, ht = append(te, s.timerErr), append(va, s.vip), append(ga, s.garp), append(ht, s.http)
					vm = append(vm, s.vip-mdi)
				}
				if err := p.restartMaster(vi1, e2e.VIP4, "eth0"); err != nil {
					p.close()
					return err
				}
			}
			p.close()
			runs := fmt.Sprint(len(te))
			if errs > 0 {
				runs += fmt.Sprintf(" (%d failed)", errs)
			}
			fmt.Fprintf(tw, "%s\t%s\tv%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", d, adv, version(iv), runs, ms(mdi),
				te.mmm(), va.mmm(), ga.mmm(), ht.mmm(), vm.mmm())
		}
	}
	tw.Flush()
	fmt.Fprintln(b.out)
	return nil
}

// handoverSample is one SIGTERM of the master under the 10 ms client.
type handoverSample struct {
	polls    e2e.PollStats
	vipGap   time.Duration // VIP added on r2 - removed from r1 (negative: both held it)
	takeover time.Duration // r2's first advert - r1's priority-0 advert
	stopped  time.Duration // SIGTERM to r1's exit
	exit     int
}

func (p *pair) handoverRun() (handoverSample, error) {
	var s handoverSample
	sn, err := e2e.StartSnifferNS(p.lab.SwitchNS(), p.lab.Bridge("lan"), nil)
	if err != nil {
		return s, err
	}
	delAt, stopDel := p.watchVIP(0, e2e.VIP4, true)
	addAt, stopAdd := p.watchVIP(1, e2e.VIP4, false)
	answered := make(chan struct{})
	var once sync.Once
	poll := &e2e.Poller{Host: p.net.Client, Addr: netip.AddrPortFrom(e2e.VIP4, 80), Every: 10 * time.Millisecond,
		OnAnswer: func(r e2e.Request) {
			if r.OK() && r.Body == "r2" {
				once.Do(func() { close(answered) })
			}
		}}
	poll.Start()
	time.Sleep(300 * time.Millisecond)
	termAt := time.Now()
	code, terr := p.nodes[0].Term(20 * time.Second)
	s.stopped = time.Since(termAt)
	var timeout error
	if terr == nil {
		select {
		case <-answered:
			time.Sleep(300 * time.Millisecond)
		case <-time.After(15 * time.Second):
			timeout = fmt.Errorf("no answer from r2 within 15s of the SIGTERM")
		}
	}
	reqs, perr := poll.Stop()
	stopDel()
	stopAdd()
	serr := sn.Stop()
	if terr != nil || timeout != nil || perr != nil || serr != nil {
		return s, fmt.Errorf("SIGTERM %v, %v, poller %v, sniffer %v\n%s", terr, timeout, perr, serr, p.logs())
	}
	s.exit = code
	s.polls = e2e.SummarisePolls(reqs)
	var prio0, first time.Time
	for _, f := range sn.Frames() {
		if v, ok := e2e.ParseVRRP(f.Data); ok && v.VRID == 55 {
			switch {
			case v.Src == e2e.NodeAddr4(0) && v.Priority == 0 && prio0.IsZero():
				prio0 = f.At
			case v.Src == e2e.NodeAddr4(1) && first.IsZero() && !prio0.IsZero():
				first = f.At
			}
		}
	}
	if prio0.IsZero() || first.IsZero() || delAt().IsZero() || addAt().IsZero() {
		return s, fmt.Errorf("incomplete capture: priority 0 at %v, backup's first advert %v, VIP removed %v, added %v",
			prio0, first, delAt(), addAt())
	}
	s.vipGap = addAt().Sub(delAt())
	s.takeover = first.Sub(prio0)
	return s, nil
}

func (b *bench) handoverTable(load string) error {
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(b.out, "HANDOVER on SIGTERM of the master (%s), client: new HTTP connection to the VIP every 10 ms\n", load)
	fmt.Fprintln(tw, "daemon\tadvert_int\truns\tfailed requests (total)\truns with failures\tgap / moved\tlongest unanswered med / max\tVIP removed->added med / min / max\tprio 0->new advert med\tSIGTERM->exit med / max\texit codes\t")
	for _, d := range b.o.daemons {
		for _, adv := range b.o.intervals {
			kind := e2e.Kind(d)
			b.logf("handover: %s advert_int %s (%s), %d runs", d, adv, load, b.o.runs)
			p, err := b.singlePair(kind, adv)
			if err != nil {
				return fmt.Errorf("%s %s: %w", d, adv, err)
			}
			var failed, failedRuns, gap, moved, n int
			var unans, vipGap, takeover, stopped dist
			exits := map[int]int{}
			var errs int
			for run := 1; run <= b.o.runs; run++ {
				s, err := p.handoverRun()
				if err != nil {
					b.logf("  run %d: %v", run, err)
					errs++
				} else {
					n++
					b.vlogf("  run %d: %v; VIP gap %s ms", run, s.polls, ms(s.vipGap))
					failed += s.polls.Failed
					if s.polls.Failed > 0 {
						failedRuns++
					}
					gap += s.polls.Classes[e2e.FailGap]
					moved += s.polls.Classes[e2e.FailMoved]
					unans = append(unans, s.polls.MaxUnanswered)
					vipGap = append(vipGap, s.vipGap)
					takeover = append(takeover, s.takeover)
					stopped = append(stopped, s.stopped)
					exits[s.exit]++
				}
				if err := p.restartMaster(vi1, e2e.VIP4, "eth0"); err != nil {
					p.close()
					return err
				}
			}
			p.close()
			runs := fmt.Sprint(n)
			if errs > 0 {
				runs += fmt.Sprintf(" (%d failed)", errs)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d / %d\t%s / %s\t%s\t%s\t%s / %s\t%v\t\n", d, adv, runs, failed, failedRuns, gap, moved,
				ms(unans.median()), ms(unans.max()), vipGap.mmm(), ms(takeover.median()), ms(stopped.median()), ms(stopped.max()), exits)
		}
	}
	tw.Flush()
	fmt.Fprintln(b.out, "  gap: the request met no VIP holder (timeout, or reset after a retransmission); moved: reset within 150 ms,")
	fmt.Fprintln(b.out, "  its connection was open when the client's ARP entry moved. VIP removed->added < 0: both held it (make before break).")
	fmt.Fprintln(b.out)
	return nil
}
