package engine

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrpfw"
)

// vmacHost is a fakeHost with VMACs and a firewall: it records what the
// engine asks, in order, in the host's history.
type vmacHost struct {
	*fakeHost
	next int
}

func (h *vmacHost) record(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history = append(h.history, s)
	h.at = append(h.at, time.Now())
}

func (h *vmacHost) CreateVMAC(v netif.VMAC) error {
	h.record("+vmac " + v.Name + " " + v.MAC.String())
	h.next++
	h.mu.Lock()
	h.links[v.Name] = netif.LinkInfo{Index: 100 + h.next, Name: v.Name, Up: true, Running: true, LowerUp: true, MAC: slices.Clone(v.MAC), MTU: 1500}
	h.mu.Unlock()
	return nil
}

func (h *vmacHost) DeleteVMAC(name string) error {
	h.record("-vmac " + name)
	h.mu.Lock()
	delete(h.links, name)
	h.mu.Unlock()
	return nil
}

func (h *vmacHost) RemoveStaleVMACs() ([]string, error) { return nil, nil }

func (h *vmacHost) ApplyFirewall(s vrrpfw.State) error {
	var drops []string
	for _, d := range s.Drop {
		drops = append(drops, d.Addr.String())
	}
	h.record(fmt.Sprintf("fw vmacs=%v drop=%v", s.VMACs, drops))
	return nil
}

func (h *vmacHost) historyOf() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.history)
}

// TestVMACAndNoAcceptOrder: with use_vmac and accept mode off, the engine
// makes the VMAC before the instance runs, puts the VIP on it, sets the
// drop before adding the VIP and removes it after deleting the VIP
// (keepalived vrrp_handle_accept_mode), and at exit removes the VMAC and
// the table after the addresses.
func TestVMACAndNoAcceptOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		h := &vmacHost{fakeHost: newFakeHost(lan, "a", map[string]string{"eth0": "192.168.1.105/24"})}
		s := tutorialInstance(vrrp.StateMaster, 100)
		s.VMAC = netif.VMAC{Name: "vrrp.55", Parent: "eth0", MAC: net.HardwareAddr{0, 0, 0x5e, 0, 1, 55}}
		s.VIPs[0].Dev = "vrrp.55"
		s.NoAccept = true
		e, err := New(runspec.Spec{Instances: []runspec.InstanceSpec{s}}, Options{Net: h})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		time.Sleep(5 * time.Second)
		if !h.holds(vip) {
			t.Fatal("no VIP after 5 s as master")
		}
		h.mu.Lock()
		dev := h.vips[s.VIPs[0].Prefix]
		h.mu.Unlock()
		if dev != "vrrp.55" {
			t.Errorf("VIP on %s, want vrrp.55", dev)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := []string{
			"fw vmacs=[] drop=[]", // a killed run's table removed at start
			"+vmac vrrp.55 00:00:5e:00:01:37",
			"fw vmacs=[vrrp.55] drop=[]",
			"fw vmacs=[vrrp.55] drop=[192.168.1.100]",
			"+" + vip,
			"-" + vip,
			"fw vmacs=[vrrp.55] drop=[]",
			"fw vmacs=[] drop=[]",
			"-vmac vrrp.55",
		}
		if got := h.historyOf(); !slices.Equal(got, want) {
			t.Errorf("history:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	})
}

// TestVMACWithoutSupportIsFault: on a Net that cannot make VMACs the
// instance is in FAULT with the reason, not running without its VMAC.
func TestVMACWithoutSupportIsFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		s := tutorialInstance(vrrp.StateMaster, 100)
		s.VMAC = netif.VMAC{Name: "vrrp.55", Parent: "eth0", MAC: net.HardwareAddr{0, 0, 0x5e, 0, 1, 55}}
		a := startNode(t, lan, "a", "192.168.1.105/24", s)
		time.Sleep(5 * time.Second)
		in := a.snapshot(t).Instances[0]
		if in.State != "FAULT" || !strings.Contains(in.Reason, "use_vmac") {
			t.Fatalf("instance %s (%q), want FAULT naming use_vmac", in.State, in.Reason)
		}
		a.stop(t)
	})
}
