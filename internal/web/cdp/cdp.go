// Package cdp is a minimal Chrome DevTools Protocol client over
// --remote-debugging-pipe, for the tests that drive headless Chromium:
// Chromium reads NUL-terminated JSON commands on its fd 3 and writes
// responses and events on its fd 4. No port, no websocket, no dependency.
//
// Concurrency: a Client is safe for concurrent use.
package cdp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

// Msg is one protocol message: a command, a response or an event.
type Msg struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// Client talks to one browser.
type Client struct {
	w        *os.File // our end of the browser's fd 3
	mu       sync.Mutex
	nextID   int64
	pending  map[int64]chan Msg
	problems map[string][]string // by session
	done     chan struct{}
	err      error
}

// New starts reading r (the browser's fd 4) and sends commands on w (its
// fd 3).
func New(w, r *os.File) *Client {
	c := &Client{w: w, pending: map[int64]chan Msg{}, problems: map[string][]string{}, done: make(chan struct{})}
	go c.read(r)
	return c
}

// Done is closed when the browser's pipe closes.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) read(r *os.File) {
	defer close(c.done)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		b, err := br.ReadBytes(0)
		if err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("cdp: browser pipe closed: %w", err)
			c.mu.Unlock()
			return
		}
		var m Msg
		if json.Unmarshal(b[:len(b)-1], &m) != nil {
			continue
		}
		c.mu.Lock()
		if m.ID != 0 {
			if ch := c.pending[m.ID]; ch != nil {
				delete(c.pending, m.ID)
				ch <- m
			}
		} else if p := Problem(m); p != "" && m.SessionID != "" {
			c.problems[m.SessionID] = append(c.problems[m.SessionID], p)
		}
		c.mu.Unlock()
	}
}

// Problem describes an event that reports a page error: an uncaught
// exception, a console error, warning or failed assertion, a browser log
// error or warning (failed loads, CSP violations). "" for other events.
func Problem(m Msg) string {
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

// Problems returns the page problems reported so far in a session (see
// Problem); the session must have enabled Runtime and Log.
func (c *Client) Problems(session string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.problems[session]...)
}

// Call sends a command (to the browser, or to a page when session is set)
// and decodes its result into out (may be nil).
func (c *Client) Call(ctx context.Context, session, method string, params, out any) error {
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.nextID++
	id := c.nextID
	ch := make(chan Msg, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	b, _ := json.Marshal(Msg{ID: id, Method: method, Params: p, SessionID: session})
	if _, err := c.w.Write(append(b, 0)); err != nil {
		return fmt.Errorf("cdp: %s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("cdp: %s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("cdp: %s: %w", method, ctx.Err())
	}
}

// Attach opens a page on about:blank and returns its session, with the
// Runtime, Log and Page domains enabled (so Problems sees its errors).
func (c *Client) Attach(ctx context.Context) (string, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := c.Call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return "", err
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		return "", err
	}
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		if err := c.Call(ctx, att.SessionID, m, map[string]any{}, nil); err != nil {
			return "", err
		}
	}
	return att.SessionID, nil
}

// Eval evaluates a JavaScript expression in a page and returns its JSON
// value.
func (c *Client) Eval(ctx context.Context, session, expr string) (json.RawMessage, error) {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := c.Call(ctx, session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return nil, err
	}
	if res.ExceptionDetails != nil {
		return nil, fmt.Errorf("cdp: evaluate %q: %s", expr, res.ExceptionDetails.Text)
	}
	return res.Result.Value, nil
}
