package garp

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
)

var keepalivedMAC = net.HardwareAddr{0x02, 0x00, 0xc0, 0xa8, 0x01, 0x69}

// TestARPFrameGolden: the gratuitous ARP is keepalived 2.2.7's captured frame
// (testdata/vrrpv2-garp.hex, from shared/captures) byte for byte.
func TestARPFrameGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/vrrpv2-garp.hex")
	if err != nil {
		t.Fatal(err)
	}
	captured, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Join([][]byte{
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // Ethernet dst: broadcast
		{0x02, 0x00, 0xc0, 0xa8, 0x01, 0x69}, // Ethernet src: the master's MAC
		{0x08, 0x06},                         // EtherType ARP
		{0x00, 0x01, 0x08, 0x00, 6, 4},       // Ethernet / IPv4, lengths 6 and 4
		{0x00, 0x01},                         // opcode request (tshark: gratuitous)
		{0x02, 0x00, 0xc0, 0xa8, 0x01, 0x69}, // sender MAC
		{192, 168, 1, 100},                   // sender IP: the VIP
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // target MAC: broadcast (keepalived's hw_addr_bcast)
		{192, 168, 1, 100},                   // target IP: the VIP
	}, nil)
	if !bytes.Equal(captured, want) {
		t.Fatalf("testdata disagrees with the annotation:\n %x\n %x", captured, want)
	}
	got, err := ARPFrame(keepalivedMAC, netip.MustParseAddr("192.168.1.100"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || len(got) != ARPFrameLen {
		t.Errorf("ARPFrame =\n %x\nwant\n %x", got, want)
	}
}

// TestNAFrameGolden: an unsolicited NA for fd00::100 from 02:00:c0:a8:01:69,
// as vrrp_ndisc.c builds it. The bytes (checksum included) equal what scapy
// builds for Ether()/IPv6(hlim=255)/ICMPv6ND_NA(O=1)/ICMPv6NDOptDstLLAddr(),
// and the receiving kernel accepts the frame in TestNamespaceNA.
func TestNAFrameGolden(t *testing.T) {
	vip := netip.MustParseAddr("fd00::100")
	v := vip.As16()
	want := bytes.Join([][]byte{
		{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}, // Ethernet dst: ff02::1's MAC
		{0x02, 0x00, 0xc0, 0xa8, 0x01, 0x69}, // Ethernet src
		{0x86, 0xdd},                         // EtherType IPv6
		{0x60, 0x00, 0x00, 0x00},             // version 6, class 0, flow 0
		{0x00, 0x20, 58, 255},                // payload 32, ICMPv6, hop limit 255
		v[:],                                 // src: the VIP
		{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}, // dst ff02::1
		{136, 0},        // neighbour advertisement, code 0
		{0x96, 0x8c},    // checksum
		{0x20, 0, 0, 0}, // flags: override only
		v[:],            // target: the VIP
		{2, 1},          // option target link-layer address, 8 bytes
		keepalivedMAC,   // the MAC
	}, nil)
	got, err := NAFrame(keepalivedMAC, vip, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || len(got) != NAFrameLen {
		t.Errorf("NAFrame =\n %x\nwant\n %x", got, want)
	}
	// The router flag (scapy: ICMPv6ND_NA(R=1, O=1)) changes the flags byte
	// and the checksum.
	r, _ := NAFrame(keepalivedMAC, vip, true)
	if r[58] != 0xa0 || r[56] != 0x16 || r[57] != 0x8c {
		t.Errorf("router NA: flags %#x checksum %x, want 0xa0, 168c", r[58], r[56:58])
	}
}

// TestChecksumVerifies: summing a built message with its checksum gives
// 0xffff (RFC 1071), whatever the VIP.
func TestChecksumVerifies(t *testing.T) {
	for _, a := range []string{"fd00::100", "fe80::1", "2001:db8::ffff:ffff", "::1"} {
		f, err := NAFrame(keepalivedMAC, netip.MustParseAddr(a), true)
		if err != nil {
			t.Fatal(err)
		}
		if c := icmpv6Checksum([16]byte(f[22:38]), [16]byte(f[38:54]), f[54:]); c != 0 {
			t.Errorf("%s: checksum over the message with its checksum = %#x, want 0", a, c)
		}
	}
}

func TestFrameErrors(t *testing.T) {
	if _, err := ARPFrame(keepalivedMAC, netip.MustParseAddr("fd00::1")); err == nil {
		t.Error("ARPFrame accepted an IPv6 address")
	}
	if _, err := ARPFrame(net.HardwareAddr{1, 2, 3}, netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("ARPFrame accepted a 3-byte MAC")
	}
	if _, err := NAFrame(keepalivedMAC, netip.MustParseAddr("10.0.0.1"), false); err == nil {
		t.Error("NAFrame accepted an IPv4 address")
	}
	if _, err := NAFrame(keepalivedMAC, netip.MustParseAddr("::ffff:10.0.0.1"), false); err == nil {
		t.Error("NAFrame accepted an IPv4-mapped address")
	}
	if _, err := NAFrame(make(net.HardwareAddr, 20), netip.MustParseAddr("fd00::1"), false); err == nil {
		t.Error("NAFrame accepted an InfiniBand address")
	}
}
