package ops

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pcapOf builds a little-endian, microsecond pcap file of Ethernet frames.
func pcapOf(frames ...frame) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)              // thiszone, sigfigs
	b = binary.LittleEndian.AppendUint32(b, 65535) // snaplen
	b = binary.LittleEndian.AppendUint32(b, 1)     // LINKTYPE_ETHERNET
	for _, f := range frames {
		b = binary.LittleEndian.AppendUint32(b, uint32(f.at.Unix()))
		b = binary.LittleEndian.AppendUint32(b, uint32(f.at.Nanosecond()/1000))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f.data)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f.data)))
		b = append(b, f.data...)
	}
	return b
}

func TestWireDecoding(t *testing.T) {
	t0 := time.Unix(1700000000, 250000000)
	eth := func(et uint16) []byte {
		b := append(make([]byte, 12), 0, 0)
		binary.BigEndian.PutUint16(b[12:], et)
		return b
	}
	vrrp := append(eth(0x0800),
		0x45, 0, 0, 32, 0, 0, 0, 0, 255, 112, 0, 0, // IPv4, TTL 255, proto 112
		192, 168, 118, 1, 224, 0, 0, 18, // src, dst
		0x31, 51, 150, 1, 0, 20, 0, 0, // v3 advert, VRID 51, prio 150, 1 addr, 20 cs
		192, 168, 118, 100)
	garp := append(eth(0x0806),
		0, 1, 8, 0, 6, 4, 0, 1, // Ethernet/IPv4, request
		2, 0, 0, 0, 0, 1, 192, 168, 118, 100, // sender
		0, 0, 0, 0, 0, 0, 192, 168, 118, 100) // target: the same address
	file := pcapOf(frame{t0, vrrp}, frame{t0.Add(200 * time.Millisecond), garp}, frame{t0.Add(time.Second), vrrp})
	fs, err := parsePcap(append(file, 1, 2, 3)) // a truncated record at the end is ignored
	if err != nil {
		t.Fatal(err)
	}
	ads, arps := decodeFrames(fs)
	src := netip.MustParseAddr("192.168.118.1")
	vip := netip.MustParseAddr("192.168.118.100")
	wantAds := []advert{
		{at: t0, src: src, version: 3, vrid: 51, priority: 150},
		{at: t0.Add(time.Second), src: src, version: 3, vrid: 51, priority: 150},
	}
	if diff := cmp.Diff(wantAds, ads, cmp.AllowUnexported(advert{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("adverts (-want +got):\n%s", diff)
	}
	if len(arps) != 1 || !arps[0].gratuitous() || arps[0].sender != vip || !arps[0].at.Equal(t0.Add(200*time.Millisecond)) {
		t.Errorf("arps: %+v", arps)
	}
	g := longestGap(ads, src, 51, t0.Add(-time.Second), t0.Add(2*time.Second))
	if g.longest != time.Second || g.count != 2 {
		t.Errorf("longestGap: %+v, want 1s over 2 adverts", g)
	}
}
