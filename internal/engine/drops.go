package engine

import (
	"context"
	"log/slog"
	"net/netip"
	"time"
)

// dropLogEvery is the least time between two log lines for the same instance
// and drop reason; the lines in between are counted and reported with the
// next one.
const dropLogEvery = 10 * time.Second

// routineDrops are drops that normal operation produces (a backup ignoring a
// lower-priority master it is about to preempt, adverts arriving while
// stopped): counted, logged at debug level only.
var routineDrops = map[string]bool{"lower_priority": true, "inactive": true}

// dropLimiter counts dropped packets by reason and rate-limits their log
// lines. It is owned by the engine loop.
type dropLimiter struct {
	counts     map[string]uint64 // every drop the engine itself saw (codec, send errors)
	lastLog    map[string]time.Time
	suppressed map[string]uint64
}

// note counts one drop and logs it unless a line for the same reason was
// logged less than dropLogEvery ago.
func (l *dropLimiter) note(log *slog.Logger, now time.Time, instance, reason string, src netip.Addr, detail string) {
	if l.lastLog == nil {
		l.lastLog = map[string]time.Time{}
		l.suppressed = map[string]uint64{}
	}
	if last, ok := l.lastLog[reason]; ok && now.Sub(last) < dropLogEvery {
		l.suppressed[reason]++
		return
	}
	l.lastLog[reason] = now
	attrs := []any{"instance", instance, "reason", reason, "detail", detail}
	if src.IsValid() {
		attrs = append(attrs, "src", src)
	}
	if n := l.suppressed[reason]; n > 0 {
		attrs = append(attrs, "suppressed", n)
		l.suppressed[reason] = 0
	}
	lvl := slog.LevelWarn
	if routineDrops[reason] {
		lvl = slog.LevelDebug
	}
	log.Log(context.Background(), lvl, "packet dropped", attrs...)
}

// codecDrops counts a packet the codec rejected before it reached the state
// machine (which counts its own drops).
func (in *instance) codecDrops(reason string) {
	if in.limiter.counts == nil {
		in.limiter.counts = map[string]uint64{}
	}
	in.limiter.counts[reason]++
}
