package dump

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/atomicfile"
	"github.com/vigil-ha/vigil/internal/status"
)

// Kind is one of the three dumps.
type Kind int

const (
	Data     Kind = iota // keepalived.data (SIGUSR1)
	Stats                // keepalived.stats (SIGUSR2)
	JSONDump             // keepalived.json (SIGJSON)
)

func (k Kind) String() string {
	switch k {
	case Data:
		return "data"
	case Stats:
		return "stats"
	case JSONDump:
		return "json"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// SIGJSON is keepalived's JSON dump signal: SIGRTMIN+2 (lib/signals.h), and
// glibc's SIGRTMIN is 34 (it keeps 32 and 33 for itself), so 36. It is what
// `keepalived --signum=JSON` prints and what exporters send.
const SIGJSON = syscall.Signal(36)

// Signum returns the signal keepalived's --signum=NAME prints, for the names
// vigil honours: STOP, RELOAD, DATA, STATS, JSON (keepalived 2.2.7
// lib/signals.c get_signum). STATS_CLEAR is refused: vigil does not clear
// counters on request.
func Signum(name string) (syscall.Signal, bool) {
	switch name {
	case "STOP":
		return syscall.SIGTERM, true
	case "RELOAD":
		return syscall.SIGHUP, true
	case "DATA":
		return syscall.SIGUSR1, true
	case "STATS":
		return syscall.SIGUSR2, true
	case "JSON":
		return SIGJSON, true
	}
	return 0, false
}

// SignalKind tells which dump a signal asks for.
func SignalKind(sig os.Signal) (Kind, bool) {
	switch sig {
	case syscall.SIGUSR1:
		return Data, true
	case syscall.SIGUSR2:
		return Stats, true
	case SIGJSON:
		return JSONDump, true
	}
	return 0, false
}

// Paths are where the dumps go.
type Paths struct {
	Data, Stats, JSON string
}

// DefaultPaths returns keepalived's locations: $TMPDIR when it is an
// absolute path, else /tmp (keepalived 2.2.7 lib/utils.c set_tmp_dir).
// Pass os.Getenv.
func DefaultPaths(getenv func(string) string) Paths {
	dir := getenv("TMPDIR")
	if !filepath.IsAbs(dir) {
		dir = "/tmp"
	}
	return PathsIn(dir)
}

// PathsIn returns the keepalived file names inside dir.
func PathsIn(dir string) Paths {
	return Paths{
		Data:  filepath.Join(dir, "keepalived.data"),
		Stats: filepath.Join(dir, "keepalived.stats"),
		JSON:  filepath.Join(dir, "keepalived.json"),
	}
}

// Path returns the file of a kind.
func (p Paths) Path(k Kind) string {
	switch k {
	case Data:
		return p.Data
	case Stats:
		return p.Stats
	}
	return p.JSON
}

// Writer returns the writer of a kind.
func Writer(k Kind) func(io.Writer, status.Snapshot) error {
	switch k {
	case Data:
		return WriteData
	case Stats:
		return WriteStats
	}
	return WriteJSON
}

// Write writes the dump of kind k to its path and returns the path.
func (p Paths) Write(k Kind, s status.Snapshot) (string, error) {
	path := p.Path(k)
	return path, WriteFile(path, s, Writer(k))
}

// WriteFile writes a dump to path the way keepalived's fopen_safe does
// (atomicfile): a new temporary file in the same directory, mode 0600 (the
// dumps describe the cluster, and keepalived's own umask 0177 gives the
// same), renamed over path. A reader never sees half a file, and a symlink
// planted at path in a world-writable /tmp is replaced, not followed.
func WriteFile(path string, s status.Snapshot, write func(io.Writer, status.Snapshot) error) error {
	err := atomicfile.Write(path, atomicfile.Options{Perm: 0o600}, func(w io.Writer) error { return write(w, s) })
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	return nil
}

// SnapshotFunc returns the daemon's state (the engine's Snapshot method).
type SnapshotFunc func(ctx context.Context) (status.Snapshot, error)

// Serve writes a dump for each signal that arrives on sigs (SIGUSR1,
// SIGUSR2, SIGJSON; others are ignored) until ctx is done. A failed
// snapshot or write is logged and does not stop it.
func Serve(ctx context.Context, sigs <-chan os.Signal, paths Paths, snap SnapshotFunc, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case sig := <-sigs:
			k, ok := SignalKind(sig)
			if !ok {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			s, err := snap(sctx)
			cancel()
			if err != nil {
				log.Warn("dump: no snapshot", "dump", k.String(), "err", err)
				continue
			}
			path, err := paths.Write(k, s)
			if err != nil {
				log.Warn("dump: write failed", "dump", k.String(), "err", err)
				continue
			}
			log.Debug("dump written", "dump", k.String(), "path", path, "signal", sig.String())
		}
	}
}

// Run subscribes to SIGUSR1, SIGUSR2 and SIGJSON, serves them until ctx is
// done, then unsubscribes. Until Run has subscribed, these signals keep
// their default action (terminate): the daemon should call it early, or
// subscribe its own channel and call Serve.
func Run(ctx context.Context, paths Paths, snap SnapshotFunc, log *slog.Logger) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, SIGJSON)
	defer signal.Stop(sigs)
	return Serve(ctx, sigs, paths, snap, log)
}
