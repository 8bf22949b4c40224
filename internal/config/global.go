package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/inet"
)

// Why vigil does not act on some keepalived keywords. One list: the
// keyword tables below carry these, Unsupported() reports them, and the
// parser warns with them.
const (
	whyEmail     = "vigil sends no e-mail; use notify scripts or a notify FIFO"
	whyProcess   = "vigil is one process and does not tune its scheduling or names"
	whySNMP      = "vigil exports Prometheus metrics, not SNMP"
	whyDBus      = "vigil has a status API, not D-Bus"
	whyNetns     = "start vigil inside the namespace instead"
	whyIPTables  = "vigil uses nftables"
	whyBufs      = "vigil sizes its socket buffers itself"
	whyReload    = "vigil checks a new configuration before it applies it"
	whyIPVS      = "IPVS-only feature"
	whyStatic    = "vigil manages static routes and rules, not static addresses or track groups; configure those in the OS"
	whyBFD       = "vigil has no BFD"
	whyScripts   = "run it from the service manager"
	whyLinkbeat  = "vigil follows links through netlink only"
	whyIPVLAN    = "vigil creates VMACs (macvlan), not ipvlan: the instance runs without one (use use_vmac for a virtual MAC)"
	whyVRF       = "vigil does not bind VRRP to a VRF"
	whyIGMP      = "vigil does not change IGMP sysctls"
	whyUmask     = "vigil does not change its umask"
	whyPerInst   = "vigil has no per-instance debug level or buffer size"
	whySchedFlag = "IPVS scheduler flag"
	whyVMACAddr  = "vigil makes VMACs for the instance's own family and interface only (use_vmac); other addresses stay on their interfaces and move by gratuitous ARP / NA"
	whyNFTables  = "vigil's VRRP rules (accept mode off, VMAC IGMP/MLD filtering) live in its own table inet vigil_vrrp at priority -1, one rule per address; the table name, priority and layout are fixed"
	whyExtraIf   = "vigil sends gratuitous ARP only on the VIPs' interfaces"
	whyTracking  = "not implemented in vigil"
	whyPE        = "IPVS persistence engines"
	whyLogFails  = "vigil logs a checker's changes of state, not each failed attempt"
	whyAutoPrio  = "read into the model with keepalived's meaning (Global.MaxAutoPriority, Global.AutoPriority), but the daemon does not yet switch itself to realtime scheduling when its timers run late"
)

// other keeps a keyword vigil does not model in Global.Other.
func other[T any](name string, why string, field func(t *T) *[]Setting) *kw[T] {
	return k(name, 0, -1, func(p *parser, s *stmt, t *T) {
		st := Setting{Pos: s.kw.pos, Keyword: s.kw.text}
		for _, a := range s.args {
			st.Args = append(st.Args, a.text)
		}
		*field(t) = append(*field(t), st)
	}).unsup(why).multiple()
}

func gOther(name, why string) *kw[Global] {
	return other(name, why, func(g *Global) *[]Setting { return &g.Other })
}

// globalBlock is global_defs (keepalived core/global_parser.c).
var globalBlock = newBlock("global_defs",
	gOther("process_names", whyProcess),
	gOther("process_name", whyProcess),
	gOther("vrrp_process_name", whyProcess),
	gOther("checker_process_name", whyProcess),
	gOther("lvs_process_name", whyProcess).deprecate("checker_process_name"),
	gOther("bfd_process_name", whyProcess),
	str("router_id", func(g *Global) *string { return &g.RouterID }),
	str("notification_email_from", func(g *Global) *string { return &g.NotificationEmailFrom }),
	k("smtp_server", 1, 2, func(p *parser, s *stmt, g *Global) {
		g.SMTPServer = s.args[0].text
		if len(s.args) > 1 {
			if v, ok := p.portArg(s.args[1], "smtp_server port"); ok {
				g.SMTPPort = v
			}
		}
	}),
	str("smtp_helo_name", func(g *Global) *string { return &g.SMTPHeloName }),
	k("smtp_connect_timeout", 1, 1, func(p *parser, s *stmt, g *Global) {
		// keepalived: whole seconds, 0 is raised to 1 with an error.
		if d, ok := p.secondsArg(s.args[0], "smtp_connect_timeout", 1, 4294); ok {
			g.SMTPConnectTimeout = d
		}
	}),
	k("notification_email", 0, 0, func(p *parser, s *stmt, g *Global) {
		p.values(s, func(e *stmt) {
			g.NotificationEmail = append(g.NotificationEmail, e.kw.text)
			for _, a := range e.args {
				g.NotificationEmail = append(g.NotificationEmail, a.text)
			}
		})
	}).valueBlock(),
	optTri("smtp_alert", func(g *Global) *OptBool { return &g.SMTPAlert }),
	optTri("smtp_alert_vrrp", func(g *Global) *OptBool { return &g.SMTPAlertVRRP }),
	optTri("smtp_alert_checker", func(g *Global) *OptBool { return &g.SMTPAlertChecker }).unsup(whyEmail),
	gOther("startup_script", whyScripts),
	gOther("startup_script_timeout", whyScripts),
	gOther("shutdown_script", whyScripts),
	gOther("shutdown_script_timeout", whyScripts),
	k("max_auto_priority", 0, 1, func(p *parser, s *stmt, g *Global) {
		if len(s.args) == 0 {
			g.MaxAutoPriority = maxRTPriority
			return
		}
		// keepalived 2.2.7: -1..99, else "must be in [0, 99] (or -1 to
		// disable) - ignoring".
		if v, ok := p.intArg(s.args[0], "max_auto_priority", -1, maxRTPriority); ok {
			g.MaxAutoPriority = int(max(v, 0))
		}
	}).unsup(whyAutoPrio),
	k("min_auto_priority_delay", 1, 1, func(p *parser, s *stmt, g *Global) {
		if v, ok := p.intArg(s.args[0], "min_auto_priority_delay (microseconds)", 1, 10000000); ok {
			g.MinAutoPriorityDelay = time.Duration(v) * time.Microsecond
		}
	}).unsup(whyAutoPrio),
	optBool("checker_log_all_failures", func(g *Global) *bool { return &g.CheckerLogAllFailures }).unsup(whyLogFails),
	k("dynamic_interfaces", 0, 1, func(p *parser, s *stmt, g *Global) {
		g.DynamicInterfaces = true
		if len(s.args) > 0 {
			if _, ok := p.enumArg(s.args[0], "dynamic_interfaces", "allow_if_changes"); ok {
				g.AllowIfChanges = true
			}
		}
	}),
	flagKw("no_email_faults", func(g *Global) *bool { return &g.NoEmailFaults }),
	str("default_interface", func(g *Global) *string { return &g.DefaultInterface }),
	flagKw("disable_local_igmp", func(g *Global) *bool { return &g.DisableLocalIGMP }).unsup(whyIGMP),
	k("lvs_timeouts", 2, -1, lvsTimeouts).unsup(whyIPVS),
	flagKw("lvs_flush", func(g *Global) *bool { return &g.LVSFlush }),
	// vigil extension: which kernel load balancer programs the virtual
	// servers (auto: IPVS where the kernel has it, else nftables).
	k("lvs_backend", 1, 1, func(p *parser, s *stmt, g *Global) {
		switch v := s.args[0].text; v {
		case "auto", "nftables", "ipvs":
			g.LVSBackend = v
		default:
			p.errf(s.args[0].pos, "lvs_backend %q: want auto, nftables or ipvs", v)
		}
	}),
	k("lvs_flush_on_stop", 0, 1, lvsFlushOnStop),
	k("lvs_flush_onstop", 0, 1, lvsFlushOnStop).deprecate("lvs_flush_on_stop"),
	k("lvs_sync_daemon", 1, -1, lvsSyncDaemon),
	k("vrrp_mcast_group4", 1, 1, func(p *parser, s *stmt, g *Global) {
		if a, ok := p.mcastArg(s.args[0], "vrrp_mcast_group4", Inet); ok {
			g.VRRPMcastGroup4 = a
		}
	}),
	k("vrrp_mcast_group6", 1, 1, func(p *parser, s *stmt, g *Global) {
		if a, ok := p.mcastArg(s.args[0], "vrrp_mcast_group6", Inet6); ok {
			g.VRRPMcastGroup6 = a
		}
	}),
	seconds("vrrp_garp_master_delay", 0, maxSecs, func(g *Global) *time.Duration { return &g.VRRPGARPMasterDelay }),
	count("vrrp_garp_master_repeat", 1, maxInt, func(g *Global) *int { return &g.VRRPGARPMasterRepeat }),
	seconds("vrrp_garp_master_refresh", 0, maxSecs, func(g *Global) *time.Duration { return &g.VRRPGARPMasterRefresh }),
	count("vrrp_garp_master_refresh_repeat", 1, maxInt, func(g *Global) *int { return &g.VRRPGARPMasterRefreshRepeat }),
	seconds("vrrp_garp_lower_prio_delay", 0, maxSecs, func(g *Global) *time.Duration { return &g.VRRPGARPLowerPrioDelay }),
	count("vrrp_garp_lower_prio_repeat", 0, maxInt, func(g *Global) *int { return &g.VRRPGARPLowerPrioRepeat }),
	count("vrrp_down_timer_adverts", 1, 100, func(g *Global) *int { return &g.VRRPDownTimerAdverts }),
	garpInterval("vrrp_garp_interval", "gratuitous ARP", func(g *Global) *time.Duration { return &g.VRRPGARPInterval }),
	garpInterval("vrrp_gna_interval", "unsolicited neighbour advertisement", func(g *Global) *time.Duration { return &g.VRRPGNAInterval }),
	optBool("vrrp_min_garp", func(g *Global) *bool { return &g.VRRPMinGARP }),
	k("vrrp_garp_extra_if", 1, 2, func(p *parser, s *stmt, g *Global) {
		g.VRRPGARPExtraIf, g.VRRPGARPExtraIfAll = p.garpExtraIf(s)
	}).unsup(whyExtraIf),
	k("vrrp_vmac_garp_intvl", 1, 2, func(p *parser, s *stmt, g *Global) {
		g.VRRPGARPExtraIf, g.VRRPGARPExtraIfAll = p.garpExtraIf(s)
	}).deprecate("vrrp_garp_extra_if"),
	optBool("vrrp_lower_prio_no_advert", func(g *Global) *bool { return &g.VRRPLowerPrioNoAdvert }),
	optBool("vrrp_higher_prio_send_advert", func(g *Global) *bool { return &g.VRRPHigherPrioSendAdvert }),
	count("vrrp_version", 2, 3, func(g *Global) *int { return &g.VRRPVersion }),
	gOther("vrrp_iptables", whyIPTables),
	gOther("vrrp_ipsets", whyIPTables),
	k("nftables", 0, 1, func(p *parser, s *stmt, g *Global) {
		g.NFTables = "keepalived"
		if len(s.args) > 0 {
			g.NFTables = s.args[0].text
		}
	}).unsup(whyNFTables),
	k("nftables_priority", 1, 1, func(p *parser, s *stmt, g *Global) {
		if v, ok := p.intArg(s.args[0], "nftables_priority", -2147483648, 2147483647); ok {
			g.NFTablesPriority = int(v)
		}
	}).unsup(whyNFTables),
	flagKw("nftables_ifindex", func(g *Global) *bool { return &g.NFTablesIfindex }).unsup(whyNFTables),
	gOther("nftables_ipvs", whyIPVS),
	gOther("nftables_ipvs_priority", whyIPVS),
	gOther("nftables_ipvs_start_fwmark", whyIPVS),
	flagKw("nftables_counters", func(g *Global) *bool { return &g.NFTablesCounters }).unsup(whyNFTables),
	flagKw("vrrp_check_unicast_src", func(g *Global) *bool { return &g.VRRPCheckUnicastSrc }),
	flagKw("vrrp_skip_check_adv_addr", func(g *Global) *bool { return &g.VRRPSkipCheckAdvAddr }),
	flagKw("vrrp_strict", func(g *Global) *bool { return &g.VRRPStrict }),
	niceKw("vrrp_priority", "vrrp", func(g *Global) *int { return &g.VRRPNice }),
	flagKw("vrrp_no_swap", func(g *Global) *bool { return &g.VRRPNoSwap }),
	rtPriorityKw("vrrp_rt_priority", "vrrp", func(g *Global) *int { return &g.VRRPRTPriority }),
	gOther("vrrp_cpu_affinity", whyProcess),
	gOther("vrrp_rlimit_rttime", whyProcess),
	gOther("vrrp_rlimit_rtime", whyProcess).deprecate("vrrp_rlimit_rttime"),
	fifo("notify_fifo", func(g *Global) *FIFO { return &g.NotifyFIFO }),
	fifoScript("notify_fifo_script", func(g *Global) *FIFO { return &g.NotifyFIFO }),
	fifo("vrrp_notify_fifo", func(g *Global) *FIFO { return &g.VRRPNotifyFIFO }),
	fifoScript("vrrp_notify_fifo_script", func(g *Global) *FIFO { return &g.VRRPNotifyFIFO }),
	optBool("vrrp_notify_priority_changes", func(g *Global) *bool { return &g.VRRPNotifyPriorityChange }),
	flagKw("fifo_write_vrrp_states_on_reload", func(g *Global) *bool { return &g.FIFOWriteStatesOnReload }).unsup(whyTracking),
	fifo("lvs_notify_fifo", func(g *Global) *FIFO { return &g.LVSNotifyFIFO }),
	fifoScript("lvs_notify_fifo_script", func(g *Global) *FIFO { return &g.LVSNotifyFIFO }),
	niceKw("checker_priority", "checker", func(g *Global) *int { return &g.CheckerNice }),
	flagKw("checker_no_swap", func(g *Global) *bool { return &g.CheckerNoSwap }),
	rtPriorityKw("checker_rt_priority", "checker", func(g *Global) *int { return &g.CheckerRTPriority }),
	gOther("checker_cpu_affinity", whyProcess),
	gOther("checker_rlimit_rttime", whyProcess),
	gOther("checker_rlimit_rtime", whyProcess).deprecate("checker_rlimit_rttime"),
	gOther("bfd_priority", whyProcess),
	gOther("bfd_no_swap", whyProcess),
	gOther("bfd_rt_priority", whyProcess),
	gOther("bfd_cpu_affinity", whyProcess),
	gOther("bfd_rlimit_rttime", whyProcess),
	gOther("bfd_rlimit_rtime", whyProcess).deprecate("bfd_rlimit_rttime"),
	gOther("snmp_socket", whySNMP),
	gOther("enable_traps", whySNMP),
	gOther("enable_snmp_vrrp", whySNMP),
	gOther("enable_snmp_keepalived", whySNMP).deprecate("enable_snmp_vrrp"),
	gOther("enable_snmp_rfc", whySNMP),
	gOther("enable_snmp_rfcv2", whySNMP),
	gOther("enable_snmp_rfcv3", whySNMP),
	gOther("enable_snmp_checker", whySNMP),
	gOther("enable_dbus", whyDBus),
	gOther("dbus_service_name", whyDBus),
	k("script_user", 1, 2, func(p *parser, s *stmt, g *Global) {
		g.ScriptUser = s.args[0].text
		if len(s.args) > 1 {
			g.ScriptGroup = s.args[1].text
		}
	}),
	flagKw("enable_script_security", func(g *Global) *bool { return &g.EnableScriptSecurity }),
	gOther("vrrp_netlink_cmd_rcv_bufs", whyBufs),
	gOther("vrrp_netlink_cmd_rcv_bufs_force", whyBufs),
	gOther("vrrp_netlink_monitor_rcv_bufs", whyBufs),
	gOther("vrrp_netlink_monitor_rcv_bufs_force", whyBufs),
	gOther("process_monitor_rcv_bufs", whyBufs),
	gOther("process_monitor_rcv_bufs_force", whyBufs),
	gOther("lvs_netlink_cmd_rcv_bufs", whyBufs),
	gOther("lvs_netlink_cmd_rcv_bufs_force", whyBufs),
	gOther("lvs_netlink_monitor_rcv_bufs", whyBufs),
	gOther("lvs_netlink_monitor_rcv_bufs_force", whyBufs),
	flagKw("rs_init_notifies", func(g *Global) *bool { return &g.RSInitNotifies }),
	flagKw("no_checker_emails", func(g *Global) *bool { return &g.NoCheckerEmails }).unsup(whyEmail),
	gOther("vrrp_rx_bufs_policy", whyBufs),
	gOther("vrrp_rx_bufs_multiplier", whyBufs),
	k("vrrp_startup_delay", 1, 1, func(p *parser, s *stmt, g *Global) {
		if d, ok := p.timerArg(s.args[0], "vrrp_startup_delay", time.Millisecond, maxTimer); ok {
			g.VRRPStartupDelay = d
		}
	}),
	flagKw("log_unknown_vrids", func(g *Global) *bool { return &g.LogUnknownVRIDs }).unsup("vigil counts adverts for unknown VRIDs in vigil status (daemon.dropped.unknown_vrid) instead"),
	str("vmac_prefix", func(g *Global) *string { return &g.VMACPrefix }),
	str("vmac_addr_prefix", func(g *Global) *string { return &g.VMACAddrPrefix }).unsup(whyVMACAddr),
	gOther("umask", whyUmask),
	k("random_seed", 1, 1, func(p *parser, s *stmt, g *Global) {
		if v, ok := p.uintArg(s.args[0], "random_seed", 0, 4294967295); ok {
			g.RandomSeed = v
		}
	}),
	gOther("reload_check_config", whyReload),
	gOther("reload_time_file", whyReload),
	gOther("reload_repeat", whyReload),
	gOther("reload_file", whyReload),
	k("include_check", 0, -1, includeCheck),
	gOther("config_save_dir", whyReload),
	gOther("tmp_config_directory", whyReload),
	gOther("data_use_instance", whyProcess),
)

const (
	maxInt   = 2147483647
	maxSecs  = 4294 // keepalived: UINT_MAX / TIMER_HZ seconds
	maxTimer = time.Duration(1<<63 - 1)
)

// optTri is a keyword with an optional <BOOL> stored as an OptBool.
func optTri[T any](name string, field func(t *T) *OptBool) *kw[T] {
	return k(name, 0, 1, func(p *parser, s *stmt, t *T) {
		if v, ok := p.boolArg(s); ok {
			*field(t) = False
			if v {
				*field(t) = True
			}
		}
	})
}

// seconds is a keyword with a whole number of seconds.
func seconds[T any](name string, min, max uint64, field func(t *T) *time.Duration) *kw[T] {
	return k(name, 1, 1, func(p *parser, s *stmt, t *T) {
		if d, ok := p.secondsArg(s.args[0], name, min, max); ok {
			*field(t) = d
		}
	})
}

// timer is a keyword with a decimal number of seconds.
func timer[T any](name string, min, max time.Duration, field func(t *T) *time.Duration) *kw[T] {
	return k(name, 1, 1, func(p *parser, s *stmt, t *T) {
		if d, ok := p.timerArg(s.args[0], name, min, max); ok {
			*field(t) = d
		}
	})
}

// count is a keyword with an unsigned integer.
func count[T any](name string, min, max uint64, field func(t *T) *int) *kw[T] {
	return k(name, 1, 1, func(p *parser, s *stmt, t *T) {
		if v, ok := p.uintArg(s.args[0], name, min, max); ok {
			*field(t) = int(v)
		}
	})
}

// fifo is "NAME PATH [USER [GROUP]]".
func fifo[T any](name string, field func(t *T) *FIFO) *kw[T] {
	return k(name, 1, 3, func(p *parser, s *stmt, t *T) {
		f := field(t)
		f.Pos = s.kw.pos
		f.Path = s.args[0].text
		if len(s.args) > 1 {
			f.User = s.args[1].text
		}
		if len(s.args) > 2 {
			f.Group = s.args[2].text
		}
	})
}

// fifoScript is "NAME_script COMMAND [USER [GROUP]]".
func fifoScript[T any](name string, field func(t *T) *FIFO) *kw[T] {
	return k(name, 1, -1, func(p *parser, s *stmt, t *T) {
		field(t).Script = p.command(s)
	})
}

// mcastArg parses a multicast address of the given family.
func (p *parser) mcastArg(t token, what string, fam Family) (netip.Addr, bool) {
	a, ok := p.addrArg(t, what)
	if !ok {
		return a, false
	}
	if inet.FamilyOf(a) != fam {
		p.warnf(t.pos, "%s %s is not an %s address; ignored, as keepalived does", what, t.text, map[Family]string{Inet: "IPv4", Inet6: "IPv6"}[fam])
		return netip.Addr{}, false
	}
	if !a.IsMulticast() {
		p.warnf(t.pos, "%s %s is not a multicast address; ignored, as keepalived does", what, t.text)
		return netip.Addr{}, false
	}
	return a, true
}

// garpExtraIf parses "[all] SECONDS" (0..86400).
func (p *parser) garpExtraIf(s *stmt) (time.Duration, bool) {
	var d time.Duration
	all, have := false, false
	for _, a := range s.args {
		if a.text == "all" {
			all = true
			continue
		}
		if v, ok := p.secondsArg(a, s.kw.text, 0, 86400); ok {
			d, have = v, true
		}
	}
	if !have {
		p.warnf(s.kw.pos, "%s needs an interval in seconds; ignored, as keepalived does", s.kw.text)
	}
	return d, all
}

func lvsTimeouts(p *parser, s *stmt, g *Global) {
	for i := 0; i < len(s.args); i += 2 {
		name := s.args[i]
		if i+1 >= len(s.args) {
			p.warnf(name.pos, "lvs_timeouts %s needs a value; ignored, as keepalived does", name.text)
			return
		}
		d, ok := p.secondsArg(s.args[i+1], "lvs_timeouts "+name.text, 1, 86400*31)
		if !ok {
			continue
		}
		switch name.text {
		case "tcp":
			g.LVSTimeouts.TCP = d
		case "tcpfin":
			g.LVSTimeouts.TCPFin = d
		case "udp":
			g.LVSTimeouts.UDP = d
		default:
			p.enumArg(name, "lvs_timeouts", "tcp", "tcpfin", "udp")
		}
	}
}

func lvsFlushOnStop(p *parser, s *stmt, g *Global) {
	g.LVSFlushOnStop = "ALL"
	if len(s.args) > 0 {
		if v, ok := p.enumArg(s.args[0], s.kw.text, "VS"); ok {
			g.LVSFlushOnStop = v
		}
	}
}

// lvsSyncDaemon parses "IF [[inst] INSTANCE] [id N] [maxlen N] [port N]
// [ttl N] [group ADDR]".
func lvsSyncDaemon(p *parser, s *stmt, g *Global) {
	d := &LVSSyncDaemon{Pos: s.kw.pos, Interface: s.args[0].text, SyncID: -1}
	a := s.args[1:]
	for i := 0; i < len(a); i++ {
		w := a[i]
		val := func() (token, bool) {
			if i+1 >= len(a) {
				p.warnf(w.pos, "lvs_sync_daemon %s needs a value; ignored, as keepalived does", w.text)
				return token{}, false
			}
			i++
			return a[i], true
		}
		switch w.text {
		case "inst":
			if v, ok := val(); ok {
				d.Instance = v.text
			}
		case "id":
			if v, ok := val(); ok {
				if n, ok := p.uintArg(v, "lvs_sync_daemon id", 0, 255); ok {
					d.SyncID = int(n)
				}
			}
		case "maxlen":
			if v, ok := val(); ok {
				if n, ok := p.uintArg(v, "lvs_sync_daemon maxlen", 1, 65507); ok {
					d.MaxLen = int(n)
				}
			}
		case "port":
			if v, ok := val(); ok {
				if n, ok := p.uintArg(v, "lvs_sync_daemon port", 1, 65535); ok {
					d.Port = int(n)
				}
			}
		case "ttl":
			if v, ok := val(); ok {
				if n, ok := p.uintArg(v, "lvs_sync_daemon ttl", 1, 255); ok {
					d.TTL = int(n)
				}
			}
		case "group":
			if v, ok := val(); ok {
				if ad, ok := p.addrArg(v, "lvs_sync_daemon group"); ok {
					d.Group = ad
				}
			}
		default:
			if i == 0 && d.Instance == "" {
				d.Instance = w.text
				continue
			}
			p.warnf(w.pos, "lvs_sync_daemon: unknown option %q (want inst, id, maxlen, port, ttl, group); ignored, as keepalived does", w.text)
		}
	}
	g.LVSSyncDaemon = d
}

// includeCheck parses include_check [[+|-]read|match|wildcard_match|
// brace_match ...] and applies it to the following includes.
func includeCheck(p *parser, s *stmt, g *Global) {
	flags := incRead | incMatch | incWildcard | incBrace
	names := map[string]includeFlags{"read": incRead, "match": incMatch, "wildcard_match": incWildcard, "brace_match": incBrace}
	if len(s.args) > 0 {
		flags = p.lex.includeCheck
		for i, a := range s.args {
			w := a.text
			op := byte(0)
			if strings.HasPrefix(w, "+") || strings.HasPrefix(w, "-") {
				op, w = w[0], w[1:]
			}
			f, ok := names[w]
			if !ok {
				p.enumArg(token{text: w, pos: a.pos}, "include_check", "read", "match", "wildcard_match", "brace_match")
				continue
			}
			switch op {
			case '+':
				flags |= f
			case '-':
				flags &^= f
			default:
				if i > 0 {
					p.warnf(a.pos, "include_check %s: only the first option may be given without + or -; ignored", w)
					continue
				}
				flags = incRead | f
			}
		}
	}
	p.lex.includeCheck = flags
	g.IncludeCheck = nil
	for _, n := range []string{"read", "match", "wildcard_match", "brace_match"} {
		if flags&names[n] != 0 {
			g.IncludeCheck = append(g.IncludeCheck, n)
		}
	}
}

// garpInterval is vrrp_garp_interval / vrrp_gna_interval: the pause
// between the packets of one announcement. keepalived 2.2.7
// (global_parser.c) takes 0.000001s up, reports anything else "invalid"
// and ignores the line; the distribution sample's "0" is such a line.
func garpInterval(name, what string, field func(g *Global) *time.Duration) *kw[Global] {
	return k(name, 1, 1, func(p *parser, s *stmt, g *Global) {
		t := s.args[0]
		d, err := parseSeconds(t.text, 6)
		if err != nil || d < time.Microsecond || d > maxTimer {
			now := "no pause between " + what + " packets (the default)"
			if *field(g) > 0 {
				now = "the earlier " + fmtSeconds(*field(g)) + " stays"
			}
			p.warnf(t.pos, "%s %s is invalid (keepalived takes 0.000001s and up); ignored as keepalived does: %s", name, t.text, now)
			return
		}
		*field(g) = d
	})
}

// rtPriorityKw is vrrp_rt_priority / checker_rt_priority: a SCHED_RR
// priority (keepalived global_parser.c get_realtime_priority(): a value out
// of 1..99 is reported and clamped, one that is not a number is ignored).
func rtPriorityKw(name, process string, field func(g *Global) *int) *kw[Global] {
	return k(name, 1, 1, func(p *parser, s *stmt, g *Global) {
		a := s.args[0]
		v, err := strconv.ParseInt(a.text, 10, 64)
		switch {
		case err != nil:
			p.warnf(a.pos, "%s: %s process real-time priority %q is not a number; ignored, as keepalived does", name, process, a.text)
			return
		case v < 1:
			p.warnf(a.pos, "%s %d is less than the minimum 1; keepalived uses 1, and so does vigil", name, v)
			v = 1
		case v > 99:
			p.warnf(a.pos, "%s %d is greater than the maximum 99; keepalived uses 99, and so does vigil", name, v)
			v = 99
		}
		*field(g) = int(v)
	})
}

// niceKw is vrrp_priority / checker_priority: a nice level (keepalived
// get_priority(): outside -20..19 it is reported and 0 is used).
func niceKw(name, process string, field func(g *Global) *int) *kw[Global] {
	return k(name, 1, 1, func(p *parser, s *stmt, g *Global) {
		a := s.args[0]
		v, err := strconv.ParseInt(a.text, 10, 64)
		if err != nil || v < -20 || v > 19 {
			p.warnf(a.pos, "%s %q is not a nice level in -20..19; keepalived leaves the %s process's priority alone, and so does vigil", name, a.text, process)
			return
		}
		*field(g) = int(v)
	})
}
