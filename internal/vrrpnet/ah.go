package vrrpnet

import (
	"errors"
	"fmt"
	"net/netip"
)

// ProtocolAH is IPsec AH's IP protocol number (RFC 2402 §2). keepalived
// 2.2.7 sends the adverts of an `auth_type AH` instance (VRRPv2 over IPv4)
// as protocol 51 with an AH header whose next header is VRRP, and reads
// them from a raw socket of that protocol, separate from its protocol-112
// sockets (vrrp_scheduler.c open_sockpool: the pool is keyed by protocol).
//
// A Conn opened with Config.Protocol ProtocolAH is such a socket. What
// differs from a VRRP Conn:
//   - Receive: Packet.Payload is the whole IPv4 datagram, header included,
//     because the AH integrity check covers the IP header; the codec
//     (packet.ParseDatagram) splits it.
//   - Send: WriteSealed. The payload is the AH header and the VRRP message;
//     the Conn builds the IPv4 header (protocol 51) and calls the seal with
//     it before sending, so that the ICV covers the identification it chose.
//
// The kernel needs no IPsec state for this: a raw socket receives its
// protocol's packets before any protocol handler, and IP_HDRINCL sends the
// header as built.
const ProtocolAH = 51

// Seal completes an outgoing payload once its IPv4 header is known (see
// WriteSealed). It must not keep either slice.
type Seal func(ipHeader, payload []byte) error

// WriteSealed is WritePacket for an AH Conn: it builds the IPv4 header for
// src and dst, lets seal write the integrity check value into payload (in
// place) and sends both.
func (c *Conn) WriteSealed(payload []byte, src, dst netip.Addr, seal Seal) error {
	if c.proto != ProtocolAH || seal == nil {
		return errors.New("vrrpnet: WriteSealed needs an AH conn and a seal")
	}
	m := [1]Message{{Payload: payload, Src: src, Dst: dst, Seal: seal}}
	c.WriteBatch(m[:])
	return m[0].Err
}

// checkProtocol validates and defaults the protocol of a Conn being opened.
func (c *Conn) checkProtocol() error {
	switch c.proto {
	case 0:
		c.proto = Protocol
	case Protocol:
	case ProtocolAH:
		if c.family != IPv4 {
			return fmt.Errorf("vrrpnet: protocol %d (AH) is IPv4 only", ProtocolAH)
		}
	default:
		return fmt.Errorf("vrrpnet: protocol %d is neither VRRP (%d) nor AH (%d)", c.proto, Protocol, ProtocolAH)
	}
	return nil
}

// payloadStart is where Packet.Payload starts in a received IPv4 packet:
// after the IP header, or at the header for AH.
func (c *Conn) payloadStart(h ipv4Header) int {
	if c.proto == ProtocolAH {
		return 0
	}
	return h.ihl
}
