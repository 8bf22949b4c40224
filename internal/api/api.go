// Package api serves the daemon's control API as JSON over HTTP on a unix
// socket (mode 0600: root only), and is the client that `vigil status`,
// `vigil reload` and `vigil handover` use.
//
//	GET  /v1/status               the status.Snapshot
//	POST /v1/reload               check and apply the configuration file again
//	POST /v1/handover?instance=N  planned handover of instance N (all when empty)
//	POST /v1/reclaim?instance=N   end a handover's yield: preempt again
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/status"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/vigil/vigil.sock"

// Daemon is what the API exposes. Implementations must be safe for
// concurrent use (the engine answers through its own loop).
type Daemon interface {
	Snapshot(ctx context.Context) (status.Snapshot, error)
	Reload(ctx context.Context) (ReloadResult, error)
	Handover(ctx context.Context, instance string) error
	Reclaim(ctx context.Context, instance string) error
}

// ReloadResult tells what a reload did.
type ReloadResult struct {
	Applied     bool     `json:"applied"`
	Diagnostics []string `json:"diagnostics,omitempty"` // file:line:col: severity: message
	Changes     []string `json:"changes,omitempty"`     // one line per added/changed/removed object
	Duration    string   `json:"duration"`
}

// UnchangedPrefix starts a line of Changes that summarises what a reload
// left as it was (the engine's "= 3 vrrp_instance(s) unchanged"): it is no
// change.
const UnchangedPrefix = "= "

// ChangeCount is the number of changes a reload made: its Changes lines
// but the summaries of what stayed.
func (r ReloadResult) ChangeCount() int {
	n := 0
	for _, c := range r.Changes {
		if !strings.HasPrefix(c, UnchangedPrefix) {
			n++
		}
	}
	return n
}

// Error is the JSON body of a failed request.
type Error struct {
	Error string `json:"error"`
}

// Listen opens the unix socket at path with mode 0600, creating its
// directory. A socket file left by a dead daemon is replaced; one that a live
// daemon answers on is an error.
//
// The socket is bound in a private directory (mode 0700) beside path,
// made 0600 there and then renamed to path, so it is never reachable with
// a looser mode, and the process umask, which other goroutines' file
// creation reads, is left alone.
func Listen(path string) (net.Listener, error) {
	dir := dirOf(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("api: %s: another daemon is listening there", path)
	}
	private, err := os.MkdirTemp(dir, ".vigil-sock-")
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	defer os.RemoveAll(private)
	tmp := private + "/s"
	ln, err := listenShort(private, "s")
	if err != nil {
		return nil, fmt.Errorf("api: listen %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	// Close removes path (below), not the temporary name.
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api: %w", err)
	}
	fi, err := os.Lstat(tmp)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("api: %w", err)
	}
	// Rename replaces a socket file left by a dead daemon.
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api: listen %s: %w", path, err)
	}
	return &socketListener{UnixListener: ul, path: path, file: fi}, nil
}

// listenShort listens on the Unix socket dir/name. A socket's path is
// limited to 107 bytes, and the private directory makes it longer than the
// path the operator chose: bind through /proc/self/fd/N of the directory
// when /proc is there, so any path that fits for the operator fits here.
func listenShort(dir, name string) (net.Listener, error) {
	if fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		defer unix.Close(fd)
		if ln, err := net.Listen("unix", fmt.Sprintf("/proc/self/fd/%d/%s", fd, name)); err == nil {
			return ln, nil
		}
	}
	return net.Listen("unix", dir+"/"+name)
}

// socketListener is the API's listener: it names the socket by the path
// clients use and removes that path when closed.
type socketListener struct {
	*net.UnixListener
	path string
	file os.FileInfo // the socket file this listener made
}

func (l *socketListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// Close closes the socket and removes its path while the path is still
// this listener's socket: a daemon started while this one stops (its
// notify scripts drain for seconds) has put its own socket there.
func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.file) {
		os.Remove(l.path)
	}
	return err
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}

// Handler returns the API's HTTP handler.
func Handler(d Daemon, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		s, err := d.Snapshot(r.Context())
		reply(w, s, err)
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		res, err := d.Reload(r.Context())
		if err == nil && !res.Applied {
			writeJSON(w, http.StatusUnprocessableEntity, res)
			return
		}
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/handover", func(w http.ResponseWriter, r *http.Request) {
		err := d.Handover(r.Context(), r.URL.Query().Get("instance"))
		reply(w, map[string]bool{"ok": err == nil}, err)
	})
	mux.HandleFunc("POST /v1/reclaim", func(w http.ResponseWriter, r *http.Request) {
		err := d.Reclaim(r.Context(), r.URL.Query().Get("instance"))
		reply(w, map[string]bool{"ok": err == nil}, err)
	})
	return mux
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, Error{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// Compact: the daemon answers every poll of a monitoring loop, and
	// indenting a snapshot of thousands of instances costs it more than
	// the encoding itself; `vigil status --json` indents on the client.
	_ = json.NewEncoder(w).Encode(v)
}

// Serve serves the API on ln until ctx is done, then shuts down and returns.
// A connection idle for IdleTimeout is closed.
func Serve(ctx context.Context, ln net.Listener, d Daemon, log *slog.Logger) error {
	return serveIdle(ctx, ln, d, log, IdleTimeout)
}

func serveIdle(ctx context.Context, ln net.Listener, d Daemon, log *slog.Logger, idle time.Duration) error {
	return ServeHTTP(ctx, ln, &http.Server{Handler: Handler(d, log), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: idle})
}

// IdleTimeout is how long the API socket keeps a connection open between
// requests. Each open connection holds a goroutine and its buffers (about
// 20 KB); a client that opens a connection per request and never closes
// them (a fresh http.Transport per call) would otherwise leave them open
// for the daemon's life: vigil-bench's status polls left 32 on a master
// of 1,000 instances. Keep-alive between requests closer than this still
// works.
const IdleTimeout = 5 * time.Second

// ServeHTTP runs srv on ln until ctx is done, then shuts it down (waiting up
// to 2 s for requests in flight) and returns. A listener its owner closed
// ends it as a stop does: the daemon closes the API socket before it
// cancels ctx (the socket goes first on a stop). The status page and the
// metrics listener use it too.
func ServeHTTP(ctx context.Context, ln net.Listener, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
}

// Client talks to a daemon's API socket.
type Client struct {
	hc   *http.Client
	path string
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, path: path}
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://vigil"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("api: read reply: %w", err)
	}
	if resp.StatusCode == http.StatusInternalServerError {
		var e Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("api: %s", resp.Status)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("api: decode reply (%s): %w", resp.Status, err)
	}
	return nil
}

// dialError explains a failed request in the words of the one who ran
// the command: whether a daemon listens at the socket and what to do.
func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w on %s: start it (vigil run, or systemctl start vigil), or name its socket with --api-socket", ErrNoDaemon, c.path)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("permission denied on %s: the control socket is root's (mode 0600); run the command as root", c.path)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("the daemon on %s did not answer in time: %w", c.path, err)
	}
	return fmt.Errorf("api %s: %w", c.path, err)
}

// ErrNoDaemon is wrapped by a client's errors when no daemon listens on
// the socket.
var ErrNoDaemon = errors.New("no vigil daemon is listening")

// Status fetches the daemon's snapshot.
func (c *Client) Status(ctx context.Context) (status.Snapshot, error) {
	var s status.Snapshot
	err := c.do(ctx, http.MethodGet, "/v1/status", &s)
	return s, err
}

// Reload asks the daemon to reload its configuration.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var r ReloadResult
	err := c.do(ctx, http.MethodPost, "/v1/reload", &r)
	return r, err
}

// Handover asks the daemon to hand instance (all when "") over to a backup.
func (c *Client) Handover(ctx context.Context, instance string) error {
	var r map[string]bool
	return c.do(ctx, http.MethodPost, "/v1/handover?instance="+url.QueryEscape(instance), &r)
}

// Reclaim asks the daemon to let instance (all when "") preempt again after
// a handover.
func (c *Client) Reclaim(ctx context.Context, instance string) error {
	var r map[string]bool
	return c.do(ctx, http.MethodPost, "/v1/reclaim?instance="+url.QueryEscape(instance), &r)
}
