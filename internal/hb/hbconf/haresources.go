package hbconf

import (
	"io/fs"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/internal/diag"
)

// ParseHaResources parses haresources: `node res1 res2::arg1::arg2 ...` per
// line (a trailing backslash continues a line). A bare `ip[/prefix[/dev[/bcast]]]`
// is IPaddr's shorthand (heartbeat's ResourceManager: a resource that
// starts with a digit is an IPaddr argument).
func ParseHaResources(file, src string) ([]Group, diag.Diagnostics) {
	var ds diag.Diagnostics
	var groups []Group
	seen := map[string]diag.Pos{}
	for _, l := range lines(file, src, true) {
		g := Group{Node: l.fields[0], Pos: l.pos}
		if len(l.fields) == 1 {
			ds.Errorf(l.pos, "haresources: node %q has no resources", g.Node)
			continue
		}
		for i, f := range l.fields[1:] {
			r, ok := parseResource(f, l.at(i+1), &ds)
			if !ok {
				continue
			}
			if p, dup := seen[r.Raw]; dup {
				ds.Errorf(r.Pos, "haresources: resource %q already belongs to the group at line %d", r.Raw, p.Line)
				continue
			}
			seen[r.Raw] = r.Pos
			g.Resources = append(g.Resources, r)
		}
		if len(g.Resources) > 0 {
			groups = append(groups, g)
		}
	}
	return groups, ds
}

func parseResource(f string, pos diag.Pos, ds *diag.Diagnostics) (Resource, bool) {
	r := Resource{Raw: f, Pos: pos}
	parts := strings.Split(f, "::")
	r.Agent, r.Args = parts[0], parts[1:]
	if r.Agent == "" {
		ds.Errorf(pos, "haresources: %q: empty resource name before \"::\"", f)
		return r, false
	}
	for _, a := range r.Args {
		if a == "" {
			ds.Warnf(pos, "haresources: %q: empty argument between \"::\"", f)
		}
	}
	if c := r.Agent[0]; c >= '0' && c <= '9' {
		// ResourceManager: "IPaddr::" is implied before an address.
		r.Args = append([]string{r.Agent}, r.Args...)
		r.Agent = "IPaddr"
	}
	switch r.Agent {
	case "IPaddr", "IPaddr2":
		if len(r.Args) == 0 {
			ds.Errorf(pos, "haresources: %s needs an address: %s::ADDR[/PREFIX[/DEV]]", r.Agent, r.Agent)
			return r, false
		}
		if _, err := ParseIPArg(r.Args[0]); err != nil {
			ds.Errorf(pos, "haresources: %s: %v", r.Agent, err)
			return r, false
		}
	case "Filesystem":
		if len(r.Args) < 2 {
			ds.Errorf(pos, "haresources: Filesystem needs a device and a mount point: Filesystem::DEVICE::MOUNTPOINT[::FSTYPE[::OPTIONS]]")
			return r, false
		}
		if !strings.HasPrefix(r.Args[1], "/") {
			ds.Errorf(pos, "haresources: Filesystem: mount point %q is not an absolute path", r.Args[1])
			return r, false
		}
	}
	return r, true
}

// IPArg is IPaddr's argument `ip[/prefix[/dev[/broadcast]]]`.
type IPArg struct {
	Prefix netip.Prefix // the address with its prefix length (default /24 here: see ParseIPArg)
	Dev    string       // "" = the interface whose network contains the address
	Label  string       // IPaddr's "dev:label" form, or ""
	HasLen bool         // the prefix length was given
}

// ParseIPArg parses IPaddr's argument. Without a prefix length the
// resource agent finds the interface with a route to the address and uses
// its netmask (findif); vigil does the same at start and keeps /32 only if
// no interface matches.
func ParseIPArg(s string) (IPArg, error) {
	parts := strings.Split(s, "/")
	ip, err := netip.ParseAddr(parts[0])
	if err != nil || !ip.Is4() {
		return IPArg{}, errorf("%q is not an IPv4 address", parts[0])
	}
	a := IPArg{Prefix: netip.PrefixFrom(ip, 32)}
	if len(parts) > 1 && parts[1] != "" {
		n, err := strconv.Atoi(parts[1])
		if err != nil {
			// a dotted netmask is accepted by IPaddr as well
			m, err2 := netip.ParseAddr(parts[1])
			if err2 != nil || !m.Is4() {
				return IPArg{}, errorf("%q is not a prefix length or netmask", parts[1])
			}
			n = maskLen(m)
			if n < 0 {
				return IPArg{}, errorf("%q is not a contiguous netmask", parts[1])
			}
		}
		if n < 1 || n > 32 {
			return IPArg{}, errorf("prefix length %d out of range 1-32", n)
		}
		a.Prefix, a.HasLen = netip.PrefixFrom(ip, n), true
	}
	if len(parts) > 2 {
		a.Dev = parts[2]
		if i := strings.IndexByte(a.Dev, ':'); i >= 0 {
			a.Dev, a.Label = a.Dev[:i], a.Dev
		}
	}
	if len(parts) > 4 {
		return IPArg{}, errorf("%q: too many \"/\" parts (want ip/prefix/dev[/broadcast])", s)
	}
	return a, nil
}

func maskLen(m netip.Addr) int {
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	if v != 0 {
		return -1
	}
	return n
}

// ParseAuthKeys parses authkeys as heartbeat's parse_authfile does: `auth N`
// selects the method used to sign, lines `N crc`, `N md5 KEY`, `N sha1 KEY`
// define methods (N in 0..15, the key is one word). mode is the file's mode:
// heartbeat refuses to start when the group or others may read it.
func ParseAuthKeys(file, src string, mode fs.FileMode) (*Auth, diag.Diagnostics) {
	var ds diag.Diagnostics
	a := &Auth{Active: -1, Methods: map[int]AuthMethod{}, Pos: diag.Pos{File: file}}
	if mode.Perm()&0o044 != 0 {
		ds.Errorf(diag.Pos{File: file}, "authkeys is readable by group or others (mode %04o): heartbeat refuses such a key file (\"Bad permissions on keyfile\"); run chmod 600 %s", mode.Perm(), file)
	}
	var authPos diag.Pos
	for _, l := range lines(file, src, false) {
		if strings.EqualFold(l.fields[0], "auth") {
			if len(l.fields) < 2 {
				ds.Errorf(l.pos, "auth: missing method number (auth N)")
				continue
			}
			n, err := strconv.Atoi(l.fields[1])
			if err != nil {
				ds.Errorf(l.at(1), "auth: %q is not a number", l.fields[1])
				continue
			}
			a.Active, authPos = n, l.pos
			continue
		}
		n, err := strconv.Atoi(l.fields[0])
		if err != nil {
			ds.Errorf(l.pos, "authkeys: line is neither `auth N` nor `N METHOD [KEY]`%s", suggest(l.fields[0], []string{"auth"}))
			continue
		}
		// auth.c: MAXAUTH is 16.
		if n < 0 || n > 15 {
			ds.Errorf(l.pos, "authkeys: method number %d out of range 0-15", n)
			continue
		}
		if len(l.fields) < 2 {
			ds.Errorf(l.pos, "authkeys: method %d has no type (crc, md5 or sha1)", n)
			continue
		}
		m := AuthMethod{Type: strings.ToLower(l.fields[1])}
		if len(l.fields) > 2 {
			m.Key = l.fields[2]
		}
		if len(l.fields) > 3 {
			ds.Warnf(l.at(3), "authkeys: the key is one word; %q and after are ignored (as heartbeat's sscanf does)", l.fields[3])
		}
		switch m.Type {
		case "crc":
			if m.Key != "" {
				ds.Errorf(l.at(2), "authkeys: crc takes no key")
				continue
			}
			ds.Warnf(l.at(1), "authkeys: crc is a checksum, not authentication: anyone on the link can forge heartbeats; use sha1")
		case "md5", "sha1":
			if m.Key == "" {
				ds.Errorf(l.pos, "authkeys: %s requires a key", m.Type)
				continue
			}
		default:
			ds.Errorf(l.at(1), "authkeys: unknown method %q (crc, md5 or sha1)%s", l.fields[1], suggest(l.fields[1], []string{"crc", "md5", "sha1"}))
			continue
		}
		a.Methods[n] = m
	}
	switch {
	case a.Active < 0:
		ds.Errorf(diag.Pos{File: file}, "authkeys: no `auth N` line: say which method signs outgoing packets")
		return nil, ds
	case len(a.Methods) == 0:
		ds.Errorf(diag.Pos{File: file}, "authkeys: no method defined")
		return nil, ds
	}
	if _, ok := a.Methods[a.Active]; !ok {
		ds.Errorf(authPos, "authkeys: auth %d names no method defined in the file", a.Active)
		return nil, ds
	}
	if ds.HasErrors() {
		return nil, ds
	}
	return a, ds
}
