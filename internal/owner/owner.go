// Package owner makes one vigil the only owner of a virtual router on a
// host: a second daemon that would manage the same interface, address
// family and VRID in the same network namespace refuses to start and names
// the process that runs it, and a keepalived running there with such a
// VRID makes vigil refuse as well.
//
// Ownership is a lock file per virtual router, held with flock(2) for the
// daemon's life, under Dir/netns-INODE/ (INODE is the network namespace's
// inode, so daemons in different namespaces never meet). The kernel drops
// the locks of a killed process: a lock can never be left stale. A shared
// lock on Dir/netns-INODE/daemons tells whether any other vigil runs in the
// namespace at all (Registry.Alone), which decides what clean-up at start
// may touch.
//
// Concurrency: a Registry is safe for concurrent use.
package owner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Dir is where the locks live by default.
const Dir = "/run/vigil"

// Key is one virtual router in a namespace.
type Key struct {
	Interface string
	IPv6      bool
	VRID      uint8
}

func (k Key) String() string {
	fam := "inet"
	if k.IPv6 {
		fam = "inet6"
	}
	return fmt.Sprintf("%s %s VRID %d", k.Interface, fam, k.VRID)
}

func (k Key) file() string {
	fam := "inet"
	if k.IPv6 {
		fam = "inet6"
	}
	return fmt.Sprintf("vrrp-%s-%s-%d.lock", k.Interface, fam, k.VRID)
}

// ConflictError is a virtual router another live process owns.
type ConflictError struct {
	Key     Key
	PID     int    // 0 when unknown
	Command string // the owner's command line, when readable
}

func (e *ConflictError) Error() string {
	who := "another vigil"
	if e.PID > 0 {
		who = fmt.Sprintf("vigil pid %d", e.PID)
		if e.Command != "" {
			who += " (" + e.Command + ")"
		}
	}
	return fmt.Sprintf("owner: %s is already managed by %s in this network namespace; refusing to manage it too", e.Key, who)
}

// Registry is this daemon's claims in its network namespace.
type Registry struct {
	mu      sync.Mutex
	dir     string
	daemons *os.File
	alone   bool
	settled bool
	locks   map[Key]*os.File
	// stoppingWait bounds how long Claim waits for a virtual router whose
	// owner is stopping.
	stoppingWait time.Duration
	// waiting (nil: none) is told when Claim starts and ends a wait for a
	// stopping owner.
	waiting func(Wait)
}

// Wait is Claim's wait for a virtual router whose owner is stopping.
type Wait struct {
	Key   Key
	PID   int           // the stopping owner
	Bound time.Duration // how long Claim waits at most
	// Took is how long the wait lasted, 0 when it begins; Done reports
	// whether the owner let the router go (false: the bound passed).
	Took time.Duration
	Done bool
	// Canceled: the wait ended with Claim's context (this daemon is told
	// to stop).
	Canceled bool
}

// OnWait has f told when Claim begins to wait for a stopping owner and
// when that wait ends, for the log.
func (r *Registry) OnWait(f func(Wait)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting = f
}

// NetnsID names the calling thread's network namespace (its inode).
func NetnsID() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return "", fmt.Errorf("owner: network namespace: %w", err)
	}
	return strconv.FormatUint(st.Ino, 10), nil
}

// Open joins the namespace's registry under dir (Dir when empty).
func Open(dir string) (*Registry, error) {
	if dir == "" {
		dir = Dir
	}
	ns, err := NetnsID()
	if err != nil {
		return nil, err
	}
	d := filepath.Join(dir, "netns-"+ns)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, fmt.Errorf("owner: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(d, "daemons"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("owner: %w", err)
	}
	r := &Registry{dir: d, daemons: f, locks: map[Key]*os.File{}, stoppingWait: stoppingWait}
	// Alone when nobody else holds the namespace's lock: this daemon then
	// keeps it exclusive while it cleans up (Settle), so that a daemon
	// starting meanwhile waits; every running daemon holds it shared.
	if flock(f, unix.LOCK_EX|unix.LOCK_NB) == nil {
		r.alone = true
		return r, nil
	}
	deadline := time.Now().Add(startWait)
	for {
		err := flock(f, unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("owner: another vigil in this network namespace is still cleaning up after %v: %w", startWait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startWait bounds how long Open waits for a daemon that is cleaning up.
const startWait = 10 * time.Second

// stoppingWait bounds how long Claim waits for a stopping owner: its
// handover lasts at most the Master_Down_Interval of priority 1 plus one
// advert interval (about 5 s at advert_int 1, 50 s at 10).
const stoppingWait = 60 * time.Second

// stoppingMark follows the owner's pid in a lock file once it is stopping.
const stoppingMark = " stopping"

// Settle ends the start-up clean-up: a daemon that was alone lets others
// start (its exclusive lock becomes shared). It is idempotent.
func (r *Registry) Settle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.alone && !r.settled {
		r.settled = true
		_ = flock(r.daemons, unix.LOCK_SH)
	}
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// Alone reports whether no other vigil ran in the namespace when Open was
// called: only then may leftovers that no configured instance names be
// removed, before Settle.
func (r *Registry) Alone() bool { return r.alone }

// Claim takes every key, or none: on a conflict it returns a
// *ConflictError (joined, one per key) and holds none of the new keys.
// Keys already held are kept.
func (r *Registry) Claim(keys []Key) error { return r.ClaimContext(context.Background(), keys) }

// ClaimContext is Claim whose wait for a stopping owner ends with ctx (an
// error wrapping ctx.Err()): a daemon told to stop while it waits for its
// predecessor gives up at once, so that the start that follows (a second
// restart) is not refused through its pid file.
func (r *Registry) ClaimContext(ctx context.Context, keys []Key) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var taken []Key
	var errs []error
	for _, k := range keys {
		if _, ok := r.locks[k]; ok || containsKey(taken, k) {
			continue
		}
		f, err := os.OpenFile(filepath.Join(r.dir, k.file()), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			errs = append(errs, fmt.Errorf("owner: %s: %w", k, err))
			continue
		}
		if err := r.lock(ctx, k, f); err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				errs = append(errs, fmt.Errorf("owner: %s: stopped while waiting for its stopping owner: %w", k, err))
				f.Close()
				continue
			}
			errs = append(errs, conflict(k, f))
			f.Close()
			continue
		}
		_ = f.Truncate(0)
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		r.locks[k] = f
		taken = append(taken, k)
	}
	if len(errs) > 0 {
		for _, k := range taken {
			r.locks[k].Close()
			delete(r.locks, k)
		}
		return errors.Join(errs...)
	}
	return nil
}

// lock takes f's lock, waiting up to stoppingWait while its owner marks
// it stopping: a daemon started while the previous one hands over (an
// init script's restart, which does not wait for the old daemon to exit)
// takes over when the old one is gone instead of refusing.
func (r *Registry) lock(ctx context.Context, k Key, f *os.File) error {
	start := time.Now()
	deadline := start.Add(r.stoppingWait)
	var w *Wait // the wait under way, once the owner was seen stopping
	for {
		err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil || !errors.Is(err, unix.EWOULDBLOCK) {
			if w != nil && r.waiting != nil {
				w.Took, w.Done = time.Since(start), err == nil
				r.waiting(*w)
			}
			return err
		}
		b := make([]byte, 64)
		n, _ := f.ReadAt(b, 0)
		text := strings.TrimSpace(string(b[:n]))
		stopping := strings.HasSuffix(text, strings.TrimSpace(stoppingMark))
		if !stopping || time.Now().After(deadline) {
			if w != nil && r.waiting != nil {
				w.Took = time.Since(start)
				r.waiting(*w)
			}
			return err
		}
		if w == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(text, strings.TrimSpace(stoppingMark))))
			w = &Wait{Key: k, PID: pid, Bound: r.stoppingWait}
			if r.waiting != nil {
				r.waiting(*w)
			}
		}
		select {
		case <-ctx.Done():
			if r.waiting != nil {
				w.Took, w.Canceled = time.Since(start), true
				r.waiting(*w)
			}
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stopping marks the keys held as owned by a daemon that is stopping (it
// still holds them while it hands over): a daemon that claims them
// meanwhile waits for them instead of refusing.
func (r *Registry) Stopping() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.locks {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+stoppingMark+"\n"), 0)
	}
}

func containsKey(ks []Key, k Key) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func conflict(k Key, f *os.File) error {
	e := &ConflictError{Key: k}
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(string(b[:n])), stoppingMark)); err == nil && pid > 0 {
		e.PID = pid
		if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
			e.Command = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return e
}

// Release gives keys up.
func (r *Registry) Release(keys []Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if f, ok := r.locks[k]; ok {
			f.Close()
			delete(r.locks, k)
		}
	}
}

// Held returns the keys held.
func (r *Registry) Held() []Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Key, 0, len(r.locks))
	for k := range r.locks {
		out = append(out, k)
	}
	return out
}

// Close releases everything.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, f := range r.locks {
		f.Close()
		delete(r.locks, k)
	}
	return r.daemons.Close()
}
