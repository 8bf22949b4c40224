package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/track"
	"github.com/vigil-ha/vigil/internal/track/filewatch"
)

// File is FILE_CHECK: it reads a number from a tracked file and turns it
// into the real server's state and a weight offset, as keepalived 2.2.7
// track_file.c does for real servers (process_track_file,
// update_track_file_status, process_update_checker_track_file_status):
//
//   - the first 127 bytes are read as a C integer (strtol base 0: leading
//     blanks, a sign, "0x" hex or "0" octal); no digits, or no file, is 0;
//     a value outside the 32-bit range is ignored and the previous one kept;
//   - with Weight 0, 0 is up and anything else down (Reverse inverts);
//   - otherwise value × Weight (× −1 with Reverse) is the weight offset, and
//     only a product at or below −2^31 (IPVS_WEIGHT_FAULT) means down.
//
// keepalived watches the file with inotify; vigil reads it at every check
// (Defaults(KindFile) polls each second).
//
// Concurrency: Check may be called concurrently.
type File struct {
	// Path is the tracked file (track_file's file).
	Path string
	// Weight multiplies the value (FILE_CHECK weight, else the
	// track_file's weight, which defaults to 1).
	Weight int
	// Reverse negates the product (weight ... reverse).
	Reverse bool

	mu   sync.Mutex
	last int64
}

// Check reads the file.
func (f *File) Check(ctx context.Context) check.Result {
	start := time.Now()
	v, note := f.read()
	r := check.Result{Latency: elapsed(start)}
	mult := int64(1)
	if f.Reverse {
		mult = -1
	}
	if f.Weight == 0 {
		// update_track_file_status: "If the tracking weight is 0, a
		// non-zero value means failure, a 0 status means success".
		if (v != 0) != f.Reverse {
			r.Reason = fmt.Sprintf("%s: value %d%s", f.Path, v, note)
			return r
		}
		r.OK, r.Reason = true, fmt.Sprintf("%s: value %d%s", f.Path, v, note)
		return r
	}
	p := v * int64(f.Weight) * mult
	if p <= math.MinInt32 {
		r.Reason = fmt.Sprintf("%s: value %d × weight %d is a fault%s", f.Path, v, f.Weight*int(mult), note)
		return r
	}
	w := int(min(p, math.MaxInt32))
	r.OK, r.WeightDelta = true, &w
	r.Reason = fmt.Sprintf("%s: value %d, weight offset %d%s", f.Path, v, w, note)
	return r
}

// read returns the file's value and a note on anything unusual.
func (f *File) read() (int64, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := filewatch.Read(f.Path)
	if err != nil {
		// keepalived: an unreadable or deleted file counts as 0.
		f.last = 0
		if errors.Is(err, fs.ErrNotExist) {
			return 0, " (no file)"
		}
		return 0, fmt.Sprintf(" (%v)", err)
	}
	v, ok := track.ParseFileValue(b)
	if !ok {
		return f.last, fmt.Sprintf(" (invalid number %q ignored)", b)
	}
	f.last = v
	return v, ""
}
