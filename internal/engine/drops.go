package engine

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/pace"
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
// lines. It is owned by the engine loop. An instance meets a few reasons at
// most: a short list, no maps.
type dropLimiter struct {
	reasons []dropReason
}

type dropReason struct {
	reason string
	// counted are the drops the engine itself saw (codec, send errors).
	counted    uint64
	lastLog    time.Time
	suppressed uint64
}

// of returns the entry of reason, added if new.
func (l *dropLimiter) of(reason string) *dropReason {
	for i := range l.reasons {
		if l.reasons[i].reason == reason {
			return &l.reasons[i]
		}
	}
	l.reasons = append(l.reasons, dropReason{reason: reason})
	return &l.reasons[len(l.reasons)-1]
}

// counts returns the drops the engine counted, by reason (nil if none).
func (l *dropLimiter) counts() map[string]uint64 {
	var out map[string]uint64
	for _, r := range l.reasons {
		if r.counted > 0 {
			if out == nil {
				out = map[string]uint64{}
			}
			out[r.reason] = r.counted
		}
	}
	return out
}

// note counts one drop and logs it unless a line for the same reason was
// logged less than dropLogEvery ago, or the engine's budget b is spent.
func (l *dropLimiter) note(b *dropBudget, log *slog.Logger, now time.Time, instance, reason string, src netip.Addr, detail string) {
	lvl := slog.LevelWarn
	if routineDrops[reason] {
		lvl = slog.LevelDebug
	}
	if !log.Enabled(context.Background(), lvl) {
		return
	}
	suppressed, ok := l.allow(b, log, now, reason)
	if !ok {
		return
	}
	attrs := []any{"instance", instance, "reason", reason, "detail", detail}
	if src.IsValid() {
		attrs = append(attrs, "src", src)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	log.Log(context.Background(), lvl, "packet dropped", attrs...)
}

// allow is note's gate, also used for lines about adverts that are not
// dropped but that anyone on the LAN can send at will: it reports whether a
// line for reason may be logged at now, and how many were suppressed since
// the last one.
func (l *dropLimiter) allow(b *dropBudget, log *slog.Logger, now time.Time, reason string) (suppressed uint64, ok bool) {
	r := l.of(reason)
	if !pace.Allow(&r.lastLog, now, dropLogEvery) {
		r.suppressed++
		return 0, false
	}
	if !b.take(log, now) {
		// Held back: this instance and reason wait for their next period
		// like a logged line, so the budget counts lines, not packets.
		r.suppressed++
		return 0, false
	}
	suppressed, r.suppressed = r.suppressed, 0
	return suppressed, true
}

// dropLogBudget is how many "packet dropped" lines the whole engine writes
// per dropLogEvery. The per-instance, per-reason limit alone lets a flood
// that reaches every instance with every kind of bad advert log instances ×
// reasons lines each period (1,000 instances: a hundred lines a second).
const dropLogBudget = 20

// dropBudget is the engine-wide allowance of drop log lines, in windows of
// dropLogEvery. It is owned by the engine loop.
type dropBudget struct {
	window time.Time // start of the current window
	used   int
	held   uint64 // lines refused in the current window
}

// take reports whether one more drop line may be logged at now. The first
// line of a window that follows refused ones says how many were refused.
func (b *dropBudget) take(log *slog.Logger, now time.Time) bool {
	if pace.Allow(&b.window, now, dropLogEvery) {
		if b.held > 0 {
			log.Warn("packet drop lines held back: the engine logs at most 20 per 10 s; every drop is counted in vigil_vrrp_adverts_dropped_total",
				"held", b.held)
		}
		b.used, b.held = 0, 0
	}
	if b.used >= dropLogBudget {
		b.held++
		return false
	}
	b.used++
	return true
}

// codecDrops counts a packet the codec rejected before it reached the state
// machine (which counts its own drops).
func (in *instance) codecDrops(reason string) {
	in.limiter.of(reason).counted++
}
