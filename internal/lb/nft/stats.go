package nft

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"

	"github.com/vigil-ha/vigil/internal/inet"
	"github.com/vigil-ha/vigil/internal/lb"
)

// Counters. Besides the load-balancing objects, the table holds counters
// that give each service and destination IPVS's statistics:
//
//	chain stats_in   type filter hook postrouting priority 0   client -> real server packets
//	    <service guard> counter name stat_in_S jump stat_in_S    packets and bytes in
//	chain stat_in_S
//	    ct state new counter name stat_conn_S                    connections of the service
//	    <destination D> counter name stat_in_S_rs_D ct state new counter name stat_conn_S_rs_D
//	chain stats_out  type filter hook prerouting priority 0    real server -> client packets
//	    <service guard, reply direction> counter name stat_out_S jump stat_out_S
//	chain stat_out_S
//	    <destination D> counter name stat_out_S_rs_D
//
// where <destination D> is ct reply saddr RS ct reply proto-src PORT.
//
// The service guard matches the connection's original tuple (ct original
// daddr / proto-dst and the protocol; the mark for fwmark services), the
// destination the reply tuple's source: conntrack keeps both, whichever
// way the packet goes and whatever NAT did to it. Postrouting sees every
// packet toward a real server (from remote clients and from the director
// itself), prerouting every packet from one. The counters are named
// objects whose names say what they count (the service and destination
// names of the layout), so they outlive the rules that feed them: the
// rules of a changed service are rebuilt, its counters kept; a counter
// goes with its service or destination (as IPVS's do). Named objects also
// spare reading rules back, which google/nftables v0.3.0 cannot decode
// for conntrack directions (it reads NFTA_CT_DIRECTION as a uint32).
//
// fwmark services count connections and client packets only: a reply
// carries no mark to tell its service by.
//
// Cost: every forwarded packet of the host passes the two base chains,
// one rule per service; a service's own packets then one rule per
// destination. Programming them is most of a first Apply's time (1,000
// services x 10 destinations: 2,000 chains, 21,000 rules, 31,000
// counters, about 1.5 s more than the services alone); later Applies touch
// only the services whose destinations changed.
const (
	chainStatsIn  = "stats_in"
	chainStatsOut = "stats_out"
	statPrefix    = "stat_"
)

// Conntrack directions (IP_CT_DIR_*), as expr.Ct's Direction must carry
// them: the kernel reads NFTA_CT_DIRECTION as one byte (nla_get_u8) and
// google/nftables v0.3.0 writes a big-endian uint32, so the value goes in
// the top byte.
const (
	dirOriginal = 0
	dirReply    = 1 << 24
)

type statRule struct {
	chain    string
	counters []string // the named counters the rule feeds
	exprs    []expr.Any
}

func statChainName(dir string, k lb.ServiceKey) string {
	return statPrefix + dir + "_" + strings.TrimPrefix(serviceName(k), "svc_")
}

// counterName names the counter of KIND (conn, in, out) of a service, or
// of one of its destinations when d is valid.
func counterName(kind string, k lb.ServiceKey, d netip.AddrPort) string {
	n := statPrefix + kind + "_" + strings.TrimPrefix(serviceName(k), "svc_")
	if d.IsValid() {
		n += destSuffix(d)
	}
	return n
}

// parseCounterName is counterName's inverse; d is invalid for a service's
// counter.
func parseCounterName(n string) (kind string, k lb.ServiceKey, d netip.AddrPort, ok bool) {
	rest, found := strings.CutPrefix(n, statPrefix)
	if !found {
		return "", k, d, false
	}
	kind, rest, found = strings.Cut(rest, "_")
	if !found {
		return "", k, d, false
	}
	svc, dest, hasDest := strings.Cut(rest, "_rs_")
	proto, tail, found := strings.Cut(svc, "_")
	if !found {
		return "", k, d, false
	}
	switch proto {
	case "fwm4", "fwm6":
		m, err := strconv.ParseUint(tail, 10, 32)
		if err != nil || m == 0 {
			return "", k, d, false
		}
		k = lb.ServiceKey{Family: lb.IPv4, FWMark: uint32(m)}
		if proto == "fwm6" {
			k.Family = lb.IPv6
		}
	case "tcp", "udp", "sctp":
		a, ok := parseAddrPortName(tail)
		if !ok {
			return "", k, d, false
		}
		k = lb.ServiceKey{Family: inet.FamilyOf(a.Addr()), Proto: map[string]lb.Protocol{"tcp": lb.TCP, "udp": lb.UDP, "sctp": lb.SCTP}[proto], Addr: a.Addr(), Port: a.Port()}
	default:
		return "", k, d, false
	}
	if hasDest {
		if d, ok = parseAddrPortName(dest); !ok {
			return "", k, d, false
		}
	}
	return kind, k, d, true
}

// parseAddrPortName reads ADDR_PORT as serviceName and destSuffix write
// it: an IPv4 address is four decimal fields, anything else IPv6 (whose
// "::" leaves an empty field).
func parseAddrPortName(s string) (netip.AddrPort, bool) {
	f := strings.Split(s, "_")
	if len(f) < 2 {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(f[len(f)-1], 10, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	f = f[:len(f)-1]
	sep := ":"
	if len(f) == 4 && !slices.Contains(f, "") {
		sep = "."
	}
	a, err := netip.ParseAddr(strings.Join(f, sep))
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

func ctDirection(dir byte) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeyDIRECTION},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{dir}},
	}
}

func ctNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}
}

// ctMatch compares a conntrack address and port (port 0: any) of one
// direction. In an inet table the kernel loads 4 address bytes for an IPv4
// connection, 16 for IPv6.
func ctMatch(dir uint32, addrKey, portKey expr.CtKey, a netip.Addr, port uint16) []expr.Any {
	ex := []expr.Any{
		&expr.Ct{Register: reg1, Key: addrKey, Direction: dir},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: a.AsSlice()},
	}
	if port != 0 {
		ex = append(ex,
			&expr.Ct{Register: reg1, Key: portKey, Direction: dir},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.BigEndian.PutUint16(port)})
	}
	return ex
}

// statGuard matches the packets of service k going one way.
func statGuard(k lb.ServiceKey, reply bool) []expr.Any {
	g := nfprotoOf(k)
	if reply {
		g = append(g, ctDirection(1)...)
	} else {
		g = append(g, ctDirection(0)...)
	}
	if k.IsFWMark() {
		return append(g,
			&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: markBytes(k.FWMark)})
	}
	g = append(g,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{byte(k.Proto)}})
	return append(g, ctMatch(dirOriginal, expr.CtKeyDST, expr.CtKeyPROTODST, k.Addr, k.Port)...)
}

func nfprotoOf(k lb.ServiceKey) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{byte(famOf(k.Family).nfproto)}},
	}
}

func objref(name string) *expr.Objref {
	return &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: name}
}

func join(ex ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, e := range ex {
		out = append(out, e...)
	}
	return out
}

// statService is the counting of one service: its chains, the base chains'
// rules that lead to them, its own rules and every counter these feed.
type statService struct {
	chains   []string
	base     []statRule
	rules    []statRule
	counters []string
}

// planService lays out the counting of service k with destinations ds. A
// destination costs one rule per direction: the in rule counts every
// packet, then, for the first packet of a connection, the connection.
func planService(k lb.ServiceKey, ds []netip.AddrPort) statService {
	var p statService
	none := netip.AddrPort{}
	in := statChainName("in", k)
	p.chains = append(p.chains, in)
	conn, inN := counterName("conn", k, none), counterName("in", k, none)
	p.base = append(p.base, statRule{chainStatsIn, []string{inN},
		join(statGuard(k, false), []expr.Any{objref(inN), &expr.Verdict{Kind: expr.VerdictJump, Chain: in}})})
	p.rules = append(p.rules, statRule{in, []string{conn}, join(ctNew(), []expr.Any{objref(conn)})})
	out := ""
	if !k.IsFWMark() {
		out = statChainName("out", k)
		p.chains = append(p.chains, out)
		outN := counterName("out", k, none)
		p.base = append(p.base, statRule{chainStatsOut, []string{outN},
			join(statGuard(k, true), []expr.Any{objref(outN), &expr.Verdict{Kind: expr.VerdictJump, Chain: out}})})
	}
	for _, d := range ds {
		rs := nfprotoOf(k)
		if !k.IsFWMark() {
			rs = append(rs, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{byte(k.Proto)}})
		}
		rs = append(rs, ctMatch(dirReply, expr.CtKeySRC, expr.CtKeyPROTOSRC, d.Addr(), d.Port())...)
		conn, inN := counterName("conn", k, d), counterName("in", k, d)
		p.rules = append(p.rules, statRule{in, []string{inN, conn}, join(rs, []expr.Any{objref(inN)}, ctNew(), []expr.Any{objref(conn)})})
		if out != "" {
			outN := counterName("out", k, d)
			p.rules = append(p.rules, statRule{out, []string{outN}, join(rs, []expr.Any{objref(outN)})})
		}
	}
	for _, r := range append(slices.Clone(p.base), p.rules...) {
		p.counters = append(p.counters, r.counters...)
	}
	return p
}

// statLayout is, per service, the destinations counted: what syncStats
// made last.
type statLayout map[lb.ServiceKey][]netip.AddrPort

func layoutOf(s lb.State) statLayout {
	l := make(statLayout, len(s.Services))
	for k := range s.Services {
		l[k] = nil
	}
	for dk := range s.Dests {
		l[dk.Service] = append(l[dk.Service], dk.Addr)
	}
	for _, ds := range l {
		slices.SortFunc(ds, netip.AddrPort.Compare)
	}
	return l
}

func isStatChain(name string) bool {
	return name == chainStatsIn || name == chainStatsOut || strings.HasPrefix(name, statPrefix)
}

func (b *Backend) statBaseChains() []*nftables.Chain {
	t, filter := b.table(), nftables.ChainTypeFilter
	return []*nftables.Chain{
		{Name: chainStatsIn, Table: t, Type: filter, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityFilter},
		{Name: chainStatsOut, Table: t, Type: filter, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityFilter},
	}
}

func (b *Backend) addStatRule(r statRule) {
	t := b.table()
	b.conn.AddRule(&nftables.Rule{Table: t, Chain: &nftables.Chain{Name: r.chain, Table: t}, Exprs: r.exprs})
}

// syncStats brings the counting to the state the table now holds, in one
// batch. From what it made last (b.statsMade), it touches only what
// changed: a service whose destinations changed has its chains rebuilt, its
// counters kept; the base chains are rebuilt when services come or go; a
// weight change costs nothing. With all, or nothing known, it lists the
// kernel's counting objects and rebuilds every rule.
func (b *Backend) syncStats(s lb.State, all bool) error {
	want := layoutOf(s)
	var err error
	if all || b.statsMade == nil {
		err = b.syncStatsAll(want)
	} else {
		err = b.syncStatsChanges(want)
	}
	if err != nil {
		b.statsMade = nil
		return err
	}
	b.statsMade = want
	return nil
}

func (b *Backend) syncStatsChanges(want statLayout) error {
	t := b.table()
	have := b.statsMade
	servicesChanged := len(want) != len(have)
	var removed []lb.ServiceKey
	for k := range have {
		if _, ok := want[k]; !ok {
			removed = append(removed, k)
			servicesChanged = true
		}
	}
	touched := false
	var stale []string // counters to delete once no rule feeds them
	for _, k := range sortedLayoutKeys(want) {
		old, had := have[k]
		if had && slices.Equal(old, want[k]) {
			continue
		}
		touched = true
		p := planService(k, want[k])
		known := map[string]bool{}
		if had {
			q := planService(k, old)
			for _, c := range q.counters {
				known[c] = true
			}
			for _, n := range p.chains {
				b.conn.FlushChain(&nftables.Chain{Name: n, Table: t})
			}
			keep := map[string]bool{}
			for _, c := range p.counters {
				keep[c] = true
			}
			for _, c := range q.counters {
				if !keep[c] {
					stale = append(stale, c)
				}
			}
		} else {
			for _, n := range p.chains {
				b.conn.AddChain(&nftables.Chain{Name: n, Table: t})
			}
		}
		for _, c := range p.counters {
			if !known[c] {
				b.conn.AddObj(&nftables.CounterObj{Table: t, Name: c})
			}
		}
		for _, r := range p.rules {
			b.addStatRule(r)
		}
	}
	if servicesChanged {
		touched = true
		for _, c := range b.statBaseChains() {
			b.conn.FlushChain(c)
		}
		for _, k := range sortedLayoutKeys(want) {
			for _, r := range planService(k, want[k]).base {
				b.addStatRule(r)
			}
		}
	}
	for _, k := range removed {
		p := planService(k, have[k])
		for _, n := range p.chains {
			c := &nftables.Chain{Name: n, Table: t}
			b.conn.FlushChain(c)
			b.conn.DelChain(c)
		}
		stale = append(stale, p.counters...)
	}
	for _, c := range stale {
		b.conn.DeleteObject(&nftables.CounterObj{Table: t, Name: c})
	}
	if !touched {
		return nil
	}
	if err := b.conn.Flush(); err != nil {
		return fmt.Errorf("nft: stats: apply: %w", err)
	}
	return nil
}

// syncStatsAll rebuilds every counting rule from the kernel's listing:
// counters still wanted keep their counts, missing ones are added, stale
// ones and stale chains removed.
func (b *Backend) syncStatsAll(want statLayout) error {
	t := b.table()
	chains, err := b.conn.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return fmt.Errorf("nft: stats: list chains: %w", err)
	}
	have := map[string]*nftables.Chain{}
	for _, c := range chains {
		if c.Table != nil && c.Table.Name == t.Name && isStatChain(c.Name) {
			have[c.Name] = c
		}
	}
	objs, err := b.conn.GetObjects(t)
	if err != nil {
		return fmt.Errorf("nft: stats: list counters: %w", err)
	}
	haveCounters := map[string]bool{}
	for _, o := range objs {
		if c, ok := o.(*nftables.CounterObj); ok && strings.HasPrefix(c.Name, statPrefix) {
			haveCounters[c.Name] = true
		}
	}
	for _, c := range b.statBaseChains() {
		if have[c.Name] == nil {
			b.conn.AddChain(c)
		} else {
			b.conn.FlushChain(c)
		}
	}
	plans := map[lb.ServiceKey]statService{}
	wantChains := map[string]bool{chainStatsIn: true, chainStatsOut: true}
	for k, ds := range want {
		plans[k] = planService(k, ds)
		for _, n := range plans[k].chains {
			wantChains[n] = true
		}
	}
	for n, c := range have {
		if !wantChains[n] {
			b.conn.FlushChain(c)
			b.conn.DelChain(c)
		}
	}
	wantCounters := map[string]bool{}
	for _, k := range sortedLayoutKeys(want) {
		p := plans[k]
		for _, n := range p.chains {
			if have[n] == nil {
				b.conn.AddChain(&nftables.Chain{Name: n, Table: t})
			} else {
				b.conn.FlushChain(have[n])
			}
		}
		for _, c := range p.counters {
			wantCounters[c] = true
			if !haveCounters[c] {
				b.conn.AddObj(&nftables.CounterObj{Table: t, Name: c})
			}
		}
		for _, r := range p.rules {
			b.addStatRule(r)
		}
	}
	for _, k := range sortedLayoutKeys(want) {
		for _, r := range plans[k].base {
			b.addStatRule(r)
		}
	}
	for n := range haveCounters {
		if !wantCounters[n] {
			b.conn.DeleteObject(&nftables.CounterObj{Table: t, Name: n})
		}
	}
	if err := b.conn.Flush(); err != nil {
		return fmt.Errorf("nft: stats: apply: %w", err)
	}
	return nil
}

func sortedLayoutKeys(l statLayout) []lb.ServiceKey {
	ks := make([]lb.ServiceKey, 0, len(l))
	for k := range l {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, lb.ServiceKey.Compare)
	return ks
}

// StatsReader reads the counters of the table's services and destinations
// on a netlink connection of its own (so it may run while a Backend
// applies). It implements lb.StatsReader.
type StatsReader struct {
	// Table is the inet table (default "vigil"); NetNS a namespace file
	// descriptor (0: the calling thread's).
	Table string
	NetNS int
}

// Stats implements lb.StatsReader. A missing table has no counters.
func (sr StatsReader) Stats(ctx context.Context) (lb.Stats, error) {
	st := lb.NewStats()
	name := sr.Table
	if name == "" {
		name = "vigil"
	}
	var opts []nftables.ConnOption
	if sr.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(sr.NetNS))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return st, fmt.Errorf("nft: netlink: %w", err)
	}
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
	objs, err := c.GetObjects(t)
	if err != nil {
		if isNotExist(err) {
			return st, nil
		}
		return st, fmt.Errorf("nft: list counters of table %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	for _, o := range objs {
		co, ok := o.(*nftables.CounterObj)
		if !ok {
			continue
		}
		kind, k, d, ok := parseCounterName(co.Name)
		if !ok {
			continue
		}
		var add lb.Counters
		switch kind {
		case "conn":
			add.Conns = co.Packets
		case "in":
			add.InPkts, add.InBytes = co.Packets, co.Bytes
		case "out":
			add.OutPkts, add.OutBytes = co.Packets, co.Bytes
		}
		if d.IsValid() {
			dk := lb.DestKey{Service: k, Addr: d}
			v := st.Dests[dk]
			v.Add(add)
			st.Dests[dk] = v
		} else {
			v := st.Services[k]
			v.Add(add)
			st.Services[k] = v
		}
	}
	return st, nil
}
