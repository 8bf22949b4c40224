package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/inet"
	"github.com/vigil-ha/vigil/internal/lb"
)

// The table's layout (`nft list table inet vigil`):
//
//	map svc4      ipv4_addr . inet_proto . inet_service : verdict   VIP.proto.port -> jump <service chain>
//	map svc4_any  ipv4_addr . inet_proto : verdict                  port-0 (all ports) persistent services
//	map fwm4      mark : verdict                                     fwmark services
//	(and svc6, svc6_any, fwm6)
//	set l4ports   inet_proto: tcp, udp, sctp                         fwmark services that map ports
//	chain prerouting  type nat hook prerouting priority dstnat: fwmark first (as IPVS), then exact, then any-port
//	chain output      type nat hook output priority -100: the same, for clients on the director
//
// and per service S (named after its key, e.g. svc_tcp_192_168_1_1_80):
//
//	chain S           the scheduling rules
//	map S_dests       ADDR . PORT : weight, with the service in the comment: the table of
//	                  destinations (weight 0 ones too), read back by Observe
//	map S_pick        index : ADDR . PORT, the rotation / hash buckets
//	map S_persist     masked client address : ADDR . PORT, dynamic with timeout (persistent services)
const (
	chainPrerouting = "prerouting"
	chainOutput     = "output"
	setL4Ports      = "l4ports"
	commentPrefix   = "vigil "
)

// fam holds the per-family constants.
type fam struct {
	f        lb.Family
	nfproto  uint32 // NFPROTO_IPV4/6
	addrLen  uint32
	saddrOff uint32
	daddrOff uint32
	addrType nftables.SetDatatype
	suffix   string
}

var (
	fam4 = fam{lb.IPv4, unix.NFPROTO_IPV4, 4, 12, 16, nftables.TypeIPAddr, "4"}
	fam6 = fam{lb.IPv6, unix.NFPROTO_IPV6, 16, 8, 24, nftables.TypeIP6Addr, "6"}
)

func famOf(f lb.Family) fam {
	if f == lb.IPv6 {
		return fam6
	}
	return fam4
}

// serviceName names the chain (and prefixes the maps) of a service:
// svc_tcp_192_168_1_1_80, svc_udp_fd00__1_53, svc_fwm4_7. The mapping is
// injective: '.' and ':' never meet '_' in an address.
func serviceName(k lb.ServiceKey) string {
	if k.IsFWMark() {
		return fmt.Sprintf("svc_fwm%s_%d", famOf(k.Family).suffix, k.FWMark)
	}
	a := strings.NewReplacer(".", "_", ":", "_").Replace(k.Addr.String())
	return fmt.Sprintf("svc_%s_%s_%d", strings.ToLower(k.Proto.String()), a, k.Port)
}

// encodeComment stores a service key and attributes in the dests map's
// comment (at most 128 bytes: nftables' comment limit).
func encodeComment(k lb.ServiceKey, s lb.Service) string {
	c := fmt.Sprintf("%skey=%s sched=%s flags=%d timeout=%d mask=%d", commentPrefix, keyText(k), s.Scheduler, s.Flags, s.Timeout, s.Netmask)
	if s.PE != "" {
		c += " pe=" + s.PE
	}
	return c
}

// keyText writes a service key as parseKey reads it: tcp/192.168.1.1/80,
// fwm4/7.
func keyText(k lb.ServiceKey) string {
	if k.IsFWMark() {
		return fmt.Sprintf("fwm%s/%d", famOf(k.Family).suffix, k.FWMark)
	}
	return fmt.Sprintf("%s/%s/%d", strings.ToLower(k.Proto.String()), k.Addr, k.Port)
}

func decodeComment(c string) (lb.ServiceKey, lb.Service, error) {
	var k lb.ServiceKey
	var s lb.Service
	if !strings.HasPrefix(c, commentPrefix) {
		return k, s, fmt.Errorf("nft: not a vigil service comment: %q", c)
	}
	for _, f := range strings.Fields(strings.TrimPrefix(c, commentPrefix)) {
		name, val, ok := strings.Cut(f, "=")
		if !ok {
			return k, s, fmt.Errorf("nft: bad service comment field %q", f)
		}
		var err error
		switch name {
		case "key":
			k, err = parseKey(val)
		case "sched":
			s.Scheduler = val
		case "flags":
			var v uint64
			v, err = strconv.ParseUint(val, 10, 32)
			s.Flags = lb.Flags(v)
		case "timeout":
			var v uint64
			v, err = strconv.ParseUint(val, 10, 32)
			s.Timeout = uint32(v)
		case "mask":
			var v uint64
			v, err = strconv.ParseUint(val, 10, 32)
			s.Netmask = uint32(v)
		case "pe":
			s.PE = val
		}
		if err != nil {
			return k, s, fmt.Errorf("nft: service comment field %q: %w", f, err)
		}
	}
	if k.Family == 0 {
		return k, s, fmt.Errorf("nft: service comment without key: %q", c)
	}
	return k, s, nil
}

func parseKey(v string) (lb.ServiceKey, error) {
	parts := strings.Split(v, "/")
	if len(parts) != 2 && len(parts) != 3 {
		return lb.ServiceKey{}, fmt.Errorf("bad key %q", v)
	}
	if len(parts) == 2 {
		f := lb.IPv4
		switch parts[0] {
		case "fwm4":
		case "fwm6":
			f = lb.IPv6
		default:
			return lb.ServiceKey{}, fmt.Errorf("bad key %q", v)
		}
		m, err := strconv.ParseUint(parts[1], 10, 32)
		if err != nil || m == 0 {
			return lb.ServiceKey{}, fmt.Errorf("bad fwmark in %q", v)
		}
		return lb.ServiceKey{Family: f, FWMark: uint32(m)}, nil
	}
	var p lb.Protocol
	switch parts[0] {
	case "tcp":
		p = lb.TCP
	case "udp":
		p = lb.UDP
	case "sctp":
		p = lb.SCTP
	default:
		return lb.ServiceKey{}, fmt.Errorf("bad protocol in %q", v)
	}
	a, err := netip.ParseAddr(parts[1])
	if err != nil {
		return lb.ServiceKey{}, err
	}
	port, err := strconv.ParseUint(parts[2], 10, 16)
	if err != nil {
		return lb.ServiceKey{}, err
	}
	return lb.ServiceKey{Family: inet.FamilyOf(a), Proto: p, Addr: a, Port: uint16(port)}, nil
}

// Byte encodings of set keys and data. Concatenations pad every field to 4
// bytes (nftables registers are 32 bits).

func addrBytes(a netip.Addr) []byte { return a.AsSlice() }

func portBytes(p uint16) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b, p)
	return b
}

// destBytes is ADDR . PORT.
func destBytes(a netip.AddrPort) []byte {
	return append(addrBytes(a.Addr()), portBytes(a.Port())...)
}

func parseDestBytes(b []byte) (netip.AddrPort, bool) {
	switch len(b) {
	case 8:
		a, _ := netip.AddrFromSlice(b[:4])
		return netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[4:6])), true
	case 20:
		a, _ := netip.AddrFromSlice(b[:16])
		return netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[16:18])), true
	case 4, 16:
		a, _ := netip.AddrFromSlice(b)
		return netip.AddrPortFrom(a, 0), true
	}
	return netip.AddrPort{}, false
}

// svcKeyBytes is VIP . PROTO . PORT (or VIP . PROTO for any-port services).
func svcKeyBytes(k lb.ServiceKey, anyPort bool) []byte {
	b := append(addrBytes(k.Addr), byte(k.Proto), 0, 0, 0)
	if !anyPort {
		b = append(b, portBytes(k.Port)...)
	}
	return b
}

// markBytes is a mark in host byte order, as `meta mark` loads it.
func markBytes(m uint32) []byte { return binaryutil.NativeEndian.PutUint32(m) }

// indexBytes is a pick-table index: numgen and hash results are host order.
func indexBytes(i int) []byte { return binaryutil.NativeEndian.PutUint32(uint32(i)) }

func weightBytes(w uint32) []byte { return binaryutil.NativeEndian.PutUint32(w) }

// maskBytes is the persistence granularity as a mask over the source address.
func maskBytes(f lb.Family, netmask uint32) []byte {
	if f == lb.IPv4 {
		b := make([]byte, 4)
		binary.BigEndian.PutUint32(b, netmask)
		return b
	}
	bits := min(int(netmask), 128)
	b := make([]byte, 16)
	for i := range bits {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return b
}
