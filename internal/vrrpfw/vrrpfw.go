// Package vrrpfw owns vigil's VRRP firewall: one nftables table, `inet
// vigil_vrrp`, apart from the load balancer's `inet vigil`, holding what
// keepalived 2.2.7 puts in its own "keepalived" tables (vrrp_nftables.c):
//
//   - accept mode off (vrrp_strict, or no_accept, on a master that is not
//     the address owner): packets to and from the instance's addresses are
//     dropped in the input and output hooks at priority -1 (keepalived's
//     nftables_priority default), IPv6 neighbour solicitations and
//     advertisements excepted so the addresses stay resolvable;
//   - VMAC interfaces: IGMP, MLD and router solicitations leaving them are
//     dropped, so a backup's VMAC never sends a frame with the virtual MAC
//     that would teach switches the wrong port; so are neighbour
//     advertisements from a link-local source (an IPv6 VMAC carries its
//     parent's link-local address, and answering for it from the virtual MAC
//     has the same effect: keepalived drops these from 2.2.8 on).
//
// State is the whole desired content; Apply replaces the table in one
// atomic batch (or removes it when State is empty).
//
// Concurrency: a Firewall is not safe for concurrent use; the engine calls
// it from its ordered effects worker.
package vrrpfw

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Table is the name of the table (family inet).
const Table = "vigil_vrrp"

// State is what the table should hold.
type State struct {
	// Drop are the addresses of masters without accept mode.
	Drop []Drop
	// VMACs are the VMAC interfaces whose IGMP / MLD / RS are dropped.
	VMACs []string
}

// Drop is one address whose traffic is dropped. Dev matters for an IPv6
// link-local address only (matched with the interface).
type Drop struct {
	Addr netip.Addr
	Dev  string
}

// Empty reports whether the state needs no table.
func (s State) Empty() bool { return len(s.Drop) == 0 && len(s.VMACs) == 0 }

// Equal reports whether two states are the same, in order.
func (s State) Equal(o State) bool {
	return slices.Equal(s.Drop, o.Drop) && slices.Equal(s.VMACs, o.VMACs)
}

// Firewall applies States through one netlink connection.
type Firewall struct {
	c *nftables.Conn
}

// Open opens a netlink connection to nftables in the current network
// namespace. It changes nothing.
func Open() (*Firewall, error) {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("vrrpfw: netlink: %w", err)
	}
	return &Firewall{c: c}, nil
}

// Close releases the connection (the table stays: Apply an empty State
// first to remove it).
func (f *Firewall) Close() error { return f.c.CloseLasting() }

// Apply makes the table hold exactly s, in one batch; an empty s removes the
// table (also one a killed earlier run left).
func (f *Firewall) Apply(s State) error {
	t := &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
	// Adding the table first makes the deletion valid whether or not it
	// exists; the batch is atomic, so no packet sees a missing table
	// between the two.
	f.c.AddTable(t)
	f.c.DelTable(t)
	if !s.Empty() {
		build(f.c, s)
	}
	if err := f.c.Flush(); err != nil {
		return fmt.Errorf("vrrpfw: apply: %w", err)
	}
	return nil
}

// Remove deletes the table.
func (f *Firewall) Remove() error { return f.Apply(State{}) }

func build(c *nftables.Conn, s State) {
	t := c.AddTable(&nftables.Table{Name: Table, Family: nftables.TableFamilyINet})
	prio := nftables.ChainPriority(-1)
	accept := nftables.ChainPolicyAccept
	in := c.AddChain(&nftables.Chain{Name: "in", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: &prio, Policy: &accept})
	out := c.AddChain(&nftables.Chain{Name: "out", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: &prio, Policy: &accept})
	rule := func(ch *nftables.Chain, parts ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: cat(parts...)})
	}
	for _, name := range s.VMACs {
		// IPv4: ip protocol igmp.
		rule(out, ifname(expr.MetaKeyOIFNAME, name),
			nfproto(unix.NFPROTO_IPV4), l4proto(unix.IPPROTO_IGMP), verdict(expr.VerdictDrop))
		// IPv6: MLD query, report, done, MLDv2 report; router solicitation.
		for _, typ := range []byte{130, 131, 132, 143, 133} {
			rule(out, ifname(expr.MetaKeyOIFNAME, name),
				nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6), icmp6Type(typ), verdict(expr.VerdictDrop))
		}
		// Neighbour advertisement from fe80::/16 (every link-local address
		// Linux makes is in fe80::/64).
		rule(out, ifname(expr.MetaKeyOIFNAME, name),
			nfproto(unix.NFPROTO_IPV6), payloadIs(expr.PayloadBaseNetworkHeader, 8, []byte{0xfe, 0x80}),
			l4proto(unix.IPPROTO_ICMPV6), icmp6Type(136), verdict(expr.VerdictDrop))
	}
	if len(s.Drop) == 0 {
		return
	}
	// RFC 5798 §6.4.3 leaves neighbour discovery for the addresses working.
	for _, ch := range []*nftables.Chain{in, out} {
		for _, typ := range []byte{135, 136} {
			rule(ch, nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6), icmp6Type(typ), verdict(expr.VerdictAccept))
		}
	}
	for _, d := range s.Drop {
		for _, dir := range []struct {
			ch  *nftables.Chain
			dst bool
			key expr.MetaKey
		}{{in, true, expr.MetaKeyIIFNAME}, {out, false, expr.MetaKeyOIFNAME}} {
			var dev []expr.Any
			if d.Addr.Is6() && d.Addr.IsLinkLocalUnicast() && d.Dev != "" {
				dev = ifname(dir.key, d.Dev)
			}
			rule(dir.ch, dev, addrMatch(d.Addr, dir.dst), verdict(expr.VerdictDrop))
		}
	}
}

func ifname(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, 16)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

func nfproto(p byte) []expr.Any { return metaIs(expr.MetaKeyNFPROTO, p) }

func l4proto(p byte) []expr.Any { return metaIs(expr.MetaKeyL4PROTO, p) }

func metaIs(key expr.MetaKey, v byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{v}},
	}
}

func payloadIs(base expr.PayloadBase, off uint32, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: uint32(len(data))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

func icmp6Type(t byte) []expr.Any { return payloadIs(expr.PayloadBaseTransportHeader, 0, []byte{t}) }

// addrMatch matches the source or destination address.
func addrMatch(a netip.Addr, dst bool) []expr.Any {
	if a.Is4() {
		off := uint32(12) // RFC 791 header: source at 12, destination at 16
		if dst {
			off = 16
		}
		return cat(nfproto(unix.NFPROTO_IPV4), payloadIs(expr.PayloadBaseNetworkHeader, off, a.AsSlice()))
	}
	off := uint32(8) // RFC 8200 header: source at 8, destination at 24
	if dst {
		off = 24
	}
	return cat(nfproto(unix.NFPROTO_IPV6), payloadIs(expr.PayloadBaseNetworkHeader, off, a.AsSlice()))
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }
