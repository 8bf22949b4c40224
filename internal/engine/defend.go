package engine

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"golang.org/x/sys/unix"
)

// The address watcher: what the kernel holds is the truth. The engine keeps
// the addresses of the namespace as netlink reports them (Net.WatchAddrs),
// so that
//
//   - a VIP that something else removes while the instance is master (`ip
//     addr del`, `ip addr flush`, a network manager) is put back at once
//     and announced again, with its instance's virtual routes and rules
//     (which the kernel may have dropped with the address), logged and
//     counted (keepalived 2.2.7 does the same from its netlink reflector);
//   - status reports vips_held from the kernel's addresses, not from what
//     the engine last asked for.
//
// This file only handles addresses; link events (and FAULT recovery) live
// in engine.go's linkChanged.

// addrEvent and routeEvent come from the address and route watches;
// addrResync says that address notifications were lost (the restarted
// watch reports every address again, and every source is decided again).
type (
	addrEvent     struct{ ev netif.AddrEvent }
	addrResync    struct{}
	routeEvent    struct{ ev netif.RouteEvent }
	addrWatchDone struct {
		what string
		err  error
	}
)

// addrKey is an address on an interface (by index).
type addrKey struct {
	index int
	addr  netip.Addr
}

// kernelAddrs is the namespace's addresses as the address watch reports
// them. seen is false until the first report: status then falls back to
// what the engine did.
type kernelAddrs struct {
	seen  bool
	addrs map[addrKey]bool
	// routes are the namespace's routes (routesSeen: reported at all).
	routes     map[netif.RouteKey]bool
	routesSeen bool
	// ours counts deletions the engine itself queued for an address it
	// keeps holding (a VIP whose label or prefix a reload changed): their
	// events are not someone else's removal.
	ours map[netip.Addr]int
	// dadFailed are the addresses the kernel reports present but failed
	// duplicate address detection (IFA_F_DADFAILED): another host has them.
	dadFailed map[addrKey]bool
}

// expectDelete notes that the engine deletes addr itself.
func (e *Engine) expectDelete(addr netip.Addr) {
	if e.kernel.ours == nil {
		e.kernel.ours = map[netip.Addr]int{}
	}
	e.kernel.ours[addr]++
}

// watchAddrs runs the address and route watches until bg is done; each
// restarts when notifications were lost (a restart reports everything
// afresh).
func (e *Engine) watchAddrs(wg *sync.WaitGroup, bg context.Context) {
	run := func(what string, watch func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			for bg.Err() == nil {
				err = watch()
				if !errors.Is(err, netif.ErrOverrun) {
					break
				}
				e.log.Warn(what+" notifications lost; re-reading", "err", err)
				if what == "address" {
					select {
					case e.events <- addrResync{}:
					case <-bg.Done():
					}
				}
			}
			select {
			case e.events <- addrWatchDone{what, err}:
			case <-bg.Done():
			}
		}()
	}
	run("address", func() error {
		return e.opts.Net.WatchAddrs(bg, func(ev netif.AddrEvent) {
			select {
			case e.events <- addrEvent{ev}:
			case <-bg.Done():
			}
		})
	})
	run("route", func() error {
		return e.opts.Net.WatchRoutes(bg, func(ev netif.RouteEvent) {
			select {
			case e.events <- routeEvent{ev}:
			case <-bg.Done():
			}
		})
	})
}

// routeChanged records a route event and puts back a static route, or a
// virtual route of a master, that something else removed.
func (e *Engine) routeChanged(now time.Time, ev netif.RouteEvent) {
	if e.kernel.routes == nil {
		e.kernel.routes = map[netif.RouteKey]bool{}
	}
	e.kernel.routesSeen = true
	if kernelAddressRoute(ev) {
		// The kernel's local and broadcast routes, one or more per address
		// (a thousand VIPs, a thousand entries): never a virtual route's
		// key, neither looked up nor defended.
		return
	}
	if !ev.Deleted {
		e.kernel.routes[ev.Key] = true
		return
	}
	delete(e.kernel.routes, ev.Key)
	if e.stopping {
		return
	}
	for _, r := range e.spec.StaticRoutes {
		if r.Key() != ev.Key {
			continue
		}
		// keepalived 2.2.7 reinstate_static_route(): "Restoring deleted
		// static route".
		net, log, errs := e.opts.Net, e.log, &e.staticErrors
		e.fx.install(func() {
			log.Warn("static route removed by something else; adding it back", "route", r.String())
			if err := net.AddRoute(r); err != nil {
				staticFailed(log, errs, "cannot add back static route", "route", r.String(), err)
			}
		})
	}
	for _, in := range e.all() {
		if !in.held || !in.releaseAt.IsZero() {
			continue
		}
		for _, r := range in.spec.Routes {
			if r.Key() != ev.Key {
				continue
			}
			in.restored++
			e.mark(in)
			name, net, log, errs := in.spec.VRRP.Name, e.opts.Net, e.log, &in.netErrors
			e.fx.install(func() {
				log.Warn("virtual route removed by something else while master; adding it back", "instance", name, "route", r.String())
				if err := net.AddRoute(r); err != nil {
					routeFailed(log, errs, "cannot add back virtual route", name, "route", r.String(), err)
				}
			})
		}
	}
}

// addrChanged records an address event and defends the VIPs it removed.
func (e *Engine) addrChanged(now time.Time, ev netif.AddrEvent) {
	k := addrKey{ev.Addr.LinkIndex, ev.Addr.Prefix.Addr()}
	if e.kernel.addrs == nil {
		e.kernel.addrs = map[addrKey]bool{}
	}
	e.kernel.seen = true
	delete(e.kernel.dadFailed, k)
	if !ev.Deleted && ev.Addr.Flags&unix.IFA_F_DADFAILED != 0 {
		// On the interface but unusable: another host on the link has it
		// (an IPv6 VIP added with -nodad goes through DAD). It is not held.
		delete(e.kernel.addrs, k)
		if e.kernel.dadFailed == nil {
			e.kernel.dadFailed = map[addrKey]bool{}
		}
		e.kernel.dadFailed[k] = true
		e.dadFailed(now, k)
		return
	}
	if !ev.Deleted {
		e.kernel.addrs[k] = true
		return
	}
	delete(e.kernel.addrs, k)
	if n := e.kernel.ours[k.addr]; n > 0 {
		if n == 1 {
			delete(e.kernel.ours, k.addr)
		} else {
			e.kernel.ours[k.addr] = n - 1
		}
		return
	}
	if e.stopping {
		return
	}
	for _, in := range e.all() {
		if !in.held || !in.releaseAt.IsZero() {
			continue
		}
		for _, v := range in.devVIPs() {
			li, ok := e.links[v.Dev]
			if !ok || li.Index != k.index || v.Addr() != k.addr {
				continue
			}
			if !e.linkUsableNow(v.Dev) {
				// The kernel flushes IPv6 addresses when a link goes
				// down, and the link watch may tell it after the address
				// watch: the link event that follows faults the instance.
				e.log.Debug("virtual address went with its link; not adding it back", "instance", in.spec.VRRP.Name, "addr", v.String())
				continue
			}
			e.restoreVIP(now, in, v)
		}
	}
}

// linkUsableNow asks the kernel whether dev is up and running: e.links may
// not have seen its latest event yet.
func (e *Engine) linkUsableNow(dev string) bool {
	li, err := e.opts.Net.Link(dev)
	return err == nil && li.Usable()
}

// dadFailed reports a VIP of a master that failed duplicate address
// detection: the kernel accepts no traffic for it while another host
// answers for it. keepalived 2.2.7 does not notice.
func (e *Engine) dadFailed(now time.Time, k addrKey) {
	for _, in := range e.all() {
		if !in.held {
			continue
		}
		for _, v := range in.devVIPs() {
			li, ok := e.links[v.Dev]
			if !ok || li.Index != k.index || v.Addr() != k.addr {
				continue
			}
			e.mark(in)
			if n, ok := in.limiter.allow(&e.dropLog, e.log, now, "dad_failed"); ok {
				e.log.Error("virtual address failed duplicate address detection: another host on the link has it, and the kernel accepts no traffic for it here",
					"instance", in.spec.VRRP.Name, "addr", v.String(), "suppressed", n)
			}
		}
	}
}

// restoreVIP puts back a VIP of a master that something else removed,
// with the instance's routes and rules, and announces it.
func (e *Engine) restoreVIP(now time.Time, in *instance, v netif.VIP) {
	in.restored++
	e.mark(in)
	name, net, log, errs := in.spec.VRRP.Name, e.opts.Net, e.log, &in.netErrors
	routes, rules := in.spec.Routes, in.spec.Rules
	e.fx.install(func() {
		log.Warn("virtual address removed by something else while master; adding it back", "instance", name, "addr", v.String())
		if err := net.AddVIP(v); err != nil {
			log.Error("cannot add back virtual address", "instance", name, "addr", v.String(), "err", err)
		}
		for _, r := range routes {
			if err := net.AddRoute(r); err != nil {
				routeFailed(log, errs, "cannot add back virtual route", name, "route", r.String(), err)
			}
		}
		for _, r := range rules {
			if err := net.AddRule(r); err != nil {
				routeFailed(log, errs, "cannot add back virtual rule", name, "rule", r.String(), err)
			}
		}
	})
	e.vipsChanged()
	e.announce(now, garp.NewSchedule(in.spec.GARP, []garp.Target{{Addr: v.Addr(), Dev: v.Dev}}, now).Due(now))
}

// kernelHolds reports whether every address of the instance is on its
// interface as the kernel reports them; before the first report, whether
// the engine added them. Virtual routes are not addresses: a route the
// kernel refused shows in missingRoutes, not here.
func (e *Engine) kernelHolds(in *instance) bool {
	if !in.held {
		return false
	}
	if !e.kernel.seen {
		return true
	}
	for _, v := range in.devVIPs() {
		li, ok := e.links[v.Dev]
		if !ok || !e.kernel.addrs[addrKey{li.Index, v.Addr()}] {
			return false
		}
	}
	return true
}

// missingRoutes lists the virtual routes of an instance holding its
// addresses that the kernel's tables lack (refused, or removed and not put
// back); nil before the route watch's first report.
func (e *Engine) missingRoutes(in *instance) []string {
	if !in.held || !e.kernel.routesSeen {
		return nil
	}
	var out []string
	for _, r := range in.spec.Routes {
		if !e.kernel.routes[r.Key()] {
			out = append(out, r.String())
		}
	}
	return out
}

// routeFailed logs a virtual route or rule the kernel refused (an option
// this kernel lacks, a gateway it cannot reach) and counts it on the
// instance (status route_errors, vigil_vrrp_route_errors_total); the
// instance runs on, as keepalived's does.
func routeFailed(log *slog.Logger, errs *atomic.Uint64, msg, name, kind, what string, err error) {
	errs.Add(1)
	log.Error(msg, "instance", name, kind, what, "err", err)
}

// kernelAddressRoute reports whether ev is one of the routes the kernel
// adds for an interface address (protocol kernel; local, broadcast,
// multicast or anycast), which vigil never adds.
func kernelAddressRoute(ev netif.RouteEvent) bool {
	if ev.Proto != unix.RTPROT_KERNEL {
		return false
	}
	switch ev.Key.Type {
	case "local", "broadcast", "multicast", "anycast", netif.RouteTypeOther:
		return true
	}
	return false
}
