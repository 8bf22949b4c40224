package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/demo"
)

// runDemo is `vigil demo`: the keepalived MASTER/BACKUP tutorial replayed in
// network namespaces, narrated with measured failover times.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[--fast] [--keep] [--json]", stderr)
	fast := fs.Bool("fast", false, "VRRPv3 with advert_int 0.1 s: the same story ten times faster")
	keep := fs.Bool("keep", false, "leave the lab up at the end and say how to enter it, until Ctrl-C")
	asJSON := fs.Bool("json", false, "print a machine-readable summary on stdout (the story goes to stderr)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := noArgs(fs); !ok {
		return code
	}
	if err := demo.Preflight(); err != nil {
		fmt.Fprintf(stderr, "vigil demo: %v\n", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "vigil demo: cannot find the vigil binary to run as the nodes' daemon: %v\n", err)
		return 1
	}
	o := demo.Options{Binary: self, Keep: *keep, Out: stdout, Timing: demo.Tutorial}
	if *fast {
		o.Timing = demo.Fast
	}
	if *asJSON {
		o.Out = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	sum, err := demo.Run(ctx, o)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sum)
	}
	switch {
	case err == nil:
		fmt.Fprintf(o.Out, "\nvigil demo: done in %.1f s.\n", time.Since(start).Seconds())
		return 0
	case errors.Is(err, demo.ErrInterrupted):
		fmt.Fprintf(stderr, "\nvigil demo: %v; everything it built has been removed\n", err)
		return 130
	default:
		fmt.Fprintf(stderr, "\nvigil demo: %v\n", err)
		return 1
	}
}
