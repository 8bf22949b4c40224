package vrrpnet

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// ahFrame is line n of keepalived 2.2.7's AH capture (the codec's testdata).
func ahFrame(t testing.TB, n int) []byte {
	t.Helper()
	b, err := os.ReadFile("../vrrp/packet/testdata/vrrpv2-ah.hex")
	if err != nil {
		t.Fatal(err)
	}
	f, err := hex.DecodeString(strings.Fields(string(b))[n])
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAHHeaderAndSealGolden: the header vrrpnet builds for an AH conn, and
// the codec's seal over it, give keepalived's first AH advert byte for byte.
func TestAHHeaderAndSealGolden(t *testing.T) {
	ip := ahFrame(t, 0)[14:]
	src, dst := netip.MustParseAddr("192.168.1.105"), netip.MustParseAddr("224.0.0.18")
	hdr := appendIPv4Header(nil, src, dst, 1, 255, ProtocolAH, len(ip)-20)
	if !bytes.Equal(hdr, ip[:20]) {
		t.Fatalf("header %x, want keepalived's %x", hdr, ip[:20])
	}
	payload := packet.NewAH(src, 1).Append(nil)
	payload = append(payload, ip[44:]...) // the VRRP message
	var key [8]byte
	copy(key[:], "secret12")
	seal := Seal(func(h, p []byte) error { return packet.Seal(h, p, key, false) })
	if err := seal(hdr, payload); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(hdr, payload...), ip) {
		t.Errorf("sealed\n %x\nwant\n %x", append(hdr, payload...), ip)
	}
}

// TestParseAHConn: an AH conn accepts protocol 51 only and hands over the
// whole datagram; a VRRP conn refuses protocol 51.
func TestParseAHConn(t *testing.T) {
	ip := ahFrame(t, 0)[14:]
	ah := &Conn{family: IPv4, proto: ProtocolAH}
	p, ok := ah.parse(ip, nil, netip.Addr{})
	if !ok || !bytes.Equal(p.Payload, ip) || p.Src != netip.MustParseAddr("192.168.1.105") || p.TTL != 255 {
		t.Errorf("AH conn: ok %v, packet %+v", ok, p)
	}
	if _, ok := (&Conn{family: IPv4, proto: Protocol}).parse(ip, nil, netip.Addr{}); ok {
		t.Errorf("a VRRP conn accepted protocol 51")
	}
	if _, ok := parseIPv4Header(advertFrame(t)[14:], ProtocolAH); ok {
		t.Errorf("an AH conn accepted protocol 112")
	}
}

func TestListenProtocol(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Family: IPv6, Protocol: ProtocolAH}, "IPv4 only"},
		{Config{Family: IPv4, Protocol: 6}, "neither VRRP"},
	} {
		if _, err := Listen(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	c := &Conn{proto: Protocol}
	if err := c.WriteSealed(nil, netip.Addr{}, netip.Addr{}, func(_, _ []byte) error { return nil }); err == nil {
		t.Errorf("WriteSealed on a VRRP conn: no error")
	}
}
