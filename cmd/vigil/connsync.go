package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/connsync"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// connSyncSpec turns the conntrack_sync block into conntrackd's spec. Its
// run directory sits beside the API socket (/run/vigil/conntrackd by
// default), so two vigils on one host never share a socket or lock.
func connSyncSpec(cfg *config.Config, apiSocket string) (connsync.Spec, error) {
	cs := cfg.ConntrackSync
	s := connsync.Spec{
		Interface: cs.Interface, Peer: cs.Peer, McastGroup: cs.McastGroup, Source: cs.Source, Port: cs.Port,
		Conntrackd: cs.Conntrackd, Dir: filepath.Join(filepath.Dir(apiSocket), "conntrackd"), Timeout: cs.Timeout,
		Follow: cs.Instance + cs.SyncGroup,
	}
	peer := cs.Peer
	if !peer.IsValid() {
		peer = cs.McastGroup
	}
	if !s.Source.IsValid() {
		a, err := ifaceAddr(cs.Interface, peer.Is4())
		if err != nil {
			return s, err
		}
		s.Source = a
	}
	s.Ignore = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback(), s.Source}
	if cs.Filter == "virtual_servers" {
		// A DNAT'ed flow's reply comes from its real server: conntrackd's
		// address filter matches the original and the reply sources.
		for _, vs := range cfg.VirtualServers {
			p := string(vs.Protocol)
			if p == "" {
				p = "TCP" // fwmark services: TCP and UDP
				if !slices.Contains(s.Protocols, "UDP") {
					s.Protocols = append(s.Protocols, "UDP")
				}
			}
			if !slices.Contains(s.Protocols, p) {
				s.Protocols = append(s.Protocols, p)
			}
			for _, rs := range vs.RealServers {
				if !slices.Contains(s.Accept, rs.Addr) {
					s.Accept = append(s.Accept, rs.Addr)
				}
			}
			if vs.SorryServer != nil && !slices.Contains(s.Accept, vs.SorryServer.Addr) {
				s.Accept = append(s.Accept, vs.SorryServer.Addr)
			}
		}
		slices.Sort(s.Protocols)
	}
	return s, s.Check()
}

// ifaceAddr returns the first address of the family on an interface.
func ifaceAddr(name string, v4 bool) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("conntrack_sync: interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("conntrack_sync: addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		if pn, ok := a.(*net.IPNet); ok {
			ip, _ := netip.AddrFromSlice(pn.IP)
			ip = ip.Unmap()
			if ip.Is4() == v4 && !ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("conntrack_sync: %s has no address of the peer's family; set source", name)
}

// connSyncRole maps a VRRP state to the role conntrackd follows; false
// for states it ignores (INIT, STOP: a stopping vigil ends conntrackd).
func connSyncRole(s vrrp.State) (connsync.Role, bool) {
	switch s {
	case vrrp.StateMaster:
		return connsync.RoleMaster, true
	case vrrp.StateBackup:
		return connsync.RoleBackup, true
	case vrrp.StateFault:
		return connsync.RoleFault, true
	}
	return connsync.RoleNone, false
}

// connSync is the running conntrack_sync: its block and supervisor, and
// how to stop it.
type connSync struct {
	cfg  *config.ConntrackSync
	sup  *connsync.Supervisor
	stop func() // ends conntrackd and waits for it
}

// follows is the instance or sync group conntrackd follows, as the state
// table names it.
func (c *connSync) follows() string { return followKey(c.cfg.Instance, c.cfg.SyncGroup) }

func followKey(instance, group string) string {
	if instance != "" {
		return "instance " + instance
	}
	return "sync_group " + group
}

// vrrpStates keeps the last state of every instance and sync group, so
// that a conntrack_sync started or retargeted by a reload takes the role
// of what it follows at once. Safe for concurrent use.
type vrrpStates struct {
	mu sync.Mutex
	m  map[string]vrrp.State
}

func (v *vrrpStates) set(key string, s vrrp.State) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[string]vrrp.State{}
	}
	v.m[key] = s
}

func (v *vrrpStates) get(key string) (vrrp.State, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.m[key]
	return s, ok
}

// hookConnSync makes the engine's transition hooks drive the supervisor
// of the conntrack_sync running when the transition comes (none, or one a
// reload started, changed or stopped), keeping hooks already set; every
// state is recorded in states.
func hookConnSync(h *engine.Hooks, cur func() *connSync, states *vrrpStates, log *slog.Logger) {
	set := func(key string, from, to vrrp.State) {
		states.set(key, to)
		cs := cur()
		if cs == nil || cs.follows() != key {
			return
		}
		if r, ok := connSyncRole(to); ok {
			log.Info("conntrack sync follows a transition", "follows", cs.cfg.Instance+cs.cfg.SyncGroup, "from", from.String(), "to", to.String())
			cs.sup.SetRole(r)
		}
	}
	prevI := h.InstanceTransition
	h.InstanceTransition = func(name string, from, to vrrp.State, prio int, reason string) {
		if prevI != nil {
			prevI(name, from, to, prio, reason)
		}
		set(followKey(name, ""), from, to)
	}
	prevG := h.GroupTransition
	h.GroupTransition = func(name string, from, to vrrp.State, reason string) {
		if prevG != nil {
			prevG(name, from, to, reason)
		}
		set(followKey("", name), from, to)
	}
}

// startConnSync runs the conntrack_sync block of cfg and gives it the role
// of what it follows when that state is known.
func (d *daemon) startConnSync(cfg *config.Config) (*connSync, error) {
	spec, err := connSyncSpec(cfg, d.flags.apiSocket)
	if err != nil {
		return nil, err
	}
	cs := &connSync{cfg: cfg.ConntrackSync, sup: connsync.New(spec, d.log)}
	cs.stop = d.startBG("conntrackd", cs.sup.Run)
	d.csp.Store(cs)
	d.followState(cs)
	return cs, nil
}

// followState gives the supervisor the role of what it follows, when its
// state is known.
func (d *daemon) followState(cs *connSync) {
	if st, ok := d.states.get(cs.follows()); ok {
		if r, ok := connSyncRole(st); ok {
			cs.sup.SetRole(r)
		}
	}
}

// connSyncReload applies a reloaded conntrack_sync block: an added one
// starts conntrackd, a removed one stops it, a changed one (the block, or
// the virtual servers its filter follows) rewrites conntrackd's
// configuration and restarts conntrackd alone, which then resyncs.
func (d *daemon) connSyncReload(cfg *config.Config) ([]string, error) {
	cur := d.csp.Load()
	next := cfg.ConntrackSync
	switch {
	case cur == nil && next == nil:
		return nil, nil
	case cur == nil:
		if d.startBG == nil {
			return nil, errors.New("reload: conntrack_sync needs the VRRP engine (not with -C)")
		}
		if _, err := d.startConnSync(cfg); err != nil {
			return nil, fmt.Errorf("reload: conntrack_sync: %w", err)
		}
		return []string{"+ conntrack_sync (conntrackd started)"}, nil
	case next == nil:
		d.csp.Store(nil)
		cur.stop()
		return []string{"- conntrack_sync (conntrackd stopped)"}, nil
	}
	spec, err := connSyncSpec(cfg, d.flags.apiSocket)
	if err != nil {
		return nil, fmt.Errorf("reload: conntrack_sync: %w", err)
	}
	var changes []string
	if cur.sup.SetSpec(spec) {
		changes = append(changes, "~ conntrack_sync (conntrackd restarts with its new configuration, then resyncs)")
	}
	if connSyncChanged(cur.cfg, next) {
		ncs := &connSync{cfg: next, sup: cur.sup, stop: cur.stop}
		d.csp.Store(ncs)
		if ncs.follows() != cur.follows() {
			d.followState(ncs)
			changes = append(changes, "~ conntrack_sync follows "+ncs.cfg.Instance+ncs.cfg.SyncGroup)
		}
	}
	return changes, nil
}

// connSyncStatus renders the supervisor's state for the snapshot.
func connSyncStatus(sup *connsync.Supervisor, now time.Time) *status.ConnSync {
	st := sup.Status()
	peer := st.Spec.Peer
	if !peer.IsValid() {
		peer = st.Spec.McastGroup
	}
	out := &status.ConnSync{
		Daemon: "conntrackd", Interface: st.Spec.Interface, Peer: peer.String(), Follows: st.Spec.Follow,
		Role: st.Role.String(), Alive: st.Alive, PID: st.PID, Restarts: st.Restarts, LinkUp: st.LinkUp,
		Internal: st.Stats.Internal, External: st.Stats.External, SendErrors: st.Stats.SendErrors,
		RecvErrors: st.Stats.RecvErrors, LostMsgs: st.Stats.LostMsgs, LastResync: st.LastResync, PeerHeard: st.PeerHeard,
		Warnings: st.Warnings(now),
	}
	if st.StatsOK {
		out.StatsAt = st.StatsAt
	}
	for k, v := range st.Failures {
		if out.CommandFailures == nil {
			out.CommandFailures = map[string]uint64{}
		}
		out.CommandFailures[k] = v
	}
	return out
}

// connSyncChanged reports whether a reloaded conntrack_sync block differs
// from the running one (positions aside).
func connSyncChanged(running, loaded *config.ConntrackSync) bool {
	if running == nil || loaded == nil {
		return (running == nil) != (loaded == nil)
	}
	a, b := *running, *loaded
	a.Pos, b.Pos = diag.Pos{}, diag.Pos{}
	return a != b
}
