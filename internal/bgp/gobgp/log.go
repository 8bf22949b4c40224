package gobgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// repeatEvery is how often a NOTIFICATION record that repeats unchanged
// is passed on (with how many were held back).
const repeatEvery = time.Minute

// logHandler is the handler of GoBGP's logger.
//
// GoBGP v4.8.0 exchanges the OPEN messages of the connections it makes
// outside its state machine: an OPEN refused there (a wrong AS on either
// side) shows in no peer state or event, only in its "sent notification"
// or "received notification" log record, at every connect retry. The
// handler records the last such NOTIFICATION of each neighbour (noted, so
// that Sessions can say why a session does not come up) and passes a
// NOTIFICATION record that repeats unchanged at most once per repeatEvery,
// so that a refusing router costs a line a minute, not one a retry.
//
// Concurrency: safe for concurrent use (GoBGP logs from many goroutines);
// noted must not block on the speaker's mu (GoBGP logs while a call that
// holds it waits).
type logHandler struct {
	next   slog.Handler
	attrs  []slog.Attr // from WithAttrs: GoBGP's peer loggers carry the neighbour's Key
	shared *logShared
}

type logShared struct {
	now   func() time.Time
	noted func(neighbor netip.Addr, why string)

	mu   sync.Mutex
	seen map[string]*repeat // by record text
}

type repeat struct {
	passed time.Time
	held   int
}

func newLogHandler(next slog.Handler, now func() time.Time, noted func(netip.Addr, string)) *logHandler {
	return &logHandler{next: next, shared: &logShared{now: now, noted: noted, seen: map[string]*repeat{}}}
}

// Enabled is true from the debug level up whatever the daemon's level:
// GoBGP reports a failed connection attempt at the debug level only.
func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelDebug || h.next.Enabled(ctx, l)
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{next: h.next.WithAttrs(as), attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...), shared: h.shared}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{next: h.next.WithGroup(name), attrs: h.attrs, shared: h.shared}
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	sent := r.Message == "sent notification"
	switch {
	case r.Message == "failed to connect" || r.Message == "Peer Up":
		if addr, err := netip.ParseAddr(h.attr(r, "Key")); err == nil && h.shared.noted != nil {
			why := ""
			if r.Message != "Peer Up" {
				why = "cannot connect: " + h.attr(r, "Error")
			}
			h.shared.noted(addr, why)
		}
		fallthrough
	case !sent && r.Message != "received notification":
		if !h.next.Enabled(ctx, r.Level) {
			return nil
		}
		return h.next.Handle(ctx, r)
	}
	var key string
	var code, sub int64
	var text strings.Builder
	text.WriteString(r.Message)
	visit := func(a slog.Attr) bool {
		switch a.Key {
		case "Key":
			key = a.Value.String()
		case "Code":
			code = a.Value.Int64()
		case "Subcode":
			sub = a.Value.Int64()
		}
		fmt.Fprintf(&text, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		visit(a)
	}
	r.Attrs(visit)
	if addr, err := netip.ParseAddr(key); err == nil && h.shared.noted != nil {
		h.shared.noted(addr, notification(sent, uint8(code), uint8(sub)))
	}
	s := h.shared
	s.mu.Lock()
	now := s.now()
	rp := s.seen[text.String()]
	if rp != nil && now.Sub(rp.passed) < repeatEvery {
		rp.held++
		s.mu.Unlock()
		return nil
	}
	held := 0
	if rp != nil {
		held = rp.held
	}
	// Bounded: records older than the window are forgotten.
	for k, v := range s.seen {
		if now.Sub(v.passed) >= repeatEvery {
			delete(s.seen, k)
		}
	}
	s.seen[text.String()] = &repeat{passed: now}
	s.mu.Unlock()
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", held), slog.String("note", fmt.Sprintf("the same NOTIFICATION %d more times since this was last logged (logged at most once a minute)", held)))
	}
	return h.next.Handle(ctx, r)
}

// attr is the value of the record's (or the logger's) attribute key.
func (h *logHandler) attr(r slog.Record, key string) string {
	var v string
	for _, a := range h.attrs {
		if a.Key == key {
			v = a.Value.String()
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
		}
		return true
	})
	return v
}

// notification describes a NOTIFICATION sent to or received from a
// neighbour, for a session's last error.
func notification(sent bool, code, sub uint8) string {
	what := gbgp.NewNotificationErrorCode(code, sub).String()
	dir := "received from the neighbour"
	if sent {
		dir = "sent to the neighbour"
	}
	hint := ""
	if code == gbgp.BGP_ERROR_OPEN_MESSAGE_ERROR && sub == gbgp.BGP_ERROR_SUB_BAD_PEER_AS {
		if sent {
			hint = ": the AS in its OPEN is not this neighbour's remote_as"
		} else {
			hint = ": the neighbour expects another AS than this bgp block's local_as"
		}
	}
	return fmt.Sprintf("NOTIFICATION %s (%s)%s", dir, what, hint)
}
