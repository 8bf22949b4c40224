package engine

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/metrics"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// scaleInstances are n VRRPv3 instances as vigil-bench's scale mode
// configures them: 255 VRIDs per interface eth1..ethK, advert_int 1 s, one
// /32 VIP 10.k.1.VRID each, master at priority 100 or backup at 99.
func scaleInstances(n int, master bool) []runspec.InstanceSpec {
	out := make([]runspec.InstanceSpec, 0, n)
	for i := range n {
		k, vrid := i/255+1, i%255+1
		st, prio := vrrp.StateBackup, uint8(99)
		if master {
			st, prio = vrrp.StateMaster, 100
		}
		ifname := fmt.Sprintf("eth%d", k)
		a := netip.AddrFrom4([4]byte{10, byte(k), 1, byte(vrid)})
		out = append(out, runspec.InstanceSpec{
			VRRP: vrrp.Config{
				Name: fmt.Sprintf("VI_%d_%d", k, vrid), VRID: uint8(vrid), Version: 3, Priority: prio,
				AdvertInt: time.Second, InitialState: st, VIPs: []netip.Addr{a},
			},
			Interface: ifname,
			VIPs:      []netif.VIP{{Prefix: netip.PrefixFrom(a, 32), Dev: ifname}},
			GARP:      testGARP,
		})
	}
	return out
}

// quietHost is a fakeHost that keeps no record of VIPs and announcements
// (the fake's own bookkeeping would count as the engine's memory): it only
// tells the address watchers.
type quietHost struct{ *fakeHost }

func (h quietHost) AddVIPs(vs []netif.VIPAt) []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range vs {
		h.addrEvent(x.VIP, false)
	}
	return make([]error, len(vs))
}

func (h quietHost) SendARP(int, net.HardwareAddr, netip.Addr) error      { return nil }
func (h quietHost) SendNA(int, net.HardwareAddr, netip.Addr, bool) error { return nil }

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// waitStates polls e until every instance is in state and has heard a
// peer when peer is set.
func waitStates(b *testing.B, e *Engine, state string, peer bool) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := e.Snapshot(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		ok := true
		for _, in := range s.Instances {
			if in.State != state || peer && len(in.Peers) == 0 {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("instances not all %s after 60 s", state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// BenchmarkInstanceMemory reports the live heap one VRRP instance costs
// the engine at 1,000 instances (vigil-bench's scale mode on the fake
// LAN, interfaces as separate segments): B/instance of a master alone
// whose instances took over, and of a backup hearing that master's
// adverts. It takes about 6 s of real time per role (advert_int 1 s);
// run with -benchtime 1x:
//
//	go test -run '^$' -bench InstanceMemory -benchtime 1x ./internal/engine
//
// The figure is the engine's (specs, state machines, sockets' buffers,
// status bookkeeping) without the daemon's fixed cost (runtime, API,
// metrics) and without the kernel's socket buffers.
func BenchmarkInstanceMemory(b *testing.B) {
	const n = 1000
	ifaces := map[string]string{}
	for k := 1; k <= (n+254)/255; k++ {
		ifaces[fmt.Sprintf("eth%d", k)] = fmt.Sprintf("10.%d.0.1/24", k)
	}
	peerIfaces := map[string]string{}
	for k := range ifaces {
		peerIfaces[k] = fmt.Sprintf("10.%s.0.2/24", k[3:])
	}
	start := func(b *testing.B, lan *fakeLAN, name string, ifs map[string]string, specs []runspec.InstanceSpec) func() {
		h := newFakeHost(lan, name, ifs)
		e, err := New(runspec.Spec{Instances: specs}, Options{Net: quietHost{h}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		b.Cleanup(func() { cancel(); <-done })
		return func() {
			waitStates(b, e, "MASTER", false)
		}
	}
	b.Run("master", func(b *testing.B) {
		var per float64
		for range b.N {
			lan := &fakeLAN{segments: true}
			before := liveHeap()
			wait := start(b, lan, "m", ifaces, scaleInstances(n, true))
			wait()
			time.Sleep(2 * time.Second) // adverts flow, GARP rounds queued
			per = float64(liveHeap()-before) / n
		}
		b.ReportMetric(per, "B/instance")
	})
	b.Run("backup", func(b *testing.B) {
		var per float64
		for range b.N {
			lan := &fakeLAN{segments: true}
			start(b, lan, "m", ifaces, scaleInstances(n, true))()
			before := liveHeap()
			h := newFakeHost(lan, "b", peerIfaces)
			e, err := New(runspec.Spec{Instances: scaleInstances(n, false)}, Options{Net: quietHost{h}})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			waitStates(b, e, "BACKUP", true)
			time.Sleep(2 * time.Second)
			per = float64(liveHeap()-before) / n
			cancel()
			<-done
		}
		b.ReportMetric(per, "B/instance")
	})
}

// runMasters runs an engine of n masters on a fake host (255 VRIDs per
// interface) until every one is MASTER; the benchmark's cleanup stops it.
func runMasters(b *testing.B, n int) *Engine {
	b.Helper()
	ifaces := map[string]string{}
	for k := 1; k <= (n+254)/255; k++ {
		ifaces[fmt.Sprintf("eth%d", k)] = fmt.Sprintf("10.%d.0.1/24", k)
	}
	h := newFakeHost(&fakeLAN{segments: true}, "m", ifaces)
	e, err := New(runspec.Spec{Instances: scaleInstances(n, true)}, Options{Net: quietHost{h}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	waitStates(b, e, "MASTER", false)
	return e
}

// BenchmarkScrapeMemory reports what one /metrics scrape of 1,000 masters
// allocates (B/op) and the largest heap seen after a scrape (peak-MB): a
// scrape's garbage sets the heap's goal, so Prometheus scraping a daemon
// raises its resident memory by about that much.
//
//	go test -run '^$' -bench ScrapeMemory -benchtime 10x ./internal/engine
func BenchmarkScrapeMemory(b *testing.B) {
	e := runMasters(b, 1000)
	handler := metrics.Handler(e.Snapshot)
	var peak uint64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		if _, err := io.Copy(io.Discard, w.Body); err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	b.ReportMetric(float64(peak)/1e6, "peak-MB")
}

// BenchmarkSnapshotTurn reports how long one Snapshot of 1,000 masters
// holds the engine's loop (ns/op): the longest an advert waits behind a
// /metrics scrape or a status request. The web listeners answer two such
// requests at once (web.MaxInFlight), so a client scraping in a loop delays
// adverts by at most this, twice in a row.
//
//	go test -run '^$' -bench SnapshotTurn -benchtime 20x ./internal/engine
func BenchmarkSnapshotTurn(b *testing.B) {
	e := runMasters(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := e.Snapshot(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
