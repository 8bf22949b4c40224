package nft

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/lb"
)

// Direct routing (keepalived lb_kind DR) lives in a table of its own in the
// netdev family (`table netdev vigil_dr`), hooked at ingress on the devices
// that reach the real servers:
//
//	chain ingress_<dev>  type filter hook ingress device <dev> priority 0
//	                     meta pkttype != host accept       (frames for another MAC)
//	                     jump dispatch
//	chain dispatch       fwmark, then VIP.proto.port, then VIP.proto (port-0
//	                     services) verdict maps, as in the NAT table
//
// and per service S (`nft list table netdev vigil_dr` shows all of it), a
// chain of rules that each end in `fwd ip to A device D` for one real server
// A:
//
//	5-tuple @S_flows_rs_A  update @S_flows_rs_A {5-tuple}       (every server, weight 0 too)
//	client @S_aff<T>_rs_A  update it, add the flow               (persistent services)
//	jhash <key> mod M seed SEED map @S_pick_M == ID(A)  [update @S_aff<T>_rs_A {client}]
//	                       add @S_flows_rs_A {5-tuple}           (servers in the table)
//	jhash ... == ID(A)     (without recording: a timed set was full)
//
//	map S_pick_M      slot : ID(A), a Maglev table of M slots (ID: a hash of A)
//	map S_dests       ADDR . PORT : weight, read back by Observe
//	map S_live        ADDR : ifindex of the device the rules forward on
//	                  (a record for Observe, which compares it with the routes)
//
// A rule reads only registers it wrote itself (the kernel checks), so each
// rule hashes for itself. Replacing a service's rules makes the kernel check
// every rule of the table again: with 1,000 services of 10 servers (30,000
// rules) that is most of a pool change's 70-140 ms here.
//
// fwd's neighbour form makes the kernel resolve the real server's MAC, so a
// real server that changes its MAC keeps working; D is the device of the
// director's on-link route to A.
//
// The ingress hook has no conntrack, so each real server's flow set (keyed by
// the 5-tuple, refreshed by every packet, expiring after FlowTimeout of
// silence) keeps connections on it while the pool changes: a server that
// leaves the pool takes its set with it (its flows are scheduled again),
// weight 0 keeps it (no new flows, established ones continue). The Maglev
// table, computed from the ordered pool with a fixed seed (the same seed
// given to jhash), makes every director running the same pool pick the same
// server for a flow it has not seen, so established connections survive a
// director failover without state synchronisation, and a pool that differs
// by one server moves few flows.
//
// Scheduling keys: rr, wrr (and the connection-counting schedulers, as wrr)
// hash the 5-tuple, so new connections spread by weight; sh (and mh) hash
// the source address (and port with sh-port/mh-port), dh the destination
// address; fo sends every new flow to the first server of highest weight;
// persistent services hash the client masked by persistence_granularity.
//
// google/nftables v0.3.0 has no fwd expression (and its expressions cannot
// be extended outside the package), so the service chains' rules go in a
// raw transaction (rawnl.go) between the library's batches: sets and chains
// first, then the rules (each chain flushed and refilled atomically), then
// the Maglev slots, the verdict-map entries of new services and the removal
// of what only the old rules used.

// Registers (32-bit numbering, linux/netfilter/nf_tables.h NFT_REG32_00 = 8).
const (
	drRegKey   = 8  // keys: up to 40 bytes (8..17)
	drRegData  = 18 // chosen server: address, then ifindex (v4: 19, v6: 22)
	drPriority = 0
	drDispatch = "dispatch"
	drIngress  = "ingress_"
)

// etherType is the family's `meta protocol` (ether type, big endian).
func (f fam) etherType() []byte {
	if f.f == lb.IPv6 {
		return []byte{0x86, 0xdd}
	}
	return []byte{0x08, 0x00}
}

func (f fam) devReg() uint32     { return drRegData + f.addrLen/4 }
func (f fam) flowKeyLen() uint32 { return 2*f.addrLen + 8 }

// drDest is a destination with the device that reaches it (0: none; it
// takes no traffic).
type drDest struct {
	destW
	ifindex int
}

// drObjects are the named objects of one DR service.
type drObjects struct {
	fam   fam
	key   lb.ServiceKey
	svc   lb.Service
	ds    []drDest
	m     int
	table []netip.AddrPort
	chain *nftables.Chain
	dests *nftables.Set // ADDR . PORT : weight (read back by Observe)
	live  *nftables.Set // ADDR : ifindex (the devices the rules use), for Observe
	pick  *nftables.Set // slot : server ID, named after its size
	// Per real server, by address: its flow set and (persistent services)
	// client set, named after the persistence timeout.
	flows map[netip.AddrPort]*nftables.Set
	affs  map[netip.AddrPort]*nftables.Set
}

func (b *Backend) drTable() *nftables.Table {
	return &nftables.Table{Name: b.opts.DRTable, Family: nftables.TableFamilyNetdev}
}

func (b *Backend) drObjects(k lb.ServiceKey, svc lb.Service, ds []drDest) *drObjects {
	t := b.drTable()
	f := famOf(k.Family)
	name := serviceName(k)
	o := &drObjects{fam: f, key: k, svc: svc, ds: ds, m: maglevSize(len(ds)),
		flows: map[netip.AddrPort]*nftables.Set{}, affs: map[netip.AddrPort]*nftables.Set{}}
	var live []destW
	for _, d := range ds {
		if d.ifindex != 0 {
			live = append(live, d.destW)
		}
	}
	switch {
	case schedulers[svc.Scheduler].As == "fo" && svc.Timeout == 0:
		// ip_vs_fo.c: the first server with the highest weight.
		var best *destW
		for i := range live {
			if live[i].weight > 0 && (best == nil || live[i].weight > best.weight) {
				best = &live[i]
			}
		}
		if best != nil {
			o.table = []netip.AddrPort{best.addr}
		}
		o.m = 1
	default:
		o.table = maglevTable(live, o.m)
	}
	o.chain = &nftables.Chain{Name: name, Table: t}
	o.dests = &nftables.Set{Table: t, Name: name + "_dests", IsMap: true,
		KeyType: nftables.MustConcatSetType(f.addrType, nftables.TypeInetService), Concatenation: true, DataType: nftables.TypeMark}
	o.live = &nftables.Set{Table: t, Name: name + "_live", IsMap: true, KeyType: f.addrType, DataType: nftables.TypeInteger}
	o.pick = &nftables.Set{Table: t, Name: fmt.Sprintf("%s_pick_%d", name, o.m), IsMap: true,
		KeyType: nftables.TypeMark, KeyByteOrder: binaryutil.NativeEndian, DataType: nftables.TypeInteger}
	for _, d := range ds {
		suf := destSuffix(d.addr)
		o.flows[d.addr] = &nftables.Set{Table: t, Name: name + "_flows" + suf, Dynamic: true, HasTimeout: true,
			Timeout: b.flowTimeout(k), Size: b.opts.FlowSize,
			KeyType: nftables.MustConcatSetType(f.addrType, f.addrType, nftables.TypeInetService, nftables.TypeInetService), Concatenation: true}
		if svc.Timeout > 0 {
			o.affs[d.addr] = &nftables.Set{Table: t, Name: fmt.Sprintf("%s_aff%d%s", name, svc.Timeout, suf), Dynamic: true, HasTimeout: true,
				Timeout: time.Duration(svc.Timeout) * time.Second, Size: b.opts.PersistSize, KeyType: f.addrType}
		}
	}
	return o
}

// flowTimeout is how long a flow lives without a packet: IPVS's TCP
// established timeout (900 s) for TCP, SCTP and fwmark services, its UDP
// timeout (300 s) for UDP, unless Options.FlowTimeout says otherwise.
func (b *Backend) flowTimeout(k lb.ServiceKey) time.Duration {
	if b.opts.FlowTimeout > 0 {
		return b.opts.FlowTimeout
	}
	if k.Proto == lb.UDP {
		return 300 * time.Second
	}
	return 900 * time.Second
}

func (o *drObjects) names() []string {
	n := []string{o.chain.Name, o.dests.Name, o.live.Name, o.pick.Name}
	for a, f := range o.flows {
		n = append(n, f.Name)
		if s := o.affs[a]; s != nil {
			n = append(n, s.Name)
		}
	}
	return n
}

// flowKey loads SADDR . DADDR . SPORT . DPORT at drRegKey, one load per
// field so that `nft list` can name the concatenation.
func (o *drObjects) flowKey() []expr.Any {
	f := o.fam
	return []expr.Any{
		&expr.Payload{DestRegister: drRegKey, Base: expr.PayloadBaseNetworkHeader, Offset: f.saddrOff, Len: f.addrLen},
		&expr.Payload{DestRegister: drRegKey + f.addrLen/4, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOff, Len: f.addrLen},
		&expr.Payload{DestRegister: drRegKey + 2*f.addrLen/4, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Payload{DestRegister: drRegKey + 2*f.addrLen/4 + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

// client loads the source address masked by the persistence granularity.
func (o *drObjects) client() []expr.Any {
	f := o.fam
	return []expr.Any{
		&expr.Payload{DestRegister: drRegKey, Base: expr.PayloadBaseNetworkHeader, Offset: f.saddrOff, Len: f.addrLen},
		&expr.Bitwise{SourceRegister: drRegKey, DestRegister: drRegKey, Len: f.addrLen, Mask: maskBytes(f.f, o.svc.Netmask), Xor: make([]byte, f.addrLen)},
	}
}

// pickSlot hashes the scheduler's key into the Maglev table, whose slots
// go to the chosen server's chain.
func (o *drObjects) pickSlot() []expr.Any {
	f := o.fam
	var ex []expr.Any
	var n uint32
	sched := schedulers[o.svc.Scheduler].As
	switch {
	case o.m == 1:
		ex = []expr.Any{&expr.Immediate{Register: drRegData, Data: indexBytes(0)}}
	case o.svc.Timeout > 0:
		ex, n = o.client(), f.addrLen
	case sched == "sh" || o.svc.Scheduler == "mh":
		ex = []expr.Any{&expr.Payload{DestRegister: drRegKey, Base: expr.PayloadBaseNetworkHeader, Offset: f.saddrOff, Len: f.addrLen}}
		n = f.addrLen
		if o.svc.Flags&lb.FlagSHPort != 0 && !o.key.IsFWMark() {
			ex = append(ex, &expr.Payload{DestRegister: drRegKey + f.addrLen/4, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2})
			n += 4
		}
	case sched == "dh":
		ex = []expr.Any{&expr.Payload{DestRegister: drRegKey, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOff, Len: f.addrLen}}
		n = f.addrLen
	default:
		ex, n = o.flowKey(), f.flowKeyLen()
	}
	if o.m > 1 {
		ex = append(ex, &expr.Hash{SourceRegister: drRegKey, DestRegister: drRegData, Length: n, Modulus: uint32(o.m), Seed: maglevSeed, Type: expr.HashTypeJenkins})
	}
	return append(ex, &expr.Lookup{SourceRegister: drRegData, DestRegister: drRegData, IsDestRegSet: true, SetName: o.pick.Name})
}

// destID names a real server in its service's Maglev table: a hash of its
// address, the same on every director, so that a pool change rewrites only
// the slots that move. (A kernel verdict map of slots would be simpler, but
// the kernel walks every verdict of every map on each change of the table:
// 300 ms with 1,000 services.)
func destID(a netip.AddrPort) uint32 {
	id := uint32(maglevHash(a, 3))
	return max(id, 1)
}

// fwd forwards to d: `fwd ip to ADDR device IFINDEX`, both immediate.
func (o *drObjects) fwd(d drDest) []rawExpr {
	return []rawExpr{
		{e: &expr.Immediate{Register: drRegData, Data: addrBytes(d.addr.Addr())}},
		{e: &expr.Immediate{Register: o.fam.devReg(), Data: binaryutil.NativeEndian.PutUint32(uint32(d.ifindex))}},
		{fwd: &fwdExpr{regDev: o.fam.devReg(), regAddr: drRegData, nfproto: o.fam.nfproto}},
	}
}

func raw(ex ...expr.Any) []rawExpr {
	out := make([]rawExpr, len(ex))
	for i, e := range ex {
		out[i] = rawExpr{e: e}
	}
	return out
}

func (o *drObjects) update(s *nftables.Set, op uint32) expr.Any {
	return &expr.Dynset{SrcRegKey: drRegKey, SetName: s.Name, Operation: op}
}

// rules are the service chain's rules (see the layout above).
func (o *drObjects) rules() [][]rawExpr {
	f := o.fam
	var rules [][]rawExpr
	inTable := map[netip.AddrPort]bool{}
	for _, a := range o.table {
		inTable[a] = true
	}
	is := func(d drDest) expr.Any {
		return &expr.Cmp{Op: expr.CmpOpEq, Register: drRegData, Data: binaryutil.NativeEndian.PutUint32(destID(d.addr))}
	}
	if o.key.IsFWMark() {
		// Protocols without ports: the addresses alone pick the server.
		for _, d := range o.ds {
			if !inTable[d.addr] {
				continue
			}
			rules = append(rules, append(raw(
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: drRegKey},
				&expr.Lookup{SourceRegister: drRegKey, SetName: setL4Ports, Invert: true},
				&expr.Payload{DestRegister: drRegKey, Base: expr.PayloadBaseNetworkHeader, Offset: f.saddrOff, Len: 2 * f.addrLen},
				&expr.Hash{SourceRegister: drRegKey, DestRegister: drRegData, Length: 2 * f.addrLen, Modulus: uint32(o.m), Seed: maglevSeed, Type: expr.HashTypeJenkins},
				&expr.Lookup{SourceRegister: drRegData, DestRegister: drRegData, IsDestRegSet: true, SetName: o.pick.Name},
				is(d)), o.fwd(d)...))
		}
	}
	// Established flows, on every server with a route (weight 0 too).
	for _, d := range o.ds {
		if d.ifindex == 0 {
			continue
		}
		fl := o.flows[d.addr]
		r := raw(append(o.flowKey(),
			&expr.Lookup{SourceRegister: drRegKey, SetName: fl.Name},
			o.update(fl, unix.NFT_DYNSET_OP_UPDATE))...)
		rules = append(rules, append(r, o.fwd(d)...))
	}
	// record remembers the client (persistent services) and the flow.
	record := func(d drDest) []expr.Any {
		var r []expr.Any
		if s := o.affs[d.addr]; s != nil {
			r = append(o.client(), o.update(s, unix.NFT_DYNSET_OP_UPDATE))
		}
		r = append(r, o.flowKey()...)
		return append(r, o.update(o.flows[d.addr], unix.NFT_DYNSET_OP_ADD))
	}
	if o.svc.Timeout > 0 {
		for _, d := range o.ds {
			if d.ifindex == 0 || d.weight == 0 {
				continue // drained: its clients choose again
			}
			r := append(o.client(), &expr.Lookup{SourceRegister: drRegKey, SetName: o.affs[d.addr].Name})
			rules = append(rules, append(raw(append(r, record(d)...)...), o.fwd(d)...))
		}
	}
	// New flows: the Maglev table's server, recorded; then the same
	// unrecorded, for when a timed set is full.
	for _, rec := range []func(drDest) []expr.Any{record, func(drDest) []expr.Any { return nil }} {
		for _, d := range o.ds {
			if !inTable[d.addr] {
				continue
			}
			r := append(o.pickSlot(), is(d))
			rules = append(rules, append(raw(append(r, rec(d)...)...), o.fwd(d)...))
		}
	}
	return rules
}

// drDispatchRules jump to the service chains.
func drDispatchRules() [][]expr.Any {
	var rules [][]expr.Any
	for _, f := range []fam{fam4, fam6} {
		guard := func() []expr.Any {
			return []expr.Any{
				&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: drRegKey},
				&expr.Cmp{Op: expr.CmpOpEq, Register: drRegKey, Data: f.etherType()},
			}
		}
		protoReg := drRegKey + f.addrLen/4
		rules = append(rules,
			append(guard(),
				&expr.Meta{Key: expr.MetaKeyMARK, Register: drRegKey},
				&expr.Lookup{SourceRegister: drRegKey, DestRegister: 0, IsDestRegSet: true, SetName: "fwm" + f.suffix}),
			append(guard(),
				&expr.Payload{DestRegister: drRegKey, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOff, Len: f.addrLen},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
				&expr.Payload{DestRegister: protoReg + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: drRegKey, DestRegister: 0, IsDestRegSet: true, SetName: "svc" + f.suffix}),
			append(guard(),
				&expr.Payload{DestRegister: drRegKey, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOff, Len: f.addrLen},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
				&expr.Lookup{SourceRegister: drRegKey, DestRegister: 0, IsDestRegSet: true, SetName: "svc" + f.suffix + "_any"}),
		)
	}
	return rules
}

// drIngressRules are an ingress chain's rules.
func drIngressRules() [][]expr.Any {
	return [][]expr.Any{
		{&expr.Meta{Key: expr.MetaKeyPKTTYPE, Register: drRegKey}, &expr.Cmp{Op: expr.CmpOpNeq, Register: drRegKey, Data: []byte{unix.PACKET_HOST}}, &expr.Verdict{Kind: expr.VerdictAccept}},
		{&expr.Verdict{Kind: expr.VerdictJump, Chain: drDispatch}},
	}
}

func (b *Backend) ingressChain(dev string) *nftables.Chain {
	prio := nftables.ChainPriority(drPriority)
	return &nftables.Chain{Name: drIngress + dev, Table: b.drTable(), Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookIngress, Priority: &prio, Device: dev}
}

// drObserved is what the kernel's DR table held at the last Observe or
// Apply.
type drObserved struct {
	exists, damaged bool
	state           lb.State
	// present: the service's objects exist (it is rebuilt in place, its
	// flows kept); stale: its devices or rules differ from what Apply
	// would make now.
	present map[lb.ServiceKey]bool
	stale   map[lb.ServiceKey]bool
	ifindex map[lb.DestKey]int
	devs    map[string]bool // complete ingress chains, by device name
}

func newDRObserved() *drObserved {
	return &drObserved{state: lb.NewState(), present: map[lb.ServiceKey]bool{}, stale: map[lb.ServiceKey]bool{}, ifindex: map[lb.DestKey]int{}, devs: map[string]bool{}}
}

// resolver finds the device that reaches each real server, once per
// address per Apply or Observe.
type resolver struct {
	b     *Backend
	cache map[netip.Addr]int
	names map[int]string
}

func (b *Backend) newResolver() *resolver {
	return &resolver{b: b, cache: map[netip.Addr]int{}, names: map[int]string{}}
}

// ifindex is the index of the device with an on-link route to a; 0 when
// the real server is not on a directly connected network (DR needs it on
// the director's link) or no route reaches it.
func (r *resolver) ifindex(a netip.Addr) int {
	if i, ok := r.cache[a]; ok {
		return i
	}
	i := 0
	h, err := r.b.netlinkHandle()
	if err == nil {
		routes, rerr := h.RouteGet(net.IP(a.AsSlice()))
		switch {
		case rerr != nil || len(routes) == 0:
			r.b.log.Warn("nft: DR real server has no route; it takes no traffic", "addr", a, "err", rerr)
		case routes[0].Gw != nil:
			r.b.log.Warn("nft: DR real server is not on a directly connected network; it takes no traffic", "addr", a, "via", routes[0].Gw)
		case routes[0].Type == unix.RTN_LOCAL:
			r.b.log.Warn("nft: DR real server is a local address; it takes no traffic", "addr", a)
		default:
			i = routes[0].LinkIndex
		}
	}
	r.cache[a] = i
	return i
}

func (r *resolver) name(ifindex int) (string, error) {
	if n, ok := r.names[ifindex]; ok {
		return n, nil
	}
	h, err := r.b.netlinkHandle()
	if err != nil {
		return "", err
	}
	l, err := h.LinkByIndex(ifindex)
	if err != nil {
		return "", fmt.Errorf("nft: link %d: %w", ifindex, err)
	}
	r.names[ifindex] = l.Attrs().Name
	return l.Attrs().Name, nil
}

func (b *Backend) drDests(s lb.State, idx map[lb.ServiceKey][]lb.DestKey, k lb.ServiceKey, r *resolver) []drDest {
	var out []drDest
	for _, dk := range idx[k] {
		out = append(out, drDest{destW: destW{addr: dk.Addr, weight: s.Dests[dk].Weight}, ifindex: r.ifindex(dk.Addr.Addr())})
	}
	return out
}

// drPlan is the second and third steps of a DR change: the service
// chains' rules (raw) and what must wait for them (verdict-map entries of
// new services, maps the old rules used).
type drPlan struct {
	raw   *rawBatch
	after []func() error
}

// queueDR queues the DR table's sets, chains and ingress hooks on the
// connection (the first step); it reports whether it queued anything.
func (b *Backend) queueDR(ctx context.Context, want lb.State, r *resolver) (bool, *drPlan, error) {
	have := b.drCache
	plan := &drPlan{raw: &rawBatch{family: byte(nftables.TableFamilyNetdev), table: b.opts.DRTable}}
	devs := map[string]bool{}
	for dk := range want.Dests {
		if i := r.ifindex(dk.Addr.Addr()); i != 0 {
			n, err := r.name(i)
			if err != nil {
				return false, nil, err
			}
			devs[n] = true
		}
	}
	if !have.exists && len(want.Services) == 0 {
		return false, plan, nil
	}
	t := b.drTable()
	if len(want.Services) == 0 {
		b.conn.DelTable(t)
		return true, plan, nil
	}
	full := !have.exists || have.damaged
	set := map[lb.ServiceKey]bool{}
	if full {
		for k := range want.Services {
			set[k] = true
		}
	} else {
		for _, k := range lb.ChangedServices(lb.Diff(have.state, want)) {
			set[k] = true
		}
		for k := range have.stale {
			if _, ok := want.Services[k]; ok {
				set[k] = true
			}
		}
		// A server whose device changed (or that gained or lost its
		// route) rebuilds its service.
		for dk := range want.Dests {
			if !set[dk.Service] && have.ifindex[dk] != r.ifindex(dk.Addr.Addr()) {
				set[dk.Service] = true
			}
		}
	}
	haveDevs := have.devs
	if full {
		haveDevs = nil
	}
	if len(set) == 0 && maps.Equal(haveDevs, devs) {
		return false, plan, nil
	}
	if err := ctx.Err(); err != nil {
		return false, nil, err
	}
	bt := &batch{b: b, c: b.conn, t: t}
	if full {
		if have.exists {
			b.conn.DelTable(t)
		}
		b.conn.AddTable(t)
		for _, n := range dispatchMaps {
			if err := b.conn.AddSet(bt.vmap(n), nil); err != nil {
				return false, nil, fmt.Errorf("nft: map %s: %w", n, err)
			}
		}
		l4 := &nftables.Set{Table: t, Name: setL4Ports, KeyType: nftables.TypeInetProto}
		if err := b.conn.AddSet(l4, []nftables.SetElement{{Key: []byte{unix.IPPROTO_TCP}}, {Key: []byte{unix.IPPROTO_UDP}}, {Key: []byte{unix.IPPROTO_SCTP}}}); err != nil {
			return false, nil, fmt.Errorf("nft: set %s: %w", setL4Ports, err)
		}
		disp := b.conn.AddChain(&nftables.Chain{Name: drDispatch, Table: t})
		for _, rule := range drDispatchRules() {
			b.conn.AddRule(&nftables.Rule{Table: t, Chain: disp, Exprs: rule})
		}
	}
	// Ingress hooks: one chain per device that reaches a real server.
	for d := range haveDevs {
		if !devs[d] {
			c := b.ingressChain(d)
			b.conn.FlushChain(c)
			b.conn.DelChain(c)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(devs)) {
		if haveDevs[d] {
			continue
		}
		c := b.conn.AddChain(b.ingressChain(d))
		b.conn.FlushChain(c)
		for _, rule := range drIngressRules() {
			b.conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: rule})
		}
	}
	wantIdx, haveIdx := indexOf(want, set), indexOf(have.state, set)
	for _, k := range slices.SortedFunc(maps.Keys(set), lb.ServiceKey.Compare) {
		svc, inWant := want.Services[k]
		present := have.present[k] && !full
		var err error
		switch {
		case inWant:
			var old *drObjects
			if present {
				old = b.drObjects(k, have.state.Services[k], b.haveDRDests(have, haveIdx, k))
			}
			err = b.buildDR(bt, plan, b.drObjects(k, svc, b.drDests(want, wantIdx, k, r)), old)
			b.refuseForTest(t, k)
		case present:
			b.removeDR(bt, b.drObjects(k, have.state.Services[k], b.haveDRDests(have, haveIdx, k)))
		}
		if err != nil {
			return false, nil, err
		}
	}
	return true, plan, nil
}

// devsOf names the devices that reach the real servers of s.
func devsOf(s lb.State, r *resolver) map[string]bool {
	devs := map[string]bool{}
	for dk := range s.Dests {
		if i := r.ifindex(dk.Addr.Addr()); i != 0 {
			if n, err := r.name(i); err == nil {
				devs[n] = true
			}
		}
	}
	return devs
}

// finish runs the second and third steps of a DR change.
func (p *drPlan) finish(b *Backend) error {
	if err := p.raw.send(b.raw); err != nil {
		return err
	}
	if len(p.after) == 0 {
		return nil
	}
	for _, f := range p.after {
		if err := f(); err != nil {
			return err
		}
	}
	if err := b.conn.Flush(); err != nil {
		return fmt.Errorf("nft: apply (Maglev slots and entries): %w", err)
	}
	return nil
}

func (b *Backend) haveDRDests(have *drObserved, idx map[lb.ServiceKey][]lb.DestKey, k lb.ServiceKey) []drDest {
	var out []drDest
	for _, dk := range idx[k] {
		out = append(out, drDest{destW: destW{addr: dk.Addr, weight: have.state.Dests[dk].Weight}, ifindex: have.ifindex[dk]})
	}
	return out
}

// buildDR creates a service, or rebuilds it in place (old != nil): the
// flow sets of the servers it keeps stay, so established connections stay
// where they are.
func (b *Backend) buildDR(bt *batch, plan *drPlan, o, old *drObjects) error {
	c := b.conn
	var delems, lelems []nftables.SetElement
	for _, d := range o.ds {
		delems = append(delems, nftables.SetElement{Key: destBytes(d.addr), Val: binaryutil.BigEndian.PutUint32(d.weight)})
		if d.ifindex != 0 {
			lelems = append(lelems, nftables.SetElement{Key: addrBytes(d.addr.Addr()), Val: binaryutil.BigEndian.PutUint32(uint32(d.ifindex))})
		}
	}
	slot := func(i int, a netip.AddrPort) nftables.SetElement {
		return nftables.SetElement{Key: indexBytes(i), Val: binaryutil.NativeEndian.PutUint32(destID(a))}
	}
	vm := bt.vmap(vmapName(o.key))
	elem := nftables.SetElement{Key: vmapKey(o.key), Comment: encodeComment(o.key, o.svc),
		VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: o.chain.Name}}
	wrap := func(err error) error {
		if err != nil {
			return fmt.Errorf("nft: %v: %w", o.key, err)
		}
		return nil
	}
	// Step 1: sets and chains.
	if old == nil {
		c.AddChain(o.chain)
		for _, e := range []struct {
			s  *nftables.Set
			es []nftables.SetElement
		}{{o.dests, delems}, {o.live, lelems}, {o.pick, nil}} {
			if err := wrap(addSet(c, e.s, e.es)); err != nil {
				return err
			}
		}
	} else {
		// The dests map (what Observe reads back) changes in step 3, with
		// the Maglev slots, so that a pool read back is one new flows
		// already follow.
		for _, e := range []struct {
			s  *nftables.Set
			es []nftables.SetElement
		}{{o.live, lelems}} {
			c.FlushSet(e.s)
			if len(e.es) > 0 {
				if err := wrap(addChunked(c, e.s, e.es)); err != nil {
					return err
				}
			}
		}
		if old.pick.Name != o.pick.Name {
			if err := wrap(c.AddSet(o.pick, nil)); err != nil {
				return err
			}
		}
		if old.svc != o.svc {
			if err := wrap(c.SetDeleteElements(vm, []nftables.SetElement{{Key: vmapKey(o.key)}})); err != nil {
				return err
			}
			if err := wrap(c.SetAddElements(vm, []nftables.SetElement{elem})); err != nil {
				return err
			}
		}
	}
	for _, d := range o.ds {
		if old == nil || old.flows[d.addr] == nil {
			if err := wrap(c.AddSet(o.flows[d.addr], nil)); err != nil {
				return err
			}
		}
		if s := o.affs[d.addr]; s != nil && (old == nil || old.affs[d.addr] == nil || old.affs[d.addr].Name != s.Name) {
			if err := wrap(c.AddSet(s, nil)); err != nil {
				return err
			}
		}
	}
	// Step 2: the rules, the chain flushed and refilled in one transaction.
	plan.raw.flushChain(o.chain.Name)
	for _, r := range o.rules() {
		plan.raw.addRule(o.chain.Name, r)
	}
	plan.raw.cut()
	// Step 3: the Maglev slots (only those that moved), the service's
	// entry, and what only the old rules used. (Sets are named afresh: the
	// library would send the ID it gave them in step 1's transaction.)
	pick := *o.pick
	pick.ID = 0
	plan.after = append(plan.after, func() error {
		if old == nil || old.pick.Name != o.pick.Name {
			var es []nftables.SetElement
			for i, a := range o.table {
				es = append(es, slot(i, a))
			}
			if err := wrap(addChunked(c, &pick, es)); err != nil {
				return err
			}
		} else {
			var del, add []nftables.SetElement
			for i := range max(len(o.table), len(old.table)) {
				switch {
				case i >= len(o.table):
					del = append(del, nftables.SetElement{Key: indexBytes(i)})
				case i >= len(old.table):
					add = append(add, slot(i, o.table[i]))
				case old.table[i] != o.table[i]:
					del = append(del, nftables.SetElement{Key: indexBytes(i)})
					add = append(add, slot(i, o.table[i]))
				}
			}
			for i := 0; i < len(del); i += 256 {
				if err := wrap(c.SetDeleteElements(&pick, del[i:min(i+256, len(del))])); err != nil {
					return err
				}
			}
			if err := wrap(addChunked(c, &pick, add)); err != nil {
				return err
			}
		}
		if old == nil {
			return wrap(c.SetAddElements(vm, []nftables.SetElement{elem}))
		}
		dests := *o.dests
		dests.ID = 0
		c.FlushSet(&dests)
		if err := wrap(addChunked(c, &dests, delems)); err != nil {
			return err
		}
		if old.pick.Name != o.pick.Name {
			c.DelSet(old.pick)
		}
		for a, s := range old.flows {
			if o.flows[a] == nil {
				c.DelSet(s)
			}
		}
		for a, s := range old.affs {
			if n := o.affs[a]; n == nil || n.Name != s.Name {
				c.DelSet(s)
			}
		}
		return nil
	})
	return nil
}

func (b *Backend) removeDR(bt *batch, o *drObjects) {
	c := b.conn
	_ = c.SetDeleteElements(bt.vmap(vmapName(o.key)), []nftables.SetElement{{Key: vmapKey(o.key)}})
	c.FlushChain(o.chain)
	c.DelSet(o.pick)
	c.DelChain(o.chain)
	for a, fl := range o.flows {
		c.DelSet(fl)
		if s := o.affs[a]; s != nil {
			c.DelSet(s)
		}
	}
	c.DelSet(o.dests)
	c.DelSet(o.live)
}

// observeDR reads the DR table back (see Observe).
func (b *Backend) observeDR(ctx context.Context, r *resolver) (*drObserved, error) {
	obs := newDRObserved()
	t := b.drTable()
	byName, chainByName, exists, err := b.listTable(t)
	if err != nil || !exists {
		return obs, err
	}
	obs.exists = true
	damage := b.damager("table netdev "+t.Name, &obs.damaged)
	nrules := func(name string) (int, bool, error) {
		c, ok := chainByName[name]
		if !ok {
			return 0, false, nil
		}
		rules, err := b.conn.GetRules(t, c)
		if err != nil {
			return 0, true, fmt.Errorf("nft: list chain %s: %w", name, err)
		}
		return len(rules), true, nil
	}
	if n, ok, err := nrules(drDispatch); err != nil {
		return nil, err
	} else if !ok || n != len(drDispatchRules()) {
		damage("chain %s has %d rules, want %d", drDispatch, n, len(drDispatchRules()))
	}
	for name := range chainByName {
		if d, ok := strings.CutPrefix(name, drIngress); ok {
			if n, _, err := nrules(name); err != nil {
				return nil, err
			} else if n == len(drIngressRules()) {
				obs.devs[d] = true
			}
		}
	}
	if _, ok := byName[setL4Ports]; !ok {
		damage("set %s missing", setL4Ports)
	}
	owned := map[string]bool{}
	entries, err := b.dispatchEntries(byName, damage)
	if err != nil {
		return nil, err
	}
	for _, en := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k, svc := en.key, en.svc
		name := serviceName(k)
		ds, ok := byName[name+"_dests"]
		if !ok {
			damage("map %s_dests missing", name)
			continue
		}
		delems, err := b.conn.GetSetElements(ds)
		if err != nil {
			return nil, fmt.Errorf("nft: list map %s: %w", ds.Name, err)
		}
		var dws []drDest
		var dks []lb.DestKey
		for _, de := range delems {
			a, ok := parseDestBytes(de.Key)
			if !ok || len(de.Val) != 4 {
				damage("map %s: bad element", ds.Name)
				continue
			}
			dk := lb.DestKey{Service: k, Addr: a}
			dks = append(dks, dk)
			dws = append(dws, drDest{destW: destW{addr: a, weight: binary.BigEndian.Uint32(de.Val)}})
		}
		o := b.drObjects(k, svc, dws)
		for _, nm := range o.names() {
			owned[nm] = true
		}
		missing := ""
		for _, st := range []*nftables.Set{o.dests, o.live, o.pick} {
			if _, ok := byName[st.Name]; !ok {
				missing = st.Name
			}
		}
		for a := range o.flows {
			if _, ok := byName[o.flows[a].Name]; !ok {
				missing = o.flows[a].Name
			}
			if st := o.affs[a]; st != nil {
				if _, ok := byName[st.Name]; !ok {
					missing = st.Name
				}
			}
		}
		if missing != "" {
			damage("%s missing", missing)
			continue
		}
		// The devices recorded in the live set, against the routes now.
		live, ok := byName[o.live.Name]
		if !ok {
			continue
		}
		lelems, err := b.conn.GetSetElements(live)
		if err != nil {
			return nil, fmt.Errorf("nft: list set %s: %w", live.Name, err)
		}
		recorded := map[netip.Addr]int{}
		for _, le := range lelems {
			a, ok := netip.AddrFromSlice(le.Key)
			if !ok || len(le.Val) != 4 {
				continue
			}
			recorded[a] = int(binaryutil.BigEndian.Uint32(le.Val))
		}
		stale := false
		for i, dk := range dks {
			obs.ifindex[dk] = recorded[dk.Addr.Addr()]
			dws[i].ifindex = recorded[dk.Addr.Addr()]
			if r.ifindex(dk.Addr.Addr()) != obs.ifindex[dk] {
				stale = true
			}
		}
		now := b.drObjects(k, svc, dws)
		if n, ok, err := nrules(o.chain.Name); err != nil {
			return nil, err
		} else if !ok {
			damage("chain %s missing", o.chain.Name)
			continue
		} else if n != len(now.rules()) {
			stale = true
		}
		obs.present[k] = true
		if stale {
			// Reported absent, so that the reconciler applies again;
			// Apply rebuilds it in place.
			obs.stale[k] = true
			continue
		}
		obs.state.Services[k] = svc
		for i, dk := range dks {
			obs.state.Dests[dk] = lb.Dest{Weight: dws[i].weight, Method: lb.DR}
		}
	}
	for name := range byName {
		if strings.HasPrefix(name, "svc_") && !owned[name] {
			damage("stray set %s", name)
		}
	}
	for name := range chainByName {
		if strings.HasPrefix(name, "svc_") && !owned[name] {
			damage("stray chain %s", name)
		}
	}
	return obs, nil
}

// Flows counts the flows the DR table remembers, per destination. NAT
// services have none (conntrack holds their connections).
func (b *Backend) Flows(ctx context.Context) (map[lb.DestKey]int, error) {
	if b.closed {
		return nil, errClosed
	}
	obs, err := b.observeDR(ctx, b.newResolver())
	if err != nil {
		return nil, err
	}
	out := map[lb.DestKey]int{}
	t := b.drTable()
	for dk := range obs.ifindex {
		name := serviceName(dk.Service) + "_flows" + destSuffix(dk.Addr)
		s, err := b.conn.GetSetByName(t, name)
		if err != nil {
			return nil, fmt.Errorf("nft: flows of %v: %w", dk.Addr, err)
		}
		elems, err := b.conn.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("nft: flows of %v: %w", dk.Addr, err)
		}
		out[dk] = len(elems)
	}
	return out, nil
}
