// Command vigil-bgp runs vigil's BGP speaker (an embedded GoBGP server) in
// a process of its own, so that GoBGP, gRPC and their dependencies are
// neither linked into nor resident in the vigil daemon, which holds no
// BGP code beyond what to announce and when (package bgp).
//
// vigil starts it when its configuration has a bgp block (installed as
// /usr/lib/vigil/vigil-bgp; see bgp.FindHelper) and talks to it over a
// socket on fd 3 (bgp.Serve). It logs slog JSON records on stderr, which
// vigil logs again. It exits when that socket closes, after closing its
// sessions, and is killed when vigil dies (PR_SET_PDEATHSIG). It is not
// meant to be run by hand.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/bgp"
	"github.com/vigil-ha/vigil/internal/bgp/gobgp"
	"github.com/vigil-ha/vigil/internal/textpages"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// releaseSettle is how long after its start the helper drops its
// binary's pages a second time, once the speaker runs (vigil sends its
// configuration at once) and its sessions have had their first tries.
const releaseSettle = 20 * time.Second

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-v":
			fmt.Printf("vigil-bgp %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return 0
		}
		fmt.Fprintf(stderr, "vigil-bgp: no arguments expected (%q): vigil starts this helper for its bgp block\n", args[0])
		return 2
	}
	// Until vigil gives its own level (start), everything.
	level := &slog.LevelVar{}
	level.Set(slog.LevelDebug)
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	// The parent may have died before the child's PR_SET_PDEATHSIG took
	// effect: then this process is an orphan already.
	if os.Getppid() == 1 {
		log.Error("vigil-bgp: vigil is gone")
		return 1
	}
	// os.NewFile is never nil for fd 3; a closed or wrong fd 3 fails here.
	f := os.NewFile(3, "vigil")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "vigil-bgp: fd 3 is not vigil's socket (%v): vigil starts this helper for its bgp block\n", err)
		return 2
	}
	defer nc.Close()
	// SIGTERM (an operator) stops it as the socket's EOF does; a
	// terminal's SIGINT or SIGHUP is the daemon's business.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	// What starting GoBGP runs once (its packages' initialisation, the
	// configuration, the first sessions) need not stay resident: drop the
	// binary's text and rodata now and once those have run.
	pages := textpages.NewReleaser(releaseSettle, func() { textpages.ReleaseAndLog(log) })
	go pages.Run(ctx)
	pages.Kick()
	err = bgp.Serve(ctx, nc, func(cfg bgp.SpeakerConfig) bgp.Backend { return gobgp.NewSpeaker(cfg, log) }, log, level)
	if err != nil {
		log.Error("vigil-bgp stopped", "err", err)
		return 1
	}
	return 0
}
