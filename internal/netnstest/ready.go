package netnstest

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// WaitLANReady waits until every interface of the given hosts is
// operationally up and its bridge port forwards. The kernel applies carrier
// changes through linkwatch, which may delay them by up to a second; until
// then the bridge drops the host's frames, so a test that sends its first
// packet right after building the lab may lose it on a loaded machine.
func WaitLANReady(t testing.TB, l *lab.Lab, hosts ...*lab.Host) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, h := range hosts {
		for _, ifc := range h.Ifaces {
			for {
				host, _ := exec.Command("ip", "-n", h.NS(), "-o", "link", "show", "dev", ifc.Name).Output()
				port, _ := exec.Command("bridge", "-n", l.SwitchNS(), "link", "show", "dev", ifc.Peer).Output()
				if strings.Contains(string(host), "state UP") && strings.Contains(string(port), "state forwarding") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("netnstest: %s %s not ready: %s / %s", h.Name(), ifc.Name, host, port)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}
