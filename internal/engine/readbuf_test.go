package engine

import (
	"net/netip"
	"testing"

	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// TestReadBufHoldsLargestAdvert: a reader's buffer holds the largest
// advertisement its family can carry, as the kernel hands it over (over
// IPv4 with the longest IP header and keepalived's AH header), and no more.
func TestReadBufHoldsLargestAdvert(t *testing.T) {
	for _, c := range []struct {
		name     string
		v6       bool
		version  uint8
		src, dst netip.Addr
		before   int // what the kernel hands over before the VRRP message
	}{
		{"IPv4 VRRPv2 under AH", false, packet.Version2, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("224.0.0.18"), 60 + packet.AHLen},
		{"IPv4 VRRPv3", false, packet.Version3, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("224.0.0.18"), 60},
		{"IPv6 VRRPv3", true, packet.Version3, netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::12"), 0},
	} {
		a := packet.Advert{Version: c.version, Type: packet.TypeAdvertisement, VRID: 1, Priority: 100, CountIPAddrs: 255, AdvertInt: 1}
		for i := range 255 {
			if c.v6 {
				a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
			} else {
				a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte{10, 1, 1, byte(i)}))
			}
		}
		b, err := a.Marshal(c.src, c.dst)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, max := c.before+len(b), readBuf(c.v6); got > max {
			t.Errorf("%s: %d bytes received, buffer %d", c.name, got, max)
		}
	}
	if got := readBuf(false); got != 1120 {
		t.Errorf("IPv4 buffer %d bytes, want 1120 (60 + 24 + 8 + 255*4 + 8)", got)
	}
	if got := readBuf(true); got != 4088 {
		t.Errorf("IPv6 buffer %d bytes, want 4088 (8 + 255*16)", got)
	}
}
