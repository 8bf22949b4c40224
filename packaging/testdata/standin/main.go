// Command standin is a test double for the packaging tests' harness: it
// answers `help`, `version`, `check -f FILE` and `run -f FILE` the way the
// packaged unit expects vigil to (notify protocol, watchdog, SIGHUP reload,
// SIGTERM stop), so the harness that runs the real binary is itself tested.
// It is not vigil and is never packaged.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/sdnotify"
)

func main() {
	if len(os.Args) < 2 {
		os.Exit(2)
	}
	switch os.Args[1] {
	case "help":
		fmt.Println("usage: vigil <command> [flags]\n\ncommands:\n  check      check\n  run        run\n  version    version")
	case "version":
		fmt.Println("vigil standin")
	case "check":
		if len(os.Args) != 4 || os.Args[2] != "-f" {
			os.Exit(2)
		}
		if _, err := os.Stat(os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "run":
		os.Exit(run())
	default:
		os.Exit(2)
	}
}

func run() int {
	if len(os.Args) < 4 || os.Args[2] != "-f" {
		return 2
	}
	if _, err := os.Stat(os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n := sdnotify.FromEnv(os.Getenv)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wd, err := sdnotify.WatchdogInterval(os.Getenv, os.Getpid())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- n.Watchdog(ctx, wd, func(context.Context) bool { return true }, nil) }()
	if err := n.Ready("standin running"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			n.Reloading()
			time.Sleep(10 * time.Millisecond)
			n.Ready("standin reloaded")
		default:
			n.Stopping()
			cancel()
			<-done
			return 0
		}
	}
	return 0
}
