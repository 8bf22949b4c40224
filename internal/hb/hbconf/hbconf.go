// Package hbconf reads heartbeat (Linux-HA 3.0) configuration: ha.cf,
// haresources and authkeys, into a typed model with file:line diagnostics.
// It reports every problem it finds: unknown directives are warnings with a
// "did you mean" suggestion, bad values are errors. It is pure apart from Load,
// which reads the three files from a directory.
//
// Behaviour follows heartbeat 3.0.6's heartbeat/config.c (parse_config,
// parse_ha_resources), heartbeat/auth.c (parse_authfile) and
// cluster-glue's cl_get_msec for time values.
package hbconf

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
)

// Config is a heartbeat node's configuration.
type Config struct {
	Dir string `json:"dir"`
	// Nodes are the cluster members (ha.cf `node`), in order.
	Nodes []Node `json:"nodes"`
	// Timings (heartbeat 3.0.6 config.c defaults: keepalive 1s, deadtime
	// 30s, warntime deadtime/2, initdead deadtime if > 10s else 12s below
	// 6s else 2*deadtime, deadping deadtime).
	Keepalive time.Duration `json:"keepalive"`
	Deadtime  time.Duration `json:"deadtime"`
	Warntime  time.Duration `json:"warntime"`
	Initdead  time.Duration `json:"initdead"`
	Deadping  time.Duration `json:"deadping"`
	UDPPort   int           `json:"udpport"`
	// GenTime is ha.cf's `hbgenmethod time`: the generation is the start
	// time in Unix seconds. The default (`file`) is a counter on disk.
	GenTime bool     `json:"hbgenmethod_time,omitempty"`
	Media   []Medium `json:"media"`
	// AutoFailback is "on", "off" or "legacy" (config.c default: legacy).
	AutoFailback string      `json:"auto_failback"`
	PingNodes    []PingNode  `json:"ping_nodes,omitempty"`
	PingGroups   []PingGroup `json:"ping_groups,omitempty"`
	Respawn      []Respawn   `json:"respawn,omitempty"`
	LogFile      string      `json:"logfile,omitempty"`
	DebugFile    string      `json:"debugfile,omitempty"`
	// LogFilePos and DebugFilePos are where logfile and debugfile stand.
	LogFilePos   diag.Pos `json:"-"`
	DebugFilePos diag.Pos `json:"-"`
	LogFacility  string   `json:"logfacility,omitempty"`
	Debug        int      `json:"debug,omitempty"`
	// Watchdog is the device of `watchdog` ("" without), at WatchdogPos.
	Watchdog    string   `json:"watchdog,omitempty"`
	WatchdogPos diag.Pos `json:"-"`
	// Groups are the resource groups of haresources, in order.
	Groups []Group `json:"groups"`
	// Auth is authkeys; nil when the file is missing or unusable.
	Auth *Auth `json:"-"`
}

// Node is one `node` name.
type Node struct {
	Name string   `json:"name"`
	Pos  diag.Pos `json:"pos"`
}

// MediumKind names a heartbeat communication plugin.
type MediumKind string

const (
	Ucast MediumKind = "ucast"
	Bcast MediumKind = "bcast"
	Mcast MediumKind = "mcast"
)

// Medium is one heartbeat path: `ucast dev peer`, `bcast dev...` (one
// Medium per device), `mcast dev group port ttl loop`.
type Medium struct {
	Kind  MediumKind `json:"kind"`
	Dev   string     `json:"dev"`
	Peer  netip.Addr `json:"peer,omitzero"`  // ucast
	Group netip.Addr `json:"group,omitzero"` // mcast
	Port  int        `json:"port"`           // udpport in force on that line
	TTL   int        `json:"ttl,omitempty"`  // mcast
	Loop  bool       `json:"loop,omitempty"` // mcast
	Pos   diag.Pos   `json:"pos"`
}

// Name is heartbeat's medium name as shown in its logs ("eth1").
func (m Medium) Name() string { return m.Dev }

// PingNode is a `ping` address: a pseudo-node that is alive while it answers
// ICMP echo.
type PingNode struct {
	Addr netip.Addr `json:"addr"`
	Pos  diag.Pos   `json:"pos"`
}

// PingGroup is a `ping_group name addr...`: alive while any member answers.
type PingGroup struct {
	Name  string       `json:"name"`
	Addrs []netip.Addr `json:"addrs"`
	Pos   diag.Pos     `json:"pos"`
}

// Respawn is a `respawn user path [args]` client child.
type Respawn struct {
	User string   `json:"user"`
	Argv []string `json:"argv"`
	Pos  diag.Pos `json:"pos"`
}

// Group is one haresources line: a home node and its resources, started in
// order and stopped in reverse.
type Group struct {
	Node      string     `json:"node"`
	Resources []Resource `json:"resources"`
	Pos       diag.Pos   `json:"pos"`
}

// Name is the group's key, as heartbeat's ResourceManager names it: its
// first resource as written.
func (g Group) Name() string {
	if len(g.Resources) == 0 {
		return g.Node
	}
	return g.Resources[0].Raw
}

// Resource is one resource of a group: `Agent::arg1::arg2`, or the bare
// `ip/prefix/dev` shorthand, which heartbeat treats as IPaddr::ip/prefix/dev.
type Resource struct {
	Raw   string   `json:"raw"`
	Agent string   `json:"agent"`
	Args  []string `json:"args,omitempty"`
	Pos   diag.Pos `json:"pos"`
}

// Auth is authkeys: the active method number and every method listed.
type Auth struct {
	Active  int
	Methods map[int]AuthMethod
	Pos     diag.Pos
}

// AuthMethod is `N crc`, `N md5 KEY` or `N sha1 KEY`.
type AuthMethod struct {
	Type string // crc, md5, sha1
	Key  string
}

// Load reads ha.cf, haresources and authkeys from dir. A missing
// haresources is allowed (no resources); a missing ha.cf or authkeys is an
// error. The authkeys mode is checked as heartbeat does.
func Load(dir string) (*Config, diag.Diagnostics) {
	var ds diag.Diagnostics
	read := func(name string, required bool) (string, fs.FileInfo, bool) {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			if required || !os.IsNotExist(err) {
				ds.Errorf(diag.Pos{File: p}, "cannot read %s: %v", name, err)
			}
			return "", nil, false
		}
		st, err := os.Stat(p)
		if err != nil {
			ds.Errorf(diag.Pos{File: p}, "%v", err)
			return "", nil, false
		}
		return string(b), st, true
	}
	cfg := &Config{Dir: dir}
	if s, _, ok := read("ha.cf", true); ok {
		c, d := ParseHaCf(filepath.Join(dir, "ha.cf"), s)
		ds = append(ds, d...)
		*cfg = *c
		cfg.Dir = dir
	} else {
		cfg.applyDefaults(diag.Pos{File: filepath.Join(dir, "ha.cf")}, &ds, false)
	}
	if s, _, ok := read("haresources", false); ok {
		g, d := ParseHaResources(filepath.Join(dir, "haresources"), s)
		ds = append(ds, d...)
		cfg.Groups = g
	}
	if s, st, ok := read("authkeys", true); ok {
		a, d := ParseAuthKeys(filepath.Join(dir, "authkeys"), s, st.Mode())
		ds = append(ds, d...)
		cfg.Auth = a
	}
	cfg.crossCheck(&ds)
	ds.Sort()
	return cfg, ds
}

// crossCheck validates haresources against ha.cf.
func (c *Config) crossCheck(ds *diag.Diagnostics) {
	for _, g := range c.Groups {
		if len(c.Nodes) > 0 && !c.HasNode(g.Node) {
			ds.Errorf(g.Pos, "haresources: node %q is not a `node` in ha.cf (nodes: %s)%s", g.Node, strings.Join(c.NodeNames(), ", "), suggest(g.Node, c.NodeNames()))
		}
	}
}

// HasNode reports whether name is a configured node (case-insensitive, as
// heartbeat compares node names).
func (c *Config) HasNode(name string) bool {
	for _, n := range c.Nodes {
		if strings.EqualFold(n.Name, name) {
			return true
		}
	}
	return false
}

// NodeNames lists the node names.
func (c *Config) NodeNames() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Name
	}
	return out
}

// ParseDuration parses a heartbeat time value as cl_get_msec does: a
// decimal number of seconds, or with an "ms" or "us" suffix.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	num := s
	mult := float64(time.Second)
	switch {
	case strings.HasSuffix(strings.ToLower(s), "ms"):
		num, mult = strings.TrimSpace(s[:len(s)-2]), float64(time.Millisecond)
	case strings.HasSuffix(strings.ToLower(s), "us"):
		num, mult = strings.TrimSpace(s[:len(s)-2]), float64(time.Microsecond)
	case strings.HasSuffix(strings.ToLower(s), "s") && !strings.HasSuffix(strings.ToLower(s), "ms"):
		// "2s" is not accepted by heartbeat: cl_get_msec rejects unknown units.
		return 0, fmt.Errorf("%q: unit %q not understood by heartbeat (use seconds, or NNNms)", s, "s")
	}
	if num == "" || strings.IndexFunc(num, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }) >= 0 {
		return 0, fmt.Errorf("%q is not a time (seconds, or NNNms)", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a time (seconds, or NNNms)", s)
	}
	// cl_get_msec rounds to whole milliseconds.
	ms := int64(f*mult/float64(time.Millisecond) + 0.5)
	return time.Duration(ms) * time.Millisecond, nil
}

// suggest returns ` (did you mean "x"?)` for the closest candidate within
// edit distance 2, or "".
func suggest(word string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(word), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			// transposition counts as one edit
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev[j-1]) // approximate Damerau
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// line is one logical line with its fields and where each field starts.
type line struct {
	pos    diag.Pos
	fields []string
	poss   []diag.Pos
}

// lines splits a file into non-empty, comment-stripped lines ('#' starts a
// comment, as in heartbeat; in haresources a trailing '\' joins the next
// line). Each field keeps its physical line and column.
func lines(file, src string, joinBackslash bool) []line {
	var out []line
	raw := strings.Split(src, "\n")
	for i := 0; i < len(raw); i++ {
		var l line
		for {
			text := strings.TrimRight(raw[i], "\r")
			cont := joinBackslash && strings.HasSuffix(text, "\\") && i+1 < len(raw)
			if cont {
				text = text[:len(text)-1]
			}
			if k := strings.IndexByte(text, '#'); k >= 0 {
				text, cont = text[:k], false
			}
			col := 0
			for col < len(text) {
				for col < len(text) && (text[col] == ' ' || text[col] == '\t') {
					col++
				}
				if col >= len(text) {
					break
				}
				end := col
				for end < len(text) && text[end] != ' ' && text[end] != '\t' {
					end++
				}
				l.fields = append(l.fields, text[col:end])
				l.poss = append(l.poss, diag.Pos{File: file, Line: i + 1, Col: col + 1})
				col = end
			}
			if !cont {
				break
			}
			i++
		}
		if len(l.fields) > 0 {
			l.pos = l.poss[0]
			out = append(out, l)
		}
	}
	return out
}

func (l line) at(i int) diag.Pos {
	if i < len(l.poss) {
		return l.poss[i]
	}
	return l.pos
}

// FailsBack reports whether resources go back to their home node when it
// returns. heartbeat's "legacy" means on when every node's ha.cf says
// legacy or nothing; vigil runs it as on (the check warns).
func (c *Config) FailsBack() bool { return c.AutoFailback != "off" }

// AutoFailbackSummary is auto_failback as it is run: the value written and,
// for legacy, what vigil does with it.
func (c *Config) AutoFailbackSummary() string {
	if c.AutoFailback == "legacy" {
		return "legacy (run as on)"
	}
	return c.AutoFailback
}
