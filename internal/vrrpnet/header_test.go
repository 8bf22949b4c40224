package vrrpnet

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// advertFrame is keepalived 2.2.7's VRRPv2 advert as captured on the wire
// (testdata/vrrpv2-advert.hex, from shared/captures).
func advertFrame(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/vrrpv2-advert.hex")
	if err != nil {
		t.Fatal(err)
	}
	f, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestIPv4HeaderGolden: the header vrrpnet builds is byte for byte the one in
// keepalived's capture.
func TestIPv4HeaderGolden(t *testing.T) {
	frame := advertFrame(t)
	want := []byte{
		0x45, 0xc0, // version 4, IHL 5 | TOS 0xc0 (CS6)
		0x00, 0x28, // total length 40
		0x00, 0x01, // identification 1 (the first advert)
		0x00, 0x00, // no flags (no DF), fragment offset 0
		0xff, 0x70, // TTL 255 | protocol 112
		0x18, 0x81, // header checksum
		0xc0, 0xa8, 0x01, 0x69, // src 192.168.1.105
		0xe0, 0x00, 0x00, 0x12, // dst 224.0.0.18
	}
	if !bytes.Equal(frame[14:34], want) {
		t.Fatalf("testdata disagrees with the annotated header: %x", frame[14:34])
	}
	got := appendIPv4Header(nil, netip.MustParseAddr("192.168.1.105"), netip.MustParseAddr("224.0.0.18"), 1, 255, Protocol, 20)
	if !bytes.Equal(got, want) {
		t.Errorf("appendIPv4Header = %x, want %x", got, want)
	}
}

func TestParseIPv4Header(t *testing.T) {
	pkt := advertFrame(t)[14:]
	tests := []struct {
		name string
		b    []byte
		ok   bool
		want ipv4Header
	}{
		{"keepalived advert", pkt, true, ipv4Header{ihl: 20, totLen: 40, ttl: 255,
			src: netip.MustParseAddr("192.168.1.105"), dst: netip.MustParseAddr("224.0.0.18")}},
		{"short", pkt[:19], false, ipv4Header{}},
		{"not IPv4", append([]byte{0x65}, pkt[1:]...), false, ipv4Header{}},
		{"IHL too small", append([]byte{0x44}, pkt[1:]...), false, ipv4Header{}},
		{"IHL beyond data", append([]byte{0x4f}, pkt[1:30]...), false, ipv4Header{}},
		{"total length beyond data", pkt[:39], false, ipv4Header{}},
		{"total length below IHL", append(append([]byte{}, pkt[:2]...), append([]byte{0, 10}, pkt[4:]...)...), false, ipv4Header{}},
		{"other protocol", append(append([]byte{}, pkt[:9]...), append([]byte{6}, pkt[10:]...)...), false, ipv4Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseIPv4Header(tt.b, Protocol)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(ipv4Header{}),
				cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseIPv4Header: never panics; an accepted header lies inside the
// input.
func FuzzParseIPv4Header(f *testing.F) {
	f.Add(advertFrame(f)[14:])
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := parseIPv4Header(b, Protocol)
		if ok && (h.ihl < 20 || h.totLen > len(b) || h.ihl > h.totLen) {
			t.Fatalf("accepted %+v for %d bytes", h, len(b))
		}
	})
}

func TestNextIDSkipsZero(t *testing.T) {
	var c Conn
	c.ipID.Store(0xfffe)
	var got []uint16
	for range 3 {
		got = append(got, c.nextID())
	}
	if diff := cmp.Diff([]uint16{0xffff, 1, 2}, got); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}
