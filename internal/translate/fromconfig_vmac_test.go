package translate

import (
	"testing"
	"testing/fstest"

	"github.com/vigil-ha/vigil/internal/config"
)

func TestVMACNames(t *testing.T) {
	inst := func(name string, vrid int, v6 bool, vmacName string) config.VRRPInstance {
		in := config.VRRPInstance{Name: name, VRID: vrid, UseVMAC: true, VMACName: vmacName, Family: config.Inet}
		if v6 {
			in.Family = config.Inet6
		}
		return in
	}
	for _, tc := range []struct {
		name   string
		prefix string
		ins    []config.VRRPInstance
		want   map[string]string
	}{
		{"default", "", []config.VRRPInstance{inst("A", 51, false, "")}, map[string]string{"A": "vrrp.51"}},
		{"prefix", "vm", []config.VRRPInstance{inst("A", 51, false, "")}, map[string]string{"A": "vm.51"}},
		// keepalived create_vmac_name: a second IPv4 user of the name gets
		// PREFIX1, an IPv6 one PREFIX6 first.
		{"clash", "", []config.VRRPInstance{inst("A", 51, false, ""), inst("B", 51, false, ""), inst("C", 51, true, ""), inst("D", 51, true, "")},
			map[string]string{"A": "vrrp.51", "B": "vrrp1.51", "C": "vrrp6.51", "D": "vrrp2.51"}},
		{"named ones are taken first", "", []config.VRRPInstance{inst("A", 51, false, ""), inst("B", 52, false, "vrrp.51")},
			map[string]string{"A": "vrrp1.51"}},
		{"long prefix cut to 15 bytes", "averyverylongprefix", []config.VRRPInstance{inst("A", 255, false, "")},
			map[string]string{"A": "averyverylo.255"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := vmacNames(config.Global{VMACPrefix: tc.prefix}, tc.ins)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestApplyVMAC(t *testing.T) {
	c, ds := config.Load(fstest.MapFS{"k.conf": {Data: []byte(`vrrp_instance V {
  interface eth0
  virtual_router_id 7
  use_vmac
  vmac_xmit_base
  virtual_ipaddress {
    192.168.1.100/24
    192.168.2.1/24 dev eth1
  }
  virtual_ipaddress_excluded {
    192.168.1.101/24 dev eth0
    fd00::1/64
  }
}
`)}}, "k.conf", config.Options{})
	if ds.Err() != nil {
		t.Fatal(ds)
	}
	spec, ds := FromConfig(c)
	if ds.Err() != nil {
		t.Fatal(ds)
	}
	is := spec.Instances[0]
	if is.VMAC.Name != "vrrp.7" || is.VMAC.Parent != "eth0" || is.VMAC.MAC.String() != "00:00:5e:00:01:07" || !is.VMAC.XmitBase || is.VMAC.IPv6 {
		t.Errorf("VMAC %+v", is.VMAC)
	}
	if is.SockIf() != "eth0" {
		t.Errorf("vmac_xmit_base: socket on %s, want eth0", is.SockIf())
	}
	// keepalived: addresses of the instance's family on its interface move
	// to the VMAC; others stay.
	devs := map[string]string{}
	for _, v := range append(is.VIPs, is.ExcludedVIPs...) {
		devs[v.Addr().String()] = v.Dev
	}
	want := map[string]string{"192.168.1.100": "vrrp.7", "192.168.2.1": "eth1", "fd00::1": "eth0", "192.168.1.101": "vrrp.7"}
	for a, d := range want {
		if devs[a] != d {
			t.Errorf("%s on %s, want %s", a, devs[a], d)
		}
	}
	if is.NoAccept {
		t.Errorf("accept mode off without strict")
	}
}
