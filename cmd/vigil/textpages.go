package main

import (
	"log/slog"
	"time"

	"github.com/vigil-ha/vigil/internal/textpages"
)

// textSettle is how long after the start or a reload the binary's pages
// are released a second time: after the takeovers of instances starting
// as MASTER (Master_Down_Interval: under 4 s at advert_int 1), the second
// burst of gratuitous ARPs (garp_master_delay, 5 s by default) and the
// collector's first cycles once the configuration's garbage is gone
// (releaseConfigMemory). Measured with 1,000 VRRP instances (vigil-bench's
// scale mode): the first release leaves 9.2 MB of the master's 13.3 MB of
// file pages resident, the second 7.0 MB.
const textSettle = 20 * time.Second

// releaseTextPages releases the binary's text and rodata pages
// (textpages.Release) and logs what it dropped. The daemon's Releaser
// calls it after the start and after each reload, once the code only
// those run (configuration parsing, initialisation) has run, and
// textSettle later: what the daemon uses afterwards faults back from the
// page cache, once.
func releaseTextPages(log *slog.Logger) {
	t0 := time.Now()
	rs, err := textpages.Release()
	if err != nil {
		log.Debug("releasing the binary's pages", "err", err)
		return
	}
	var size, rss uint64
	for _, r := range rs {
		size += r.Size()
		rss += r.Rss
	}
	log.Debug("released the binary's pages", "mappings", len(rs), "mapped_kb", size>>10, "resident_kb", rss>>10, "took", time.Since(t0))
}
