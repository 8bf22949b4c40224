package vrrpfw_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/vrrpfw"
)

// TestApplyInKernel applies a state in a namespace and reads it back with
// nft: the drops for the addresses (link-local ones with their interface),
// the neighbour-discovery exceptions, the VMAC filters; then an empty state
// removes the table, and removing it again is not an error.
func TestApplyInKernel(t *testing.T) {
	l := netnstest.New(t, "vrrpfw")
	h := netnstest.AddHost(t, l, "r1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24"}})
	var fw *vrrpfw.Firewall
	if err := h.Do(func() (err error) { fw, err = vrrpfw.Open(); return err }); err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	st := vrrpfw.State{
		Drop: []vrrpfw.Drop{
			{Addr: netip.MustParseAddr("192.168.1.100"), Dev: "eth0"},
			{Addr: netip.MustParseAddr("fe80::100"), Dev: "eth0"},
		},
		VMACs: []string{"vrrp.55"},
	}
	for range 2 { // a second Apply replaces, it does not add
		if err := fw.Apply(st); err != nil {
			t.Fatal(err)
		}
	}
	out, err := h.Run("nft", "list", "table", "inet", vrrpfw.Table)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{
		"hook input priority filter - 1", "hook output priority filter - 1",
		"ip daddr 192.168.1.100 drop", "ip saddr 192.168.1.100 drop",
		`iifname "eth0" ip6 daddr fe80::100 drop`, `oifname "eth0" ip6 saddr fe80::100 drop`,
		"icmpv6 type nd-neighbor-solicit accept",
		`oifname "vrrp.55" meta nfproto ipv4 meta l4proto igmp drop`,
		`oifname "vrrp.55" icmpv6 type mld2-listener-report drop`,
		`oifname "vrrp.55" icmpv6 type nd-router-solicit drop`,
		`oifname "vrrp.55" ip6 saddr fe80::/16 icmpv6 type nd-neighbor-advert drop`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if n := strings.Count(out, "ip daddr 192.168.1.100 drop"); n != 1 {
		t.Errorf("the drop appears %d times:\n%s", n, out)
	}
	if err := fw.Remove(); err != nil {
		t.Fatal(err)
	}
	if out, err := h.Run("nft", "list", "table", "inet", vrrpfw.Table); err == nil {
		t.Errorf("table still there:\n%s", out)
	}
	if err := fw.Remove(); err != nil {
		t.Errorf("removing an absent table: %v", err)
	}
}
