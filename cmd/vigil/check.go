package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/lb/ipvs"
	"github.com/vigil-ha/vigil/internal/lb/nft"
)

// defaultConfigFile is keepalived's default configuration file.
const defaultConfigFile = "/etc/keepalived/keepalived.conf"

// runCheck is `vigil check`: parse and validate a keepalived.conf, print
// every diagnostic as file:line:col: severity: message (to stderr), then a
// summary or, with --json, the normalised model (to stdout). Exit status 0
// without errors, 1 with errors, 2 on bad usage.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "[-f FILE] [-i ID] [--json] [-q] [--ha-dir DIR]", stderr)
	file := fs.StringP("use-file", "f", defaultConfigFile, "configuration file to check")
	id := fs.StringP("config-id", "i", "", "config id for @id conditional lines (default: the short host name)")
	asJSON := fs.Bool("json", false, "print the normalised model as JSON instead of the summary")
	quiet := fs.BoolP("quiet", "q", false, "print only the diagnostics")
	haDir := fs.String("ha-dir", "", "check heartbeat's ha.cf, haresources and authkeys in this directory instead")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := noArgs(fs); !ok {
		return code
	}
	if *haDir != "" && !fs.Changed("use-file") {
		return checkHADir(*haDir, stdout, stderr, *quiet)
	}
	if !fs.Changed("config-id") {
		*id = shortHostname()
	}
	abs, err := filepath.Abs(*file)
	if err != nil {
		fmt.Fprintf(stderr, "vigil check: %v\n", err)
		return 2
	}
	cfg, ds := config.Load(os.DirFS("/"), abs, config.Options{ConfigID: *id, Root: "/"})
	if !ds.HasErrors() {
		// What the daemon checks on top of the file: scripts (resolved,
		// enable_script_security), checkers, what the data plane can do.
		_, more := engine.FromConfig(cfg)
		ds = append(ds, more...)
		dspec, more := engine.DirectorFromConfig(cfg)
		ds = append(ds, more...)
		ds = append(ds, backendDiagnostics(cfg, dspec)...)
		ds.Sort()
	}
	for _, d := range ds {
		fmt.Fprintln(stderr, d)
	}
	if *asJSON {
		b, err := cfg.MarshalJSON()
		if err != nil {
			fmt.Fprintf(stderr, "vigil check: %v\n", err)
			return 1
		}
		stdout.Write(b)
	} else if !*quiet {
		summary(stdout, cfg)
	}
	errs, warns := count(ds)
	if errs > 0 || warns > 0 {
		fmt.Fprintf(stderr, "%s: %d error(s), %d warning(s)\n", abs, errs, warns)
	}
	if errs > 0 {
		return 1
	}
	return 0
}

func count(ds diag.Diagnostics) (errs, warns int) {
	for _, d := range ds {
		if d.Severity == diag.Error {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

// shortHostname is keepalived's default config id: the node name up to the
// first dot.
func shortHostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h, _, _ = strings.Cut(h, ".")
	return h
}

// summary prints what the configuration sets up.
func summary(w io.Writer, c *config.Config) {
	fmt.Fprintf(w, "configuration %s", strings.Join(c.Files, ", "))
	if c.ConfigID != "" {
		fmt.Fprintf(w, " (config id %s)", c.ConfigID)
	}
	fmt.Fprintln(w)
	if len(c.Instances) > 0 {
		fmt.Fprintf(w, "vrrp instances: %d\n", len(c.Instances))
		for _, vi := range c.Instances {
			iface := vi.Interface
			if iface == "" {
				iface = "-"
			}
			mode := "multicast " + vi.McastGroup.String()
			if vi.Unicast {
				var peers []string
				for _, p := range vi.UnicastPeers {
					peers = append(peers, p.Addr.String())
				}
				mode = "unicast to " + strings.Join(peers, ",")
			}
			fmt.Fprintf(w, "  %s: interface %s, vrid %d, priority %d, %s, v%d, advert %s, %s\n",
				vi.Name, iface, vi.VRID, vi.Priority, vi.State, vi.Version, fmtDur(vi.AdvertInt), mode)
			var vips []string
			for _, a := range vi.VirtualIPs {
				vips = append(vips, addrString(a))
			}
			if len(vips) > 0 {
				fmt.Fprintf(w, "    VIPs: %s\n", strings.Join(vips, ", "))
			}
			var track []string
			for _, t := range vi.TrackScripts {
				track = append(track, fmt.Sprintf("script %s (weight %d)", t.Name, t.Weight))
			}
			for _, t := range vi.TrackInterfaces {
				track = append(track, fmt.Sprintf("interface %s (weight %d)", t.Name, t.Weight))
			}
			for _, t := range vi.TrackFiles {
				track = append(track, fmt.Sprintf("file %s (weight %d)", t.Name, t.Weight))
			}
			for _, t := range vi.TrackProcesses {
				track = append(track, fmt.Sprintf("process %s (weight %d)", t.Name, t.Weight))
			}
			if len(track) > 0 {
				fmt.Fprintf(w, "    tracks: %s\n", strings.Join(track, ", "))
			}
			if vi.SyncGroup != "" {
				fmt.Fprintf(w, "    sync group: %s\n", vi.SyncGroup)
			}
		}
	}
	if len(c.Scripts) > 0 {
		fmt.Fprintf(w, "vrrp scripts: %d\n", len(c.Scripts))
		for _, s := range c.Scripts {
			fmt.Fprintf(w, "  %s: %q every %s, weight %d, rise %d, fall %d\n",
				s.Name, strings.Join(s.Script.Args, " "), fmtDur(s.Interval), s.Weight, s.Rise, s.Fall)
		}
	}
	if len(c.SyncGroups) > 0 {
		fmt.Fprintf(w, "sync groups: %d\n", len(c.SyncGroups))
		for _, g := range c.SyncGroups {
			fmt.Fprintf(w, "  %s: %s\n", g.Name, strings.Join(g.Instances, ", "))
		}
	}
	if len(c.VirtualServers) > 0 {
		rs := 0
		for _, vs := range c.VirtualServers {
			rs += len(vs.RealServers)
		}
		fmt.Fprintf(w, "virtual servers: %d, real servers: %d\n", len(c.VirtualServers), rs)
		for _, vs := range c.VirtualServers {
			fmt.Fprintf(w, "  %s: %s %s, delay_loop %s, quorum %d\n", vsString(vs), vs.Scheduler, vs.Forwarding.Method, fmtDur(vs.DelayLoop), vs.Quorum)
			for _, r := range vs.RealServers {
				var checks []string
				for _, ch := range r.Checkers {
					checks = append(checks, string(ch.Type))
				}
				if len(checks) == 0 {
					checks = []string{"no checker"}
				}
				fmt.Fprintf(w, "    %s weight %d: %s\n", netip.AddrPortFrom(r.Addr, r.Port), r.Weight, strings.Join(checks, ", "))
			}
		}
	}
}

func vsString(vs config.VirtualServer) string {
	switch {
	case vs.Group != "":
		return "group " + vs.Group
	case vs.FWMark != 0:
		return fmt.Sprintf("fwmark %d", vs.FWMark)
	}
	s := netip.AddrPortFrom(vs.Addr, vs.Port).String()
	if vs.Protocol != "" {
		s += "/" + string(vs.Protocol)
	}
	return s
}

func addrString(a config.Address) string {
	s := a.Prefix.String()
	if a.Dev != "" {
		s += " dev " + a.Dev
	}
	if a.Label != "" {
		s += " label " + a.Label
	}
	return s
}

func fmtDur(d time.Duration) string {
	return strings.TrimSuffix(fmt.Sprintf("%gs", d.Seconds()), "")
}

// backendDiagnostics reports what the data plane vigil would use on this
// host cannot do (e.g. DR on nftables).
func backendDiagnostics(cfg *config.Config, dspec engine.DirectorSpec) diag.Diagnostics {
	var ds diag.Diagnostics
	if len(dspec.VirtualServers) == 0 {
		return nil
	}
	name, err := lb.ChooseBackend(cfg.Global.LVSBackend, ipvs.Available())
	if err != nil {
		ds.Errorf(cfg.Global.Pos, "%v", err)
		return ds
	}
	caps := nft.Capabilities()
	if name == lb.BackendIPVS {
		caps = ipvs.Capabilities()
	}
	for _, d := range caps.Check(dspec.VirtualServers) {
		pos := diag.Pos{File: d.Where}
		if i := strings.LastIndexByte(d.Where, ':'); i > 0 {
			// "file:line" (lb positions carry no column)
			if _, err := fmt.Sscanf(d.Where[i+1:], "%d", &pos.Line); err == nil {
				pos.File = d.Where[:i]
			}
		}
		if d.Severity == lb.Error {
			ds.Errorf(pos, "%s (on %s)", d.Msg, name)
		} else {
			ds.Warnf(pos, "%s (on %s)", d.Msg, name)
		}
	}
	return ds
}

// checkHADir checks a heartbeat configuration directory.
func checkHADir(dir string, stdout, stderr io.Writer, quiet bool) int {
	cfg, ds := hb.Load(dir)
	for _, d := range ds {
		fmt.Fprintln(stderr, d)
	}
	if !quiet && cfg != nil && !ds.HasErrors() {
		fmt.Fprintf(stdout, "heartbeat configuration %s\n", dir)
		var nodes []string
		for _, n := range cfg.Nodes {
			nodes = append(nodes, n.Name)
		}
		fmt.Fprintf(stdout, "  nodes: %s\n", strings.Join(nodes, ", "))
		fmt.Fprintf(stdout, "  keepalive %s, deadtime %s, warntime %s, initdead %s, auto_failback %s\n", cfg.Keepalive, cfg.Deadtime, cfg.Warntime, cfg.Initdead, cfg.AutoFailback)
		for _, m := range cfg.Media {
			fmt.Fprintf(stdout, "  medium %s %s %s\n", m.Kind, m.Dev, firstValid(m.Peer, m.Group))
		}
		for _, g := range cfg.Groups {
			var rs []string
			for _, r := range g.Resources {
				rs = append(rs, r.Raw)
			}
			fmt.Fprintf(stdout, "  group %s, home %s: %s\n", g.Name(), g.Node, strings.Join(rs, " "))
		}
	}
	errs, warns := count(ds)
	if errs > 0 || warns > 0 {
		fmt.Fprintf(stderr, "%s: %d error(s), %d warning(s)\n", dir, errs, warns)
	}
	if errs > 0 {
		return 1
	}
	return 0
}

func firstValid(as ...netip.Addr) string {
	for _, a := range as {
		if a.IsValid() {
			return a.String()
		}
	}
	return ""
}
