// Package garp announces VIPs to the LAN when an instance becomes master:
// gratuitous ARP for IPv4 VIPs and unsolicited neighbour advertisements for
// IPv6 VIPs, with keepalived 2.2.7's repeat / delay / refresh / interval
// schedule.
//
// The package has a pure part and an I/O part:
//   - ARPFrame and NAFrame build the Ethernet frames byte for byte as
//     keepalived does (vrrp_arp.c, vrrp_ndisc.c);
//   - Schedule (one per instance and mastership) and Pacer (one per
//     interface) decide what to send when, and Guard what a claim of a VIP
//     by another host gets (guard.go); they take the time as an argument
//     and read no clock; ParseClaim and ParseNA read claims from ARP
//     packets and neighbour advertisements;
//   - Sender writes frames to an AF_PACKET socket; WatchClaims (ARP) and
//     WatchNAs (an ICMPv6 socket) read the claims of other hosts.
//
// Frames are built by hand and sent on one AF_PACKET socket through
// golang.org/x/sys/unix rather than with mdlayher/arp, mdlayher/ndp and
// mdlayher/packet: keepalived's gratuitous ARP has a broadcast target
// hardware address that arp.Client does not produce, its NA carries the VIP
// as IPv6 source with a checksum computed over our own header (an ICMPv6
// socket would pick the source and hop limit itself), and one socket with a
// per-packet ifindex serves every interface, like keepalived's garp_fd.
package garp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// Frame lengths.
const (
	ARPFrameLen = 14 + 28          // Ethernet + ARP for Ethernet/IPv4
	NAFrameLen  = 14 + 40 + 24 + 8 // Ethernet + IPv6 + NA + target link-layer option
)

var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ARPFrame returns the gratuitous ARP keepalived 2.2.7 sends for an IPv4 VIP
// (vrrp_arp.c send_gratuitous_arp_immediate): a broadcast ARP request whose
// sender and target protocol addresses are both the VIP, sender hardware
// address the interface's MAC, and target hardware address the broadcast
// address.
func ARPFrame(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("garp: MAC %s is not Ethernet", mac)
	}
	if !vip.Is4() {
		return nil, fmt.Errorf("garp: %s is not an IPv4 address", vip)
	}
	a := vip.As4()
	b := make([]byte, 0, ARPFrameLen)
	b = append(b, broadcastMAC[:]...) // Ethernet destination: broadcast
	b = append(b, mac...)             // Ethernet source: the interface
	b = append(b, 0x08, 0x06)         // EtherType ARP
	b = append(b,
		0x00, 0x01, // hardware type Ethernet
		0x08, 0x00, // protocol type IPv4
		6, 4, // hardware and protocol address lengths
		0x00, 0x01, // opcode request
	)
	b = append(b, mac...)             // sender hardware address
	b = append(b, a[:]...)            // sender protocol address: the VIP
	b = append(b, broadcastMAC[:]...) // target hardware address: broadcast
	b = append(b, a[:]...)            // target protocol address: the VIP
	return b, nil
}

// allNodes is ff02::1, the destination of unsolicited NAs (RFC 4861 §7.2.6).
var allNodes = [16]byte{0: 0xff, 1: 0x02, 15: 0x01}

// NA flags (RFC 4861 §4.4).
const (
	naRouter   = 0x80
	naOverride = 0x20
)

// NAFrame returns the unsolicited neighbour advertisement keepalived 2.2.7
// sends for an IPv6 VIP (vrrp_ndisc.c ndisc_send_unsolicited_na_immediate):
// from the VIP to ff02::1 (Ethernet 33:33:00:00:00:01), hop limit 255, type
// 136 with the override flag (and the router flag when the interface
// forwards IPv6), target the VIP, and a target link-layer address option
// with the interface's MAC.
func NAFrame(mac net.HardwareAddr, vip netip.Addr, router bool) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("garp: MAC %s is not Ethernet", mac)
	}
	if !vip.Is6() || vip.Is4In6() {
		return nil, fmt.Errorf("garp: %s is not an IPv6 address", vip)
	}
	src := vip.As16()
	b := make([]byte, 0, NAFrameLen)
	b = append(b, 0x33, 0x33, 0x00, 0x00, 0x00, 0x01) // Ethernet destination for ff02::1 (RFC 2464 §7)
	b = append(b, mac...)                             // Ethernet source
	b = append(b, 0x86, 0xdd)                         // EtherType IPv6
	b = append(b,
		0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
		0x00, 32, // payload length: NA 24 + option 8
		58, 255, // next header ICMPv6, hop limit 255 (RFC 4861 §7.1.2)
	)
	b = append(b, src[:]...)      // source: the VIP
	b = append(b, allNodes[:]...) // destination: all nodes
	flags := byte(naOverride)
	if router {
		flags |= naRouter
	}
	icmp := len(b)
	b = append(b,
		136, 0, // type neighbour advertisement, code 0
		0, 0, // checksum, below
		flags, 0, 0, 0, // R|S|O flags, reserved
	)
	b = append(b, src[:]...) // target address: the VIP
	b = append(b, 2, 1)      // option: target link-layer address, length 1 (8 bytes)
	b = append(b, mac...)
	binary.BigEndian.PutUint16(b[icmp+2:], icmpv6Checksum(src, allNodes, b[icmp:]))
	return b, nil
}

// icmpv6Checksum computes the ICMPv6 checksum over the IPv6 pseudo-header
// (RFC 8200 §8.1) and the message, whose checksum field must be zero.
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[0:4], uint32(len(msg)))
	l[7] = 58 // next header ICMPv6
	add(l[:])
	add(msg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
