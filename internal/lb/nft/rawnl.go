package nft

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// google/nftables v0.3.0 has no `fwd` expression (and its expressions
// cannot be extended outside the package), so the direct-routing table's
// ingress chains, the only rules that forward, are sent as raw nf_tables
// messages in a batch of their own. Every other expression in them is
// marshalled by the library (expr.Marshal); only fwd is encoded here
// (linux/netfilter/nf_tables.h, enum nft_fwd_attributes).

// enum nft_fwd_attributes (x/sys/unix has only the first).
const (
	nftaFwdSregDev  = 1
	nftaFwdSregAddr = 2
	nftaFwdNfproto  = 3
	nfAccept        = 1 // NF_ACCEPT
)

// fwdExpr is `fwd ip|ip6 to <register> device <register>`: the neighbour
// form of nft_fwd_netdev, which resolves the next hop's link address
// through the kernel's neighbour table and transmits on the device.
type fwdExpr struct {
	regDev, regAddr uint32
	nfproto         uint32
}

func (f fwdExpr) marshal() []byte {
	data, _ := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: nftaFwdSregDev, Data: binaryutil.BigEndian.PutUint32(f.regDev)},
		{Type: nftaFwdSregAddr, Data: binaryutil.BigEndian.PutUint32(f.regAddr)},
		{Type: nftaFwdNfproto, Data: binaryutil.BigEndian.PutUint32(f.nfproto)},
	})
	b, _ := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_EXPR_NAME, Data: []byte("fwd\x00")},
		{Type: unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, Data: data},
	})
	return b
}

// rawExpr is one expression of a raw rule: a library expression or fwd.
type rawExpr struct {
	e   expr.Any
	fwd *fwdExpr
}

// rawBatch collects nf_tables messages for one transaction.
type rawBatch struct {
	family byte
	table  string
	msgs   []netlink.Message
	cuts   []int // message counts at which a transaction may end
	err    error
}

// cut marks the end of a group of messages that must commit together (one
// service's rules): send may split the batch into transactions there.
func (rb *rawBatch) cut() { rb.cuts = append(rb.cuts, len(rb.msgs)) }

// rawTxnBytes bounds one raw transaction (a netlink sendmsg; the socket's
// buffers are forced to 64 MiB). Each transaction makes the kernel check the
// whole table, so fewer, larger ones are cheaper.
const rawTxnBytes = 16 << 20

func nfHeader(family byte) []byte { return []byte{family, unix.NFNETLINK_V0, 0, 0} }

func (rb *rawBatch) add(msgType uint16, flags netlink.HeaderFlags, attrs []netlink.Attribute) {
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		rb.err = errors.Join(rb.err, err)
		return
	}
	rb.msgs = append(rb.msgs, netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msgType), Flags: netlink.Request | netlink.Acknowledge | flags},
		Data:   append(nfHeader(rb.family), data...),
	})
}

// addBaseChain creates (or keeps) a filter chain on hook with priority and
// device, policy accept.
func (rb *rawBatch) addBaseChain(name string, hook uint32, prio int32, dev string) {
	hookAttrs, _ := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_HOOK_HOOKNUM, Data: binaryutil.BigEndian.PutUint32(hook)},
		{Type: unix.NFTA_HOOK_PRIORITY, Data: binaryutil.BigEndian.PutUint32(uint32(prio))},
		{Type: unix.NFTA_HOOK_DEV, Data: []byte(dev + "\x00")},
	})
	rb.add(unix.NFT_MSG_NEWCHAIN, netlink.Create, []netlink.Attribute{
		{Type: unix.NFTA_CHAIN_TABLE, Data: []byte(rb.table + "\x00")},
		{Type: unix.NFTA_CHAIN_NAME, Data: []byte(name + "\x00")},
		{Type: unix.NLA_F_NESTED | unix.NFTA_CHAIN_HOOK, Data: hookAttrs},
		{Type: unix.NFTA_CHAIN_POLICY, Data: binaryutil.BigEndian.PutUint32(nfAccept)},
		{Type: unix.NFTA_CHAIN_TYPE, Data: []byte("filter\x00")},
	})
}

// flushChain deletes every rule of a chain.
func (rb *rawBatch) flushChain(name string) {
	rb.add(unix.NFT_MSG_DELRULE, 0, []netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(rb.table + "\x00")},
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte(name + "\x00")},
	})
}

func (rb *rawBatch) delChain(name string) {
	rb.add(unix.NFT_MSG_DELCHAIN, 0, []netlink.Attribute{
		{Type: unix.NFTA_CHAIN_TABLE, Data: []byte(rb.table + "\x00")},
		{Type: unix.NFTA_CHAIN_NAME, Data: []byte(name + "\x00")},
	})
}

// addRule appends a rule to a chain.
func (rb *rawBatch) addRule(chain string, exprs []rawExpr) {
	var list []netlink.Attribute
	for _, e := range exprs {
		var b []byte
		if e.fwd != nil {
			b = e.fwd.marshal()
		} else {
			var err error
			if b, err = expr.Marshal(rb.family, e.e); err != nil {
				rb.err = errors.Join(rb.err, err)
				return
			}
		}
		list = append(list, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: b})
	}
	le, err := netlink.MarshalAttributes(list)
	if err != nil {
		rb.err = errors.Join(rb.err, err)
		return
	}
	rb.add(unix.NFT_MSG_NEWRULE, netlink.Create|unix.NLM_F_APPEND, []netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(rb.table + "\x00")},
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte(chain + "\x00")},
		{Type: unix.NLA_F_NESTED | unix.NFTA_RULE_EXPRESSIONS, Data: le},
	})
}

// send commits the batch, in transactions that end at cuts and stay under
// rawTxnBytes where a group allows, and waits for every acknowledgement.
func (rb *rawBatch) send(c *netlink.Conn) error {
	if rb.err != nil {
		return fmt.Errorf("nft: raw batch: %w", rb.err)
	}
	cuts := append(append([]int(nil), rb.cuts...), len(rb.msgs))
	start, size := 0, 0
	prev := 0
	for _, cut := range cuts {
		for _, m := range rb.msgs[prev:cut] {
			size += len(m.Data) + 16
		}
		prev = cut
		if size >= rawTxnBytes || cut == len(rb.msgs) {
			if err := sendTxn(c, rb.msgs[start:cut]); err != nil {
				return err
			}
			start, size = cut, 0
		}
	}
	return nil
}

func sendTxn(c *netlink.Conn, txn []netlink.Message) error {
	if len(txn) == 0 {
		return nil
	}
	msgs := make([]netlink.Message, 0, len(txn)+2)
	msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request}, Data: []byte{0, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES}})
	msgs = append(msgs, txn...)
	msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_END), Flags: netlink.Request}, Data: []byte{0, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES}})
	if _, err := c.SendMessages(msgs); err != nil {
		return fmt.Errorf("nft: raw batch: send: %w", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	acks := 0
	for acks < len(txn) {
		reply, err := c.Receive()
		if err != nil {
			return fmt.Errorf("nft: raw batch: %w", err)
		}
		for _, m := range reply {
			if m.Header.Type == netlink.Error {
				acks++
			}
		}
	}
	return nil
}
