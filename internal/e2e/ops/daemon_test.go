package ops

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
)

// daemon is one `vigil run` inside a lab host, with its files in a private
// directory: the configuration, the API socket, the pid file and TMPDIR
// (where the keepalived dumps go).
type daemon struct {
	t    *testing.T
	bin  string
	h    *lab.Host
	dir  string
	conf string
	sock string
	pid  string
	tmp  string
	p    *lab.Proc
	// nice, when not 0, runs the daemon at that nice level (as a unit's
	// Nice= would).
	nice int
	// prelude, when set, is shell code run before the daemon is exec'd
	// from the same shell (e.g. "exec 7<file;" to leave it a descriptor).
	prelude string
}

// newDaemon prepares a daemon of host h whose configuration is conf; it
// starts nothing.
func newDaemon(t *testing.T, h *lab.Host, conf string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{
		t: t, bin: netnstest.VigilBinary(t), h: h, dir: dir,
		conf: filepath.Join(dir, "keepalived.conf"),
		sock: filepath.Join(dir, "run", "vigil.sock"),
		pid:  filepath.Join(dir, "run", "vigil.pid"),
		tmp:  filepath.Join(dir, "tmp"),
	}
	if err := os.MkdirAll(d.tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	d.write(conf)
	return d
}

// write replaces the configuration file (atomically, as an editor or a
// configuration manager would).
func (d *daemon) write(conf string) {
	d.t.Helper()
	tmp := d.conf + ".new"
	if err := os.WriteFile(tmp, []byte(conf), 0o644); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, d.conf); err != nil {
		d.t.Fatal(err)
	}
}

// start runs `vigil run` with JSON logs and the given extra flags, and
// waits until its API answers. The daemon is stopped with SIGTERM when the
// test ends, and must exit 0.
func (d *daemon) start(extra ...string) {
	d.t.Helper()
	args := []string{"TMPDIR=" + d.tmp}
	if d.nice != 0 {
		args = append(args, "nice", "-n", strconv.Itoa(d.nice))
	}
	args = append(args, d.bin, "run", "-f", d.conf, "--api-socket", d.sock, "-p", d.pid, "--log-format", "json")
	name := "env"
	if d.prelude != "" {
		args = append([]string{"-c", d.prelude + ` exec "$@"`, "sh", "env"}, args...)
		name = "/bin/sh"
	}
	p, err := d.h.Start(name, append(args, extra...)...)
	if err != nil {
		d.t.Fatal(err)
	}
	d.p = p
	d.t.Cleanup(func() {
		d.stop()
		if d.t.Failed() {
			d.t.Logf("%s: vigil output:\n%s", d.h.Name(), p.Output())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := api.NewClient(d.sock).Status(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-p.Done():
			d.t.Fatalf("%s: vigil exited at start: %v\n%s", d.h.Name(), p.Err(), p.Output())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: API not answering after 30s: %v\n%s", d.h.Name(), err, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects a clean exit within 20 s.
func (d *daemon) stop() {
	d.t.Helper()
	select {
	case <-d.p.Done():
		return
	default:
	}
	if err := d.p.Signal(syscall.SIGTERM); err != nil {
		d.t.Errorf("%s: SIGTERM: %v", d.h.Name(), err)
		return
	}
	if !d.p.Wait(20 * time.Second) {
		d.t.Errorf("%s: vigil still running 20s after SIGTERM", d.h.Name())
		d.p.Kill()
		return
	}
	if err := d.p.Err(); err != nil {
		d.t.Errorf("%s: vigil exit after SIGTERM: %v", d.h.Name(), err)
	}
}

func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.p.Signal(sig); err != nil {
		d.t.Fatalf("%s: signal %v: %v", d.h.Name(), sig, err)
	}
}

// cli runs a vigil client command against this daemon's socket, from the
// test's own namespace (the socket is a path: it crosses namespaces), and
// returns stdout, stderr and the exit code.
func (d *daemon) cli(args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, append(args, "--api-socket", d.sock)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		d.t.Fatalf("vigil %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// status is `vigil status --json`, decoded.
func (d *daemon) status() status.Snapshot {
	d.t.Helper()
	out, errOut, code := d.cli("status", "--json")
	if code != 0 {
		d.t.Fatalf("%s: vigil status --json: exit %d: %s", d.h.Name(), code, errOut)
	}
	var s status.Snapshot
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		d.t.Fatalf("%s: vigil status --json: %v\n%s", d.h.Name(), err, out)
	}
	return s
}

// snapshot reads the status through the API client (cheaper than the CLI,
// for polling).
func (d *daemon) snapshot() (status.Snapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return api.NewClient(d.sock).Status(ctx)
}

// waitFor polls the status until cond holds, and returns that status.
func (d *daemon) waitFor(what string, within time.Duration, cond func(status.Snapshot) bool) status.Snapshot {
	d.t.Helper()
	deadline := time.Now().Add(within)
	var last status.Snapshot
	var err error
	for time.Now().Before(deadline) {
		if last, err = d.snapshot(); err == nil && cond(last) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", "  ")
	d.t.Fatalf("%s: %s: not within %v (last error %v); last status:\n%s", d.h.Name(), what, within, err, b)
	return last
}

// logs returns the daemon's JSON log records so far.
func (d *daemon) logs() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(d.p.Output()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// logsWith returns the records whose msg contains s.
func (d *daemon) logsWith(s string) []map[string]any {
	var out []map[string]any
	for _, m := range d.logs() {
		if msg, _ := m["msg"].(string); strings.Contains(msg, s) {
			out = append(out, m)
		}
	}
	return out
}

func instance(s status.Snapshot, name string) (status.Instance, bool) {
	for _, in := range s.Instances {
		if in.Name == name {
			return in, true
		}
	}
	return status.Instance{}, false
}

func stateOf(s status.Snapshot, name string) string {
	in, _ := instance(s, name)
	return in.State
}

// inState returns a condition: every named instance is in state.
func inState(state string, names ...string) func(status.Snapshot) bool {
	return func(s status.Snapshot) bool {
		for _, n := range names {
			if stateOf(s, n) != state {
				return false
			}
		}
		return true
	}
}

// realServer finds a real server of a virtual server in a snapshot.
func realServer(s status.Snapshot, vs, addr string) (status.RealServer, bool) {
	for _, v := range s.VirtualServers {
		if v.Name != vs {
			continue
		}
		for _, r := range v.RealServers {
			if r.Addr == addr {
				return r, true
			}
		}
	}
	return status.RealServer{}, false
}

// serveWeb answers every HTTP request with name from a server listening on
// addr inside h, until the test ends.
func serveWeb(t *testing.T, h *lab.Host, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	srv.SetKeepAlivesEnabled(false)
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

// httpIn returns an HTTP client whose connections are made inside h (for a
// listener on h's loopback).
func httpIn(h *lab.Host) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := h.Do(func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get fetches url from inside h and returns the body.
func get(t *testing.T, h *lab.Host, url string) (string, http.Header) {
	t.Helper()
	resp, err := httpIn(h).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", url, resp.Status, err, b)
	}
	return string(b), resp.Header
}

// mustRun runs a command in h or fails the test.
func mustRun(t *testing.T, h *lab.Host, name string, args ...string) string {
	t.Helper()
	out, err := h.Run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sysctl(t *testing.T, h *lab.Host, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := h.Sysctl(kv[i], kv[i+1]); err != nil {
			t.Fatal(fmt.Errorf("%s: %w", h.Name(), err))
		}
	}
}
