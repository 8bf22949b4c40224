package wire_test

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hblab"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestCaptureHeartbeat records the UDP payloads two Debian heartbeat 3.0.6
// nodes exchange (ucast, port 694) into $VIGIL_HB_CAPTURE/<auth>-NN.bin. It is
// how testdata/capture/ was made; it only runs when that variable is set.
func TestCaptureHeartbeat(t *testing.T) {
	out := os.Getenv("VIGIL_HB_CAPTURE")
	if out == "" {
		t.Skip("set VIGIL_HB_CAPTURE=DIR to capture heartbeat 3.0.6 packets into DIR")
	}
	hblab.Require(t)
	netnstest.RequireCommand(t, "tcpdump")
	netnstest.RequireCommand(t, "tshark")
	for _, auth := range []string{"crc", "md5 hello!", "sha1 s3cret"} {
		name := strings.Fields(auth)[0]
		t.Run(name, func(t *testing.T) {
			l := netnstest.New(t, "hbcap")
			a := netnstest.AddHost(t, l, "a", lab.Iface{Name: "eth1", LAN: "hb", Addrs: []string{"10.0.0.1/24"}})
			b := netnstest.AddHost(t, l, "b", lab.Iface{Name: "eth1", LAN: "hb", Addrs: []string{"10.0.0.2/24"}})
			hacf := func(peer string) string {
				return fmt.Sprintf("logfile /var/lib/heartbeat/ha-log\ndebugfile /var/lib/heartbeat/ha-debug\nlogfacility none\nkeepalive 1\ndeadtime 5\nwarntime 3\ninitdead 5\nudpport 694\nucast eth1 %s\nauto_failback on\nnode alpha\nnode beta\n", peer)
			}
			keys := "auth 3\n3 " + auth + "\n"
			na := hblab.New(t, a, "alpha", hblab.Files{HaCf: hacf("10.0.0.2"), HaResources: "", AuthKeys: keys})
			nb := hblab.New(t, b, "beta", hblab.Files{HaCf: hacf("10.0.0.1"), HaResources: "", AuthKeys: keys})
			pcap := filepath.Join(t.TempDir(), "hb.pcap")
			dump, err := a.Start("tcpdump", "-U", "-n", "-i", "eth1", "-w", pcap, "udp", "port", "694")
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			na.Start()
			nb.Start()
			time.Sleep(8 * time.Second)
			st, _ := na.ClStatus("nodestatus", "beta")
			t.Logf("alpha sees beta: %s", st)
			dump.Signal(2)
			dump.Wait(5 * time.Second)
			raw, err := exec.Command("tshark", "-r", pcap, "-T", "fields", "-e", "ip.src", "-e", "data").Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				f := strings.Fields(line)
				if len(f) != 2 {
					continue
				}
				b, err := hex.DecodeString(f[1])
				if err != nil {
					t.Fatal(err)
				}
				n++
				if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("%s-%02d-%s.bin", name, n, f[0])), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%d packets; alpha log:\n%s", n, na.Log())
		})
	}
}
