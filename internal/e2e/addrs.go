package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netif"
)

// Addrs reads the addresses of one lab host over a netlink socket opened in
// its namespace. It is safe for concurrent use.
type Addrs struct {
	host *lab.Host
	mu   sync.Mutex
	h    *netif.Handle
	nh   *netlink.Handle
	idx  map[string]int
}

// OpenAddrs opens a netlink handle inside h. Close releases it.
func OpenAddrs(h *lab.Host) (*Addrs, error) {
	a := &Addrs{host: h}
	err := h.Do(func() error {
		var err error
		a.h, err = netif.Open()
		if err != nil {
			return err
		}
		a.nh, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			a.h.Close()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("e2e: %s: %w", h.Name(), err)
	}
	a.idx = map[string]int{}
	return a, nil
}

// Close releases the netlink sockets.
func (a *Addrs) Close() error {
	a.nh.Close()
	return a.h.Close()
}

// List returns the addresses of dev, with labels, flags and protocol.
func (a *Addrs) List(dev string) ([]netif.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.h.ListAddrs(dev)
}

// Find returns the address equal to addr on dev, if present.
func (a *Addrs) Find(dev string, addr netip.Addr) (netif.Addr, bool, error) {
	as, err := a.List(dev)
	if err != nil {
		return netif.Addr{}, false, err
	}
	for _, x := range as {
		if x.Prefix.Addr() == addr {
			return x, true, nil
		}
	}
	return netif.Addr{}, false, nil
}

// Has reports whether dev holds addr. It is cheaper than Find: one address
// dump filtered by the cached interface index, no link lookup (which may
// wait for the RTNL lock while other labs are torn down).
func (a *Addrs) Has(dev string, addr netip.Addr) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	idx, ok := a.idx[dev]
	if !ok {
		l, err := a.nh.LinkByName(dev)
		if err != nil {
			return false, fmt.Errorf("e2e: %s: %w", dev, err)
		}
		idx = l.Attrs().Index
		a.idx[dev] = idx
	}
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	as, err := a.nh.AddrList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: idx}}, fam)
	if err != nil {
		return false, fmt.Errorf("e2e: addresses of %s: %w", dev, err)
	}
	for _, x := range as {
		if y, ok := netip.AddrFromSlice(x.IP); ok && y.Unmap() == addr {
			return true, nil
		}
	}
	return false, nil
}

// Watch calls f with every address added to or removed from the host
// (netif.WatchAddrs) until ctx is done; the time is when the event was read.
func (a *Addrs) Watch(ctx context.Context, f func(at time.Time, ev netif.AddrEvent)) error {
	return a.h.WatchAddrs(ctx, func(ev netif.AddrEvent) { f(time.Now(), ev) })
}

// Stamped is Watch without the initial addresses, each change stamped by
// `ip -ts -o monitor address` run inside the host: iproute2's monitor, a
// process of its own, stamps each event as it reads it. Watch's stamps are
// taken by a reader that shares the measuring process with its packet
// captures, whose work during a mass failover delayed them by up to 4 ms
// (vigil-bench's scale mode at 1,000 instances: a VIP's gratuitous ARP,
// sent once the address add had returned, reached the LAN 4 ms before its
// netlink event was read). Changes from about 100 ms after the call on are
// seen; Stamped returns when ctx is done or the monitor fails.
func (a *Addrs) Stamped(ctx context.Context, f func(at time.Time, ev netif.AddrEvent)) error {
	cmd := a.host.Command(ctx, "ip", "-ts", "-o", "monitor", "address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("e2e: ip monitor: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("e2e: ip monitor: %w", err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if at, ev, ok := parseMonitorLine(sc.Text()); ok {
			f(at, ev)
		}
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("e2e: ip monitor: %w", err)
}

// monitorLine is a line of `ip -ts -o monitor address`:
// "[2026-12-07T21:04:39.991568] Deleted 3: d0    inet 10.9.9.9/32 scope ...".
var monitorLine = regexp.MustCompile(`^\[([0-9T:.-]+)\] (Deleted )?(\d+): \S+\s+inet6? (\S+)`)

// parseMonitorLine reads one line of `ip -ts -o monitor address` (stamps in
// local time, to the microsecond).
func parseMonitorLine(line string) (time.Time, netif.AddrEvent, bool) {
	m := monitorLine.FindStringSubmatch(line)
	if m == nil {
		return time.Time{}, netif.AddrEvent{}, false
	}
	at, err := time.ParseInLocation("2006-01-02T15:04:05.999999", m[1], time.Local)
	if err != nil {
		return time.Time{}, netif.AddrEvent{}, false
	}
	pfx, err := netip.ParsePrefix(m[4])
	if err != nil {
		// a point-to-point address: "inet 10.0.0.1 peer 10.0.0.2/32"
		a, err := netip.ParseAddr(m[4])
		if err != nil {
			return time.Time{}, netif.AddrEvent{}, false
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	idx, _ := strconv.Atoi(m[3])
	return at, netif.AddrEvent{Addr: netif.Addr{Prefix: pfx, LinkIndex: idx}, Deleted: m[2] != ""}, true
}

// IPAddr is `ip -o addr show dev DEV` inside the host, as an operator
// would read it.
func IPAddr(h *lab.Host, dev string) (string, error) {
	return h.Run("ip", "-o", "addr", "show", "dev", dev)
}

// Holders samples which hosts hold an address, every Every, between Start and
// Stop: the way a test checks that at no time do two nodes hold the VIP for
// longer than one advert interval.
type Holders struct {
	Every time.Duration
	Dev   string
	Addr  netip.Addr
	addrs []*Addrs

	stop    chan struct{}
	done    chan struct{}
	samples []HoldSample
	errs    []error
}

// HoldSample is one sampling round: Held[i] is true when host i held the
// address. At is when the round started, End when it finished.
type HoldSample struct {
	At, End time.Time
	Held    []bool
	Took    []time.Duration // how long each host's query took
}

// NewHolders prepares a sampler over the given hosts.
func NewHolders(every time.Duration, dev string, addr netip.Addr, addrs ...*Addrs) *Holders {
	return &Holders{Every: every, Dev: dev, Addr: addr, addrs: addrs}
}

// Start begins sampling.
func (s *Holders) Start() {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.Every)
		defer t.Stop()
		for {
			smp := HoldSample{At: time.Now(), Held: make([]bool, len(s.addrs)), Took: make([]time.Duration, len(s.addrs))}
			for i, a := range s.addrs {
				t0 := time.Now()
				ok, err := a.Has(s.Dev, s.Addr)
				smp.Took[i] = time.Since(t0)
				if err != nil && len(s.errs) < 10 {
					s.errs = append(s.errs, err)
				}
				smp.Held[i] = ok
			}
			smp.End = time.Now()
			s.samples = append(s.samples, smp)
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends sampling and returns the samples and the first errors.
func (s *Holders) Stop() ([]HoldSample, error) {
	close(s.stop)
	<-s.done
	if len(s.errs) > 0 {
		return s.samples, fmt.Errorf("e2e: sampling addresses: %v", s.errs)
	}
	return s.samples, nil
}

// HoldStats summarises samples. Sampling rounds can be late on a loaded
// machine, so each stretch has two bounds: at least from the start of the
// first round that saw it to the end of the last round that saw it, at most
// from the end of the round before it to the start of the round after it.
type HoldStats struct {
	Samples int
	// MaxOverlap is the longest stretch during which two or more hosts held
	// the address (lower bound), MaxOverlapUpper its upper bound.
	MaxOverlap, MaxOverlapUpper time.Duration
	// MaxNone and MaxNoneUpper are the same for stretches in which no host
	// held it; NoneRounds counts such rounds.
	MaxNone, MaxNoneUpper time.Duration
	NoneRounds            int
	// MaxGap is the longest time between two rounds (sampling resolution),
	// MaxGapTook how long each host's query took in the round before it.
	MaxGap     time.Duration
	MaxGapTook []time.Duration
}

// Summarise computes HoldStats.
func Summarise(samples []HoldSample) HoldStats {
	st := HoldStats{Samples: len(samples)}
	count := func(s HoldSample) int {
		n := 0
		for _, h := range s.Held {
			if h {
				n++
			}
		}
		return n
	}
	// stretch measures the runs of consecutive rounds for which in is true.
	stretch := func(in func(n int) bool) (lower, upper time.Duration) {
		first := -1
		for i := 0; i <= len(samples); i++ {
			if i < len(samples) && in(count(samples[i])) {
				if first < 0 {
					first = i
				}
				continue
			}
			if first < 0 {
				continue
			}
			last := i - 1
			lower = max(lower, samples[last].End.Sub(samples[first].At))
			from, to := samples[first].At, samples[last].End
			if first > 0 {
				from = samples[first-1].End
			}
			if i < len(samples) {
				to = samples[i].At
			}
			upper = max(upper, to.Sub(from))
			first = -1
		}
		return lower, upper
	}
	st.MaxOverlap, st.MaxOverlapUpper = stretch(func(n int) bool { return n >= 2 })
	st.MaxNone, st.MaxNoneUpper = stretch(func(n int) bool { return n == 0 })
	for i, s := range samples {
		if count(s) == 0 {
			st.NoneRounds++
		}
		if i > 0 {
			if g := s.At.Sub(samples[i-1].At); g > st.MaxGap {
				st.MaxGap = g
				st.MaxGapTook = samples[i-1].Took
			}
		}
	}
	return st
}

// Timeline renders the samples where the holders changed, for failure
// messages: "+12.3ms [r1 r2]".
func Timeline(samples []HoldSample, names []string) string {
	var b strings.Builder
	prev := ""
	for _, s := range samples {
		var who []string
		for i, h := range s.Held {
			if h {
				who = append(who, names[i])
			}
		}
		cur := strings.Join(who, " ")
		if cur != prev || b.Len() == 0 {
			fmt.Fprintf(&b, "%s [%s]\n", s.At.Format("15:04:05.000000"), cur)
			prev = cur
		}
	}
	return b.String()
}
