package netnstest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// Capture is a tcpdump running inside a lab host, writing a pcap file that
// the test reads back frame by frame.
type Capture struct {
	proc *lab.Proc
	file string
}

// StartCapture starts `tcpdump -i iface` with a capture filter (tcpdump
// syntax, may be empty) inside host, and returns once tcpdump is listening.
// It is stopped at the end of the test (and by the lab's teardown).
func StartCapture(t testing.TB, host *lab.Host, iface, filter string) *Capture {
	t.Helper()
	tcpdump := RequireCommand(t, "tcpdump")
	file := filepath.Join(t.TempDir(), host.Name()+"-"+iface+".pcap")
	args := []string{"-i", iface, "-n", "-U", "--immediate-mode", "-Z", "root", "-s", "0", "-w", file}
	if filter != "" {
		args = append(args, strings.Fields(filter)...)
	}
	p, err := host.Start(tcpdump, args...)
	if err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	c := &Capture{proc: p, file: file}
	t.Cleanup(c.Stop)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.Output(), "listening on") {
		select {
		case <-p.Done():
			t.Fatalf("netnstest: tcpdump exited: %v\n%s", p.Err(), p.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("netnstest: tcpdump not listening after 15s:\n%s", p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// Stop kills tcpdump. Frames already written stay readable.
func (c *Capture) Stop() { c.proc.Kill() }

// Frames waits until the capture holds at least n frames (or the timeout
// passes) and returns all frames captured so far, as link-layer bytes.
func (c *Capture) Frames(t testing.TB, n int, timeout time.Duration) [][]byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		frames, err := c.read()
		if err != nil {
			t.Fatalf("netnstest: read capture: %v", err)
		}
		if len(frames) >= n || time.Now().After(deadline) {
			return frames
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// read parses the pcap file as far as it is complete.
func (c *Capture) read() ([][]byte, error) {
	b, err := os.ReadFile(c.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParsePcap(b)
}

// ParsePcap returns the frames of a classic pcap file (either byte order,
// microsecond or nanosecond timestamps), ignoring a truncated last record.
func ParsePcap(b []byte) ([][]byte, error) {
	if len(b) < 24 {
		return nil, nil // header not written yet
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b[0:4]) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("not a pcap file (magic %x)", b[0:4])
	}
	var frames [][]byte
	for off := 24; off+16 <= len(b); {
		incl := int(bo.Uint32(b[off+8 : off+12]))
		if off+16+incl > len(b) {
			break
		}
		frames = append(frames, b[off+16:off+16+incl])
		off += 16 + incl
	}
	return frames, nil
}
