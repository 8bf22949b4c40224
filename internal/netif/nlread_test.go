package netif

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestNLReaderDump: a dump of the links read through nlReader arrives
// whole, from the kernel, and ends with NLMSG_DONE; the loopback interface
// is in it.
func TestNLReaderDump(t *testing.T) {
	s, r := testReader(t)
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	if err := s.Send(req); err != nil {
		t.Fatal(err)
	}
	links := 0
	for done := false; !done; {
		msgs, from, err := r.receive()
		if err != nil {
			t.Fatal(err)
		}
		if from != nl.PidKernel {
			t.Fatalf("datagram from port %d, want the kernel's", from)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				done = true
			case unix.RTM_NEWLINK:
				if len(m.Data) < unix.SizeofIfInfomsg {
					t.Fatalf("short RTM_NEWLINK: %d bytes", len(m.Data))
				}
				links++
			}
		}
	}
	if links == 0 {
		t.Fatal("no link in the dump")
	}
}

// TestNLReaderParkedStackSmall: goroutines parked in receive keep small
// stacks. nl.NetlinkSocket.Receive, which reads into a 64 KiB array on
// the stack, left each with 128 KiB for as long as it waited.
func TestNLReaderParkedStackSmall(t *testing.T) {
	const n = 16
	var readers []*nlReader
	for range n {
		_, r := testReader(t)
		readers = append(readers, r)
	}
	stacks := func() uint64 {
		runtime.GC()
		m := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
		metrics.Read(m)
		return m[0].Value.Uint64()
	}
	before := stacks()
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.receive() // nothing comes: parked until Close
		}()
	}
	time.Sleep(100 * time.Millisecond)
	grown := stacks() - before
	for _, r := range readers {
		r.Close()
	}
	wg.Wait()
	if per := grown / n; per > 32<<10 {
		t.Errorf("%d goroutines parked in receive hold %d KiB of stack each", n, per>>10)
	}
}

// testReader opens a NETLINK_ROUTE socket in the test's namespace and an
// nlReader on it, both closed at the test's end.
func testReader(t *testing.T) (*nl.NetlinkSocket, *nlReader) {
	t.Helper()
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		t.Skipf("netlink socket: %v", err)
	}
	t.Cleanup(s.Close)
	r, err := newNLReader(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return s, r
}
