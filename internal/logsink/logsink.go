// Package logsink owns the daemon's log output: the writer under its slog
// handler, between the daemon and whatever reads its stderr (journald's
// stream socket, a pipe to a supervisor, a terminal).
//
// Writing a log line straight to stderr ties the daemon to its reader. A
// reader that stalls (journald restarting or overloaded, a pipe nobody
// drains) fills the pipe, and the next write blocks the goroutine that
// logs: in vigil that is the engine, holding its lock, so adverts stop, a
// transition is half done and the addresses stay where they were while the
// peer takes over. A reader that went away makes the write fail with EPIPE,
// and a Go program whose write to fd 1 or 2 meets a broken pipe dies of
// SIGPIPE unless it handles the signal (os/signal: "SIGPIPE"), leaving its
// addresses on the box.
//
// A Sink decouples the two: Write copies the line into a bounded queue and
// returns at once; Run writes the queue out. When the queue is full, lines
// are dropped and counted, and once the output accepts lines again a
// notice says how many were lost. Write errors (a reader gone) are counted
// too and never stop the daemon.
package logsink

import (
	"context"
	"io"
	"sync"
	"time"
)

// DefaultBudget is the queue's size in bytes: at a few hundred bytes a
// line, thousands of lines, minutes of a busy daemon's log.
const DefaultBudget = 1 << 20

// Stats counts what did not reach the output.
type Stats struct {
	// Dropped lines found the queue full (the output stalled).
	Dropped uint64
	// Failed lines were written and the output returned an error (EPIPE:
	// the reader is gone; EBADF: stderr was closed).
	Failed uint64
}

// Sink is an io.Writer that never blocks: see the package comment. Write
// is safe for concurrent use (slog's handlers call it under their own lock,
// one line per call); Run runs on one goroutine.
type Sink struct {
	out    io.Writer
	budget int
	notice func(dropped uint64) []byte

	mu      sync.Mutex
	queue   [][]byte
	queued  int // bytes in queue
	wake    chan struct{}
	closed  bool
	stats   Stats
	pending uint64 // dropped lines not yet told in a notice
	done    chan struct{}
}

// New returns a Sink writing to out with a queue of budget bytes
// (DefaultBudget when 0). notice, when not nil, renders the line written
// once the output accepts lines again after dropped lines were lost (in
// the daemon's log format). New starts nothing.
func New(out io.Writer, budget int, notice func(dropped uint64) []byte) *Sink {
	if budget <= 0 {
		budget = DefaultBudget
	}
	return &Sink{out: out, budget: budget, notice: notice, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Write queues a copy of p and returns len(p), nil; it never blocks on the
// output. A line that does not fit in the queue is dropped and counted;
// after Close lines are written through (nothing drains the queue then).
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.out.Write(p)
	}
	if s.queued+len(p) > s.budget {
		s.stats.Dropped++
		s.pending++
		s.mu.Unlock()
		return len(p), nil
	}
	s.queue = append(s.queue, append([]byte(nil), p...))
	s.queued += len(p)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Stats returns the counts so far.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run writes the queued lines out until ctx ends, then what is left, and
// returns. A write to a stalled output blocks Run, never Write.
func (s *Sink) Run(ctx context.Context) {
	defer close(s.done)
	for {
		s.drain()
		select {
		case <-ctx.Done():
			s.drain()
			return
		case <-s.wake:
		}
	}
}

// drain writes out what is queued, with the notice of lines lost first.
func (s *Sink) drain() {
	for {
		s.mu.Lock()
		lines := s.queue
		s.queue = nil
		s.queued = 0
		lost := s.pending
		s.pending = 0
		s.mu.Unlock()
		if len(lines) == 0 && lost == 0 {
			return
		}
		// The lines lost came after the ones queued.
		for _, l := range lines {
			s.write(l)
		}
		if lost > 0 && s.notice != nil {
			s.write(s.notice(lost))
		}
	}
}

func (s *Sink) write(p []byte) {
	if _, err := s.out.Write(p); err != nil {
		s.mu.Lock()
		s.stats.Failed++
		s.mu.Unlock()
	}
}

// Close stops queueing: later lines are written through. It waits up to
// timeout for Run (whose ctx the caller ended) to write out the queue, so
// that the daemon's last lines are not lost when the output works, and
// that a stalled output does not hold up the exit.
func (s *Sink) Close(timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		return // Run is stuck on the output: leave it
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.drain() // lines queued after Run's last look
}
