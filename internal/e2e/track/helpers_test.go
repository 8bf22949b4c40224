package track

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
)

// node is one `vigil run` process in a lab host, with a private directory
// for its configuration, scripts, pid file, API socket and logs.
type node struct {
	t    testing.TB
	host *lab.Host
	dir  string
	conf string
	sock string
	proc *lab.Proc
	// logLevel is vigil's --log-level; "" means debug.
	logLevel string
	// wrap, if set, is a command vigil runs under (e.g. unshare).
	wrap []string
}

func newNode(t testing.TB, h *lab.Host) *node {
	t.Helper()
	dir := t.TempDir()
	return &node{t: t, host: h, dir: dir, sock: filepath.Join(dir, "vigil.sock")}
}

// path returns a path in the node's directory.
func (n *node) path(name string) string { return filepath.Join(n.dir, name) }

// write writes a file in the node's directory and returns its path.
func (n *node) write(name, body string, mode os.FileMode) string {
	n.t.Helper()
	p := n.path(name)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		n.t.Fatal(err)
	}
	return p
}

// start writes conf as the node's keepalived.conf, starts `vigil run`
// (with flags besides the node's own) and waits until its API answers. The
// daemon gets SIGTERM at the end of the test; its log is printed when the
// test failed.
func (n *node) start(conf string, flags ...string) {
	n.t.Helper()
	bin := netnstest.VigilBinary(n.t)
	n.conf = n.write("keepalived.conf", conf, 0o644)
	level := n.logLevel
	if level == "" {
		level = "debug"
	}
	args := append([]string{bin, "run", "-f", n.conf, "--api-socket", n.sock, "-p", n.path("vigil.pid"), "--log-level", level}, flags...)
	if len(n.wrap) > 0 {
		args = append(append([]string(nil), n.wrap...), args...)
	}
	p, err := n.host.Start(args[0], args[1:]...)
	if err != nil {
		n.t.Fatal(err)
	}
	n.proc = p
	n.t.Cleanup(func() {
		n.stop(15 * time.Second)
		if strings.Contains(p.Output(), "panic:") {
			n.t.Errorf("vigil on %s panicked", n.host.Name())
		}
		if n.t.Failed() {
			n.t.Logf("vigil on %s:\n%s", n.host.Name(), tail(p.Output(), 150))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := api.NewClient(n.sock).Status(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-p.Done():
			n.t.Fatalf("vigil on %s exited: %v\n%s", n.host.Name(), p.Err(), p.Output())
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("vigil on %s: API not answering after 20s: %v\n%s", n.host.Name(), err, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range strings.Split(p.Output(), "\n") {
		if strings.Contains(l, "msg=configuration") {
			n.t.Logf("%s: %s", n.host.Name(), l)
		}
	}
}

// pid returns vigil's process ID (under wrap, the wrapper's child).
func (n *node) pid() int {
	if len(n.wrap) == 0 {
		return n.proc.PID()
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", n.proc.PID(), n.proc.PID()))
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

// stop sends SIGTERM to vigil and waits for the exit.
func (n *node) stop(timeout time.Duration) {
	if n.proc == nil {
		return
	}
	select {
	case <-n.proc.Done():
		return
	default:
	}
	if pid := n.pid(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	if !n.proc.Wait(timeout) {
		n.t.Errorf("vigil on %s did not stop within %v after SIGTERM", n.host.Name(), timeout)
		n.proc.Kill()
		return
	}
	if err := n.proc.Err(); err != nil {
		n.t.Errorf("vigil on %s: graceful stop exited with %v", n.host.Name(), err)
	}
}

// status returns the daemon's snapshot, failing the test when the API does
// not answer.
func (n *node) status() status.Snapshot {
	n.t.Helper()
	s, err := n.trySnapshot()
	if err != nil {
		n.t.Fatalf("vigil on %s: %v", n.host.Name(), err)
	}
	return s
}

func (n *node) trySnapshot() (status.Snapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return api.NewClient(n.sock).Status(ctx)
}

// instance returns the named instance's status; the zero Instance when the
// API fails or has no such instance (so that it can be polled).
func (n *node) instance(name string) status.Instance {
	s, err := n.trySnapshot()
	if err != nil {
		return status.Instance{}
	}
	for _, in := range s.Instances {
		if in.Name == name {
			return in
		}
	}
	return status.Instance{}
}

// group returns the named sync group's state ("" when unknown).
func (n *node) groupState(name string) string {
	s, err := n.trySnapshot()
	if err != nil {
		return ""
	}
	for _, g := range s.SyncGroups {
		if g.Name == name {
			return g.State
		}
	}
	return ""
}

// waitState waits until the instance is in state.
func (n *node) waitState(name, state string, timeout time.Duration) time.Duration {
	n.t.Helper()
	return waitFor(n.t, timeout, fmt.Sprintf("%s: %s in %s", n.host.Name(), name, state), func() bool {
		return n.instance(name).State == state
	})
}

// waitFor polls cond every 10 ms until it holds, and returns how long that
// took; it fails the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// holds reports whether the host has addr on one of its interfaces.
func holds(h *lab.Host, addr string) bool {
	want := netip.MustParseAddr(addr)
	found := false
	_ = h.Do(func() error {
		as, err := net.InterfaceAddrs()
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				if got, ok := netip.AddrFromSlice(n.IP); ok && got.Unmap() == want {
					found = true
				}
			}
		}
		return err
	})
	return found
}

// fetch GETs http://addr/ from the host with curl and returns the body with
// the response headers before it (curl -D -).
func fetch(h *lab.Host, addr string) (string, error) {
	return h.Run("curl", "-sS", "-D", "-", "--max-time", "2", "http://"+addr+"/")
}

// fetchUntil fetches http://addr/ from the host until the response
// contains want (a VIP move takes an ARP update). It returns the attempts.
func fetchUntil(t testing.TB, h *lab.Host, addr, want string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for attempts := 1; ; attempts++ {
		got, err := fetch(h, addr)
		if err == nil && strings.Contains(got, want) {
			return attempts
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: http://%s/ did not answer %q within %v (%d attempts); last: %v\n%s", h.Name(), addr, want, timeout, attempts, err, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listening waits until something accepts TCP connections on addr:port
// inside the host.
func listening(t testing.TB, h *lab.Host, addr string, port int) {
	t.Helper()
	waitFor(t, 15*time.Second, fmt.Sprintf("%s listening on %s:%d", h.Name(), addr, port), func() bool {
		return h.Do(func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, fmt.Sprint(port)), 500*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		}) == nil
	})
}

// masterDown is RFC 3768 §6.1 / RFC 5798 §6.1's Master_Down_Interval of a
// backup with priority prio: 3 × advert + skew, where skew is
// (256 - prio) / 256 × advert (RFC 5798 §6.1 Skew_Time; keepalived computes
// the VRRPv2 skew the same way from its advert interval).
func masterDown(advert time.Duration, prio int) time.Duration {
	return 3*advert + time.Duration(256-prio)*advert/256
}

// service is a server process in a lab host (nginx, haproxy).
type service struct {
	name string
	host *lab.Host
	args []string
	proc *lab.Proc
}

func (s *service) start(t testing.TB) {
	t.Helper()
	p, err := s.host.Start(s.name, s.args...)
	if err != nil {
		t.Fatal(err)
	}
	s.proc = p
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s on %s:\n%s", s.name, s.host.Name(), tail(p.Output(), 30))
		}
	})
}

// stop sends sig to the service's main process, waits for it to exit and
// returns when the signal was sent.
func (s *service) stop(t testing.TB, sig syscall.Signal) time.Time {
	t.Helper()
	at := time.Now()
	if err := s.proc.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if !s.proc.Wait(10 * time.Second) {
		t.Fatalf("%s on %s did not exit after %v", s.name, s.host.Name(), sig)
	}
	return at
}

// nginxService prepares Debian's nginx in the host with a private
// configuration, prefix, pid file and error log under dir: one server that
// answers "served by <label>" on each of listen (port 80).
func nginxService(t testing.TB, h *lab.Host, dir, label string, listen ...string) *service {
	t.Helper()
	netnstest.RequireCommand(t, "nginx")
	dir = filepath.Join(dir, "nginx")
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var ls strings.Builder
	for _, a := range listen {
		fmt.Fprintf(&ls, "\t\tlisten %s:80;\n", a)
	}
	conf := filepath.Join(dir, "nginx.conf")
	body := `# private nginx of lab host ` + h.Name() + `
user root;
daemon off;
master_process on;
worker_processes 1;
pid ` + dir + `/nginx.pid;
error_log ` + dir + `/logs/error.log;
events { worker_connections 64; }
http {
	access_log off;
	default_type text/plain;
	client_body_temp_path ` + dir + `/tmp/body;
	proxy_temp_path ` + dir + `/tmp/proxy;
	fastcgi_temp_path ` + dir + `/tmp/fastcgi;
	uwsgi_temp_path ` + dir + `/tmp/uwsgi;
	scgi_temp_path ` + dir + `/tmp/scgi;
	server {
` + ls.String() + `		location / { return 200 "served by ` + label + `\n"; }
	}
}
`
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return &service{name: "nginx", host: h, args: []string{"-c", conf, "-p", dir, "-e", dir + "/logs/error.log"}}
}

// nginxConf is the configuration path of an nginxService.
func nginxConf(s *service) string { return s.args[1] }

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// fifoReader reads a notify FIFO: the test creates the FIFO and keeps it
// open read-write, so the reads never see end-of-file while vigil restarts
// or has not opened it yet.
type fifoReader struct {
	f    *os.File
	mu   sync.Mutex
	recs []fifoLine
	done chan struct{}
}

type fifoLine struct {
	At   time.Time
	Line string
}

func readFIFO(t testing.TB, path string) *fifoReader {
	t.Helper()
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &fifoReader{f: f, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		br := bufio.NewReader(f)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			r.mu.Lock()
			r.recs = append(r.recs, fifoLine{time.Now(), strings.TrimSuffix(l, "\n")})
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { f.Close(); <-r.done })
	return r
}

// lines returns the lines read so far.
func (r *fifoReader) lines() []fifoLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]fifoLine(nil), r.recs...)
}

// smtpServer is a minimal SMTP server on loopback inside a lab host: it
// accepts every message and keeps it.
type smtpServer struct {
	ln   net.Listener
	Port int
	mu   sync.Mutex
	msgs []smtpMessage
	wg   sync.WaitGroup
}

type smtpMessage struct {
	At       time.Time
	Helo     string
	From     string
	To       []string
	Header   mail.Header
	Body     string
	Dialogue []string // the client's commands
}

// startSMTP listens on 127.0.0.1 inside h (vigil's smtp_server is then
// 127.0.0.1 PORT in that host).
func startSMTP(t testing.TB, h *lab.Host) *smtpServer {
	t.Helper()
	s := &smtpServer{}
	if err := h.Do(func() error {
		var err error
		s.ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Port = s.ln.Addr().(*net.TCPAddr).Port
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { s.ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	tc := textproto.NewConn(c)
	var m smtpMessage
	reply := func(code int, msg string) bool { return tc.PrintfLine("%d %s", code, msg) == nil }
	if !reply(220, "lab ESMTP") {
		return
	}
	for {
		l, err := tc.ReadLine()
		if err != nil {
			return
		}
		m.Dialogue = append(m.Dialogue, l)
		verb := strings.ToUpper(strings.SplitN(l, " ", 2)[0])
		arg := strings.TrimSpace(strings.TrimPrefix(l, strings.SplitN(l, " ", 2)[0]))
		switch verb {
		case "HELO", "EHLO":
			m.Helo = arg
			reply(250, "hello")
		case "MAIL":
			m.From = trimVerbArg(arg, "FROM:")
			reply(250, "ok")
		case "RCPT":
			m.To = append(m.To, trimVerbArg(arg, "TO:"))
			reply(250, "ok")
		case "DATA":
			reply(354, "go ahead")
			b, err := tc.ReadDotBytes()
			if err != nil {
				return
			}
			msg, err := mail.ReadMessage(strings.NewReader(string(b)))
			if err == nil {
				m.Header = msg.Header
				body, _ := io.ReadAll(msg.Body)
				m.Body = string(body)
			}
			m.At = time.Now()
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			m = smtpMessage{Helo: m.Helo}
			reply(250, "queued")
		case "QUIT":
			reply(221, "bye")
			return
		default:
			reply(502, "not implemented")
		}
	}
}

// trimVerbArg strips "FROM:" / "TO:" (any case) from a MAIL or RCPT
// argument, leaving the path, e.g. "<a@b>".
func trimVerbArg(arg, prefix string) string {
	if len(arg) >= len(prefix) && strings.EqualFold(arg[:len(prefix)], prefix) {
		return strings.TrimSpace(arg[len(prefix):])
	}
	return arg
}

// messages returns the messages received so far.
func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

// subjects returns the subjects of the messages received so far.
func (s *smtpServer) subjects() []string {
	var out []string
	for _, m := range s.messages() {
		out = append(out, m.Header.Get("Subject"))
	}
	return out
}

// readLines returns the lines of a file, nil when it does not exist yet.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// isSubsequence reports whether sub appears in seq in order (not
// necessarily contiguously).
func isSubsequence(sub, seq []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

// processAlive reports whether a process with the PID exists (and is not a
// zombie).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
