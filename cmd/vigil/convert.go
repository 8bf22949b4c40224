package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/hb/hbconf"
)

// runConvert is `vigil convert --ha-dir DIR [--node NAME]`: it prints a
// keepalived.conf that does with VRRP what the heartbeat configuration does,
// for those who want to move on from heartbeat. What has no VRRP equivalent
// is said in comments, so the output is a reviewed starting point, not a
// silent translation.
func runConvert(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("convert", "[--ha-dir DIR] [--node NAME] [--first-vrid N] [--script-dir DIR]", stderr)
	dir := fs.String("ha-dir", "/etc/ha.d", "heartbeat configuration directory (ha.cf, haresources, authkeys)")
	node := fs.String("node", "", "write the configuration for this node (default: the host name, as heartbeat)")
	vrid := fs.Int("first-vrid", 51, "virtual_router_id of the first resource group; the next ones count up")
	scriptDir := fs.String("script-dir", "", "write each group's resource script (start/stop of its non-IP resources) into this directory; the configuration names it there (default: name /etc/vigil and print the scripts as comments)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := noArgs(fs); !ok {
		return code
	}
	cfg, ds := hb.Load(*dir)
	for _, d := range ds {
		fmt.Fprintln(stderr, d)
	}
	if ds.HasErrors() {
		fmt.Fprintln(stderr, "vigil convert: fix the errors above first")
		return 1
	}
	self := *node
	if self == "" {
		self, _ = os.Hostname()
	}
	conv, err := convertHA(cfg, self, *vrid)
	if err != nil {
		fmt.Fprintf(stderr, "vigil convert: %v\n", err)
		return 1
	}
	for _, w := range conv.warnings {
		fmt.Fprintln(stderr, w)
	}
	where := *scriptDir
	if where == "" {
		where = "/etc/vigil"
	}
	if _, err := io.WriteString(stdout, conv.render(where, *scriptDir != "")); err != nil {
		return 1
	}
	if *scriptDir != "" {
		if err := os.MkdirAll(*scriptDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "vigil convert: %v\n", err)
			return 1
		}
		for _, g := range conv.groups {
			if g.script == "" {
				continue
			}
			path := filepath.Join(*scriptDir, g.name+".sh")
			if err := os.WriteFile(path, []byte(g.script), 0o755); err != nil {
				fmt.Fprintf(stderr, "vigil convert: %v\n", err)
				return 1
			}
			fmt.Fprintf(stderr, "vigil convert: wrote %s\n", path)
		}
	}
	return 0
}

// converted is a heartbeat configuration turned into keepalived.conf
// blocks for one node, before the resource scripts' directory is known.
type converted struct {
	head     string
	groups   []convertedGroup
	warnings []string
}

type convertedGroup struct {
	name   string
	before string // the instance up to its notify lines
	script string // the group's resource script ("" when it has only addresses)
}

// render returns the keepalived.conf, the notify lines naming the scripts
// in dir; unless written, each script is printed as a comment for review.
func (c converted) render(dir string, written bool) string {
	b := &strings.Builder{}
	b.WriteString(c.head)
	for _, g := range c.groups {
		b.WriteString(g.before)
		if g.script != "" {
			path := filepath.Join(dir, g.name+".sh")
			if written {
				fmt.Fprintf(b, "    ! %s starts the group's other resources in order and stops them in reverse.\n", path)
			} else {
				fmt.Fprintf(b, "    ! Write %s (or run vigil convert --script-dir %s):\n", path, dir)
				for _, l := range strings.Split(strings.TrimRight(g.script, "\n"), "\n") {
					fmt.Fprintf(b, "    !   %s\n", l)
				}
			}
			for _, ev := range []string{"notify_master \"%s start\"", "notify_backup \"%s stop\"", "notify_fault \"%s stop\"", "notify_stop \"%s stop\""} {
				fmt.Fprintf(b, "    "+ev+"\n", path)
			}
		}
		b.WriteString("}\n\n")
	}
	return b.String()
}

func convertHA(cfg *hbconf.Config, self string, firstVRID int) (converted, error) {
	var c converted
	isNode := false
	for _, n := range cfg.Nodes {
		isNode = isNode || strings.EqualFold(n.Name, self)
	}
	if !isNode {
		return c, fmt.Errorf("node %q is not in %s/ha.cf (use --node)", self, cfg.Dir)
	}
	for _, l := range []struct {
		kw, path string
		pos      diag.Pos
	}{{"logfile", cfg.LogFile, cfg.LogFilePos}, {"debugfile", cfg.DebugFile, cfg.DebugFilePos}} {
		if l.path != "" {
			c.warnings = append(c.warnings, diag.Diagnostic{Pos: l.pos, Severity: diag.Warning,
				Msg: fmt.Sprintf("%s %s: keepalived.conf has no log file; vigil logs to stderr (the journal under systemd: journalctl -u vigil)", l.kw, l.path)}.String())
		}
	}
	if cfg.Watchdog != "" {
		c.warnings = append(c.warnings, diag.Diagnostic{Pos: cfg.WatchdogPos, Severity: diag.Warning,
			Msg: fmt.Sprintf("watchdog %s: keepalived.conf has no watchdog; a vigil killed with kill -9 keeps its VIPs until restarted (run it with --ha-dir to keep heartbeat's watchdog)", cfg.Watchdog)}.String())
	}
	b := &strings.Builder{}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("! keepalived.conf for node %s, converted by `vigil convert` from %s.\n", self, cfg.Dir)
	p("! Review it: heartbeat and VRRP differ where the comments say.\n")
	p("!\n")
	p("! heartbeat: keepalive %s, deadtime %s, warntime %s, initdead %s, auto_failback %s\n",
		cfg.Keepalive, cfg.Deadtime, cfg.Warntime, cfg.Initdead, cfg.AutoFailback)
	p("! VRRP declares the master dead after 3 x advert_int + skew; advert_int below is\n")
	p("! deadtime / 3 so the takeover time stays about the same (VRRPv3 allows\n")
	p("! centiseconds; keepalive and warntime have no equivalent).\n")
	if cfg.LogFile != "" || cfg.DebugFile != "" {
		p("! logfile/debugfile: vigil logs to stderr (the journal under systemd).\n")
	}
	p("\n")

	p("global_defs {\n    router_id %s\n    enable_script_security\n    script_user root    ! heartbeat ran its resource scripts as root\n", self)
	if cfg.Auth != nil {
		p("    ! authkeys: VRRPv3 carries no authentication; keep the VRRP network private.\n")
	}
	p("}\n\n")

	var pings []netip.Addr
	for _, pn := range cfg.PingNodes {
		pings = append(pings, pn.Addr)
	}
	for _, pg := range cfg.PingGroups {
		pings = append(pings, pg.Addrs...)
	}
	if len(pings) > 0 {
		p("! ping nodes (ipfail): the node that cannot reach them loses priority and\n")
		p("! hands the groups to the one that can.\n")
		for i, a := range pings {
			p("vrrp_script ping_%d {\n    script \"/bin/ping -c 1 -W 1 %s\"\n    interval %d\n    fall 2\n    rise 2\n    weight -60\n}\n\n", i+1, a, max(1, int(cfg.Keepalive.Seconds())))
		}
	}
	c.head = b.String()

	advert := cfg.Deadtime / 3
	if advert.Milliseconds() < 10 {
		advert = cfg.Deadtime
	}
	adv := fmt.Sprintf("%.2f", advert.Seconds())
	adv = strings.TrimRight(strings.TrimRight(adv, "0"), ".")
	// heartbeat's ucast media: the dedicated link(s) it talked over. VRRP
	// uses the first one for its adverts, unicast to the peer, so the
	// cluster keeps its private heartbeat path.
	var links []hbconf.Medium
	for _, m := range cfg.Media {
		if m.Kind == hbconf.Ucast {
			links = append(links, m)
		}
	}
	for gi, g := range cfg.Groups {
		b.Reset()
		var vips []string
		var starts, stops []string
		dev := ""
		for _, r := range g.Resources {
			switch strings.ToLower(r.Agent) {
			case "ipaddr", "ipaddr2":
				if len(r.Args) == 0 {
					continue
				}
				f := strings.Split(r.Args[0], "/")
				addr := f[0]
				if len(f) > 1 {
					addr += "/" + f[1]
				}
				vd := ""
				if len(f) > 2 && f[2] != "" {
					vd = f[2]
					if dev == "" {
						dev = f[2]
					}
				}
				vips = append(vips, addr+"\x00"+vd)
			default:
				cmd := resourceCommand(cfg.Dir, r)
				starts = append(starts, cmd+" start")
				stops = append([]string{cmd + " stop"}, stops...)
			}
		}
		if dev == "" {
			dev = "eth0"
			p("! group %s: no IP resource names a device; eth0 assumed.\n", g.Name())
		}
		home := strings.EqualFold(g.Node, self)
		prio := 100
		if home {
			prio = 150
		}
		name := instanceName(g, gi)
		advDev, peers := dev, []string(nil)
		if len(links) > 0 {
			advDev = links[0].Dev
			for _, m := range links {
				if m.Dev == advDev {
					peers = append(peers, m.Peer.String())
				}
			}
		}
		p("! haresources line %d: %s\n", g.Pos.Line, groupLine(g))
		p("vrrp_instance %s {\n", name)
		p("    state BACKUP\n    interface %s\n    virtual_router_id %d\n    version 3\n", advDev, firstVRID+gi)
		p("    priority %d    ! %s\n", prio, map[bool]string{true: "home node of the group", false: "not the home node"}[home])
		p("    advert_int %s\n", adv)
		if cfg.AutoFailback == "off" || cfg.AutoFailback == "legacy" {
			p("    nopreempt    ! auto_failback %s\n", cfg.AutoFailback)
		}
		if len(peers) > 0 {
			if advDev != dev {
				p("    ! adverts go over heartbeat's dedicated link (ucast %s); the addresses stay on %s\n", advDev, dev)
			}
			p("    unicast_peer {\n")
			for _, pe := range peers {
				p("        %s\n", pe)
			}
			p("    }\n")
		}
		for _, m := range links[min(len(links), 1):] {
			if m.Dev != advDev {
				p("    ! heartbeat also used ucast %s %s: VRRP adverts go on %s only.\n", m.Dev, m.Peer, advDev)
			}
		}
		if advDev != dev {
			// The service's own link failing must still move the group.
			p("    track_interface {\n        %s\n    }\n", dev)
		}
		p("    virtual_ipaddress {\n")
		for _, v := range vips {
			addr, vd, _ := strings.Cut(v, "\x00")
			if vd == "" && advDev != dev {
				vd = dev
			}
			if vd != "" {
				addr += " dev " + vd
			}
			p("        %s\n", addr)
		}
		p("    }\n")
		if len(pings) > 0 {
			p("    track_script {\n")
			for i := range pings {
				p("        ping_%d\n", i+1)
			}
			p("    }\n")
		}
		cg := convertedGroup{name: name, before: b.String()}
		if len(starts) > 0 {
			cg.script = fmt.Sprintf("#!/bin/sh\n# Resource script of heartbeat group %q (haresources line %d),\n# written by vigil convert: start its resources in order, stop them in reverse.\ncase \"$1\" in\nstart) %s ;;\nstop) %s ;;\n*) echo \"usage: $0 start|stop\" >&2; exit 2 ;;\nesac\n",
				g.Name(), g.Pos.Line, strings.Join(starts, " && "), strings.Join(stops, "; "))
		}
		c.groups = append(c.groups, cg)
	}
	return c, nil
}

// resourceCommand finds a resource's script as heartbeat does: ha.d's
// resource.d first, then /etc/init.d.
func resourceCommand(dir string, r hbconf.Resource) string {
	name := r.Agent
	path := filepath.Join(dir, "resource.d", name)
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join("/etc/init.d", name)
	}
	if len(r.Args) > 0 {
		return path + " " + strings.Join(r.Args, " ")
	}
	return path
}

func instanceName(g hbconf.Group, i int) string {
	return fmt.Sprintf("HA_GROUP_%d", i+1)
}

func groupLine(g hbconf.Group) string {
	var rs []string
	for _, r := range g.Resources {
		rs = append(rs, r.Raw)
	}
	return g.Node + " " + strings.Join(rs, " ")
}
