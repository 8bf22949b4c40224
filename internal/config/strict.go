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
