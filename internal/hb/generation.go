package hb

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/atomicfile"
)

// genLen is the size of heartbeat's hb_generation file: the number
// right-aligned in 15 columns and a newline (heartbeat.c GENLEN).
const genLen = 16

// nextGeneration returns the generation of a node starting at now. A
// peer drops every message whose generation is below the highest it has
// seen from the node, so each start must use a larger one.
//
// With path "" (ha.cf `hbgenmethod time`) it is now in Unix seconds, as
// heartbeat's: two starts within the same second share it.
//
// Otherwise (`hbgenmethod file`, heartbeat's default) path holds the last
// generation used, as heartbeat's hb_generation: the new one is that plus
// one, written back (synced) before the node sends anything. A missing or
// unreadable file starts the count at now+1, with a warning. When the file
// cannot be written the node runs with max(now, last+1) and warns: the
// next start may then reuse a generation within the same second.
func nextGeneration(path string, now time.Time, log *slog.Logger) uint64 {
	clock := uint64(now.Unix())
	if path == "" {
		return clock
	}
	var last uint64
	have := false
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Warn("hb: no previous generation", "file", path, "starting_at", clock+1)
	case err != nil:
		log.Warn("hb: cannot read the previous generation", "file", path, "err", err)
	default:
		field := string(data[:min(len(data), genLen)])
		v, perr := strconv.ParseUint(strings.TrimSpace(field), 10, 64)
		if perr != nil {
			log.Warn("hb: broken previous generation", "file", path, "content", strings.TrimSpace(field), "starting_at", clock+1)
		} else {
			last, have = v, true
		}
	}
	gen := clock + 1
	if have {
		gen = last + 1
	}
	if err := writeGeneration(path, gen); err != nil {
		gen = max(clock, last+1)
		log.Warn("hb: cannot keep the generation on disk; using the clock, so a restart within the same second may reuse it and the peer would drop its first messages",
			"file", path, "err", err, "generation", gen)
	}
	return gen
}

func writeGeneration(path string, gen uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, fmt.Appendf(nil, "%*d\n", genLen-1, gen), atomicfile.Options{Perm: 0o644, Sync: true})
}
