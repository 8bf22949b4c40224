package engine

import (
	"log/slog"
	"reflect"
	"slices"
	"sync/atomic"

	"github.com/vigil-ha/vigil/internal/netif"
)

// static_routes and static_rules are in the kernel while the daemon runs,
// whatever its instances' states, as keepalived 2.2.7 keeps them
// (vrrp_daemon.c): leftovers of an earlier run are removed and the entries
// added at start, a reload applies the difference, and they go at stop.

// diffRoutes compares a route list with its next version: the routes that
// went, those that came, and those that changed only in options a replace
// changes in place (netif.Route.SameIdentity), as keepalived's
// clear_diff_routes() replaces them. An unchanged route is in none.
func diffRoutes(old, next []netif.Route) (gone, came, replaced []netif.Route) {
	gone, came = listDiff(old, next)
	for k := 0; k < len(gone); k++ {
		j := slices.IndexFunc(came, gone[k].SameIdentity)
		if j < 0 {
			continue
		}
		replaced = append(replaced, came[j])
		came = slices.Delete(came, j, j+1)
		gone = slices.Delete(gone, k, k+1)
		k--
	}
	return gone, came, replaced
}

// diffRules compares a rule list with its next version (keepalived's
// clear_diff_rules(): a rule is its every field).
func diffRules(old, next []netif.Rule) (gone, came []netif.Rule) {
	return listDiff(old, next)
}

// listDiff returns the elements of old that next lacks and those of next
// that old lacks, equal meaning equal in every field.
func listDiff[T any](old, next []T) (gone, came []T) {
	for _, r := range old {
		if !slices.ContainsFunc(next, func(x T) bool { return reflect.DeepEqual(x, r) }) {
			gone = append(gone, r)
		}
	}
	for _, r := range next {
		if !slices.ContainsFunc(old, func(x T) bool { return reflect.DeepEqual(x, r) }) {
			came = append(came, r)
		}
	}
	return gone, came
}

// startStatic queues the removal of leftover static routes and rules and
// their addition.
func (e *Engine) startStatic() {
	routes, rules := e.spec.StaticRoutes, e.spec.StaticRules
	if len(routes) == 0 && len(rules) == 0 {
		return
	}
	e.applyStatic(rules, routes, nil, routes, rules)
}

// stopStatic queues the removal of the static routes and rules.
func (e *Engine) stopStatic() {
	e.applyStatic(e.spec.StaticRules, e.spec.StaticRoutes, nil, nil, nil)
}

// reloadStatic queues what a reload changes of the static routes and rules.
func (e *Engine) reloadStatic(oldRoutes []netif.Route, oldRules []netif.Rule) {
	goneRoutes, cameRoutes, replaced := diffRoutes(oldRoutes, e.spec.StaticRoutes)
	goneRules, cameRules := diffRules(oldRules, e.spec.StaticRules)
	if len(goneRoutes)+len(cameRoutes)+len(replaced)+len(goneRules)+len(cameRules) == 0 {
		return
	}
	e.applyStatic(goneRules, goneRoutes, replaced, cameRoutes, cameRules)
}

// applyStatic queues, in keepalived's order, the removal of rules then
// routes, the replacements, then the addition of routes then rules. A
// refusal is logged and counted (the status's static_route_errors).
func (e *Engine) applyStatic(delRules []netif.Rule, delRoutes, replace, addRoutes []netif.Route, addRules []netif.Rule) {
	net, log, errs := e.opts.Net, e.log, &e.staticErrors
	e.fx.add(func() {
		for i := len(delRules) - 1; i >= 0; i-- {
			if err := net.DelRule(delRules[i]); err != nil {
				staticFailed(log, errs, "cannot remove static rule", "rule", delRules[i].String(), err)
			}
		}
		for i := len(delRoutes) - 1; i >= 0; i-- {
			if err := net.DelRoute(delRoutes[i]); err != nil {
				staticFailed(log, errs, "cannot remove static route", "route", delRoutes[i].String(), err)
			}
		}
		for _, r := range replace {
			if err := net.ReplaceRoute(r); err != nil {
				staticFailed(log, errs, "cannot replace static route", "route", r.String(), err)
			}
		}
		for _, r := range addRoutes {
			if err := net.AddRoute(r); err != nil {
				staticFailed(log, errs, "cannot add static route", "route", r.String(), err)
			}
		}
		for _, r := range addRules {
			if err := net.AddRule(r); err != nil {
				staticFailed(log, errs, "cannot add static rule", "rule", r.String(), err)
			}
		}
	})
}

// staticFailed logs a static route or rule the kernel refused and counts it
// (the status's static_route_errors), as routeFailed does for an instance's.
func staticFailed(log *slog.Logger, errs *atomic.Uint64, msg, kind, what string, err error) {
	errs.Add(1)
	log.Error(msg, kind, what, "err", err)
}
