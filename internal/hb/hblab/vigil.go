package hblab

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// Vigil is one `vigil run --ha-dir` node in a lab host. Its ha.d is a
// temp dir; it needs no private mount namespace (the node name is given).
type Vigil struct {
	Host   *lab.Host
	Name   string
	Dir    string
	Proc   *lab.Proc
	past   []*lab.Proc // earlier runs, for Output
	status string
	t      testing.TB
}

// NewVigil writes the configuration (Extra files relative to the ha.d dir).
func NewVigil(t testing.TB, h *lab.Host, name string, f Files) *Vigil {
	t.Helper()
	dir := t.TempDir()
	v := &Vigil{Host: h, Name: name, Dir: dir, status: filepath.Join(dir, "status.json"), t: t}
	write := func(rel, body string, mode os.FileMode) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("ha.cf", f.HaCf, 0o644)
	write("haresources", f.HaResources, 0o644)
	write("authkeys", f.AuthKeys, 0o600)
	for rel, body := range f.Extra {
		write(rel, body, 0o755)
	}
	t.Cleanup(v.Kill)
	return v
}

// Start starts the daemon.
func (v *Vigil) Start() {
	v.t.Helper()
	os.Remove(v.status)
	p, err := v.Host.Start(netnstest.VigilBinary(v.t), "run", "--ha-dir", v.Dir, "--node", v.Name, "--ha-status-file", v.status,
		"--ha-init-dir", filepath.Join(v.Dir, "init.d"), "--api-socket", filepath.Join(v.Dir, "vigil.sock"),
		"--ha-generation-file", filepath.Join(v.Dir, "hb_generation"))
	if err != nil {
		v.t.Fatal(err)
	}
	if v.Proc != nil {
		v.past = append(v.past, v.Proc)
	}
	v.Proc = p
}

// Stop sends SIGTERM and waits for the graceful exit.
func (v *Vigil) Stop(timeout time.Duration) error {
	if v.Proc == nil {
		return nil
	}
	_ = v.Proc.Signal(syscall.SIGTERM)
	if !v.Proc.Wait(timeout) {
		return fmt.Errorf("vigil %s did not stop within %v\n%s", v.Name, timeout, v.Proc.Output())
	}
	return nil
}

// KillDaemon kills only the daemon with SIGKILL (its resources keep
// running), as `killall -9 heartbeat`.
func (v *Vigil) KillDaemon() {
	if v.Proc != nil {
		_ = v.Proc.Signal(syscall.SIGKILL)
		v.Proc.Wait(5 * time.Second)
	}
}

// Kill kills the daemon and its process group (its resource processes).
func (v *Vigil) Kill() {
	if v.Proc != nil {
		v.Proc.Kill()
	}
}

// Status reads the node's last status snapshot.
func (v *Vigil) Status() (hb.Status, error) {
	var st hb.Status
	b, err := os.ReadFile(v.status)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// Output is the daemon's log so far: every run since NewVigil, each under
// a line naming its pid, so a restarted node's earlier runs stay readable.
func (v *Vigil) Output() string {
	if v.Proc == nil {
		return ""
	}
	if len(v.past) == 0 {
		return v.Proc.Output()
	}
	var b strings.Builder
	for i, p := range append(v.past[:len(v.past):len(v.past)], v.Proc) {
		fmt.Fprintf(&b, "--- %s run %d (pid %d) ---\n%s", v.Name, i+1, p.Cmd.Process.Pid, p.Output())
	}
	return b.String()
}

// HasAddr reports whether the host has addr (as "a.b.c.d") on any
// interface (read over netlink inside the host's namespace).
func HasAddr(h *lab.Host, addr string) bool {
	found := false
	_ = h.Do(func() error {
		as, err := net.InterfaceAddrs()
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok && n.IP.String() == addr {
				found = true
			}
		}
		return err
	})
	return found
}

// WebScript is an LSB-style resource script for tests: a small HTTP server
// (python3 http.server) on addr:80 serving <ha.d>/www.
func WebScript(addr string) string {
	return `#!/bin/sh
D=$(cd "$(dirname "$0")/.." && pwd)
PID=$D/web.pid
op=
for a; do op=$a; done
case "$op" in
start)
  if [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null; then exit 0; fi
  python3 -m http.server 80 --bind ` + addr + ` --directory "$D/www" >/dev/null 2>&1 &
  echo $! > "$PID"
  i=0
  while [ $i -lt 50 ]; do
    if grep -q ':0050 ' /proc/net/tcp 2>/dev/null; then exit 0; fi
    sleep 0.1; i=$((i+1))
  done
  exit 1;;
stop)
  if [ -f "$PID" ]; then kill "$(cat "$PID")" 2>/dev/null; rm -f "$PID"; fi
  exit 0;;
status)
  [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null;;
*) exit 2;;
esac
`
}
