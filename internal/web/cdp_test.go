package web

// A minimal Chrome DevTools Protocol client over --remote-debugging-pipe:
// Chromium reads NUL-terminated JSON commands on fd 3 and writes responses
// and events on fd 4. No port, no websocket, no dependency; the browser
// runs inside a lab network namespace, so it can reach nothing but the
// test's own server on that namespace's loopback.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

type cdpMsg struct {
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

type cdp struct {
	w       *os.File // our end of the browser's fd 3
	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMsg
	events  chan cdpMsg
	done    chan struct{}
	err     error
}

func newCDP(w, r *os.File) *cdp {
	c := &cdp{w: w, pending: map[int64]chan cdpMsg{}, events: make(chan cdpMsg, 1024), done: make(chan struct{})}
	go c.read(r)
	return c
}

func (c *cdp) read(r *os.File) {
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
		var m cdpMsg
		if err := json.Unmarshal(b[:len(b)-1], &m); err != nil {
			continue
		}
		if m.ID != 0 {
			c.mu.Lock()
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		select {
		case c.events <- m:
		default: // nobody is reading events fast enough: drop
		}
	}
}

// call sends a command (to the browser, or to a page when session is set)
// and decodes its result into out (may be nil).
func (c *cdp) call(ctx context.Context, session, method string, params any, out any) error {
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
	ch := make(chan cdpMsg, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	b, _ := json.Marshal(cdpMsg{ID: id, Method: method, Params: p, SessionID: session})
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
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("cdp: %s: %w", method, ctx.Err())
	}
}

// eval evaluates a JavaScript expression in the page and returns its value.
func (c *cdp) eval(ctx context.Context, session, expr string) (json.RawMessage, error) {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := c.call(ctx, session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return nil, err
	}
	if res.ExceptionDetails != nil {
		return nil, fmt.Errorf("cdp: evaluate %q: %s", expr, res.ExceptionDetails.Text)
	}
	return res.Result.Value, nil
}
