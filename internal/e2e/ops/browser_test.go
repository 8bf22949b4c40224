package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/web/cdp"
)

// browser is a headless Chromium inside a lab host (internal/web/cdp) with
// one page attached.
type browser struct {
	*cdp.Client
	session string
}

// startBrowser runs Chromium inside h and opens a page on about:blank.
func startBrowser(t *testing.T, ctx context.Context, h *lab.Host, chromium string) *browser {
	t.Helper()
	c := cdp.Launch(t, ctx, h.Command, chromium)
	sess, err := c.Attach(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{Client: c, session: sess}
}

func (b *browser) call(ctx context.Context, session, method string, params, out any) error {
	return b.Call(ctx, session, method, params, out)
}

func (b *browser) eval(ctx context.Context, expr string) (json.RawMessage, error) {
	return b.Eval(ctx, b.session, expr)
}

// pageProblems are the page's console errors and warnings, exceptions and
// log errors so far.
func (b *browser) pageProblems() []string { return b.Problems(b.session) }

// waitFor evaluates expr until it equals want, and returns how long that
// took.
func (b *browser) waitFor(t *testing.T, ctx context.Context, what, expr string, want any, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	wantJSON, _ := json.Marshal(want)
	var last json.RawMessage
	for time.Since(start) < within {
		v, err := b.eval(ctx, expr)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if bytes.Equal(v, wantJSON) {
			return time.Since(start)
		}
		last = v
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: the page shows %s after %v, want %s\npage problems: %v", what, last, within, wantJSON, b.pageProblems())
	return 0
}

// textOf is a JavaScript expression for the text of the first element
// matching a CSS selector (null when none).
func textOf(sel string) string {
	return fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.textContent:null})()`, sel)
}
