package packet

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"hash"
	"net/netip"
)

// IPsec AH for VRRPv2 over IPv4, as keepalived 2.2.7 implements it
// (vrrp.c vrrp_build_ipsecah, vrrp_update_pkt, vrrp_in_chk_ipsecah;
// vrrp_ipsecah.h): RFC 2338 §5.3.6.2 auth type 2, an RFC 2402 AH header
// between the IPv4 header (protocol 51) and the VRRP message, whose
// integrity check value is HMAC-MD5-96 (RFC 2403, RFC 2104) keyed with the
// auth_pass. There is no security association and no key exchange:
//
//   - the key is the auth_pass as keepalived stores it, 8 bytes, zero
//     padded (keepalived truncates longer passwords to 8 characters);
//   - the SPI is the sender's IPv4 source address, and a receiver rejects an
//     SPI that differs from the packet's source;
//   - the sequence number is the sending instance's counter (see package
//     vrrp for its rules); the codec only carries it;
//   - the ICV covers the IPv4 header with TOS, flags and fragment offset,
//     and header checksum taken as zero (and the TTL too when the instance
//     is unicast: keepalived zeroes it for unicast_peer instances only, so
//     a multicast advert's TTL of 255 is covered), then the AH header with
//     its ICV field taken as zero, then the VRRP message. The identification
//     and total length are covered as sent.
//
// The VRRP message under AH is the ordinary VRRPv2 one with auth type 2 and
// eight zero bytes of authentication data.

// AH wire constants.
const (
	// ProtocolAH is IPsec AH's IP protocol number (RFC 2402 §2).
	ProtocolAH = 51
	// AHLen is the AH header keepalived sends and expects: next header,
	// payload length, reserved, SPI, sequence number and a 96-bit ICV.
	AHLen = 24
	// ICVLen is the truncated HMAC-MD5 (RFC 2403 §2: HMAC-MD5-96).
	ICVLen = 12
	// AHPayloadLen is the payload length field for a 96-bit ICV: the header
	// in 32-bit words minus 2 (RFC 2402 §2.2).
	AHPayloadLen = 4
	// AHKeyLen is the key: the auth_pass, zero padded.
	AHKeyLen = 8
)

// AH is an IPsec authentication header, field for field as on the wire.
type AH struct {
	NextHeader uint8 // Protocol (112) for VRRP
	PayloadLen uint8 // AHPayloadLen as sent; keepalived does not check it
	Reserved   uint16
	SPI        uint32 // keepalived: the sender's IPv4 address
	Seq        uint32
	ICV        [ICVLen]byte // zero until Seal
}

// NewAH returns the header keepalived 2.2.7 sends from src with sequence
// number seq, its ICV still zero.
func NewAH(src netip.Addr, seq uint32) AH {
	s := src.Unmap().As4()
	return AH{NextHeader: Protocol, PayloadLen: AHPayloadLen, SPI: binary.BigEndian.Uint32(s[:]), Seq: seq}
}

// Append appends the encoded header to b.
func (h AH) Append(b []byte) []byte {
	b = append(b, h.NextHeader, h.PayloadLen)
	b = binary.BigEndian.AppendUint16(b, h.Reserved)
	b = binary.BigEndian.AppendUint32(b, h.SPI)
	b = binary.BigEndian.AppendUint32(b, h.Seq)
	return append(b, h.ICV[:]...)
}

// ParseAH decodes the AH header at the start of b (the bytes after the IPv4
// header) and returns it with the rest, the VRRP message. It rejects a
// header for another protocol than VRRP (keepalived: "AH header for some
// other protocol - ignore packet").
func ParseAH(b []byte) (AH, []byte, error) {
	var h AH
	if len(b) < AHLen {
		return h, nil, errorf(ReasonTooShort, "%d bytes, the AH header is %d", len(b), AHLen)
	}
	h.NextHeader = b[0]
	h.PayloadLen = b[1]
	h.Reserved = binary.BigEndian.Uint16(b[2:4])
	h.SPI = binary.BigEndian.Uint32(b[4:8])
	h.Seq = binary.BigEndian.Uint32(b[8:12])
	copy(h.ICV[:], b[12:AHLen])
	if h.NextHeader != Protocol {
		return h, nil, errorf(ReasonAHNextHeader, "AH next header %d, not VRRP (%d)", h.NextHeader, Protocol)
	}
	return h, b[AHLen:], nil
}

// SPIAddr returns the SPI read as the IPv4 address keepalived puts there.
func (h AH) SPIAddr() netip.Addr {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], h.SPI)
	return netip.AddrFrom4(a)
}

// Datagram is an AH-protected VRRP datagram as received: the parsed AH
// header and the bytes its ICV covers. Its slices alias the buffer it was
// parsed from.
type Datagram struct {
	AH AH
	// IPHeader is the IPv4 header, options included.
	IPHeader []byte
	// Payload is the AH header followed by the VRRP message.
	Payload []byte
}

// Message returns the VRRP message: Payload after the AH header.
func (d *Datagram) Message() []byte { return d.Payload[AHLen:] }

// ParseDatagram splits b, a whole IPv4 datagram carrying AH (protocol 51),
// into its IPv4 header and AH header, and returns the VRRP message that
// follows for Parse. It checks the IPv4 header as far as the split needs
// (version 4, a header length of 20 to 60 bytes within b, protocol 51) and
// the AH header (ParseAH); bytes after the IPv4 total length are not part
// of the datagram and are ignored.
func ParseDatagram(b []byte) (Datagram, []byte, error) {
	var d Datagram
	if len(b) < 20 {
		return d, nil, errorf(ReasonTooShort, "%d bytes, an IPv4 header is 20", len(b))
	}
	ihl := int(b[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(b[2:4]))
	switch {
	case b[0]>>4 != 4:
		return d, nil, errorf(ReasonIPHeader, "IP version %d", b[0]>>4)
	case ihl < 20:
		return d, nil, errorf(ReasonIPHeader, "IPv4 header length %d", ihl)
	case b[9] != ProtocolAH:
		return d, nil, errorf(ReasonIPHeader, "IP protocol %d, not AH (%d)", b[9], ProtocolAH)
	case tot < ihl || tot > len(b):
		return d, nil, errorf(ReasonIPHeader, "IPv4 total length %d with a %d-byte header in %d bytes", tot, ihl, len(b))
	}
	b = b[:tot]
	h, msg, err := ParseAH(b[ihl:])
	if err != nil {
		return d, nil, err
	}
	d = Datagram{AH: h, IPHeader: b[:ihl], Payload: b[ihl:]}
	return d, msg, nil
}

// Verify reports, in constant time, whether the ICV is the one key gives
// (see ICV; unicast: the receiving instance has unicast peers). It builds
// the HMAC state anew; a receiver that checks many adverts keeps an AHMAC.
func (d *Datagram) Verify(key [AHKeyLen]byte, unicast bool) bool {
	return NewAHMAC(key).Verify(d, unicast)
}

var errICVInput = errors.New("vrrp packet: AH ICV: IPv4 header of 20..60 bytes and an AH header needed")

// AHMAC computes and checks the ICVs of one key. It keeps the HMAC-MD5
// state (the key's inner and outer pads, precomputed once) and its scratch
// buffers, so that ICV, Seal and Verify allocate nothing.
//
// Concurrency: not safe for concurrent use; each user (an instance's
// receive path, its conn's sealer) keeps its own or serialises its calls.
type AHMAC struct {
	key [AHKeyLen]byte
	m   hash.Hash
	hdr [60]byte
	sum [md5.Size]byte
}

// NewAHMAC returns an AHMAC keyed with key (the auth_pass, zero padded).
func NewAHMAC(key [AHKeyLen]byte) *AHMAC {
	return &AHMAC{key: key, m: hmac.New(md5.New, key[:])}
}

// Key returns the key the AHMAC was built with.
func (a *AHMAC) Key() [AHKeyLen]byte { return a.key }

// ICV computes keepalived 2.2.7's integrity check value of an AH datagram:
// HMAC-MD5 keyed with the key over ipHeader with its mutable fields taken
// as zero (TOS, flags and fragment offset, header checksum, and the TTL
// when unicast) followed by payload (the AH header, whose ICV field is
// taken as zero, and the VRRP message), truncated to 96 bits.
func (a *AHMAC) ICV(ipHeader, payload []byte, unicast bool) ([ICVLen]byte, error) {
	var icv [ICVLen]byte
	if len(ipHeader) < 20 || len(ipHeader) > 60 || len(payload) < AHLen {
		return icv, errICVInput
	}
	h := a.hdr[:copy(a.hdr[:], ipHeader)]
	h[1] = 0            // TOS
	h[6], h[7] = 0, 0   // flags, fragment offset
	h[10], h[11] = 0, 0 // header checksum
	if unicast {
		h[8] = 0 // TTL: keepalived zeroes it for unicast instances only
	}
	a.m.Reset()
	a.m.Write(h)
	a.m.Write(payload[:12])
	clear(a.sum[:ICVLen]) // the ICV field, taken as zero
	a.m.Write(a.sum[:ICVLen])
	a.m.Write(payload[AHLen:])
	copy(icv[:], a.m.Sum(a.sum[:0]))
	return icv, nil
}

// Seal computes the ICV of the datagram made of ipHeader and payload (the
// AH header and the VRRP message, as Append and NewAH build them) and
// writes it into payload's ICV field.
func (a *AHMAC) Seal(ipHeader, payload []byte, unicast bool) error {
	icv, err := a.ICV(ipHeader, payload, unicast)
	if err != nil {
		return err
	}
	copy(payload[12:AHLen], icv[:])
	return nil
}

// Verify reports, in constant time, whether d's ICV is the one the key
// gives (unicast: the receiving instance has unicast peers).
func (a *AHMAC) Verify(d *Datagram, unicast bool) bool {
	icv, err := a.ICV(d.IPHeader, d.Payload, unicast)
	return err == nil && subtle.ConstantTimeCompare(icv[:], d.AH.ICV[:]) == 1
}

// ICV is AHMAC.ICV with a state built for this one call.
func ICV(ipHeader, payload []byte, key [AHKeyLen]byte, unicast bool) ([ICVLen]byte, error) {
	return NewAHMAC(key).ICV(ipHeader, payload, unicast)
}

// Seal is AHMAC.Seal with a state built for this one call.
func Seal(ipHeader, payload []byte, key [AHKeyLen]byte, unicast bool) error {
	return NewAHMAC(key).Seal(ipHeader, payload, unicast)
}
