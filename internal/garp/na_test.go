package garp

import (
	"net"
	"net/netip"
	"testing"
)

// TestParseNA: the claim of keepalived's unsolicited NA (the ICMPv6 part of
// NAFrame's frame, as an ICMPv6 socket delivers it) is its target at its
// target link-layer address, with or without the router flag and with
// other options around; what is no claim says why.
func TestParseNA(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x66}
	vip := netip.MustParseAddr("fd00::100")
	f, err := NAFrame(mac, vip, false)
	if err != nil {
		t.Fatal(err)
	}
	na := f[14+40:]
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), na...)) }
	tests := []struct {
		name   string
		b      []byte
		reason string
	}{
		{"unsolicited NA", na, ""},
		{"router flag", edit(func(b []byte) []byte { b[4] |= 0x80; return b }), ""},
		{"solicited, no override", edit(func(b []byte) []byte { b[4] = 0x40; return b }), ""},
		{"nonce option first", edit(func(b []byte) []byte {
			return append(append(b[:24:24], 14, 1, 1, 2, 3, 4, 5, 6), na[24:]...)
		}), ""},
		{"short", na[:23], DropNAMalformed},
		{"empty", nil, DropNAMalformed},
		{"not an NA", edit(func(b []byte) []byte { b[0] = 135; return b }), DropNAMalformed},
		{"code 1", edit(func(b []byte) []byte { b[1] = 1; return b }), DropNAMalformed},
		{"zero-length option", edit(func(b []byte) []byte { b[25] = 0; return b }), DropNAMalformed},
		{"truncated option", na[:30], DropNAMalformed},
		{"option past the end", edit(func(b []byte) []byte { b[25] = 2; return b }), DropNAMalformed},
		{"multicast target", edit(func(b []byte) []byte { b[8], b[9] = 0xff, 0x02; return b }), DropNATarget},
		{"unspecified target", edit(func(b []byte) []byte { clear(b[8:24]); return b }), DropNATarget},
		{"no target link-layer address", na[:24], DropNANoLLAddr},
		{"source link-layer address only", edit(func(b []byte) []byte { b[24] = 1; return b }), DropNANoLLAddr},
		{"16-byte link-layer address", edit(func(b []byte) []byte { b[25] = 2; return append(b, make([]byte, 8)...) }), DropNABadLLAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, reason := ParseNA(tt.b)
			if reason != tt.reason {
				t.Fatalf("reason %q, want %q (claim %+v)", reason, tt.reason, c)
			}
			if reason == "" && (c.Addr != vip || c.MAC.String() != mac.String()) {
				t.Fatalf("claim %s at %s, want %s at %s", c.Addr, c.MAC, vip, mac)
			}
		})
	}
}

// FuzzParseNA: ParseNA never panics, and a claim it returns is a unicast
// target at a 6-byte MAC taken from the packet.
func FuzzParseNA(f *testing.F) {
	fr, _ := NAFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("fd00::1"), true)
	f.Add(fr[54:])
	f.Add(fr[54:78])
	f.Fuzz(func(t *testing.T, b []byte) {
		c, reason := ParseNA(b)
		if reason != "" {
			if c.Addr.IsValid() || c.MAC != nil {
				t.Fatalf("dropped (%s) with a claim %+v", reason, c)
			}
			return
		}
		if len(c.MAC) != 6 || !c.Addr.Is6() || c.Addr.IsMulticast() || c.Addr.IsUnspecified() || c.Addr != netip.AddrFrom16([16]byte(b[8:24])) {
			t.Fatalf("claim %+v from %x", c, b)
		}
	})
}

// TestNAFilter: the ICMP6_FILTER passes type 136 only (Linux blocks the
// types whose bit is set).
func TestNAFilter(t *testing.T) {
	f := naFilter()
	for typ := 0; typ < 256; typ++ {
		blocked := f.Data[typ>>5]&(1<<(typ&31)) != 0
		if blocked == (typ == 136) {
			t.Errorf("type %d blocked %v", typ, blocked)
		}
	}
}

// BenchmarkParseNA: the per-packet cost of reading a claim from an NA.
func BenchmarkParseNA(b *testing.B) {
	fr, _ := NAFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("fd00::1"), false)
	na := fr[54:]
	b.ReportAllocs()
	for b.Loop() {
		if _, reason := ParseNA(na); reason != "" {
			b.Fatal(reason)
		}
	}
}
