package vrrpnet_test

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// loopReader runs ReadLoop on c with batches of batch packets, sending a
// copy of each payload to got and each batch's size to sizes; before
// handing over a batch it waits for gate when hold says so.
type loopReader struct {
	got   chan []byte
	sizes chan int
	done  chan error
}

func startLoop(c *vrrpnet.Conn, batch int, hold func([]byte) bool, gate chan struct{}) *loopReader {
	r := &loopReader{got: make(chan []byte, 256), sizes: make(chan int, 256), done: make(chan error, 1)}
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 1500)
	}
	pkts := make([]vrrpnet.Packet, batch)
	go func() {
		r.done <- c.ReadLoop(bufs, pkts, func(ps []vrrpnet.Packet) error {
			r.sizes <- len(ps)
			for _, p := range ps {
				r.got <- bytes.Clone(p.Payload)
			}
			if hold != nil && hold(ps[len(ps)-1].Payload) {
				<-gate
			}
			return nil
		})
	}()
	return r
}

// next returns the next payload handed over, failing after 5 s.
func (r *loopReader) next(t *testing.T, what string) []byte {
	t.Helper()
	select {
	case p := <-r.got:
		return p
	case err := <-r.done:
		t.Fatalf("%s: ReadLoop ended: %v", what, err)
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not handed over within 5 s", what)
	}
	return nil
}

// ended checks that the loop returns net.ErrClosed within 5 s.
func (r *loopReader) ended(t *testing.T, what string) {
	t.Helper()
	select {
	case err := <-r.done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s: ReadLoop returned %v, want net.ErrClosed", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: ReadLoop still running 5 s after Close", what)
	}
}

// TestReadLoop: ReadLoop hands over every packet without waiting for a
// later one, whether they come one at a time with pauses (the loop waits
// for the poller between them) or in a burst larger than its batch (a full
// batch reads again at once, the partial one after it waits); the loop
// ends with net.ErrClosed when the conn is closed while it waits, while
// its handle runs (Close returns at once), or from the handle; a packet
// through the loop allocates nothing.
func TestReadLoop(t *testing.T) {
	tl := newLab(t)
	_, pl := capturedAdvert(t)
	payload := func(tag byte) []byte { return append(bytes.Clone(pl[:len(pl)-1]), tag) }
	c1 := listen(t, tl.r1, vrrpnet.Config{Family: vrrpnet.IPv4})
	c2 := listen(t, tl.r2, vrrpnet.Config{Family: vrrpnet.IPv4})

	// A payload tagged 0xff holds the handle until gate is sent on.
	gate := make(chan struct{})
	r := startLoop(c2, 4, func(p []byte) bool { return p[len(p)-1] == 0xff }, gate)
	send := func(tags ...byte) {
		t.Helper()
		msgs := make([]vrrpnet.Message, len(tags))
		for i, tag := range tags {
			msgs[i].Payload = payload(tag)
		}
		if n := c1.WriteBatch(msgs); n != 0 {
			t.Fatalf("WriteBatch: %d failed: %v", n, msgs[0].Err)
		}
	}
	want := func(tag byte, what string) {
		t.Helper()
		if p := r.next(t, what); !bytes.Equal(p, payload(tag)) {
			t.Fatalf("%s: got payload ending %x, want %x", what, p[len(p)-1], tag)
		}
	}

	// One at a time, each followed by silence: each must come on its own.
	for i := range 3 {
		send(byte(i))
		want(byte(i), "a single packet")
		time.Sleep(20 * time.Millisecond)
	}

	// A burst of 10 queued while the handle is held: handed over in
	// batches of 4, then a single packet after it still comes.
	send(0xff)
	want(0xff, "the holding packet")
	// Read but not through its handle yet: still pending (the engine's
	// expired Master_Down_Timer waits for it).
	if !c2.Pending() {
		t.Error("Pending is false while the handle holds a packet read from an empty queue")
	}
	burst := []byte{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19}
	send(burst...)
	for deadline := time.Now().Add(5 * time.Second); !c2.Pending() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the rest of the burst queues
	for len(r.sizes) > 0 {
		<-r.sizes
	}
	gate <- struct{}{}
	for _, tag := range burst {
		want(tag, "a packet of the burst")
	}
	var sizes []int
	for len(r.sizes) > 0 {
		sizes = append(sizes, <-r.sizes)
	}
	// [4 4 2] when the whole burst was queued before the gate opened; a
	// burst still in the kernel then may come in more batches.
	total := 0
	for _, n := range sizes {
		total += n
		if n > 4 {
			total = -100
		}
	}
	if total != 10 || sizes[0] != 4 {
		t.Errorf("the burst was handed over in batches of %v, want at most 4 each, the first 4 (as [4 4 2])", sizes)
	}
	send(0x20)
	want(0x20, "a single packet after the burst")
	if s := c2.Stats(); s.Received != 15 {
		t.Errorf("stats %+v, want Received 15", s)
	}

	// Closed while the handle runs: Close does not wait for the handle
	// (whose caller may hold what the handle waits for).
	send(0xff)
	want(0xff, "the holding packet")
	closed := make(chan error, 1)
	go func() { closed <- c2.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the handle")
	}
	gate <- struct{}{}
	r.ended(t, "closed while the handle ran")
	if err := c2.ReadLoop(make([][]byte, 1), make([]vrrpnet.Packet, 1), nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadLoop after Close: %v, want net.ErrClosed", err)
	}

	// Closed while waiting.
	c3 := listen(t, tl.r2, vrrpnet.Config{Family: vrrpnet.IPv4})
	r3 := startLoop(c3, 4, nil, nil)
	time.Sleep(50 * time.Millisecond)
	if err := c3.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	r3.ended(t, "closed while waiting")

	// Closed by the handle itself.
	c4 := listen(t, tl.r2, vrrpnet.Config{Family: vrrpnet.IPv4})
	r4 := startLoop(c4, 4, func([]byte) bool { c4.Close(); return false }, nil)
	send(0x30)
	if p := r4.next(t, "a packet to a conn its handle closes"); p[len(p)-1] != 0x30 {
		t.Errorf("got payload ending %x, want 30", p[len(p)-1])
	}
	r4.ended(t, "closed by the handle")

	// A packet through the loop (wait, recvmmsg, handle) allocates
	// nothing; the other conns, whose handles copy, are closed by now.
	c5 := listen(t, tl.r3, vrrpnet.Config{Family: vrrpnet.IPv4})
	ack := make(chan struct{}, 1)
	done5 := make(chan error, 1)
	go func() {
		bufs, pkts := [][]byte{make([]byte, 1500), make([]byte, 1500)}, make([]vrrpnet.Packet, 2)
		done5 <- c5.ReadLoop(bufs, pkts, func(ps []vrrpnet.Packet) error {
			for range ps {
				ack <- struct{}{}
			}
			return nil
		})
	}()
	one := []vrrpnet.Message{{Payload: payload(0x40)}}
	if c1.WriteBatch(one) != 0 {
		t.Fatal(one[0].Err)
	}
	select {
	case <-ack:
	case <-time.After(5 * time.Second):
		t.Fatal("the first packet to the allocation loop not handed over within 5 s")
	}
	if a := testing.AllocsPerRun(50, func() {
		if c1.WriteBatch(one) != 0 {
			t.Fatal(one[0].Err)
		}
		<-ack
	}); a != 0 {
		t.Errorf("a packet through ReadLoop allocates %v times, want 0", a)
	}
	c5.Close()
	if err := <-done5; !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadLoop after Close: %v, want net.ErrClosed", err)
	}
}
