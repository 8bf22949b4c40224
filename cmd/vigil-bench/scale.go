package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netif"
)

// perIface is how many VRIDs one interface and family carry.
const perIface = 255

// scaleConf spreads n VRRPv3 instances over eth1..ethK, 255 VRIDs per
// interface, each with one /32 VIP 10.<k>.1.<vrid>.
func scaleConf(n int, adv string, master bool) (e2e.Conf, []string) {
	var c e2e.Conf
	var names []string
	for i := range n {
		k, vrid := i/perIface+1, i%perIface+1
		in := e2e.Instance{
			Name: fmt.Sprintf("VI_%d_%d", k, vrid), State: "BACKUP", Interface: fmt.Sprintf("eth%d", k),
			VRID: vrid, Priority: 99, AdvertInt: adv, Version: 3,
			VIPs: []string{fmt.Sprintf("%v/32 dev eth%d", scaleVIP(k, vrid), k)},
		}
		if master {
			in.State, in.Priority = "MASTER", 100
		}
		c.Instances = append(c.Instances, in)
		names = append(names, in.Name)
	}
	return c, names
}

func scaleVIP(k, vrid int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(k), 1, byte(vrid)}) }

// nodeAddr is node i's address on ethk (e2e.BuildNet: 10.k.0.i+1).
func nodeAddr(k, i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(k), 0, byte(i + 1)}) }

type key struct{ k, vrid int }

// sniffAll starts a sniffer on every extra LAN's bridge.
func (p *pair) sniffAll(k int) ([]*e2e.Sniffer, error) {
	var ss []*e2e.Sniffer
	for i := 1; i <= k; i++ {
		s, err := e2e.StartSnifferNS(p.lab.SwitchNS(), p.lab.Bridge(fmt.Sprintf("lan%d", i)), nil)
		if err != nil {
			for _, x := range ss {
				x.Stop()
			}
			return nil, err
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// adverts returns, per instance, the times node i's adverts crossed its
// LAN's bridge, with priority > 0.
func adverts(ss []*e2e.Sniffer, node int) map[key][]time.Time {
	out := map[key][]time.Time{}
	for idx, s := range ss {
		k := idx + 1
		for _, f := range s.Frames() {
			v, ok := e2e.ParseVRRP(f.Data)
			if !ok || v.Src != nodeAddr(k, node) || v.Priority == 0 {
				continue
			}
			out[key{k, v.VRID}] = append(out[key{k, v.VRID}], f.At)
		}
	}
	for _, ts := range out {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	}
	return out
}

// announced returns the time of the first gratuitous ARP of every address
// that node sent on the extra LANs.
func announced(ss []*e2e.Sniffer, node *lab.Host) map[netip.Addr]time.Time {
	out := map[netip.Addr]time.Time{}
	for idx, s := range ss {
		mac := node.Iface(fmt.Sprintf("eth%d", idx+1)).MAC
		for _, f := range s.Frames() {
			a, ok := e2e.ParseAnnouncement(f.Data)
			if !ok || a.SrcMAC.String() != mac {
				continue
			}
			if t, ok := out[a.Addr]; !ok || f.At.Before(t) {
				out[a.Addr] = f.At
			}
		}
	}
	return out
}

type scaleResult struct {
	cpu, rss     [2]float64  // % of one core; MB
	anon         [2]float64  // RssAnon, MB
	jitter       dist        // |advert spacing - advert_int| of the master
	bursts       burstSplit  // where the jitter comes from
	late         []lateSpell // when in the window spacings were off by more than lateBound
	missing      int         // spacings ≥ 1.9 × advert_int (an advert not seen)
	timerErr     dist        // per instance: backup's first advert - master's last - MDI
	vipErr       dist        // per instance: VIP on the backup - master's last advert - MDI
	garpLag      dist        // per instance: the backup's first gratuitous ARP for the VIP - VIP on the backup
	noGARP       int         // VIPs added on the backup with no gratuitous ARP seen
	took         int         // instances measured in the failover
	sniffDrops   uint64
	failoverNote string
	takeoverGap  time.Duration // vigil: median time between consecutive BACKUP->MASTER transitions in the backup's log
	// windowTakeovers counts the backup's BACKUP->MASTER transitions during
	// the steady window (vigil): none is expected.
	windowTakeovers int
	// lateWakeups is the master's late_timer_wakeups after the window
	// (vigil; -1 unknown): timer expiries its backstop ran since start.
	lateWakeups int64
}

func (b *bench) scaleRun(kind e2e.Kind, n int, adv string) (scaleResult, error) {
	var r scaleResult
	iv, err := interval(adv)
	if err != nil {
		return r, err
	}
	k := (n + perIface - 1) / perIface
	mc, names := scaleConf(n, adv, true)
	bc, _ := scaleConf(n, adv, false)
	if rt := b.o.rtPriority; rt > 0 {
		for _, c := range []*e2e.Conf{&mc, &bc} {
			c.Global = append(c.Global, fmt.Sprintf("vrrp_rt_priority %d", rt))
		}
	}
	p, err := b.newPair(kind, k, [2]e2e.Conf{mc, bc}, false, names)
	if err != nil {
		return r, err
	}
	defer p.close()
	if err := p.waitSteady(names, netip.Addr{}, "", 120*time.Second); err != nil {
		return r, err
	}
	// garp_master_delay (5 s) sends a second burst of gratuitous ARPs after
	// the takeover: let it pass.
	time.Sleep(6 * time.Second)

	window := b.o.window
	if window == 0 {
		window = 20 * time.Second
		if iv < time.Second {
			window = 10 * time.Second
		}
	}
	ss, err := p.sniffAll(k)
	if err != nil {
		return r, err
	}
	var u0 [2]e2e.ProcUsage
	for i, nd := range p.nodes {
		if u0[i], err = nd.Usage(); err != nil {
			return r, err
		}
	}
	t0 := time.Now()
	prof := make(chan error, 1)
	if kind == e2e.Vigil && b.o.profileDir != "" {
		go func() { prof <- p.profileMaster(fmt.Sprintf("%d-%s", n, adv)) }()
	} else {
		prof <- nil
	}
	time.Sleep(window)
	dt := time.Since(t0)
	if err := <-prof; err != nil {
		return r, err
	}
	for i, nd := range p.nodes {
		u, err := nd.Usage()
		if err != nil {
			return r, err
		}
		r.cpu[i] = 100 * float64(u.CPU-u0[i].CPU) / float64(dt)
		r.rss[i] = float64(u.RSS) / (1 << 20)
		r.anon[i] = float64(u.Anon) / (1 << 20)
	}
	if b.o.verbose && kind == e2e.Vigil {
		if ms, err := e2e.AnonMappings(p.nodes[0].Pid(), 4); err == nil {
			b.logf("  master's anonymous memory at the window's end, by mapping: %s", strings.Join(ms, "; "))
		}
		// With GODEBUG=gctrace=1,scavtrace=1 in vigil's environment, the
		// runtime's last words on its heap.
		var gc []string
		for _, l := range strings.Split(p.nodes[0].Log(), "\n") {
			if strings.HasPrefix(l, "gc ") || strings.HasPrefix(l, "scav ") {
				gc = append(gc, l)
			}
		}
		if len(gc) > 4 {
			gc = gc[len(gc)-4:]
		}
		for _, l := range gc {
			b.logf("  master's runtime: %s", l)
		}
	}
	for _, s := range ss {
		s.Stop()
		r.sniffDrops += s.Drops()
	}
	sent := adverts(ss, 0)
	r.bursts = splitBursts(sent, iv)
	r.late = lateSpells(sent, iv, t0)
	for _, ts := range sent {
		for j := 1; j < len(ts); j++ {
			d := ts[j].Sub(ts[j-1])
			if d >= iv*19/10 {
				r.missing++
				continue
			}
			r.jitter = append(r.jitter, d-iv)
		}
	}
	r.jitter = r.jitter.abs()
	r.lateWakeups = -1
	if kind == e2e.Vigil {
		// Read after the window's CPU and memory: a status request costs
		// the master a snapshot.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if st, err := p.nodes[0].Status(ctx); err == nil {
			r.lateWakeups = int64(st.Daemon.LateTimerWakeups)
		}
		cancel()
		// A steady window has no takeover; one would explain an advert
		// answered out of turn (a spacing near zero).
		r.windowTakeovers = len(vigilTakeovers(p.nodes[1].Log(), t0))
	}

	// Failover of every instance at once.
	ss, err = p.sniffAll(k)
	if err != nil {
		return r, err
	}
	var mu sync.Mutex
	added := map[netip.Addr]time.Time{}
	stopWatch := p.watchAll(func(at time.Time, a netip.Addr) {
		mu.Lock()
		if _, ok := added[a]; !ok {
			added[a] = at
		}
		mu.Unlock()
	})
	time.Sleep(max(3*iv, 500*time.Millisecond))
	mdi := masterDown(3, 99, iv)
	fprof := make(chan error, 1)
	if kind == e2e.Vigil && b.o.profileDir != "" {
		// The takeovers come Master_Down_Interval after the kill, spread
		// over one advert interval.
		d := (mdi + iv + time.Second).Round(time.Second)
		go func() { fprof <- p.profileFailover(fmt.Sprintf("%d-%s", n, adv), d) }()
		time.Sleep(100 * time.Millisecond)
	} else {
		fprof <- nil
	}
	killed := time.Now()
	p.nodes[0].Kill()
	deadline := time.Now().Add(mdi + 60*time.Second)
	for {
		mu.Lock()
		got := len(added)
		mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * iv)
	stopWatch()
	if err := <-fprof; err != nil {
		return r, err
	}
	for _, s := range ss {
		s.Stop()
		r.sniffDrops += s.Drops()
	}
	last, first := adverts(ss, 0), adverts(ss, 1)
	garps := announced(ss, p.net.Nodes[1])
	for i := range n {
		kk := key{i/perIface + 1, i%perIface + 1}
		l, f := last[kk], first[kk]
		if len(l) == 0 || len(f) == 0 {
			continue
		}
		lt := l[len(l)-1]
		j, _ := slices.BinarySearchFunc(f, lt, func(a, b time.Time) int { return a.Compare(b) })
		if j >= len(f) {
			continue
		}
		r.took++
		r.timerErr = append(r.timerErr, f[j].Sub(lt)-mdi)
		if at, ok := added[scaleVIP(kk.k, kk.vrid)]; ok {
			r.vipErr = append(r.vipErr, at.Sub(lt)-mdi)
			if g, ok := garps[scaleVIP(kk.k, kk.vrid)]; ok {
				r.garpLag = append(r.garpLag, g.Sub(at))
			} else {
				r.noGARP++
			}
		}
	}
	if r.took < n {
		r.failoverNote = fmt.Sprintf("%d of %d instances measured", r.took, n)
	}
	if kind == e2e.Vigil {
		ts := vigilTakeovers(p.nodes[1].Log(), killed)
		var gaps dist
		for j := 1; j < len(ts); j++ {
			gaps = append(gaps, ts[j].Sub(ts[j-1]))
		}
		r.takeoverGap = gaps.median()
	}
	return r, nil
}

// watchAll calls f with the first addition of every address on r2.
func (p *pair) watchAll(f func(time.Time, netip.Addr)) (stop func()) {
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(done)
		p.addrs[1].Stamped(ctx, func(at time.Time, ev netif.AddrEvent) {
			if !ev.Deleted {
				f(at, ev.Addr.Prefix.Addr())
			}
		})
	}()
	return func() {
		cancel()
		<-done
	}
}

func (b *bench) scaleTable(load string) error {
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	if b.o.rtPriority > 0 {
		load += fmt.Sprintf(", vrrp_rt_priority %d", b.o.rtPriority)
	}
	fmt.Fprintf(b.out, "SCALE (%s): VRRPv3, master priority 100 + backup 99, 255 VRIDs per interface; CPU in %% of one core (the threads' run time, schedstat), RSS in MB;\n", load)
	fmt.Fprintln(b.out, "RSS: VmRSS (anonymous: RssAnon, without the mapped pages of the binary and its libraries), keepalived's processes summed;")
	fmt.Fprintln(b.out, "advert jitter |spacing - advert_int| of the master, ms: median / p99 / max (samples: spacings measured, stamped by the kernel as")
	fmt.Fprintln(b.out, "the master's send reaches the LAN's bridge); failover: every instance at once after kill -9")
	fmt.Fprintln(b.out, "of the master, per instance, ms: min / median / p99 / max; takeover gap: median time between consecutive BACKUP->MASTER")
	fmt.Fprintln(b.out, "lines of vigil's log during that failover (what one takeover costs when they queue); 1st GARP - VIP: the backup's")
	fmt.Fprintln(b.out, "first gratuitous ARP of each VIP on the LAN's bridge - the VIP's netlink event as `ip -ts monitor address` read it in the backup's namespace;")
	fmt.Fprintln(b.out, "below the table, the jitter split: the move of the advert's burst (adverts < 2 ms apart) from one interval to the next")
	fmt.Fprintln(b.out, "and the move of the advert within its burst, by position in the burst (median/p99)")
	var splits []string
	fmt.Fprintln(tw, "daemon\tinstances\tadvert_int\tCPU master\tCPU backup\tRSS master\tRSS backup\tadvert jitter\tmissed\tfailover timer error\tVIP on backup - MDI\t1st GARP - VIP\ttakeover gap\tnote\t")
	tally := newScaleTally(b.o.daemons)
	for run := range max(b.o.scaleRuns, 1) {
		for _, d := range b.o.daemons {
			for _, adv := range b.o.scaleIntervals {
				for _, n := range b.o.instances {
					b.logf("scale: %s %d instances advert_int %s (%s)", d, n, adv, load)
					r, err := b.scaleRun(e2e.Kind(d), n, adv)
					if err != nil {
						b.logf("  %v", err)
						short := err.Error()
						if ns, ok := err.(*notSteady); ok {
							short = ns.Short()
						}
						fmt.Fprintf(tw, "%s\t%d\t%s\terror\t\t\t\t\t\t\t\t\t\t%s\t\n", d, n, adv, strings.ReplaceAll(short, "\n", " "))
						continue
					}
					note := r.failoverNote
					if r.windowTakeovers > 0 {
						note += fmt.Sprintf(" backup took over %d times in the steady window", r.windowTakeovers)
					}
					if r.noGARP > 0 {
						note += fmt.Sprintf(" %d VIPs without a GARP seen", r.noGARP)
					}
					if r.sniffDrops > 0 {
						note += fmt.Sprintf(" capture dropped %d frames", r.sniffDrops)
					}
					line := fmt.Sprintf("%s %d %s jitter, ms, median / p99 / max: %v", d, n, adv, r.bursts)
					if r.lateWakeups >= 0 {
						line += fmt.Sprintf(" | master's timer expiries run by the backstop since start: %d", r.lateWakeups)
					}
					splits = append(splits, line)
					if len(r.late) > 0 {
						splits = append(splits, fmt.Sprintf("%s %d %s spacings off by more than %s, when in the window: %s", d, n, adv, ms(lateBound), spellsString(r.late)))
					}
					spread := "-"
					if r.takeoverGap > 0 {
						spread = ms(r.takeoverGap)
					}
					tally.add(scaleKey{n, adv, run}, d, r)
					fmt.Fprintf(tw, "%s\t%d\t%s\t%.2f\t%.2f\t%.1f (%.1f)\t%.1f (%.1f)\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", d, n, adv,
						r.cpu[0], r.cpu[1], r.rss[0], r.anon[0], r.rss[1], r.anon[1], r.jitter.mpm()+fmt.Sprintf(" (%d)", len(r.jitter)), r.missing, r.timerErr.mmpm(), r.vipErr.mmpm(), r.garpLag.mmpm(), spread, note)
				}
			}
		}
	}
	tw.Flush()
	for _, l := range splits {
		fmt.Fprintln(b.out, l)
	}
	tally.write(b.out)
	fmt.Fprintln(b.out)
	return nil
}

// vigilTakeovers returns the times of the BACKUP->MASTER transitions after
// since in a vigil JSON log (--log-format json: nanosecond timestamps),
// sorted.
func vigilTakeovers(log string, since time.Time) []time.Time {
	var out []time.Time
	for _, l := range strings.Split(log, "\n") {
		var rec struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
			From string    `json:"from"`
			To   string    `json:"to"`
		}
		if json.Unmarshal([]byte(l), &rec) != nil || rec.Msg != "transition" || rec.From != "BACKUP" || rec.To != "MASTER" || rec.Time.Before(since) {
			continue
		}
		out = append(out, rec.Time)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// profileFailover saves a CPU profile and an execution trace of the vigil
// backup, both of d from now, to --profile-dir as cpu-failover-NAME.prof
// and trace-failover-NAME.out.
func (p *pair) profileFailover(name string, d time.Duration) error {
	h := p.net.Nodes[1]
	secs := int(d / time.Second)
	errs := make(chan error, 2)
	for _, f := range []struct{ file, path string }{
		{"cpu-failover-" + name + ".prof", fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs)},
		{"trace-failover-" + name + ".out", fmt.Sprintf("/debug/pprof/trace?seconds=%d", secs)},
	} {
		go func() {
			out := filepath.Join(p.b.o.profileDir, f.file)
			if msg, err := h.Run("curl", "-sSf", "-o", out, "http://"+debugAddr+f.path); err != nil {
				errs <- fmt.Errorf("profile of the backup: %v: %s", err, msg)
				return
			}
			p.b.logf("saved %s", out)
			errs <- nil
		}()
	}
	return errors.Join(<-errs, <-errs)
}

// debugAddr is where vigil's master serves its profiler with --profile-dir,
// on the loopback of its namespace.
const debugAddr = "127.0.0.1:6060"

// profileMaster saves a 10 s CPU profile, then a 1 s execution trace, then
// a heap profile of the vigil master to --profile-dir as cpu-NAME.prof,
// trace-NAME.out and heap-NAME.prof (with its text form and the runtime's
// memory statistics in heap-NAME.txt); meanwhile the same CPU profile and
// trace of the backup, as cpu-backup-NAME.prof and trace-backup-NAME.out.
func (p *pair) profileMaster(name string) error {
	errs := make(chan error, 2)
	go func() {
		errs <- p.profile(0, "master", []profileFile{
			{"cpu-" + name + ".prof", "/debug/pprof/profile?seconds=10"},
			{"trace-" + name + ".out", "/debug/pprof/trace?seconds=1"},
			{"heap-" + name + ".prof", "/debug/pprof/heap"},
			{"heap-" + name + ".txt", "/debug/pprof/heap?debug=1"},
		})
	}()
	go func() {
		errs <- p.profile(1, "backup", []profileFile{
			{"cpu-backup-" + name + ".prof", "/debug/pprof/profile?seconds=10"},
			{"trace-backup-" + name + ".out", "/debug/pprof/trace?seconds=1"},
		})
	}()
	return errors.Join(<-errs, <-errs)
}

type profileFile struct{ file, path string }

// profile fetches fs one after the other from node i's profiler.
func (p *pair) profile(i int, role string, fs []profileFile) error {
	h := p.net.Nodes[i]
	for _, f := range fs {
		out := filepath.Join(p.b.o.profileDir, f.file)
		if msg, err := h.Run("curl", "-sSf", "-o", out, "http://"+debugAddr+f.path); err != nil {
			return fmt.Errorf("profile of the %s: %v: %s", role, err, msg)
		}
		p.b.logf("saved %s", out)
	}
	return nil
}
