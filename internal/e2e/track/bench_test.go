package track

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/procwatch"
)

// Benchmarks run only with -bench, e.g. (as root):
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/e2e/track/
//
// VIGIL_BENCH_WINDOW (a duration, default 20s) is the CPU measuring window;
// VIGIL_BENCH_SAMPLES (default 50) the number of latency samples.

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// cpuTicks reads a process's utime+stime and cutime+cstime (clock ticks,
// /proc/PID/stat fields 14-17).
func cpuTicks(pid int) (self, children int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var v [4]int64
	for k := range v {
		if v[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return 0, 0, err
		}
	}
	return v[0] + v[1], v[2] + v[3], nil
}

// clkTck is sysconf(_SC_CLK_TCK): 100 on Linux (USER_HZ).
const clkTck = 100

// BenchmarkScripts100 runs one daemon with 100 vrrp_scripts at interval 1 s
// (all tracked by one instance) and measures, over VIGIL_BENCH_WINDOW, the
// CPU used by vigil itself and by the scripts it ran (its reaped children),
// as a percentage of one core, and how many scripts it started per second
// (fork events of vigil, from the proc connector).
func BenchmarkScripts100(b *testing.B) {
	const nScripts = 100
	window := envDuration("VIGIL_BENCH_WINDOW", 20*time.Second)
	trueBin, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	l := netnstest.New(b, "bscript")
	h := netnstest.AddHost(b, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.9.0.1/24"}})
	n := newNode(b, h)
	n.logLevel = "info"
	var conf, refs strings.Builder
	conf.WriteString("global_defs {\n    router_id bench\n    script_user root\n}\n")
	for i := range nScripts {
		fmt.Fprintf(&conf, "vrrp_script chk%d {\n    script \"%s\"\n    interval 1\n}\n", i, trueBin)
		fmt.Fprintf(&refs, "        chk%d\n", i)
	}
	fmt.Fprintf(&conf, `vrrp_instance VI_1 {
    state MASTER
    interface eth0
    version 3
    virtual_router_id 1
    priority 100
    advert_int 1
    track_script {
%s    }
    virtual_ipaddress {
        10.9.0.100/24
    }
}
`, refs.String())
	n.start(conf.String())
	waitFor(b, 30*time.Second, "all scripts OK and MASTER", func() bool {
		in := n.instance("VI_1")
		ok := 0
		for _, tr := range in.Trackers {
			if tr.Kind == "script" && tr.OK {
				ok++
			}
		}
		return in.State == "MASTER" && ok == nScripts
	})
	pid := n.proc.PID()

	// Count vigil's forks.
	pc, err := procwatch.Dial(0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pc.Subscribe(2 * time.Second); err != nil {
		b.Fatal(err)
	}
	var forks atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			evs, err := pc.Receive()
			for _, ev := range evs {
				if ev.Kind == procwatch.EventFork && ev.PID == ev.TGID && int(ev.ParentTGID) == pid {
					forks.Add(1)
				}
			}
			if err != nil && !strings.Contains(err.Error(), "lost") {
				return
			}
		}
	}()
	defer func() { pc.Close(); wg.Wait() }()

	time.Sleep(2 * time.Second) // past start-up
	b.ResetTimer()
	for range b.N {
		s0, c0, err := cpuTicks(pid)
		if err != nil {
			b.Fatal(err)
		}
		f0, t0 := forks.Load(), time.Now()
		time.Sleep(window)
		s1, c1, err := cpuTicks(pid)
		if err != nil {
			b.Fatal(err)
		}
		el := time.Since(t0).Seconds()
		selfPct := float64(s1-s0) / clkTck / el * 100
		childPct := float64(c1-c0) / clkTck / el * 100
		rate := float64(forks.Load()-f0) / el
		b.ReportMetric(selfPct, "%core-vigil")
		b.ReportMetric(childPct, "%core-scripts")
		b.ReportMetric(rate, "scripts/s")
		b.Logf("%d vrrp_scripts at interval 1s over %.1fs: vigil %.2f%% of a core, scripts %.2f%%, %.1f scripts started/s",
			nScripts, el, selfPct, childPct, rate)
	}
	b.StopTimer()
	if in := n.instance("VI_1"); in.State != "MASTER" {
		b.Errorf("VI_1 left MASTER during the run: %+v", in)
	}
}

// advert is one VRRP advert seen by the listener.
type advert struct {
	at   time.Time // kernel receive time (SO_TIMESTAMPNS)
	vrid uint8
	prio uint8
}

// listenAdverts opens a raw IP protocol 112 socket inside h, joined to
// 224.0.0.18 on ifname, and sends every advert received to the channel
// until stop is closed.
func listenAdverts(tb testing.TB, h *lab.Host, ifname string, stop <-chan struct{}) <-chan advert {
	tb.Helper()
	var fd int
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 112)
		if err != nil {
			return err
		}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: [4]byte{224, 0, 0, 18}, Ifindex: int32(ifi.Index)}); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
	}); err != nil {
		tb.Fatal(err)
	}
	ch := make(chan advert, 4096)
	go func() {
		defer unix.Close(fd)
		buf := make([]byte, 1500)
		oob := make([]byte, 128)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				continue // timeout: check stop
			}
			at := time.Now()
			if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range cms {
					if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SO_TIMESTAMPNS && len(cm.Data) >= 16 {
						sec := int64(binary.NativeEndian.Uint64(cm.Data[0:]))
						nsec := int64(binary.NativeEndian.Uint64(cm.Data[8:]))
						at = time.Unix(sec, nsec)
					}
				}
			}
			if n < 20 {
				continue
			}
			ihl := int(buf[0]&0x0f) * 4
			if n < ihl+3 {
				continue
			}
			select {
			case ch <- advert{at: at, vrid: buf[ihl+1], prio: buf[ihl+2]}:
			default:
			}
		}
	}()
	return ch
}

// nextAdvert waits for an advert of vrid with priority prio received after
// since.
func nextAdvert(ch <-chan advert, vrid, prio uint8, since time.Time, timeout time.Duration) (advert, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case a := <-ch:
			if a.vrid == vrid && a.prio == prio && !a.at.Before(since) {
				return a, true
			}
		case <-t.C:
			return advert{}, false
		}
	}
}

// percentile returns the p-th percentile (nearest rank) of d, 0 when d is
// empty.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p/100*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

// BenchmarkTrackProcessLatency measures, over VIGIL_BENCH_SAMPLES kills of a
// process matched by vrrp_track_process (weight -20 on a master of priority
// 100), the time from the kill to (a) the MASTER_PRIORITY 80 line on
// vrrp_notify_fifo (notify_priority_changes: the engine has applied the
// change) and (b) the first advert with priority 80 received by a listener
// in another lab host (kernel receive timestamp). The lowered priority goes
// out with the next scheduled advert, as in keepalived 2.2.7
// (vrrp_set_effective_priority sends nothing itself), so (b) is the
// detection time plus the wait for the next advert, about advert_int / 2 on
// average for a kill at a random moment: it is measured at 1 s (the
// tutorials') and at 10 ms (VRRPv3's smallest).
func BenchmarkTrackProcessLatency(b *testing.B) {
	for _, adv := range []time.Duration{time.Second, 10 * time.Millisecond} {
		b.Run("advert_int="+adv.String(), func(b *testing.B) { benchTrackProcess(b, adv) })
	}
}

func benchTrackProcess(b *testing.B, adv time.Duration) {
	samples := envInt("VIGIL_BENCH_SAMPLES", 50)
	l := netnstest.New(b, "blat")
	h := netnstest.AddHost(b, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.9.1.1/24"}})
	mon := netnstest.AddHost(b, l, "mon", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.9.1.2/24"}})
	netnstest.WaitLANReady(b, l, h, mon)
	stop := make(chan struct{})
	defer close(stop)
	adverts := listenAdverts(b, mon, "eth0", stop)

	n := newNode(b, h)
	n.logLevel = "info"
	// A private copy of sleep with a name nothing else on the machine runs.
	name := fmt.Sprintf("vgtrk%d", os.Getpid()%1000000)
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		b.Fatal(err)
	}
	tracked := filepath.Join(n.dir, name)
	copyFile(b, sleepBin, tracked)
	fifo := readFIFO(b, n.path("vrrp.fifo"))
	n.start(fmt.Sprintf(`global_defs {
    router_id blat
    vrrp_notify_fifo %s
}
vrrp_track_process trk {
    process %s
    weight -20
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    version 3
    virtual_router_id 7
    priority 100
    advert_int %g
    notify_priority_changes
    track_process {
        trk
    }
    virtual_ipaddress {
        10.9.1.100/24
    }
}
`, n.path("vrrp.fifo"), name, adv.Seconds()))
	n.waitState("VI_1", "MASTER", 20*time.Second)
	fifoAfter := func(since time.Time, line string, timeout time.Duration) (time.Time, bool) {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			for _, fl := range fifo.lines() {
				if !fl.At.Before(since) && fl.Line == line {
					return fl.At, true
				}
			}
			time.Sleep(time.Millisecond)
		}
		return time.Time{}, false
	}

	var wire, engine []time.Duration
	b.ResetTimer()
	for range b.N {
		wire, engine = wire[:0], engine[:0]
		for range samples {
			cmd := exec.Command(tracked, "1000")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			startAt := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			if _, ok := nextAdvert(adverts, 7, 100, startAt, 3*adv+3*time.Second); !ok {
				cmd.Process.Kill()
				b.Fatalf("no advert at priority 100 after starting %s", name)
			}
			// Kill at a random phase of the advert schedule, as a crash
			// would come.
			time.Sleep(rand.N(adv))
			t0 := time.Now()
			if err := cmd.Process.Kill(); err != nil {
				b.Fatal(err)
			}
			_ = cmd.Wait()
			a, ok := nextAdvert(adverts, 7, 80, t0, 3*adv+3*time.Second)
			if !ok {
				b.Fatalf("no advert at priority 80 after killing %s", name)
			}
			wire = append(wire, a.at.Sub(t0))
			if at, ok := fifoAfter(t0, `INSTANCE "VI_1" MASTER_PRIORITY 80`, 3*time.Second); ok {
				engine = append(engine, at.Sub(t0))
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(wire, 50).Microseconds())/1000, "ms-wire-p50")
	b.ReportMetric(float64(percentile(wire, 99).Microseconds())/1000, "ms-wire-p99")
	if len(engine) > 0 {
		b.ReportMetric(float64(percentile(engine, 50).Microseconds())/1000, "ms-engine-p50")
		b.ReportMetric(float64(percentile(engine, 99).Microseconds())/1000, "ms-engine-p99")
	}
	b.Logf("advert_int %v, %d samples: kill -> advert at priority 80 on the wire: median %v, p99 %v, max %v; kill -> FIFO MASTER_PRIORITY 80 (%d samples): median %v, p99 %v",
		adv, len(wire), percentile(wire, 50), percentile(wire, 99), percentile(wire, 100), len(engine), percentile(engine, 50), percentile(engine, 99))
}

func copyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}
