package engine

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"golang.org/x/sys/unix"
)

// Start before the network (keepalived's dynamic_interfaces): an instance
// whose interface is missing, or which has no usable address to send from,
// runs in FAULT with the reason in instance.missing, and leaves FAULT on the
// netlink event that clears the condition:
//
//   - the interface appears (RTM_NEWLINK of an unknown name): linkChanged
//     resolves its ifindex and opens the socket;
//   - the link comes up (IFF_UP and IFF_RUNNING): linkChanged, through
//     LinkChanged{Up}, as before;
//   - the source address appears (RTM_NEWADDR), or finishes duplicate
//     address detection (RTM_NEWADDR without IFA_F_TENTATIVE): addrChanged
//     re-reads the addresses and opens the socket.
//
// An interface deleted and created again is a new interface: its socket,
// bound to the old ifindex, is closed when the old one goes (FAULT,
// "interface X removed"), and a new one is opened on the new ifindex when it
// comes back. The VIPs are added again on the next MASTER transition.
//
// The source address follows keepalived's rule (netif.SourceAddr): the
// interface's first primary IPv4 address, or its first link-local IPv6
// address, skipping vigil's VIPs; when that address is removed the instance
// moves to the next one, or to FAULT until one appears. A configured
// mcast_src_ip / unicast_src_ip is waited for the same way when the kernel
// needs it to be local: in unicast mode (the socket is bound to it) and for
// IPv6 (no datagram leaves from an address that is not usable). An IPv4
// multicast instance sends from a configured source whether the host has
// it or not, as keepalived 2.2.7 does (it does not track a configured
// source without track_src_ip).

// sourceFor decides where an instance on the link li sends from, given the
// addresses of the namespace, or why it cannot run yet. It is pure.
func sourceFor(is *runspec.InstanceSpec, li netif.LinkInfo, addrs []netif.Addr) (src netip.Addr, missing string) {
	if cfg := is.VRRP.Source; cfg.IsValid() {
		if !is.VRRP.Unicast && !is.IPv6 {
			return cfg, ""
		}
		a, ok := netif.FindAddr(addrs, cfg)
		switch {
		case !ok:
			return netip.Addr{}, fmt.Sprintf("source address %s is not on this host", cfg)
		case !a.Usable():
			return netip.Addr{}, fmt.Sprintf("source address %s %s", cfg, dadState(a))
		}
		return cfg, ""
	}
	if a, ok := netif.SourceAddr(addrs, li.Index, is.IPv6, netif.AddrProtoKeepalived); ok {
		return a, ""
	}
	if !is.IPv6 {
		return netip.Addr{}, fmt.Sprintf("no IPv4 address on %s", is.Interface)
	}
	for _, a := range addrs {
		// vigil's own VIPs (a link-local VIP) are no candidates: naming
		// one would blame DAD for what is a missing address.
		if a.LinkIndex == li.Index && a.Proto != netif.AddrProtoKeepalived && a.Prefix.Addr().Is6() && a.Prefix.Addr().IsLinkLocalUnicast() {
			return netip.Addr{}, fmt.Sprintf("IPv6 link-local address %s on %s %s", a.Prefix.Addr(), is.Interface, dadState(a))
		}
	}
	return netip.Addr{}, fmt.Sprintf("no IPv6 link-local address on %s", is.Interface)
}

func dadState(a netif.Addr) string {
	if a.Flags&unix.IFA_F_DADFAILED != 0 {
		return "failed duplicate address detection"
	}
	return "is tentative (duplicate address detection running)"
}

// addrMatters reports whether an address event can change sourceFor's
// answer for an instance whose interface has index ifindex. It is pure.
func addrMatters(is *runspec.InstanceSpec, ifindex int, a netif.Addr) bool {
	ip := a.Prefix.Addr()
	if ip.Is6() != is.IPv6 {
		return false
	}
	if cfg := is.VRRP.Source; cfg.IsValid() {
		return (is.VRRP.Unicast || is.IPv6) && ip == cfg
	}
	if a.LinkIndex != ifindex || ifindex == 0 || a.Proto == netif.AddrProtoKeepalived {
		return false
	}
	return !is.IPv6 || ip.IsLinkLocalUnicast()
}

// sourceAddrChanged re-decides the source of the instances an address event
// concerns, and attaches, moves or faults them accordingly.
func (e *Engine) sourceAddrChanged(now time.Time, ev netif.AddrEvent) {
	if e.stopping {
		return
	}
	// A mass takeover brings one event per VIP added: its instances are
	// skipped before the interface lookup (what addrMatters would say).
	marked := ev.Addr.Proto == netif.AddrProtoKeepalived
	var touched []*instance
	for _, in := range e.insts {
		if in.pending {
			continue // attached when it starts
		}
		if marked && !in.spec.VRRP.Source.IsValid() {
			continue // a resolved source is never an address vigil made
		}
		li, ok := e.links[in.spec.Interface]
		if ok && addrMatters(in.spec, li.Index, ev.Addr) {
			touched = append(touched, in)
		}
	}
	e.redecideSources(now, touched)
}

// addrsResynced decides the source of every running instance again, after
// address notifications were lost.
func (e *Engine) addrsResynced(now time.Time) {
	if e.stopping {
		return
	}
	var all []*instance
	for _, in := range e.insts {
		if _, ok := e.links[in.spec.Interface]; ok && !in.pending {
			all = append(all, in)
		}
	}
	e.redecideSources(now, all)
}

// redecideSources reads the addresses once and attaches, moves or faults
// the given instances whose source changed.
func (e *Engine) redecideSources(now time.Time, touched []*instance) {
	if len(touched) == 0 {
		return
	}
	addrs, err := e.opts.Net.Addrs()
	if err != nil {
		e.log.Warn("reading addresses", "err", err)
		return
	}
	for _, in := range touched {
		src, why := sourceFor(in.spec, e.links[in.spec.Interface], addrs)
		if why == in.missing && (why != "" || src == in.src) {
			continue
		}
		if why == "" {
			e.log.Info("source address usable", "instance", in.spec.VRRP.Name, "interface", in.spec.Interface, "source", src)
		}
		e.reattach(now, in, addrs)
	}
}

// reattach closes the instance's socket, opens it again with what the host
// has now, and gives the machine the outcome (new source, FAULT or not).
func (e *Engine) reattach(now time.Time, in *instance, addrs []netif.Addr) {
	if in.conn != nil {
		// The source went away (`ip addr flush`, a lease released): the
		// machine faults while the socket is still there, so that a
		// master's priority-0 advert leaves, from the address just
		// removed, as keepalived 2.2.7 sends it. The backup then takes
		// over after Skew_Time, not Master_Down_Interval. (IPv4 builds
		// its own header; over IPv6 the kernel refuses a source it no
		// longer has, and the send error is counted.)
		if _, why := sourceFor(in.spec, e.links[in.spec.Interface], addrs); why != "" {
			in.missing = why
			e.updateTracking(now, in)
		}
	}
	e.detach(in)
	e.attachWith(in, addrs, e.wg, e.bg)
	if in.src.IsValid() && in.src != in.m.Config().Source {
		e.step(now, in, vrrp.SourceChanged{Addr: in.src})
	}
	e.updateTracking(now, in)
}

// interfaceAppeared applies to an interface created after the start what
// the start applied to the interfaces present: promote_secondaries.
func (e *Engine) interfaceAppeared(name string) {
	for _, in := range e.insts {
		if in.spec.Interface == name && in.spec.PromoteSecondaries {
			if err := e.opts.Net.Sysctl("net/ipv4/conf/"+name+"/promote_secondaries", "1"); err != nil {
				e.log.Warn("promote_secondaries", "interface", name, "err", err)
			}
			return
		}
	}
}
