package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
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

// hookConnSync makes the engine's transition hooks drive the supervisor
// for the instance or sync group conntrack_sync follows, keeping hooks
// already set.
func hookConnSync(h *engine.Hooks, cs *config.ConntrackSync, sup *connsync.Supervisor, log *slog.Logger) {
	set := func(from, to vrrp.State) {
		if r, ok := connSyncRole(to); ok {
			log.Info("conntrack sync follows a transition", "follows", cs.Instance+cs.SyncGroup, "from", from.String(), "to", to.String())
			sup.SetRole(r)
		}
	}
	if cs.Instance != "" {
		prev := h.InstanceTransition
		h.InstanceTransition = func(name string, from, to vrrp.State, prio int, reason string) {
			if prev != nil {
				prev(name, from, to, prio, reason)
			}
			if name == cs.Instance {
				set(from, to)
			}
		}
		return
	}
	prev := h.GroupTransition
	h.GroupTransition = func(name string, from, to vrrp.State, reason string) {
		if prev != nil {
			prev(name, from, to, reason)
		}
		if name == cs.SyncGroup {
			set(from, to)
		}
	}
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
