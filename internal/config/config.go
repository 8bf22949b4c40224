// Package config reads keepalived.conf (the keepalived 2.2.7 language, as
// keepalived.conf(5) and keepalived's lib/parser.c define it) into a typed
// model, and reports every problem it finds at its file:line:col.
//
// Load is pure: it reads only through the fs.FS it is given, and takes the
// host's name (for "@id" conditional lines) and the seed of ${_RANDOM} in
// Options. It never stops at the first problem.
//
// # Drop-in: what keepalived runs, vigil runs the same way
//
// keepalived 2.2.7 reports most problems and carries on: it ignores the
// line (an out-of-range number, an unknown scheduler or auth_type, a zero
// vrrp_garp_interval), falls back to a default (priority 100, state
// BACKUP, protocol UDP, scheduler wlc), resets a setting (state MASTER
// under vrrp_strict below priority 255 or with AH authentication starts
// as BACKUP; authentication under vrrp_strict or VRRPv3 is dropped; an
// advert_int the version cannot carry is rounded), or leaves an object out
// (a track_script naming a vrrp_script that is not defined above it, a
// duplicate real server, an address of the other family, a
// virtual_server naming a missing virtual_server_group). Load does
// exactly the same to the model and reports each case as a warning at its
// file:line:col that says what results ("ignored; keepalived's default
// wlc is used"). A warning therefore never means "vigil runs this
// differently": the model is what keepalived would run. `vigil check
// --strict` turns every warning into an error for those who want clean
// files.
//
// Load reports an error only where keepalived 2.2.7 does not run the file
// (its VRRP process stops: chk_min_cfg() and vrrp_complete_instance()
// return false): an instance without a valid virtual_router_id, without
// an interface (multicast) or without interface and unicast_src_ip
// (unicast), with a link-local source and no interface, with no virtual
// address under VRRPv3 or strict mode, and two instances sharing a VRID
// on one interface and group (check_vrid_conflicts()). Beyond those it
// refuses what would be unsafe to run:
//
//   - a block keyword without its '{': keepalived drops that block and
//     reads the lines that follow as unknown keywords of the enclosing
//     block, while vigil's recovery reads them as the block's own; running
//     either reading is running a guess at the file, so vigil refuses (so
//     it does for the other misplaced braces: a '{' after a keyword that
//     takes none, a '{' with no keyword, and an invalid ~SEQ or ~LST line
//     with a brace, which keepalived drops with the line);
//
//   - a vrrp_sync_group mixing address owners (priority 255) with other
//     instances: keepalived itself says it "won't work" (an owner stays
//     MASTER whatever its group does, so the group's addresses can split
//     between the nodes);
//
//   - a unicast_peer whose min_ttl is above its max_ttl: keepalived warns
//     that all its packets will be discarded and runs, so the instance
//     never hears that peer and becomes a second master;
//
//   - the same virtual_server (address, port, protocol) twice: keepalived
//     programs one kernel service from two definitions that then fight
//     over its real servers.
//
// What depends on the host rather than the file is checked outside Load:
// a script_user the host lacks disables the scripts that would run as it
// (a warning, as keepalived does: package engine), and the data plane's
// abilities (`vigil check --lvs-backend`).
//
// The model (Config) is plain data; Equal compares two models ignoring
// source positions, which is what a reload needs to decide which
// instances changed.
package config

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/vigil-ha/vigil/internal/diag"
)

// Options tune Load.
type Options struct {
	// ConfigID is matched against "@ID" / "@^ID" lines and is the value
	// of ${_INSTANCE}. keepalived defaults it to the short host name; the
	// caller passes that (Load reads no host state). Empty: "@ID" lines
	// are dropped and "@^ID" lines kept, as keepalived does without an id.
	ConfigID string
	// Root is the host directory fsys stands for, e.g. "/" for
	// os.DirFS("/"). When set, positions show host paths (Root joined
	// with the fs path), absolute includes are resolved under it, and
	// ${_PWD} is a host path. Empty: fsys is taken as the root of the
	// host and positions show fs paths.
	Root string
	// RandomSeed seeds ${_RANDOM} (keepalived uses random()).
	RandomSeed uint64
	// Limits is the budget of the load; zero fields take DefaultLimits.
	Limits Limits
	// Large, when set, is called once, on Load's goroutine, as soon as
	// the load has read LargeRead bytes (its files together plus what
	// definitions and replication add): the rest of a load that large
	// allocates heavily, and a caller may prepare for it.
	Large func()
}

// Load reads the configuration file name from fsys, with its includes,
// and returns the model and every diagnostic, sorted by position. The
// model is returned even when there are errors (it holds what could be
// read); a caller must not run a configuration with errors
// (diag.Diagnostics.HasErrors).
func Load(fsys fs.FS, name string, opts Options) (*Config, diag.Diagnostics) {
	var ds diag.Diagnostics
	ix := index()
	name = path.Clean(strings.TrimPrefix(name, "/"))
	cfg := &Config{ConfigID: opts.ConfigID}
	lx := newLexer(fsys, opts, &ds)
	lx.comment = func(text string, pos diag.Pos) {
		if kws := swallowedConfig(&ix, text); kws != nil {
			ds.Warnf(pos, "this comment contains configuration (%s): '#' and '!' start a comment anywhere on a line, so everything after it is ignored; was a line break lost?", strings.Join(kws, ", "))
		}
	}
	if !lx.open(name) {
		cfg.Files = []string{lx.displayName(name)}
		p := &parser{ix: &ix, lex: lx, diags: &ds, cfg: cfg}
		p.meta.global = &seen{}
		p.resolveGlobal(&cfg.Global)
		return cfg, sortDiagnostics(ds)
	}
	p := &parser{ix: &ix, lex: lx, diags: &ds, cfg: cfg}
	// Size the big lists from the main file: appending thousands of
	// large structs one by one would copy them again and again.
	if len(lx.stack) == 1 {
		data := lx.stack[0].data
		if n := strings.Count(data, "vrrp_instance"); n > 16 {
			cfg.Instances = make([]VRRPInstance, 0, n)
			p.meta.inst = make([]instMeta, 0, n)
		}
		if n := strings.Count(data, "virtual_server"); n > 16 {
			cfg.VirtualServers = make([]VirtualServer, 0, n)
			p.meta.vs = make([]vsMeta, 0, n)
		}
	}
	parseBody(p, rootBlock, cfg, token{kind: tEOF})
	if p.meta.global == nil {
		p.meta.global = &seen{}
	}
	cfg.Files = lx.files
	if lx.stopped {
		// The model is cut short: what the parser and the checks would
		// say of it (blocks never closed, missing parts) is noise.
		ds = ds[:lx.stopDiags]
		return cfg, sortDiagnostics(ds)
	}
	p.resolve()
	checkEmpty(lx, &ds)
	return cfg, sortDiagnostics(ds)
}

// checkEmpty refuses a configuration without a single keyword (a
// truncated file, a half-written push: running it would drop every
// instance). A file with keywords but nothing to run is the caller's to
// judge (Config.Runs).
func checkEmpty(lx *lexer, ds *diag.Diagnostics) {
	if lx.used.fileLines == 0 && lx.used.lines == 0 {
		ds.Errorf(lx.eofPos(), "the file is empty (nothing but blank lines and comments)")
	}
}

// Runs reports whether the configuration has something to run: a VRRP
// instance or a virtual server.
func (c *Config) Runs() bool { return len(c.Instances) > 0 || len(c.VirtualServers) > 0 }

// unwrapPathError drops the operation and path of a *fs.PathError (the
// position already names the file).
func unwrapPathError(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return fmt.Errorf("%w", err)
}
