package bgp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/sched"
)

// The daemon and the vigil-bgp helper talk over a socketpair (the
// helper's fd 3): one JSON object per line each way. The daemon sends
// requests with ids; the helper answers each with a response carrying
// the same id, in any order. The first request is start; the helper runs
// until its socket closes, then closes its sessions and exits.
//
// The helper's stdout and stderr carry its log: slog JSON records, which
// the daemon logs again (forwardLogs).

// protocolVersion changes whenever a message changes meaning: a daemon
// and a helper from different builds refuse each other at start.
const protocolVersion = 1

// Operations.
const (
	opStart     = "start"     // Config, Sched -> (empty) once the server runs
	opNeighbors = "neighbors" // Neighbors -> Changes
	opApply     = "apply"     // Routes -> (empty)
	opSessions  = "sessions"  // -> Sessions
	opSched     = "sched"     // Sched -> (empty)
)

// Budgets: a message longer than maxMessage is a protocol error (Apply
// sends at most applyChunk routes per message, far below it); a log line
// longer than maxLogLine is cut.
const (
	maxMessage = 4 << 20
	maxLogLine = 16 << 10
	// callTimeout bounds a call without a deadline of its own: a helper
	// that does not answer within it is taken for wedged and killed.
	callTimeout = time.Minute
)

// request is one message from the daemon.
type request struct {
	ID        uint64         `json:"id"`
	Op        string         `json:"op"`
	Version   int            `json:"version,omitempty"`
	Config    *SpeakerConfig `json:"config,omitempty"`
	Sched     *sched.Policy  `json:"sched,omitempty"`
	LogLevel  *slog.Level    `json:"log_level,omitempty"` // start: the least the daemon logs
	Neighbors []Neighbor     `json:"neighbors,omitempty"`
	Routes    []Route        `json:"routes,omitempty"`
}

// response is the helper's answer to the request with the same ID.
type response struct {
	ID       uint64    `json:"id"`
	Err      string    `json:"err,omitempty"`
	Changes  []string  `json:"changes,omitempty"`
	Sessions []Session `json:"sessions,omitempty"`
}

// readLine reads one line of at most max bytes, without its newline.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		b, err := r.ReadSlice('\n')
		if len(line)+len(b) > max+1 {
			return nil, fmt.Errorf("bgp: a message longer than %d bytes", max)
		}
		line = append(line, b...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// writeMessage writes v as one line.
func writeMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	if len(b) > maxMessage {
		return fmt.Errorf("bgp: a message of %d bytes, over %d", len(b), maxMessage)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// conn is the daemon's end of the socket: calls matched to answers by id.
//
// Concurrency: call is safe for concurrent use; readLoop runs once.
type conn struct {
	nc   net.Conn
	wmu  sync.Mutex // one message at a time on the wire
	done chan struct{}

	mu      sync.Mutex // guards next, pending and failed
	next    uint64
	pending map[uint64]chan response
	failed  error
}

func newConn(nc net.Conn) *conn {
	return &conn{nc: nc, done: make(chan struct{}), pending: map[uint64]chan response{}}
}

// fail closes the connection for good; calls return err.
func (c *conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return
	}
	c.failed = err
	close(c.done)
	c.nc.Close()
}

var errClosed = errors.New("bgp: connection to vigil-bgp closed")

// close closes the socket: the helper reads EOF and stops.
func (c *conn) close() { c.fail(errClosed) }

// err is why the connection closed (nil while it is open).
func (c *conn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// readLoop hands every answer to its call until the connection fails.
func (c *conn) readLoop() {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		line, err := readLine(r, maxMessage)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				err = errClosed
			}
			c.fail(err)
			return
		}
		var resp response
		if err := json.Unmarshal(line, &resp); err != nil {
			c.fail(fmt.Errorf("bgp: a bad answer from vigil-bgp: %w", err))
			return
		}
		c.mu.Lock()
		ch := c.pending[resp.ID]
		delete(c.pending, resp.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- resp // buffered: never blocks
		}
	}
}

// call sends req and waits for its answer. A call that times out takes
// the connection down: the helper is wedged.
func (c *conn) call(ctx context.Context, req request) (response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	ch := make(chan response, 1)
	c.mu.Lock()
	if c.failed != nil {
		c.mu.Unlock()
		return response{}, c.failed
	}
	c.next++
	req.ID = c.next
	c.pending[req.ID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.ID)
		c.mu.Unlock()
	}()
	c.wmu.Lock()
	dl, _ := ctx.Deadline()
	_ = c.nc.SetWriteDeadline(dl)
	err := writeMessage(c.nc, req)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("bgp: writing to vigil-bgp: %w", err))
		return response{}, c.err()
	}
	select {
	case resp := <-ch:
		if resp.Err != "" {
			return resp, errors.New(resp.Err)
		}
		return resp, nil
	case <-c.done:
		return response{}, c.err()
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c.fail(fmt.Errorf("bgp: vigil-bgp did not answer %s within the deadline", req.Op))
		}
		return response{}, fmt.Errorf("bgp: %s: %w", req.Op, ctx.Err())
	}
}

// apply sends routes in messages of at most applyChunk routes.
func (c *conn) apply(ctx context.Context, rs []Route) error {
	for len(rs) > 0 {
		n := min(len(rs), applyChunk)
		if _, err := c.call(ctx, request{Op: opApply, Routes: rs[:n]}); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

// Backend is the BGP speaker the helper runs (package gobgp's Speaker).
type Backend interface {
	Run(ctx context.Context) error
	Ready() <-chan struct{}
	SetNeighbors(ctx context.Context, ns []Neighbor) ([]string, error)
	Apply(rs []Route) error
	Sessions(ctx context.Context) ([]Session, error)
}

// Serve is the helper's side: it reads the daemon's requests from rw,
// starts the backend newBackend makes from the start request, runs
// every later request against it and answers. It applies the scheduling
// policy the daemon gives, and logs at the daemon's level (setting
// level, when given: records the daemon would drop are not sent). It
// returns nil once rw reaches EOF (the daemon
// stopped it or died) or ctx ends, after the backend has closed its
// sessions, and an error when the backend fails or the daemon's messages
// are bad.
func Serve(ctx context.Context, rw io.ReadWriter, newBackend func(SpeakerConfig) Backend, log *slog.Logger, level *slog.LevelVar) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := bufio.NewReaderSize(rw, 64<<10)
	var wmu sync.Mutex
	reply := func(id uint64, resp response, err error) error {
		resp.ID = id
		if err != nil {
			resp.Err = err.Error()
		}
		wmu.Lock()
		defer wmu.Unlock()
		return writeMessage(rw, resp)
	}
	next := func() (request, error) {
		line, err := readLine(r, maxMessage)
		if err != nil {
			return request{}, err
		}
		var req request
		if err := json.Unmarshal(line, &req); err != nil {
			return request{}, fmt.Errorf("bgp: a bad request: %w", err)
		}
		return req, nil
	}

	req, err := next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	switch {
	case req.Op != opStart || req.Config == nil:
		err = fmt.Errorf("bgp: the first request is %q, not a start", req.Op)
	case req.Version != protocolVersion:
		err = fmt.Errorf("bgp: vigil speaks protocol %d, this vigil-bgp %d: install vigil and vigil-bgp from one build", req.Version, protocolVersion)
	}
	if err != nil {
		_ = reply(req.ID, response{}, err)
		return err
	}
	if level != nil && req.LogLevel != nil {
		level.Set(*req.LogLevel)
	}
	// The goroutines end with ctx: cancel runs before the wait.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The helper has no VRRP timer: a real-time priority goes to every
	// thread, one below vigil's (docs/extensions.md).
	sch := sched.Scheduler{AllThreads: true}
	if req.Sched != nil {
		sch.Set(*req.Sched)
	}
	wg.Go(func() {
		_ = sch.Keep(ctx, time.Second, func(err error) { log.Warn("scheduling", "err", err) })
	})
	b := newBackend(*req.Config)
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	select {
	case <-b.Ready():
		if err := reply(req.ID, response{}, nil); err != nil {
			cancel()
			<-runErr
			return fmt.Errorf("bgp: %w", err)
		}
	case err := <-runErr:
		if err == nil {
			err = errors.New("bgp: the speaker stopped before it started")
		}
		_ = reply(req.ID, response{}, err)
		return err
	}
	log.Info("bgp speaker running", "router_id", req.Config.RouterID.String(), "local_as", req.Config.LocalAS, "neighbors", len(req.Config.Neighbors))

	reqs := make(chan request)
	readErr := make(chan error, 1)
	go func() {
		for {
			req, err := next()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case err := <-runErr:
			if err == nil {
				err = errors.New("bgp: the speaker stopped")
			}
			return err
		case <-ctx.Done():
			return <-runErr
		case err := <-readErr:
			cancel()
			runE := <-runErr
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return runE
			}
			return errors.Join(err, runE)
		case req := <-reqs:
			var resp response
			var err error
			switch req.Op {
			case opApply:
				err = b.Apply(req.Routes)
			case opNeighbors:
				resp.Changes, err = b.SetNeighbors(ctx, req.Neighbors)
			case opSessions:
				// Answered beside the others: a status read does not
				// wait for an announcement.
				wg.Go(func() {
					ss, err := b.Sessions(ctx)
					_ = reply(req.ID, response{Sessions: ss}, err)
				})
				continue
			case opSched:
				if req.Sched != nil {
					sch.Set(*req.Sched)
					_, err = sch.Apply()
				}
			default:
				err = fmt.Errorf("bgp: unknown request %q", req.Op)
			}
			if werr := reply(req.ID, resp, err); werr != nil {
				cancel()
				return errors.Join(fmt.Errorf("bgp: %w", werr), <-runErr)
			}
		}
	}
}

// forwardLogs logs again, on log, each line the helper writes: its slog
// JSON records with their level, message and attributes (component
// vigil-bgp unless they name one: GoBGP's own say gobgp), any other line
// (a panic's trace) as a warning.
func forwardLogs(r io.Reader, log *slog.Logger, pid int) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Cut: log the start, drop the rest of the line (the
			// next reads overwrite the buffer line points into).
			line = bytes.Clone(line)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			err = nil
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			logRecord(log, line, pid)
		}
		if err != nil {
			return
		}
	}
}

// logRecord logs one line of the helper's output.
func logRecord(log *slog.Logger, line []byte, pid int) {
	var rec map[string]any
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	if line[0] != '{' || d.Decode(&rec) != nil {
		log.Warn(string(line), "component", "vigil-bgp", "pid", pid)
		return
	}
	var lvl slog.Level
	if s, ok := rec[slog.LevelKey].(string); !ok || lvl.UnmarshalText([]byte(s)) != nil {
		lvl = slog.LevelInfo
	}
	msg, _ := rec[slog.MessageKey].(string)
	delete(rec, slog.TimeKey)
	delete(rec, slog.LevelKey)
	delete(rec, slog.MessageKey)
	if _, ok := rec["component"]; !ok {
		rec["component"] = "vigil-bgp"
	}
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		v := rec[k]
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				v = i
			} else {
				v = n.String()
			}
		}
		attrs = append(attrs, k, v)
	}
	log.Log(context.Background(), lvl, msg, attrs...)
}
