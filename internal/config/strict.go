package config

import "github.com/vigil-ha/vigil/internal/diag"

// noteAcceptMode says, at the line that turned accept mode off, what the
// daemon will do about it: like keepalived 2.2.7 (vrrp_handle_accept_mode),
// a master that is not the address owner drops traffic to and from its
// virtual addresses while MASTER (vigil: nftables table inet vigil_vrrp).
// Users of keepalived's sample file, which carries vrrp_strict, often meet
// this as "the VIP does not answer".
func (p *parser) noteAcceptMode(vi *VRRPInstance, strictGlobal bool, at func(string) diag.Pos, given func(string) bool) {
	if vi.Accept || vi.Priority == 255 || len(vi.VirtualIPs)+len(vi.ExcludedIPs) == 0 {
		return
	}
	var pos diag.Pos
	why := ""
	switch {
	case given("no_accept"):
		pos, why = at("no_accept"), "no_accept"
	case given("accept"):
		pos, why = at("accept"), "accept is not possible with VRRPv2 in strict mode"
	case given("strict_mode"):
		pos, why = at("strict_mode"), "strict_mode"
	case strictGlobal:
		pos, why = vi.Pos, "vrrp_strict"
	default:
		return
	}
	p.warnf(pos, "vrrp_instance %s: accept mode is off (%s): VIP traffic will be dropped on this node while MASTER, as keepalived does (nftables table inet vigil_vrrp); add `accept` to answer it", vi.Name, why)
}

// noteAddressVMAC reports the per-address use_vmac option: vigil makes
// VMACs only for the instance (use_vmac in the instance), not for single
// addresses on other interfaces or of the other family (keepalived makes one
// per such address).
func (p *parser) noteAddressVMAC(vi *VRRPInstance) {
	for _, list := range [][]Address{vi.VirtualIPs, vi.ExcludedIPs} {
		for _, a := range list {
			if !a.UseVMAC {
				continue
			}
			onInstance := (a.Dev == "" || a.Dev == vi.Interface) && a.Prefix.Addr().Is6() == (vi.Family == Inet6)
			switch {
			case onInstance && vi.UseVMAC:
				p.warnf(a.Pos, "vrrp_instance %s: use_vmac on %s is redundant: the instance's use_vmac already puts it on the VMAC", vi.Name, a.Prefix)
			case onInstance:
				p.warnf(a.Pos, "vrrp_instance %s: use_vmac on %s is not supported by vigil (a VMAC per address); use use_vmac in the instance; the address stays on %s and moves by gratuitous ARP / NA", vi.Name, a.Prefix, vi.Interface)
			default:
				dev := a.Dev
				if dev == "" {
					dev = vi.Interface
				}
				p.warnf(a.Pos, "vrrp_instance %s: use_vmac on %s is not supported by vigil (a VMAC per address); the address stays on %s and moves by gratuitous ARP / NA", vi.Name, a.Prefix, dev)
			}
		}
	}
}
