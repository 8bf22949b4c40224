package vrrpnet_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// TestBatch: WriteBatch sends each message as WritePacket would (the IPv4
// frames carry consecutive IP IDs, byte for byte the header WritePacket
// builds), sets Err on a message it cannot send and still sends the
// others; ReadBatch returns the packets queued in order, each in its own
// buffer, and drops one too large for its buffer, counting it.
func TestBatch(t *testing.T) {
	tl := newLab(t)
	_, payload := capturedAdvert(t)
	for _, fam := range []vrrpnet.Family{vrrpnet.IPv4, vrrpnet.IPv6} {
		t.Run(fam.String(), func(t *testing.T) {
			filter := "ip proto 112"
			pl, wrong := payload, addr("fd00::1")
			if fam == vrrpnet.IPv6 {
				filter, pl, wrong = "ip6 proto 112", v6Payload, addr("192.168.1.1")
			}
			cap := netnstest.StartCapture(t, tl.sniffer, "eth0", filter)
			c1 := listen(t, tl.r1, vrrpnet.Config{Family: fam})
			c2 := listen(t, tl.r2, vrrpnet.Config{Family: fam})
			// Three payloads told apart by their last byte.
			pls := make([][]byte, 3)
			for i := range pls {
				pls[i] = append(bytes.Clone(pl[:len(pl)-1]), byte(0xa0+i))
			}
			msgs := []vrrpnet.Message{{Payload: pls[0]}, {Payload: pls[1], Dst: wrong}, {Payload: pls[2]}}
			if n := c1.WriteBatch(msgs); n != 1 || msgs[0].Err != nil || msgs[1].Err == nil || msgs[2].Err != nil {
				t.Fatalf("WriteBatch = %d, errors %v %v %v; want 1, the message to %s failing", n, msgs[0].Err, msgs[1].Err, msgs[2].Err, wrong)
			}
			if s := c1.Stats(); s.Sent != 2 || s.SendErrors != 0 {
				t.Errorf("stats %+v, want Sent 2 (a message with a wrong address is no send error)", s)
			}

			if err := c2.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			bufs := [][]byte{make([]byte, 1500), make([]byte, 1500), make([]byte, 1500)}
			pkts := make([]vrrpnet.Packet, 3)
			var got [][]byte
			for len(got) < 2 {
				n, err := c2.ReadBatch(bufs, pkts)
				if err != nil {
					t.Fatalf("ReadBatch: %v (after %d)", err, len(got))
				}
				for _, p := range pkts[:n] {
					if p.Src != c1.Source() || p.TTL != 255 {
						t.Errorf("received %+v", p)
					}
					got = append(got, bytes.Clone(p.Payload))
				}
			}
			if len(got) != 2 || !bytes.Equal(got[0], pls[0]) || !bytes.Equal(got[1], pls[2]) {
				t.Errorf("received %x, want %x then %x", got, pls[0], pls[2])
			}

			frames := cap.Frames(t, 2, 5*time.Second)
			if len(frames) != 2 {
				t.Fatalf("captured %d frames, want 2", len(frames))
			}
			if fam == vrrpnet.IPv4 {
				id0 := binary.BigEndian.Uint16(frames[0][18:20])
				if id1 := binary.BigEndian.Uint16(frames[1][18:20]); id1 != id0+1 {
					t.Errorf("IP IDs %d then %d, want consecutive", id0, id1)
				}
			}
			for i, f := range frames {
				if !bytes.HasSuffix(f, []byte{byte(0xa0 + 2*i)}) {
					t.Errorf("frame %d ends %x, want the payload of message %d", i, f[len(f)-1], 2*i)
				}
			}

			// Too large for its buffer: dropped and counted, the next one
			// still read.
			if n := c1.WriteBatch([]vrrpnet.Message{{Payload: pls[0]}}); n != 0 {
				t.Fatal("WriteBatch failed")
			}
			room := len(pl) - 1 // an IPv4 socket reads the IP header too
			if fam == vrrpnet.IPv4 {
				room += 20
			}
			small := [][]byte{make([]byte, room)}
			done := make(chan error, 1)
			go func() {
				_, err := c2.ReadBatch(small, pkts[:1])
				done <- err
			}()
			deadline := time.Now().Add(5 * time.Second)
			for c2.Stats().DroppedTruncated == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if s := c2.Stats(); s.DroppedTruncated != 1 {
				t.Errorf("stats %+v, want DroppedTruncated 1", s)
			}
			if n := c1.WriteBatch([]vrrpnet.Message{{Payload: pl[:2]}}); n != 0 {
				t.Fatal("WriteBatch failed")
			}
			if err := <-done; err != nil {
				t.Errorf("ReadBatch after a truncated packet: %v", err)
			} else if p := pkts[0]; !bytes.Equal(p.Payload, pl[:2]) {
				t.Errorf("read %x after the truncated packet, want %x", p.Payload, pl[:2])
			}
		})
	}
}
