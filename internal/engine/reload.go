package engine

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/internal/vrrp"
)

// Apply replaces the running Spec with spec, changing only what differs:
//
//   - an instance whose configuration (and sync group) is unchanged keeps its
//     state machine, its timers, its socket and its VIPs: no advert gap, no
//     gratuitous ARP, no notification;
//   - a removed instance stops as on SIGTERM (priority 0, handed over make
//     before break, VIPs released) and leaves;
//   - a changed instance stops the same way and its new configuration starts
//     once the old one has left (they share a VRID);
//   - a new instance starts.
//
// It returns one line per change. Apply may only be called while Run runs.
func (e *Engine) Apply(ctx context.Context, spec Spec) ([]string, error) {
	var changes []string
	var err error
	derr := e.do(ctx, func() { changes, err = e.apply(time.Now(), spec) })
	if derr != nil {
		return nil, derr
	}
	return changes, err
}

// identity is what an instance must keep for a reload to leave it alone.
type identity struct {
	spec  InstanceSpec
	group *SyncGroupSpec
}

func identities(s Spec) map[string]identity {
	ids := map[string]identity{}
	for _, is := range s.Instances {
		ids[is.VRRP.Name] = identity{spec: is}
	}
	for i := range s.SyncGroups {
		g := &s.SyncGroups[i]
		for _, m := range g.Members {
			if id, ok := ids[m]; ok {
				id.group = g
				ids[m] = id
			}
		}
	}
	return ids
}

func (e *Engine) apply(now time.Time, spec Spec) ([]string, error) {
	if e.stopping {
		return nil, fmt.Errorf("engine: stopping")
	}
	oldIDs, newIDs := identities(e.spec), identities(spec)
	var changes []string
	keep := map[string]bool{}
	for name, nid := range newIDs {
		oid, ok := oldIDs[name]
		if ok && reflect.DeepEqual(oid, nid) {
			keep[name] = true
		}
	}
	// A sync group is rebuilt when any member changes: its members start
	// together.
	for _, g := range spec.SyncGroups {
		all := true
		for _, m := range g.Members {
			all = all && keep[m]
		}
		if !all {
			for _, m := range g.Members {
				delete(keep, m)
			}
		}
	}

	// Retire what goes or changes.
	var leaving []*instance
	for _, in := range e.insts {
		name := in.spec.VRRP.Name
		if keep[name] {
			continue
		}
		leaving = append(leaving, in)
		if _, ok := newIDs[name]; ok {
			changes = append(changes, "~ vrrp_instance "+name+" (restarts with its new configuration)")
		} else {
			changes = append(changes, "- vrrp_instance "+name)
		}
	}
	// Build what comes or changes, in the new order.
	next := &Engine{opts: e.opts, spec: Spec{RouterID: spec.RouterID, GARPInterval: spec.GARPInterval, GNAInterval: spec.GNAInterval}, byName: map[string]*instance{}}
	for _, is := range spec.Instances {
		if keep[is.VRRP.Name] {
			continue
		}
		next.spec.Instances = append(next.spec.Instances, is)
		if _, ok := oldIDs[is.VRRP.Name]; !ok {
			changes = append(changes, "+ vrrp_instance "+is.VRRP.Name)
		}
	}
	for _, g := range spec.SyncGroups {
		if !keep[g.Members[0]] {
			next.spec.SyncGroups = append(next.spec.SyncGroups, g)
		}
	}
	if err := next.build(); err != nil {
		return nil, err
	}

	// Keep the unchanged instances (and their groups), retire the others.
	var kept []*instance
	for _, in := range e.insts {
		if keep[in.spec.VRRP.Name] {
			kept = append(kept, in)
		}
	}
	var keptGroups []*group
	for _, g := range e.groups {
		if len(g.ins) > 0 && keep[g.ins[0].spec.VRRP.Name] {
			keptGroups = append(keptGroups, g)
		}
	}
	e.insts = append(kept, next.insts...)
	e.groups = append(keptGroups, next.groups...)
	e.byName = map[string]*instance{}
	for _, in := range e.insts {
		e.byName[in.spec.VRRP.Name] = in
	}
	e.spec = spec
	for _, in := range leaving {
		_, stays := newIDs[in.spec.VRRP.Name]
		e.retire(now, in, !stays)
	}
	e.syncTrackers()
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
	sort.Strings(changes)
	if n := len(kept); n > 0 {
		changes = append(changes, fmt.Sprintf("= %d vrrp_instance(s) unchanged", n))
	}
	return changes, nil
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
