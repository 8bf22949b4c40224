package engine

import (
	"fmt"
	"slices"
	"sort"

	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/vrrpfw"
)

// VMACNet is the part of Net that VMAC interfaces (use_vmac) and the VRRP
// firewall (accept mode off, VMAC IGMP/MLD filtering) need. OSNet has it; a
// Net without it runs no instance with use_vmac (FAULT, with the reason)
// and cannot drop traffic for no_accept (logged).
type VMACNet interface {
	CreateVMAC(v netif.VMAC) error
	DeleteVMAC(name string) error
	// RemoveStaleVMACs removes the VMACs a killed earlier run left.
	RemoveStaleVMACs() ([]string, error)
	// ApplyFirewall makes vigil's VRRP nftables table hold exactly s.
	ApplyFirewall(s vrrpfw.State) error
}

func (e *Engine) vmacNet() VMACNet {
	vn, _ := e.opts.Net.(VMACNet)
	return vn
}

// removeStaleVMACs removes, at start, the VMACs and firewall table a killed
// earlier run left (only interfaces vigil marked as its own).
func (e *Engine) removeStaleVMACs() {
	vn := e.vmacNet()
	if vn == nil {
		return
	}
	names, err := vn.RemoveStaleVMACs()
	if err != nil {
		e.log.Warn("removing stale VMAC interfaces", "err", err)
	}
	for _, n := range names {
		e.log.Info("removed stale VMAC interface left by an earlier run", "interface", n)
	}
	if err := vn.ApplyFirewall(vrrpfw.State{}); err != nil {
		e.log.Debug("no VRRP firewall table to remove", "err", err)
	}
	e.fw = vrrpfw.State{}
}

// ensureVMAC makes the instance's VMAC exist (creating it, or again after
// its parent was deleted and re-created). It reports false, with
// in.missing set, when the instance cannot run.
func (e *Engine) ensureVMAC(in *instance) bool {
	v := in.spec.VMAC
	if v.Name == "" {
		return true
	}
	if _, ok := e.links[v.Name]; ok && e.vmacs[v.Name] {
		return true
	}
	vn := e.vmacNet()
	if vn == nil {
		in.missing = "use_vmac is not available on this network"
		return false
	}
	if _, ok := e.links[v.Parent]; !ok {
		in.missing = fmt.Sprintf("interface %s not found", v.Parent)
		return false
	}
	if err := vn.CreateVMAC(v); err != nil {
		// Parameters that could not be set are worth a warning; an interface
		// that is not there is a fault (checked below).
		e.log.Warn("VMAC interface", "instance", in.spec.VRRP.Name, "interface", v.Name, "parent", v.Parent, "err", err)
	}
	e.resolveLink(v.Name)
	if _, ok := e.links[v.Name]; !ok {
		in.missing = fmt.Sprintf("VMAC interface %s could not be created on %s", v.Name, v.Parent)
		e.log.Error("instance cannot run: no VMAC interface, FAULT", "instance", in.spec.VRRP.Name, "interface", v.Name)
		return false
	}
	if e.vmacs == nil {
		e.vmacs = map[string]bool{}
	}
	e.vmacs[v.Name] = true
	e.log.Info("VMAC interface ready", "instance", in.spec.VRRP.Name, "interface", v.Name, "parent", v.Parent, "mac", v.MAC.String(), "xmit_base", v.XmitBase)
	e.syncFirewall()
	return true
}

// dropVMAC removes a retired instance's VMAC when no other instance uses
// it; queued after the instance's address removals.
func (e *Engine) dropVMAC(in *instance) {
	name := in.spec.VMAC.Name
	if name == "" || !e.vmacs[name] {
		return
	}
	for _, o := range e.all() {
		if o != in && !o.gone && o.spec.VMAC.Name == name {
			return
		}
	}
	delete(e.vmacs, name)
	e.syncFirewall()
	vn, log := e.vmacNet(), e.log
	e.fx.add(func() {
		if err := vn.DeleteVMAC(name); err != nil {
			log.Warn("removing VMAC interface", "interface", name, "err", err)
		}
	})
}

// teardownVMACs removes every VMAC vigil made and its firewall table; Run
// calls it last, after the addresses are gone.
func (e *Engine) teardownVMACs() {
	vn := e.vmacNet()
	if vn == nil {
		return
	}
	names := make([]string, 0, len(e.vmacs))
	for n := range e.vmacs {
		names = append(names, n)
	}
	sort.Strings(names)
	if !e.fw.Empty() {
		if err := vn.ApplyFirewall(vrrpfw.State{}); err != nil {
			e.log.Warn("removing the VRRP firewall table", "err", err)
		}
		e.fw = vrrpfw.State{}
	}
	for _, n := range names {
		if err := vn.DeleteVMAC(n); err != nil {
			e.log.Warn("removing VMAC interface", "interface", n, "err", err)
		}
	}
	e.vmacs = nil
}

// wantFirewall is the firewall the instances need now: drops for the
// addresses of every held instance without accept mode (keepalived 2.2.7
// vrrp_handle_accept_mode: set before the VIPs are added, removed after
// they are deleted) and IGMP/MLD filtering on every VMAC.
func (e *Engine) wantFirewall() vrrpfw.State {
	var s vrrpfw.State
	for _, in := range e.all() {
		if in.held && in.spec.NoAccept {
			for _, v := range in.allVIPs() {
				dev := v.Dev
				if dev == "" {
					dev = in.spec.Interface
				}
				s.Drop = append(s.Drop, vrrpfw.Drop{Addr: v.Addr(), Dev: dev})
			}
		}
	}
	for n := range e.vmacs {
		s.VMACs = append(s.VMACs, n)
	}
	sort.Strings(s.VMACs)
	slices.SortFunc(s.Drop, func(a, b vrrpfw.Drop) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		switch {
		case a.Dev < b.Dev:
			return -1
		case a.Dev > b.Dev:
			return 1
		}
		return 0
	})
	s.Drop = slices.Compact(s.Drop)
	return s
}

// syncFirewall queues the firewall the instances need, when it changed, on
// the effects worker (so it lands in order with the address changes).
func (e *Engine) syncFirewall() {
	want := e.wantFirewall()
	if want.Equal(e.fw) {
		return
	}
	e.fw = want
	vn, log := e.vmacNet(), e.log
	if vn == nil {
		if len(want.Drop) > 0 {
			log.Error("accept mode off, but this network has no firewall: VIP traffic is not dropped")
		}
		return
	}
	e.fx.install(func() {
		if err := vn.ApplyFirewall(want); err != nil {
			log.Error("VRRP firewall (accept mode / VMAC)", "err", err)
		}
	})
}

// vmacStatus fills the VMAC and accept-mode part of an instance's status.
func (e *Engine) vmacStatus(in *instance, si *status.Instance) {
	if v := in.spec.VMAC; v.Name != "" {
		si.VMAC, si.VMACAddr, si.XmitBase = v.Name, v.MAC.String(), v.XmitBase
	}
	si.NoAccept = in.spec.NoAccept
	si.Strict = in.spec.Strict
	si.DroppingVIPs = in.held && in.spec.NoAccept && !e.fw.Empty()
}
