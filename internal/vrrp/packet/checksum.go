package packet

import "net/netip"

// compute returns the checksum of msg (a whole VRRP message; its checksum
// field, bytes 6-7, is skipped) under mode. src and dst are already unmapped
// and of the family is6 names.
func compute(msg []byte, version uint8, is6 bool, src, dst netip.Addr, mode ChecksumMode) uint16 {
	var sum uint32
	switch {
	case is6:
		// RFC 5798 §5.2.8: the IPv6 pseudo-header of RFC 2460 §8.1 (RFC 8200
		// §8.1): source, destination, 32-bit upper-layer length, 24 zero
		// bits, next header 112. Both versions: keepalived lets the kernel
		// compute it (IPV6_CHECKSUM) for v2 over IPv6 as well.
		s, d := src.As16(), dst.As16()
		sum = add(sum, s[:])
		sum = add(sum, d[:])
		sum += uint32(len(msg)>>16) + uint32(len(msg)&0xffff)
		sum += Protocol
	case version == Version3 && mode != ChecksumNoPseudoHeader:
		// keepalived 2.2.7 vrrp_build_vrrp_v3: IPv4 pseudo-header of source,
		// destination, zero, protocol 112, VRRP length.
		if mode == ChecksumMulticastPseudoHeader {
			dst = MulticastIPv4()
		}
		s, d := src.As4(), dst.As4()
		sum = add(sum, s[:])
		sum = add(sum, d[:])
		sum += Protocol
		sum += uint32(len(msg))
	}
	// RFC 3768 §5.3.8 / RFC 5798 §5.2.8: the message with the checksum
	// field taken as zero.
	sum = add(sum, msg[:6])
	sum = add(sum, msg[8:])
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// add adds b to the running one's complement sum as big-endian 16-bit words,
// padding an odd last byte with zero (RFC 1071). Callers fold before the
// 32-bit sum can overflow: VRRP messages are at most 8+255*16 bytes.
func add(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}
