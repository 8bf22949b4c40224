package demo

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Narrator prints the demo's story for a person: section titles, short
// explanations, timestamped events and indented command output.
//
// Concurrency: safe for concurrent use; each call writes whole lines.
type Narrator struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewNarrator returns a narrator writing to w that stamps events with now.
func NewNarrator(w io.Writer, now func() time.Time) *Narrator {
	return &Narrator{w: w, now: now}
}

// stampLayout is the time of day, to the millisecond, before each event.
const stampLayout = "15:04:05.000"

// Section starts a new part of the story.
func (n *Narrator) Section(title string) {
	n.write("\n=== " + title + " ===\n")
}

// Explain prints an untimed paragraph (what is about to happen and why).
func (n *Narrator) Explain(format string, args ...any) {
	n.write(fmt.Sprintf(format, args...) + "\n")
}

// Event prints a line stamped with the current time.
func (n *Narrator) Event(format string, args ...any) {
	n.EventAt(n.now(), format, args...)
}

// EventAt prints a line stamped with t (an event that happened earlier, e.g.
// a daemon's transition read from its status).
func (n *Narrator) EventAt(t time.Time, format string, args ...any) {
	n.write(stampLines(t, fmt.Sprintf(format, args...)))
}

// Block prints command output indented under the event that produced it.
func (n *Narrator) Block(text string) {
	n.write(indent(text, "      "))
}

func (n *Narrator) write(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	io.WriteString(n.w, s)
}

// stampLines prefixes the first line of text with t and aligns the others
// under it.
func stampLines(t time.Time, text string) string {
	stamp := t.Format(stampLayout) + "  "
	pad := strings.Repeat(" ", len(stamp))
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	var b strings.Builder
	for i, l := range lines {
		if i == 0 {
			b.WriteString(stamp)
		} else {
			b.WriteString(pad)
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// indent prefixes every non-empty line of text.
func indent(text, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if l != "" {
			b.WriteString(prefix)
			b.WriteString(l)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Secs formats a measured duration for people: "3.612 s".
func Secs(d time.Duration) string {
	return fmt.Sprintf("%.3f s", d.Seconds())
}
