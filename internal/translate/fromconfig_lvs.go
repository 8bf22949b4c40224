package translate

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/probe"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/script"
)

// DirectorSources returns the configuration's virtual servers that keepalived
// installs, in the order of DirectorSpec.VirtualServers: DirectorFromConfig
// translates the i-th into VirtualServers[i], its j-th real server into
// Reals[j] (internal/config has already applied keepalived's corrections and
// reported them).
func DirectorSources(c *config.Config) []*config.VirtualServer {
	groups := map[string]bool{}
	for _, g := range c.VSGroups {
		groups[g.Name] = true
	}
	var out []*config.VirtualServer
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		if vs.Installed() && (vs.Group == "" || groups[vs.Group]) {
			out = append(out, vs)
		}
	}
	return out
}

// DirectorFromConfig translates the virtual servers of a configuration into
// the director's spec.
func DirectorFromConfig(c *config.Config) (runspec.DirectorSpec, diag.Diagnostics) {
	var ds diag.Diagnostics
	sp := newScriptPreparer(c.Global, &ds)
	spec := runspec.DirectorSpec{
		Backend:         c.Global.LVSBackend,
		LVSFlush:        c.Global.LVSFlush,
		LVSFlushOnStop:  c.Global.LVSFlushOnStop,
		RSInitNotifies:  c.Global.RSInitNotifies,
		SyncedConntrack: c.ConntrackSync != nil,
		Scripts:         map[string]*script.Prepared{},
	}
	groups := map[string]*lb.Group{}
	for _, g := range c.VSGroups {
		lg := &lb.Group{Name: g.Name}
		for _, e := range g.Entries {
			if e.FWMark != 0 {
				lg.FWMarks = append(lg.FWMarks, lb.GroupMark{Mark: e.FWMark, Family: e.Family})
			} else {
				lg.Ranges = append(lg.Ranges, lb.GroupRange{First: e.First, Last: e.Last, Port: e.Port})
			}
		}
		groups[g.Name] = lg
	}
	checked := map[string]bool{}
	for _, vs := range DirectorSources(c) {
		for _, rs := range vs.RealServers {
			for _, ck := range rs.Checkers {
				if ck.File != nil {
					checked[ck.File.TrackFile] = true
				}
			}
		}
	}
	goneFiles := goneTrackFiles(c, checked, &ds)
	files := map[string]config.TrackFile{}
	for _, f := range c.TrackFiles {
		if !goneFiles[f.Name] {
			files[f.Name] = f
		}
	}
	scriptKey := func(cmd config.Command, what string) string {
		if !cmd.IsSet() {
			return ""
		}
		key := strings.Join(cmd.Args, " ")
		if cmd.User != "" {
			key += " [user " + cmd.User + "]"
		}
		if _, ok := spec.Scripts[key]; !ok {
			if p := sp.prepare(cmd, what); p != nil {
				spec.Scripts[key] = p
			}
		}
		return key
	}

	groupSeq := map[string]int{}
	for _, vs := range DirectorSources(c) {
		lv := lb.VirtualServer{
			Addr:   vs.Addr,
			Port:   vs.Port,
			Proto:  lbProto(vs.Protocol),
			FWMark: vs.FWMark,
			Family: vs.Family,

			Scheduler:          string(vs.Scheduler),
			Flags:              schedFlags(*vs),
			Method:             lbMethod(vs.Forwarding.Method),
			PersistenceTimeout: uint32(vs.PersistenceTimeout / time.Second),
			PersistenceEngine:  vs.PersistenceEngine,
			Quorum:             uint32(max(vs.Quorum, 0)),
			Hysteresis:         uint32(max(vs.Hysteresis, 0)),
			QuorumUp:           scriptKey(vs.QuorumUp, "quorum_up of virtual_server "+vs.Pos.String()),
			QuorumDown:         scriptKey(vs.QuorumDown, "quorum_down of virtual_server "+vs.Pos.String()),
			Omega:              vs.Omega,
			HASuspend:          vs.HASuspend,
			Virtualhost:        vs.Virtualhost,
		}
		if vs.Group != "" {
			lv.Group = groups[vs.Group]
			lv.GroupSeq = groupSeq[vs.Group]
			groupSeq[vs.Group]++
		}
		if g, err := granularity(*vs); err != nil {
			ds.Errorf(vs.Pos, "persistence_granularity %s: %v", vs.PersistenceGranularity, err)
		} else {
			lv.PersistenceGranularity = g
		}
		if ss := vs.SorryServer; ss != nil {
			lv.Sorry = &lb.RealServer{Addr: ss.Addr, Port: ss.Port, Method: lbMethod(ss.Forwarding.Method), Tunnel: lbRealTunnel(ss.Forwarding)}
			lv.SorryInhibit = ss.Inhibit
		}
		for _, rs := range vs.RealServers {
			lr := lb.RealServer{
				Addr: rs.Addr, Port: rs.Port, Weight: uint32(max(rs.Weight, 0)),
				Method: lbMethod(rs.Forwarding.Method), UThreshold: uint32(max(rs.UThreshold, 0)), LThreshold: uint32(max(rs.LThreshold, 0)),
				Inhibit: rs.InhibitOnFailure, Virtualhost: rs.Virtualhost,
				NotifyUp:   scriptKey(rs.NotifyUp, "notify_up of real_server "+rs.Pos.String()),
				NotifyDown: scriptKey(rs.NotifyDown, "notify_down of real_server "+rs.Pos.String()),
				Tunnel:     lbRealTunnel(rs.Forwarding),
			}
			rc := realCheck(c, &ds, *vs, rs, lb.RealID{VS: lv.ID(), Addr: lr.AddrPort()}, files, goneFiles)
			lr.Alpha = startsDown(rc)
			lv.Reals = append(lv.Reals, lr)
			spec.Checks = append(spec.Checks, rc)
		}
		spec.VirtualServers = append(spec.VirtualServers, lv)
	}
	return spec, ds
}

// startsDown reports whether a real server starts out of the service: when
// one of its checkers starts down. keepalived 2.2.7 check_data.c
// validate_check_config marks each alpha checker failed, and
// ipwrapper.c init_service_rs adds a real server with no failed checker;
// `alpha` on a real server or virtual server only sets its checkers'
// default, so one without checkers, or whose checkers say `alpha no`, or
// with only a FILE_CHECK (check_file.c clears alpha), starts up.
func startsDown(rc runspec.RealCheck) bool {
	for _, c := range rc.Checkers {
		if h := check.NewHealth(c.Policy); !h.Up() {
			return true
		}
	}
	return false
}

// realCheck prepares the checkers of one real server, identified by id.
func realCheck(c *config.Config, ds *diag.Diagnostics, vs config.VirtualServer, rs config.RealServer, id lb.RealID, files map[string]config.TrackFile, goneFiles map[string]bool) runspec.RealCheck {
	rc := runspec.RealCheck{ID: id, Weight: rs.Weight}
	ap := id.Addr
	for i, ck := range rs.Checkers {
		if ck.File != nil && goneFiles[ck.File.TrackFile] {
			// Its track_file was removed (reported at the block): the
			// checker goes with it, as keepalived drops the real
			// server's tracker.
			continue
		}
		cs, err := checkerSpec(c, ck, vs, rs, ap, files)
		var ue *scriptUserError
		if errors.As(err, &ue) {
			// keepalived disables a misc_path it cannot run as its user
			// and runs on without that checker.
			ds.Warnf(ck.Pos, "%s: %v; the checker's script is disabled and the checker left out, as keepalived does", ck.Type, ue.err)
			continue
		}
		if err != nil {
			ds.Errorf(ck.Pos, "%s: %v", ck.Type, err)
			continue
		}
		cs.Name = fmt.Sprintf("%s %s", ck.Type, ap)
		if len(rs.Checkers) > 1 {
			cs.Name = fmt.Sprintf("%s#%d %s", ck.Type, i+1, ap)
		}
		rc.Checkers = append(rc.Checkers, cs)
	}
	return rc
}

func checkerSpec(c *config.Config, ck config.Checker, vs config.VirtualServer, rs config.RealServer, ap netip.AddrPort, files map[string]config.TrackFile) (runspec.CheckerSpec, error) {
	kind, ok := check.ParseKind(string(ck.Type))
	if !ok {
		return runspec.CheckerSpec{}, fmt.Errorf("not supported")
	}
	pol := check.Defaults(kind, ck.DelayLoop)
	pol.Retry, pol.DelayBeforeRetry, pol.Warmup, pol.Alpha = ck.Retry, ck.DelayBeforeRetry, ck.Warmup, ck.Alpha
	if kind == check.KindFile {
		pol = check.Defaults(kind, 0)
	}
	conn := probe.Conn{Addr: ap, ConnectIP: ck.ConnectIP, ConnectPort: ck.ConnectPort, BindTo: ck.BindTo, BindPort: ck.BindPort, BindIf: ck.BindIf, FWMark: ck.FWMark, Timeout: ck.ConnectTimeout}
	var chk check.Checker
	switch kind {
	case check.KindTCP:
		chk = &probe.TCP{Conn: conn}
	case check.KindHTTP, check.KindSSL:
		h := &probe.HTTP{Conn: conn, SSL: kind == check.KindSSL}
		if ck.HTTP != nil {
			h.VirtualHost = firstNonEmpty(ck.HTTP.Virtualhost, rs.Virtualhost, vs.Virtualhost)
			h.SNI = ck.HTTP.EnableSNI
			pol.FastRecovery = ck.HTTP.FastRecovery
			if ck.HTTP.Protocol != "" {
				pr, err := probe.ParseProtocol(ck.HTTP.Protocol)
				if err != nil {
					return runspec.CheckerSpec{}, err
				}
				h.Protocol = pr
			}
			for _, u := range ck.HTTP.URLs {
				pu := probe.URL{Path: u.Path, Digest: u.Digest, VirtualHost: u.Virtualhost, RegexNoMatch: u.RegexNoMatch, RegexMinOffset: u.RegexMinOffset, RegexMaxOffset: u.RegexMaxOffset}
				for _, sr := range u.StatusCodes {
					pu.Status = append(pu.Status, probe.StatusRange{Min: sr.Min, Max: sr.Max})
				}
				if u.Regex != "" {
					re, err := regexp.Compile(u.RegexFlags() + u.Regex)
					if err != nil {
						return runspec.CheckerSpec{}, fmt.Errorf("url %s: regex: %w", u.Path, err)
					}
					pu.Regex = re
				}
				h.URLs = append(h.URLs, pu)
			}
		}
		pol.Steps = max(len(h.URLs), 1)
		chk = h
	case check.KindMisc:
		if ck.Misc == nil || !ck.Misc.Path.IsSet() {
			return runspec.CheckerSpec{}, fmt.Errorf("no misc_path")
		}
		m := &probe.Misc{Argv: ck.Misc.Path.Args, Timeout: ck.Misc.Timeout, Dynamic: ck.Misc.Dynamic}
		user, group := ck.Misc.Path.User, ck.Misc.Path.Group
		if user == "" {
			user, group = c.Global.ScriptUser, c.Global.ScriptGroup
		}
		var cred script.Cred
		var err error
		if user != "" {
			cred, err = script.LookupUser(user, group)
		} else {
			cred, err = script.DefaultCred("", "", c.Global.EnableScriptSecurity)
		}
		if err != nil {
			return runspec.CheckerSpec{}, &scriptUserError{err}
		}
		// Checked and run as every other script (script.Prepare, Runner):
		// enable_script_security refuses an insecure one here and before
		// each run (keepalived: "Disabling misc script ... due to
		// insecure"), and a file without "#!" runs with /bin/sh.
		p, err := script.Prepare(script.Command{Args: ck.Misc.Path.Args, Cred: cred, Pos: ck.Misc.Path.Pos, What: "misc_path"},
			script.Policy{Security: c.Global.EnableScriptSecurity})
		if err != nil {
			return runspec.CheckerSpec{}, &scriptUserError{errors.New(errMsg(err))}
		}
		m.Run = probe.ScriptRun(script.NewRunner(script.RunnerOptions{}), p)
		chk = m
	case check.KindSMTP:
		s := &probe.SMTP{Conn: conn}
		if ck.SMTP != nil {
			s.HeloName = ck.SMTP.HeloName
		}
		chk = s
	case check.KindDNS:
		d := &probe.DNS{Conn: conn}
		if ck.DNS != nil {
			if ck.DNS.Type != "" {
				t, err := probe.ParseDNSType(ck.DNS.Type)
				if err != nil {
					return runspec.CheckerSpec{}, err
				}
				d.Type = t
			}
			d.Name = ck.DNS.Name
		}
		chk = d
	case check.KindUDP:
		u := &probe.UDP{Conn: conn}
		if ck.UDP != nil {
			u.Payload, u.RequireReply, u.Reply, u.ReplyMask = ck.UDP.Payload, ck.UDP.RequireReply, ck.UDP.ReplyData, ck.UDP.ReplyMask
			u.MinReplyLen, u.MaxReplyLen = ck.UDP.MinReplyLength, ck.UDP.MaxReplyLength
		}
		chk = u
	case check.KindPing:
		chk = &probe.Ping{Conn: conn}
	case check.KindFile:
		if ck.File == nil {
			return runspec.CheckerSpec{}, fmt.Errorf("no track_file")
		}
		tf, ok := files[ck.File.TrackFile]
		if !ok {
			return runspec.CheckerSpec{}, fmt.Errorf("track_file %s is not defined", ck.File.TrackFile)
		}
		chk = &probe.File{Path: tf.File, Weight: ck.File.Weight, Reverse: ck.File.Reverse}
	default:
		return runspec.CheckerSpec{}, fmt.Errorf("not supported by vigil")
	}
	if err := pol.Validate(); err != nil {
		return runspec.CheckerSpec{}, err
	}
	// Key: what the checker checks, positions excluded, for reloads. The
	// timing (retry, delay_before_retry, delay_loop, warmup, alpha) is left
	// out: keepalived 2.2.7 compares the connection and the check's own
	// parameters (check_api.c compare_conn_opts, the checkers' compare
	// functions) and migrate_checkers keeps the state of a checker whose
	// timing changed; the new Policy applies to the resumed state.
	key := fmt.Sprintf("%s|%s|%+v", ck.Type, ap, config.Checker{Type: ck.Type, ConnectIP: ck.ConnectIP, ConnectPort: ck.ConnectPort, BindTo: ck.BindTo, BindPort: ck.BindPort,
		BindIf: ck.BindIf, FWMark: ck.FWMark, ConnectTimeout: ck.ConnectTimeout})
	key += fmt.Sprintf("|%v|%v|%v|%v|%v|%v", deref(positionFreeHTTP(ck.HTTP)), deref(ck.SMTP), deref(ck.DNS), deref(ck.UDP), deref(positionFreeMisc(ck.Misc)), deref(ck.File))
	return runspec.CheckerSpec{Key: key, Policy: pol, Checker: chk}, nil
}

// positionFreeHTTP is an HTTP_GET / SSL_GET block without the positions of
// its urls, so that a checker whose lines moved keeps its key.
func positionFreeHTTP(h *config.HTTPCheck) *config.HTTPCheck {
	if h == nil {
		return nil
	}
	c := *h
	c.URLs = slices.Clone(h.URLs)
	for i := range c.URLs {
		c.URLs[i].Pos = diag.Pos{}
	}
	return &c
}

// positionFreeMisc is a MISC_CHECK block without misc_path's position and
// without misc_timeout, which keepalived's compare_misc_check (check_misc.c)
// leaves out too: it is timing, like delay_loop, its default.
func positionFreeMisc(m *config.MiscParam) *config.MiscParam {
	if m == nil {
		return nil
	}
	c := *m
	c.Path.Pos = diag.Pos{}
	c.Timeout = 0
	return &c
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func lbProto(p config.Protocol) lb.Protocol {
	switch p {
	case config.UDP:
		return lb.UDP
	case config.SCTP:
		return lb.SCTP
	case config.TCP:
		return lb.TCP
	}
	return 0
}

func lbMethod(m config.Method) lb.Method {
	switch m {
	case config.NAT:
		return lb.NAT
	case config.DR:
		return lb.DR
	case config.TUN:
		return lb.TUN
	}
	return lb.MethodDefault
}

func lbTunnel(f config.Forwarding) lb.Tunnel {
	t := lb.Tunnel{Port: f.TunnelPort}
	switch f.TunnelType {
	case "gue":
		t.Type = lb.TunnelGUE
	case "gre":
		t.Type = lb.TunnelGRE
	}
	switch f.TunnelCsum {
	case "csum":
		t.Csum = 1
	case "remcsum":
		t.Csum = 2
	}
	return t
}

// lbRealTunnel is a real (or sorry) server's tunnel: zero unless TUN.
func lbRealTunnel(f config.Forwarding) lb.Tunnel {
	if f.Method != config.TUN {
		return lb.Tunnel{}
	}
	return lbTunnel(f)
}

// granularity converts persistence_granularity into IPVS's netmask: an IPv4
// dotted mask, or an IPv6 prefix length.
func granularity(vs config.VirtualServer) (uint32, error) {
	g := vs.PersistenceGranularity
	if g == "" {
		return 0, nil
	}
	if a, err := netip.ParseAddr(g); err == nil && a.Is4() {
		b := a.As4()
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
	}
	var n uint32
	if _, err := fmt.Sscanf(g, "%d", &n); err == nil && n <= 128 {
		return n, nil
	}
	return 0, fmt.Errorf("want an IPv4 netmask or an IPv6 prefix length")
}

// schedFlags maps ops, flag-N, sh-* and mh-* onto IPVS service flags (the
// nftables data plane warns about those it cannot honour).
func schedFlags(vs config.VirtualServer) lb.Flags {
	var f lb.Flags
	if vs.OPS {
		f |= lb.FlagOnePacket
	}
	for _, name := range vs.SchedFlags {
		switch name {
		case "flag-1", "sh-fallback", "mh-fallback":
			f |= lb.FlagSched1
		case "flag-2", "sh-port", "mh-port":
			f |= lb.FlagSched2
		case "flag-3":
			f |= lb.FlagSched3
		}
	}
	return f
}

// scriptUserError is a MISC_CHECK whose script cannot run: no user to run
// as, or refused by script.Prepare (missing, not executable, insecure).
type scriptUserError struct{ err error }

func (e *scriptUserError) Error() string { return e.err.Error() }
func (e *scriptUserError) Unwrap() error { return e.err }
