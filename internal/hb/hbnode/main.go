// Command hbnode runs one heartbeat-compatible vigil node from an ha.d
// directory. It is the test harness's daemon (the namespace tests build it
// and run one per lab host) until `vigil run --ha-dir` is wired to hb.Node;
// it exits 0 after a graceful stop on SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigil-ha/vigil/internal/hb"
)

func main() {
	dir := flag.String("ha-dir", "/etc/ha.d", "directory with ha.cf, haresources, authkeys")
	node := flag.String("node", "", "this node's name (default: uname -n)")
	status := flag.String("status", "", "write the JSON status snapshot to this file")
	initDir := flag.String("init-dir", "/etc/init.d", "directory of LSB scripts")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, ds := hb.Load(*dir)
	for _, d := range ds {
		fmt.Fprintln(os.Stderr, d)
	}
	if ds.HasErrors() {
		os.Exit(1)
	}
	n, err := hb.NewNode(hb.Options{Config: cfg, NodeName: *node, Log: log, StatusFile: *status, InitDir: *initDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := n.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
