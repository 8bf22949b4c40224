package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/hb/hbconf"
)

// runConvert is `vigil convert --ha-dir DIR [--node NAME]`: it prints a
// keepalived.conf that does with VRRP what the heartbeat configuration does,
// for those who want to move on from heartbeat. What has no VRRP equivalent
// is said in comments, so the output is a reviewed starting point, not a
// silent translation.
func runConvert(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("convert", "[--ha-dir DIR] [--node NAME] [--first-vrid N]", stderr)
	dir := fs.String("ha-dir", "/etc/ha.d", "heartbeat configuration directory (ha.cf, haresources, authkeys)")
	node := fs.String("node", "", "write the configuration for this node (default: the host name, as heartbeat)")
	vrid := fs.Int("first-vrid", 51, "virtual_router_id of the first resource group; the next ones count up")
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
	if err := writeConverted(stdout, cfg, self, *vrid); err != nil {
		fmt.Fprintf(stderr, "vigil convert: %v\n", err)
		return 1
	}
	return 0
}

func writeConverted(w io.Writer, cfg *hbconf.Config, self string, firstVRID int) error {
	isNode := false
	for _, n := range cfg.Nodes {
		isNode = isNode || strings.EqualFold(n.Name, self)
	}
	if !isNode {
		return fmt.Errorf("node %q is not in %s/ha.cf (use --node)", self, cfg.Dir)
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
	p("! centiseconds; keepalive and warntime have no equivalent).\n\n")

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

	advert := cfg.Deadtime / 3
	if advert.Milliseconds() < 10 {
		advert = cfg.Deadtime
	}
	adv := fmt.Sprintf("%.2f", advert.Seconds())
	adv = strings.TrimRight(strings.TrimRight(adv, "0"), ".")
	for gi, g := range cfg.Groups {
		var vips, starts, stops []string
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
				line := addr
				if len(f) > 2 && f[2] != "" {
					line += " dev " + f[2]
					if dev == "" {
						dev = f[2]
					}
				}
				vips = append(vips, line)
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
		p("! haresources line %d: %s\n", g.Pos.Line, groupLine(g))
		p("vrrp_instance %s {\n", instanceName(g, gi))
		p("    state BACKUP\n    interface %s\n    virtual_router_id %d\n    version 3\n", dev, firstVRID+gi)
		p("    priority %d    ! %s\n", prio, map[bool]string{true: "home node of the group", false: "not the home node"}[home])
		p("    advert_int %s\n", adv)
		if cfg.AutoFailback == "off" || cfg.AutoFailback == "legacy" {
			p("    nopreempt    ! auto_failback %s\n", cfg.AutoFailback)
		}
		var peers []string
		for _, m := range cfg.Media {
			if m.Kind == hbconf.Ucast && m.Dev == dev {
				peers = append(peers, m.Peer.String())
			}
		}
		if len(peers) > 0 {
			p("    unicast_peer {\n")
			for _, pe := range peers {
				p("        %s\n", pe)
			}
			p("    }\n")
		} else {
			for _, m := range cfg.Media {
				if m.Kind == hbconf.Ucast {
					p("    ! heartbeat also used ucast %s %s: VRRP adverts go on %s only.\n", m.Dev, m.Peer, dev)
				}
			}
		}
		p("    virtual_ipaddress {\n")
		for _, v := range vips {
			p("        %s\n", v)
		}
		p("    }\n")
		if len(pings) > 0 {
			p("    track_script {\n")
			for i := range pings {
				p("        ping_%d\n", i+1)
			}
			p("    }\n")
		}
		if len(starts) > 0 {
			script := filepath.Join("/etc/vigil", instanceName(g, gi)+".sh")
			p("    ! The group's other resources, started in order on becoming master and\n")
			p("    ! stopped in reverse otherwise; %s should be:\n", script)
			p("    !   #!/bin/sh\n    !   case \"$1\" in\n")
			p("    !   start) %s ;;\n", strings.Join(starts, " && "))
			p("    !   stop) %s ;;\n    !   esac\n", strings.Join(stops, "; "))
			p("    notify_master \"%s start\"\n", script)
			p("    notify_backup \"%s stop\"\n", script)
			p("    notify_fault \"%s stop\"\n", script)
			p("    notify_stop \"%s stop\"\n", script)
		}
		p("}\n\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
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
