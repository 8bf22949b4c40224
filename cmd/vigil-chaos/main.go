// Command vigil-chaos runs seeded random faults against three VRRP nodes in
// a lab of network namespaces (internal/chaos) and prints a table per fault
// kind and the broken invariants; it writes a timeline SVG. The soak mode
// runs many instances at a short advert interval on a pair with both cores
// busy and counts false failovers.
//
//	vigil-chaos --seed 7 --faults 200 --advert-int 0.1 --svg chaos.svg
//	vigil-chaos --seed 7 --faults 50 --keepalived --kinds kill,stop,partition
//	vigil-chaos soak --instances 100 --advert-int 0.01 --duration 10m
//	vigil-chaos soak --duration 60s --rt-priority 60 --provoke stop@20s:150ms,rthog@40s:150ms
//
// It needs root. It exits 1 when vigil broke an invariant (those the
// keepalived node breaks around faults keepalived is known to mishandle are
// listed apart and do not count), 2 on bad usage.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/vigil-ha/vigil/internal/chaos"
	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
)

func main() {
	chaos.CanaryMain() // the soak's canary re-executes this program
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	soak := len(args) > 0 && args[0] == "soak"
	if soak {
		args = args[1:]
	}
	fs := pflag.NewFlagSet("vigil-chaos", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Uint64("seed", 0, "schedule seed (0: from the clock, printed)")
	faults := fs.Int("faults", 20, "number of faults")
	kinds := fs.String("kinds", "all", "fault kinds, comma-separated: "+fmt.Sprint(chaos.AllKinds))
	adv := fs.String("advert-int", "0.1", "advert_int in seconds (soak: 0.01)")
	cover := fs.Bool("cover", false, "every fault kind at least once (the first faults are a permutation of the kinds)")
	ka := fs.Bool("keepalived", false, "run keepalived 2.2.7 on r3 (a mixed cluster)")
	vigil := fs.String("vigil", "", "vigil binary (default: go build ./cmd/vigil)")
	kaBin := fs.String("keepalived-bin", e2e.KeepalivedBin, "keepalived binary")
	svg := fs.String("svg", "chaos.svg", "timeline SVG file (empty: none)")
	logsDir := fs.String("logs", "", "directory for the daemons' logs and events.txt, every recorded event in time order (soak: soak-events.txt; empty: none)")
	instances := fs.Int("instances", 100, "soak: VRRP instances on the pair")
	duration := fs.Duration("duration", 10*time.Minute, "soak: how long")
	hogs := fs.Int("hogs", 2, "soak: busy loops keeping the cores busy")
	nice := fs.Int("nice", 0, "soak: nice value for the daemons' threads (e.g. -10)")
	rtPrio := fs.Int("rt-priority", 0, "vrrp_rt_priority for every daemon (SCHED_RR; 0: not set)")
	provokeFlag := fs.String("provoke", "", "soak: stalls caused on purpose, comma-separated KIND@AT:FOR; KIND stop (SIGSTOP of the master), rthog (SCHED_RR busy loops at the daemons' priority on every CPU) or lowrthog (the same 10 below it: starves normal-priority threads only), e.g. stop@20s:150ms,rthog@40s:150ms")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	if soak && !fs.Changed("advert-int") {
		*adv = "0.01"
	}
	iv, err := strconv.ParseFloat(*adv, 64)
	if err != nil || iv <= 0 {
		fmt.Fprintf(stderr, "vigil-chaos: --advert-int %q\n", *adv)
		return 2
	}
	advert := time.Duration(iv * float64(time.Second)).Round(time.Millisecond)
	provocations, err := chaos.ParseProvocations(*provokeFlag)
	if err != nil {
		fmt.Fprintf(stderr, "vigil-chaos: %v\n", err)
		return 2
	}
	ks, err := chaos.ParseKinds(*kinds)
	if err != nil {
		fmt.Fprintf(stderr, "vigil-chaos: %v\n", err)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "vigil-chaos: needs root (network namespaces)")
		return 1
	}
	if _, err := lab.Sweep(); err != nil {
		fmt.Fprintf(stderr, "vigil-chaos: %v\n", err)
	}
	dir, err := os.MkdirTemp("", "vigil-chaos-")
	if err != nil {
		fmt.Fprintf(stderr, "vigil-chaos: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *vigil == "" {
		if *vigil, err = lab.BuildVigil(dir); err != nil {
			fmt.Fprintf(stderr, "vigil-chaos: %v\n", err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if soak {
		r, err := chaos.Soak(ctx, chaos.SoakOptions{
			Instances: *instances, Advert: advert, Duration: *duration, Hogs: *hogs, Nice: *nice, RTPriority: *rtPrio,
			Provoke:  provocations,
			VigilBin: *vigil, Dir: dir, Log: stderr,
		})
		if r != nil {
			chaos.WriteSoak(stdout, r)
			if *logsDir != "" {
				if err := writeFile(filepath.Join(*logsDir, "soak-events.txt"), func(w io.Writer) { chaos.WriteSoakEvents(w, r) }); err != nil {
					fmt.Fprintf(stderr, "vigil-chaos: %v\n", err)
				} else {
					fmt.Fprintf(stdout, "events: %s\n", filepath.Join(*logsDir, "soak-events.txt"))
				}
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "vigil-chaos: soak: %v\n", err)
			return 1
		}
		if r.FalseFailovers > 0 {
			return 1
		}
		return 0
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	out, err := chaos.Run(ctx, chaos.Options{
		Seed: *seed, Faults: *faults, Kinds: ks, Cover: *cover, Advert: advert, Keepalived: *ka, RTPriority: *rtPrio,
		VigilBin: *vigil, KeepalivedBin: *kaBin, Dir: dir, Log: stderr,
	})
	if out == nil {
		fmt.Fprintf(stderr, "vigil-chaos: %v\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil-chaos: %v\n", err)
	}
	chaos.WriteTable(stdout, out)
	if *svg != "" {
		f, err := os.Create(*svg)
		if err == nil {
			err = chaos.WriteSVG(f, out)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "vigil-chaos: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "timeline: %s\n", *svg)
	}
	if *logsDir != "" {
		os.MkdirAll(*logsDir, 0o755)
		for name, log := range out.Logs {
			os.WriteFile(filepath.Join(*logsDir, name+".log"), []byte(log), 0o644)
		}
		if f, err := os.Create(filepath.Join(*logsDir, "events.txt")); err == nil {
			chaos.WriteEvents(f, out)
			f.Close()
		}
	}
	rt := ""
	if *rtPrio != 0 {
		rt = fmt.Sprintf(" --rt-priority %d", *rtPrio)
	}
	fmt.Fprintf(stdout, "reproduce: vigil-chaos --seed %d --faults %d --kinds %s --advert-int %s%s%s%s\n", *seed, *faults, *kinds, *adv,
		map[bool]string{true: " --keepalived"}[*ka], map[bool]string{true: " --cover"}[*cover], rt)
	if len(out.Result.VigilBroken()) > 0 || err != nil {
		return 1
	}
	return 0
}

// writeFile creates dir/name's directory and writes the file with f.
func writeFile(name string, f func(io.Writer)) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	fh, err := os.Create(name)
	if err != nil {
		return err
	}
	f(fh)
	return fh.Close()
}
