// Package packet encodes and decodes VRRP advertisements: version 2 (RFC 3768)
// and version 3 (RFC 5798, updated by RFC 9568), over IPv4 and IPv6, byte for
// byte as keepalived 2.2.7 sends them.
//
// It works on the VRRP message: the bytes after the IP header, or, for
// VRRPv2 over IPv4 with IPsec AH, after the AH header (ah.go: ParseDatagram,
// NewAH, Seal, Datagram.Verify). The
// IP source and destination are arguments because the VRRPv3 checksum covers
// a pseudo-header built from them.
//
// Parse checks what a codec can check alone (length, version, type, v2 auth
// type, checksum) and reports each rejection as an *Error with a stable
// Reason() for metrics. Everything that depends on configuration (VRID, TTL,
// authentication data, advertisement interval, address list, which checksum
// variants to accept) is the state machine's job, in package vrrp.
//
// Checksum variants. VRRPv2 sums the VRRP message only. VRRPv3 sums an IPv4 or
// IPv6 pseudo-header plus the message (keepalived 2.2.7, tcpdump, Wireshark).
// For VRRPv3 over IPv4 two more variants are in use and Parse recognises them,
// reporting which one matched in Advert.Checksum mode so the caller can count,
// log and apply policy:
//
//   - ChecksumNoPseudoHeader: no pseudo-header, as VRRPv2. This is what RFC
//     9568 §5.2.8 specifies for IPv4, what Cisco and Juniper send, and what
//     keepalived 2.2.8+ sends with `v3_checksum_as_v2`.
//   - ChecksumMulticastPseudoHeader: the pseudo-header is built with the
//     multicast group 224.0.0.18 as destination even though the packet was
//     sent unicast. keepalived up to 1.3.6 computed unicast VRRPv3 checksums
//     this way; 2.2.7 falls back to it when it receives such a packet
//     (vrrp.c vrrp_check_packet, CHKSUM_COMPATIBILITY_AUTO) and sends it when
//     configured with `old_unicast_checksum`.
//
// Nothing here allocates except the Addrs slice of a parsed Advert and the
// buffer Append grows. The package has no state; all functions are safe for
// concurrent use.
package packet

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Wire constants.
const (
	Version2          uint8 = 2   // RFC 3768 §5.3.1
	Version3          uint8 = 3   // RFC 5798 §5.2.1
	TypeAdvertisement uint8 = 1   // RFC 5798 §5.2.2: the only type
	Protocol                = 112 // IP protocol number, RFC 5798 §5.1.1.4
	TTL                     = 255 // RFC 5798 §5.1.1.3 / §5.1.2.3

	// HeaderLen is the fixed part of every VRRP message.
	HeaderLen = 8
	// AuthDataLen is the authentication data VRRPv2 over IPv4 carries after
	// the address list (RFC 3768 §5.3.10); keepalived sends it whatever the
	// auth type, zeroed for type 0.
	AuthDataLen = 8
	// MaxAddrs is the largest address count the 8-bit count field holds.
	MaxAddrs = 255
	// MaxIntervalV2 is the largest VRRPv2 Adver Int, in seconds (8 bits).
	MaxIntervalV2 = 255
	// MaxIntervalV3 is the largest VRRPv3 Max Advertise Interval, in
	// centiseconds (12 bits).
	MaxIntervalV3 = 4095
)

// MulticastIPv4 returns the VRRP IPv4 group 224.0.0.18 (RFC 5798 §5.1.1.2).
func MulticastIPv4() netip.Addr { return netip.AddrFrom4([4]byte{224, 0, 0, 18}) }

// MulticastIPv6 returns the VRRP IPv6 group ff02::12 (RFC 5798 §5.1.2.2).
func MulticastIPv6() netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
}

// AuthType is the VRRPv2 Auth Type field (RFC 2338 §5.3.6; RFC 3768 keeps the
// field but reserves 1 and 2; keepalived still implements both).
type AuthType uint8

const (
	AuthNone AuthType = 0 // no authentication
	AuthPass AuthType = 1 // simple text password, 8 bytes
	AuthAH   AuthType = 2 // IPsec AH (ah.go); the message's auth data is then zero
)

func (t AuthType) String() string {
	switch t {
	case AuthNone:
		return "none"
	case AuthPass:
		return "pass"
	case AuthAH:
		return "ah"
	}
	return fmt.Sprintf("auth_type_%d", uint8(t))
}

// ChecksumMode names how a checksum is computed; see the package doc.
type ChecksumMode uint8

const (
	// ChecksumDefault: VRRPv2 over IPv4 sums the message only; every other
	// combination sums the IPv4/IPv6 pseudo-header (with the real
	// destination) plus the message. keepalived 2.2.7's default.
	ChecksumDefault ChecksumMode = iota
	// ChecksumNoPseudoHeader: VRRPv3 over IPv4 without the pseudo-header
	// (RFC 9568 §5.2.8; keepalived `v3_checksum_as_v2`).
	ChecksumNoPseudoHeader
	// ChecksumMulticastPseudoHeader: VRRPv3 over IPv4 with a pseudo-header
	// whose destination is 224.0.0.18 whatever the packet's destination
	// (keepalived ≤ 1.3.6 unicast; `old_unicast_checksum`).
	ChecksumMulticastPseudoHeader
)

func (m ChecksumMode) String() string {
	switch m {
	case ChecksumDefault:
		return "default"
	case ChecksumNoPseudoHeader:
		return "no_pseudo_header"
	case ChecksumMulticastPseudoHeader:
		return "multicast_pseudo_header"
	}
	return fmt.Sprintf("checksum_mode_%d", uint8(m))
}

// Advert is one VRRP message, field for field as on the wire.
type Advert struct {
	Version      uint8 // 2 or 3
	Type         uint8 // TypeAdvertisement
	VRID         uint8
	Priority     uint8
	CountIPAddrs uint8 // must equal len(Addrs)
	// AuthType is VRRPv2's byte 4. Zero for VRRPv3.
	AuthType AuthType
	// Reserved is VRRPv3's top nibble of byte 4: sent as zero, ignored on
	// reception (RFC 5798 §5.2.6) but kept so a parsed packet re-encodes to
	// the same bytes. Zero for VRRPv2.
	Reserved uint8
	// AdvertInt is the interval as on the wire: VRRPv2 seconds (8 bits),
	// VRRPv3 centiseconds (12 bits). Interval converts it.
	AdvertInt uint16
	// Checksum is the value Parse read. Append ignores it and computes the
	// checksum according to ChecksumMode.
	Checksum uint16
	// Addrs are the IPvX addresses of the virtual router, in the family of
	// the carrying IP header (RFC 5798 §5.2.9).
	Addrs []netip.Addr
	// AuthData is VRRPv2-over-IPv4's 8 bytes of authentication data (the
	// password for AuthPass). Zero otherwise.
	AuthData [AuthDataLen]byte
	// ChecksumMode is, after Parse, the computation that matched; for Append,
	// the one to use.
	ChecksumMode ChecksumMode
}

// Interval returns AdvertInt as a duration: seconds for VRRPv2, centiseconds
// for VRRPv3, zero for another version.
func (a Advert) Interval() time.Duration {
	switch a.Version {
	case Version2:
		return time.Duration(a.AdvertInt) * time.Second
	case Version3:
		return time.Duration(a.AdvertInt) * 10 * time.Millisecond
	}
	return 0
}

// Len returns the length of the encoded message for the given family
// (is6: IPv6).
func (a Advert) Len(is6 bool) int {
	return messageLen(a.Version, is6, int(a.CountIPAddrs))
}

func messageLen(version uint8, is6 bool, count int) int {
	n := HeaderLen
	if is6 {
		n += count * 16
	} else {
		n += count * 4
		if version == Version2 {
			n += AuthDataLen
		}
	}
	return n
}

// family returns whether src and dst are IPv6, after unmapping IPv4-mapped
// IPv6 addresses, or an error if they are invalid or differ.
func family(src, dst netip.Addr) (is6 bool, s, d netip.Addr, err error) {
	s, d = src.Unmap(), dst.Unmap()
	if !s.IsValid() || !d.IsValid() || s.Is4() != d.Is4() {
		return false, s, d, errorf(ReasonFamily, "source %v and destination %v", src, dst)
	}
	return s.Is6(), s, d, nil
}

// Parse decodes b, the VRRP message received from src and sent to dst (the
// IP header's addresses). It accepts exactly what keepalived 2.2.7's
// vrrp_check_packet accepts on these grounds (length equal to the announced
// one, version 2 or 3, type 1, v2 auth type ≤ 2, a valid checksum) plus the
// checksum variants listed in the package doc. Errors are *Error.
func Parse(b []byte, src, dst netip.Addr) (Advert, error) {
	return ParseInto(b, src, dst, nil)
}

// ParseInto is Parse with the advert's Addrs in addrs' array when it has
// room for them (a new array otherwise): a reader that parses one packet
// at a time into the same buffer allocates nothing. The Advert's Addrs are
// then valid until the buffer is used again.
func ParseInto(b []byte, src, dst netip.Addr, addrs []netip.Addr) (Advert, error) {
	var a Advert
	is6, src, dst, err := family(src, dst)
	if err != nil {
		return a, err
	}
	if len(b) < HeaderLen {
		return a, errorf(ReasonTooShort, "%d bytes, header is %d", len(b), HeaderLen)
	}
	a.Version = b[0] >> 4
	a.Type = b[0] & 0x0f
	if a.Version != Version2 && a.Version != Version3 {
		return a, errorf(ReasonVersion, "version %d", a.Version)
	}
	if a.Type != TypeAdvertisement {
		return a, errorf(ReasonType, "type %d", a.Type)
	}
	a.VRID = b[1]
	a.Priority = b[2]
	a.CountIPAddrs = b[3]
	want := messageLen(a.Version, is6, int(a.CountIPAddrs))
	switch {
	case len(b) < want:
		return a, errorf(ReasonTooShort, "%d bytes, %d addresses need %d", len(b), a.CountIPAddrs, want)
	case len(b) > want:
		return a, errorf(ReasonTooLong, "%d bytes, %d addresses need %d", len(b), a.CountIPAddrs, want)
	}
	if a.Version == Version2 {
		a.AuthType = AuthType(b[4])
		if a.AuthType > AuthAH {
			return a, errorf(ReasonAuthType, "auth type %d", b[4])
		}
		a.AdvertInt = uint16(b[5])
	} else {
		a.Reserved = b[4] >> 4
		a.AdvertInt = uint16(b[4]&0x0f)<<8 | uint16(b[5])
	}
	a.Checksum = uint16(b[6])<<8 | uint16(b[7])

	mode, ok := verify(b, a.Version, is6, src, dst, a.Checksum)
	if !ok {
		return a, errorf(ReasonChecksum, "checksum %#04x matches no known computation", a.Checksum)
	}
	a.ChecksumMode = mode

	if a.CountIPAddrs > 0 {
		a.Addrs = slices.Grow(addrs[:0], int(a.CountIPAddrs))[:a.CountIPAddrs]
	}
	off := HeaderLen
	for i := range a.Addrs {
		if is6 {
			a.Addrs[i] = netip.AddrFrom16([16]byte(b[off : off+16]))
			off += 16
		} else {
			a.Addrs[i] = netip.AddrFrom4([4]byte(b[off : off+4]))
			off += 4
		}
	}
	if a.Version == Version2 && !is6 {
		copy(a.AuthData[:], b[off:off+AuthDataLen])
	}
	return a, nil
}

// verify finds the checksum computation that yields sum, trying keepalived
// 2.2.7's default first.
func verify(b []byte, version uint8, is6 bool, src, dst netip.Addr, sum uint16) (ChecksumMode, bool) {
	if compute(b, version, is6, src, dst, ChecksumDefault) == sum {
		return ChecksumDefault, true
	}
	if version != Version3 || is6 {
		return 0, false
	}
	if compute(b, version, is6, src, dst, ChecksumNoPseudoHeader) == sum {
		return ChecksumNoPseudoHeader, true
	}
	if dst != MulticastIPv4() && compute(b, version, is6, src, dst, ChecksumMulticastPseudoHeader) == sum {
		return ChecksumMulticastPseudoHeader, true
	}
	return 0, false
}

// Marshal encodes a as sent from src to dst; see Append.
func (a Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	is6, _, _, err := family(src, dst)
	if err != nil {
		return nil, err
	}
	return a.Append(make([]byte, 0, a.Len(is6)), src, dst)
}

// Append appends the encoding of a, as sent from src to dst, to b. It ignores
// a.Checksum and computes the checksum with a.ChecksumMode. It rejects an
// Advert that Parse would not return: an unknown version or type, a count
// different from len(Addrs), addresses of another family than src, an
// interval or reserved value that does not fit its field, a v2 auth type
// above 2, or a checksum mode that does not apply to the version and family.
func (a Advert) Append(b []byte, src, dst netip.Addr) ([]byte, error) {
	is6, src, dst, err := family(src, dst)
	if err != nil {
		return b, err
	}
	if err := a.check(is6); err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, a.Version<<4|a.Type, a.VRID, a.Priority, a.CountIPAddrs)
	if a.Version == Version2 {
		b = append(b, byte(a.AuthType), byte(a.AdvertInt))
	} else {
		b = append(b, a.Reserved<<4|byte(a.AdvertInt>>8), byte(a.AdvertInt))
	}
	b = append(b, 0, 0) // checksum, filled below
	for _, ip := range a.Addrs {
		ip = ip.Unmap()
		if is6 {
			v := ip.As16()
			b = append(b, v[:]...)
		} else {
			v := ip.As4()
			b = append(b, v[:]...)
		}
	}
	if a.Version == Version2 && !is6 {
		b = append(b, a.AuthData[:]...)
	}
	sum := compute(b[start:], a.Version, is6, src, dst, a.ChecksumMode)
	b[start+6] = byte(sum >> 8)
	b[start+7] = byte(sum)
	return b, nil
}

func (a Advert) check(is6 bool) error {
	var errs []error
	if a.Version != Version2 && a.Version != Version3 {
		errs = append(errs, fmt.Errorf("version %d", a.Version))
	}
	if a.Type != TypeAdvertisement {
		errs = append(errs, fmt.Errorf("type %d", a.Type))
	}
	if len(a.Addrs) > MaxAddrs || int(a.CountIPAddrs) != len(a.Addrs) {
		errs = append(errs, fmt.Errorf("count %d with %d addresses", a.CountIPAddrs, len(a.Addrs)))
	}
	for _, ip := range a.Addrs {
		if ip = ip.Unmap(); !ip.IsValid() || ip.Is6() != is6 {
			errs = append(errs, fmt.Errorf("address %v in a packet of the other family", ip))
			break
		}
	}
	switch a.Version {
	case Version2:
		if a.AdvertInt > MaxIntervalV2 {
			errs = append(errs, fmt.Errorf("v2 interval %d s above %d", a.AdvertInt, MaxIntervalV2))
		}
		if a.AuthType > AuthAH {
			errs = append(errs, fmt.Errorf("auth type %d", a.AuthType))
		}
		if a.Reserved != 0 {
			errs = append(errs, errors.New("reserved bits in a v2 packet"))
		}
		if a.AuthData != [AuthDataLen]byte{} && is6 {
			errs = append(errs, errors.New("auth data in a v2 IPv6 packet, which has none"))
		}
	case Version3:
		if a.AdvertInt > MaxIntervalV3 {
			errs = append(errs, fmt.Errorf("v3 interval %d cs above %d", a.AdvertInt, MaxIntervalV3))
		}
		if a.Reserved > 0x0f {
			errs = append(errs, fmt.Errorf("reserved %#x wider than 4 bits", a.Reserved))
		}
		if a.AuthType != AuthNone || a.AuthData != [AuthDataLen]byte{} {
			errs = append(errs, errors.New("authentication in a v3 packet"))
		}
	}
	if a.ChecksumMode != ChecksumDefault && (a.Version != Version3 || is6 || a.ChecksumMode > ChecksumMulticastPseudoHeader) {
		errs = append(errs, fmt.Errorf("checksum mode %v applies only to v3 over IPv4", a.ChecksumMode))
	}
	if len(errs) > 0 {
		return fmt.Errorf("vrrp packet: cannot encode: %w", errors.Join(errs...))
	}
	return nil
}
