package hbconf

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
)

// DefaultUDPPort is heartbeat's port (IANA "ha-cluster", config.c UDPPORT).
const DefaultUDPPort = 694

// directives lists every ha.cf keyword heartbeat 3.0.6 knows (config.c
// Directives[] and WLdirectives[], plus the media plugin names), for the
// "did you mean" of unknown keywords. The value says how vigil treats it.
var directives = map[string]string{
	"node": "", "keepalive": "", "deadtime": "", "deadping": "", "warntime": "", "initdead": "",
	"udpport": "", "ucast": "", "bcast": "", "mcast": "", "ucast6": "", "mcast6": "",
	"auto_failback": "", "nice_failback": "", "ping": "", "ping_group": "", "ping6": "", "respawn": "",
	"logfile": "", "debugfile": "", "logfacility": "", "debug": "", "watchdog": "",
	"crm": "", "pacemaker": "", "baud": "", "serial": "", "hopfudge": "",
	"stonith": "", "stonith_host": "", "apiauth": "", "failfast": "",
	"rtprio": "", "hbgenmethod": "", "realtime": "", "normalpoll": "", "msgfmt": "",
	"use_logd": "", "conn_logd_time": "", "use_apphbd": "", "log_badpack": "", "syslogmsgfmt": "",
	"coredumps": "", "coreroot": "", "crm_daemon_dir": "", "crmd_spawns_pengine": "",
	"autojoin": "", "uuidfrom": "", "compression": "", "compression_threshold": "",
	"traditional_compression": "", "env": "", "memreserve": "", "max_rexmit_delay": "",
	"record_config_changes": "", "record_pengine_inputs": "", "enable_config_writes": "",
	"quorum_server": "",
}

// ignored are directives vigil accepts silently: tuning of heartbeat's own
// process that has no meaning for vigil.
var ignored = map[string]bool{
	"rtprio": true, "realtime": true, "normalpoll": true, "coredumps": true, "coreroot": true,
	"use_logd": true, "conn_logd_time": true, "use_apphbd": true, "log_badpack": true,
	"syslogmsgfmt": true, "memreserve": true, "max_rexmit_delay": true, "hbgenmethod": true,
	"uuidfrom": true, "compression": true, "compression_threshold": true,
	"traditional_compression": true, "msgfmt": true, "apiauth": true, "env": true,
}

func knownDirectives() []string {
	out := make([]string, 0, len(directives))
	for k := range directives {
		out = append(out, k)
	}
	return out
}

// ParseHaCf parses ha.cf. Directive order matters as in heartbeat: udpport
// applies to the media lines after it.
func ParseHaCf(file, src string) (*Config, diag.Diagnostics) {
	var ds diag.Diagnostics
	c := &Config{UDPPort: DefaultUDPPort}
	var set struct{ keepalive, deadtime, warntime, initdead, deadping, autofail, port bool }
	var mediaPos diag.Pos
	seenNode := map[string]diag.Pos{}
	for _, l := range lines(file, src, false) {
		key := strings.ToLower(l.fields[0])
		args := l.fields[1:]
		need := func(n int, usage string) bool {
			if len(args) < n {
				ds.Errorf(l.pos, "%s: missing value (usage: %s)", key, usage)
				return false
			}
			return true
		}
		dur := func(dst *time.Duration, flag *bool) {
			if !need(1, key+" SECONDS|NNNms") {
				return
			}
			if len(args) > 1 {
				ds.Warnf(l.at(2), "%s: extra words after the value are ignored", key)
			}
			d, err := ParseDuration(args[0])
			if err != nil {
				ds.Errorf(l.at(1), "%s: %v", key, err)
				return
			}
			if d <= 0 {
				ds.Errorf(l.at(1), "%s: must be greater than zero", key)
				return
			}
			*dst, *flag = d, true
		}
		switch key {
		case "node":
			if !need(1, "node NAME...") {
				continue
			}
			for i, n := range args {
				if p, ok := seenNode[strings.ToLower(n)]; ok {
					ds.Warnf(l.at(i+1), "node %q listed twice (first at line %d)", n, p.Line)
					continue
				}
				seenNode[strings.ToLower(n)] = l.at(i + 1)
				c.Nodes = append(c.Nodes, Node{Name: n, Pos: l.at(i + 1)})
			}
		case "keepalive":
			dur(&c.Keepalive, &set.keepalive)
		case "deadtime":
			dur(&c.Deadtime, &set.deadtime)
		case "warntime":
			dur(&c.Warntime, &set.warntime)
		case "initdead":
			dur(&c.Initdead, &set.initdead)
		case "deadping":
			dur(&c.Deadping, &set.deadping)
		case "udpport":
			if !need(1, "udpport PORT") {
				continue
			}
			p, err := strconv.Atoi(args[0])
			if err != nil || p <= 0 || p > 65535 {
				ds.Errorf(l.at(1), "udpport: %q is not a port number (1-65535)", args[0])
				continue
			}
			if mediaPos.IsValid() {
				ds.Warnf(l.pos, "udpport after a medium (line %d): as in heartbeat it applies only to the media below it", mediaPos.Line)
			}
			c.UDPPort, set.port = p, true
		case "ucast":
			if !need(2, "ucast DEV PEER-IP") {
				continue
			}
			a, err := netip.ParseAddr(args[1])
			if err != nil || !a.Is4() {
				ds.Errorf(l.at(2), "ucast: %q is not an IPv4 address (heartbeat's ucast resolves a host name at start; vigil wants the address)", args[1])
				continue
			}
			if len(args) > 2 {
				ds.Warnf(l.at(3), "ucast: extra words ignored")
			}
			c.Media = append(c.Media, Medium{Kind: Ucast, Dev: args[0], Peer: a, Port: c.UDPPort, Pos: l.pos})
			mediaPos = l.pos
		case "bcast":
			if !need(1, "bcast DEV...") {
				continue
			}
			for i, d := range args {
				c.Media = append(c.Media, Medium{Kind: Bcast, Dev: d, Port: c.UDPPort, Pos: l.at(i + 1)})
			}
			mediaPos = l.pos
		case "mcast":
			// heartbeat mcast.c: mcast dev mcast-group udp-port ttl loop
			if !need(5, "mcast DEV GROUP PORT TTL LOOP") {
				continue
			}
			g, err := netip.ParseAddr(args[1])
			if err != nil || !g.Is4() || !g.IsMulticast() {
				ds.Errorf(l.at(2), "mcast: %q is not an IPv4 multicast group (224.0.0.0/4)", args[1])
				continue
			}
			port, err := strconv.Atoi(args[2])
			if err != nil || port <= 0 || port > 65535 {
				ds.Errorf(l.at(3), "mcast: %q is not a port number", args[2])
				continue
			}
			ttl, err := strconv.Atoi(args[3])
			if err != nil || ttl < 1 || ttl > 255 {
				ds.Errorf(l.at(4), "mcast: ttl %q must be 1-255", args[3])
				continue
			}
			if args[4] != "0" && args[4] != "1" {
				ds.Errorf(l.at(5), "mcast: loop %q must be 0 or 1", args[4])
				continue
			}
			c.Media = append(c.Media, Medium{Kind: Mcast, Dev: args[0], Group: g, Port: port, TTL: ttl, Loop: args[4] == "1", Pos: l.pos})
			mediaPos = l.pos
		case "ucast6", "mcast6", "ping6":
			ds.Errorf(l.pos, "%s: IPv6 heartbeat media are not supported by vigil yet; use %s", key, strings.TrimSuffix(key, "6"))
		case "serial", "baud":
			ds.Warnf(l.pos, "%s: serial heartbeat links are not supported by vigil (ignored); use a second network medium (ucast/bcast/mcast) instead", key)
		case "auto_failback":
			if !need(1, "auto_failback on|off|legacy") {
				continue
			}
			switch v := strings.ToLower(args[0]); v {
			case "on", "off", "legacy":
				c.AutoFailback, set.autofail = v, true
			case "true", "yes", "y", "1":
				c.AutoFailback, set.autofail = "on", true
			case "false", "no", "n", "0":
				c.AutoFailback, set.autofail = "off", true
			default:
				ds.Errorf(l.at(1), "auto_failback: %q is not on, off or legacy", args[0])
			}
		case "nice_failback":
			ds.Warnf(l.pos, "nice_failback is obsolete in heartbeat 3 (use auto_failback); `nice_failback on` read as `auto_failback off`")
			if len(args) > 0 && !set.autofail {
				if strings.EqualFold(args[0], "on") {
					c.AutoFailback, set.autofail = "off", true
				} else {
					c.AutoFailback, set.autofail = "legacy", true
				}
			}
		case "ping":
			if !need(1, "ping ADDR...") {
				continue
			}
			for i, a := range args {
				ip, err := netip.ParseAddr(a)
				if err != nil || !ip.Is4() {
					ds.Errorf(l.at(i+1), "ping: %q is not an IPv4 address", a)
					continue
				}
				c.PingNodes = append(c.PingNodes, PingNode{Addr: ip, Pos: l.at(i + 1)})
			}
		case "ping_group":
			if !need(2, "ping_group NAME ADDR...") {
				continue
			}
			g := PingGroup{Name: args[0], Pos: l.pos}
			for i, a := range args[1:] {
				ip, err := netip.ParseAddr(a)
				if err != nil || !ip.Is4() {
					ds.Errorf(l.at(i+2), "ping_group: %q is not an IPv4 address", a)
					continue
				}
				g.Addrs = append(g.Addrs, ip)
			}
			if len(g.Addrs) > 0 {
				c.PingGroups = append(c.PingGroups, g)
			}
		case "respawn":
			if !need(2, "respawn USER PATH [ARGS]") {
				continue
			}
			r := Respawn{User: args[0], Argv: args[1:], Pos: l.pos}
			if strings.HasSuffix(args[1], "/ipfail") {
				ds.Warnf(l.at(2), "respawn ipfail: vigil has ipfail built in (the node that reaches fewer ping nodes hands the resources over); the program is not started")
			} else {
				c.Respawn = append(c.Respawn, r)
			}
		case "logfile":
			if need(1, "logfile PATH") {
				c.LogFile, c.LogFilePos = args[0], l.pos
			}
		case "debugfile":
			if need(1, "debugfile PATH") {
				c.DebugFile, c.DebugFilePos = args[0], l.pos
			}
		case "logfacility":
			if need(1, "logfacility FACILITY|none") {
				if !validFacility(args[0]) {
					ds.Errorf(l.at(1), "logfacility: %q is not a syslog facility (auth, authpriv, daemon, local0..local7, user, none...)", args[0])
					continue
				}
				c.LogFacility = args[0]
			}
		case "debug":
			if need(1, "debug LEVEL") {
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 0 || n > 255 {
					ds.Errorf(l.at(1), "debug: %q is not a level (0-255)", args[0])
					continue
				}
				c.Debug = n
			}
		case "watchdog":
			if need(1, "watchdog DEVICE") {
				c.Watchdog = args[0]
				ds.Warnf(l.pos, "watchdog: vigil does not drive %s; a hung vigil is not rebooted by the kernel (the peer still takes over after deadtime)", args[0])
			}
		case "crm", "pacemaker":
			v := ""
			if len(args) > 0 {
				v = strings.ToLower(args[0])
			}
			switch v {
			case "off", "no", "false", "n", "0":
			case "respawn", "on", "yes", "true", "y", "1":
				ds.Errorf(l.pos, "%s %s: the CRM (Pacemaker) is not supported by vigil; only haresources resource groups are (use `crm off`)", key, v)
			default:
				ds.Errorf(l.at(1), "%s: %q is not on/off/respawn; vigil supports only `crm off`", key, v)
			}
		case "stonith", "stonith_host":
			ds.Warnf(l.pos, "%s: STONITH is not supported by vigil (ignored)", key)
		case "hopfudge", "failfast", "autojoin", "quorum_server", "crm_daemon_dir", "crmd_spawns_pengine",
			"record_config_changes", "record_pengine_inputs", "enable_config_writes":
			ds.Warnf(l.pos, "%s: not supported by vigil (ignored)", key)
		default:
			if ignored[key] {
				continue
			}
			ds.Warnf(l.pos, "unknown directive %q (ignored)%s", l.fields[0], suggest(key, knownDirectives()))
		}
	}
	c.applyDefaults(diag.Pos{File: file}, &ds, set.warntime)
	if !set.initdead {
		c.Initdead = 0
		c.applyInitdead()
	}
	if !set.deadping {
		c.Deadping = c.Deadtime
	}
	if !set.autofail {
		c.AutoFailback = "legacy"
		ds.Warnf(diag.Pos{File: file}, "auto_failback not set: heartbeat's default is \"legacy\" (vigil treats it as on); say auto_failback on or off")
	}
	if len(c.Nodes) == 0 {
		ds.Errorf(diag.Pos{File: file}, "no `node` directive: list every cluster node by its `uname -n`")
	}
	if len(c.Media) == 0 {
		ds.Errorf(diag.Pos{File: file}, "no heartbeat medium: add ucast, bcast or mcast")
	}
	if c.Deadtime <= 2*c.Keepalive {
		ds.Errorf(diag.Pos{File: file}, "deadtime %v is too small compared to keepalive %v (heartbeat requires deadtime > 2 * keepalive)", c.Deadtime, c.Keepalive)
	}
	if c.Initdead < c.Deadtime {
		ds.Errorf(diag.Pos{File: file}, "initdead %v is smaller than deadtime %v", c.Initdead, c.Deadtime)
	}
	if c.Warntime >= c.Deadtime {
		ds.Warnf(diag.Pos{File: file}, "warntime %v is not below deadtime %v: no late-heartbeat warning will ever be logged", c.Warntime, c.Deadtime)
	}
	return c, ds
}

// applyDefaults fills heartbeat 3.0.6's defaults (config.c init_config /
// parse_config).
func (c *Config) applyDefaults(_ diag.Pos, _ *diag.Diagnostics, warnSet bool) {
	if c.Keepalive == 0 {
		c.Keepalive = time.Second
	}
	if c.Deadtime == 0 {
		c.Deadtime = 30 * time.Second
	}
	if !warnSet || c.Warntime == 0 {
		if c.Warntime == 0 {
			c.Warntime = c.Deadtime / 2
		}
	}
	if c.UDPPort == 0 {
		c.UDPPort = DefaultUDPPort
	}
	if c.AutoFailback == "" {
		c.AutoFailback = "legacy"
	}
	if c.Initdead == 0 {
		c.applyInitdead()
	}
	if c.Deadping == 0 {
		c.Deadping = c.Deadtime
	}
}

// applyInitdead: config.c: initdead defaults to deadtime when deadtime >
// 10s, else 12s when deadtime < 6s, else 2*deadtime.
func (c *Config) applyInitdead() {
	switch {
	case c.Deadtime > 10*time.Second:
		c.Initdead = c.Deadtime
	case c.Deadtime < 6*time.Second:
		c.Initdead = 12 * time.Second
	default:
		c.Initdead = 2 * c.Deadtime
	}
}

func validFacility(f string) bool {
	switch strings.ToLower(f) {
	case "none", "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user", "uucp",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7":
		return true
	}
	return false
}
