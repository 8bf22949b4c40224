package translate

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
)

// vmacNames gives each use_vmac instance without a name its VMAC name as
// keepalived 2.2.7 does (vrrp.c create_vmac_name): PREFIX.VRID (vmac_prefix,
// default "vrrp"), and when another instance already has that name,
// PREFIX1.VRID, PREFIX2.VRID, ... for IPv4, PREFIX6.VRID first for IPv6
// (then 1, 2, 3, 4, 5, 7, ...). Names are at most 15 bytes (IFNAMSIZ-1):
// the prefix is cut to fit.
func vmacNames(g config.Global, ins []config.VRRPInstance) map[string]string {
	out := map[string]string{}
	used := map[string]bool{}
	for _, in := range ins {
		if in.UseVMAC && in.VMACName != "" {
			used[in.VMACName] = true
		}
	}
	prefix := g.VMACPrefix
	if prefix == "" {
		prefix = "vrrp"
	}
	for _, in := range ins {
		if !in.UseVMAC || in.VMACName != "" {
			continue
		}
		v6 := in.Family == config.Inet6
		num := 0
		for {
			name := vmacName(prefix, num, in.VRID)
			if !used[name] {
				used[name] = true
				out[in.Name] = name
				break
			}
			switch {
			case !v6:
				num++
			case num == 0:
				num = 6
			case num == 6:
				num = 1
			default:
				num++
				if num == 6 {
					num++
				}
			}
			if num > 999 {
				break
			}
		}
	}
	return out
}

// VMACNames returns the VMAC interface name of every use_vmac instance of
// c, by instance name (for vigil check).
func VMACNames(c *config.Config) map[string]string {
	out := vmacNames(c.Global, c.Instances)
	for _, in := range c.Instances {
		if in.UseVMAC && in.VMACName != "" {
			out[in.Name] = in.VMACName
		}
	}
	return out
}

func vmacName(prefix string, num, vrid int) string {
	suffix := "." + strconv.Itoa(vrid)
	if num > 0 {
		suffix = strconv.Itoa(num) + suffix
	}
	if len(prefix)+len(suffix) > 15 {
		prefix = prefix[:max(0, 15-len(suffix))]
	}
	return prefix + suffix
}

// applyVMAC fills the VMAC part of an instance's spec: the interface, and
// the VIPs of the instance's family that are on its interface move onto the
// VMAC (keepalived vrrp_complete_instance: addresses without a dev, or with
// the instance's dev, of the instance's family; the others stay where they
// are).
func applyVMAC(is *runspec.InstanceSpec, in config.VRRPInstance, name string) error {
	if !in.UseVMAC {
		// use_ipvlan alone: the parser warned; the instance runs without.
		return nil
	}
	if in.VMACName != "" {
		name = in.VMACName
	}
	if name == "" {
		return fmt.Errorf("use_vmac: no free interface name")
	}
	mac := vmacHW(in.VMACAddr, in.VRID)
	if mac == nil {
		mac = netif.VirtualMAC(uint8(in.VRID), is.IPv6)
	}
	is.VMAC.Name = name
	is.VMAC.Parent = is.Interface
	is.VMAC.MAC = mac
	is.VMAC.IPv6 = is.IPv6
	is.VMAC.XmitBase = in.VMACXmitBase
	for i := range is.VIPs {
		v := &is.VIPs[i]
		if v.Dev == is.Interface && v.Addr().Is6() == is.IPv6 {
			v.Dev = name
		}
	}
	for i := range is.ExcludedVIPs {
		v := &is.ExcludedVIPs[i]
		if v.Dev == is.Interface && v.Addr().Is6() == is.IPv6 {
			v.Dev = name
		}
	}
	return nil
}

// vmacHW parses use_vmac's MAC address; five octets take the VRID as the
// sixth, as keepalived does.
func vmacHW(s string, vrid int) net.HardwareAddr {
	if s == "" {
		return nil
	}
	if strings.Count(s, ":") == 4 {
		s += fmt.Sprintf(":%02x", vrid)
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return nil
	}
	return hw
}
