// Command vigil-bench measures vigil and Debian's keepalived 2.2.7 on the
// same namespace harness (internal/lab, internal/e2e) and prints tables:
//
//   - failover: kill -9 of the master; from the master's last advert (seen
//     on the LAN's bridge) to the backup's first advert (timer error =
//     that - Master_Down_Interval), to (a) the VIP on the backup (netlink
//     event in its namespace, as `ip -ts monitor address` reads it), (b) its first gratuitous ARP on the LAN, (c)
//     the client's first HTTP answer through the VIP;
//   - handover: SIGTERM of the master under a client making a new HTTP
//     connection to the VIP every 10 ms: failed requests, longest time
//     without an answer, VIP hand-off (removal on the old master to addition
//     on the new one);
//   - scale: CPU and RSS of master and backup with 1, 100, 1000 instances
//     (255 VRIDs per interface, one interface per 255: --instances 5000
//     runs on 20), the jitter of the master's adverts, and the timer error
//     of every instance in one failover; --scale-runs N repeats each
//     measurement N times, the daemons taking turns, and counts for each
//     column the runs in which vigil is at or ahead of keepalived;
//   - starve (vigil only, not in the default modes): 8 `sha256sum
//     /dev/zero` at nice -20 pinned with the master to CPU 1, advert_int
//     0.1, --window (10 s): the master's longest advert gap and the
//     backup's failovers, without and with vrrp_rt_priority.
//
// With --load busy (or both) two `sha256sum /dev/zero` keep both cores busy
// during the measurements. It needs root, keepalived for its rows, and runs
// from the module (it builds cmd/vigil unless --vigil is given; elsewhere
// it takes the vigil beside its own executable, or asks for --vigil).
//
//	vigil-bench --modes failover,handover --runs 10
//	vigil-bench --modes scale --instances 1,100,1000 --load both
//	vigil-bench --modes scale --instances 1000,5000 --scale-intervals 1 --profile-dir /tmp/prof
//	vigil-bench --modes scale --instances 1000 --scale-intervals 1 --scale-runs 6
//	vigil-bench --modes starve
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
)

type options struct {
	modes          []string
	runs           int
	intervals      []string
	daemons        []string
	vigil          string
	buildVigil     bool // vigil is built from the module (see locateVigil)
	keepalived     string
	instances      []int
	scaleIntervals []string
	window         time.Duration
	load           string
	verbose        bool
	profileDir     string
	rtPriority     int
	scaleRuns      int
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := pflag.NewFlagSet("vigil-bench", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringSliceVar(&o.modes, "modes", []string{"failover", "handover", "scale"}, "what to measure: failover, handover, scale, starve")
	fs.IntVar(&o.runs, "runs", 10, "runs per daemon and interval (failover, handover)")
	fs.StringSliceVar(&o.intervals, "intervals", []string{"1", "0.1", "0.01"}, "advert_int values (1: VRRPv2 as the tutorial; others VRRPv3)")
	fs.StringSliceVar(&o.daemons, "daemons", []string{"vigil", "keepalived"}, "daemons to measure")
	fs.StringVar(&o.vigil, "vigil", "", "vigil binary (default: go build ./cmd/vigil inside vigil's source tree, else the vigil beside vigil-bench)")
	fs.StringVar(&o.keepalived, "keepalived", e2e.KeepalivedBin, "keepalived binary")
	fs.IntSliceVar(&o.instances, "instances", []int{1, 100, 1000}, "instance counts (scale)")
	fs.StringSliceVar(&o.scaleIntervals, "scale-intervals", []string{"1", "0.1"}, "advert_int values for scale (VRRPv3)")
	fs.DurationVar(&o.window, "window", 0, "CPU measuring window for scale (default 20s at advert_int ≥ 1, 10s below)")
	fs.StringVar(&o.load, "load", "idle", "idle, busy (two sha256sum /dev/zero hogs) or both")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log every run")
	fs.IntVar(&o.scaleRuns, "scale-runs", 1, "scale: runs of every daemon, instance count and interval, the daemons taking turns; with vigil and keepalived, a tally of the runs in which vigil is at or ahead in each column follows the table")
	fs.IntVar(&o.rtPriority, "rt-priority", 0, "scale: vrrp_rt_priority for both daemons (0: not set)")
	fs.StringVar(&o.profileDir, "profile-dir", "", "scale: run vigil with --debug-listen and save to this directory a 10 s CPU profile, a 1 s execution trace and a heap profile of the master, taken in the CPU window, and a CPU profile and a trace of the backup during the failover (the profiling costs the daemons some CPU)")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	if o.profileDir != "" {
		d, err := filepath.Abs(o.profileDir)
		if err == nil {
			err = os.MkdirAll(d, 0o755)
		}
		if err != nil {
			fmt.Fprintf(stderr, "vigil-bench: --profile-dir: %v\n", err)
			return 2
		}
		o.profileDir = d
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "vigil-bench: needs root (network namespaces)")
		return 1
	}
	wd, _ := os.Getwd()
	exe, _ := os.Executable()
	vigil, build, err := locateVigil(o.vigil, wd, exe)
	if err != nil {
		fmt.Fprintf(stderr, "vigil-bench: %v\n", err)
		return 2
	}
	o.vigil, o.buildVigil = vigil, build
	if _, err := lab.Sweep(); err != nil {
		fmt.Fprintf(stderr, "vigil-bench: %v\n", err)
	}
	b := &bench{o: o, out: stdout, log: stderr}
	if err := b.main(); err != nil {
		fmt.Fprintf(stderr, "vigil-bench: %v\n", err)
		return 1
	}
	return 0
}

// bench runs the measurements.
type bench struct {
	o   options
	out io.Writer
	log io.Writer
	dir string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (b *bench) vlogf(format string, args ...any) {
	if b.o.verbose {
		b.logf(format, args...)
	}
}

func (b *bench) main() error {
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.dir = dir
	if b.o.buildVigil {
		b.logf("building cmd/vigil")
		if b.o.vigil, err = lab.BuildVigil(dir); err != nil {
			return err
		}
	} else {
		b.logf("vigil: %s", b.o.vigil)
	}
	loads := []string{b.o.load}
	if b.o.load == "both" {
		loads = []string{"idle", "busy"}
	}
	fmt.Fprintf(b.out, "vigil-bench %s: %d CPUs, load average %s\n\n", time.Now().Format(time.RFC3339), runtime.NumCPU(), loadavg())
	for _, load := range loads {
		stop := func() {}
		if load == "busy" {
			s, err := startHogs(2)
			if err != nil {
				return err
			}
			stop = s
		} else if load != "idle" {
			return fmt.Errorf("--load %q: want idle, busy or both", load)
		}
		err := b.modes(load)
		stop()
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(b.out, "load average at the end: %s\n", loadavg())
	return nil
}

func (b *bench) modes(load string) error {
	for _, m := range b.o.modes {
		var err error
		switch m {
		case "failover":
			err = b.failoverTable(load)
		case "handover":
			err = b.handoverTable(load)
		case "scale":
			err = b.scaleTable(load)
		case "starve":
			err = b.starveTable(load)
		default:
			err = fmt.Errorf("unknown mode %q", m)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) bin(kind e2e.Kind) string {
	if kind == e2e.Vigil {
		return b.o.vigil
	}
	return b.o.keepalived
}

// startHogs runs n `sha256sum /dev/zero` in the root namespace (pure CPU)
// and returns a function that kills them by PID.
func startHogs(n int) (func(), error) {
	var cmds []*exec.Cmd
	stop := func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}
	for range n {
		c := exec.Command("sha256sum", "/dev/zero")
		if err := c.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("cpu hog: %w", err)
		}
		cmds = append(cmds, c)
	}
	return stop, nil
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

// interval parses an advert_int argument.
func interval(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("advert_int %q", s)
	}
	return time.Duration(f * float64(time.Second)).Round(time.Millisecond), nil
}

// version is the VRRP version used at an advert_int: the tutorial's v2 at
// whole seconds, v3 below.
func version(adv time.Duration) int {
	if adv%time.Second == 0 {
		return 2
	}
	return 3
}

// masterDown is keepalived 2.2.7's VRRP_MS_DOWN_TIMER with the default 3
// adverts: 3 × interval + VRRP_TIMER_SKEW, where the skew is (256 - prio) ×
// 1 s / 256 for v2 and (256 - prio) × interval-in-centiseconds × 625/16 µs
// for v3 (keepalived/include/vrrp.h). Computed here, independently of
// vigil's code, as the reference the timer error is taken against.
func masterDown(v int, prio int, adv time.Duration) time.Duration {
	p := int64(256 - prio)
	var skew time.Duration
	if v == 3 {
		cs := int64(adv / (10 * time.Millisecond))
		skew = time.Duration(p*cs*625/16) * time.Microsecond
	} else {
		skew = time.Duration(p*1_000_000/256) * time.Microsecond
	}
	return 3*adv + skew
}
