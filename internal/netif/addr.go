package netif

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ifaProto is IFA_PROTO (Linux 5.18); x/sys/unix v0.49.0 does not name it.
const ifaProto = 11

// Addr is one address as the kernel reports it.
type Addr struct {
	Prefix    netip.Prefix // the local address and its prefix length
	Peer      netip.Addr   // point-to-point peer, if any
	Broadcast netip.Addr
	Label     string // IPv4 label ("eth0:1"); IPv6 addresses have none
	Scope     Scope
	Flags     uint32 // IFA_F_*
	// Proto is ifa_proto: who added the address. 0 when unset or on a kernel
	// without IFA_PROTO; AddrProtoKeepalived for vigil's VIPs.
	Proto     uint8
	LinkIndex int
}

// ListAddrs returns the addresses of the named interface (both families), in
// the kernel's order (IPv4 primary addresses before their secondaries).
func (h *Handle) ListAddrs(dev string) ([]Addr, error) {
	l, err := h.link(dev)
	if err != nil {
		return nil, err
	}
	return h.listAddrs(l.Attrs().Index)
}

// listAddrs dumps the addresses of one link (all links when index is 0).
func (h *Handle) listAddrs(index int) ([]Addr, error) {
	req := h.request(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
	if err != nil {
		return nil, fmt.Errorf("netif: list addresses: %w", err)
	}
	var out []Addr
	for _, m := range msgs {
		a, err := parseAddrMsg(m)
		if err != nil {
			return nil, err
		}
		if index == 0 || a.LinkIndex == index {
			out = append(out, a)
		}
	}
	return out, nil
}

func (h *Handle) request(typ, flags int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, flags)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: h.req}
	return req
}

// parseAddrMsg decodes an RTM_NEWADDR/RTM_DELADDR body (struct ifaddrmsg and
// its attributes). It checks every length before use and never panics.
func parseAddrMsg(b []byte) (Addr, error) {
	if len(b) < unix.SizeofIfAddrmsg {
		return Addr{}, fmt.Errorf("netif: short ifaddrmsg (%d bytes)", len(b))
	}
	family, plen, flags8, scope := b[0], int(b[1]), b[2], b[3]
	a := Addr{
		Scope:     Scope(scope),
		Flags:     uint32(flags8),
		LinkIndex: int(binary.NativeEndian.Uint32(b[4:8])),
	}
	alen := 4
	switch family {
	case unix.AF_INET:
	case unix.AF_INET6:
		alen = 16
	default:
		return Addr{}, fmt.Errorf("netif: address family %d", family)
	}
	if plen > alen*8 {
		return Addr{}, fmt.Errorf("netif: prefix length %d", plen)
	}
	attrs, err := parseAttrs(b[unix.SizeofIfAddrmsg:])
	if err != nil {
		return Addr{}, err
	}
	ip := func(v []byte) (netip.Addr, error) {
		if len(v) != alen {
			return netip.Addr{}, fmt.Errorf("netif: address attribute of %d bytes", len(v))
		}
		x, _ := netip.AddrFromSlice(v)
		return x, nil
	}
	var local, address netip.Addr
	for _, at := range attrs {
		v := at.value
		switch at.typ {
		case unix.IFA_ADDRESS:
			if address, err = ip(v); err != nil {
				return Addr{}, err
			}
		case unix.IFA_LOCAL:
			if local, err = ip(v); err != nil {
				return Addr{}, err
			}
		case unix.IFA_BROADCAST:
			if a.Broadcast, err = ip(v); err != nil {
				return Addr{}, err
			}
		case unix.IFA_LABEL:
			a.Label = unix.ByteSliceToString(v)
		case unix.IFA_FLAGS:
			if len(v) != 4 {
				return Addr{}, errors.New("netif: IFA_FLAGS length")
			}
			a.Flags = binary.NativeEndian.Uint32(v)
		case ifaProto:
			if len(v) != 1 {
				return Addr{}, errors.New("netif: IFA_PROTO length")
			}
			a.Proto = v[0]
		}
	}
	// IPv4 reports the local address in IFA_LOCAL and the peer (or the
	// same address) in IFA_ADDRESS; IPv6 sends IFA_ADDRESS alone unless a
	// peer is set.
	switch {
	case local.IsValid():
		a.Prefix = netip.PrefixFrom(local, plen)
		if address.IsValid() && address != local {
			a.Peer = address
		}
	case address.IsValid():
		a.Prefix = netip.PrefixFrom(address, plen)
	default:
		return Addr{}, errors.New("netif: address message without an address")
	}
	return a, nil
}

// AddVIP adds a VIP to its interface, marked with the handle's AddrProto. It
// is idempotent: an address that is already there (EEXIST) is success. A
// missing interface gives an error matching ErrLinkNotFound.
func (h *Handle) AddVIP(v VIP) error { return h.AddVIPs([]VIPAt{{VIP: v}})[0] }

// VIPAt is a VIP to add and the index of its interface, which the caller
// knows from its link events: it spares a lookup of the interface by name.
// Index 0 looks the interface up by VIP.Dev; otherwise VIP.Dev is not read.
type VIPAt struct {
	Index int
	VIP   VIP
}

// maxBatch is how many address requests AddVIPs puts in one netlink
// message. Only failures are answered, and the last request of each message
// (NLM_F_ACK): 64 answers echoing their ~100-byte requests fit the socket's
// default receive buffer many times over.
const maxBatch = 64

// AddVIPs adds the VIPs, as AddVIP adds one, in order, and returns one error
// per VIP (nil when it was added or was there already). The requests go to
// the kernel up to maxBatch per netlink message, without waiting for an
// answer to each: the kernel runs the requests of one message in order and
// answers only those that fail, then the last (it asks for an ACK). A mass
// takeover installs its addresses at a fraction of the cost of a round trip
// each.
func (h *Handle) AddVIPs(vs []VIPAt) []error {
	errs := make([]error, len(vs))
	var reqs []*nl.NetlinkRequest
	var which, indexes []int // reqs[k] adds vs[which[k]] on link indexes[k]
	flush := func() {
		for k, err := range h.sendBatch(reqs) {
			switch {
			case err == nil, errors.Is(err, unix.EEXIST):
			case errors.Is(err, unix.ENODEV):
				errs[which[k]] = fmt.Errorf("netif: add %s: %w", vs[which[k]].VIP, &LinkNotFoundError{Index: indexes[k]})
			default:
				errs[which[k]] = fmt.Errorf("netif: add %s: %w", vs[which[k]].VIP, err)
			}
		}
		reqs, which, indexes = reqs[:0], which[:0], indexes[:0]
	}
	for i, x := range vs {
		v := x.VIP
		if err := v.Validate(); err != nil {
			errs[i] = err
			continue
		}
		index := x.Index
		if index <= 0 {
			l, err := h.link(v.Dev)
			if err != nil {
				errs[i] = err
				continue
			}
			index = l.Attrs().Index
		}
		reqs = append(reqs, h.addrMessage(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, index, v))
		which, indexes = append(which, i), append(indexes, index)
		if len(reqs) == maxBatch {
			flush()
		}
	}
	flush()
	return errs
}

// ErrNotOurs is returned (wrapped) by DelVIP for an address that is there
// but was not added by vigil (it lacks the handle's AddrProto mark): vigil
// never deletes an address it did not add.
var ErrNotOurs = errors.New("netif: address not added by vigil (unmarked); left in place")

// DelVIP removes a VIP from its interface. It is idempotent: an address that
// is not there (EADDRNOTAVAIL), or whose interface is gone, is success. On a
// kernel that keeps address marks (IFA_PROTO), an address present without
// the handle's mark, i.e. added by someone else, is left in place and the
// error wraps ErrNotOurs.
func (h *Handle) DelVIP(v VIP) error {
	return h.DelVIPAt(VIPAt{VIP: v})
}

// DelVIPAt is DelVIP on the interface with index x.Index (0: looked up by
// x.VIP.Dev): the engine's link table knows the index of an interface that
// was just renamed, whose addresses went along under the new name.
func (h *Handle) DelVIPAt(x VIPAt) error {
	v := x.VIP
	if err := v.Validate(); err != nil {
		return err
	}
	index := x.Index
	if index == 0 {
		l, err := h.link(v.Dev)
		if errors.Is(err, ErrLinkNotFound) {
			return nil // the address went with its interface
		}
		if err != nil {
			return err
		}
		index = l.Attrs().Index
	}
	if h.marks && h.proto != 0 {
		addrs, err := h.listAddrs(index)
		if err != nil {
			return err
		}
		found, ours := false, false
		for _, a := range addrs {
			if a.Prefix.Addr() == v.Addr() && a.Prefix.Bits() == v.Prefix.Bits() {
				found, ours = true, a.Proto == h.proto
				break
			}
		}
		if !found {
			return nil
		}
		if !ours {
			return fmt.Errorf("netif: delete %s: %w", v, ErrNotOurs)
		}
	}
	if err := h.delAddr(index, v); err != nil {
		return fmt.Errorf("netif: delete %s: %w", v, err)
	}
	return nil
}

func (h *Handle) delAddr(index int, v VIP) error {
	err := h.addrRequest(unix.RTM_DELADDR, 0, index, v)
	if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV) {
		return nil
	}
	return err
}

// addrRequest sends RTM_NEWADDR or RTM_DELADDR for v on link index and
// waits for the kernel's answer.
func (h *Handle) addrRequest(typ, flags, index int, v VIP) error {
	_, err := h.addrMessage(typ, flags|unix.NLM_F_ACK, index, v).Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// addrMessage builds RTM_NEWADDR or RTM_DELADDR for v on link index as
// keepalived 2.2.7 builds it (vrrp_ipaddress.c netlink_ipaddress), plus
// IFA_PROTO on add.
func (h *Handle) addrMessage(typ, flags, index int, v VIP) *nl.NetlinkRequest {
	a := v.Prefix.Addr()
	fam := unix.AF_INET
	if a.Is6() {
		fam = unix.AF_INET6
	}
	req := h.request(typ, flags)
	msg := nl.NewIfAddrmsg(fam)
	msg.Prefixlen = uint8(v.Prefix.Bits())
	msg.Index = uint32(index)
	if typ == unix.RTM_NEWADDR {
		msg.Scope = uint8(v.Scope)
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, a.AsSlice()))
	switch {
	case v.Peer.IsValid():
		req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, v.Peer.AsSlice()))
	case a.Is4():
		// The kernel matches IPv4 deletions on IFA_ADDRESS and the prefix
		// length, so the right address of several with different
		// prefixes goes.
		req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, a.AsSlice()))
	}
	if typ == unix.RTM_NEWADDR {
		if v.Broadcast.IsValid() {
			req.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, v.Broadcast.AsSlice()))
		}
		if v.Label != "" {
			req.AddData(nl.NewRtAttr(unix.IFA_LABEL, nl.ZeroTerminated(v.Label)))
		}
		if f := v.ifaFlags(); f != 0 {
			req.AddData(nl.NewRtAttr(unix.IFA_FLAGS, nl.Uint32Attr(f)))
		}
		if a.Is6() {
			if p := v.preferredLft(); p != LifetimeForever {
				ci := make([]byte, unix.SizeofIfaCacheinfo)
				binary.NativeEndian.PutUint32(ci[0:4], p)
				binary.NativeEndian.PutUint32(ci[4:8], LifetimeForever)
				req.AddData(nl.NewRtAttr(unix.IFA_CACHEINFO, ci))
			}
		}
		if h.proto != 0 {
			req.AddData(nl.NewRtAttr(ifaProto, []byte{h.proto}))
		}
	}
	return req
}

// HasVIP reports whether the VIP's address is on its interface (whatever its
// prefix length or marking).
func (h *Handle) HasVIP(v VIP) (bool, error) {
	addrs, err := h.ListAddrs(v.Dev)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a.Prefix.Addr() == v.Prefix.Addr() {
			return true, nil
		}
	}
	return false, nil
}

// RemoveStale removes, at start, what a killed earlier run left on the
// interfaces the configuration uses, and only what vigil marked (the
// handle's AddrProto): vigil never deletes an address it did not add.
//
//   - a configured VIP that is present and marked goes (keepalived 2.2.7
//     vrrp_restore_interfaces_startup removes configured VIPs too: an
//     instance starts in BACKUP or INIT and must not hold them); the caller
//     must own the VIP's virtual router (see internal/owner);
//   - with others set (no other vigil runs in the namespace), every other
//     marked address on those interfaces goes too: a VIP an earlier run
//     added from a configuration that has since dropped it;
//   - a configured VIP that is present but unmarked stays and is returned
//     in foreign, for the caller to report.
//
// Interfaces that do not exist are skipped. On a kernel without address
// marks nothing is removed: every present configured VIP is foreign.
func (h *Handle) RemoveStale(vips []VIP, others bool) (removed, foreign []Addr, err error) {
	want := map[string]map[netip.Addr]bool{}
	var devs []string
	for _, v := range vips {
		if want[v.Dev] == nil {
			want[v.Dev] = map[netip.Addr]bool{}
			devs = append(devs, v.Dev)
		}
		want[v.Dev][v.Prefix.Addr()] = true
	}
	var errs []error
	for _, dev := range devs {
		addrs, err := h.ListAddrs(dev)
		if errors.Is(err, ErrLinkNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range addrs {
			configured := want[dev][a.Prefix.Addr()]
			marked := h.marks && h.proto != 0 && a.Proto == h.proto
			if configured && !marked {
				foreign = append(foreign, a)
				continue
			}
			if !marked || !(configured || others) {
				continue
			}
			v := VIP{Prefix: a.Prefix, Peer: a.Peer, Dev: dev}
			if err := h.delAddr(a.LinkIndex, v); err != nil {
				errs = append(errs, fmt.Errorf("netif: remove stale %s on %s: %w", a.Prefix, dev, err))
				continue
			}
			removed = append(removed, a)
		}
	}
	return removed, foreign, errors.Join(errs...)
}

type rtattr struct {
	typ   uint16
	value []byte
}

// parseAttrs splits rtnetlink attributes. It replaces nl.ParseRouteAttr,
// which (vishvananda/netlink v1.3.1) panics when the last attribute is not
// padded to 4 bytes; this one checks every length and never panics.
func parseAttrs(b []byte) ([]rtattr, error) {
	var out []rtattr
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < 4 || l > len(b) {
			return nil, fmt.Errorf("netif: attribute length %d with %d bytes left", l, len(b))
		}
		out = append(out, rtattr{typ: binary.NativeEndian.Uint16(b[2:4]) & 0x3fff, value: b[4:l]})
		l = (l + 3) &^ 3
		if l > len(b) {
			break // unpadded last attribute
		}
		b = b[l:]
	}
	return out, nil
}
