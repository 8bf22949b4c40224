package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/inet"
)

// meta is what the parser remembers beside the model for the checks and
// defaults that run after parsing: which keywords were given where, and
// tri-state settings the model stores resolved.
type meta struct {
	global  *seen
	inst    []instMeta
	scripts []*seen
	groups  []*seen
	vs      []vsMeta
	tfiles  []*seen
	tprocs  []*seen
}

type instMeta struct {
	seen *seen
	// familyFrom says what set the instance's family, for messages.
	familyFrom string
	familyPos  diag.Pos
	accept     OptBool
	strict     OptBool
	lowerPrio  OptBool
	higherPrio OptBool
	smtpAlert  OptBool
	notifyPrio OptBool
	skipCheck  OptBool
	// unicastKw is set by any unicast keyword (keepalived
	// VRRP_FLAG_UNICAST_CONFIGURED).
	unicastKw bool
	ttlSet    bool
	// lvsSyncd is the deprecated lvs_sync_daemon_interface.
	lvsSyncd token
	// vipLines and peerLines count virtual_ipaddress and unicast_peer
	// entries, valid or not.
	vipLines, peerLines int
}

// rootBlock is the top level of keepalived.conf.
var rootBlock = newBlock(rootName,
	rOther("linkbeat_use_polling", whyLinkbeat),
	rOther("net_namespace", whyNetns),
	rOther("net_namespace_ipvs", whyNetns),
	rOther("namespace_with_ipsets", whyNetns),
	rOther("use_pid_dir", whyProcess),
	rOther("instance", whyProcess),
	rOther("child_wait_time", whyProcess),
	k("global_defs", 0, 0, func(p *parser, s *stmt, c *Config) {
		if c.Global.Pos.Line == 0 {
			c.Global.Pos = s.kw.pos
		}
		sn := parseBody(p, globalBlock, &c.Global, s.open)
		if p.meta.global == nil {
			p.meta.global = sn
		} else {
			for _, k := range sn.kw {
				p.meta.global.add(k.name, k.pos)
			}
		}
	}).opens(globalBlock).multiple(),
	k("track_group", 1, 1, func(p *parser, s *stmt, c *Config) {
		g := TrackGroup{Pos: s.kw.pos, Name: s.args[0].text}
		parseBody(p, trackGroupBlock, &g, s.open)
		c.TrackGroups = append(c.TrackGroups, g)
	}).opens(trackGroupBlock).multiple().unsup(whyStatic),
	k("static_ipaddress", 0, 0, func(p *parser, s *stmt, c *Config) {
		p.values(s, func(e *stmt) {
			if a, ok := p.parseAddress(e, true); ok {
				c.StaticAddresses = append(c.StaticAddresses, a)
			}
		})
	}).valueBlock().multiple().unsup(whyStatic),
	k("static_routes", 0, 0, func(p *parser, s *stmt, c *Config) {
		p.values(s, func(e *stmt) {
			if r, ok := p.parseRoute(e, true); ok {
				c.StaticRoutes = append(c.StaticRoutes, r)
			}
		})
	}).valueBlock().multiple(),
	k("static_rules", 0, 0, func(p *parser, s *stmt, c *Config) {
		p.values(s, func(e *stmt) {
			if r, ok := p.parseRule(e, true); ok {
				p.defaultRulePreference(&r)
				c.StaticRules = append(c.StaticRules, r)
			}
		})
	}).valueBlock().multiple(),
	k("vrrp_sync_group", 1, 1, func(p *parser, s *stmt, c *Config) {
		g := SyncGroup{Pos: s.kw.pos, Name: s.args[0].text}
		p.meta.groups = append(p.meta.groups, parseBody(p, syncGroupBlock, &g, s.open))
		c.SyncGroups = append(c.SyncGroups, g)
	}).opens(syncGroupBlock).multiple(),
	// vigil extension: conntrackd replicating the NAT table (conntrack.go).
	k("conntrack_sync", 0, 0, conntrackSyncRoot).opens(conntrackSyncBlock).multiple(),
	k("garp_group", 0, 0, func(p *parser, s *stmt, c *Config) {
		g := GARPGroup{Pos: s.kw.pos}
		sn := parseBody(p, garpGroupBlock, &g, s.open)
		_, hasIf := sn.at("interface")
		_, hasIfs := sn.at("interfaces")
		if hasIf && hasIfs {
			p.warnf(s.kw.pos, "garp_group has both interface and interfaces; give only one")
		}
		if g.GARPInterval == 0 && g.GNAInterval == 0 {
			// keepalived: "garp group does not have any delay set -
			// removing".
			p.warnf(s.kw.pos, "garp_group sets neither garp_interval nor gna_interval; the group is ignored, as keepalived does")
			return
		}
		c.GARPGroups = append(c.GARPGroups, g)
	}).opens(garpGroupBlock).multiple().unsup(whyTracking),
	k("linkbeat_interfaces", 0, 0, func(p *parser, s *stmt, c *Config) {
		p.values(s, func(e *stmt) {
			li := LinkbeatInterface{Pos: e.kw.pos, Name: e.kw.text}
			if len(e.args) > 0 {
				if v, ok := p.enumArg(e.args[0], "linkbeat type", "MII", "ETHTOOL", "IOCTL"); ok {
					li.Type = v
				}
			}
			c.LinkbeatInterfaces = append(c.LinkbeatInterfaces, li)
		})
	}).valueBlock().multiple().unsup(whyLinkbeat),
	k("vrrp_instance", 1, 1, func(p *parser, s *stmt, c *Config) {
		// Read straight into the list: nothing else appends to it while
		// the block is read.
		c.Instances = append(c.Instances, VRRPInstance{Pos: s.kw.pos, Name: s.args[0].text, UnicastTTL: -1,
			GARPMasterDelay: -1, GARPMasterRepeat: -1, GARPMasterRefresh: -1, GARPMasterRefreshRepeat: -1,
			GARPLowerPrioDelay: -1, GARPLowerPrioRepeat: -1, GARPExtraIf: -1, DownTimerAdverts: -1})
		vi := &c.Instances[len(c.Instances)-1]
		p.meta.inst = append(p.meta.inst, instMeta{})
		m := &p.meta.inst[len(p.meta.inst)-1]
		m.seen = parseBody(p, instanceBlock, vi, s.open)
	}).opens(instanceBlock).multiple(),
	k("vrrp_script", 1, 1, func(p *parser, s *stmt, c *Config) {
		sc := VRRPScript{Pos: s.kw.pos, Name: s.args[0].text, Interval: time.Second, Rise: 1, Fall: 1}
		sn := parseBody(p, scriptBlock, &sc, s.open)
		if !sc.Script.IsSet() {
			// keepalived 2.2.7 vrrp_script_end_handler(): "No script set
			// for vrrp_script - removing"; trackers naming it are then
			// "not found, ignoring".
			p.warnf(s.kw.pos, "vrrp_script %s has no script; the vrrp_script is ignored (and every track_script naming it), as keepalived does", sc.Name)
			return
		}
		p.meta.scripts = append(p.meta.scripts, sn)
		c.Scripts = append(c.Scripts, sc)
	}).opens(scriptBlock).multiple(),
	k("vrrp_track_process", 1, 1, func(p *parser, s *stmt, c *Config) {
		tp := TrackProcess{Pos: s.kw.pos, Name: s.args[0].text, Quorum: 1, QuorumMax: -1}
		sn := parseBody(p, trackProcessBlock, &tp, s.open)
		if tp.Process == "" {
			// keepalived leaves a vrrp_track_process without a process
			// out; trackers naming it are "not found, ignoring".
			p.warnf(s.kw.pos, "vrrp_track_process %s has no process; it is ignored (and every track_process naming it), as keepalived does", tp.Name)
			return
		}
		if tp.QuorumMax >= 0 && tp.Quorum > tp.QuorumMax {
			// keepalived checks the pair on whichever line comes second
			// and ignores that line.
			qpos, _ := sn.at("quorum")
			mpos, _ := sn.at("quorum_max")
			if after(qpos, mpos) {
				p.warnf(qpos, "vrrp_track_process %s: quorum %d is greater than quorum_max %d; this line is ignored (quorum 1), as keepalived does", tp.Name, tp.Quorum, tp.QuorumMax)
				tp.Quorum = 1
			} else {
				p.warnf(mpos, "vrrp_track_process %s: quorum_max %d is less than quorum %d; this line is ignored (no maximum), as keepalived does", tp.Name, tp.QuorumMax, tp.Quorum)
				tp.QuorumMax = -1
			}
		}
		if tp.QuorumMax == 0 {
			tp.Quorum = 0
		}
		p.meta.tprocs = append(p.meta.tprocs, sn)
		c.TrackProcesses = append(c.TrackProcesses, tp)
	}).opens(trackProcessBlock).multiple(),
	k("interface_up_down_delays", 0, 0, func(p *parser, s *stmt, c *Config) {
		p.values(s, func(e *stmt) {
			d := InterfaceDelay{Pos: e.kw.pos, Interface: e.kw.text}
			if !p.ifnameOK(e.kw, "interface") {
				return
			}
			if len(e.args) == 0 {
				p.warnf(e.kw.pos, "interface_up_down_delays %s: no delay given; ignored, as keepalived does", e.kw.text)
				return
			}
			if len(e.args) > 2 {
				p.warnf(e.args[2].pos, "extra value %q ignored", e.args[2].text)
			}
			if v, ok := p.timerArg(e.args[0], "down delay", 0, 255*time.Second); ok {
				d.Down = v
			}
			if len(e.args) > 1 {
				if v, ok := p.timerArg(e.args[1], "up delay", 0, 255*time.Second); ok {
					d.Up = v
				}
			}
			c.InterfaceDelays = append(c.InterfaceDelays, d)
		})
	}).valueBlock().multiple().unsup(whyTracking),
	k("track_file", 1, 1, trackFileRoot).opens(trackFileBlock).multiple(),
	k("vrrp_track_file", 1, 1, trackFileRoot).opens(trackFileBlock).multiple().deprecate("track_file"),
	k("bfd_instance", 1, 1, func(p *parser, s *stmt, c *Config) {
		b := BFDInstance{Pos: s.kw.pos, Name: s.args[0].text}
		parseBody(p, bfdBlock, &b, s.open)
		c.BFDInstances = append(c.BFDInstances, b)
	}).opens(bfdBlock).multiple().unsup(whyBFD),
	k("SSL", 0, 0, func(p *parser, s *stmt, c *Config) {
		if c.SSL != nil {
			p.warnf(s.kw.pos, "SSL given again (first at %s); the last one is used", c.SSL.Pos)
		}
		ssl := SSL{Pos: s.kw.pos}
		parseBody(p, sslBlock, &ssl, s.open)
		c.SSL = &ssl
	}).opens(sslBlock).multiple(),
	k("virtual_server_group", 1, 1, vsGroup).valueBlock().multiple(),
	k("virtual_server", 1, 2, virtualServer).opens(vsBlock).multiple(),
	// vigil extension: the BGP speaker (internal/config/bgp.go).
	bgpKeyword(),
)

func rOther(name, why string) *kw[Config] {
	return other(name, why, func(c *Config) *[]Setting { return &c.Global.Other })
}

var trackGroupBlock = newBlock("track_group",
	k("group", 0, 0, func(p *parser, s *stmt, g *TrackGroup) {
		p.values(s, func(e *stmt) {
			g.Instances = append(g.Instances, e.kw.text)
			for _, a := range e.args {
				g.Instances = append(g.Instances, a.text)
			}
		})
	}).valueBlock(),
)

var garpGroupBlock = newBlock("garp_group",
	timer("garp_interval", 0, maxTimer, func(g *GARPGroup) *time.Duration { return &g.GARPInterval }),
	timer("gna_interval", 0, maxTimer, func(g *GARPGroup) *time.Duration { return &g.GNAInterval }),
	k("interface", 1, 1, func(p *parser, s *stmt, g *GARPGroup) {
		if p.ifnameOK(s.args[0], "interface") {
			g.Interfaces = append(g.Interfaces, s.args[0].text)
		}
	}),
	k("interfaces", 0, 0, func(p *parser, s *stmt, g *GARPGroup) {
		p.values(s, func(e *stmt) {
			for _, t := range append([]token{e.kw}, e.args...) {
				if p.ifnameOK(t, "interface") {
					g.Interfaces = append(g.Interfaces, t.text)
				}
			}
		})
	}).valueBlock(),
)

var bfdBlock = func() *block[BFDInstance] {
	var kws []*kw[BFDInstance]
	for _, n := range []string{"neighbor_ip", "neighbour_ip", "source_ip", "min_rx", "min_tx", "idle_tx", "multiplier", "passive", "ttl", "hoplimit", "max_hops", "weight", "vrrp", "checker"} {
		// The block as a whole is reported as unsupported; its keywords
		// are only kept.
		kws = append(kws, k(n, 0, -1, func(p *parser, s *stmt, b *BFDInstance) {
			st := Setting{Pos: s.kw.pos, Keyword: s.kw.text}
			for _, a := range s.args {
				st.Args = append(st.Args, a.text)
			}
			b.Settings = append(b.Settings, st)
		}))
	}
	return newBlock("bfd_instance", kws...)
}()

// scriptBlock is vrrp_script.
var scriptBlock = newBlock("vrrp_script",
	k("script", 1, -1, func(p *parser, s *stmt, sc *VRRPScript) {
		u, g := sc.Script.User, sc.Script.Group
		sc.Script = p.program(s)
		sc.Script.User, sc.Script.Group = u, g
	}),
	// keepalived 2.2.7: interval and timeout are whole seconds; 0 is
	// raised to 1 with an error.
	scriptSeconds("interval", func(sc *VRRPScript) *time.Duration { return &sc.Interval }),
	scriptSeconds("timeout", func(sc *VRRPScript) *time.Duration { return &sc.Timeout }),
	k("weight", 1, 2, func(p *parser, s *stmt, sc *VRRPScript) {
		if v, ok := p.intArg(s.args[0], "weight", -253, 253); ok {
			sc.Weight = int(v)
		}
		if len(s.args) > 1 {
			if _, ok := p.enumArg(s.args[1], "weight option", "reverse"); ok {
				sc.Reverse = true
			}
		}
	}),
	count("rise", 1, maxInt, func(sc *VRRPScript) *int { return &sc.Rise }),
	count("fall", 1, maxInt, func(sc *VRRPScript) *int { return &sc.Fall }),
	k("user", 1, 2, func(p *parser, s *stmt, sc *VRRPScript) {
		sc.Script.User = s.args[0].text
		if len(s.args) > 1 {
			sc.Script.Group = s.args[1].text
		}
	}),
	flagKw("init_fail", func(sc *VRRPScript) *bool { return &sc.InitFail }),
)

// scriptSeconds is vrrp_script's interval or timeout: whole seconds up to
// maxSecs; 0 is raised to 1 with a warning, as keepalived 2.2.7 does
// (vrrp_parser.c vrrp_tscript_interval_handler, vrrp_tscript_timeout_handler:
// "must be greater than 0, setting to 1").
func scriptSeconds(name string, field func(sc *VRRPScript) *time.Duration) *kw[VRRPScript] {
	return k(name, 1, 1, func(p *parser, s *stmt, sc *VRRPScript) {
		d, ok := p.secondsArg(s.args[0], name, 0, maxSecs)
		if !ok {
			return
		}
		if d == 0 {
			p.warnf(s.args[0].pos, "vrrp_script %s 0 must be greater than 0; set to 1s, as keepalived does", name)
			d = time.Second
		}
		*field(sc) = d
	})
}

// trackProcessBlock is vrrp_track_process.
var trackProcessBlock = newBlock("vrrp_track_process",
	k("process", 1, -1, func(p *parser, s *stmt, tp *TrackProcess) {
		if tp.Process != "" {
			p.warnf(s.kw.pos, "process already given for vrrp_track_process %s; this line is ignored, as keepalived does", tp.Name)
			return
		}
		// keepalived 2.2.7 vrrp_tprocess_process_handler() takes the
		// line's words as the configuration lexer splits them (double
		// quotes group, nothing else is special): the first is the
		// process, the others its parameters.
		words := make([]string, len(s.args))
		for i, a := range s.args {
			words[i] = a.text
		}
		if strings.ContainsAny(words[0], " \t") {
			p.warnf(s.args[0].pos, "process %q: keepalived takes the quoted text as one process name, spaces included, so hardly a process matches it, in vigil either (write the parameters after the name, unquoted)", words[0])
		}
		tp.Process = words[0]
		if len(words) > 1 {
			tp.Params = words[1:]
			if tp.ParamMatch == "" {
				tp.ParamMatch = "exact"
			}
			tp.FullCommand = true
		}
	}),
	k("param_match", 0, 1, func(p *parser, s *stmt, tp *TrackProcess) {
		tp.FullCommand = true
		tp.ParamMatch = "exact"
		if len(s.args) > 0 {
			if v, ok := p.enumArg(s.args[0], "param_match", "initial", "partial"); ok {
				tp.ParamMatch = v
			}
		}
	}),
	k("weight", 1, 2, func(p *parser, s *stmt, tp *TrackProcess) {
		if v, ok := p.intArg(s.args[0], "weight", -254, 254); ok {
			tp.Weight = int(v)
		}
		if len(s.args) > 1 {
			if _, ok := p.enumArg(s.args[1], "weight option", "reverse"); ok {
				tp.Reverse = true
			}
		}
	}),
	count("quorum", 1, 65535, func(tp *TrackProcess) *int { return &tp.Quorum }),
	count("quorum_max", 0, 65535, func(tp *TrackProcess) *int { return &tp.QuorumMax }),
	k("delay", 1, 1, func(p *parser, s *stmt, tp *TrackProcess) {
		if d, ok := p.timerArg(s.args[0], "delay", time.Microsecond, time.Hour); ok {
			tp.ForkDelay, tp.TerminateDelay = d, d
		}
	}),
	timer("terminate_delay", time.Microsecond, time.Hour, func(tp *TrackProcess) *time.Duration { return &tp.TerminateDelay }),
	timer("fork_delay", time.Microsecond, time.Hour, func(tp *TrackProcess) *time.Duration { return &tp.ForkDelay }),
	flagKw("full_command", func(tp *TrackProcess) *bool { return &tp.FullCommand }),
)

// trackFileBlock is track_file (keepalived trackers/track_file.c).
var trackFileBlock = newBlock("track_file",
	str("file", func(tf *TrackFile) *string { return &tf.File }),
	k("weight", 1, 2, func(p *parser, s *stmt, tf *TrackFile) {
		if v, ok := p.intArg(s.args[0], "weight", -254, 254); ok {
			tf.Weight = int(v)
		}
		if len(s.args) > 1 {
			if _, ok := p.enumArg(s.args[1], "weight option", "reverse"); ok {
				tf.Reverse = true
			}
		}
	}),
	k("init_file", 0, 2, func(p *parser, s *stmt, tf *TrackFile) {
		tf.Init = true
		for _, a := range s.args {
			if a.text == "overwrite" {
				tf.InitOverwrite = true
				continue
			}
			if v, ok := p.intArg(a, "init_file value", -254, 254); ok {
				tf.InitValue = int(v)
			}
		}
	}),
)

func trackFileRoot(p *parser, s *stmt, c *Config) {
	tf := TrackFile{Pos: s.kw.pos, Name: s.args[0].text, Weight: 1}
	sn := parseBody(p, trackFileBlock, &tf, s.open)
	if tf.File == "" {
		// keepalived: "No file set for track_file - ignoring".
		p.warnf(s.kw.pos, "track_file %s has no file; it is ignored (and every tracker naming it), as keepalived does", tf.Name)
		return
	}
	p.meta.tfiles = append(p.meta.tfiles, sn)
	c.TrackFiles = append(c.TrackFiles, tf)
}

// trackList parses a track_* value block: NAME [weight N [reverse|noreverse]],
// as keepalived 2.2.7 does (vrrp_track.c alloc_track_if, alloc_track_script;
// track_file.c vrrp_alloc_track_file; checked against its SIGUSR1 dump):
//
//   - an option other than weight, or weight without a value, drops the entry;
//   - a weight that is not a number in -254..254 keeps the entry with the
//     default weight (the tracked object's own, 0 for an interface);
//   - where the range is -253..253 (interfaces, scripts), +/-254 becomes
//     +/-253;
//   - the reverse flag is the tracked object's own unless the entry says
//     reverse or noreverse; another word there is ignored, except in
//     track_file, where it drops the entry.
func (p *parser) trackList(s *stmt, list *[]Tracked, min, max int64, noreverse bool) {
	kind := s.kw.text
	p.values(s, func(e *stmt) {
		t := Tracked{Pos: e.kw.pos, Name: e.kw.text}
		if len(e.args) > 0 {
			if e.args[0].text != "weight" {
				p.warnf(e.args[0].pos, "%s %s: unknown option %q (want weight); the entry is ignored, as keepalived does", kind, t.Name, e.args[0].text)
				return
			}
			if len(e.args) < 2 {
				p.warnf(e.args[0].pos, "%s %s: weight needs a value; the entry is ignored, as keepalived does", kind, t.Name)
				return
			}
			w := e.args[1]
			v, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimLeft(w.text, " \t"), "+"), 10, 64)
			switch {
			case err != nil || v < -254 || v > 254:
				dflt := "weight 0"
				switch kind {
				case "track_script":
					dflt = "the vrrp_script's own weight"
				case "track_file":
					dflt = "the track_file's own weight"
				case "track_process":
					dflt = "the vrrp_track_process's own weight"
				}
				why := "is out of range -254..254"
				if err != nil {
					why = "is not a number (range -254..254)"
				}
				p.warnf(w.pos, "%s %s: weight %s %s; the entry is kept with %s, as keepalived does", kind, t.Name, w.text, why, dflt)
			case v < min || v > max:
				if v < min {
					v = min
				} else {
					v = max
				}
				p.warnf(w.pos, "%s %s: weight %s is not allowed; %d is used, as keepalived does", kind, t.Name, w.text, v)
				t.Weight, t.WeightSet = int(v), true
			default:
				t.Weight, t.WeightSet = int(v), true
			}
			if len(e.args) > 2 {
				opts := []string{"reverse"}
				if noreverse {
					opts = append(opts, "noreverse")
				}
				o := e.args[2]
				switch {
				case slices.Contains(opts, o.text):
					t.Reverse, t.ReverseSet = o.text == "reverse", true
				case kind == "track_file":
					p.warnf(o.pos, "%s %s: weight option %q: want one of %s; the entry is ignored, as keepalived does", kind, t.Name, o.text, strings.Join(opts, ", "))
					return
				default:
					p.warnf(o.pos, "%s %s: weight option %q: want one of %s; the option is ignored, as keepalived does", kind, t.Name, o.text, strings.Join(opts, ", "))
				}
			}
			if len(e.args) > 3 {
				p.warnf(e.args[3].pos, "extra value %q ignored", e.args[3].text)
			}
		}
		for _, o := range *list {
			if o.Name == t.Name {
				p.warnf(t.Pos, "%s %s given twice (first at %s); ignored", kind, t.Name, o.Pos)
				return
			}
		}
		*list = append(*list, t)
	})
}

// defaultRulePreference gives a rule without a preference the one
// keepalived 2.2.7 gives it (vrrp_iprule.c alloc_rule(): rules added and
// removed in varying order need one): 16384 for the first such rule of its
// family in the file, static_rules included, and one less for each next
// one. It reports the preference and whether it set it.
func (p *parser) defaultRulePreference(r *Rule) (int64, bool) {
	if r.Preference != 0 {
		return r.Preference, false
	}
	i := 0
	if r.Family == Inet6 {
		i = 1
	}
	r.Preference = 16384 - p.rulePrefs[i]
	p.rulePrefs[i]++
	return r.Preference, true
}

// syncGroupBlock is vrrp_sync_group.
var syncGroupBlock = newBlock("vrrp_sync_group",
	k("group", 0, 0, func(p *parser, s *stmt, g *SyncGroup) {
		p.values(s, func(e *stmt) {
			for _, t := range append([]token{e.kw}, e.args...) {
				g.Instances = append(g.Instances, t.text)
			}
		})
	}).valueBlock(),
	k("track_interface", 0, 0, func(p *parser, s *stmt, g *SyncGroup) {
		p.trackList(s, &g.TrackInterfaces, -253, 253, true)
	}).valueBlock().multiple(),
	k("track_script", 0, 0, func(p *parser, s *stmt, g *SyncGroup) {
		p.trackList(s, &g.TrackScripts, -253, 253, true)
	}).valueBlock().multiple(),
	k("track_file", 0, 0, func(p *parser, s *stmt, g *SyncGroup) {
		p.trackList(s, &g.TrackFiles, -254, 254, true)
	}).valueBlock().multiple(),
	k("track_process", 0, 0, func(p *parser, s *stmt, g *SyncGroup) {
		p.trackList(s, &g.TrackProcesses, -254, 254, true)
	}).valueBlock().multiple(),
	k("track_bfd", 0, 0, func(p *parser, s *stmt, g *SyncGroup) {
		p.trackList(s, &g.TrackBFDs, -253, 253, true)
	}).valueBlock().multiple().unsup(whyBFD),
	notify("notify_backup", func(g *SyncGroup) *Command { return &g.NotifyBackup }),
	notify("notify_master", func(g *SyncGroup) *Command { return &g.NotifyMaster }),
	notify("notify_fault", func(g *SyncGroup) *Command { return &g.NotifyFault }),
	notify("notify_stop", func(g *SyncGroup) *Command { return &g.NotifyStop }),
	notify("notify", func(g *SyncGroup) *Command { return &g.Notify }),
	optBool("smtp_alert", func(g *SyncGroup) *bool { return &g.SMTPAlert }),
	flagKw("global_tracking", func(g *SyncGroup) *bool { return &g.TrackingWeight }).deprecate("track_interface/track_script/track_file on the sync group, or sync_group_tracking_weight"),
	flagKw("sync_group_tracking_weight", func(g *SyncGroup) *bool { return &g.TrackingWeight }),
	optTri("notify_priority_changes", func(g *SyncGroup) *OptBool { return &g.NotifyPriorityChanges }),
)

// notify is a notify script keyword; keepalived keeps the first one and
// ignores a repeated one.
func notify[T any](name string, field func(t *T) *Command) *kw[T] {
	return k(name, 1, -1, func(p *parser, s *stmt, t *T) {
		c := field(t)
		if c.IsSet() {
			p.warnf(s.kw.pos, "%s given again (first at %s); this one is ignored, as keepalived does", s.kw.text, c.Pos)
			return
		}
		*c = p.command(s)
	}).multiple()
}

func (p *parser) curInst() *instMeta { return &p.meta.inst[len(p.meta.inst)-1] }

// setFamily records the family of an instance, from the first keyword that
// tells it (keepalived sets vrrp->family the same way), and checks later
// ones against it.
func (p *parser) setFamily(vi *VRRPInstance, f Family, t token, what string) bool {
	m := p.curInst()
	if vi.Family == 0 {
		vi.Family, m.familyFrom, m.familyPos = f, what, t.pos
		return true
	}
	if vi.Family != f {
		// keepalived reports an address of the other family and leaves
		// it out ("... - ignoring").
		p.warnf(t.pos, "%s %s is %s but vrrp_instance %s is %s (from %s at %s); ignored, as keepalived does",
			what, t.text, famName(f), vi.Name, famName(vi.Family), m.familyFrom, m.familyPos)
		return false
	}
	return true
}

func famName(f Family) string {
	if f == Inet6 {
		return "IPv6"
	}
	return "IPv4"
}

// instanceBlock is vrrp_instance (keepalived vrrp/vrrp_parser.c).
var instanceBlock = newBlock("vrrp_instance",
	k("use_vmac", 0, 2, func(p *parser, s *stmt, vi *VRRPInstance) {
		vi.UseVMAC = true
		for _, a := range s.args {
			if strings.Contains(a.text, ":") {
				if vi.VMACAddr != "" {
					p.warnf(a.pos, "use_vmac: MAC address given twice; ignored, as keepalived does")
					continue
				}
				if p.macOK(a) {
					vi.VMACAddr = strings.ToLower(a.text)
				}
				continue
			}
			if vi.VMACName != "" {
				p.warnf(a.pos, "use_vmac: interface name given twice; ignored, as keepalived does")
				continue
			}
			if p.ifnameOK(a, "use_vmac interface") {
				vi.VMACName = a.text
			}
		}
	}),
	flagKw("use_vmac_addr", func(vi *VRRPInstance) *bool { return &vi.UseVMACAddr }).unsup(whyVMACAddr),
	flagKw("vmac_xmit_base", func(vi *VRRPInstance) *bool { return &vi.VMACXmitBase }),
	k("use_ipvlan", 0, 3, func(p *parser, s *stmt, vi *VRRPInstance) { vi.UseIPVLAN = true }).unsup(whyIPVLAN),
	k("unicast_peer", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.curInst().unicastKw = true
		p.values(s, func(e *stmt) {
			p.curInst().peerLines++
			p.unicastPeer(vi, e)
		})
	}).valueBlock().multiple(),
	k("unicast_fault_no_peer", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.curInst().unicastKw = true
		vi.UnicastFaultNoPeer = true
	}).unsup(whyTracking),
	k("check_unicast_src", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.curInst().unicastKw = true
		vi.CheckUnicastSrc = true
	}),
	k("old_unicast_checksum", 0, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.curInst().unicastKw = true
		// keepalived: bare "old_unicast_checksum" always uses the old
		// (224.0.0.18 pseudo-header) checksum; "never" disables the
		// automatic fallback.
		vi.OldUnicastChecksum = "always"
		if len(s.args) > 0 {
			if v, ok := p.enumArg(s.args[0], "old_unicast_checksum", "never"); ok {
				vi.OldUnicastChecksum = v
			}
		}
	}),
	k("native_ipv6", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		if p.setFamily(vi, Inet6, s.kw, "native_ipv6") {
			vi.Version = 3
		}
	}).deprecate("IPv6 addresses (the family follows the addresses)"),
	k("state", 1, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		v := s.args[0].text
		switch {
		case v != "MASTER" && v != "BACKUP":
			// keepalived 2.2.7 vrrp_state_handler(): "unknown state,
			// defaulting to BACKUP".
			p.warnf(s.args[0].pos, "state %q is not MASTER or BACKUP; state BACKUP is used, as keepalived does", v)
			v = "BACKUP"
			if vi.State == Master {
				vi.State = Backup
				return
			}
		case v == "BACKUP" && vi.State == Master:
			// keepalived 2.2.7: "state previously set as MASTER - ignoring BACKUP".
			p.warnf(s.args[0].pos, "state BACKUP after state MASTER is ignored; state MASTER stays, as keepalived does")
			return
		}
		vi.State = State(v)
	}).multiple(), // a repeated state is resolved above, as keepalived does
	k("interface", 1, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		if !p.ifnameOK(s.args[0], "interface") {
			return
		}
		if s.args[0].text == "lo" {
			// keepalived: "cannot use a loopback interface for vrrp -
			// ignoring"; without another interface the instance then
			// cannot run (multicast) or runs on unicast_src_ip alone.
			p.warnf(s.args[0].pos, "interface lo: VRRP cannot run on the loopback interface; ignored, as keepalived does")
			return
		}
		vi.Interface, vi.InterfacePos = s.args[0].text, s.args[0].pos
	}),
	k("vrf", 1, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		if p.ifnameOK(s.args[0], "vrf") {
			vi.VRF = s.args[0].text
		}
	}).unsup(whyVRF),
	flagKw("dont_track_primary", func(vi *VRRPInstance) *bool { return &vi.DontTrackPrimary }),
	k("track_interface", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		// keepalived: weights -254..254 parse, but +/-254 is an error.
		p.trackList(s, &vi.TrackInterfaces, -253, 253, false)
	}).valueBlock().multiple(),
	k("track_script", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.trackList(s, &vi.TrackScripts, -253, 253, true)
	}).valueBlock().multiple(),
	k("track_file", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.trackList(s, &vi.TrackFiles, -254, 254, true)
	}).valueBlock().multiple(),
	k("track_process", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.trackList(s, &vi.TrackProcesses, -254, 254, true)
	}).valueBlock().multiple(),
	k("track_bfd", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.trackList(s, &vi.TrackBFDs, -253, 253, true)
	}).valueBlock().multiple().unsup(whyBFD),
	k("mcast_src_ip", 1, 1, srcIP),
	k("unicast_src_ip", 1, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.curInst().unicastKw = true
		srcIP(p, s, vi)
	}),
	k("mcast_dst_ip", 1, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		a, ok := p.addrArg(s.args[0], "mcast_dst_ip")
		if !ok || !p.setFamily(vi, inet.FamilyOf(a), s.args[0], "mcast_dst_ip") {
			return
		}
		if !a.IsMulticast() || (a.Is6() && !a.IsLinkLocalMulticast()) {
			p.warnf(s.args[0].pos, "mcast_dst_ip %s is not a %smulticast address; ignored, as keepalived does", a, map[bool]string{true: "link-local "}[a.Is6()])
			return
		}
		vi.McastGroup = a
	}),
	flagKw("track_src_ip", func(vi *VRRPInstance) *bool { return &vi.TrackSourceIP }).unsup(whyTracking),
	count("virtual_router_id", 1, 255, func(vi *VRRPInstance) *int { return &vi.VRID }),
	k("unicast_ttl", 1, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		if v, ok := p.uintArg(s.args[0], "unicast_ttl", 0, 255); ok {
			vi.UnicastTTL = int(v)
			p.curInst().ttlSet = true
		}
	}),
	k("version", 1, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		v, ok := p.uintArg(s.args[0], "version", 2, 3)
		if !ok {
			return
		}
		if v == 2 && vi.Family == Inet6 {
			p.warnf(s.args[0].pos, "version 2 cannot be used with IPv6 (vrrp_instance %s is IPv6); ignored, as keepalived does", vi.Name)
			return
		}
		vi.Version = int(v)
	}),
	k("priority", 1, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		v, err := strconv.ParseUint(strings.TrimPrefix(s.args[0].text, "+"), 10, 8)
		if err != nil || v < 1 {
			// keepalived 2.2.7 vrrp_prio_handler(): "Priority not valid!
			// ... Using default 100" (not the state's default).
			p.warnf(s.args[0].pos, "priority %s is not valid (1..255); priority 100 is used, as keepalived does", s.args[0].text)
			v = 100
		}
		vi.Priority = int(v)
	}),
	k("advert_int", 1, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		// keepalived: 0.01s..255s; rounding to the version's unit is
		// checked once the version is known.
		if d, ok := p.timerArg(s.args[0], "advert_int", 10*time.Millisecond, 255*time.Second); ok {
			vi.AdvertInt = d
		}
	}),
	k("virtual_ipaddress", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.values(s, func(e *stmt) {
			p.curInst().vipLines++
			a, ok := p.parseAddress(e, false)
			if !ok {
				return
			}
			if !p.setFamily(vi, inet.FamilyOf(a.Prefix.Addr()), e.kw, "virtual_ipaddress") {
				return
			}
			vi.VirtualIPs = appendDoubling(vi.VirtualIPs, a)
		})
	}).valueBlock().multiple(),
	k("virtual_ipaddress_excluded", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.values(s, func(e *stmt) {
			if a, ok := p.parseAddress(e, false); ok {
				vi.ExcludedIPs = append(vi.ExcludedIPs, a)
			}
		})
	}).valueBlock().multiple(),
	flagKw("promote_secondaries", func(vi *VRRPInstance) *bool { return &vi.PromoteSecondaries }),
	flagKw("linkbeat_use_polling", func(vi *VRRPInstance) *bool { return &vi.LinkbeatUsePolling }).unsup(whyLinkbeat).deprecate("linkbeat_interfaces"),
	k("virtual_routes", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.values(s, func(e *stmt) {
			if r, ok := p.parseRoute(e, false); ok {
				if r.Dev == "" && !r.NoTrack {
					// keepalived 2.2.7 alloc_route(): "cannot track route
					// with no interface specified, not tracking".
					p.warnf(e.kw.pos, "route %s has no dev, so it cannot be tracked; add dev or no_track", r.Dst)
					r.NoTrack = true
				}
				vi.VirtualRoutes = append(vi.VirtualRoutes, r)
			}
		})
	}).valueBlock().multiple(),
	k("virtual_rules", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.values(s, func(e *stmt) {
			if r, ok := p.parseRule(e, false); ok {
				if pref, set := p.defaultRulePreference(&r); set {
					p.warnf(e.kw.pos, "rule has no preference; %d is used, as keepalived does, which is probably not what you want", pref)
				}
				vi.VirtualRules = append(vi.VirtualRules, r)
			}
		})
	}).valueBlock().multiple(),
	k("accept", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) { p.curInst().accept = True }),
	k("no_accept", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) { p.curInst().accept = False }),
	k("skip_check_adv_addr", 0, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		if v, ok := p.boolArg(s); ok {
			p.curInst().skipCheck = triOf(v)
		}
	}),
	k("strict_mode", 0, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		if v, ok := p.boolArg(s); ok {
			p.curInst().strict = triOf(v)
		}
	}),
	k("preempt", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) { vi.Nopreempt = false }),
	flagKw("nopreempt", func(vi *VRRPInstance) *bool { return &vi.Nopreempt }),
	timer("preempt_delay", 0, 1000*time.Second, func(vi *VRRPInstance) *time.Duration { return &vi.PreemptDelay }),
	count("debug", 0, 4, func(vi *VRRPInstance) *int { return &vi.Debug }).unsup(whyPerInst),
	notify("notify_backup", func(vi *VRRPInstance) *Command { return &vi.NotifyBackup }),
	notify("notify_master", func(vi *VRRPInstance) *Command { return &vi.NotifyMaster }),
	notify("notify_fault", func(vi *VRRPInstance) *Command { return &vi.NotifyFault }),
	notify("notify_stop", func(vi *VRRPInstance) *Command { return &vi.NotifyStop }),
	k("notify_deleted", 0, -1, func(p *parser, s *stmt, vi *VRRPInstance) {
		if vi.NotifyDeletedSet {
			p.warnf(s.kw.pos, "notify_deleted given again; this one is ignored, as keepalived does")
			return
		}
		vi.NotifyDeletedSet = true
		if len(s.args) > 0 {
			vi.NotifyDeleted = p.command(s)
		}
	}).multiple(),
	notify("notify", func(vi *VRRPInstance) *Command { return &vi.Notify }),
	notify("notify_master_rx_lower_pri", func(vi *VRRPInstance) *Command { return &vi.NotifyMasterRxLowerPri }),
	k("smtp_alert", 0, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		if v, ok := p.boolArg(s); ok {
			p.curInst().smtpAlert = triOf(v)
		}
	}),
	k("notify_priority_changes", 0, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		if v, ok := p.boolArg(s); ok {
			p.curInst().notifyPrio = triOf(v)
		}
	}),
	k("lvs_sync_daemon_interface", 1, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		p.curInst().lvsSyncd = s.args[0]
	}).deprecate("global_defs lvs_sync_daemon"),
	seconds("garp_master_delay", 0, maxSecs, func(vi *VRRPInstance) *time.Duration { return &vi.GARPMasterDelay }),
	seconds("garp_master_refresh", 0, maxSecs, func(vi *VRRPInstance) *time.Duration { return &vi.GARPMasterRefresh }),
	count("garp_master_repeat", 1, maxInt, func(vi *VRRPInstance) *int { return &vi.GARPMasterRepeat }),
	count("garp_master_refresh_repeat", 1, maxInt, func(vi *VRRPInstance) *int { return &vi.GARPMasterRefreshRepeat }),
	seconds("garp_lower_prio_delay", 0, maxSecs, func(vi *VRRPInstance) *time.Duration { return &vi.GARPLowerPrioDelay }),
	count("garp_lower_prio_repeat", 0, maxInt, func(vi *VRRPInstance) *int { return &vi.GARPLowerPrioRepeat }),
	count("down_timer_adverts", 1, 100, func(vi *VRRPInstance) *int { return &vi.DownTimerAdverts }),
	k("garp_extra_if", 1, 2, func(p *parser, s *stmt, vi *VRRPInstance) {
		vi.GARPExtraIf, vi.GARPExtraIfAll = p.garpExtraIf(s)
	}).unsup(whyExtraIf),
	k("vmac_garp_intvl", 1, 2, func(p *parser, s *stmt, vi *VRRPInstance) {
		vi.GARPExtraIf, vi.GARPExtraIfAll = p.garpExtraIf(s)
	}).deprecate("garp_extra_if"),
	k("lower_prio_no_advert", 0, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		if v, ok := p.boolArg(s); ok {
			p.curInst().lowerPrio = triOf(v)
		}
	}),
	k("higher_prio_send_advert", 0, 1, func(p *parser, s *stmt, vi *VRRPInstance) {
		if v, ok := p.boolArg(s); ok {
			p.curInst().higherPrio = triOf(v)
		}
	}),
	count("kernel_rx_buf_size", 0, 4294967295, func(vi *VRRPInstance) *int { return &vi.KernelRxBufSize }).unsup(whyPerInst),
	k("authentication", 0, 0, func(p *parser, s *stmt, vi *VRRPInstance) {
		vi.Auth.Pos = s.kw.pos
		parseBody(p, authBlock, &vi.Auth, s.open)
	}).opens(authBlock),
)

func triOf(b bool) OptBool {
	if b {
		return True
	}
	return False
}

var authBlock = newBlock("authentication",
	k("auth_type", 1, 1, func(p *parser, s *stmt, a *Auth) {
		switch v := s.args[0].text; v {
		case "PASS", "AH":
			a.Type = AuthType(v)
		default:
			// keepalived 2.2.7 vrrp_auth_type_handler(): "unknown
			// authentication type"; the line sets nothing.
			hint := ""
			if t := strings.TrimRight(v, ";,"); t != v && (t == "PASS" || t == "AH") {
				hint = fmt.Sprintf(" (a stray %q after %s: keepalived.conf has no statement separators)", v[len(t):], t)
			}
			p.warnf(s.args[0].pos, "auth_type %q is not PASS or AH%s; ignored, as keepalived does: without another auth_type the adverts carry no authentication", v, hint)
		}
	}),
	k("auth_pass", 1, 1, func(p *parser, s *stmt, a *Auth) {
		pass := s.args[0].text
		if len(pass) > 8 {
			// keepalived 2.2.7 vrrp_auth_pass_handler(): "Truncating
			// auth_pass to 8 characters". Peers compare the 8 bytes.
			p.warnf(s.args[0].pos, "auth_pass is %d characters long; only the first 8 (%q) are used, as keepalived does", len(pass), pass[:8])
			pass = pass[:8]
		}
		a.Pass = pass
	}),
)

func srcIP(p *parser, s *stmt, vi *VRRPInstance) {
	a, ok := p.addrArg(s.args[0], s.kw.text)
	if !ok || !p.setFamily(vi, inet.FamilyOf(a), s.args[0], s.kw.text) {
		return
	}
	vi.SourceIP = a
}

// unicastPeer parses "ADDR [min_ttl N] [max_ttl N]".
func (p *parser) unicastPeer(vi *VRRPInstance, e *stmt) {
	a, ok := p.addrArg(e.kw, "unicast_peer")
	if !ok || !p.setFamily(vi, inet.FamilyOf(a), e.kw, "unicast_peer") {
		return
	}
	up := UnicastPeer{Pos: e.kw.pos, Addr: a, MinTTL: 0, MaxTTL: 255}
	for i := 0; i < len(e.args); i += 2 {
		opt := e.args[i]
		if i+1 >= len(e.args) {
			p.warnf(opt.pos, "unicast_peer %s: %s needs a value; ignored, as keepalived does", a, opt.text)
			break
		}
		name, ok := p.enumArg(opt, "unicast_peer option", "min_ttl", "max_ttl")
		if !ok {
			break
		}
		v, ok := p.uintArg(e.args[i+1], name, 0, 255)
		if !ok {
			continue
		}
		if name == "min_ttl" {
			up.MinTTL = int(v)
		} else {
			up.MaxTTL = int(v)
		}
		// keepalived: a TTL bound turns on check_unicast_src.
		vi.CheckUnicastSrc = true
	}
	if up.MinTTL > up.MaxTTL {
		// keepalived reports "all packets will be discarded" and runs: the
		// instance would never hear that peer and take over beside it.
		// Unsafe: refused (see the package documentation).
		p.errf(e.kw.pos, "unicast_peer %s: min_ttl %d > max_ttl %d, every advert from it would be dropped (keepalived runs this and becomes a second master; vigil refuses)", a, up.MinTTL, up.MaxTTL)
	}
	for _, o := range vi.UnicastPeers {
		if o.Addr == a {
			p.warnf(e.kw.pos, "unicast_peer %s given twice (first at %s)", a, o.Pos)
			return
		}
	}
	vi.UnicastPeers = append(vi.UnicastPeers, up)
}

// macOK checks a MAC address: 6 octets, or 5 (the VRID is the 6th), not
// multicast, not the RFC 5798 range 00:00:5e:00:01/02:XX. keepalived 2.2.7
// reports a bad one ("VMAC invalid MAC address - ignored") and uses the
// default VMAC MAC.
func (p *parser) macOK(t token) bool {
	parts := strings.Split(strings.TrimSuffix(t.text, ":"), ":")
	if len(parts) != 5 && len(parts) != 6 {
		p.warnf(t.pos, "use_vmac MAC address %q: want 5 or 6 octets; ignored, as keepalived does", t.text)
		return false
	}
	var b [6]byte
	for i, s := range parts {
		var v byte
		if _, err := fmt.Sscanf(s, "%x", &v); err != nil || len(s) == 0 || len(s) > 2 {
			p.warnf(t.pos, "use_vmac MAC address %q is not valid; ignored, as keepalived does", t.text)
			return false
		}
		b[i] = v
	}
	if b[0]&1 != 0 {
		p.warnf(t.pos, "use_vmac MAC address %q is multicast; ignored, as keepalived does", t.text)
		return false
	}
	if b[0] == 0 && b[1] == 0 && b[2] == 0x5e && b[3] == 0 && (b[4] == 1 || b[4] == 2) {
		p.warnf(t.pos, "use_vmac MAC address %q is in the RFC 5798 range; give another or none; ignored, as keepalived does", t.text)
		return false
	}
	return true
}
