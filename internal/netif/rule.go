package netif

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Rule is one virtual_rules entry (keepalived's "ip rule" syntax):
// installed while the instance is MASTER. The fib_rule_hdr message is
// built here as keepalived 2.2.7 builds it (vrrp_iprule.c netlink_rule);
// vishvananda/netlink v1.3.1's Rule has no l3mdev. Every field is a value.
type Rule struct {
	From, To netip.Prefix
	IPv6     bool
	Not      bool // FIB_RULE_INVERT
	// Preference is FRA_PRIORITY; 0: let the kernel choose (the
	// configuration always gives one, as keepalived does).
	Preference int
	// Action is "" (lookup Table), "goto", "nop", "blackhole",
	// "unreachable" or "prohibit".
	Action string
	Table  int // for the lookup action; 0 is main
	Goto   uint32
	L3mdev bool // FRA_L3MDEV: lookup in the device's VRF table
	TOS    uint8
	// Mark and Mask are FRA_FWMARK (when MarkSet) and FRA_FWMASK (when
	// MaskSet: "fwmark M/MASK").
	Mark             uint32
	Mask             uint32
	MarkSet, MaskSet bool
	IIf, OIf         string // FRA_IIFNAME, FRA_OIFNAME
	Realms           uint32 // FRA_FLOW
	// SuppressPrefixLen is FRA_SUPPRESS_PREFIXLEN when
	// SuppressPrefixLenSet.
	SuppressPrefixLen    uint32
	SuppressPrefixLenSet bool
	// SuppressIfgroup is FRA_SUPPRESS_IFGROUP when SuppressIfgroupSet.
	SuppressIfgroup    uint32
	SuppressIfgroupSet bool
	TunID              uint64 // FRA_TUN_ID; 0: none
	// UIDStart-UIDEnd is FRA_UID_RANGE when UIDSet.
	UIDStart, UIDEnd uint32
	UIDSet           bool
	IPProto          uint8 // FRA_IP_PROTO when IPProtoSet
	IPProtoSet       bool
	Sport, Dport     PortRange
	// Protocol is FRA_PROTOCOL; 0 is the handle's (18, keepalived's), -1
	// sends none (a no_track rule without a protocol).
	Protocol int
}

// PortRange is FRA_SPORT_RANGE / FRA_DPORT_RANGE when Set.
type PortRange struct {
	Start, End uint16
	Set        bool
}

// RuleActions are the rule actions by name (FR_ACT_*).
var RuleActions = map[string]uint8{
	"": unix.FR_ACT_TO_TBL, "goto": unix.FR_ACT_GOTO, "nop": unix.FR_ACT_NOP,
	"blackhole": unix.FR_ACT_BLACKHOLE, "unreachable": unix.FR_ACT_UNREACHABLE, "prohibit": unix.FR_ACT_PROHIBIT,
}

func (r Rule) String() string {
	var b strings.Builder
	if r.IPv6 && !r.From.IsValid() && !r.To.IsValid() {
		b.WriteString("inet6 ")
	}
	if r.Not {
		b.WriteString("not ")
	}
	if r.From.IsValid() {
		b.WriteString("from " + r.From.String())
	} else {
		b.WriteString("from all")
	}
	if r.To.IsValid() {
		b.WriteString(" to " + r.To.String())
	}
	if r.Preference != 0 {
		fmt.Fprintf(&b, " priority %d", r.Preference)
	}
	if r.TOS != 0 {
		fmt.Fprintf(&b, " tos 0x%x", r.TOS)
	}
	if r.MarkSet {
		fmt.Fprintf(&b, " fwmark 0x%x", r.Mark)
		if r.MaskSet {
			fmt.Fprintf(&b, "/0x%x", r.Mask)
		}
	}
	if r.IIf != "" {
		b.WriteString(" iif " + r.IIf)
	}
	if r.OIf != "" {
		b.WriteString(" oif " + r.OIf)
	}
	if r.UIDSet {
		fmt.Fprintf(&b, " uidrange %d-%d", r.UIDStart, r.UIDEnd)
	}
	if r.IPProtoSet {
		fmt.Fprintf(&b, " ipproto %d", r.IPProto)
	}
	if r.Sport.Set {
		fmt.Fprintf(&b, " sport %d-%d", r.Sport.Start, r.Sport.End)
	}
	if r.Dport.Set {
		fmt.Fprintf(&b, " dport %d-%d", r.Dport.Start, r.Dport.End)
	}
	if r.L3mdev {
		b.WriteString(" l3mdev")
	}
	switch r.Action {
	case "":
		if !r.L3mdev {
			t := r.Table
			if t == 0 {
				t = unix.RT_TABLE_MAIN
			}
			fmt.Fprintf(&b, " lookup %d", t)
		}
	case "goto":
		fmt.Fprintf(&b, " goto %d", r.Goto)
	default:
		b.WriteString(" " + r.Action)
	}
	return b.String()
}

// ruleMessage builds RTM_NEWRULE or RTM_DELRULE for r.
func (h *Handle) ruleMessage(typ, flags int, r Rule) (*nl.NetlinkRequest, error) {
	action, ok := RuleActions[r.Action]
	if !ok {
		return nil, fmt.Errorf("netif: rule action %q not supported", r.Action)
	}
	fam := uint8(unix.AF_INET)
	if r.IPv6 {
		fam = unix.AF_INET6
	}
	// struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1,
	// res2, action, flags.
	hdr := make([]byte, 12)
	hdr[0], hdr[3], hdr[7] = fam, r.TOS, action
	var attrs []nl.NetlinkRequestData
	if r.Action == "" && !r.L3mdev {
		t := r.Table
		if t == 0 {
			t = unix.RT_TABLE_MAIN
		}
		if t < 256 {
			hdr[4] = uint8(t)
		} else {
			attrs = append(attrs, nl.NewRtAttr(unix.FRA_TABLE, nl.Uint32Attr(uint32(t))))
		}
	}
	if r.Not {
		binary.NativeEndian.PutUint32(hdr[8:12], unix.FIB_RULE_INVERT)
	}
	if r.From.IsValid() {
		hdr[2] = uint8(r.From.Bits())
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_SRC, r.From.Masked().Addr().AsSlice()))
	}
	if r.To.IsValid() {
		hdr[1] = uint8(r.To.Bits())
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_DST, r.To.Masked().Addr().AsSlice()))
	}
	if r.Preference > 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_PRIORITY, nl.Uint32Attr(uint32(r.Preference))))
	}
	if r.MarkSet {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_FWMARK, nl.Uint32Attr(r.Mark)))
	}
	if r.MaskSet {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_FWMASK, nl.Uint32Attr(r.Mask)))
	}
	if r.Realms != 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_FLOW, nl.Uint32Attr(r.Realms)))
	}
	if r.SuppressPrefixLenSet {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_SUPPRESS_PREFIXLEN, nl.Uint32Attr(r.SuppressPrefixLen)))
	}
	if r.SuppressIfgroupSet {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_SUPPRESS_IFGROUP, nl.Uint32Attr(r.SuppressIfgroup)))
	}
	if r.IIf != "" {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_IIFNAME, nl.ZeroTerminated(r.IIf)))
	}
	if r.OIf != "" {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_OIFNAME, nl.ZeroTerminated(r.OIf)))
	}
	if r.TunID != 0 {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, r.TunID)
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_TUN_ID, b))
	}
	if r.UIDSet {
		b := make([]byte, 8)
		binary.NativeEndian.PutUint32(b[0:4], r.UIDStart)
		binary.NativeEndian.PutUint32(b[4:8], r.UIDEnd)
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_UID_RANGE, b))
	}
	if r.L3mdev {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_L3MDEV, []byte{1}))
	}
	switch {
	case r.Protocol == 0:
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_PROTOCOL, []byte{h.proto}))
	case r.Protocol > 0:
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_PROTOCOL, []byte{uint8(r.Protocol)}))
	}
	if r.IPProtoSet {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_IP_PROTO, []byte{r.IPProto}))
	}
	for _, p := range []struct {
		t  int
		pr PortRange
	}{{unix.FRA_SPORT_RANGE, r.Sport}, {unix.FRA_DPORT_RANGE, r.Dport}} {
		if p.pr.Set {
			b := make([]byte, 4)
			binary.NativeEndian.PutUint16(b[0:2], p.pr.Start)
			binary.NativeEndian.PutUint16(b[2:4], p.pr.End)
			attrs = append(attrs, nl.NewRtAttr(p.t, b))
		}
	}
	if r.Action == "goto" {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_GOTO, nl.Uint32Attr(r.Goto)))
	}
	req := h.request(typ, flags|unix.NLM_F_ACK)
	req.AddData(rawData(hdr))
	for _, a := range attrs {
		req.AddData(a)
	}
	return req, nil
}

// AddRule installs a policy routing rule (NLM_F_EXCL, as keepalived); one
// that exists is success.
func (h *Handle) AddRule(r Rule) error {
	if err := execute(h.ruleMessage(unix.RTM_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, r)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("netif: add rule %s: %w", r, err)
	}
	return nil
}

// DelRule removes a policy routing rule; one that is gone is success.
func (h *Handle) DelRule(r Rule) error {
	if err := execute(h.ruleMessage(unix.RTM_DELRULE, 0, r)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("netif: delete rule %s: %w", r, err)
	}
	return nil
}
