// Package translate turns a checked configuration (internal/config) into
// what the runtimes run (internal/runspec): the VRRP engine's Spec
// (FromConfig) and the director's DirectorSpec (DirectorFromConfig). It
// prepares scripts and checkers and reports, at their configuration
// positions, what it still finds wrong; the specs it returns hold no
// positions, so that a reload compares them. It starts nothing and needs no
// root to test.
package translate

import (
	"errors"
	"fmt"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/garp"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/procwatch"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/script"
	"github.com/vigil-ha/vigil/internal/track"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// FromConfig resolves a loaded keepalived.conf into the engine's Spec. The
// configuration must be free of errors (config.Load's diagnostics); what
// FromConfig still finds wrong (a combination the state machine refuses) is
// reported at the instance's position.
//
// Scripts are prepared here (resolved on the PATH, checked against
// enable_script_security): a script that cannot run is reported at its
// position and left out, as keepalived disables it.
func FromConfig(c *config.Config) (runspec.Spec, diag.Diagnostics) {
	var ds diag.Diagnostics
	g := c.Global
	spec := runspec.Spec{RouterID: g.RouterID, GARPInterval: g.VRRPGARPInterval, GNAInterval: g.VRRPGNAInterval, StartupDelay: g.VRRPStartupDelay}
	nm := newNames()
	spec.StaticRoutes, spec.StaticRules = staticOf(nm, c, &ds)
	sp := newScriptPreparer(g, &ds)

	scripts := map[string]bool{}
	for _, vs := range c.Scripts {
		p := sp.prepare(vs.Script, "vrrp_script "+vs.Name)
		if p == nil {
			continue
		}
		scripts[vs.Name] = true
		spec.Scripts = append(spec.Scripts, runspec.ScriptSpec{Name: vs.Name, Script: p, Interval: vs.Interval, Timeout: vs.Timeout, Rise: vs.Rise, Fall: vs.Fall, InitFail: vs.InitFail})
	}
	tracked := map[string]bool{}
	for _, in := range c.Instances {
		for _, t := range in.TrackFiles {
			tracked[t.Name] = true
		}
	}
	for _, sg := range c.SyncGroups {
		for _, t := range sg.TrackFiles {
			tracked[t.Name] = true
		}
	}
	goneFiles := goneTrackFiles(c, tracked, &ds)
	for _, f := range c.TrackFiles {
		if goneFiles[f.Name] {
			continue
		}
		spec.Files = append(spec.Files, runspec.FileSpec{Name: f.Name, Path: f.File, InitSet: f.Init, InitValue: f.InitValue, InitOverwrite: f.InitOverwrite})
	}
	for _, tp := range c.TrackProcesses {
		ps := procwatch.NewSpec(tp.Name, tp.Process)
		ps.Params = tp.Params
		switch tp.ParamMatch {
		case "exact":
			ps.ParamMatch = procwatch.MatchExact
		case "partial":
			ps.ParamMatch = procwatch.MatchPartial
		case "initial":
			ps.ParamMatch = procwatch.MatchInitial
		}
		ps.FullCommand = tp.FullCommand
		ps.Quorum = uint32(max(tp.Quorum, 0))
		if tp.QuorumMax >= 0 {
			ps.QuorumMax = uint32(tp.QuorumMax)
		}
		ps.ForkDelay, ps.TerminateDelay = tp.ForkDelay, tp.TerminateDelay
		spec.Processes = append(spec.Processes, ps)
	}

	groupOf := map[string]*config.SyncGroup{}
	for i := range c.SyncGroups {
		sg := &c.SyncGroups[i]
		for _, m := range sg.Instances {
			groupOf[m] = sg
		}
		spec.SyncGroups = append(spec.SyncGroups, runspec.SyncGroupSpec{
			Name: sg.Name, Members: sg.Instances, SMTPAlert: sg.SMTPAlert,
			Notify: sp.notifyScripts("vrrp_sync_group "+sg.Name, sg.NotifyMaster, sg.NotifyBackup, sg.NotifyFault, sg.NotifyStop, config.Command{}, sg.Notify, config.Command{}, false),
		})
	}
	vmacs := vmacNames(g, c.Instances)
	if len(c.Instances) > 0 {
		spec.Instances = make([]runspec.InstanceSpec, 0, len(c.Instances))
	}
	for _, in := range c.Instances {
		is, err := instanceSpec(nm, g, in, &ds)
		if err == nil {
			err = applyVMAC(&is, in, vmacs[in.Name])
		}
		if err != nil {
			ds.Errorf(in.Pos, "vrrp_instance %s: %v", in.Name, err)
			continue
		}
		sg := groupOf[in.Name]
		is.Trackers = trackRefs(in, sg, scripts, goneFiles, &ds)
		is.Notify = sp.notifyScripts("vrrp_instance "+in.Name, in.NotifyMaster, in.NotifyBackup, in.NotifyFault, in.NotifyStop, in.NotifyDeleted, in.Notify, in.NotifyMasterRxLowerPri, in.NotifyDeletedSet)
		is.SMTPAlert = in.SMTPAlert
		is.NotifyPriorityChanges = in.NotifyPriorityChanges
		spec.Instances = append(spec.Instances, is)
	}
	return spec, ds
}

// trackRefs collects an instance's trackers, its sync group's included.
// keepalived: in a sync group, member trackers lose their weight (a failure
// faults the group) unless sync_group_tracking_weight. A track_file in
// goneFiles is left out (reported at its block by goneTrackFiles).
func trackRefs(in config.VRRPInstance, sg *config.SyncGroup, scripts, goneFiles map[string]bool, ds *diag.Diagnostics) []runspec.TrackRef {
	var refs []runspec.TrackRef
	zero := sg != nil && !sg.TrackingWeight
	add := func(kind track.Kind, ts []config.Tracked, group bool) {
		for _, t := range ts {
			if kind == track.Script && !scripts[t.Name] {
				ds.Warnf(t.Pos, "track_script %s: the script cannot run (see above); not tracked", t.Name)
				continue
			}
			if kind == track.File && goneFiles[t.Name] {
				continue
			}
			w := t.Weight
			if zero && !group && w != 0 {
				ds.Warnf(t.Pos, "%s %s: weight %d ignored in sync group %s (set sync_group_tracking_weight to keep it)", kind, t.Name, w, sg.Name)
				w = 0
			}
			refs = append(refs, runspec.TrackRef{Kind: kind, Name: t.Name, Weight: w, Reverse: t.Reverse})
		}
	}
	add(track.Interface, in.TrackInterfaces, false)
	add(track.Script, in.TrackScripts, false)
	add(track.File, in.TrackFiles, false)
	add(track.Process, in.TrackProcesses, false)
	if sg != nil {
		add(track.Interface, sg.TrackInterfaces, true)
		add(track.Script, sg.TrackScripts, true)
		add(track.File, sg.TrackFiles, true)
		add(track.Process, sg.TrackProcesses, true)
	}
	return refs
}

// scriptPreparer prepares commands under global_defs' script policy.
type scriptPreparer struct {
	pol    script.Policy
	def    script.Cred
	defErr error
	ds     *diag.Diagnostics
}

func newScriptPreparer(g config.Global, ds *diag.Diagnostics) *scriptPreparer {
	def, err := script.DefaultCred(g.ScriptUser, g.ScriptGroup, g.EnableScriptSecurity)
	return &scriptPreparer{pol: script.Policy{Security: g.EnableScriptSecurity}, def: def, defErr: err, ds: ds}
}

// prepare returns the runnable script, or nil after reporting why not.
func (sp *scriptPreparer) prepare(c config.Command, what string) *script.Prepared {
	if !c.IsSet() {
		return nil
	}
	cred := sp.def
	if c.User != "" {
		cr, err := script.LookupUser(c.User, c.Group)
		if err != nil {
			// keepalived cannot set the script's uid/gid and does not run it.
			sp.ds.Warnf(c.Pos, "%s: %v; the script is disabled, as keepalived does", what, err)
			return nil
		}
		cred = cr
	} else if sp.defErr != nil {
		// keepalived 2.2.7 reports the missing default script user and
		// disables every script without a user of its own; it runs on.
		sp.ds.Warnf(c.Pos, "%s: %v; the script is disabled, as keepalived does", what, sp.defErr)
		return nil
	}
	p, err := script.Prepare(script.Command{Args: c.Args, Cred: cred, Pos: c.Pos, What: what}, sp.pol)
	if err != nil {
		// keepalived disables a script it may not run and goes on.
		sp.ds.Warnf(c.Pos, "%s: not run: %v", what, errMsg(err))
		return nil
	}
	for _, w := range p.Warnings {
		sp.ds.Warnf(c.Pos, "%s: %s", what, w)
	}
	return p
}

// ScriptSecurityViolation tells whether keepalived 2.2.7 reports a script
// security violation for the file (CONFIG_SECURITY_ERROR: "SECURITY
// VIOLATION - scripts are being executed but script_security not
// enabled", and -t exits 6): enable_script_security is off and at least
// one configured script's program file is there (check_script_secure sets
// SC_ISSCRIPT once it finds the file, executable or not). A script whose
// user does not exist is not loaded, so not checked.
func ScriptSecurityViolation(c *config.Config) bool {
	if c.Global.EnableScriptSecurity {
		return false
	}
	var ds diag.Diagnostics
	sp := newScriptPreparer(c.Global, &ds)
	for _, cmd := range c.ScriptCommands() {
		cred := sp.def
		if cmd.User != "" {
			cr, err := script.LookupUser(cmd.User, cmd.Group)
			if err != nil {
				continue
			}
			cred = cr
		} else if sp.defErr != nil {
			continue
		}
		_, err := script.Prepare(script.Command{Args: cmd.Args, Cred: cred}, sp.pol)
		if err == nil || !errors.Is(err, script.ErrNotFound) {
			return true
		}
	}
	return false
}

func errMsg(err error) string {
	var se *script.Error
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	return err.Error()
}

func (sp *scriptPreparer) notifyScripts(owner string, master, backup, fault, stop, deleted, generic, rxLower config.Command, notifyDeleted bool) notify.Scripts {
	return notify.Scripts{
		Master:           sp.prepare(master, "notify_master of "+owner),
		Backup:           sp.prepare(backup, "notify_backup of "+owner),
		Fault:            sp.prepare(fault, "notify_fault of "+owner),
		Stop:             sp.prepare(stop, "notify_stop of "+owner),
		Deleted:          sp.prepare(deleted, "notify_deleted of "+owner),
		Notify:           sp.prepare(generic, "notify of "+owner),
		MasterRxLowerPri: sp.prepare(rxLower, "notify_master_rx_lower_pri of "+owner),
		NotifyDeleted:    notifyDeleted,
	}
}

func instanceSpec(nm *names, g config.Global, in config.VRRPInstance, ds *diag.Diagnostics) (runspec.InstanceSpec, error) {
	v6 := in.Family == config.Inet6
	vc := vrrp.Config{
		Name:                 in.Name,
		VRID:                 uint8(in.VRID),
		Version:              uint8(in.Version),
		Priority:             uint8(in.Priority),
		AdvertInt:            in.AdvertInt,
		NoPreempt:            in.Nopreempt,
		PreemptDelay:         in.PreemptDelay,
		Source:               in.SourceIP,
		Unicast:              in.Unicast,
		DownTimerAdverts:     in.DownTimerAdverts,
		SkipCheckAdvAddr:     in.SkipCheckAdvAddr,
		LowerPrioNoAdvert:    in.LowerPrioNoAdvert,
		HigherPrioSendAdvert: in.HigherPrioSendAdvert,
		// vigil: a planned stop hands over make-before-break (the peers
		// still see an RFC priority-0 advert).
		HandoverOnStop: true,
		// As keepalived 2.2.7: only check_unicast_src (or
		// vrrp_check_unicast_src) drops unicast adverts from sources that
		// are not peers; without it the engine logs them.
		CheckUnicastSrc: in.Unicast && in.CheckUnicastSrc,
	}
	switch in.OldUnicastChecksum {
	case "always":
		vc.OldUnicastChecksum = vrrp.OldChecksumAlways
	case "never":
		vc.OldUnicastChecksum = vrrp.OldChecksumNever
	}
	switch in.State {
	case config.Master:
		vc.InitialState = vrrp.StateMaster
	case config.Backup:
		vc.InitialState = vrrp.StateBackup
	}
	if vc.Version == packet.Version2 && !v6 {
		switch in.Auth.Type {
		case config.AuthPass:
			vc.AuthType = packet.AuthPass
			copy(vc.AuthPass[:], in.Auth.Pass)
		case config.AuthAH:
			// keepalived's IPsec AH: the same 8 bytes key the HMAC.
			vc.AuthType = packet.AuthAH
			copy(vc.AuthPass[:], in.Auth.Pass)
		}
	}
	for _, p := range in.UnicastPeers {
		vc.Peers = append(vc.Peers, vrrp.Peer{Addr: p.Addr, MinTTL: p.MinTTL, MaxTTL: p.MaxTTL})
	}
	spec := runspec.InstanceSpec{
		Interface:          in.Interface,
		IPv6:               v6,
		Group:              in.McastGroup,
		DontTrackPrimary:   in.DontTrackPrimary,
		PromoteSecondaries: in.PromoteSecondaries,
		UnicastTTL:         in.UnicastTTL,
		// RFC 5798 §6.1 accept mode; the address owner always accepts.
		NoAccept: !in.Accept && in.Priority != 255,
		Strict:   in.StrictMode,
		GARP: garp.Config{
			Repeat:          in.GARPMasterRepeat,
			Delay:           in.GARPMasterDelay,
			Refresh:         in.GARPMasterRefresh,
			RefreshRepeat:   in.GARPMasterRefreshRepeat,
			LowerPrioRepeat: in.GARPLowerPrioRepeat,
			LowerPrioDelay:  in.GARPLowerPrioDelay,
		},
	}
	if spec.Interface == "" {
		return runspec.InstanceSpec{}, fmt.Errorf("no interface (vigil needs one, also with unicast peers)")
	}
	if !spec.Group.IsValid() && !in.Unicast {
		if v6 {
			spec.Group = g.VRRPMcastGroup6
		} else {
			spec.Group = g.VRRPMcastGroup4
		}
	}
	for _, a := range in.VirtualIPs {
		v, err := vipOf(a, in.Interface)
		if err != nil {
			return runspec.InstanceSpec{}, err
		}
		spec.VIPs = append(spec.VIPs, v)
		if v.Addr().Is6() == v6 {
			vc.VIPs = append(vc.VIPs, v.Addr())
		}
	}
	// A route or rule keepalived 2.2.7 leaves out (a table it cannot
	// resolve, a bad value), or one of the few vigil cannot program (encap,
	// vrf), is left out with a warning (an error under vigil check
	// --strict); the instance runs.
	for _, r := range in.VirtualRoutes {
		nr, err := routeOf(nm, r, in.Interface, func(format string, args ...any) {
			ds.Warnf(r.Pos, "vrrp_instance %s: virtual route %s: "+format, append([]any{in.Name, r.Dst}, args...)...)
		})
		if err != nil {
			ds.Warnf(r.Pos, "vrrp_instance %s: %v", in.Name, err)
			continue
		}
		spec.Routes = append(spec.Routes, nr)
	}
	for _, r := range in.VirtualRules {
		nr, err := ruleOf(nm, r, func(format string, args ...any) {
			ds.Warnf(r.Pos, "vrrp_instance %s: virtual rule: "+format, append([]any{in.Name}, args...)...)
		})
		if err != nil {
			ds.Warnf(r.Pos, "vrrp_instance %s: %v", in.Name, err)
			continue
		}
		spec.Rules = append(spec.Rules, nr)
	}
	for _, a := range in.ExcludedIPs {
		v, err := vipOf(a, in.Interface)
		if err != nil {
			return runspec.InstanceSpec{}, err
		}
		spec.ExcludedVIPs = append(spec.ExcludedVIPs, v)
	}
	spec.VRRP = vc
	return spec, nil
}

// vipOf converts a virtual_ipaddress line into a netif.VIP.
func vipOf(a config.Address, defDev string) (netif.VIP, error) {
	v := netif.VIP{
		Prefix:  a.Prefix,
		Dev:     a.Dev,
		Label:   a.Label,
		Peer:    a.Peer,
		KeepDAD: a.NoDAD, // config.NoDAD is keepalived's "-nodad": keep DAD
	}
	if v.Dev == "" {
		v.Dev = defDev
	}
	v.Broadcast = a.BroadcastAddr()
	if a.Scope != "" {
		s, err := netif.ParseScope(a.Scope)
		if err != nil {
			return netif.VIP{}, fmt.Errorf("%s: %w", a.Prefix, err)
		}
		v.Scope = s
	}
	if a.Home {
		v.Flags |= netif.FlagHome
	}
	if a.NoPrefixRoute {
		v.Flags |= netif.FlagNoPrefixRoute
	}
	if a.MngTmpAddr {
		v.Flags |= netif.FlagMngTmpAddr
	}
	if a.AutoJoin {
		v.Flags |= netif.FlagAutoJoin
	}
	if a.PreferredLftSet {
		lft := uint32(0xffffffff)
		if a.PreferredLft >= 0 {
			lft = uint32(a.PreferredLft)
		}
		v.PreferredLft = &lft
	}
	return v, v.Validate()
}
