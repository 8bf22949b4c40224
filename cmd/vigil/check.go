package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/hb"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/lb/ipvs"
	"github.com/vigil-ha/vigil/internal/lb/nft"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/translate"
)

// defaultConfigFile is keepalived's default configuration file.
const defaultConfigFile = "/etc/keepalived/keepalived.conf"

// runCheck is `vigil check`: parse and validate a keepalived.conf, print
// every diagnostic as file:line:col: severity: message (to stderr), then a
// summary or, with --json, the normalised model (to stdout). Exit status 0
// without errors, 1 with errors, 2 on bad usage.
func runCheck(args []string, stdout, stderr io.Writer) int {
	v := checkConfig(args, stdout, stderr)
	switch {
	case !v.checked:
		return v.code
	case v.errs > 0:
		return 1
	}
	return 0
}

// checkVerdict is what checkConfig found. checked is false when it ended
// before a verdict on a keepalived.conf (usage error, help, --ha-dir, a
// model it could not print): code is then the exit status.
type checkVerdict struct {
	checked     bool
	code        int
	errs, warns int
	// security: keepalived would report a script security violation
	// (translate.ScriptSecurityViolation).
	security bool
}

// Exit statuses of keepalived 2.2.7's -t (config_test_exit in
// keepalived/core/main.c, enum chk_exit_code in lib/scheduler.h).
const (
	// keepalivedTestCannotRun: a file it cannot run (not readable,
	// a bad interface, a fatal error).
	keepalivedTestCannotRun = 4
	// keepalivedTestErrors: errors reported, and keepalived would run
	// the file all the same.
	keepalivedTestErrors = 5
	// keepalivedTestSecurity: scripts configured, found, and
	// enable_script_security off ("SECURITY VIOLATION").
	keepalivedTestSecurity = 6
)

// configTestExit is the exit status of keepalived's -t for a verdict:
// 0 for a clean file, 5 when vigil warns (what keepalived reports and
// tolerates: it runs the file), 4 when vigil refuses the file (errors,
// and a file it cannot read), and 6 whenever keepalived would report a
// script security violation: keepalived keeps the highest of the statuses
// it met, and the security error is the highest (report_config_error,
// config_err_t), so it wins over the others.
func configTestExit(v checkVerdict) int {
	switch {
	case !v.checked:
		return v.code
	case v.security:
		return keepalivedTestSecurity
	case v.errs > 0:
		return keepalivedTestCannotRun
	case v.warns > 0:
		return keepalivedTestErrors
	}
	return 0
}

// checkConfig does runCheck's work and returns its verdict.
func checkConfig(args []string, stdout, stderr io.Writer) checkVerdict {
	fs := newFlagSet("check", "[-f FILE] [-i ID] [--strict] [--lvs-backend ipvs|nftables] [--json] [-q] [--ha-dir DIR]", stderr)
	file := fs.StringP("use-file", "f", defaultConfigFile, "configuration file to check")
	id := fs.StringP("config-id", "i", "", "config id for @id conditional lines (default: the short host name)")
	asJSON := fs.Bool("json", false, "print the normalised model as JSON instead of the summary")
	quiet := fs.BoolP("quiet", "q", false, "print only the diagnostics")
	haDir := fs.String("ha-dir", "", "check heartbeat's ha.cf, haresources and authkeys in this directory instead")
	strict := fs.Bool("strict", false, "report every warning (what keepalived 2.2.7 reports and tolerates, what vigil ignores) as an error: exit 1 unless the file is clean")
	lvsBackend := fs.String("lvs-backend", "", "check virtual servers for the data plane of the target host, ipvs or nftables, instead of this host's")
	var limits config.Limits
	addLimitsFlag(fs, &limits)
	if code, ok := parseFlags(fs, args); !ok {
		return checkVerdict{code: code}
	}
	if code, ok := noArgs(fs); !ok {
		return checkVerdict{code: code}
	}
	target := targetHost{ipvs: ipvs.Available()}
	switch *lvsBackend {
	case "":
	case lb.BackendIPVS, lb.BackendNFTables:
		target = targetHost{ipvs: *lvsBackend == lb.BackendIPVS, given: true}
	default:
		fmt.Fprintf(stderr, "vigil check: --lvs-backend %q: want ipvs or nftables\n", *lvsBackend)
		return checkVerdict{code: 2}
	}
	if *haDir != "" && !fs.Changed("use-file") {
		return checkVerdict{code: checkHADir(*haDir, stdout, stderr, *quiet)}
	}
	if !fs.Changed("config-id") {
		*id = shortHostname()
	}
	abs, err := filepath.Abs(*file)
	if err != nil {
		fmt.Fprintf(stderr, "vigil check: %v\n", err)
		return checkVerdict{code: 2}
	}
	cfg, ds := readConfig(abs, *id, limits, nil)
	if exists, ok := hostInterfaces(); ok && cfg != nil {
		ds = append(ds, cfg.MissingInterfaces(exists)...)
		ds.Sort()
	}
	// plane names the data plane the verdict on virtual servers assumes.
	plane := ""
	var spec *runspec.Spec          // what the daemon would run; nil with errors
	var dspec *runspec.DirectorSpec // its virtual servers, likewise
	if !ds.HasErrors() {
		// What the daemon checks on top of the file: scripts (resolved,
		// enable_script_security), checkers, what the data plane can do.
		sp, more := translate.FromConfig(cfg)
		spec = &sp
		ds = append(ds, more...)
		dsp, more := translate.DirectorFromConfig(cfg)
		dspec = &dsp
		ds = append(ds, more...)
		more, plane = backendDiagnostics(cfg, dsp, target)
		ds = append(ds, more...)
		ds = append(ds, syncDaemonDiagnostics(cfg)...)
		ds = append(ds, bgpDiagnostics(cfg)...)
		ds.Sort()
	}
	if *strict {
		for i := range ds {
			if ds[i].Severity == diag.Warning {
				ds[i].Severity = diag.Error
				ds[i].Msg += " [--strict]"
			}
		}
	}
	for _, d := range ds {
		fmt.Fprintln(stderr, d)
	}
	if *asJSON {
		b, err := cfg.MarshalJSON()
		if err != nil {
			fmt.Fprintf(stderr, "vigil check: %v\n", err)
			return checkVerdict{code: 1}
		}
		stdout.Write(b)
	} else if !*quiet {
		summary(stdout, cfg, spec, dspec)
		if plane != "" {
			// The verdict on virtual servers depends on the data plane.
			fmt.Fprintf(stdout, "data plane: %s\n", plane)
		}
	}
	errs, warns := count(ds)
	if errs > 0 || warns > 0 {
		fmt.Fprintf(stderr, "%s: %d error(s), %d warning(s)\n", abs, errs, warns)
	}
	return checkVerdict{checked: true, errs: errs, warns: warns, security: cfg != nil && translate.ScriptSecurityViolation(cfg)}
}

// hostInterfaces tells which interfaces exist in the network namespace
// vigil check runs in; ok is false when they cannot be listed.
func hostInterfaces() (exists func(string) bool, ok bool) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, false
	}
	set := make(map[string]bool, len(ifs))
	for _, ifi := range ifs {
		set[ifi.Name] = true
	}
	return func(name string) bool { return set[name] }, true
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

// summary prints what the configuration sets up: with spec and dspec (the
// daemon's translation), the trackers, scripts and checkers that will run,
// not those the diagnostics said will not.
func summary(w io.Writer, c *config.Config, spec *runspec.Spec, dspec *runspec.DirectorSpec) {
	trackers := map[string][]runspec.TrackRef{}
	running := map[string]bool{}
	if spec != nil {
		for _, in := range spec.Instances {
			trackers[in.VRRP.Name] = in.Trackers
		}
		for _, sc := range spec.Scripts {
			running[sc.Name] = true
		}
	}
	fmt.Fprintf(w, "configuration %s", strings.Join(c.Files, ", "))
	if c.ConfigID != "" {
		fmt.Fprintf(w, " (config id %s)", c.ConfigID)
	}
	fmt.Fprintln(w)
	if len(c.Instances) > 0 {
		fmt.Fprintf(w, "vrrp instances: %d\n", len(c.Instances))
		vmacs := translate.VMACNames(c)
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
			switch vi.Auth.Type {
			case config.AuthPass:
				fmt.Fprintf(w, "    authentication: PASS\n")
			case config.AuthAH:
				fmt.Fprintf(w, "    authentication: AH (IP protocol 51, HMAC-MD5-96 keyed with auth_pass, as keepalived)\n")
			}
			if n := vmacs[vi.Name]; n != "" {
				adverts := n
				if vi.VMACXmitBase {
					adverts = vi.Interface
				}
				fmt.Fprintf(w, "    VMAC: %s on %s, adverts from %s\n", n, vi.Interface, adverts)
			}
			if vi.StrictMode {
				fmt.Fprintf(w, "    strict mode\n")
			}
			if !vi.Accept && vi.Priority != 255 {
				fmt.Fprintf(w, "    accept mode off: traffic to the VIPs is dropped while MASTER\n")
			}
			var track []string
			if spec != nil {
				// Sync group trackers included, weights as they apply.
				for _, t := range trackers[vi.Name] {
					track = append(track, fmt.Sprintf("%s %s (weight %d)", strings.TrimPrefix(t.Kind.String(), "track_"), t.Name, t.Weight))
				}
			} else {
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
			off := ""
			if spec != nil && !running[s.Name] {
				off = " (will not run: see the diagnostics)"
			}
			fmt.Fprintf(w, "  %s: %q every %s, weight %d, rise %d, fall %d%s\n",
				s.Name, strings.Join(s.Script.Args, " "), fmtDur(s.Interval), s.Weight, s.Rise, s.Fall, off)
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
		running := runningCheckers(c, dspec)
		for i := range c.VirtualServers {
			vs := &c.VirtualServers[i]
			fmt.Fprintf(w, "  %s: %s %s, delay_loop %s, quorum %d\n", vsString(*vs), vs.Scheduler, vs.Forwarding.Method, fmtDur(vs.DelayLoop), vs.Quorum)
			for j, r := range vs.RealServers {
				var checks []string
				left := 0
				rcs, ok := running[vs]
				switch {
				case dspec == nil:
					for _, ch := range r.Checkers {
						checks = append(checks, string(ch.Type))
					}
				case !ok || j >= len(rcs):
					checks = []string{"not installed (see the diagnostics)"}
				default:
					for _, ch := range rcs[j].Checkers {
						checks = append(checks, ch.Policy.Kind.String())
					}
					left = len(r.Checkers) - len(rcs[j].Checkers)
				}
				if len(checks) == 0 {
					checks = []string{"no checker"}
				}
				if left > 0 {
					checks = append(checks, fmt.Sprintf("%d left out (see the diagnostics)", left))
				}
				method := ""
				if r.Forwarding.Method != vs.Forwarding.Method {
					method = " " + string(r.Forwarding.Method)
				}
				fmt.Fprintf(w, "    %s%s weight %d: %s\n", netip.AddrPortFrom(r.Addr, r.Port), method, r.Weight, strings.Join(checks, ", "))
			}
		}
	}
	bgpSummary(w, c)
	if cs := c.ConntrackSync; cs != nil {
		peer := "unicast " + cs.Peer.String()
		if cs.McastGroup.IsValid() {
			peer = "multicast " + cs.McastGroup.String()
		}
		fmt.Fprintf(w, "conntrack sync: conntrackd (FTFW) on %s to %s port %d, follows %s, filter %s\n",
			cs.Interface, peer, cs.Port, cs.Instance+cs.SyncGroup, cs.Filter)
	}
}

// runningCheckers maps each virtual server the director installs to its
// real servers' checks in dspec, in the order of its real servers
// (translate.DirectorSources gives dspec's order); nil without dspec.
func runningCheckers(c *config.Config, dspec *runspec.DirectorSpec) map[*config.VirtualServer][]runspec.RealCheck {
	if dspec == nil {
		return nil
	}
	out := map[*config.VirtualServer][]runspec.RealCheck{}
	i := 0
	for _, vs := range translate.DirectorSources(c) {
		n := len(vs.RealServers)
		if i+n > len(dspec.Checks) {
			break
		}
		out[vs] = dspec.Checks[i : i+n]
		i += n
	}
	return out
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

// targetHost is the host a check is for: this one (ipvs from the kernel),
// or the one --lvs-backend describes.
type targetHost struct {
	ipvs  bool // the target's kernel has IPVS
	given bool // --lvs-backend described it
}

// backendDiagnostics reports what the data plane vigil would use on the
// target host cannot do (e.g. DR on nftables), and names that data plane
// and why it is the one ("" without virtual servers).
func backendDiagnostics(cfg *config.Config, dspec runspec.DirectorSpec, target targetHost) (diag.Diagnostics, string) {
	var ds diag.Diagnostics
	if len(dspec.VirtualServers) == 0 {
		return nil, ""
	}
	name, err := lb.ChooseBackend(cfg.Global.LVSBackend, target.ipvs)
	if err != nil {
		ds.Errorf(cfg.Global.Pos, "%v", err)
		return ds, ""
	}
	why := "lvs_backend " + cfg.Global.LVSBackend
	switch {
	case cfg.Global.LVSBackend != "" && cfg.Global.LVSBackend != lb.BackendAuto:
	case target.given && target.ipvs:
		why = "--lvs-backend ipvs: a target host with IPVS"
	case target.given:
		why = "--lvs-backend nftables: a target host without IPVS"
	case target.ipvs:
		why = "this host has IPVS"
	default:
		why = "this host has no IPVS; --lvs-backend ipvs checks for a director that has it"
	}
	plane := name + " (" + why + ")"
	caps := nft.Capabilities()
	if name == lb.BackendIPVS {
		caps = ipvs.Capabilities()
	}
	srcs := translate.DirectorSources(cfg)
	for _, f := range caps.Check(dspec.VirtualServers) {
		vs := srcs[f.VS]
		pos := vs.Pos
		switch {
		case f.Sorry && vs.SorryServer != nil:
			pos = vs.SorryServer.Pos
		case f.Real >= 0:
			pos = vs.RealServers[f.Real].Pos
		}
		// The data plane is named once, with why it is the one assumed.
		msg := strings.TrimSuffix(f.Msg, " (lvs_backend "+name+")")
		if f.Unsupported {
			ds.Errorf(pos, "%s (data plane %s: %s)", msg, name, why)
		} else {
			ds.Warnf(pos, "%s (data plane %s: %s)", msg, name, why)
		}
	}
	return ds, plane
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
		fmt.Fprintf(stdout, "  keepalive %s, deadtime %s, warntime %s, initdead %s, auto_failback %s\n", cfg.Keepalive, cfg.Deadtime, cfg.Warntime, cfg.Initdead, cfg.AutoFailbackSummary())
		for _, m := range cfg.Media {
			fmt.Fprintf(stdout, "  medium %s %s %s\n", m.Kind, m.Dev, firstValid(m.Peer, m.Group))
		}
		if cfg.Watchdog != "" {
			fmt.Fprintf(stdout, "  watchdog %s: written with every heartbeat; a node killed without a clean stop is reset by the kernel\n", cfg.Watchdog)
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
