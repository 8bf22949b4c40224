package ops

// A small Chrome DevTools Protocol client over --remote-debugging-pipe (the
// same approach as internal/web's own browser test, whose client is not
// exported): Chromium reads NUL-terminated JSON commands on fd 3 and writes
// replies and events on fd 4. No port and no websocket; the browser runs
// inside a lab namespace and reaches only that namespace.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

type cdpMsg struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// browser is a headless Chromium with one page attached.
type browser struct {
	w       *os.File
	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMsg
	done    chan struct{}
	err     error
	session string

	problems []string // console errors/warnings, exceptions, log errors of the page
}

// startBrowser runs Chromium inside h and opens a page on about:blank.
func startBrowser(t *testing.T, ctx context.Context, h *lab.Host, chromium string) *browser {
	t.Helper()
	toR, toW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(context.Background(), chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--mute-audio",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.ExtraFiles = []*os.File{toR, fromW} // fd 3 commands in, fd 4 replies out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toR.Close()
	fromW.Close()
	b := &browser{w: toW, pending: map[int64]chan cdpMsg{}, done: make(chan struct{})}
	go b.read(fromR)
	t.Cleanup(func() {
		toW.Close() // Chromium exits when its command pipe closes
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Cancel() // kills the process group
			<-exited
		}
		fromR.Close()
		if t.Failed() {
			t.Logf("chromium output:\n%s", stderr.String())
		}
	})

	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	b.session = att.SessionID
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		if err := b.call(ctx, b.session, m, map[string]any{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func (b *browser) read(r *os.File) {
	defer close(b.done)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.err = fmt.Errorf("cdp: browser pipe closed: %w", err)
			b.mu.Unlock()
			return
		}
		var m cdpMsg
		if json.Unmarshal(line[:len(line)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch := b.pending[m.ID]; ch != nil {
				delete(b.pending, m.ID)
				ch <- m
			}
		} else if m.SessionID == b.session && b.session != "" {
			if p := problem(m); p != "" {
				b.problems = append(b.problems, p)
			}
		}
		b.mu.Unlock()
	}
}

// problem returns a description of a page event that reports an error.
func problem(m cdpMsg) string {
	switch m.Method {
	case "Runtime.exceptionThrown":
		return "exception: " + string(m.Params)
	case "Runtime.consoleAPICalled":
		var e struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(m.Params, &e)
		if e.Type == "error" || e.Type == "warning" || e.Type == "assert" {
			return "console." + e.Type + ": " + string(m.Params)
		}
	case "Log.entryAdded":
		var e struct {
			Entry struct{ Level, Source, Text, URL string } `json:"entry"`
		}
		_ = json.Unmarshal(m.Params, &e)
		if e.Entry.Level == "error" || e.Entry.Level == "warning" {
			return fmt.Sprintf("log %s/%s: %s %s", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL)
		}
	}
	return ""
}

func (b *browser) pageProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// call sends a command and decodes its result into out (may be nil).
func (b *browser) call(ctx context.Context, session, method string, params, out any) error {
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return b.err
	}
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMsg, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg, _ := json.Marshal(cdpMsg{ID: id, Method: method, Params: p, SessionID: session})
	if _, err := b.w.Write(append(msg, 0)); err != nil {
		return fmt.Errorf("cdp: %s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("cdp: %s: %s", method, m.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("cdp: %s: %w", method, ctx.Err())
	}
}

// eval evaluates a JavaScript expression in the page and returns its JSON
// value.
func (b *browser) eval(ctx context.Context, expr string) (json.RawMessage, error) {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.call(ctx, b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return nil, err
	}
	if res.ExceptionDetails != nil {
		return nil, fmt.Errorf("cdp: evaluate %q: %s", expr, res.ExceptionDetails.Text)
	}
	return res.Result.Value, nil
}

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

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
