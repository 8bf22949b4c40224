package vrrpnet_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// startKeepalived runs keepalived 2.2.7 (VRRP only, in the foreground,
// logging to the console) inside h with the given configuration.
func startKeepalived(t *testing.T, h *lab.Host, conf string) *lab.Proc {
	t.Helper()
	bin := netnstest.RequireCommand(t, "keepalived")
	dir := t.TempDir()
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := h.Start(bin, e2e.KeepalivedArgs("-P", "-f", cf,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func waitLog(t *testing.T, p *lab.Proc, want string, timeout time.Duration) {
	t.Helper()
	if !p.WaitOutput(want, timeout) {
		t.Fatalf("keepalived did not log %q within %v:\n%s", want, timeout, p.Output())
	}
}

// TestKeepalivedInterop: keepalived 2.2.7 accepts the adverts vrrpnet sends
// (it stays BACKUP while they flow) and vrrpnet receives keepalived's
// adverts; keepalived's gratuitous ARP equals garp.ARPFrame.
func TestKeepalivedInterop(t *testing.T) {
	tl := newLab(t)
	_, payload := capturedAdvert(t) // VRID 55, priority 100, VIP 192.168.1.100, PASS 1111
	conf := func(state string, prio int) string {
		return fmt.Sprintf(`global_defs {
  router_id r2
}
vrrp_instance VI_1 {
  state %s
  interface eth0
  virtual_router_id 55
  priority %d
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass 1111
  }
  virtual_ipaddress {
    192.168.1.100
  }
}
`, state, prio)
	}

	sender := listen(t, tl.r1, vrrpnet.Config{Family: vrrpnet.IPv4})
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := sender.WritePacket(payload, netip.Addr{}, netip.Addr{}); err != nil {
				t.Errorf("WritePacket: %v", err)
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	ka := startKeepalived(t, tl.r2, conf("BACKUP", 50))
	waitLog(t, ka, "Entering BACKUP STATE", 10*time.Second)
	// keepalived's master-down interval is 3 * 1 s + skew (~0.8 s): it would
	// be MASTER by now if it rejected our adverts.
	time.Sleep(4500 * time.Millisecond)
	if out := ka.Output(); strings.Contains(out, "Entering MASTER STATE") {
		t.Fatalf("keepalived became MASTER while vrrpnet sent priority-100 adverts:\n%s", out)
	}
	close(stop)
	<-sent

	// Without our adverts keepalived takes over: receive its adverts and
	// its gratuitous ARP.
	recv := listen(t, tl.r3, vrrpnet.Config{Family: vrrpnet.IPv4})
	cap := netnstest.StartCapture(t, tl.sniffer, "eth0", "arp")
	waitLog(t, ka, "Entering MASTER STATE", 10*time.Second)
	p := mustRead(t, recv)
	if p.Src != addr("192.168.1.106") || p.Dst != addr("224.0.0.18") || p.TTL != 255 ||
		!bytes.Equal(p.Payload[:4], []byte{0x21, 55, 50, 1}) { // v2 advert, VRID 55, priority 50, 1 address
		t.Errorf("keepalived's advert: %+v", p)
	}
	mac := tl.r2.Iface("eth0").MAC
	hw, _ := parseMAC(mac)
	want, _ := garp.ARPFrame(hw, addr("192.168.1.100"))
	frames := cap.Frames(t, 1, 5*time.Second)
	if len(frames) == 0 || !bytes.Equal(frames[0], want) {
		t.Errorf("keepalived's gratuitous ARP\n %x\ngarp.ARPFrame\n %x", frames, want)
	}
}

func parseMAC(s string) (net.HardwareAddr, error) { return net.ParseMAC(s) }
