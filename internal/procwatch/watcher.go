package procwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Options configures a Watcher.
type Options struct {
	Specs []Spec
	// OnChange is called, from the Watcher's goroutine, with every Spec's
	// initial state once the initial scan is done and then with each quorum
	// change. It must not block for long.
	OnChange func(name string, up bool)
	// Logger; nil discards.
	Logger *slog.Logger
	// RcvBuf is process_monitor_rcv_bufs (0: the kernel default); it is
	// doubled after each loss of events, as keepalived does.
	RcvBuf int
	// ProcRoot is where /proc is; "" means "/proc".
	ProcRoot string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Watcher follows processes for a set of vrrp_track_process Specs. Status
// and Ready may be called from any goroutine; Run owns the connector socket
// and the goroutines.
type Watcher struct {
	o     Options
	log   *slog.Logger
	ready chan struct{}

	mu    sync.Mutex
	table *Table
}

// New checks the specs and returns a Watcher. It starts nothing.
func New(o Options) (*Watcher, error) {
	t, err := NewTable(o.Specs)
	if err != nil {
		return nil, err
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Watcher{o: o, log: o.Logger, table: t, ready: make(chan struct{})}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	for _, s := range o.Specs {
		for _, msg := range s.Warnings() {
			w.log.Warn(msg)
		}
	}
	return w, nil
}

// Ready is closed once the initial scan has been reported.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Statuses reports every Spec's state.
func (w *Watcher) Statuses() []Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.table.Statuses()
}

type batch struct {
	evs []Event
	err error
}

// Run subscribes to process events, scans /proc (subscribing first, so no
// process start is missed), reports every Spec's initial state, then follows
// events until ctx ends. It fails at once if the kernel refuses the
// subscription (no CAP_NET_ADMIN before Linux 6.6, no CONFIG_PROC_EVENTS). After lost events
// (receive buffer overrun) it doubles the buffer and rescans /proc.
func (w *Watcher) Run(ctx context.Context) error {
	conn, err := Dial(w.o.RcvBuf)
	var held []Event
	if err == nil {
		if held, err = conn.Subscribe(2 * time.Second); err != nil {
			conn.Close()
		}
	}
	if err != nil {
		// No process events (a kernel without them, a PID namespace, no
		// privilege): keepalived keeps the state of its initial /proc scan;
		// vigil rescans /proc instead, so trackers still follow the
		// processes, only less promptly.
		w.log.Warn("process events unavailable; rescanning /proc every "+pollFallback.String()+" instead", "err", err)
		return w.poll(ctx)
	}
	procs, err := w.scan()
	if err != nil {
		conn.Close()
		return err
	}
	w.mu.Lock()
	changes := w.table.Reset(procs, w.o.Now(), true)
	w.mu.Unlock()
	w.report(changes)
	close(w.ready)
	w.handle(held)

	events := make(chan batch, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			evs, err := conn.Receive()
			if errors.Is(err, os.ErrClosed) {
				return
			}
			select {
			case events <- batch{evs, err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		conn.Close()
		wg.Wait()
	}()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	rcvBuf := w.o.RcvBuf
	for {
		w.mu.Lock()
		d, ok := w.table.Deadline()
		w.mu.Unlock()
		if ok {
			timer.Reset(max(d.Sub(w.o.Now()), 0))
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case b := <-events:
			timer.Stop()
			w.handle(b.evs)
			if errors.Is(b.err, ErrOverrun) {
				rcvBuf = w.overrun(conn, rcvBuf)
			} else if b.err != nil {
				w.log.Warn("process monitor", "err", b.err)
			}
		case <-timer.C:
			w.mu.Lock()
			ch := w.table.Expire(w.o.Now())
			w.mu.Unlock()
			w.report(ch)
		}
	}
}

// pollFallback is how often poll rescans /proc.
const pollFallback = time.Second

// poll is Run without process events: it rescans /proc every pollFallback
// and reports what changed.
func (w *Watcher) poll(ctx context.Context) error {
	procs, err := w.scan()
	if err != nil {
		return err
	}
	w.mu.Lock()
	changes := w.table.Reset(procs, w.o.Now(), true)
	w.mu.Unlock()
	w.report(changes)
	close(w.ready)
	tick := time.NewTicker(pollFallback)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			procs, err := w.scan()
			if err != nil {
				w.log.Warn("process monitor rescan", "err", err)
				continue
			}
			w.mu.Lock()
			ch := w.table.Reset(procs, w.o.Now(), false)
			ch = append(ch, w.table.Expire(w.o.Now())...)
			w.mu.Unlock()
			w.report(ch)
		}
	}
}

// overrun rescans /proc after lost events, as keepalived's
// reinitialise_track_processes, and doubles the receive buffer.
func (w *Watcher) overrun(conn *Conn, rcvBuf int) int {
	if rcvBuf == 0 {
		rcvBuf = 212992 // the usual net.core.rmem_default
	}
	rcvBuf *= 2
	w.log.Warn("process events lost; rescanning /proc and doubling the receive buffer (set process_monitor_rcv_bufs)", "rcvbuf", rcvBuf)
	if err := conn.setRcvBuf(rcvBuf); err != nil {
		w.log.Warn("process monitor receive buffer", "err", err)
	}
	procs, err := w.scan()
	if err != nil {
		w.log.Warn("process monitor rescan", "err", err)
		return rcvBuf
	}
	w.mu.Lock()
	ch := w.table.Reset(procs, w.o.Now(), false)
	w.mu.Unlock()
	w.report(ch)
	return rcvBuf
}

func (w *Watcher) handle(evs []Event) {
	if len(evs) == 0 {
		return
	}
	now := w.o.Now()
	var ch []Change
	for _, ev := range evs {
		switch ev.Kind {
		case EventFork:
			// A new process, not a thread: child pid == child tgid.
			if ev.PID == ev.TGID {
				w.mu.Lock()
				ch = append(ch, w.table.Fork(ev.ParentTGID, ev.TGID, now)...)
				w.mu.Unlock()
			}
		case EventExec:
			if ev.PID == ev.TGID {
				comm, cmdline, ok := w.readProc(ev.TGID)
				if !ok {
					continue // gone already; its exit event follows
				}
				w.mu.Lock()
				ch = append(ch, w.table.Exec(ev.TGID, comm, cmdline)...)
				w.mu.Unlock()
			}
		case EventComm:
			if ev.PID == ev.TGID {
				w.mu.Lock()
				ch = append(ch, w.table.Comm(ev.TGID, ev.Comm)...)
				w.mu.Unlock()
			}
		case EventExit:
			// Thread exits are not process exits.
			if ev.PID == ev.TGID {
				w.mu.Lock()
				ch = append(ch, w.table.Exit(ev.TGID, now)...)
				w.mu.Unlock()
			}
		}
	}
	w.report(ch)
}

func (w *Watcher) report(ch []Change) {
	for _, c := range ch {
		if c.Up {
			w.log.Info("quorum gained for tracked process", "process", c.Name)
		} else {
			w.log.Info("quorum lost for tracked process", "process", c.Name)
		}
		if w.o.OnChange != nil {
			w.o.OnChange(c.Name, c.Up)
		}
	}
}

// readProc reads a process's name and, when needed, its command line.
func (w *Watcher) readProc(pid int32) (comm string, cmdline []byte, ok bool) {
	dir := filepath.Join(w.o.ProcRoot, strconv.Itoa(int(pid)))
	b, err := os.ReadFile(dir + "/comm")
	if err != nil {
		return "", nil, false
	}
	comm = string(bytes.TrimSuffix(b, []byte{'\n'}))
	if w.table.NeedCmdline() {
		if cmdline, err = readLimited(dir+"/cmdline", 1<<16); err != nil {
			return "", nil, false
		}
	}
	return comm, cmdline, true
}

// scan lists the running processes, skipping zombies (keepalived read_procs
// reads /proc/PID/stat for the name and state).
func (w *Watcher) scan() ([]Proc, error) {
	ents, err := os.ReadDir(w.o.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("procwatch: scan: %w", err)
	}
	needCmd := w.table.NeedCmdline()
	var procs []Proc
	for _, e := range ents {
		pid, err := strconv.ParseInt(e.Name(), 10, 32)
		if err != nil || pid <= 0 {
			continue
		}
		dir := filepath.Join(w.o.ProcRoot, e.Name())
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			continue
		}
		comm, state, ok := parseStat(stat)
		if !ok || state == 'Z' {
			continue
		}
		p := Proc{PID: int32(pid), Comm: comm}
		if needCmd {
			if p.Cmdline, err = readLimited(dir+"/cmdline", 1<<16); err != nil {
				continue
			}
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// parseStat extracts the name and state from /proc/PID/stat: "pid (comm) S
// ...". The name may itself contain ") ", so the last ")" ends it.
func parseStat(b []byte) (comm string, state byte, ok bool) {
	i := bytes.IndexByte(b, '(')
	j := bytes.LastIndexByte(b, ')')
	if i < 0 || j < i || j+2 >= len(b) {
		return "", 0, false
	}
	return string(b[i+1 : j]), b[j+2], true
}

func readLimited(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}
