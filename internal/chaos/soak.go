package chaos

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netif"
)

// SoakOptions configure a soak: Instances VRRPv3 instances at Advert on a
// pair (r1 master, priority 100; r2 backup, 99) for Duration, with Hogs
// busy loops keeping the cores busy.
type SoakOptions struct {
	Instances int
	Advert    time.Duration
	Duration  time.Duration
	Hogs      int
	// Nice, when not zero, is applied to every thread of both daemons
	// once they run (as `vrrp_priority` would, which vigil does not act
	// on), so the figures show vigil rather than the machine's other load.
	Nice int
	// RTPriority, when not zero, is written as vrrp_rt_priority (SCHED_RR
	// for the VRRP loop, keepalived's setting for short advert intervals).
	RTPriority int
	// Provoke stalls something on purpose during the soak (see
	// Provocation).
	Provoke  []Provocation
	VigilBin string
	Dir      string
	Log      io.Writer
}

// renice sets the nice value of every thread of pid.
func renice(pid, nice int) error {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return fmt.Errorf("chaos: renice: %w", err)
	}
	for _, e := range ents {
		var tid int
		if _, err := fmt.Sscan(e.Name(), &tid); err == nil {
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
				return fmt.Errorf("chaos: renice %d: %w", tid, err)
			}
		}
	}
	return nil
}

// SoakResult is what a soak measured.
type SoakResult struct {
	Options SoakOptions
	Start   time.Time // when the soak proper began (both daemons up, the load on)
	Elapsed time.Duration
	// FalseFailovers counts the instances whose VIP the backup added, or
	// for which the backup sent an advert (it became master), while
	// nothing was wrong but the load.
	FalseFailovers int
	BackupAdverts  int // adverts the backup sent (priority > 0)
	VIPAdds        int // VIPs added on the backup
	Released       int // VIPs removed on the master
	// Gaps is the histogram of the time between consecutive adverts of
	// one instance from the master, in buckets of GapStep.
	Gaps    []uint64
	Adverts uint64
	Drops   uint64 // frames the capture lost
	CPU     [2]float64
	Load    string

	// GapFloor is the shortest gap recorded one by one in GapList: half
	// the backup's Master_Down_Interval.
	GapFloor time.Duration
	GapList  []Gap
	// FailoverList is the first sign of each false failover, in time order.
	FailoverList []Failover
	Host         Host
	Provoked     []Provoked
	// Stalls are GapList grouped and correlated with Host (Analyze).
	Stalls         []Stall
	FailoverGroups []FailoverGroup
}

// maxGaps bounds the gaps a soak keeps one by one.
const maxGaps = 200000

// gapLog follows one stream of adverts: the last advert of each VRID, and
// the gaps of at least floor, maxGaps at most (dropped counts the others).
type gapLog struct {
	floor   time.Duration
	last    [256]time.Time
	list    []Gap
	dropped int
}

// add notes an advert of vrid seen at at and returns the gap since the
// previous one (ok false for the first).
func (g *gapLog) add(at time.Time, vrid int) (gap time.Duration, ok bool) {
	t := g.last[vrid]
	g.last[vrid] = at
	if t.IsZero() {
		return 0, false
	}
	gap = at.Sub(t)
	if gap >= g.floor {
		if len(g.list) < maxGaps {
			g.list = append(g.list, Gap{End: at, VRID: vrid, Len: gap})
		} else {
			g.dropped++
		}
	}
	return gap, true
}

// Analyze groups the recorded gaps into stalls, correlates each with what
// the host and the daemons did, and groups the false failovers.
func (r *SoakResult) Analyze() {
	r.Stalls = Stalls(r.GapList)
	for i := range r.Stalls {
		r.Stalls[i] = Correlate(r.Stalls[i], &r.Host)
	}
	r.FailoverGroups = GroupFailovers(r.FailoverList, r.Stalls)
}

// GapStep is the resolution of SoakResult.Gaps; gaps beyond the last
// bucket land in it.
const GapStep = 100 * time.Microsecond

const gapBuckets = 20000 // 2 s

// Quantile returns the nearest-rank q-quantile of the advert gaps.
func (r *SoakResult) Quantile(q float64) time.Duration {
	want := max(uint64(math.Ceil(q*float64(r.gapCount()))), 1)
	var n uint64
	for i, c := range r.Gaps {
		n += c
		if n >= want {
			return time.Duration(i) * GapStep
		}
	}
	return 0
}

func (r *SoakResult) gapCount() uint64 {
	var n uint64
	for _, c := range r.Gaps {
		n += c
	}
	return n
}

// Over counts the gaps of at least d.
func (r *SoakResult) Over(d time.Duration) uint64 {
	var n uint64
	for i := int(d / GapStep); i < len(r.Gaps); i++ {
		n += r.Gaps[i]
	}
	return n
}

// Max is the longest gap.
func (r *SoakResult) Max() time.Duration {
	for i := len(r.Gaps) - 1; i >= 0; i-- {
		if r.Gaps[i] > 0 {
			return time.Duration(i) * GapStep
		}
	}
	return 0
}

func soakVIP(vrid int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, 1, byte(vrid)}) }

// Soak runs the pair and watches it.
func Soak(ctx context.Context, o SoakOptions) (*SoakResult, error) {
	if o.Instances < 1 || o.Instances > 255 {
		return nil, fmt.Errorf("chaos: soak: %d instances (1-255 on one interface)", o.Instances)
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}
	}
	l, err := lab.New("soak")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	nt, err := e2e.BuildNet(l, 2, 1)
	if err != nil {
		return nil, err
	}
	adv := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", o.Advert.Seconds()), "0"), ".")
	var nodes [2]*e2e.Node
	for i, h := range nt.Nodes {
		var b strings.Builder
		fmt.Fprintf(&b, "global_defs {\n  router_id %s\n", h.Name())
		if o.RTPriority != 0 {
			fmt.Fprintf(&b, "  vrrp_rt_priority %d\n", o.RTPriority)
		}
		b.WriteString("}\n")
		for v := 1; v <= o.Instances; v++ {
			state, prio := "BACKUP", 99
			if i == 0 {
				state, prio = "MASTER", 100
			}
			fmt.Fprintf(&b, "vrrp_instance VI_%d {\n  state %s\n  interface eth1\n  virtual_router_id %d\n  priority %d\n  advert_int %s\n  version 3\n  virtual_ipaddress {\n    %s/32 dev eth1\n  }\n}\n",
				v, state, v, prio, adv, soakVIP(v))
		}
		dir := filepath.Join(o.Dir, "soak-"+h.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		nodes[i] = e2e.NewNode(e2e.Vigil, h, o.VigilBin, dir)
		// One line per collection on stderr: the soak places each pause
		// beside the advert gaps.
		nodes[i].Env = []string{"GODEBUG=gctrace=1"}
		if err := nodes[i].WriteConfig(b.String()); err != nil {
			return nil, err
		}
		defer nodes[i].Kill()
	}
	all := func(i int, state string) error {
		deadline := time.Now().Add(120 * time.Second)
		for {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			st, err := nodes[i].States(c)
			cancel()
			n := 0
			for _, s := range st {
				if s == state {
					n++
				}
			}
			if err == nil && n == o.Instances {
				return nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("chaos: soak: %s: %d of %d instances %s (%v)", nodes[i].Name(), n, o.Instances, state, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	peer, classes := "normal", []canaryClass{{"normal", o.Nice}}
	if o.RTPriority != 0 {
		peer, classes = "rt", append([]canaryClass{{"rt", o.RTPriority}}, classes...)
	}
	cn, err := startCanaries(classes)
	if err != nil {
		return nil, err
	}
	defer cn.stop()
	hctx, stopHost := context.WithCancel(ctx)
	defer stopHost()
	var hostWG sync.WaitGroup
	gcs := make([][]GCPause, 2)
	for i, st := range []string{"MASTER", "BACKUP"} {
		started := time.Now()
		if err := nodes[i].Start(); err != nil {
			return nil, err
		}
		hostWG.Go(func() { gcs[i] = followGC(hctx, nodes[i], started) })
		if err := nodes[i].WaitReady(60 * time.Second); err != nil {
			return nil, err
		}
		if err := all(i, st); err != nil {
			return nil, err
		}
		if o.Nice != 0 {
			if err := renice(nodes[i].Pid(), o.Nice); err != nil {
				return nil, err
			}
		}
	}
	time.Sleep(2 * time.Second)
	var stat []StatSample
	var procs map[string][]ProcSample
	pids := map[string]int{}
	for _, n := range nodes {
		pids[n.Host.Name()] = n.Pid()
	}
	policy := unix.SCHED_NORMAL
	if o.RTPriority != 0 {
		policy = unix.SCHED_RR
	}
	hostWG.Go(func() { stat, procs = sampleHost(hctx, pids, policy) })
	r := &SoakResult{Options: o, Gaps: make([]uint64, gapBuckets), GapFloor: masterDown(99, o.Advert) / 2}
	var mu sync.Mutex
	master, backup := netip.AddrFrom4([4]byte{10, 1, 0, 1}), netip.AddrFrom4([4]byte{10, 1, 0, 2})
	recv := gapLog{floor: r.GapFloor}
	failed := map[int]bool{}
	failover := func(at time.Time, vrid int, how string) {
		if !failed[vrid] {
			r.FailoverList = append(r.FailoverList, Failover{At: at, VRID: vrid, How: how})
		}
		failed[vrid] = true
	}
	sn, err := e2e.StreamNS(l.SwitchNS(), l.Bridge("lan1"), func(f e2e.Frame) {
		v, ok := e2e.ParseVRRP(f.Data)
		if !ok || v.Priority == 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch v.Src {
		case master:
			r.Adverts++
			if gap, ok := recv.add(f.At, v.VRID); ok {
				// Frames of one bridge can carry timestamps slightly out
				// of order: a negative gap counts as zero.
				r.Gaps[min(max(int(gap/GapStep), 0), gapBuckets-1)]++
			}
		case backup:
			r.BackupAdverts++
			failover(f.At, v.VRID, "backup advert")
		}
	})
	if err != nil {
		return nil, err
	}
	// The master's adverts as it sent them: a gap here is the daemon's, a
	// gap only on the bridge is the way between them.
	sent := gapLog{floor: r.GapFloor}
	so, err := e2e.StreamOutgoingNS(nt.Nodes[0].NS(), "eth1", func(f e2e.Frame) {
		v, ok := e2e.ParseVRRP(f.Data)
		if !ok || v.Priority == 0 || v.Src != master {
			return
		}
		sent.add(f.At, v.VRID)
	})
	if err != nil {
		sn.Stop()
		return nil, err
	}
	var watch [2]*e2e.Addrs
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for i, h := range nt.Nodes {
		if watch[i], err = e2e.OpenAddrs(h); err != nil {
			sn.Stop()
			return nil, err
		}
		defer watch[i].Close()
		go watch[i].Watch(wctx, func(at time.Time, ev netif.AddrEvent) {
			if ev.Initial || !ev.Addr.Prefix.Addr().Is4() {
				return
			}
			a := ev.Addr.Prefix.Addr().As4()
			if a[0] != 10 || a[1] != 1 || a[2] != 1 {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if i == 1 && !ev.Deleted {
				r.VIPAdds++
				failover(at, int(a[3]), "VIP added on the backup")
			}
			if i == 0 && ev.Deleted {
				r.Released++
				failover(at, int(a[3]), "VIP released by the master")
			}
		})
	}
	var hogs []*lab.Proc
	for range o.Hogs {
		p, err := nt.Client.Start("sha256sum", "/dev/zero")
		if err != nil {
			return nil, err
		}
		hogs = append(hogs, p)
	}
	var u0 [2]e2e.ProcUsage
	for i, n := range nodes {
		u0[i], _ = n.Usage()
	}
	logf("soak: %d instances at advert_int %s on a pair, %d busy loops, for %v", o.Instances, adv, o.Hogs, o.Duration)
	t0 := time.Now()
	r.Start = t0
	provoked := make(chan []Provoked, 1)
	pctx, stopProvoke := context.WithCancel(ctx)
	defer stopProvoke()
	go func() { provoked <- provoke(pctx, o.Provoke, t0, nodes[0], o.RTPriority) }()
	select {
	case <-time.After(o.Duration):
	case <-ctx.Done():
	}
	r.Elapsed = time.Since(t0)
	stopProvoke()
	r.Provoked = <-provoked
	for i, n := range nodes {
		if u, err := n.Usage(); err == nil {
			r.CPU[i] = 100 * float64(u.CPU-u0[i].CPU) / float64(r.Elapsed)
		}
	}
	r.Load = loadavg()
	for _, p := range hogs {
		p.Kill()
	}
	sn.Stop()
	so.Stop()
	stopWatch()
	r.Drops = sn.Drops() + so.Drops()
	r.Host.Sent, r.Host.SentCaptured = sent.list, true
	stopHost()
	hostWG.Wait()
	cn.stop()
	mu.Lock()
	r.FalseFailovers = len(failed)
	r.GapList = recv.list
	r.Host.Dropped += recv.dropped + sent.dropped
	mu.Unlock()
	r.Host.Peer, r.Host.Stat, r.Host.Proc = peer, stat, procs
	var drop int
	var errs []string
	r.Host.Canary, r.Host.Lates, drop, errs = cn.results()
	r.Host.Dropped += drop
	for i, n := range nodes {
		r.Host.Nodes = append(r.Host.Nodes, n.Host.Name())
		r.Host.GC = append(r.Host.GC, gcs[i]...)
	}
	r.Analyze()
	if len(errs) > 0 {
		return r, fmt.Errorf("chaos: soak: canary: %s", strings.Join(errs, "; "))
	}
	for _, n := range nodes {
		if !n.Running() {
			return r, fmt.Errorf("chaos: soak: %s exited: %s", n.Name(), tail(n.Log(), 600))
		}
		if what := panicked(n.Log()); what != "" {
			return r, fmt.Errorf("chaos: soak: %s: %s", n.Name(), what)
		}
	}
	return r, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// WriteSoak prints a soak's figures.
func WriteSoak(w io.Writer, r *SoakResult) {
	o := r.Options
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	rt := "no vrrp_rt_priority"
	if o.RTPriority != 0 {
		rt = fmt.Sprintf("vrrp_rt_priority %d", o.RTPriority)
	}
	fmt.Fprintf(w, "soak: %d instances, advert_int %v, pair r1 (100) / r2 (99), daemons at nice %d, %s, %d busy loops, %.0f s, load average %s\n",
		o.Instances, o.Advert, o.Nice, rt, o.Hogs, r.Elapsed.Seconds(), r.Load)
	fmt.Fprintf(w, "false failovers: %d instances (backup adverts %d, VIPs added on the backup %d, VIPs released by the master %d)\n",
		r.FalseFailovers, r.BackupAdverts, r.VIPAdds, r.Released)
	fmt.Fprintf(w, "CPU: master %.1f %%, backup %.1f %% of one core\n", r.CPU[0], r.CPU[1])
	fmt.Fprintf(w, "master adverts seen: %d (capture dropped %d frames)\n", r.Adverts, r.Drops)
	fmt.Fprintf(w, "advert gap per instance: median %s, p99 %s, p99.9 %s, p99.99 %s, max %s\n",
		ms(r.Quantile(0.5)), ms(r.Quantile(0.99)), ms(r.Quantile(0.999)), ms(r.Quantile(0.9999)), ms(r.Max()))
	mdi := masterDown(99, o.Advert)
	fmt.Fprintf(w, "gaps ≥ 1.5×: %d, ≥ 2×: %d, ≥ 3× advert_int: %d, ≥ the backup's Master_Down_Interval (%v): %d\n",
		r.Over(o.Advert*3/2), r.Over(2*o.Advert), r.Over(3*o.Advert), mdi, r.Over(mdi))
	writeStalls(w, r)
}

// worstStalls is how many stalls the report lists.
const worstStalls = 10

// writeStalls prints the worst stalls beside what the host and the
// daemons did then, the false failovers with their times, the
// provocations and the canaries' and collectors' totals.
func writeStalls(w io.Writer, r *SoakResult) {
	h := &r.Host
	clock := func(t time.Time) string { return t.Format("15:04:05.000") }
	fmt.Fprintf(w, "stalls (advert gaps ≥ %s, half the backup's Master_Down_Interval; a stall is the gaps that share an instant): %d gaps in %d stall(s)\n",
		msStr(r.GapFloor), len(r.GapList), len(r.Stalls))
	if len(r.Stalls) > 0 {
		order := make([]int, len(r.Stalls))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool {
			x, y := r.Stalls[order[a]], r.Stalls[order[b]]
			if x.Longest != y.Longest {
				return x.Longest > y.Longest
			}
			return x.Instances > y.Instances
		})
		order = order[:min(len(order), worstStalls)]
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		var classes []string
		for _, c := range []string{"rt", "normal"} {
			if _, ok := h.Canary[c]; ok {
				classes = append(classes, c)
			}
		}
		fmt.Fprint(tw, "  #\tstart\tlongest\tinstances")
		for _, c := range classes {
			fmt.Fprintf(tw, "\t%s canary", c)
		}
		if h.SentCaptured {
			fmt.Fprintf(tw, "\t%s sent", firstNode(h))
		}
		fmt.Fprint(tw, "\tsteal\tirq+softirq\trunnable")
		for _, n := range h.Nodes {
			fmt.Fprintf(tw, "\t%s ran/waited", n)
		}
		for _, n := range h.Nodes {
			fmt.Fprintf(tw, "\tGC %s stw/mark", n)
		}
		fmt.Fprint(tw, "\tverdict\n")
		for _, i := range order {
			st := r.Stalls[i]
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d", i+1, clock(st.Start), msStr(st.Longest), st.Instances)
			for _, c := range classes {
				fmt.Fprintf(tw, "\t%s", msStr(st.Canary[c]))
			}
			if h.SentCaptured {
				fmt.Fprintf(tw, "\t%s", msStr(st.Sent))
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%d", msStr(st.Steal), msStr(st.IRQ+st.SoftIRQ), st.Running)
			for _, n := range h.Nodes {
				fmt.Fprintf(tw, "\t%.1f/%.1f ms", float64(st.Run[n])/1e6, float64(st.Wait[n])/1e6)
			}
			for _, n := range h.Nodes {
				fmt.Fprintf(tw, "\t%.1f/%.1f ms", float64(st.GCPause[n])/1e6, float64(st.GCMark[n])/1e6)
			}
			fmt.Fprintf(tw, "\t%s\n", st.Verdict)
		}
		tw.Flush()
	}
	if len(r.FailoverGroups) > 0 {
		fmt.Fprintln(w, "false failovers:")
		for _, g := range r.FailoverGroups {
			var how []string
			for k, n := range g.How {
				how = append(how, fmt.Sprintf("%s %d", k, n))
			}
			sort.Strings(how)
			where := "no master stall around it (the backup's side?)"
			if g.Stall > 0 {
				where = fmt.Sprintf("after stall %d (%s)", g.Stall, r.Stalls[g.Stall-1].Verdict)
			}
			fmt.Fprintf(w, "  %s  %d instances (VRID %s) within %s: %s; %s\n",
				clock(g.At), len(g.VRIDs), vridRanges(g.VRIDs), msStr(g.Last.Sub(g.At)), strings.Join(how, ", "), where)
		}
	}
	for _, p := range r.Provoked {
		if p.Err != "" {
			fmt.Fprintf(w, "provoked: %s  %s: %s\n", clock(p.Start), p.What, p.Err)
			continue
		}
		fmt.Fprintf(w, "provoked: %s-%s  %s\n", clock(p.Start), clock(p.End), p.What)
	}
	for _, c := range []string{"rt", "normal"} {
		st, ok := h.Canary[c]
		if !ok {
			continue
		}
		sched := fmt.Sprintf("SCHED_OTHER nice %d", r.Options.Nice)
		if c == "rt" {
			sched = fmt.Sprintf("SCHED_RR %d", r.Options.RTPriority)
		}
		fmt.Fprintf(w, "canary %s (%s, %v sleeps): %d wake-ups, %d at least %s late, worst %s\n",
			c, sched, canaryPeriod, st.Wakes, st.Late, msStr(canaryLate), msStr(st.Max))
	}
	for _, n := range h.Nodes {
		var count int
		var longest, total time.Duration
		for _, g := range h.GC {
			if g.Node == n && !g.Start.Before(r.Start) {
				count++
				longest, total = max(longest, g.Pause), total+g.Pause
			}
		}
		fmt.Fprintf(w, "GC %s during the soak: %d collections, longest stop-the-world %s, in all %s\n", n, count, msStr(longest), msStr(total))
		threads, astray, samples := 0, 0, 0
		for _, p := range h.Proc[n] {
			threads = max(threads, p.Threads)
			if p.Astray > 0 {
				astray, samples = max(astray, p.Astray), samples+1
			}
		}
		if len(h.Proc[n]) > 0 {
			fmt.Fprintf(w, "threads %s: up to %d; at another policy than asked: up to %d, in %d of %d samples\n", n, threads, astray, samples, len(h.Proc[n]))
		}
	}
	if len(h.Stat) >= 2 {
		a, b := h.Stat[0], h.Stat[len(h.Stat)-1]
		fmt.Fprintf(w, "host over the run: steal %s, irq %s, softirq %s of %s CPU time\n",
			msStr(b.Steal-a.Steal), msStr(b.IRQ-a.IRQ), msStr(b.SoftIRQ-a.SoftIRQ), msStr(b.Total-a.Total))
	}
	if h.Dropped > 0 {
		fmt.Fprintf(w, "records left out to bound memory: %d\n", h.Dropped)
	}
}
