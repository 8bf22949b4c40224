package e2e_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestKeepalivedArgsLeaveConsoleAlone runs keepalived as the tests do
// (e2e.KeepalivedArgs) with /dev/console bind-mounted to a file, and
// checks that its log reaches its stderr and nothing reaches the console.
// The control, the same flags without -G, shows the check can fail: with
// -l, keepalived opens syslog with LOG_CONS, and with nothing on /dev/log
// glibc writes each message to /dev/console. On the CI machine that
// console is an emulated serial port whose interrupt handler (bound to
// one CPU, interrupts off) stalled real-time daemons woken on that CPU:
// 4 KB written to it during a soak stopped all 100 instances of the
// master for 54 ms (README, "Chaos and soak").
func TestKeepalivedArgsLeaveConsoleAlone(t *testing.T) {
	netnstest.RequireRoot(t)
	ka := netnstest.RequireCommand(t, "keepalived")
	netnstest.RequireCommand(t, "mount")
	l := netnstest.New(t, "kacons")
	h := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.1/24"}})
	for _, tc := range []struct {
		name    string
		args    func(...string) []string
		console bool
	}{
		{"KeepalivedArgs", e2e.KeepalivedArgs, false},
		{"without -G", func(a ...string) []string { return append([]string{"-n", "-l", "-D"}, a...) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			console := filepath.Join(dir, "console")
			conf := filepath.Join(dir, "keepalived.conf")
			if err := os.WriteFile(console, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			body := "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 50\n  advert_int 1\n  virtual_ipaddress {\n    192.168.1.50/24\n  }\n}\n"
			if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			// `ip netns exec` gives the command a mount namespace of its
			// own: the bind mount stays inside it.
			args := append([]string{"-c", `mount --bind "$1" /dev/console && shift && exec "$@"`, "sh", console, "env", "TMPDIR=" + dir, ka},
				tc.args("-P", "-f", conf, "-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"))...)
			p, err := h.Start("sh", args...)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Kill()
			if !p.WaitOutput("Entering BACKUP STATE", 20*time.Second) {
				t.Fatalf("keepalived did not log its BACKUP state to stderr:\n%s", p.Output())
			}
			_ = p.Signal(syscall.SIGTERM)
			if !p.Wait(10 * time.Second) {
				t.Errorf("keepalived did not stop on SIGTERM")
			}
			b, err := os.ReadFile(console)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(b) > 0; got != tc.console {
				t.Errorf("keepalived wrote %d bytes to /dev/console, want console output %v:\n%s", len(b), tc.console, b)
			}
		})
	}
}
