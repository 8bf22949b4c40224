package director

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/script"
)

// Every real server's notify_down runs when many fail at once: keepalived
// 2.2.7 forks each one (ipwrapper.c do_rs_notifies, notify_exec). The
// scripts of different real servers must not share one queue whose bound
// discards all but the newest.
func TestDirectorNotifiesEveryRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs shell scripts")
	}
	const n = 12
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes")
	sh := filepath.Join(dir, "note.sh")
	// A script that takes a moment, as one that mails or calls an API.
	if err := os.WriteFile(sh, []byte("#!/bin/sh\nsleep 0.3\necho \"$1\" >> "+notes+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	vs := lb.VirtualServer{
		Addr: netip.MustParseAddr("192.168.118.110"), Port: 80, Proto: lb.TCP, Family: lb.IPv4, Scheduler: "rr", Method: lb.NAT, Quorum: 1,
	}
	spec := runspec.DirectorSpec{Scripts: map[string]*script.Prepared{}}
	pol := check.Policy{Kind: check.KindTCP, DelayLoop: 100 * time.Millisecond, DelayBeforeRetry: 100 * time.Millisecond}
	var vds []*verdict
	var want []string
	for i := range n {
		addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})
		cmd := sh + " " + addr.String()
		p, err := script.Prepare(script.Command{Args: []string{sh, addr.String()}, What: "notify_down"}, script.Policy{})
		if err != nil {
			t.Fatal(err)
		}
		spec.Scripts[cmd] = p
		vs.Reals = append(vs.Reals, lb.RealServer{Addr: addr, Port: 80, Weight: 1, Method: lb.NAT, NotifyDown: cmd})
		want = append(want, addr.String())
	}
	spec.VirtualServers = []lb.VirtualServer{vs}
	for i, r := range vs.Reals {
		v := &verdict{ok: true}
		vds = append(vds, v)
		spec.Checks = append(spec.Checks, runspec.RealCheck{
			ID: lb.RealID{VS: vs.ID(), Addr: r.AddrPort()}, Weight: 1,
			Checkers: []runspec.CheckerSpec{{Name: fmt.Sprint("TCP_CHECK ", i), Key: "tcp", Policy: pol, Checker: v}},
		})
	}
	nt := notify.New(notify.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ndone := make(chan error, 1)
	go func() { ndone <- nt.Run(ctx) }()
	d, err := New(spec, Options{Backend: &kernelBackend{kernel: lb.NewState()}, Resync: time.Hour, Notifier: nt})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	time.Sleep(500 * time.Millisecond)
	for _, v := range vds {
		v.set(false)
	}
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(notes)
		got = strings.Fields(string(b))
		if len(got) >= n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("notify_down ran for %v, want every real server %v", got, want)
	}
	cancel()
	<-done
	<-ndone
}
