package config

import (
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/inet"
)

// resolve applies the defaults keepalived 2.2.7 applies after parsing and
// makes its semantic checks, reporting each at the position concerned.
func (p *parser) resolve() {
	c := p.cfg
	p.resolveGlobal(&c.Global)
	p.checkNames()
	p.resolveScripts()
	p.resolveSyncGroups()
	for i := range c.Instances {
		p.resolveInstance(&c.Instances[i], &p.meta.inst[i])
	}
	p.checkVRIDs()
	p.checkUnusedScripts()
	p.resolveVirtualServers()
	p.checkScriptSecurity()
	p.resolveBGP()
	p.resolveConntrackSync()
	if d := c.Global.LVSSyncDaemon; d != nil && d.Instance != "" {
		vi := c.Instance(d.Instance)
		if vi == nil {
			// keepalived vrrp_complete_init(): "Unable to find vrrp
			// instance for lvs_syncd - clearing lvs_syncd config".
			p.warnf(d.Pos, "lvs_sync_daemon: no vrrp_instance %s; the sync daemon setting is ignored, as keepalived does", d.Instance)
			c.Global.LVSSyncDaemon = nil
		} else if d.SyncID < 0 {
			d.SyncID = vi.VRID
		}
	}
	if d := c.Global.LVSSyncDaemon; d != nil && d.SyncID < 0 {
		d.SyncID = 0
	}
}

func (p *parser) resolveGlobal(g *Global) {
	given := func(name string) bool { _, ok := p.meta.global.at(name); return ok }
	if g.RouterID == "" {
		g.RouterID = p.cfg.ConfigID
	}
	if !given("smtp_connect_timeout") {
		g.SMTPConnectTimeout = 30 * time.Second
	}
	if g.SMTPServer != "" && g.SMTPPort == 0 {
		g.SMTPPort = 25
	}
	if !g.VRRPMcastGroup4.IsValid() {
		g.VRRPMcastGroup4 = netip.MustParseAddr("224.0.0.18")
	}
	if !g.VRRPMcastGroup6.IsValid() {
		g.VRRPMcastGroup6 = netip.MustParseAddr("ff02::12")
	}
	// keepalived 2.2.7 global defaults (vrrp.h VRRP_GARP_*); vrrp_min_garp
	// changes those not given explicitly.
	if !given("vrrp_garp_master_delay") {
		g.VRRPGARPMasterDelay = 5 * time.Second
		if g.VRRPMinGARP {
			g.VRRPGARPMasterDelay = 0
		}
	}
	if !given("vrrp_garp_master_repeat") {
		g.VRRPGARPMasterRepeat = 5
		if g.VRRPMinGARP {
			g.VRRPGARPMasterRepeat = 1
		}
	}
	if !given("vrrp_garp_master_refresh_repeat") {
		g.VRRPGARPMasterRefreshRepeat = 1
		if g.VRRPMinGARP {
			g.VRRPGARPMasterRefreshRepeat = 0
		}
	}
	if !given("vrrp_garp_lower_prio_delay") {
		g.VRRPGARPLowerPrioDelay = g.VRRPGARPMasterDelay
	}
	if !given("vrrp_garp_lower_prio_repeat") {
		g.VRRPGARPLowerPrioRepeat = g.VRRPGARPMasterRepeat
	}
	if !given("vrrp_down_timer_adverts") {
		g.VRRPDownTimerAdverts = 3
	}
	if !given("vrrp_version") {
		g.VRRPVersion = 2
	}
	if g.DefaultInterface == "" {
		g.DefaultInterface = "eth0"
	}
	if g.VMACPrefix == "" {
		g.VMACPrefix = "vrrp"
	}
	if g.SMTPServer == "" && len(g.NotificationEmail) > 0 {
		pos, _ := p.meta.global.at("notification_email")
		p.warnf(pos, "notification_email without smtp_server: no e-mail can be sent")
	}
}

// checkNames reports objects defined twice under one name. keepalived
// 2.2.7 skips a second vrrp_instance or vrrp_sync_group block of the same
// name ("already defined", vrrp_parser.c) and resolves every other name to
// the first definition; vigil keeps the first of each and drops the rest.
func (p *parser) checkNames() {
	c := p.cfg
	dups := func(kind string, n int, name func(i int) string, pos func(i int) diag.Pos) map[int]bool {
		first := map[string]diag.Pos{}
		drop := map[int]bool{}
		for i := 0; i < n; i++ {
			if f, ok := first[name(i)]; ok {
				p.warnf(pos(i), "%s %s is already defined at %s; this one is ignored, as keepalived does", kind, name(i), f)
				drop[i] = true
				continue
			}
			first[name(i)] = pos(i)
		}
		return drop
	}
	d := dups("vrrp_instance", len(c.Instances), func(i int) string { return c.Instances[i].Name }, func(i int) diag.Pos { return c.Instances[i].Pos })
	c.Instances, p.meta.inst = without(c.Instances, d), without(p.meta.inst, d)
	d = dups("vrrp_script", len(c.Scripts), func(i int) string { return c.Scripts[i].Name }, func(i int) diag.Pos { return c.Scripts[i].Pos })
	c.Scripts, p.meta.scripts = without(c.Scripts, d), without(p.meta.scripts, d)
	d = dups("track_file", len(c.TrackFiles), func(i int) string { return c.TrackFiles[i].Name }, func(i int) diag.Pos { return c.TrackFiles[i].Pos })
	c.TrackFiles, p.meta.tfiles = without(c.TrackFiles, d), without(p.meta.tfiles, d)
	d = dups("vrrp_track_process", len(c.TrackProcesses), func(i int) string { return c.TrackProcesses[i].Name }, func(i int) diag.Pos { return c.TrackProcesses[i].Pos })
	c.TrackProcesses, p.meta.tprocs = without(c.TrackProcesses, d), without(p.meta.tprocs, d)
	d = dups("vrrp_sync_group", len(c.SyncGroups), func(i int) string { return c.SyncGroups[i].Name }, func(i int) diag.Pos { return c.SyncGroups[i].Pos })
	c.SyncGroups, p.meta.groups = without(c.SyncGroups, d), without(p.meta.groups, d)
	d = dups("virtual_server_group", len(c.VSGroups), func(i int) string { return c.VSGroups[i].Name }, func(i int) diag.Pos { return c.VSGroups[i].Pos })
	c.VSGroups = without(c.VSGroups, d)
	d = dups("track_group", len(c.TrackGroups), func(i int) string { return c.TrackGroups[i].Name }, func(i int) diag.Pos { return c.TrackGroups[i].Pos })
	c.TrackGroups = without(c.TrackGroups, d)
	d = dups("bfd_instance", len(c.BFDInstances), func(i int) string { return c.BFDInstances[i].Name }, func(i int) diag.Pos { return c.BFDInstances[i].Pos })
	c.BFDInstances = without(c.BFDInstances, d)
}

// without returns list without the indexes in drop (list itself when
// there are none).
func without[T any](list []T, drop map[int]bool) []T {
	if len(drop) == 0 {
		return list
	}
	out := list[:0]
	for i, x := range list {
		if !drop[i] {
			out = append(out, x)
		}
	}
	return out
}

func (p *parser) resolveScripts() {
	for i := range p.cfg.Scripts {
		sc := &p.cfg.Scripts[i]
		if sc.Timeout != 0 && sc.Timeout > sc.Interval {
			pos, _ := p.meta.scripts[i].at("timeout")
			p.warnf(pos, "vrrp_script %s: timeout %s is longer than interval %s", sc.Name, sc.Timeout, sc.Interval)
		}
	}
}

func (p *parser) objects(kind string) ([]string, []diag.Pos) {
	var names []string
	var pos []diag.Pos
	c := p.cfg
	switch kind {
	case "vrrp_script":
		for _, x := range c.Scripts {
			names, pos = append(names, x.Name), append(pos, x.Pos)
		}
	case "track_file":
		for _, x := range c.TrackFiles {
			names, pos = append(names, x.Name), append(pos, x.Pos)
		}
	case "vrrp_track_process":
		for _, x := range c.TrackProcesses {
			names, pos = append(names, x.Name), append(pos, x.Pos)
		}
	case "bfd_instance":
		for _, x := range c.BFDInstances {
			names, pos = append(names, x.Name), append(pos, x.Pos)
		}
	case "vrrp_instance":
		for _, x := range c.Instances {
			names, pos = append(names, x.Name), append(pos, x.Pos)
		}
	case "virtual_server_group":
		for _, x := range c.VSGroups {
			names, pos = append(names, x.Name), append(pos, x.Pos)
		}
	}
	return names, pos
}

// after reports whether a comes after b in the same file.
func after(a, b diag.Pos) bool {
	if a.File != b.File {
		return false
	}
	return a.Line > b.Line || (a.Line == b.Line && a.Col > b.Col)
}

// trackedLookup finds the object a track_* entry names. keepalived 2.2.7
// (vrrp_track.c alloc_track_script() and its siblings) resolves the name
// while it reads the entry: a name not defined above the entry is
// reported "not found, ignoring" and the entry dropped, and the instance
// runs without it. vigil does the same, and says so.
func (p *parser) trackedLookup(kind, name string, use diag.Pos) (int, bool) {
	names, pos := p.objects(kind)
	for i, n := range names {
		if n != name {
			continue
		}
		if after(pos[i], use) {
			p.warnf(use, "%s %s is defined after this reference (at %s); keepalived 2.2.7 resolves the name where it reads it, so this tracker is ignored, as keepalived does (move the %s block above)", kind, name, pos[i], kind)
			return -1, false
		}
		return i, true
	}
	p.warnf(use, "no %s named %s: this tracker is ignored, as keepalived does (\"not found, ignoring\")%s", kind, name, didYouMean(name, names))
	return -1, false
}

// resolveTracked checks the references of a track_* list and fills in the
// default weights.
func (p *parser) resolveTracked(list []Tracked, kind string) []Tracked {
	out := list[:0]
	for _, t := range list {
		if kind == "vrrp_script" {
			if p.usedScripts == nil {
				p.usedScripts = map[string]bool{}
			}
			p.usedScripts[t.Name] = true
		}
		i, ok := p.trackedLookup(kind, t.Name, t.Pos)
		if !ok {
			continue
		}
		// The entry's weight and reverse flag, each where given, else the
		// object's own.
		var w int
		var rev, own bool
		switch kind {
		case "vrrp_script":
			w, rev, own = p.cfg.Scripts[i].Weight, p.cfg.Scripts[i].Reverse, true
		case "track_file":
			w, rev, own = p.cfg.TrackFiles[i].Weight, p.cfg.TrackFiles[i].Reverse, true
		case "vrrp_track_process":
			w, rev, own = p.cfg.TrackProcesses[i].Weight, p.cfg.TrackProcesses[i].Reverse, true
		}
		if own && !t.WeightSet {
			t.Weight = w
		}
		if own && !t.ReverseSet {
			t.Reverse = rev
		}
		out = append(out, t)
	}
	return out
}

func (p *parser) resolveSyncGroups() {
	c := p.cfg
	member := map[string]int{}
	for gi := range c.SyncGroups {
		g := &c.SyncGroups[gi]
		sn := p.meta.groups[gi]
		gpos, ok := sn.at("group")
		if !ok || len(g.Instances) == 0 {
			// keepalived: "Sync group has no virtual router(s) - removing".
			p.warnf(g.Pos, "vrrp_sync_group %s has no instances (group { ... }); the group is ignored, as keepalived does", g.Name)
			g.Instances = nil
			continue
		}
		var kept []string
		for _, name := range g.Instances {
			vi := c.Instance(name)
			if vi == nil {
				// keepalived 2.2.7 vrrp_sync_set_group(): "doesn't exist -
				// ignoring".
				names, _ := p.objects("vrrp_instance")
				p.warnf(gpos, "vrrp_sync_group %s: no vrrp_instance named %s; the name is ignored, as keepalived does%s", g.Name, name, didYouMean(name, names))
				continue
			}
			if other, dup := member[name]; dup {
				p.warnf(gpos, "vrrp_instance %s is already in vrrp_sync_group %s; an instance can be in one group only, so it is left out of %s, as keepalived does", name, c.SyncGroups[other].Name, g.Name)
				continue
			}
			member[name] = gi
			vi.SyncGroup = g.Name
			kept = append(kept, name)
		}
		g.Instances = kept
		if len(kept) == 0 {
			// keepalived: "no matching virtual router found in group
			// declaration - removing".
			p.warnf(g.Pos, "vrrp_sync_group %s has no instance left; the group is ignored, as keepalived does", g.Name)
			continue
		}
		if len(kept) == 1 {
			p.warnf(g.Pos, "vrrp_sync_group %s has only one instance", g.Name)
		}
		owners := 0
		for _, name := range kept {
			if c.Instance(name).Priority == 255 {
				owners++
			}
		}
		if owners > 0 && owners < len(kept) {
			p.errf(g.Pos, "vrrp_sync_group %s mixes address owners (priority 255) and other instances; this cannot work", g.Name)
		}
		g.TrackScripts = p.resolveTracked(g.TrackScripts, "vrrp_script")
		g.TrackFiles = p.resolveTracked(g.TrackFiles, "track_file")
		g.TrackProcesses = p.resolveTracked(g.TrackProcesses, "vrrp_track_process")
		g.TrackBFDs = p.resolveTracked(g.TrackBFDs, "bfd_instance")
	}
	// Groups left without members are gone, as in keepalived.
	keep, keepMeta := c.SyncGroups[:0], p.meta.groups[:0]
	for gi, g := range c.SyncGroups {
		if len(g.Instances) > 0 {
			keep, keepMeta = append(keep, g), append(keepMeta, p.meta.groups[gi])
		}
	}
	c.SyncGroups, p.meta.groups = keep, keepMeta
}

// resolveInstance applies keepalived 2.2.7 vrrp_complete_instance() and
// chk_min_cfg().
// instResolve carries what each step of resolveInstance needs.
type instResolve struct {
	*parser
	vi     *VRRPInstance
	m      *instMeta
	g      *Global
	strict bool // vrrp_strict, for the instance
}

// at is where the instance set name, else where it starts.
func (r *instResolve) at(name string) diag.Pos {
	if pos, ok := r.m.seen.at(name); ok {
		return pos
	}
	return r.vi.Pos
}

// given reports whether the instance set name.
func (r *instResolve) given(name string) bool { _, ok := r.m.seen.at(name); return ok }

func (p *parser) resolveInstance(vi *VRRPInstance, m *instMeta) {
	r := &instResolve{parser: p, vi: vi, m: m, g: &p.cfg.Global}
	r.identity()
	r.priorityState()
	r.auth()
	r.unicast()
	r.vmac()
	r.addresses()
	r.preemption()
	r.garp()
	r.advertInt()
	r.trackers()
	r.lvsSyncDaemon()
}

// identity checks the identity of the instance: its virtual router id, interface, family, strict mode and VRRP version, and that it has addresses.
func (r *instResolve) identity() {
	vi := r.vi
	m := r.m
	if vi.VRID == 0 {
		// keepalived 2.2.7 chk_min_cfg(): "the virtual router id must be
		// set"; the VRRP process does not start.
		if !r.given("virtual_router_id") {
			r.errf(vi.Pos, "vrrp_instance %s has no virtual_router_id (1..255)", vi.Name)
		} else {
			r.errf(r.at("virtual_router_id"), "vrrp_instance %s has no valid virtual_router_id (1..255); keepalived does not run without one", vi.Name)
		}
	}
	vi.Unicast = len(vi.UnicastPeers) > 0
	if vi.Interface == "" {
		// keepalived 2.2.7 chk_min_cfg(): "Unknown interface!"; an
		// interface line it ignored counts as none.
		if !vi.Unicast {
			r.errf(r.at("interface"), "vrrp_instance %s has no %sinterface", vi.Name, map[bool]string{true: "usable "}[r.given("interface")])
		} else if !vi.SourceIP.IsValid() {
			r.errf(vi.Pos, "vrrp_instance %s: a unicast instance needs an interface or unicast_src_ip", vi.Name)
		} else if vi.SourceIP.Is6() && vi.SourceIP.IsLinkLocalUnicast() {
			r.errf(vi.Pos, "vrrp_instance %s: without an interface the source address cannot be link-local", vi.Name)
		}
	}
	if vi.Family == 0 {
		vi.Family = Inet
	}
	r.strict = m.strict.Or(r.g.VRRPStrict)
	strict := r.strict
	vi.StrictMode = strict

	// Version: explicit, else IPv6 uses 3, else vrrp_version.
	if vi.Version == 0 {
		if vi.Family == Inet6 {
			vi.Version = 3
		} else {
			vi.Version = r.g.VRRPVersion
		}
	}
	if vi.Family == Inet6 && vi.Version == 2 {
		if strict {
			// keepalived: "cannot use IPv6 with VRRP version 2; setting
			// version 3".
			r.warnf(r.at("version"), "vrrp_instance %s: VRRP version 2 cannot carry IPv6 in strict mode (RFC 3768 is IPv4 only); version 3 is used, as keepalived does", vi.Name)
			vi.Version = 3
		} else {
			r.warnf(r.at("version"), "vrrp_instance %s: VRRP version 2 with IPv6 is not standard (RFC 3768 is IPv4 only); peers other than keepalived will not understand it", vi.Name)
		}
	}

	if len(vi.VirtualIPs) == 0 && m.vipLines == 0 {
		if vi.Version == 3 || vi.Family == Inet6 || strict {
			r.errf(vi.Pos, "vrrp_instance %s has no virtual_ipaddress; VRRPv3 and strict mode need at least one", vi.Name)
		} else {
			r.warnf(vi.Pos, "vrrp_instance %s has no virtual_ipaddress", vi.Name)
		}
	}
}

// priorityState derives the priority and the initial state from each other.
func (r *instResolve) priorityState() {
	vi := r.vi
	strict := r.strict
	// Priority and state defaults derive from each other.
	if vi.Priority == 0 {
		if vi.State == Master {
			vi.Priority = 255
		} else {
			vi.Priority = 100
		}
	}
	if vi.State == "" {
		vi.State = Backup
		if vi.Priority == 255 {
			vi.State = Master
		}
	} else if strict && (vi.State == Master) != (vi.Priority == 255) {
		// keepalived vrrp_complete_instance(): "State MASTER must match
		// being address owner"; the state is derived from the priority.
		want := Backup
		if vi.Priority == 255 {
			want = Master
		}
		r.warnf(r.at("state"), "vrrp_instance %s: in strict mode state MASTER goes with priority 255 and only with it; state %s is used, as keepalived does", vi.Name, want)
		vi.State = want
	}
}

// auth applies keepalived's rules for VRRPv2 authentication.
func (r *instResolve) auth() {
	vi := r.vi
	strict := r.strict
	// Authentication (RFC 3768 removed it; keepalived still has it).
	if vi.Auth.Type == AuthNone && vi.Auth.Pass != "" {
		r.warnf(vi.Auth.Pos, "vrrp_instance %s: auth_pass without auth_type is ignored", vi.Name)
		vi.Auth.Pass = ""
	}
	if vi.Auth.Type != AuthNone {
		// keepalived vrrp_complete_instance(): each of these is reported
		// and the authentication dropped (or, for AH with an initial
		// MASTER state, the state cleared), and the instance runs.
		dropped := ""
		switch {
		case strict:
			dropped = "strict mode does not support authentication"
		case vi.Version == 3:
			dropped = "VRRP version 3 has no authentication (RFC 5798 §9)"
		case vi.Auth.Pass == "":
			dropped = "authentication without auth_pass"
		case vi.Family == Inet6 && vi.Auth.Type == AuthAH:
			dropped = "AH authentication cannot be used with IPv6"
		case vi.Auth.Type == AuthAH && vi.State == Master && vi.Priority != 255:
			r.warnf(r.at("state"), "vrrp_instance %s: initial state MASTER is incompatible with AH authentication below priority 255 (a backup must hear an advert for the AH sequence number first); state BACKUP is used, as keepalived does", vi.Name)
			vi.State = Backup
		}
		if dropped != "" {
			r.warnf(vi.Auth.Pos, "vrrp_instance %s: %s; the authentication block is ignored and adverts carry none, as keepalived does", vi.Name, dropped)
			vi.Auth = Auth{}
		}
	}
}

// unicast resolves unicast peers, their TTL and the multicast group.
func (r *instResolve) unicast() {
	vi := r.vi
	m := r.m
	// Unicast peers in strict mode: keepalived 2.2.7 vrrp_complete_instance()
	// means to refuse them on a multicast interface, but tests its unicast
	// flag before it sets it from the peer list, so it never does; it runs
	// the instance unicast and says nothing. So does vigil.
	if m.unicastKw && !vi.Unicast && m.peerLines == 0 {
		if vi.UnicastFaultNoPeer {
			r.warnf(vi.Pos, "vrrp_instance %s: unicast_fault_no_peer without unicast_peer: the instance stays in FAULT", vi.Name)
		} else {
			r.warnf(vi.Pos, "vrrp_instance %s: unicast keywords without unicast_peer; the instance uses multicast (keepalived deprecates this)", vi.Name)
		}
	}
	if m.ttlSet && !vi.Unicast {
		r.warnf(r.at("unicast_ttl"), "vrrp_instance %s: unicast_ttl without unicast_peer is ignored", vi.Name)
		m.ttlSet = false
	}
	if !m.ttlSet {
		vi.UnicastTTL = 0
		if vi.Family == Inet && vi.Unicast {
			vi.UnicastTTL = 255
		}
	}
	if vi.Unicast && vi.McastGroup.IsValid() {
		r.warnf(r.at("mcast_dst_ip"), "vrrp_instance %s: mcast_dst_ip is ignored with unicast peers", vi.Name)
		vi.McastGroup = netip.Addr{}
	}
	if !vi.Unicast && !vi.McastGroup.IsValid() {
		vi.McastGroup = r.g.VRRPMcastGroup4
		if vi.Family == Inet6 {
			vi.McastGroup = r.g.VRRPMcastGroup6
		}
	}
	if vi.CheckUnicastSrc || r.g.VRRPCheckUnicastSrc {
		vi.CheckUnicastSrc = true
	}
}

// vmac applies the VMAC rules.
func (r *instResolve) vmac() {
	vi := r.vi
	strict := r.strict
	if vi.UseVMAC && vi.Unicast {
		if vi.Interface == "" {
			// keepalived: "Cannot use VMAC/ipvlan with unicast and no
			// interface - clearing use_vmac".
			r.warnf(r.at("use_vmac"), "vrrp_instance %s: use_vmac with unicast needs an interface; use_vmac is cleared, as keepalived does", vi.Name)
			vi.UseVMAC, vi.UseIPVLAN = false, false
		} else if !vi.VMACXmitBase {
			r.warnf(r.at("use_vmac"), "vrrp_instance %s: use_vmac with unicast peers needs vmac_xmit_base; it is set", vi.Name)
			vi.VMACXmitBase = true
		}
	}
	if vi.VMACXmitBase && !vi.UseVMAC {
		r.warnf(r.at("vmac_xmit_base"), "vrrp_instance %s: vmac_xmit_base without use_vmac is ignored", vi.Name)
		vi.VMACXmitBase = false
	}
	if strict && vi.VMACAddr != "" {
		r.warnf(r.at("use_vmac"), "vrrp_instance %s: a VMAC address cannot be chosen in strict mode; ignored", vi.Name)
		vi.VMACAddr = ""
	}
	if strict && vi.VMACXmitBase {
		r.warnf(r.at("vmac_xmit_base"), "vrrp_instance %s: vmac_xmit_base is not allowed in strict mode; ignored", vi.Name)
		vi.VMACXmitBase = false
	}
}

// addresses checks the virtual addresses against RFC 5798 and the advert size.
func (r *instResolve) addresses() {
	vi := r.vi
	strict := r.strict
	// RFC 5798 §5.2.9: the first IPv6 address is the link-local one.
	if vi.Family == Inet6 && !vi.Unicast && len(vi.VirtualIPs) > 0 && !vi.VirtualIPs[0].Prefix.Addr().IsLinkLocalUnicast() {
		if strict {
			// keepalived reports it and runs the instance as written.
			r.warnf(vi.VirtualIPs[0].Pos, "vrrp_instance %s: the first IPv6 virtual address must be link-local in strict mode (RFC 5798 §5.2.9); keepalived reports it and runs the instance as written, and so does vigil", vi.Name)
		} else {
			r.warnf(vi.VirtualIPs[0].Pos, "vrrp_instance %s: the first IPv6 virtual address should be link-local (RFC 5798 §5.2.9)", vi.Name)
		}
	}

	// Addresses that fit in one advert (1500 byte MTU assumed).
	max := 255
	if vi.Family == Inet {
		hdr := 14 + 20 + 8
		if vi.Version == 2 {
			hdr += 8
		}
		max = min(max, (1500-hdr)/4)
	} else {
		max = min(max, (1500-14-40-8)/16)
	}
	if len(vi.VirtualIPs) > max {
		r.warnf(vi.VirtualIPs[max].Pos, "vrrp_instance %s has %d virtual addresses; only %d fit in an advert, the others are handled like virtual_ipaddress_excluded", vi.Name, len(vi.VirtualIPs), max)
	}
}

// preemption resolves preemption, the down timer and accept mode.
func (r *instResolve) preemption() {
	vi := r.vi
	m := r.m
	strict := r.strict
	if vi.Priority == 255 && vi.Nopreempt {
		r.warnf(r.at("nopreempt"), "vrrp_instance %s: nopreempt has no effect with priority 255", vi.Name)
		vi.Nopreempt = false
	}
	if vi.State == Master {
		if vi.Nopreempt {
			r.warnf(r.at("nopreempt"), "vrrp_instance %s: nopreempt does not work with state MASTER (use state BACKUP on every node); ignored as keepalived does", vi.Name)
			vi.Nopreempt = false
		}
		if vi.PreemptDelay > 0 {
			r.warnf(r.at("preempt_delay"), "vrrp_instance %s: preempt_delay does not work with state MASTER; ignored as keepalived does", vi.Name)
			vi.PreemptDelay = 0
		}
	}
	if vi.PreemptDelay > 0 && strict {
		r.warnf(r.at("preempt_delay"), "vrrp_instance %s: preempt_delay is not allowed in strict mode; ignored", vi.Name)
		vi.PreemptDelay = 0
	}
	if vi.PreemptDelay > 0 && vi.Nopreempt {
		r.warnf(r.at("preempt_delay"), "vrrp_instance %s: preempt_delay has no effect with nopreempt", vi.Name)
		vi.PreemptDelay = 0
	}
	if vi.DownTimerAdverts < 0 {
		vi.DownTimerAdverts = r.g.VRRPDownTimerAdverts
	}
	if strict && vi.DownTimerAdverts != 3 {
		r.warnf(r.at("down_timer_adverts"), "vrrp_instance %s: strict mode needs down_timer_adverts 3; reset", vi.Name)
		vi.DownTimerAdverts = 3
	}

	// Accept mode (RFC 5798 §6.1): on by default, off in strict mode
	// unless the address owner.
	vi.Accept = m.accept.Or(vi.Priority == 255 || !strict)
	if vi.Accept && vi.Priority != 255 && strict && vi.Version == 2 {
		r.warnf(r.at("accept"), "vrrp_instance %s: accept mode does not exist in VRRPv2 (RFC 3768); off in strict mode", vi.Name)
		vi.Accept = false
	}
	r.noteAcceptMode(vi, r.g.VRRPStrict, r.at, r.given)
	r.noteAddressVMAC(vi)
	vi.SkipCheckAdvAddr = m.skipCheck.Or(r.g.VRRPSkipCheckAdvAddr)
}

// garp fills in gratuitous ARP, advert and notification defaults from global_defs.
func (r *instResolve) garp() {
	vi := r.vi
	m := r.m
	strict := r.strict
	// Gratuitous ARP defaults from global_defs.
	if vi.GARPMasterDelay < 0 {
		vi.GARPMasterDelay = r.g.VRRPGARPMasterDelay
	}
	if vi.GARPMasterRepeat < 0 {
		vi.GARPMasterRepeat = r.g.VRRPGARPMasterRepeat
	}
	if vi.GARPMasterRefresh < 0 {
		vi.GARPMasterRefresh = r.g.VRRPGARPMasterRefresh
	}
	if vi.GARPMasterRefreshRepeat < 0 {
		vi.GARPMasterRefreshRepeat = r.g.VRRPGARPMasterRefreshRepeat
	}
	if vi.GARPLowerPrioDelay < 0 {
		vi.GARPLowerPrioDelay = r.g.VRRPGARPLowerPrioDelay
		if strict {
			vi.GARPLowerPrioDelay = 0
		}
	} else if strict && vi.GARPLowerPrioDelay != 0 {
		r.warnf(r.at("garp_lower_prio_delay"), "vrrp_instance %s: strict mode allows no garp_lower_prio_delay; reset", vi.Name)
		vi.GARPLowerPrioDelay = 0
	}
	if vi.GARPLowerPrioRepeat < 0 {
		vi.GARPLowerPrioRepeat = r.g.VRRPGARPLowerPrioRepeat
		if strict {
			vi.GARPLowerPrioRepeat = 0
		}
	} else if strict && vi.GARPLowerPrioRepeat != 0 {
		r.warnf(r.at("garp_lower_prio_repeat"), "vrrp_instance %s: strict mode allows no garp_lower_prio_repeat; reset", vi.Name)
		vi.GARPLowerPrioRepeat = 0
	}
	if vi.GARPExtraIf < 0 {
		vi.GARPExtraIf, vi.GARPExtraIfAll = r.g.VRRPGARPExtraIf, r.g.VRRPGARPExtraIfAll
	}
	vi.LowerPrioNoAdvert = m.lowerPrio.Or(strict || r.g.VRRPLowerPrioNoAdvert)
	if strict && !vi.LowerPrioNoAdvert {
		r.warnf(r.at("lower_prio_no_advert"), "vrrp_instance %s: strict mode needs lower_prio_no_advert; set", vi.Name)
		vi.LowerPrioNoAdvert = true
	}
	vi.HigherPrioSendAdvert = m.higherPrio.Or(!strict && r.g.VRRPHigherPrioSendAdvert)
	if strict && vi.HigherPrioSendAdvert {
		r.warnf(r.at("higher_prio_send_advert"), "vrrp_instance %s: strict mode does not allow higher_prio_send_advert; cleared", vi.Name)
		vi.HigherPrioSendAdvert = false
	}
	vi.SMTPAlert = m.smtpAlert.Or(r.g.SMTPAlertVRRP.Or(r.g.SMTPAlert.Or(false)))
	notifyPrio := m.notifyPrio
	if notifyPrio == Unset && vi.SyncGroup != "" {
		for _, sg := range r.cfg.SyncGroups {
			if sg.Name == vi.SyncGroup {
				notifyPrio = sg.NotifyPriorityChanges
			}
		}
	}
	vi.NotifyPriorityChanges = notifyPrio.Or(r.g.VRRPNotifyPriorityChange)
}

// advertInt rounds the advertisement interval to what the version carries.
func (r *instResolve) advertInt() {
	vi := r.vi
	// Advertisement interval: VRRPv2 counts whole seconds (RFC 3768
	// §5.3.7), VRRPv3 centiseconds below 40.96s (RFC 5798 §5.2.7).
	if vi.AdvertInt == 0 {
		vi.AdvertInt = time.Second
	}
	// keepalived 2.2.7 vrrp_complete_instance() rounds an interval the
	// version cannot carry to the nearest unit it can, and says so.
	if vi.Version == 2 {
		if vi.AdvertInt%time.Second != 0 {
			rounded := (vi.AdvertInt + time.Second/2).Truncate(time.Second)
			if rounded == 0 {
				rounded = time.Second
			}
			r.warnf(r.at("advert_int"), "vrrp_instance %s: advert_int %s is not a whole number of seconds, which VRRP version 2 needs; rounded to %s, as keepalived does (use version 3 for sub-second adverts)", vi.Name, fmtSeconds(vi.AdvertInt), fmtSeconds(rounded))
			vi.AdvertInt = rounded
		}
	} else {
		const centi = 10 * time.Millisecond
		if vi.AdvertInt >= 4096*centi {
			r.warnf(r.at("advert_int"), "vrrp_instance %s: advert_int %s is too long for VRRP version 3 (less than 40.96s); 40.95s is used, as keepalived does", vi.Name, fmtSeconds(vi.AdvertInt))
			vi.AdvertInt = 4095 * centi
		} else if vi.AdvertInt%centi != 0 {
			rounded := (vi.AdvertInt + centi/2).Truncate(centi)
			if rounded == 0 {
				rounded = centi
			}
			r.warnf(r.at("advert_int"), "vrrp_instance %s: advert_int %s is not a multiple of 10ms, which VRRP version 3 needs; rounded to %s, as keepalived does", vi.Name, fmtSeconds(vi.AdvertInt), fmtSeconds(rounded))
			vi.AdvertInt = rounded
		}
	}
}

// trackers resolves the trackers.
func (r *instResolve) trackers() {
	vi := r.vi
	vi.TrackScripts = r.resolveTracked(vi.TrackScripts, "vrrp_script")
	vi.TrackFiles = r.resolveTracked(vi.TrackFiles, "track_file")
	vi.TrackProcesses = r.resolveTracked(vi.TrackProcesses, "vrrp_track_process")
	vi.TrackBFDs = r.resolveTracked(vi.TrackBFDs, "bfd_instance")
	kept := vi.TrackInterfaces[:0]
	for _, t := range vi.TrackInterfaces {
		if t.Name == vi.Interface {
			r.warnf(t.Pos, "vrrp_instance %s: track_interface %s is the instance's own interface, which is always tracked; ignored", vi.Name, t.Name)
			continue
		}
		kept = append(kept, t)
	}
	vi.TrackInterfaces = kept
	r.unweight(vi)
}

// lvsSyncDaemon applies the deprecated lvs_sync_daemon_interface.
func (r *instResolve) lvsSyncDaemon() {
	vi := r.vi
	m := r.m
	// The deprecated lvs_sync_daemon_interface.
	if m.lvsSyncd.text != "" {
		if r.g.LVSSyncDaemon != nil {
			r.warnf(m.lvsSyncd.pos, "lvs_sync_daemon_interface: lvs_sync_daemon is already set; ignored")
		} else {
			r.g.LVSSyncDaemon = &LVSSyncDaemon{Pos: m.lvsSyncd.pos, Interface: m.lvsSyncd.text, Instance: vi.Name, SyncID: vi.VRID}
		}
	}
}

// unweight applies keepalived's rule that members of a sync group (without
// sync_group_tracking_weight) and address owners cannot have weighted
// trackers.
func (p *parser) unweight(vi *VRRPInstance) {
	inGroup := false
	for _, g := range p.cfg.SyncGroups {
		if g.Name == vi.SyncGroup && !g.TrackingWeight {
			inGroup = true
		}
	}
	owner := vi.Priority == 255
	if !inGroup && !owner {
		return
	}
	why := "vrrp_sync_group " + vi.SyncGroup + " (set sync_group_tracking_weight to keep it)"
	if !inGroup {
		why = "priority 255 (the address owner's priority cannot change)"
	}
	drop := func(list []Tracked, kind string) []Tracked {
		out := list[:0]
		for _, t := range list {
			if t.Weight != 0 {
				if kind == "track_interface" && inGroup {
					p.warnf(t.Pos, "vrrp_instance %s: the weight of %s %s is ignored because of %s", vi.Name, kind, t.Name, why)
					t.Weight = 0
				} else if kind == "track_file" && !t.WeightSet && t.Weight == 1 {
					p.warnf(t.Pos, "vrrp_instance %s: the weight of %s %s is ignored because of %s; give weight 0", vi.Name, kind, t.Name, why)
					t.Weight = 0
				} else {
					p.warnf(t.Pos, "vrrp_instance %s: weighted %s %s is ignored because of %s", vi.Name, kind, t.Name, why)
					continue
				}
			}
			out = append(out, t)
		}
		return out
	}
	vi.TrackInterfaces = drop(vi.TrackInterfaces, "track_interface")
	vi.TrackScripts = drop(vi.TrackScripts, "track_script")
	vi.TrackFiles = drop(vi.TrackFiles, "track_file")
	vi.TrackProcesses = drop(vi.TrackProcesses, "track_process")
	vi.TrackBFDs = drop(vi.TrackBFDs, "track_bfd")
}

// checkVRIDs reports instances that would share a VRRP socket and VRID
// (keepalived check_vrid_conflicts()): same interface and family, and the
// same multicast group, or overlapping unicast peers from the same source.
func (p *parser) checkVRIDs() {
	c := p.cfg
	for i := range c.Instances {
		a := &c.Instances[i]
		if a.VRID == 0 {
			continue
		}
		for j := 0; j < i; j++ {
			b := &c.Instances[j]
			if a.VRID != b.VRID || a.Family != b.Family || a.Unicast != b.Unicast {
				continue
			}
			if a.Unicast {
				if a.Interface != "" && b.Interface != "" && a.Interface != b.Interface {
					continue
				}
				if a.SourceIP.IsValid() && b.SourceIP.IsValid() && a.SourceIP != b.SourceIP {
					continue
				}
				overlap := false
				for _, pa := range a.UnicastPeers {
					for _, pb := range b.UnicastPeers {
						if pa.Addr == pb.Addr {
							overlap = true
						}
					}
				}
				if !overlap {
					continue
				}
				pos, _ := p.meta.inst[i].seen.at("virtual_router_id")
				p.errf(posOr(pos, a.Pos), "vrrp_instance %s uses VRID %d with the same unicast peers as vrrp_instance %s (at %s)", a.Name, a.VRID, b.Name, b.Pos)
				continue
			}
			if a.Interface != b.Interface || a.McastGroup != b.McastGroup {
				continue
			}
			pos, _ := p.meta.inst[i].seen.at("virtual_router_id")
			p.errf(posOr(pos, a.Pos), "vrrp_instance %s and vrrp_instance %s (at %s) both use VRID %d with %s on interface %s", a.Name, b.Name, b.Pos, a.VRID, famName(a.Family), a.Interface)
		}
	}
}

// checkUnusedScripts reports vrrp_scripts no track_script names
// (keepalived: "Warning - script %s is not used").
func (p *parser) checkUnusedScripts() {
	for _, sc := range p.cfg.Scripts {
		if !p.usedScripts[sc.Name] {
			p.warnf(sc.Pos, "vrrp_script %s is not used by any track_script", sc.Name)
		}
	}
}

// checkScriptSecurity reports scripts configured without
// enable_script_security: keepalived 2.2.7 check_vrrp_script_security()
// reports a "SECURITY VIOLATION" for those whose file it finds (keepalived
// -t then exits 6).
func (p *parser) checkScriptSecurity() {
	if p.cfg.Global.EnableScriptSecurity {
		return
	}
	if cs := p.cfg.ScriptCommands(); len(cs) > 0 {
		p.warnf(cs[0].Pos, "%d script(s) configured without enable_script_security in global_defs: keepalived reports a security violation and does not check who can modify them", len(cs))
	}
}

// ScriptCommands returns every script the file configures, the ones
// keepalived checks for script security: vrrp_scripts, the notify scripts
// of instances and sync groups, virtual servers' quorum scripts, real
// servers' notify scripts and MISC_CHECK paths.
func (c *Config) ScriptCommands() []Command {
	var cs []Command
	note := func(c Command) {
		if c.IsSet() {
			cs = append(cs, c)
		}
	}
	for _, s := range c.Scripts {
		note(s.Script)
	}
	for _, vi := range c.Instances {
		for _, c := range []Command{vi.NotifyMaster, vi.NotifyBackup, vi.NotifyFault, vi.NotifyStop, vi.NotifyDeleted, vi.Notify, vi.NotifyMasterRxLowerPri} {
			note(c)
		}
	}
	for _, sg := range c.SyncGroups {
		for _, c := range []Command{sg.NotifyMaster, sg.NotifyBackup, sg.NotifyFault, sg.NotifyStop, sg.Notify} {
			note(c)
		}
	}
	for _, vs := range c.VirtualServers {
		note(vs.QuorumUp)
		note(vs.QuorumDown)
		for _, rs := range vs.RealServers {
			note(rs.NotifyUp)
			note(rs.NotifyDown)
			for _, ch := range rs.Checkers {
				if ch.Misc != nil {
					note(ch.Misc.Path)
				}
			}
		}
	}
	return cs
}

// vsName names a virtual server in messages.
func vsName(vs *VirtualServer) string {
	switch {
	case vs.Group != "":
		return "group " + vs.Group
	case vs.FWMark != 0:
		return fmt.Sprintf("fwmark %d", vs.FWMark)
	}
	return netip.AddrPortFrom(vs.Addr, vs.Port).String()
}

// resolveVirtualServers applies keepalived 2.2.7 validate_check_config().
func (p *parser) resolveVirtualServers() {
	c := p.cfg
	g := &c.Global
	type key struct {
		addr  netip.Addr
		port  uint16
		mark  uint32
		group string
		proto Protocol
	}
	seenVS := map[key]diag.Pos{}
	services := map[service]string{}
	dropVS := map[int]bool{}
	defer func() {
		if len(dropVS) == 0 {
			return
		}
		keep, keepMeta := c.VirtualServers[:0], p.meta.vs[:0]
		for i := range c.VirtualServers {
			if !dropVS[i] {
				keep, keepMeta = append(keep, c.VirtualServers[i]), append(keepMeta, p.meta.vs[i])
			}
		}
		c.VirtualServers, p.meta.vs = keep, keepMeta
	}()
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		m := &p.meta.vs[i]
		at := func(name string) diag.Pos {
			if pos, ok := m.seen.at(name); ok {
				return pos
			}
			return vs.Pos
		}
		name := vsName(vs)
		grp, ok := p.vsGroup(vs)
		if !ok || !p.groupFamilyFits(vs, grp, name) {
			dropVS[i] = true
			continue
		}
		hasAddrs := vs.Group == "" && vs.FWMark == 0
		onlyMarks := vs.FWMark != 0
		anyMark := onlyMarks
		if grp != nil {
			hasAddrs, onlyMarks = false, true
			for _, e := range grp.Entries {
				if e.FWMark == 0 {
					hasAddrs, onlyMarks = true, false
					if vs.Family == 0 {
						vs.Family = e.Family
					}
				} else {
					anyMark = true
				}
			}
		}
		if len(vs.RealServers) == 0 {
			p.warnf(vs.Pos, "virtual_server %s has no real_server; keepalived ignores it", name)
		}
		if vs.HASuspend && anyMark {
			// keepalived 2.2.7 validate_check_config(): "cannot use
			// ha_suspend with fwmarks - clearing ha_suspend", also for a
			// group with addresses beside its marks.
			p.warnf(at("ha_suspend"), "virtual_server %s: ha_suspend cannot be used with fwmarks; ignored, as keepalived does", name)
			vs.HASuspend = false
		}
		if hasAddrs {
			if vs.Protocol == "" {
				// keepalived 2.2.7 validate_check_config(): "no protocol
				// set - defaulting to UDP".
				p.warnf(vs.Pos, "virtual_server %s has no protocol; UDP is used, as keepalived does (set protocol TCP, UDP or SCTP)", name)
				vs.Protocol = UDP
			}
			if vs.OPS && vs.Protocol != UDP {
				p.warnf(at("ops"), "virtual_server %s: one-packet scheduling (ops) needs UDP; ignored", name)
				vs.OPS = false
			}
			if vs.PersistenceTimeout == 0 && vs.Group == "" && vs.FWMark == 0 && vs.Port == 0 {
				// keepalived: "zero port only valid for persistent
				// services - setting" (persistence_timeout 360).
				p.warnf(vs.Pos, "virtual_server %s has no port, which only persistent services may omit; the service is made persistent (persistence_timeout 360), as keepalived does", name)
				vs.PersistenceTimeout = 360 * time.Second
			}
		}
		if grp != nil && vs.PersistenceTimeout == 0 {
			for _, e := range grp.Entries {
				if e.FWMark == 0 && e.Port == 0 {
					p.warnf(e.Pos, "virtual_server_group %s entry has no port, which only persistent services may omit; virtual_server %s is made persistent (persistence_timeout 360), as keepalived does", grp.Name, name)
					vs.PersistenceTimeout = 360 * time.Second
					break
				}
			}
		}
		if vs.Protocol != "" && onlyMarks {
			p.warnf(at("protocol"), "virtual_server %s: protocol is ignored for fwmark services", name)
			vs.Protocol = ""
		}
		if vs.Scheduler == "" && (m.seenFlag("lb_algo") || m.seenFlag("lvs_sched")) {
			// The line was reported as ignored; wlc, as it said.
			vs.Scheduler = "wlc"
		} else if vs.Scheduler == "" {
			p.warnf(vs.Pos, "virtual_server %s has no lb_algo; using wlc, as keepalived does", name)
			vs.Scheduler = "wlc"
		}
		if vs.Forwarding.Method == "" {
			methodSet := vs.SorryServer != nil && vs.SorryServer.Forwarding.Method != ""
			for _, rs := range vs.RealServers {
				if rs.Forwarding.Method == "" {
					methodSet = false
					break
				}
				methodSet = true
			}
			if !methodSet && (len(vs.RealServers) > 0 || vs.SorryServer != nil) {
				p.warnf(vs.Pos, "virtual_server %s has no lb_kind; using NAT, as keepalived does", name)
			}
			vs.Forwarding = Forwarding{Method: NAT}
		}
		vs.SMTPAlert = vs.SMTPAlert || (!m.seenFlag("smtp_alert") && g.SMTPAlertChecker.Or(g.SMTPAlert.Or(false)))
		vs.Family = serversFamily(vs)

		weightSum := p.resolveRealServers(vs, m, name)
		p.resolveSorryServer(vs, name)
		p.sorryInhibit(vs, name)
		p.quorum(vs, weightSum, at, name)
		k := key{vs.Addr, vs.Port, vs.FWMark, vs.Group, vs.Protocol}
		if prev, dup := seenVS[k]; dup {
			p.errf(vs.Pos, "virtual_server %s %s is already defined at %s", name, vs.Protocol, prev)
			continue
		}
		seenVS[k] = vs.Pos
		if !p.claimServices(vs, grp, name, services) {
			dropVS[i] = true
		}
	}
}

// groupFamilyFits reports whether the virtual_server_group grp (nil for
// none) can serve vs, as keepalived 2.2.7 ipwrapper.c link_vsg_to_vs()
// decides, and warns when it cannot: a virtual server whose family is
// known (ip_family, or a real or sorry server not tunnelled) is ignored
// when its group holds addresses of both families ("virtual server group
// with IPv4 & IPv6 doesn't match virtual server - ignoring") or of the
// other family only ("address family doesn't match virtual server -
// ignoring"). Only a virtual server whose servers all use TUN may take a
// group of both families.
func (p *parser) groupFamilyFits(vs *VirtualServer, grp *VirtualServerGroup, name string) bool {
	if grp == nil {
		return true
	}
	own := ownFamily(vs)
	if own == 0 {
		return true
	}
	has := map[Family]bool{}
	for _, e := range grp.Entries {
		if e.Family != 0 {
			has[e.Family] = true
		}
	}
	switch {
	case has[Inet] && has[Inet6]:
		p.warnf(vs.Pos, "virtual_server %s: virtual_server_group %s holds IPv4 and IPv6 entries, which only a virtual server whose real servers all use TUN may take; this virtual server is ignored, as keepalived does", name, grp.Name)
		return false
	case len(has) == 1 && !has[own]:
		p.warnf(vs.Pos, "virtual_server %s: virtual_server_group %s is not of the family of its real servers (%s); this virtual server is ignored, as keepalived does", name, grp.Name, map[Family]string{Inet: "IPv4", Inet6: "IPv6"}[own])
		return false
	}
	return true
}

// ownFamily is the family keepalived has given vs when it links its group:
// its ip_family, else that of its first real server not tunnelled
// (check_parser.c rs_end_handler), else that of a sorry server not
// tunnelled (vs_end_handler); 0 when all are tunnelled.
func ownFamily(vs *VirtualServer) Family {
	if vs.Family != 0 {
		return vs.Family
	}
	for _, rs := range vs.RealServers {
		if rs.Forwarding.Method != TUN {
			return inet.FamilyOf(rs.Addr)
		}
	}
	if ss := vs.SorryServer; ss != nil && ss.Forwarding.Method != TUN {
		return inet.FamilyOf(ss.Addr)
	}
	return 0
}

// serversFamily returns the family of vs: its own, else the one its real
// and sorry servers give it. A server's lb_kind here is the one it had
// when its block was read (its own, or the virtual server's so far): an
// unset one is not TUN. keepalived 2.2.7 check_parser.c: rs_end_handler()
// gives the family of the first real server not tunnelled, and
// vs_end_handler() then that of a sorry server not tunnelled; when all are
// tunnelled (a fwmark service), that of the sorry and real servers when
// they agree, else IPv4.
func serversFamily(vs *VirtualServer) Family {
	if f := ownFamily(vs); f != 0 {
		return f
	}
	ss := vs.SorryServer
	if vs.Group != "" {
		return Inet
	}
	var f Family
	if ss != nil {
		f = inet.FamilyOf(ss.Addr)
	}
	for _, rs := range vs.RealServers {
		switch {
		case f == 0:
			f = inet.FamilyOf(rs.Addr)
		case f != inet.FamilyOf(rs.Addr):
			return Inet
		}
	}
	if f == 0 {
		return Inet
	}
	return f
}

// vsGroup returns the virtual_server_group vs names (nil for none); false
// when it names one that does not exist, and vs is to be ignored.
func (p *parser) vsGroup(vs *VirtualServer) (*VirtualServerGroup, bool) {
	if vs.Group == "" {
		return nil, true
	}
	if g := p.groupNamed(vs.Group); g != nil {
		return g, true
	}
	names, _ := p.objects("virtual_server_group")
	// keepalived 2.2.7 ipwrapper.c link_vsg_to_vs(): "Virtual server group
	// specified but not configured - ignoring virtual server".
	p.warnf(vs.Pos, "no virtual_server_group named %s; this virtual server is ignored, as keepalived does%s", vs.Group, didYouMean(vs.Group, names))
	return nil, false
}

// groupNamed returns the virtual_server_group of that name, or nil.
func (p *parser) groupNamed(name string) *VirtualServerGroup {
	names, _ := p.objects("virtual_server_group")
	for j, n := range names {
		if n == name {
			return &p.cfg.VSGroups[j]
		}
	}
	return nil
}

// resolveRealServers resolves the real servers of vs, drops those
// keepalived skips, and returns the total weight of the others.
func (p *parser) resolveRealServers(vs *VirtualServer, m *vsMeta, name string) int {
	written := make([]uint16, len(vs.RealServers)) // the ports as written
	for j := range vs.RealServers {
		rs := &vs.RealServers[j]
		rm := &m.rs[j]
		written[j] = rs.Port
		p.resolveRealServer(vs, m, rs, rm, name)
	others:
		for k := 0; k < j && !rm.dropped; k++ {
			o := &vs.RealServers[k]
			if o.Addr != rs.Addr || m.rs[k].dropped {
				continue
			}
			switch {
			case o.Port == rs.Port && written[j] == written[k]:
				// keepalived: "real server is duplicated - removing
				// second rs".
				p.warnf(rs.Pos, "virtual_server %s: real_server %s is already defined at %s; this one is ignored, as keepalived does", name, netip.AddrPortFrom(rs.Addr, rs.Port), o.Pos)
				rm.dropped = true
			case o.Port == rs.Port:
				// fixPort gave a DR or TUN real server the service's
				// port. keepalived 2.2.7 (check_data.c
				// validate_check_config) looks for duplicates before it
				// resets the ports, so it keeps both, and both name one
				// IPVS destination.
				p.warnf(rs.Pos, "virtual_server %s: real_server %s is %s with %s, the real server at %s: keepalived keeps both, adds the destination twice (IPVS refuses the second: File exists), and either one's failing checker removes it while the other passes; vigil keeps the first one and its checkers only",
					name, netip.AddrPortFrom(rs.Addr, written[j]), netip.AddrPortFrom(rs.Addr, rs.Port), rs.Forwarding.Method, o.Pos)
				rm.dropped = true
			case vs.Group != "" && rs.Forwarding.Method != NAT && o.Forwarding.Method != NAT:
				// A group's DR or TUN real server keeps its port for its
				// checkers, but its IPVS destination takes each group
				// entry's port (keepalived ipvswrapper.c ipvs_group_cmd),
				// as every DR and TUN destination takes its service's:
				// the two are one destination (lb.Policy installs it
				// while either is alive).
				p.warnf(rs.Pos, "virtual_server %s: real_server %s has the address of the real server at %s; with %s a destination takes the service's port, so both are one destination: keepalived adds it twice (IPVS refuses the second: File exists), and either one's failing checker removes it while the other passes; vigil installs it while either passes",
					name, netip.AddrPortFrom(rs.Addr, rs.Port), o.Pos, rs.Forwarding.Method)
				break others // once, for the first of them
			}
		}
	}
	keptRS, keptMeta := vs.RealServers[:0], m.rs[:0]
	weightSum := 0
	for j := range vs.RealServers {
		if !m.rs[j].dropped {
			keptRS, keptMeta = append(keptRS, vs.RealServers[j]), append(keptMeta, m.rs[j])
			weightSum += vs.RealServers[j].Weight
		}
	}
	vs.RealServers, m.rs = keptRS, keptMeta
	return weightSum
}

// resolveSorryServer gives the sorry server its forwarding method and port,
// or drops it when its family differs from the virtual server's.
func (p *parser) resolveSorryServer(vs *VirtualServer, name string) {
	ss := vs.SorryServer
	if ss == nil {
		return
	}
	if ss.Forwarding.Method == "" {
		ss.Forwarding = vs.Forwarding
	}
	if ss.Forwarding.Method != TUN && inet.FamilyOf(ss.Addr) != vs.Family {
		// keepalived: "... don't match - skipping sorry server".
		p.warnf(ss.Pos, "virtual_server %s: sorry_server %s is not of the virtual server's family; the sorry server is ignored, as keepalived does", name, ss.Addr)
		vs.SorryServer = nil
		return
	}
	p.fixPort(vs, &ss.Port, ss.Forwarding.Method, ss.Pos, "sorry_server", name)
}

// sorryInhibit gives a sorry server that is also a real server the real
// server's inhibit_on_failure (keepalived check_data.c
// validate_check_config: "matches sorry server, but inhibit setting
// differs").
func (p *parser) sorryInhibit(vs *VirtualServer, name string) {
	ss := vs.SorryServer
	if ss == nil {
		return
	}
	for _, rs := range vs.RealServers {
		if rs.Addr == ss.Addr && rs.Port == ss.Port && rs.InhibitOnFailure != ss.Inhibit {
			p.warnf(rs.Pos, "virtual_server %s: real_server %s is also the sorry_server, with another inhibit_on_failure; the sorry server takes the real server's (%v), as keepalived does", name, netip.AddrPortFrom(rs.Addr, rs.Port), rs.InhibitOnFailure)
			ss.Inhibit = rs.InhibitOnFailure
		}
	}
}

// quorum lowers a quorum above the total weight of the real servers to that
// weight, then a hysteresis not below the quorum to the quorum less one
// (keepalived check_data.c validate_check_config), each with one warning
// that names the value used.
func (p *parser) quorum(vs *VirtualServer, weightSum int, at func(string) diag.Pos, name string) {
	if len(vs.RealServers) > 0 && vs.Quorum > weightSum {
		p.warnf(at("quorum"), "virtual_server %s: quorum %d exceeds the total weight %d of the real servers; %d is used, as keepalived does", name, vs.Quorum, weightSum, weightSum)
		vs.Quorum = weightSum
	}
	if vs.Hysteresis >= vs.Quorum && vs.Hysteresis > 0 {
		h := max(vs.Quorum-1, 0)
		p.warnf(at("hysteresis"), "virtual_server %s: hysteresis %d must be below quorum %d; %d is used, as keepalived does", name, vs.Hysteresis, vs.Quorum, h)
		vs.Hysteresis = h
	}
}

// maxServices bounds the kernel services one virtual server may expand to
// (the addresses of its group's ranges and its fwmarks).
const maxServices = 65536

// service is one kernel service a virtual server expands to.
type service struct {
	family Family
	proto  Protocol
	addr   netip.Addr
	port   uint16
	mark   uint32
}

func (s service) String() string {
	if s.mark != 0 {
		return fmt.Sprintf("fwmark %d %s", s.mark, s.family)
	}
	return fmt.Sprintf("%s %s", s.proto, netip.AddrPortFrom(s.addr, s.port))
}

// claimServices records the kernel services vs expands to in claimed and
// reports false, with a warning, when vs expands to too many or to one that
// an earlier virtual server already holds: that virtual server is ignored.
func (p *parser) claimServices(vs *VirtualServer, grp *VirtualServerGroup, name string, claimed map[service]string) bool {
	var svcs []service
	switch {
	case grp != nil:
		n := uint64(0)
		for _, e := range grp.Entries {
			if e.FWMark != 0 {
				n++
			} else {
				n += rangeSize(e.First, e.Last)
			}
		}
		if n > maxServices {
			p.warnf(vs.Pos, "virtual_server %s: group %s expands to more than %d services; this virtual server is ignored", name, grp.Name, maxServices)
			return false
		}
		for _, e := range grp.Entries {
			if e.FWMark != 0 {
				f := e.Family
				if f == 0 {
					f = vs.Family
				}
				svcs = append(svcs, service{family: f, mark: e.FWMark})
				continue
			}
			for a := e.First; a.IsValid() && a.Compare(e.Last) <= 0; a = a.Next() {
				svcs = append(svcs, service{family: inet.FamilyOf(a), proto: vs.Protocol, addr: a, port: e.Port})
			}
		}
	case vs.FWMark != 0:
		svcs = []service{{family: vs.Family, mark: vs.FWMark}}
	default:
		svcs = []service{{family: inet.FamilyOf(vs.Addr), proto: vs.Protocol, addr: vs.Addr, port: vs.Port}}
	}
	for _, s := range svcs {
		if other, ok := claimed[s]; ok {
			p.warnf(vs.Pos, "virtual_server %s: service %s is also defined by virtual_server %s; this virtual server is ignored", name, s, other)
			return false
		}
	}
	for _, s := range svcs {
		claimed[s] = name
	}
	return true
}

// rangeSize is the number of addresses from first to last inclusive,
// saturating at the largest uint64.
func rangeSize(first, last netip.Addr) uint64 {
	a := new(big.Int).SetBytes(first.AsSlice())
	b := new(big.Int).SetBytes(last.AsSlice())
	d := new(big.Int).Sub(b, a)
	if d.Sign() < 0 {
		return 0
	}
	if !d.IsUint64() || d.Uint64() == ^uint64(0) {
		return ^uint64(0)
	}
	return d.Uint64() + 1
}

func (m *vsMeta) seenFlag(name string) bool { _, ok := m.seen.at(name); return ok }

// fixPort applies keepalived's port rules: without NAT a real server uses
// the virtual server's port (or none for fwmarks).
func (p *parser) fixPort(vs *VirtualServer, port *uint16, method Method, pos diag.Pos, what, name string) {
	if method == NAT {
		if vs.FWMark == 0 && vs.Group == "" && *port == 0 {
			*port = vs.Port
		}
		return
	}
	switch {
	case vs.FWMark != 0:
		if *port != 0 {
			p.warnf(pos, "virtual_server %s: %s port %d is ignored for a fwmark service without NAT", name, what, *port)
			*port = 0
		}
	case vs.Group != "":
		p.groupPorts(vs, *port, method, pos, what, name)
	default:
		if *port == 0 {
			*port = vs.Port
		} else if *port != vs.Port {
			p.warnf(pos, "virtual_server %s: %s port %d differs from the virtual server's %d; with %s the port cannot change, %d is used", name, what, *port, vs.Port, method, vs.Port)
			*port = vs.Port
		}
	}
}

// groupPorts reports a DR or TUN server's port that a group cannot use.
// keepalived 2.2.7 (check_data.c validate_check_config) keeps the port,
// which the server's checkers use, and reports "ports don't match" for
// each address entry of another port, or "port will be ignored" when the
// group has fwmark entries; the destination takes each entry's port
// (ipvswrapper.c ipvs_group_cmd), none for a mark. vigil's data plane does
// the same.
func (p *parser) groupPorts(vs *VirtualServer, port uint16, method Method, pos diag.Pos, what, name string) {
	grp := p.groupNamed(vs.Group)
	if grp == nil || port == 0 {
		return
	}
	var first *VSGroupEntry
	others, marks := 0, false
	for i := range grp.Entries {
		e := &grp.Entries[i]
		switch {
		case e.FWMark != 0:
			marks = true
		case e.Port == port:
		case first == nil:
			first = e
		default:
			others++
		}
	}
	if first != nil {
		more := ""
		if others > 0 {
			more = fmt.Sprintf(" and %d other entr%s", others, map[bool]string{true: "y", false: "ies"}[others == 1])
		}
		said := "ports don't match"
		if what == "sorry_server" {
			said = "port will be ignored"
		}
		p.warnf(pos, "virtual_server %s: %s port %d differs from the port %d of the virtual_server_group %s entry at %s%s; with %s the destination takes each entry's port and only the checkers use %d, as keepalived does (it reports %q)",
			name, what, port, first.Port, grp.Name, first.Pos, more, method, port, said)
	}
	if marks {
		p.warnf(pos, "virtual_server %s: %s port %d is ignored for the fwmark entries of virtual_server_group %s with %s (only the checkers use it), as keepalived does", name, what, port, grp.Name, method)
	}
}

func (p *parser) resolveRealServer(vs *VirtualServer, vm *vsMeta, rs *RealServer, rm *rsMeta, name string) {
	g := &p.cfg.Global
	if rs.Forwarding.Method == "" {
		rs.Forwarding = vs.Forwarding
	}
	if rs.Forwarding.Method != TUN && inet.FamilyOf(rs.Addr) != vs.Family {
		// keepalived check_parser.c: "... don't match - skipping real
		// server".
		p.warnf(rs.Pos, "virtual_server %s: real_server %s is not of the virtual server's family (only TUN may mix families); the real server is ignored, as keepalived does", name, rs.Addr)
		rm.dropped = true
	}
	p.fixPort(vs, &rs.Port, rs.Forwarding.Method, rs.Pos, "real_server", name)
	if rs.Weight == unset {
		rs.Weight = vs.Weight
	}
	rs.Alpha = rm.alpha.Or(vs.Alpha)
	rs.InhibitOnFailure = rm.inhibit.Or(vs.InhibitOnFailure)
	// keepalived keeps smtp_alert on for real servers by default.
	rs.SMTPAlert = rm.smtpAlert.Or(g.SMTPAlertChecker.Or(g.SMTPAlert.Or(true)))

	retry := rm.retry
	if retry == unset {
		retry = vm.retry
	}
	connTO := rm.connectTimeout
	if connTO == unset {
		connTO = vs.ConnectTimeout
	}
	delayLoop := rm.delayLoop
	if delayLoop == unset {
		delayLoop = vs.DelayLoop
	}
	warmup := rm.warmup
	if warmup == unset {
		warmup = vm.warmup
	}
	dbr := rm.delayBeforeRetry
	if dbr == unset {
		dbr = vm.delayBeforeRetry
	}
	var dropCk []int
	defer func() {
		for n := len(dropCk) - 1; n >= 0; n-- {
			k := dropCk[n]
			rs.Checkers = append(rs.Checkers[:k], rs.Checkers[k+1:]...)
			rm.checkers = append(rm.checkers[:k], rm.checkers[k+1:]...)
		}
	}()
	for k := range rs.Checkers {
		ch := &rs.Checkers[k]
		cm := rm.checkers[k]
		ch.Alpha = cm.alpha.Or(rs.Alpha)
		// keepalived check_api.c queue_checker(): default retry 1 and
		// delay_before_retry 1s; HTTP/SSL_GET 3s; DNS_CHECK 3 retries
		// and delay_before_retry = delay_loop; MISC_CHECK 0 retries.
		defRetry, defDBR := 1, time.Second
		switch ch.Type {
		case HTTPGet, SSLGet:
			defDBR = 3 * time.Second
		case DNSCheck:
			defRetry, defDBR = 3, 0
		case MiscCheck:
			defRetry = 0
		}
		if ch.Retry == unset {
			ch.Retry = retry
			if ch.Retry < 0 {
				ch.Retry = defRetry
			}
		}
		if ch.Type != MiscCheck && ch.Type != FileCheck && ch.Type != BFDCheck && ch.ConnectTimeout == unset {
			ch.ConnectTimeout = connTO
		}
		if ch.ConnectTimeout < 0 {
			ch.ConnectTimeout = 0
		}
		if ch.DelayLoop == unset {
			ch.DelayLoop = delayLoop
		}
		if ch.Warmup == unset {
			ch.Warmup = warmup
			if ch.Warmup < 0 {
				ch.Warmup = ch.DelayLoop
			}
		}
		if ch.DelayBeforeRetry == unset {
			ch.DelayBeforeRetry = dbr
			if ch.DelayBeforeRetry < 0 {
				ch.DelayBeforeRetry = defDBR
				if defDBR == 0 {
					ch.DelayBeforeRetry = ch.DelayLoop
				}
			}
		}
		switch ch.Type {
		case MiscCheck:
			if ch.Misc.Timeout == unset || ch.Misc.Timeout == 0 {
				// keepalived: misc_timeout 0 means the virtual server's
				// delay_loop.
				ch.Misc.Timeout = vs.DelayLoop
			}
		case FileCheck:
			// keepalived 2.2.7 check_file.c: the track_file is looked up
			// where the line is read ("track_file not found"), and a
			// FILE_CHECK left without one is dropped ("FILE_CHECK has no
			// track_file specified - ignoring").
			pos, _ := cm.seen.at("track_file")
			i, ok := p.trackedLookup("track_file", ch.File.TrackFile, posOr(pos, ch.Pos))
			if !ok {
				p.warnf(ch.Pos, "FILE_CHECK has no usable track_file; the checker is ignored, as keepalived does")
				dropCk = append(dropCk, k)
				continue
			}
			if ch.File.Weight == unset {
				ch.File.Weight, ch.File.Reverse = p.cfg.TrackFiles[i].Weight, p.cfg.TrackFiles[i].Reverse
			}
			if ch.File.Weight == unset {
				ch.File.Weight = 1
			}
		case BFDCheck:
			// keepalived 2.2.7 check_bfd.c bfd_name_handler() resolves
			// the name where it reads it: "BFD_CHECK - BFD NAME not
			// configured" (also for a bfd_instance further down), and
			// the checker is dropped.
			names, pos := p.objects("bfd_instance")
			known := false
			for i, n := range names {
				known = known || (n == ch.BFDName && !after(pos[i], ch.Pos))
			}
			if !known {
				p.warnf(ch.Pos, "BFD_CHECK: no bfd_instance named %s above this line; the checker is ignored, as keepalived does (\"BFD %s not configured\")%s", ch.BFDName, ch.BFDName, didYouMean(ch.BFDName, names))
				dropCk = append(dropCk, k)
				continue
			}
		case SMTPCheck:
			for h := range ch.SMTP.Hosts {
				host := &ch.SMTP.Hosts[h]
				if host.ConnectTimeout == unset {
					host.ConnectTimeout = ch.ConnectTimeout
				}
				host.Retry, host.DelayBeforeRetry, host.DelayLoop, host.Warmup = ch.Retry, ch.DelayBeforeRetry, ch.DelayLoop, ch.Warmup
				host.Alpha = ch.Alpha
			}
		}
	}
}

// swallowedConfig warns about a comment that contains configuration, as
// when a page glued lines together and '#' hid the rest of a line
// (keepalived.conf(5): comments "can start anywhere in a line").
func swallowedConfig(ix *keywordIndex, text string) []string {
	if len(text) < 12 {
		return nil
	}
	found := map[string]bool{}
	for i := 0; i < len(text); {
		if !isNameChar(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isNameChar(text[j]) {
			j++
		}
		// A keyword glued to the end of a word ("50protocol",
		// "masterinterface") is found by trying each suffix; it must be
		// followed by a value.
		if j+1 < len(text) && (text[j] == ' ' || text[j] == '\t') && text[j+1] != ' ' && text[j+1] != '\t' {
			for s := i; s < j; s++ {
				if w := text[s:j]; len(w) >= 4 && isNameStart(w[0]) && ix.isKeyword(w) {
					found[w] = true
					break
				}
			}
		}
		i = j
	}
	if len(found) < 3 {
		return nil
	}
	more := strings.Count(text, "#") + strings.Count(text, "!") + strings.Count(text, "{") + strings.Count(text, "}")
	if more == 0 && len(found) < 4 {
		return nil
	}
	return sortedKeys(found)
}

// sortDiagnostics orders diagnostics by position and removes exact
// duplicates.
func sortDiagnostics(ds diag.Diagnostics) diag.Diagnostics {
	ds.Sort()
	out := ds[:0]
	for i, d := range ds {
		if i > 0 && d == ds[i-1] {
			continue
		}
		out = append(out, d)
	}
	return out
}
