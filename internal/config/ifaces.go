package config

import (
	"fmt"

	"github.com/vigil-ha/vigil/internal/diag"
)

// InterfaceRef is one place where a configuration names a network
// interface that must exist for keepalived 2.2.7 to load the file.
type InterfaceRef struct {
	Pos  diag.Pos
	Name string
	// Instance is the vrrp_instance (or, for a sync group's
	// track_interface, the vrrp_sync_group) the reference belongs to.
	Instance string
	// Use is what the interface is for: "interface", "track_interface",
	// "dev" of an address or "dev" of a route.
	Use string
	// What names the address or route on Name (Use "dev" only).
	What string
}

// InterfaceRefs lists the interfaces the file names that keepalived 2.2.7
// looks up as it reads them (if_get_by_ifname(IF_CREATE_IF_DYNAMIC) in
// vrrp_parser.c vrrp_int_handler(), vrrp_track.c alloc_track_if(),
// vrrp_ipaddress.c parse_ipaddress() and vrrp_iproute.c), for the
// instances and sync groups vigil runs. The static blocks, which vigil
// ignores, are left out.
func (c *Config) InterfaceRefs() []InterfaceRef {
	var refs []InterfaceRef
	for _, vi := range c.Instances {
		if vi.Interface != "" {
			pos := vi.InterfacePos
			if !pos.IsValid() {
				pos = vi.Pos
			}
			refs = append(refs, InterfaceRef{Pos: pos, Name: vi.Interface, Instance: vi.Name, Use: "interface"})
		}
		for _, t := range vi.TrackInterfaces {
			refs = append(refs, InterfaceRef{Pos: t.Pos, Name: t.Name, Instance: vi.Name, Use: "track_interface"})
		}
		for _, list := range [][]Address{vi.VirtualIPs, vi.ExcludedIPs} {
			for _, a := range list {
				if a.Dev != "" {
					refs = append(refs, InterfaceRef{Pos: a.Pos, Name: a.Dev, Instance: vi.Name, Use: "dev", What: "address " + a.Prefix.String()})
				}
			}
		}
		for _, r := range vi.VirtualRoutes {
			if r.Dev != "" {
				refs = append(refs, InterfaceRef{Pos: r.Pos, Name: r.Dev, Instance: vi.Name, Use: "dev", What: "route " + r.Dst.String()})
			}
		}
	}
	for _, g := range c.SyncGroups {
		for _, t := range g.TrackInterfaces {
			refs = append(refs, InterfaceRef{Pos: t.Pos, Name: t.Name, Instance: g.Name, Use: "track_interface"})
		}
	}
	return refs
}

// MissingInterfaces reports each interface the file names (InterfaceRefs)
// that exists does not know. exists answers for the host and network
// namespace the caller looks in; the daemon may run in another, which the
// message says.
//
// keepalived 2.2.7 reports each ("WARNING - interface X for vrrp_instance
// Y doesn't exist", "(Y) tracked interface X doesn't exist", ...), then
// "Non-existent interface specified in configuration", and its VRRP
// process exits with a configuration error: keepalived does not run the
// file (vrrp_daemon.c start_vrrp()). With global_defs dynamic_interfaces it
// says nothing and waits for the interface, which is what vigil does in
// any case (package engine): an instance on a missing interface is in
// FAULT until it appears, a missing tracked interface counts as down, and
// an address or route on it cannot be added while it is missing. So these
// are warnings, and nothing at all with dynamic_interfaces, as keepalived.
func (c *Config) MissingInterfaces(exists func(name string) bool) diag.Diagnostics {
	var ds diag.Diagnostics
	if c.Global.DynamicInterfaces {
		return nil
	}
	for _, r := range c.InterfaceRefs() {
		if exists(r.Name) {
			continue
		}
		var vigil string
		switch r.Use {
		case "interface":
			vigil = fmt.Sprintf("vrrp_instance %s stays in FAULT until %s appears", r.Instance, r.Name)
		case "track_interface":
			vigil = fmt.Sprintf("%s counts it as down until it appears", r.Instance)
		default:
			vigil = fmt.Sprintf("vrrp_instance %s cannot add its %s while %s is missing", r.Instance, r.What, r.Name)
		}
		ds.Warnf(r.Pos, "%s %s does not exist in this network namespace (where vigil check runs; the daemon's may differ): keepalived 2.2.7 refuses to run this file "+
			"(\"Non-existent interface specified in configuration\") unless global_defs has dynamic_interfaces; vigil runs it as keepalived does with "+
			"dynamic_interfaces: %s", r.Use, r.Name, vigil)
	}
	return ds
}
