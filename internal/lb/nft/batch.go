package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/lb"
)

// batch queues the messages of one Apply on the backend's connection.
type batch struct {
	b                *Backend
	c                *nftables.Conn
	t                *nftables.Table
	want, have       lb.State
	wantIdx, haveIdx map[lb.ServiceKey][]lb.DestKey
}

// newBatch prepares a batch rebuilding the services in changed.
func newBatch(b *Backend, want, have lb.State, changed []lb.ServiceKey) *batch {
	set := make(map[lb.ServiceKey]bool, len(changed))
	for _, k := range changed {
		set[k] = true
	}
	return &batch{b: b, c: b.conn, t: b.table(), want: want, have: have, wantIdx: indexOf(want, set), haveIdx: indexOf(have, set)}
}

// indexOf lists the destinations of the services in set, in address order.
func indexOf(s lb.State, set map[lb.ServiceKey]bool) map[lb.ServiceKey][]lb.DestKey {
	idx := map[lb.ServiceKey][]lb.DestKey{}
	for dk := range s.Dests {
		if set[dk.Service] {
			idx[dk.Service] = append(idx[dk.Service], dk)
		}
	}
	for _, ds := range idx {
		slices.SortFunc(ds, lb.DestKey.Compare)
	}
	return idx
}

// Registers (linux/netfilter/nf_tables.h): 1-4 are the 16-byte registers,
// 8-23 the 32-bit ones (8 = the first 4 bytes of register 1).
const (
	reg1 = 1
	reg2 = 2
)

// reg32 returns the 32-bit register at byte offset off from 16-byte register
// r (1 or 2).
func reg32(r, off uint32) uint32 { return 8 + (r-1)*4 + off/4 }

func svcKeyType(f fam, anyPort bool) nftables.SetDatatype {
	if anyPort {
		return nftables.MustConcatSetType(f.addrType, nftables.TypeInetProto)
	}
	return nftables.MustConcatSetType(f.addrType, nftables.TypeInetProto, nftables.TypeInetService)
}

func vmapName(k lb.ServiceKey) string {
	f := famOf(k.Family)
	switch {
	case k.IsFWMark():
		return "fwm" + f.suffix
	case k.Port == 0:
		return "svc" + f.suffix + "_any"
	}
	return "svc" + f.suffix
}

func (bt *batch) vmap(name string) *nftables.Set {
	s := &nftables.Set{Table: bt.t, Name: name, IsMap: true, DataType: nftables.TypeVerdict}
	switch name {
	case "fwm4", "fwm6":
		s.KeyType = nftables.TypeMark
		s.KeyByteOrder = binaryutil.NativeEndian
	case "svc4":
		s.KeyType, s.Concatenation = svcKeyType(fam4, false), true
	case "svc4_any":
		s.KeyType, s.Concatenation = svcKeyType(fam4, true), true
	case "svc6":
		s.KeyType, s.Concatenation = svcKeyType(fam6, false), true
	case "svc6_any":
		s.KeyType, s.Concatenation = svcKeyType(fam6, true), true
	}
	return s
}

// addBase creates the table, the verdict maps and the two hooked chains.
func (bt *batch) addBase() error {
	bt.c.AddTable(bt.t)
	for _, n := range dispatchMaps {
		if err := bt.c.AddSet(bt.vmap(n), nil); err != nil {
			return fmt.Errorf("nft: map %s: %w", n, err)
		}
	}
	l4 := &nftables.Set{Table: bt.t, Name: setL4Ports, KeyType: nftables.TypeInetProto}
	if err := bt.c.AddSet(l4, []nftables.SetElement{{Key: []byte{unix.IPPROTO_TCP}}, {Key: []byte{unix.IPPROTO_UDP}}, {Key: []byte{unix.IPPROTO_SCTP}}}); err != nil {
		return fmt.Errorf("nft: set %s: %w", setL4Ports, err)
	}
	dstnat := nftables.ChainPriorityNATDest
	for _, ch := range []*nftables.Chain{
		{Name: chainPrerouting, Table: bt.t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: dstnat},
		{Name: chainOutput, Table: bt.t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: dstnat},
	} {
		bt.c.AddChain(ch)
		for _, rule := range bt.b.baseRulesOf(ch.Name) {
			bt.c.AddRule(&nftables.Rule{Table: bt.t, Chain: ch, Exprs: rule})
		}
	}
	return nil
}

// baseRulesOf are the rules of base chain name: baseRules, after the
// synced-conntrack guard in prerouting when Options.SyncedConntrack.
func (b *Backend) baseRulesOf(name string) [][]expr.Any {
	if name == chainPrerouting && b.opts.SyncedConntrack {
		return append([][]expr.Any{midstreamDrop()}, baseRules()...)
	}
	return baseRules()
}

// midstreamDrop drops a TCP packet without SYN: in the nat hook it is the
// first packet of a connection conntrack has not seen.
func midstreamDrop() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 1, Mask: []byte{0x02}, Xor: []byte{0x00}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{0x00}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// baseRules dispatch to the service chains. IPVS looks fwmark services up
// first (ip_vs_core.c ip_vs_service_find), then VIP:PORT, then VIP with
// port 0 (persistent "all ports" services).
func baseRules() [][]expr.Any {
	var rules [][]expr.Any
	for _, f := range []fam{fam4, fam6} {
		nfproto := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{byte(f.nfproto)}},
		}
		rules = append(rules, append(append([]expr.Any{}, nfproto...),
			&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
			&expr.Lookup{SourceRegister: reg1, DestRegister: 0, IsDestRegSet: true, SetName: "fwm" + f.suffix},
		))
		protoReg := reg32(reg1, f.addrLen)
		rules = append(rules, append(append([]expr.Any{}, nfproto...),
			&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOff, Len: f.addrLen},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
			&expr.Payload{DestRegister: protoReg + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: reg1, DestRegister: 0, IsDestRegSet: true, SetName: "svc" + f.suffix},
		))
		rules = append(rules, append(append([]expr.Any{}, nfproto...),
			&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOff, Len: f.addrLen},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
			&expr.Lookup{SourceRegister: reg1, DestRegister: 0, IsDestRegSet: true, SetName: "svc" + f.suffix + "_any"},
		))
	}
	return rules
}

func destsOf(s lb.State, idx map[lb.ServiceKey][]lb.DestKey, k lb.ServiceKey) []destW {
	var out []destW
	for _, dk := range idx[k] {
		out = append(out, destW{addr: dk.Addr, weight: s.Dests[dk].Weight})
	}
	return out
}

// serviceObjects are the named objects of one service.
type serviceObjects struct {
	fam      fam
	key      lb.ServiceKey
	svc      lb.Service
	ds       []destW
	withPort bool
	kind     pickKind
	table    []netip.AddrPort
	chain    *nftables.Chain
	dests    *nftables.Set
	pick     *nftables.Set
	// Persistent services: one chain and one client set per destination.
	dchains map[netip.AddrPort]*nftables.Chain
	affs    map[netip.AddrPort]*nftables.Set
}

func destSuffix(a netip.AddrPort) string {
	return "_rs_" + strings.NewReplacer(".", "_", ":", "_").Replace(a.Addr().String()) + "_" + strconv.Itoa(int(a.Port()))
}

func (bt *batch) objects(k lb.ServiceKey, svc lb.Service, ds []destW) *serviceObjects {
	f := famOf(k.Family)
	name := serviceName(k)
	o := &serviceObjects{fam: f, key: k, svc: svc, ds: ds, withPort: true}
	for _, d := range ds {
		if d.addr.Port() == 0 {
			o.withPort = false
		}
	}
	destData := f.addrType
	if o.withPort {
		destData = nftables.MustConcatSetType(f.addrType, nftables.TypeInetService)
	}
	o.chain = &nftables.Chain{Name: name, Table: bt.t}
	o.dests = &nftables.Set{Table: bt.t, Name: name + "_dests", IsMap: true,
		KeyType: nftables.MustConcatSetType(f.addrType, nftables.TypeInetService), Concatenation: true,
		DataType: nftables.TypeMark, Comment: encodeComment(k, svc)}
	o.pick = &nftables.Set{Table: bt.t, Name: name + "_pick", IsMap: true,
		KeyType: nftables.TypeMark, KeyByteOrder: binaryutil.NativeEndian, DataType: destData}
	o.kind, o.table = pickTable(svc.Scheduler, ds)
	if svc.Timeout > 0 {
		o.pick.DataType = nftables.TypeVerdict
		o.dchains = map[netip.AddrPort]*nftables.Chain{}
		o.affs = map[netip.AddrPort]*nftables.Set{}
		for _, d := range ds {
			o.dchains[d.addr] = &nftables.Chain{Name: name + destSuffix(d.addr), Table: bt.t}
			o.affs[d.addr] = &nftables.Set{Table: bt.t, Name: name + "_aff" + destSuffix(d.addr), Dynamic: true, HasTimeout: true,
				Timeout: time.Duration(svc.Timeout) * time.Second, Size: bt.b.opts.PersistSize, KeyType: f.addrType}
		}
	}
	return o
}

// names lists the chains and sets of a service (for Observe's stray check).
func (o *serviceObjects) names() []string {
	n := []string{o.chain.Name, o.dests.Name, o.pick.Name}
	for _, c := range o.dchains {
		n = append(n, c.Name)
	}
	for _, s := range o.affs {
		n = append(n, s.Name)
	}
	return n
}

func (bt *batch) vmapElement(o *serviceObjects) nftables.SetElement {
	return nftables.SetElement{Key: vmapKey(o.key), Comment: encodeComment(o.key, o.svc),
		VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: o.chain.Name}}
}

func vmapKey(k lb.ServiceKey) []byte {
	if k.IsFWMark() {
		return markBytes(k.FWMark)
	}
	return svcKeyBytes(k, k.Port == 0)
}

// buildService creates or rebuilds one service. A persistent service keeps
// the client sets of the servers it keeps, so their clients stay; the
// clients of a removed server choose again. A new persistence_timeout
// keeps them too, as IPVS keeps its persistence templates when the
// service's timeout is edited: the set takes the new timeout (the kernel
// updates an existing set's timeout in place), each client keeps the
// expiry it had until its next connection refreshes it with the new one.
// A new persistence_granularity changes what a client is, so it empties
// the sets.
func (bt *batch) buildService(k lb.ServiceKey, exists bool) error {
	svc := bt.want.Services[k]
	o := bt.objects(k, svc, destsOf(bt.want, bt.wantIdx, k))
	var old *serviceObjects
	kept := map[netip.AddrPort]bool{} // client sets kept as they are
	if exists {
		old = bt.objects(k, bt.have.Services[k], destsOf(bt.have, bt.haveIdx, k))
		keepAff := old.svc.Netmask == svc.Netmask
		// Release references before deleting: rules, then the pick map
		// (its verdicts jump to the destination chains), then those chains.
		bt.c.FlushChain(o.chain)
		bt.c.DelSet(old.pick)
		bt.c.DelSet(old.dests)
		for a, c := range old.dchains {
			bt.c.FlushChain(c)
			if o.dchains[a] == nil {
				bt.c.DelChain(c)
			}
		}
		for a, s := range old.affs {
			if o.affs[a] == nil || !keepAff {
				bt.c.DelSet(s)
			} else {
				kept[a] = true
			}
		}
		if old.svc != svc {
			// The service lives in the verdict map element's comment.
			if err := bt.c.SetDeleteElements(bt.vmap(vmapName(k)), []nftables.SetElement{{Key: vmapKey(k)}}); err != nil {
				return fmt.Errorf("nft: %v: %w", k, err)
			}
			if err := bt.c.SetAddElements(bt.vmap(vmapName(k)), []nftables.SetElement{bt.vmapElement(o)}); err != nil {
				return fmt.Errorf("nft: %v: %w", k, err)
			}
		}
	} else {
		bt.c.AddChain(o.chain)
	}
	var delems []nftables.SetElement
	for _, d := range o.ds {
		delems = append(delems, nftables.SetElement{Key: destBytes(d.addr), Val: binaryutil.BigEndian.PutUint32(d.weight)})
	}
	if err := addSet(bt.c, o.dests, delems); err != nil {
		return fmt.Errorf("nft: %v: %w", k, err)
	}
	for _, d := range o.ds {
		retimed := kept[d.addr] && old.svc.Timeout != svc.Timeout
		if s := o.affs[d.addr]; s != nil && (!kept[d.addr] || retimed) {
			if err := bt.c.AddSet(s, nil); err != nil {
				return fmt.Errorf("nft: %v: %w", k, err)
			}
		}
		if c := o.dchains[d.addr]; c != nil {
			if old == nil || old.dchains[d.addr] == nil {
				bt.c.AddChain(c)
			}
			bt.c.AddRule(&nftables.Rule{Table: bt.t, Chain: c, Exprs: o.destRule(d.addr)})
		}
	}
	var pelems []nftables.SetElement
	for i, a := range o.table {
		e := nftables.SetElement{Key: indexBytes(i)}
		if o.dchains != nil {
			e.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: o.dchains[a].Name}
		} else {
			e.Val = o.destValue(a)
		}
		pelems = append(pelems, e)
	}
	if err := addSet(bt.c, o.pick, pelems); err != nil {
		return fmt.Errorf("nft: %v: %w", k, err)
	}
	for _, r := range o.rules() {
		bt.c.AddRule(&nftables.Rule{Table: bt.t, Chain: o.chain, Exprs: r})
	}
	if !exists {
		if err := bt.c.SetAddElements(bt.vmap(vmapName(k)), []nftables.SetElement{bt.vmapElement(o)}); err != nil {
			return fmt.Errorf("nft: %v: %w", k, err)
		}
	}
	return nil
}

// removeService deletes a service's objects.
func (bt *batch) removeService(k lb.ServiceKey, svc lb.Service) {
	o := bt.objects(k, svc, destsOf(bt.have, bt.haveIdx, k))
	_ = bt.c.SetDeleteElements(bt.vmap(vmapName(k)), []nftables.SetElement{{Key: vmapKey(k)}})
	bt.c.FlushChain(o.chain)
	bt.c.DelChain(o.chain)
	bt.c.DelSet(o.pick)
	bt.c.DelSet(o.dests)
	for a, c := range o.dchains {
		bt.c.FlushChain(c)
		bt.c.DelChain(c)
		bt.c.DelSet(o.affs[a])
	}
}

func (o *serviceObjects) destValue(a netip.AddrPort) []byte {
	if o.withPort {
		return destBytes(a)
	}
	return addrBytes(a.Addr())
}

func (o *serviceObjects) nfproto() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{byte(o.fam.nfproto)}},
	}
}

// schedule loads the pick-table index into register 1.
func (o *serviceObjects) schedule() []expr.Any {
	n := uint32(len(o.table))
	switch o.kind {
	case pickSaddr, pickDaddr:
		off := o.fam.saddrOff
		if o.kind == pickDaddr {
			off = o.fam.daddrOff
		}
		ex := []expr.Any{&expr.Payload{DestRegister: reg2, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: o.fam.addrLen}}
		hlen := o.fam.addrLen
		if o.kind == pickSaddr && o.svc.Flags&lb.FlagSHPort != 0 && !o.key.IsFWMark() {
			// sh-port: hash the source port too.
			ex = append(ex, &expr.Payload{DestRegister: reg32(reg2, o.fam.addrLen), Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2})
			hlen += 4
		}
		return append(ex, &expr.Hash{SourceRegister: reg2, DestRegister: reg1, Length: hlen, Modulus: n, Type: expr.HashTypeJenkins})
	}
	return []expr.Any{&expr.Numgen{Register: reg1, Modulus: n, Type: unix.NFT_NG_INCREMENTAL}}
}

// client loads the client address masked by the persistence granularity
// into register 1.
func (o *serviceObjects) client() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: o.fam.saddrOff, Len: o.fam.addrLen},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: o.fam.addrLen, Mask: maskBytes(o.fam.f, o.svc.Netmask), Xor: make([]byte, o.fam.addrLen)},
	}
}

// rules are the service chain's rules; none when no server takes new
// connections (the packet then goes on to the director's own stack, which
// refuses it, much as IPVS answers port unreachable).
//
//	plain:      dnat ip to numgen inc mod N map @S_pick
//	persistent: ip saddr & MASK @S_aff_rs_A goto S_rs_A      (one per server taking connections)
//	            numgen inc mod N vmap @S_pick                  (-> goto S_rs_X)
func (o *serviceObjects) rules() [][]expr.Any {
	if len(o.table) == 0 {
		return nil
	}
	guard := o.nfproto()
	if o.key.IsFWMark() && o.withPort {
		// Only TCP, UDP and SCTP have ports to map.
		guard = append(guard,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Lookup{SourceRegister: reg1, SetName: setL4Ports})
	}
	if o.svc.Timeout == 0 {
		r := append(append([]expr.Any{}, guard...), o.schedule()...)
		r = append(r,
			&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: o.pick.Name},
			o.nat(reg1))
		return [][]expr.Any{r}
	}
	var rules [][]expr.Any
	for _, d := range o.ds {
		if d.weight == 0 {
			continue // drained: its clients choose again
		}
		r := append(append([]expr.Any{}, guard...), o.client()...)
		r = append(r,
			&expr.Lookup{SourceRegister: reg1, SetName: o.affs[d.addr].Name},
			&expr.Verdict{Kind: expr.VerdictGoto, Chain: o.dchains[d.addr].Name})
		rules = append(rules, r)
	}
	r := append(append([]expr.Any{}, guard...), o.schedule()...)
	r = append(r, &expr.Lookup{SourceRegister: reg1, DestRegister: 0, IsDestRegSet: true, SetName: o.pick.Name})
	return append(rules, r)
}

// destRule is a persistent service's destination chain: remember the client
// (or refresh its timeout), translate.
//
//	update @S_aff_rs_A { ip saddr & MASK } dnat ip to A:PORT
func (o *serviceObjects) destRule(a netip.AddrPort) []expr.Any {
	r := append(o.nfproto(), o.client()...)
	r = append(r, &expr.Dynset{SrcRegKey: reg1, Operation: unix.NFT_DYNSET_OP_UPDATE, SetName: o.affs[a].Name})
	r = append(r, &expr.Immediate{Register: reg1, Data: addrBytes(a.Addr())})
	if o.withPort {
		r = append(r, &expr.Immediate{Register: reg32(reg1, o.fam.addrLen), Data: binaryutil.BigEndian.PutUint16(a.Port())})
	}
	return append(r, o.nat(reg1))
}

func (o *serviceObjects) nat(r uint32) *expr.NAT {
	n := &expr.NAT{Type: expr.NATTypeDestNAT, Family: o.fam.nfproto, RegAddrMin: r}
	if o.withPort {
		n.RegProtoMin = reg32(r, o.fam.addrLen)
	}
	return n
}
