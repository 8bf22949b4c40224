package packet

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// addrsFrom makes a source and destination of one family from fuzz input.
func addrsFrom(is6 bool, s, d []byte) (src, dst netip.Addr) {
	if is6 {
		var a, b [16]byte
		copy(a[:], s)
		copy(b[:], d)
		return netip.AddrFrom16(a), netip.AddrFrom16(b)
	}
	var a, b [4]byte
	copy(a[:], s)
	copy(b[:], d)
	return netip.AddrFrom4(a), netip.AddrFrom4(b)
}

// FuzzParse: Parse never panics, and whatever it accepts re-encodes to exactly
// the input bytes (Append with the parsed Advert, whose ChecksumMode says
// which checksum computation matched), and parses again to the same Advert.
// When fix is set, the input's checksum field is first overwritten with the
// checksum of mode fixMode, so that mutations get past the checksum and reach
// the structural checks and the accepting path.
//
// Corpus: go test -fuzz=FuzzParse ./internal/vrrp/packet
func FuzzParse(f *testing.F) {
	for _, g := range goldens {
		f.Add(g.bytes, g.src.Is6(), g.src.AsSlice(), g.dst.AsSlice(), false, uint8(0))
		f.Add(g.bytes, g.src.Is6(), g.src.AsSlice(), g.dst.AsSlice(), true, uint8(g.want.ChecksumMode))
	}
	f.Fuzz(func(t *testing.T, b []byte, is6 bool, s, d []byte, fix bool, fixMode uint8) {
		src, dst := addrsFrom(is6, s, d)
		if fix && len(b) >= HeaderLen {
			six, us, ud, err := family(src, dst)
			if err == nil {
				sum := compute(b, b[0]>>4, six, us, ud, ChecksumMode(fixMode%3))
				b[6], b[7] = byte(sum>>8), byte(sum)
			}
		}
		a, err := Parse(b, src, dst)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse error %T %v is not *Error", err, err)
			}
			return
		}
		out, err := a.Marshal(src, dst)
		if err != nil {
			t.Fatalf("Marshal of a parsed advert: %v\n%#v", err, a)
		}
		if !slices.Equal(out, b) {
			t.Fatalf("round trip:\n in  %x\n out %x", b, out)
		}
		again, err := Parse(out, src, dst)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, again, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
			t.Fatalf("re-parse (-first +second):\n%s", diff)
		}
	})
}

// FuzzRoundTrip: any Advert that Marshal accepts parses back to itself, with
// the Checksum Parse read equal to the one Marshal wrote. The one exception is
// a ChecksumMode whose value coincides with an earlier-tried mode's (Parse
// reports the first match); then the bytes must still be identical.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(3), uint8(55), uint8(100), uint16(100), uint8(0), uint8(0), uint8(0), false, []byte{192, 168, 1, 100}, []byte("1111"), []byte{10, 0, 0, 1}, []byte{224, 0, 0, 18})
	f.Add(uint8(2), uint8(1), uint8(0), uint16(1), uint8(1), uint8(0), uint8(0), false, []byte{10, 0, 0, 1, 10, 0, 0, 2}, []byte("secret"), []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2})
	f.Add(uint8(3), uint8(7), uint8(255), uint16(4095), uint8(0), uint8(0), uint8(0), true, make([]byte, 32), []byte(nil), []byte{0xfe, 0x80, 15: 1}, []byte{0xff, 0x02, 15: 0x12})
	f.Add(uint8(3), uint8(7), uint8(200), uint16(5), uint8(0), uint8(2), uint8(3), false, []byte{1, 2, 3, 4}, []byte(nil), []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2})
	f.Fuzz(func(t *testing.T, version, vrid, prio uint8, interval uint16, auth, mode, reserved uint8, is6 bool, addrBytes, authData, s, d []byte) {
		src, dst := addrsFrom(is6, s, d)
		size := 4
		if is6 {
			size = 16
		}
		var addrs []netip.Addr
		for len(addrBytes) >= size && len(addrs) < MaxAddrs {
			a, _ := netip.AddrFromSlice(addrBytes[:size])
			addrs = append(addrs, a)
			addrBytes = addrBytes[size:]
		}
		a := Advert{Version: version, Type: TypeAdvertisement, VRID: vrid, Priority: prio,
			CountIPAddrs: uint8(len(addrs)), AuthType: AuthType(auth), Reserved: reserved,
			AdvertInt: interval, Addrs: addrs, ChecksumMode: ChecksumMode(mode)}
		copy(a.AuthData[:], authData)
		b, err := a.Marshal(src, dst)
		if err != nil {
			return
		}
		got, err := Parse(b, src, dst)
		if err != nil {
			t.Fatalf("Parse of Marshal output %x: %v", b, err)
		}
		if got.Checksum != uint16(b[6])<<8|uint16(b[7]) {
			t.Fatalf("Checksum field %#x, bytes say %x", got.Checksum, b[6:8])
		}
		want := a
		want.Checksum = got.Checksum
		if got.ChecksumMode != a.ChecksumMode {
			// Two computations gave the same value: allowed only if the bytes
			// re-encode identically with the reported mode.
			again, err := got.Marshal(src, dst)
			if err != nil || !slices.Equal(again, b) {
				t.Fatalf("mode %v parsed as %v and re-encodes differently", a.ChecksumMode, got.ChecksumMode)
			}
			want.ChecksumMode = got.ChecksumMode
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
	})
}
