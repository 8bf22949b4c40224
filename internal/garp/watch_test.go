package garp

import (
	"net"
	"net/netip"
	"testing"
)

// TestParseClaim: the sender of keepalived's own gratuitous ARP (the frame
// ARPFrame builds, less its Ethernet header) and of a reply is a claim; a
// probe (sender 0.0.0.0), another opcode and short or non-IPv4 packets are
// not.
func TestParseClaim(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x66}
	vip := netip.MustParseAddr("192.168.1.100")
	f, err := ARPFrame(mac, vip)
	if err != nil {
		t.Fatal(err)
	}
	arp := f[14:]
	c, ok := ParseClaim(arp)
	if !ok || c.Addr != vip || c.MAC.String() != mac.String() {
		t.Fatalf("gratuitous ARP: %+v %v", c, ok)
	}
	reply := append([]byte(nil), arp...)
	reply[7] = 2
	if c, ok := ParseClaim(reply); !ok || c.Addr != vip {
		t.Errorf("reply: %+v %v", c, ok)
	}
	probe := append([]byte(nil), arp...)
	copy(probe[14:18], []byte{0, 0, 0, 0})
	other := append([]byte(nil), arp...)
	other[7] = 3
	ipv6 := append([]byte(nil), arp...)
	ipv6[2], ipv6[3] = 0x86, 0xdd
	for name, b := range map[string][]byte{"probe": probe, "opcode 3": other, "short": arp[:27], "not IPv4": ipv6, "empty": nil} {
		if c, ok := ParseClaim(b); ok {
			t.Errorf("%s: claim %+v", name, c)
		}
	}
}
