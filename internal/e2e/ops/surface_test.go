package ops

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAPISocketAndListenerWarnings checks the daemon's exposed surfaces:
// the control socket is a unix socket of mode 0600 (root only) and the pid
// file names the daemon; --http-listen and --metrics-listen on 0.0.0.0 log
// a warning each (and do answer from another host, which is what the
// warning is about), while loopback listeners log none.
func TestAPISocketAndListenerWarnings(t *testing.T) {
	t.Parallel()
	x := newPairLab(t, "surface")
	d1 := newDaemon(t, x.n1, pairConf("n1", "MASTER", 150))
	d1.start("--http-listen", "0.0.0.0:8080", "--metrics-listen", "0.0.0.0:9650")
	d2 := newDaemon(t, x.n2, pairConf("n2", "BACKUP", 100))
	d2.start("--http-listen", "127.0.0.1:8080", "--metrics-listen", "127.0.0.1:9650")

	for _, d := range []*daemon{d1, d2} {
		fi, err := os.Stat(d.sock)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: API socket %s has mode %v, want a socket with 0600", d.h.Name(), d.sock, fi.Mode())
		}
		b, err := os.ReadFile(d.pid)
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || pid != d.p.PID() {
			t.Errorf("%s: pid file %s holds %q (%v), want %d", d.h.Name(), d.pid, b, err, d.p.PID())
		}
	}

	// Both of n1's listeners answer from n2: they are open to the LAN.
	for _, url := range []string{"http://192.168.50.1:8080/v1/status", "http://192.168.50.1:9650/metrics"} {
		get(t, x.n2, url)
	}
	// n2's loopback listeners answer on its loopback only.
	get(t, x.n2, "http://127.0.0.1:8080/v1/status")
	if err := x.n1.Do(func() error {
		c, err := net.DialTimeout("tcp4", "192.168.50.2:8080", time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err == nil {
		t.Errorf("n2's --http-listen 127.0.0.1:8080 answers on 192.168.50.2")
	}

	warnings := func(d *daemon) (http, metrics []string) {
		for _, m := range d.logs() {
			msg, _ := m["msg"].(string)
			if m["level"] != "WARN" {
				continue
			}
			switch {
			case strings.Contains(msg, "0.0.0.0:8080"):
				http = append(http, msg)
			case strings.Contains(msg, "0.0.0.0:9650"):
				metrics = append(metrics, msg)
			}
		}
		return http, metrics
	}
	h1, m1 := warnings(d1)
	if len(h1) != 1 || !strings.Contains(h1[0], "every interface") {
		t.Errorf("n1 (--http-listen 0.0.0.0:8080) logged %q; want one warning that it listens on every interface", h1)
	} else {
		t.Logf("n1 warns: %s", h1[0])
	}
	if len(m1) != 1 || !strings.Contains(m1[0], "every interface") {
		t.Errorf("n1 (--metrics-listen 0.0.0.0:9650) logged %q; want one warning", m1)
	}
	for _, m := range d2.logs() {
		if msg, _ := m["msg"].(string); m["level"] == "WARN" && strings.Contains(msg, "listener") {
			t.Errorf("n2 (loopback listeners) warned: %s", msg)
		}
	}
}
