package ops

// The wire as tcpdump saw it on a host's interface: VRRP adverts and ARP
// frames with the kernel's timestamps, which are what the cadence checks
// need (a reader goroutine's clock would add its own scheduling delays).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// capture is a tcpdump writing a pcap file inside a lab host.
type capture struct {
	proc *lab.Proc
	file string
}

// startCapture runs `tcpdump -i iface filter` inside h until the test ends,
// and returns once it listens.
func startCapture(t *testing.T, h *lab.Host, iface, filter string) *capture {
	t.Helper()
	tcpdump := netnstest.RequireCommand(t, "tcpdump")
	file := filepath.Join(t.TempDir(), h.Name()+"-"+iface+".pcap")
	args := []string{"-i", iface, "-n", "-U", "--immediate-mode", "-Z", "root", "-s", "256", "-w", file}
	p, err := h.Start(tcpdump, append(args, strings.Fields(filter)...)...)
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{proc: p, file: file}
	t.Cleanup(p.Kill)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.Output(), "listening on") {
		select {
		case <-p.Done():
			t.Fatalf("tcpdump exited: %v\n%s", p.Err(), p.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump not listening after 15s:\n%s", p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// frames returns what the capture holds so far.
func (c *capture) frames(t *testing.T) []frame {
	t.Helper()
	b, err := os.ReadFile(c.file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	fs, err := parsePcap(b)
	if err != nil {
		t.Fatalf("%s: %v", c.file, err)
	}
	return fs
}

// frame is one captured Ethernet frame and the kernel's time for it.
type frame struct {
	at   time.Time
	data []byte
}

// parsePcap reads a classic pcap file (either byte order, micro- or
// nanosecond timestamps) of Ethernet frames, ignoring a truncated last
// record (tcpdump may be writing it).
func parsePcap(b []byte) ([]frame, error) {
	if len(b) < 24 {
		return nil, nil
	}
	var bo binary.ByteOrder
	nano := false
	switch binary.LittleEndian.Uint32(b[0:4]) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("not a pcap file (magic %x)", b[0:4])
	}
	if lt := bo.Uint32(b[20:24]); lt != 1 {
		return nil, fmt.Errorf("link type %d, want 1 (Ethernet)", lt)
	}
	var out []frame
	for off := 24; off+16 <= len(b); {
		sec, frac := int64(bo.Uint32(b[off:off+4])), int64(bo.Uint32(b[off+4:off+8]))
		incl := int(bo.Uint32(b[off+8 : off+12]))
		if off+16+incl > len(b) {
			break
		}
		if !nano {
			frac *= 1000
		}
		out = append(out, frame{at: time.Unix(sec, frac), data: b[off+16 : off+16+incl]})
		off += 16 + incl
	}
	return out, nil
}

// advert is a VRRP advertisement seen on the wire.
type advert struct {
	at       time.Time
	src      netip.Addr
	version  int
	vrid     int
	priority int
}

// arpFrame is an ARP request or reply seen on the wire.
type arpFrame struct {
	at             time.Time
	op             int // 1 request, 2 reply
	sender, target netip.Addr
}

// gratuitous reports whether the frame announces its sender address (a
// gratuitous ARP: sender and target protocol addresses are the same).
func (a arpFrame) gratuitous() bool { return a.sender == a.target }

// decodeFrames picks the IPv4 VRRP adverts and the ARP frames out of a
// capture. Other frames and truncated ones are skipped.
func decodeFrames(fs []frame) (ads []advert, arps []arpFrame) {
	for _, f := range fs {
		b := f.data
		if len(b) < 14 {
			continue
		}
		et := binary.BigEndian.Uint16(b[12:14])
		b = b[14:]
		if et == 0x8100 && len(b) >= 4 { // 802.1Q tag
			et = binary.BigEndian.Uint16(b[2:4])
			b = b[4:]
		}
		switch et {
		case 0x0800:
			if len(b) < 20 || b[0]>>4 != 4 || b[9] != 112 {
				continue
			}
			ihl := int(b[0]&0x0f) * 4
			if ihl < 20 || len(b) < ihl+3 {
				continue
			}
			src, _ := netip.AddrFromSlice(b[12:16])
			v := b[ihl:]
			// RFC 5798 §5.1: version (4 bits) | type (4 bits), VRID, priority.
			ads = append(ads, advert{at: f.at, src: src, version: int(v[0] >> 4), vrid: int(v[1]), priority: int(v[2])})
		case 0x0806:
			// RFC 826: htype(2) ptype(2) hlen(1) plen(1) op(2) sha spa tha tpa.
			if len(b) < 28 || b[4] != 6 || b[5] != 4 {
				continue
			}
			spa, _ := netip.AddrFromSlice(b[14:18])
			tpa, _ := netip.AddrFromSlice(b[24:28])
			arps = append(arps, arpFrame{at: f.at, op: int(binary.BigEndian.Uint16(b[6:8])), sender: spa, target: tpa})
		}
	}
	return ads, arps
}

// gap is the longest silence between two consecutive adverts of one
// router, and when it ended.
type gap struct {
	longest time.Duration
	endedAt time.Time
	count   int // adverts considered
}

// longestGap measures the adverts of VRID vrid from src between from and to.
func longestGap(ads []advert, src netip.Addr, vrid int, from, to time.Time) gap {
	var g gap
	var last time.Time
	for _, a := range ads {
		if a.src != src || a.vrid != vrid || a.at.Before(from) || a.at.After(to) {
			continue
		}
		g.count++
		if !last.IsZero() && a.at.Sub(last) > g.longest {
			g.longest, g.endedAt = a.at.Sub(last), a.at
		}
		last = a.at
	}
	return g
}
