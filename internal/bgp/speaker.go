package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/sched"
)

// Neighbor is one BGP peer.
type Neighbor struct {
	Addr     netip.Addr
	RemoteAS uint32
	// Password is the TCP MD5 signature key (RFC 2385); empty for none.
	Password     string
	HoldTime     time.Duration // keepalives are sent every third of it
	ConnectRetry time.Duration
	Passive      bool
	Port         uint16 // 0: 179
	// BFDInterval, when set, runs BFD (RFC 5880/5881, single hop) with
	// this transmit and receive interval; the session is reset after
	// BFDMultiplier intervals without a packet.
	BFDInterval   time.Duration
	BFDMultiplier uint8
}

// SpeakerConfig configures the BGP speaker; values only.
type SpeakerConfig struct {
	RouterID netip.Addr
	LocalAS  uint32
	// ListenPort accepts sessions on this TCP port; 0 accepts none (the
	// speaker connects out).
	ListenPort uint16
	Neighbors  []Neighbor
	// MaxReceived is how many prefixes (per address family) a neighbour
	// may send before its session is closed; 0 means DefaultMaxReceived.
	// vigil only announces: routers should send it nothing, and GoBGP
	// keeps whatever they send.
	MaxReceived uint32
}

// DefaultMaxReceived bounds what one neighbour may send the speaker: a
// router exporting a full table (or a hostile peer) gets a Cease instead of
// filling the helper's memory (GoBGP keeps every received path).
const DefaultMaxReceived = 10000

// SameServer reports whether two configurations differ at most in their
// neighbours: what SetNeighbors applies without restarting the server.
func (c SpeakerConfig) SameServer(o SpeakerConfig) bool {
	return c.RouterID == o.RouterID && c.LocalAS == o.LocalAS && c.ListenPort == o.ListenPort
}

// Session is one neighbor's session as the speaker reports it.
type Session struct {
	Neighbor netip.Addr
	RemoteAS uint32
	State    string // idle, connect, active, opensent, openconfirm, established
	// Since is when the session was last established (zero when never).
	Since    time.Time
	Sent     uint64 // prefixes advertised to the neighbor
	Received uint64 // prefixes received from it
	// HoldTime is the negotiated hold time once established.
	HoldTime time.Duration
	// LastError is the last disconnect's reason.
	LastError string
	// BFD is the BFD session's state (up, down, init, admin_down); empty
	// without BFD.
	BFD string
}

// Restart delays of a helper that died: the first restart waits
// minBackoff, each next one twice as long up to maxBackoff; a helper that
// ran stableAfter counts as healthy again.
const (
	minBackoff  = 200 * time.Millisecond
	maxBackoff  = 10 * time.Second
	stableAfter = 30 * time.Second
	// startTimeout bounds the helper's start (exec, handshake, replay).
	startTimeout = 30 * time.Second
	// stopTimeout is how long a stopping helper may take to close its
	// sessions (GoBGP's StopBgp is given 5 s) before it is killed.
	stopTimeout = 10 * time.Second
	// applyChunk bounds the routes of one message.
	applyChunk = 1000
)

// errNotRunning is what Apply and SetNeighbors return while no helper
// runs (before the start, or between a crash and the restart).
var errNotRunning = errors.New("bgp: the vigil-bgp helper is not running")

// Speaker runs the BGP speaker in the vigil-bgp helper process (see Serve
// and package gobgp) and keeps the locally originated paths there equal to
// what it is given. A helper that dies is restarted with backoff and given
// the neighbours and routes again.
//
// Concurrency: Run owns the helper process; Apply, SetNeighbors, SetSched
// and Sessions are safe for concurrent use once Ready is closed.
type Speaker struct {
	cfg    SpeakerConfig
	helper string
	log    *slog.Logger
	ready  chan struct{}

	// opMu serialises Apply, SetNeighbors, SetSched and the replay to a
	// restarted helper, each across its round trip.
	opMu sync.Mutex
	mu   sync.Mutex // guards the fields below
	want map[netip.Prefix]Route
	pol  sched.Policy
	conn *conn // nil while no helper answers
	pid  int
}

// NewSpeaker prepares a speaker that runs the helper at path ("": the one
// FindHelper finds) under the daemon's scheduling policy pol (see
// HelperPolicy); Run starts it.
func NewSpeaker(cfg SpeakerConfig, path string, pol sched.Policy, log *slog.Logger) *Speaker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Neighbors = slices.Clone(cfg.Neighbors)
	return &Speaker{cfg: cfg, helper: path, pol: pol, log: log, ready: make(chan struct{}), want: map[netip.Prefix]Route{}}
}

// Ready is closed once the speaker has started and accepts Apply.
func (s *Speaker) Ready() <-chan struct{} { return s.ready }

// PID is the helper's process ID, 0 while none runs.
func (s *Speaker) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Run starts the helper and its BGP server and runs until ctx ends; then
// the helper closes the sessions (a Cease NOTIFICATION, so peers drop our
// routes at once) and exits, and Run returns. A helper that fails to start
// the first time is an error; one that dies later is restarted.
func (s *Speaker) Run(ctx context.Context) error {
	if s.helper == "" {
		p, err := FindHelper()
		if err != nil {
			return err
		}
		s.helper = p
	}
	backoff := minBackoff
	for {
		began := time.Now()
		err := s.runHelper(ctx)
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-s.ready:
		default:
			return err
		}
		if time.Since(began) > stableAfter {
			backoff = minBackoff
		}
		s.log.Warn("bgp: the vigil-bgp helper died; restarting it", "component", "vigil-bgp", "err", err, "in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// runHelper runs one helper process until it exits or ctx ends.
func (s *Speaker) runHelper(ctx context.Context) error {
	// Pdeathsig fires when the thread that started the child ends, not
	// the process: this goroutine keeps its thread until the child has
	// exited, so no other goroutine's locked thread ending kills it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bgp: socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "vigil-bgp"), os.NewFile(uintptr(fds[1]), "vigil")
	nc, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		theirs.Close()
		return fmt.Errorf("bgp: socketpair: %w", err)
	}
	logR, logW, err := os.Pipe()
	if err != nil {
		nc.Close()
		theirs.Close()
		return fmt.Errorf("bgp: %w", err)
	}
	cmd := exec.Command(s.helper)
	cmd.ExtraFiles = []*os.File{theirs} // fd 3
	cmd.Stdout, cmd.Stderr = logW, logW
	// Its own process group: a terminal's ^C or a group kill of the
	// daemon does not reach it, the daemon stops it (after draining).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	err = cmd.Start()
	theirs.Close()
	logW.Close()
	if err != nil {
		nc.Close()
		logR.Close()
		return fmt.Errorf("bgp: starting the helper: %w", err)
	}
	logged := make(chan struct{})
	go func() { defer close(logged); forwardLogs(logR, s.log, cmd.Process.Pid) }()
	p := &process{done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c := newConn(nc)
	go c.readLoop()
	// A helper that exits fails the calls waiting for it at once.
	go func() {
		select {
		case <-p.done:
			c.fail(fmt.Errorf("exited: %w", exitErr(p.err)))
		case <-c.done:
		}
	}()
	defer func() {
		c.close()
		<-logged
		logR.Close()
	}()
	pid := cmd.Process.Pid
	if err := s.start(ctx, c, pid); err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		return err
	}
	select {
	case <-ctx.Done():
		s.detach()
		// EOF on its socket stops the helper: it closes the sessions
		// and exits.
		c.close()
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			s.log.Warn("bgp: the vigil-bgp helper did not stop; killing it", "component", "vigil-bgp", "pid", pid)
			_ = cmd.Process.Kill()
			<-p.done
		}
		return nil
	case <-p.done:
		s.detach()
		return fmt.Errorf("bgp: vigil-bgp (pid %d) ended: %w", pid, exitErr(p.err))
	case <-c.done:
		s.detach()
		// Its socket closed: it is dying, or it is broken and is
		// killed.
		select {
		case <-p.done:
			return fmt.Errorf("bgp: vigil-bgp (pid %d) ended: %w", pid, exitErr(p.err))
		case <-time.After(time.Second):
		}
		_ = cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("bgp: vigil-bgp (pid %d) killed: %w", pid, c.err())
	}
}

// process is a helper's exit: err is valid once done is closed.
type process struct {
	done chan struct{}
	err  error
}

// start shakes hands with a new helper, gives it what the last one had
// and makes it the one Apply talks to.
func (s *Speaker) start(ctx context.Context, c *conn, pid int) error {
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	cfg, pol := s.cfg, HelperPolicy(s.pol)
	routes := make([]Route, 0, len(s.want))
	for _, r := range s.want {
		routes = append(routes, r)
	}
	s.mu.Unlock()
	slices.SortFunc(routes, func(a, b Route) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	lvl := logLevel(s.log)
	if _, err := c.call(sctx, request{Op: opStart, Version: protocolVersion, Config: &cfg, Sched: &pol, LogLevel: &lvl}); err != nil {
		return fmt.Errorf("bgp: vigil-bgp (pid %d): start: %w", pid, err)
	}
	if err := c.apply(sctx, routes); err != nil {
		return fmt.Errorf("bgp: vigil-bgp (pid %d): replaying %d routes: %w", pid, len(routes), err)
	}
	s.mu.Lock()
	s.conn, s.pid = c, pid
	s.mu.Unlock()
	select {
	case <-s.ready:
		s.log.Info("bgp: the vigil-bgp helper is running again", "component", "vigil-bgp", "pid", pid, "neighbors", len(cfg.Neighbors), "routes", len(routes))
	default:
		s.log.Debug("bgp: the vigil-bgp helper started", "component", "vigil-bgp", "pid", pid)
		close(s.ready)
	}
	return nil
}

// detach forgets the helper: calls fail until the next one runs.
func (s *Speaker) detach() {
	s.mu.Lock()
	s.conn, s.pid = nil, 0
	s.mu.Unlock()
}

func (s *Speaker) current() *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// SetNeighbors makes the running server's peers equal to ns: a removed
// neighbour's session is closed (a Cease NOTIFICATION), an added one is
// started, a changed one (any field) is deleted and added again, which
// resets that session alone. Unchanged neighbours keep their sessions. It
// returns one line per change. A helper started later gets ns.
func (s *Speaker) SetNeighbors(ctx context.Context, ns []Neighbor) ([]string, error) {
	select {
	case <-s.ready:
	default:
		return nil, errors.New("bgp: speaker not running")
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	s.cfg.Neighbors = slices.Clone(ns)
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return nil, errNotRunning
	}
	resp, err := c.call(ctx, request{Op: opNeighbors, Neighbors: ns})
	return resp.Changes, err
}

// SetSched gives the helper the daemon's new scheduling policy p (see
// HelperPolicy); a helper started later gets it too.
func (s *Speaker) SetSched(ctx context.Context, p sched.Policy) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	s.pol = p
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	hp := HelperPolicy(p)
	_, err := c.call(ctx, request{Op: opSched, Sched: &hp})
	return err
}

// Apply makes the locally originated paths equal to the announced and
// draining routes among rs (withdrawn ones are removed). Routes not named
// in rs keep their last announcement. A helper started later gets every
// route announced then.
func (s *Speaker) Apply(rs []Route) error {
	select {
	case <-s.ready:
	default:
		return errors.New("bgp: speaker not running")
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	for _, r := range rs {
		if r.Phase == Withdrawn {
			delete(s.want, r.Prefix)
		} else {
			s.want[r.Prefix] = r
		}
	}
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return errNotRunning
	}
	return c.apply(context.Background(), rs)
}

// Sessions reports every neighbor's session. While no helper runs, each
// configured neighbour is reported idle, with why.
func (s *Speaker) Sessions(ctx context.Context) ([]Session, error) {
	select {
	case <-s.ready:
	default:
		return nil, nil
	}
	c := s.current()
	if c == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := make([]Session, 0, len(s.cfg.Neighbors))
		for _, n := range s.cfg.Neighbors {
			out = append(out, Session{Neighbor: n.Addr, RemoteAS: n.RemoteAS, State: "idle", LastError: errNotRunning.Error()})
		}
		slices.SortFunc(out, func(a, b Session) int { return a.Neighbor.Compare(b.Neighbor) })
		return out, nil
	}
	resp, err := c.call(ctx, request{Op: opSessions})
	return resp.Sessions, err
}

// HelperPolicy is the helper's scheduling under the daemon's policy p.
// The helper does not inherit the daemon's: every thread of the daemon is
// SCHED_RESET_ON_FORK (package sched), so it starts at normal priority
// and applies this itself. With a real-time priority it gets one step
// less than the daemon's threads (at least 1): VRRP preempts BGP work, a
// 1,000-route update cannot delay an advertisement, while the keepalives
// and BFD packets of GoBGP still preempt every normal process, as they
// did when GoBGP ran in the daemon. The nice level and memory locking are
// the daemon's.
func HelperPolicy(p sched.Policy) sched.Policy {
	if p.RTPriority > 0 {
		p.RTPriority = max(p.RTPriority-1, 1)
	}
	return p
}

// logLevel is the least level log logs.
func logLevel(log *slog.Logger) slog.Level {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if log.Enabled(context.Background(), l) {
			return l
		}
	}
	return slog.LevelError
}

// exitErr describes how a helper ended.
func exitErr(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}
