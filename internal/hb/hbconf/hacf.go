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
	"syslogmsgfmt": true, "memreserve": true, "max_rexmit_delay": true,
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
	hp := &haCfParser{c: &Config{UDPPort: DefaultUDPPort}, seenNode: map[string]diag.Pos{}}
	for _, l := range lines(file, src, false) {
		d := directive{l: l, key: strings.ToLower(l.fields[0]), args: l.fields[1:]}
		if !hp.nodes(d) && !hp.timing(d) && !hp.medium(d) && !hp.failback(d) && !hp.pings(d) && !hp.process(d) {
			hp.unsupported(d)
		}
	}
	return hp.finish(file)
}

// haCfParser is ParseHaCf's state: the configuration so far, what was set
// explicitly and the diagnostics.
type haCfParser struct {
	c        *Config
	ds       diag.Diagnostics
	set      struct{ keepalive, deadtime, warntime, initdead, deadping, autofail, port bool }
	mediaPos diag.Pos // the last medium line, for udpport's order
	seenNode map[string]diag.Pos
}

// directive is one ha.cf line: its lower-cased keyword and its arguments.
type directive struct {
	l    line
	key  string
	args []string
}

// need reports whether d has n arguments, and refuses it otherwise.
func (hp *haCfParser) need(d directive, n int, usage string) bool {
	if len(d.args) < n {
		hp.ds.Errorf(d.l.pos, "%s: missing value (usage: %s)", d.key, usage)
		return false
	}
	return true
}

// dur reads d's duration into dst and records it as set.
func (hp *haCfParser) dur(d directive, dst *time.Duration, flag *bool) {
	if !hp.need(d, 1, d.key+" SECONDS|NNNms") {
		return
	}
	if len(d.args) > 1 {
		hp.ds.Warnf(d.l.at(2), "%s: extra words after the value are ignored", d.key)
	}
	v, err := ParseDuration(d.args[0])
	if err != nil {
		hp.ds.Errorf(d.l.at(1), "%s: %v", d.key, err)
		return
	}
	if v <= 0 {
		hp.ds.Errorf(d.l.at(1), "%s: must be greater than zero", d.key)
		return
	}
	*dst, *flag = v, true
}

// nodes reads the node list; it reports whether d was one of its directives.
func (hp *haCfParser) nodes(d directive) bool {
	switch d.key {
	case "node":
		if !hp.need(d, 1, "node NAME...") {
			return true
		}
		for i, n := range d.args {
			if p, ok := hp.seenNode[strings.ToLower(n)]; ok {
				hp.ds.Warnf(d.l.at(i+1), "node %q listed twice (first at line %d)", n, p.Line)
				return true
			}
			hp.seenNode[strings.ToLower(n)] = d.l.at(i + 1)
			hp.c.Nodes = append(hp.c.Nodes, Node{Name: n, Pos: d.l.at(i + 1)})
		}
	default:
		return false
	}
	return true
}

// timing reads the heartbeat timers; it reports whether d was one of its directives.
func (hp *haCfParser) timing(d directive) bool {
	switch d.key {
	case "keepalive":
		hp.dur(d, &hp.c.Keepalive, &hp.set.keepalive)
	case "deadtime":
		hp.dur(d, &hp.c.Deadtime, &hp.set.deadtime)
	case "warntime":
		hp.dur(d, &hp.c.Warntime, &hp.set.warntime)
	case "initdead":
		hp.dur(d, &hp.c.Initdead, &hp.set.initdead)
	case "deadping":
		hp.dur(d, &hp.c.Deadping, &hp.set.deadping)
	default:
		return false
	}
	return true
}

// medium reads the heartbeat media and their port; it reports whether d was one of its directives.
func (hp *haCfParser) medium(d directive) bool {
	switch d.key {
	case "udpport":
		if !hp.need(d, 1, "udpport PORT") {
			return true
		}
		p, err := strconv.Atoi(d.args[0])
		if err != nil || p <= 0 || p > 65535 {
			hp.ds.Errorf(d.l.at(1), "udpport: %q is not a port number (1-65535)", d.args[0])
			return true
		}
		if hp.mediaPos.IsValid() {
			hp.ds.Warnf(d.l.pos, "udpport after a medium (line %d): as in heartbeat it applies only to the media below it", hp.mediaPos.Line)
		}
		hp.c.UDPPort, hp.set.port = p, true
	case "ucast":
		if !hp.need(d, 2, "ucast DEV PEER-IP") {
			return true
		}
		a, err := netip.ParseAddr(d.args[1])
		if err != nil || !a.Is4() {
			hp.ds.Errorf(d.l.at(2), "ucast: %q is not an IPv4 address (heartbeat's ucast resolves a host name at start; vigil wants the address)", d.args[1])
			return true
		}
		if len(d.args) > 2 {
			hp.ds.Warnf(d.l.at(3), "ucast: extra words ignored")
		}
		hp.c.Media = append(hp.c.Media, Medium{Kind: Ucast, Dev: d.args[0], Peer: a, Port: hp.c.UDPPort, Pos: d.l.pos})
		hp.mediaPos = d.l.pos
	case "bcast":
		if !hp.need(d, 1, "bcast DEV...") {
			return true
		}
		for i, dev := range d.args {
			hp.c.Media = append(hp.c.Media, Medium{Kind: Bcast, Dev: dev, Port: hp.c.UDPPort, Pos: d.l.at(i + 1)})
		}
		hp.mediaPos = d.l.pos
	case "mcast":
		// heartbeat mcast.c: mcast dev mcast-group udp-port ttl loop
		if !hp.need(d, 5, "mcast DEV GROUP PORT TTL LOOP") {
			return true
		}
		g, err := netip.ParseAddr(d.args[1])
		if err != nil || !g.Is4() || !g.IsMulticast() {
			hp.ds.Errorf(d.l.at(2), "mcast: %q is not an IPv4 multicast group (224.0.0.0/4)", d.args[1])
			return true
		}
		port, err := strconv.Atoi(d.args[2])
		if err != nil || port <= 0 || port > 65535 {
			hp.ds.Errorf(d.l.at(3), "mcast: %q is not a port number", d.args[2])
			return true
		}
		ttl, err := strconv.Atoi(d.args[3])
		if err != nil || ttl < 1 || ttl > 255 {
			hp.ds.Errorf(d.l.at(4), "mcast: ttl %q must be 1-255", d.args[3])
			return true
		}
		if d.args[4] != "0" && d.args[4] != "1" {
			hp.ds.Errorf(d.l.at(5), "mcast: loop %q must be 0 or 1", d.args[4])
			return true
		}
		hp.c.Media = append(hp.c.Media, Medium{Kind: Mcast, Dev: d.args[0], Group: g, Port: port, TTL: ttl, Loop: d.args[4] == "1", Pos: d.l.pos})
		hp.mediaPos = d.l.pos
	case "ucast6", "mcast6", "ping6":
		hp.ds.Errorf(d.l.pos, "%s: IPv6 heartbeat media are not supported by vigil yet; use %s", d.key, strings.TrimSuffix(d.key, "6"))
	case "serial", "baud":
		hp.ds.Warnf(d.l.pos, "%s: serial heartbeat links are not supported by vigil (ignored); use a second network medium (ucast/bcast/mcast) instead", d.key)
	default:
		return false
	}
	return true
}

// failback reads auto_failback and its obsolete form; it reports whether d was one of its directives.
func (hp *haCfParser) failback(d directive) bool {
	switch d.key {
	case "auto_failback":
		if !hp.need(d, 1, "auto_failback on|off|legacy") {
			return true
		}
		switch v := strings.ToLower(d.args[0]); v {
		case "on", "off", "legacy":
			hp.c.AutoFailback, hp.set.autofail = v, true
		case "true", "yes", "y", "1":
			hp.c.AutoFailback, hp.set.autofail = "on", true
		case "false", "no", "n", "0":
			hp.c.AutoFailback, hp.set.autofail = "off", true
		default:
			hp.ds.Errorf(d.l.at(1), "auto_failback: %q is not on, off or legacy", d.args[0])
		}
	case "nice_failback":
		hp.ds.Warnf(d.l.pos, "nice_failback is obsolete in heartbeat 3 (use auto_failback); `nice_failback on` read as `auto_failback off`")
		if len(d.args) > 0 && !hp.set.autofail {
			if strings.EqualFold(d.args[0], "on") {
				hp.c.AutoFailback, hp.set.autofail = "off", true
			} else {
				hp.c.AutoFailback, hp.set.autofail = "legacy", true
			}
		}
	default:
		return false
	}
	return true
}

// pings reads the ping nodes and groups; it reports whether d was one of its directives.
func (hp *haCfParser) pings(d directive) bool {
	switch d.key {
	case "ping":
		if !hp.need(d, 1, "ping ADDR...") {
			return true
		}
		for i, a := range d.args {
			ip, err := netip.ParseAddr(a)
			if err != nil || !ip.Is4() {
				hp.ds.Errorf(d.l.at(i+1), "ping: %q is not an IPv4 address", a)
				return true
			}
			hp.c.PingNodes = append(hp.c.PingNodes, PingNode{Addr: ip, Pos: d.l.at(i + 1)})
		}
	case "ping_group":
		if !hp.need(d, 2, "ping_group NAME ADDR...") {
			return true
		}
		g := PingGroup{Name: d.args[0], Pos: d.l.pos}
		for i, a := range d.args[1:] {
			ip, err := netip.ParseAddr(a)
			if err != nil || !ip.Is4() {
				hp.ds.Errorf(d.l.at(i+2), "ping_group: %q is not an IPv4 address", a)
				return true
			}
			g.Addrs = append(g.Addrs, ip)
		}
		if len(g.Addrs) > 0 {
			hp.c.PingGroups = append(hp.c.PingGroups, g)
		}
	default:
		return false
	}
	return true
}

// process reads the programs to respawn, logging and the watchdog; it reports whether d was one of its directives.
func (hp *haCfParser) process(d directive) bool {
	switch d.key {
	case "respawn":
		if !hp.need(d, 2, "respawn USER PATH [ARGS]") {
			return true
		}
		r := Respawn{User: d.args[0], Argv: d.args[1:], Pos: d.l.pos}
		if strings.HasSuffix(d.args[1], "/ipfail") {
			hp.ds.Warnf(d.l.at(2), "respawn ipfail: vigil has ipfail built in (the node that reaches fewer ping nodes hands the resources over); the program is not started")
		} else {
			hp.c.Respawn = append(hp.c.Respawn, r)
		}
	case "logfile":
		if hp.need(d, 1, "logfile PATH") {
			hp.c.LogFile, hp.c.LogFilePos = d.args[0], d.l.pos
		}
	case "debugfile":
		if hp.need(d, 1, "debugfile PATH") {
			hp.c.DebugFile, hp.c.DebugFilePos = d.args[0], d.l.pos
		}
	case "logfacility":
		if hp.need(d, 1, "logfacility FACILITY|none") {
			if !validFacility(d.args[0]) {
				hp.ds.Errorf(d.l.at(1), "logfacility: %q is not a syslog facility (auth, authpriv, daemon, local0..local7, user, none...)", d.args[0])
				return true
			}
			hp.c.LogFacility = d.args[0]
		}
	case "debug":
		if hp.need(d, 1, "debug LEVEL") {
			n, err := strconv.Atoi(d.args[0])
			if err != nil || n < 0 || n > 255 {
				hp.ds.Errorf(d.l.at(1), "debug: %q is not a level (0-255)", d.args[0])
				return true
			}
			hp.c.Debug = n
		}
	case "hbgenmethod":
		if hp.need(d, 1, "hbgenmethod file|time") {
			switch d.args[0] {
			case "file":
				hp.c.GenTime = false
			case "time":
				hp.c.GenTime = true
			default:
				// config.c set_generation_method: heartbeat refuses to start.
				hp.ds.Errorf(d.l.at(1), "hbgenmethod: %q is neither file nor time; heartbeat refuses this", d.args[0])
			}
		}
	case "watchdog":
		if hp.need(d, 1, "watchdog DEVICE") {
			if hp.c.Watchdog != "" {
				hp.ds.Errorf(d.l.pos, "watchdog: device given twice (first %s at line %d); heartbeat refuses this", hp.c.Watchdog, hp.c.WatchdogPos.Line)
				return true
			}
			hp.c.Watchdog, hp.c.WatchdogPos = d.args[0], d.l.pos
		}
	default:
		return false
	}
	return true
}

// unsupported warns about, or refuses, what vigil does not do, and warns
// about directives heartbeat does not know.
func (hp *haCfParser) unsupported(d directive) {
	switch d.key {
	case "crm", "pacemaker":
		v := ""
		if len(d.args) > 0 {
			v = strings.ToLower(d.args[0])
		}
		switch v {
		case "off", "no", "false", "n", "0":
		case "respawn", "on", "yes", "true", "y", "1":
			hp.ds.Errorf(d.l.pos, "%s %s: the CRM (Pacemaker) is not supported by vigil; only haresources resource groups are (use `crm off`)", d.key, v)
		default:
			hp.ds.Errorf(d.l.at(1), "%s: %q is not on/off/respawn; vigil supports only `crm off`", d.key, v)
		}
	case "stonith", "stonith_host":
		hp.ds.Warnf(d.l.pos, "%s: STONITH is not supported by vigil (ignored)", d.key)
	case "hopfudge", "failfast", "autojoin", "quorum_server", "crm_daemon_dir", "crmd_spawns_pengine",
		"record_config_changes", "record_pengine_inputs", "enable_config_writes":
		hp.ds.Warnf(d.l.pos, "%s: not supported by vigil (ignored)", d.key)
	default:
		if ignored[d.key] {
			return
		}
		hp.ds.Warnf(d.l.pos, "unknown directive %q (ignored)%s", d.l.fields[0], suggest(d.key, knownDirectives()))
	}
}

// finish applies heartbeat's defaults and checks the whole configuration.
func (hp *haCfParser) finish(file string) (*Config, diag.Diagnostics) {
	hp.c.applyDefaults(diag.Pos{File: file}, &hp.ds, hp.set.warntime)
	if !hp.set.initdead {
		hp.c.Initdead = 0
		hp.c.applyInitdead()
	}
	if !hp.set.deadping {
		hp.c.Deadping = hp.c.Deadtime
	}
	if !hp.set.autofail {
		hp.c.AutoFailback = "legacy"
		hp.ds.Warnf(diag.Pos{File: file}, "auto_failback not set: heartbeat's default is \"legacy\" (vigil treats it as on); say auto_failback on or off")
	}
	if len(hp.c.Nodes) == 0 {
		hp.ds.Errorf(diag.Pos{File: file}, "no `node` directive: list every cluster node by its `uname -n`")
	}
	if len(hp.c.Media) == 0 {
		hp.ds.Errorf(diag.Pos{File: file}, "no heartbeat medium: add ucast, bcast or mcast")
	}
	if hp.c.Deadtime <= 2*hp.c.Keepalive {
		hp.ds.Errorf(diag.Pos{File: file}, "deadtime %v is too small compared to keepalive %v (heartbeat requires deadtime > 2 * keepalive)", hp.c.Deadtime, hp.c.Keepalive)
	}
	if hp.c.Initdead < hp.c.Deadtime {
		hp.ds.Errorf(diag.Pos{File: file}, "initdead %v is smaller than deadtime %v", hp.c.Initdead, hp.c.Deadtime)
	}
	if hp.c.Warntime >= hp.c.Deadtime {
		hp.ds.Warnf(diag.Pos{File: file}, "warntime %v is not below deadtime %v: no late-heartbeat warning will ever be logged", hp.c.Warntime, hp.c.Deadtime)
	}
	return hp.c, hp.ds
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
