package engine

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/owner"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// Apply replaces the running Spec with spec, changing only what differs,
// as keepalived's reload does:
//
//   - an instance whose identity is unchanged (interface, VRID, address
//     family, VRRP version, and its sync group's membership) keeps its
//     state machine, its timers and its socket whatever else changed. The
//     changes apply in place (update): VIPs, excluded VIPs, virtual routes
//     and rules added or removed (a master adds the new ones and announces
//     them, removes the others), priority, preemption, advert_int,
//     authentication, unicast peers, GARP settings, trackers and notify
//     scripts, without a transition; a master advertises a changed advert
//     at once. An instance whose spec is equal (specs hold values, no
//     source positions) is not touched at all;
//   - an instance renamed (same interface, VRID, family, version and
//     unicast source, outside sync groups) keeps its state under its new
//     name, as keepalived finds an instance by VRID and interface
//     (Renames);
//   - a removed instance stops as on SIGTERM (priority 0, handed over make
//     before break, VIPs released) and leaves;
//   - an instance whose identity changed stops the same way and its new
//     configuration starts once the old one has left;
//   - a new instance starts.
//
// It returns one line per change. Apply may only be called while Run runs.
func (e *Engine) Apply(ctx context.Context, spec runspec.Spec) ([]string, error) {
	var changes []string
	var err error
	derr := e.do(ctx, func() { changes, err = e.apply(time.Now(), spec) })
	if derr != nil {
		return nil, derr
	}
	return changes, err
}

// Plan is what a reload would do, by instance name: instances to restart
// (identity changed, or in a sync group with one that restarts or is new),
// to update in place (sync-group membership included), to remove, to add;
// the rest is unchanged. Regroup names the sync groups formed in place
// from running instances. It is pure: translate.FromConfig's output in, a decision
// out.
type Plan struct {
	Restart, Update, Remove, Add []string
	Regroup                      []string
	Unchanged                    int
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return len(p.Restart)+len(p.Update)+len(p.Remove)+len(p.Add) == 0
}

// sameIdentity reports whether two specs are the same virtual router on the
// same interface: only a change of this restarts an instance. The VMAC is
// part of it: its interface carries the socket and the VIPs, so adding,
// removing or changing use_vmac makes the instance again.
func sameIdentity(a, b runspec.InstanceSpec) bool {
	return a.Interface == b.Interface && a.IPv6 == b.IPv6 && a.VRRP.VRID == b.VRRP.VRID && a.VRRP.Version == b.VRRP.Version &&
		a.VMAC.Name == b.VMAC.Name && a.VMAC.Parent == b.VMAC.Parent && a.VMAC.MAC.String() == b.VMAC.MAC.String() &&
		a.VMAC.IPv6 == b.VMAC.IPv6 && a.VMAC.XmitBase == b.VMAC.XmitBase
}

// groupKeys gives each instance its sync-group membership: the group's
// name and members ("" outside any group).
func groupKeys(s runspec.Spec) map[string]string {
	keys := map[string]string{}
	for _, g := range s.SyncGroups {
		k := g.Name + ":" + strings.Join(g.Members, ",")
		for _, m := range g.Members {
			keys[m] = k
		}
	}
	return keys
}

// PlanReload compares two specs.
func PlanReload(old, spec runspec.Spec) Plan {
	var p Plan
	oldBy := map[string]runspec.InstanceSpec{}
	for _, is := range old.Instances {
		oldBy[is.VRRP.Name] = is
	}
	newBy := map[string]bool{}
	ok, nk := groupKeys(old), groupKeys(spec)
	restart := map[string]bool{}
	for _, is := range spec.Instances {
		name := is.VRRP.Name
		newBy[name] = true
		o, had := oldBy[name]
		switch {
		case !had:
			p.Add = append(p.Add, name)
		case !sameIdentity(o, is):
			restart[name] = true
		case !o.Equal(is) || ok[name] != nk[name]:
			p.Update = append(p.Update, name)
		default:
			p.Unchanged++
		}
	}
	// A group with a new or restarting member restarts as a whole (its
	// members start together); a group of running members whose
	// membership changed is formed in place.
	for _, g := range spec.SyncGroups {
		any := false
		for _, m := range g.Members {
			_, had := oldBy[m]
			any = any || restart[m] || !had
		}
		if !any && ok[g.Members[0]] != nk[g.Members[0]] {
			p.Regroup = append(p.Regroup, g.Name)
		}
		if any {
			for _, m := range g.Members {
				if _, had := oldBy[m]; had && !restart[m] {
					restart[m] = true
					if i := slices.Index(p.Update, m); i >= 0 {
						p.Update = slices.Delete(p.Update, i, i+1)
					} else {
						p.Unchanged--
					}
				}
			}
		}
	}
	for name := range restart {
		p.Restart = append(p.Restart, name)
	}
	for _, is := range old.Instances {
		if !newBy[is.VRRP.Name] {
			p.Remove = append(p.Remove, is.VRRP.Name)
		}
	}
	sort.Strings(p.Restart)
	sort.Strings(p.Update)
	return p
}

// Renames pairs the instances a reload removes with those it adds that are
// the same virtual router (sameIdentity, and the same unicast source),
// outside sync groups: old name -> new name. keepalived 2.2.7 finds an
// instance's old state by VRID, family and interface, not by name
// (vrrp_exist), so renaming an instance changes nothing on the wire; by
// name, the old one would hand over and the new one start as Backup. It
// is pure.
func Renames(old, spec runspec.Spec) map[string]string {
	inOld, inNew := map[string]bool{}, map[string]bool{}
	for _, is := range old.Instances {
		inOld[is.VRRP.Name] = true
	}
	for _, is := range spec.Instances {
		inNew[is.VRRP.Name] = true
	}
	ok, nk := groupKeys(old), groupKeys(spec)
	var renames map[string]string
	taken := map[string]bool{}
	for _, o := range old.Instances {
		if inNew[o.VRRP.Name] || ok[o.VRRP.Name] != "" {
			continue
		}
		for _, n := range spec.Instances {
			if inOld[n.VRRP.Name] || nk[n.VRRP.Name] != "" || taken[n.VRRP.Name] ||
				!sameIdentity(o, n) || o.VRRP.Unicast != n.VRRP.Unicast || o.VRRP.Source != n.VRRP.Source {
				continue
			}
			if renames == nil {
				renames = map[string]string{}
			}
			renames[o.VRRP.Name], taken[n.VRRP.Name] = n.VRRP.Name, true
			break
		}
	}
	return renames
}

// rename gives running instances their new names (Renames) and returns
// what undoes it, for a reload that fails before it changes anything.
func (e *Engine) rename(renames map[string]string) (undo func()) {
	if len(renames) == 0 {
		return func() {}
	}
	oldSpec, oldSpecs := e.spec, map[*instance]*runspec.InstanceSpec{}
	named := e.spec
	named.Instances = slices.Clone(e.spec.Instances)
	for i := range named.Instances {
		if to, ok := renames[named.Instances[i].VRRP.Name]; ok {
			named.Instances[i].VRRP.Name = to
		}
	}
	e.spec = named
	for _, in := range e.insts {
		to, ok := renames[in.spec.VRRP.Name]
		if !ok {
			continue
		}
		oldSpecs[in] = in.spec
		for i := range named.Instances {
			if named.Instances[i].VRRP.Name == to {
				in.spec = &named.Instances[i]
			}
		}
	}
	e.rebuildByName()
	return func() {
		e.spec = oldSpec
		for in, sp := range oldSpecs {
			in.spec = sp
		}
		e.rebuildByName()
	}
}

func (e *Engine) rebuildByName() {
	e.byName = map[string]*instance{}
	for _, in := range e.insts {
		e.byName[in.spec.VRRP.Name] = in
	}
}

func (e *Engine) apply(now time.Time, spec runspec.Spec) (changes []string, err error) {
	if e.stopping {
		return nil, fmt.Errorf("engine: stopping")
	}
	renames := Renames(e.spec, spec)
	undo := e.rename(renames)
	defer func() {
		if err != nil {
			undo()
		}
	}()
	plan := PlanReload(e.spec, spec)
	// A renamed instance is updated in place (its state machine learns
	// its name), whatever else changed.
	for from, to := range renames {
		if !slices.Contains(plan.Update, to) && !slices.Contains(plan.Restart, to) {
			plan.Update = append(plan.Update, to)
			plan.Unchanged--
		}
		changes = append(changes, "* vrrp_instance "+to+" (renamed from "+from+"; state kept, as keepalived finds it by VRID and interface)")
	}
	sort.Strings(plan.Update)
	newBy := map[string]runspec.InstanceSpec{}
	for _, is := range spec.Instances {
		newBy[is.VRRP.Name] = is
	}
	keep := map[string]bool{}
	for _, is := range spec.Instances {
		keep[is.VRRP.Name] = true
	}
	for _, n := range plan.Add {
		delete(keep, n)
	}
	for _, n := range plan.Restart {
		delete(keep, n)
	}
	// Check the in-place updates and claim the virtual routers that are new
	// to this daemon before changing anything.
	for _, name := range plan.Update {
		if err := vrrp.CheckConfig(placeholderSource(newBy[name])); err != nil {
			return nil, fmt.Errorf("engine: instance %s: %w", name, err)
		}
	}
	if o := e.opts.Owner; o != nil {
		if err := o.Claim(OwnerKeys(spec)); err != nil {
			return nil, err // Claim takes all the new keys or none
		}
	}

	// Retire what goes or restarts.
	var leaving []*instance
	for _, in := range e.insts {
		name := in.spec.VRRP.Name
		if keep[name] {
			continue
		}
		leaving = append(leaving, in)
		if _, ok := newBy[name]; ok {
			changes = append(changes, "~ vrrp_instance "+name+" (restarts: interface, VRID, family, version, use_vmac or sync group changed)")
		} else {
			changes = append(changes, "- vrrp_instance "+name)
		}
	}
	// Build what comes or restarts, in the new order.
	next := &Engine{opts: e.opts, spec: runspec.Spec{RouterID: spec.RouterID, GARPInterval: spec.GARPInterval, GNAInterval: spec.GNAInterval}, byName: map[string]*instance{}}
	for _, is := range spec.Instances {
		if keep[is.VRRP.Name] {
			continue
		}
		next.spec.Instances = append(next.spec.Instances, is)
		if slices.Contains(plan.Add, is.VRRP.Name) {
			changes = append(changes, "+ vrrp_instance "+is.VRRP.Name)
		}
	}
	for _, g := range spec.SyncGroups {
		if !keep[g.Members[0]] {
			next.spec.SyncGroups = append(next.spec.SyncGroups, g)
		}
	}
	if err := next.build(); err != nil {
		e.releaseUnused()
		return nil, err
	}

	// Keep the instances that stay (and their groups), retire the others.
	var kept []*instance
	for _, in := range e.insts {
		if keep[in.spec.VRRP.Name] {
			kept = append(kept, in)
		}
	}
	// Groups whose membership is unchanged stay; the members of the others
	// leave them, and the groups of running members are formed in place.
	oldKeys, newKeys := groupKeys(e.spec), groupKeys(spec)
	var keptGroups []*group
	for _, g := range e.groups {
		if len(g.ins) == 0 {
			continue
		}
		first := g.ins[0].spec.VRRP.Name
		if keep[first] && oldKeys[first] == newKeys[first] {
			for _, gs := range spec.SyncGroups {
				if gs.Name == g.spec.Name {
					g.spec = gs // notify scripts, smtp_alert
				}
			}
			keptGroups = append(keptGroups, g)
			continue
		}
		// A group some of whose members stay is dissolved: the others stop
		// on their own. A group that leaves whole stops as a group.
		split := false
		for _, in := range g.ins {
			split = split || keep[in.spec.VRRP.Name]
		}
		if !split {
			continue
		}
		for _, in := range g.ins {
			in.m.LeaveGroup()
			in.group, in.member = nil, 0
		}
	}
	for _, gs := range spec.SyncGroups {
		if !slices.Contains(plan.Regroup, gs.Name) {
			continue
		}
		g := &group{spec: gs}
		var ms []*vrrp.Instance
		for _, m := range gs.Members {
			in := e.byName[m]
			in.group, in.member = g, len(ms)
			g.ins = append(g.ins, in)
			ms = append(ms, in.m)
		}
		sg, err := vrrp.Regroup(gs.Name, ms)
		if err != nil {
			return nil, err // not reached: every member exists
		}
		g.g = sg
		keptGroups = append(keptGroups, g)
		changes = append(changes, "* vrrp_sync_group "+gs.Name+" (formed in place from running instances)")
	}
	e.insts = append(kept, next.insts...)
	e.groups = append(keptGroups, next.groups...)
	e.rebuildByName()
	oldStaticRoutes, oldStaticRules := e.spec.StaticRoutes, e.spec.StaticRules
	e.spec = spec
	// The instances read their specs from e.spec from now on: the kept
	// and the new ones' are equal to what they had; update below moves
	// the updated ones to theirs.
	specs := make(map[string]*runspec.InstanceSpec, len(e.spec.Instances))
	for i := range e.spec.Instances {
		specs[e.spec.Instances[i].VRRP.Name] = &e.spec.Instances[i]
	}
	updated := make(map[string]bool, len(plan.Update))
	for _, name := range plan.Update {
		updated[name] = true
	}
	for _, in := range e.insts {
		if !updated[in.spec.VRRP.Name] {
			in.spec = specs[in.spec.VRRP.Name]
		}
	}
	e.reloadStatic(oldStaticRoutes, oldStaticRules)
	for _, in := range leaving {
		_, stays := newBy[in.spec.VRRP.Name]
		e.retire(now, in, !stays)
	}
	e.syncTrackers()
	for _, name := range plan.Update {
		in := e.byName[name]
		what := e.update(now, in, specs[name])
		if oldKeys[name] != newKeys[name] {
			what = append(what, "sync group")
		}
		if len(what) == 0 {
			continue // renamed only: its line says so
		}
		changes = append(changes, "* vrrp_instance "+name+" (updated in place: "+strings.Join(what, ", ")+")")
	}
	for _, in := range kept {
		e.resolveLinks(in)
		e.updateTracking(now, in)
	}
	e.setNotifyScripts()
	for _, in := range next.insts {
		e.resolveLinks(in)
	}
	// New instances start now, unless an old instance of the same VRID on
	// the same socket is still handing over: they wait for it (startWaiting).
	for _, in := range next.insts {
		e.setPending(in, true)
		e.mark(in)
	}
	e.startWaiting(now)
	e.releaseUnused()
	sort.Strings(changes)
	if n := plan.Unchanged; n > 0 {
		changes = append(changes, fmt.Sprintf("= %d vrrp_instance(s) unchanged", n))
	}
	return changes, nil
}

// placeholderSource gives a spec without a fixed source one of its family,
// for CheckConfig.
func placeholderSource(is runspec.InstanceSpec) vrrp.Config {
	c := is.VRRP
	if !c.Source.IsValid() {
		c.Source = unspecified(is.IPv6)
	}
	return c
}

// update applies a changed spec of the same identity to a running instance
// and returns what changed, for the log.
func (e *Engine) update(now time.Time, in *instance, ns *runspec.InstanceSpec) []string {
	old := in.spec
	var what []string
	note := func(changed bool, s string) {
		if changed {
			what = append(what, s)
		}
	}
	note(!slices.Equal(old.VRRP.VIPs, ns.VRRP.VIPs) || !reflect.DeepEqual(old.VIPs, ns.VIPs), "virtual_ipaddress")
	note(!reflect.DeepEqual(old.ExcludedVIPs, ns.ExcludedVIPs), "virtual_ipaddress_excluded")
	note(!reflect.DeepEqual(old.Routes, ns.Routes), "virtual_routes")
	note(!reflect.DeepEqual(old.Rules, ns.Rules), "virtual_rules")
	note(old.VRRP.Priority != ns.VRRP.Priority, "priority")
	note(!reflect.DeepEqual(old.Trackers, ns.Trackers), "trackers")
	note(!reflect.DeepEqual(old.Notify, ns.Notify), "notify scripts")
	note(old.GARP != ns.GARP, "garp")
	socket := old.VRRP.Unicast != ns.VRRP.Unicast || old.VRRP.Source != ns.VRRP.Source ||
		old.Group != ns.Group || old.UnicastTTL != ns.UnicastTTL ||
		specAH(old) != specAH(ns) // AH: IP protocol 51
	note(socket, "socket")
	if len(what) == 0 && !old.Equal(*ns) {
		what = append(what, "settings")
	}

	oldVIPs, oldRoutes, oldRules := in.devVIPs(), old.Routes, old.Rules
	in.spec = ns
	if socket && in.conn != nil {
		// Another source, group or unicast mode: another socket, same
		// state machine.
		e.detach(in)
		e.attach(in, e.wg, e.bg)
		if in.src.IsValid() {
			e.step(now, in, vrrp.SourceChanged{Addr: in.src})
		}
	}
	cfg := ns.Machine()
	if !cfg.Source.IsValid() {
		cfg.Source = in.m.Config().Source
	}
	e.step(now, in, vrrp.Reconfigure{Config: cfg})
	if in.held {
		e.reconcileHeld(now, in, oldVIPs, oldRoutes, oldRules, old.GARP != ns.GARP)
	}
	e.mark(in)
	return what
}

// devVIPs returns the instance's VIPs (excluded ones included) with their
// interface filled in.
func (in *instance) devVIPs() []netif.VIP {
	vips := in.allVIPs()
	for k := range vips {
		if vips[k].Dev == "" {
			vips[k].Dev = in.spec.Interface
		}
	}
	return vips
}

// reconcileHeld brings a master's addresses, routes and rules from the old
// lists to the instance's current spec: it removes what went, adds what
// came and announces the new addresses (gratuitous ARP / NA).
func (e *Engine) reconcileHeld(now time.Time, in *instance, oldVIPs []netif.VIP, oldRoutes []netif.Route, oldRules []netif.Rule, garpChanged bool) {
	newVIPs := in.devVIPs()
	has := func(vs []netif.VIP, v netif.VIP) bool {
		return slices.ContainsFunc(vs, func(x netif.VIP) bool { return reflect.DeepEqual(x, v) })
	}
	var gone, came []netif.VIP
	for _, v := range oldVIPs {
		if !has(newVIPs, v) {
			gone = append(gone, v)
		}
	}
	for _, v := range newVIPs {
		if !has(oldVIPs, v) {
			came = append(came, v)
		}
	}
	goneRoutes, cameRoutes, replaced := diffRoutes(oldRoutes, in.spec.Routes)
	goneRules, cameRules := diffRules(oldRules, in.spec.Rules)
	for _, v := range gone {
		if has := slices.ContainsFunc(came, func(x netif.VIP) bool { return x.Addr() == v.Addr() }); has && e.kernel.seen {
			e.expectDelete(v.Addr()) // re-added at once with its new label or prefix
		}
	}
	name, net, log, errs := in.spec.VRRP.Name, e.opts.Net, e.log, &in.netErrors
	e.fx.add(func() {
		for _, r := range goneRules {
			if err := net.DelRule(r); err != nil {
				routeFailed(log, errs, "cannot remove virtual rule", name, "rule", r.String(), err)
			}
		}
		for _, r := range goneRoutes {
			if err := net.DelRoute(r); err != nil {
				routeFailed(log, errs, "cannot remove virtual route", name, "route", r.String(), err)
			}
		}
		for _, v := range gone {
			if err := net.DelVIP(v); err != nil {
				log.Error("cannot remove virtual address", "instance", name, "addr", v.String(), "err", err)
			}
		}
		for _, v := range came {
			if err := net.AddVIP(v); err != nil {
				log.Error("cannot add virtual address", "instance", name, "addr", v.String(), "err", err)
			}
		}
		for _, r := range replaced {
			if err := net.ReplaceRoute(r); err != nil {
				routeFailed(log, errs, "cannot replace virtual route", name, "route", r.String(), err)
			}
		}
		for _, r := range cameRoutes {
			if err := net.AddRoute(r); err != nil {
				routeFailed(log, errs, "cannot add virtual route", name, "route", r.String(), err)
			}
		}
		for _, r := range cameRules {
			if err := net.AddRule(r); err != nil {
				routeFailed(log, errs, "cannot add virtual rule", name, "rule", r.String(), err)
			}
		}
	})
	if len(gone) > 0 || len(came) > 0 {
		e.vipsChanged()
	}
	// The refresh schedule covers the current addresses; the new ones are
	// announced now, as on becoming master.
	var all, fresh []garp.Target
	for _, v := range newVIPs {
		all = append(all, garp.Target{Addr: v.Addr(), Dev: v.Dev})
	}
	for _, v := range came {
		fresh = append(fresh, garp.Target{Addr: v.Addr(), Dev: v.Dev})
	}
	if len(gone) > 0 {
		dropped := map[garp.Target]bool{}
		for _, v := range gone {
			dropped[garp.Target{Addr: v.Addr(), Dev: v.Dev}] = true
		}
		for _, p := range e.pacers {
			p.Cancel(func(s garp.Send) bool { return dropped[s.Target] })
		}
	}
	if len(gone) > 0 || len(came) > 0 || garpChanged {
		in.garp = garp.NewSchedule(in.spec.GARP, all, now)
		in.garp.Due(now) // the current addresses were announced already
	}
	if len(fresh) > 0 {
		e.announce(now, garp.NewSchedule(in.spec.GARP, fresh, now).Due(now))
		e.watchClaims(in) // their interfaces and addresses are watched for claims
	}
}

// retire stops an instance that left the configuration. It keeps running
// (receiving adverts, firing timers) until its stop completes, then it
// releases its socket.
func (e *Engine) retire(now time.Time, in *instance, deleted bool) {
	e.retiring = append(e.retiring, in)
	in.deleted = deleted
	if in.group != nil && in.group.g != nil {
		// Groups stop as a whole; the others of the group are retiring too.
		if in.member == 0 {
			e.stepGroup(now, in.group, -1, vrrp.Stop{})
		}
	} else {
		e.step(now, in, vrrp.Stop{})
	}
	e.reap()
}

// reap removes retired instances whose stop has completed and starts what
// waited for them.
func (e *Engine) reap() {
	e.retiring = slices.DeleteFunc(e.retiring, func(in *instance) bool {
		if st := in.m.State(); st != vrrp.StateStopped && st != vrrp.StateInit {
			return false
		}
		if !in.releaseAt.IsZero() {
			return false
		}
		if in.held {
			e.release(in)
		}
		e.detach(in)
		in.gone = true
		e.dropVMAC(in)
		e.mark(in)
		return true
	})
	e.releaseUnused()
}

// OwnerKeys lists the virtual routers a spec runs, for internal/owner.
func OwnerKeys(s runspec.Spec) []owner.Key {
	keys := make([]owner.Key, 0, len(s.Instances))
	for _, is := range s.Instances {
		keys = append(keys, ownerKey(is))
	}
	return keys
}

func ownerKey(is runspec.InstanceSpec) owner.Key {
	return owner.Key{Interface: is.Interface, IPv6: is.IPv6, VRID: is.VRRP.VRID}
}

// releaseUnused gives up the virtual routers no running or retiring
// instance uses any more.
func (e *Engine) releaseUnused() {
	o := e.opts.Owner
	if o == nil {
		return
	}
	used := map[owner.Key]bool{}
	for _, in := range e.all() {
		used[ownerKey(*in.spec)] = true
	}
	var free []owner.Key
	for _, k := range o.Held() {
		if !used[k] {
			free = append(free, k)
		}
	}
	if len(free) > 0 {
		o.Release(free)
	}
}

// anyPending reports whether an instance waits to start.
func (e *Engine) anyPending() bool { return e.npending > 0 }

// setPending marks an instance as waiting to start, or started.
func (e *Engine) setPending(in *instance, p bool) {
	switch {
	case p && !in.pending:
		e.npending++
	case !p && in.pending:
		e.npending--
	}
	in.pending = p
	e.mark(in)
}

// startWaiting attaches and starts the pending instances whose VRID is free.
func (e *Engine) startWaiting(now time.Time) {
	e.reap()
	if now.Before(e.startAt) {
		return // vrrp_startup_delay
	}
	busy := func(in *instance) bool {
		if e.waiting(in) {
			return true
		}
		for _, r := range e.retiring {
			if r.spec.Interface == in.spec.Interface && r.spec.IPv6 == in.spec.IPv6 && r.spec.VRRP.VRID == in.spec.VRRP.VRID {
				return true
			}
		}
		return false
	}
	var started []*instance
	for _, in := range e.insts {
		if !in.pending || busy(in) {
			continue
		}
		if in.group != nil {
			// A group starts when none of its members waits.
			ready := true
			for _, m := range in.group.ins {
				ready = ready && !busy(m)
			}
			if !ready {
				continue
			}
		}
		e.setPending(in, false)
		started = append(started, in)
	}
	if len(started) == 0 {
		return
	}
	for _, in := range started {
		e.attach(in, e.wg, e.bg)
		e.prime(now, in)
		e.mark(in)
	}
	groupsStarted := map[*group]bool{}
	for _, in := range started {
		if in.group == nil {
			e.step(now, in, vrrp.Start{})
		} else if !groupsStarted[in.group] {
			groupsStarted[in.group] = true
			e.stepGroup(now, in.group, -1, vrrp.Start{})
		}
	}
}
