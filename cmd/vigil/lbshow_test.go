package main

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/lb/nft"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
)

// lbDaemon answers the status of TestLBShow's virtual server: one real
// server up, the other failing its checks.
type lbDaemon struct{}

func (lbDaemon) Snapshot(context.Context) (status.Snapshot, error) {
	return status.Snapshot{VirtualServers: []status.VirtualServer{{Name: "[192.168.118.110]:tcp:80", VIP: "192.168.118.110", Port: 80, Protocol: "TCP",
		RealServers: []status.RealServer{{Addr: "192.168.118.129:80", Weight: 1, Healthy: true}, {Addr: "192.168.118.131:80", Healthy: false}}}}}, nil
}
func (lbDaemon) Reload(context.Context) (api.ReloadResult, error) {
	return api.ReloadResult{}, errors.New("no")
}
func (lbDaemon) Handover(context.Context, string) error { return errors.New("no") }
func (lbDaemon) Reclaim(context.Context, string) error  { return errors.New("no") }

// `vigil lb show` prints what the nftables backend holds, and changes
// nothing.
func TestLBShow(t *testing.T) {
	bin := netnstest.VigilBinary(t)
	l := netnstest.New(t, "lbshow")
	h := netnstest.AddHost(t, l, "dir", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.0.0.1/24"}})
	var be *nft.Backend
	if err := h.Do(func() error { var err error; be, err = nft.New(nft.Options{}); return err }); err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	k := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}
	st := lb.NewState()
	st.Services[k] = lb.Service{Scheduler: "rr", Timeout: 50, Netmask: 0xffffffff}
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("192.168.118.129:80")}] = lb.Dest{Weight: 1, Method: lb.NAT}
	st.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort("192.168.118.131:80")}] = lb.Dest{Weight: 0, Method: lb.NAT}
	// A direct-routing service, with its flow counts.
	dk := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("10.0.0.100"), Port: 80}
	st.Services[dk] = lb.Service{Scheduler: "wrr", Netmask: 0xffffffff}
	st.Dests[lb.DestKey{Service: dk, Addr: netip.MustParseAddrPort("10.0.0.2:80")}] = lb.Dest{Weight: 2, Method: lb.DR}
	if err := be.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	before, err := h.Run("nft", "list", "table", "inet", "vigil")
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Run(bin, "lb", "show", "--backend", "nftables")
	if err != nil || !strings.Contains(out, "drained") {
		t.Fatalf("lb show: %v\n%s", err, out)
	}
	want := strings.Join([]string{
		"Backend nftables (table inet vigil, direct routing in table netdev vigil_dr)",
		"Prot LocalAddress:Port Scheduler Flags",
		"  -> RemoteAddress:Port                  Forward Weight State   Conns InPkts OutPkts InBytes OutBytes Flows",
		"TCP  10.0.0.100:80 wrr                                          -     -      -       -       -        0",
		"  -> 10.0.0.2:80                         Route   2      up      -     -      -       -       -        0",
		"TCP  192.168.118.110:80 rr persistent 50                        0     0      0       0       0        -",
		"  -> 192.168.118.129:80                  Masq    1      up      0     0      0       0       0        -",
		"  -> 192.168.118.131:80                  Masq    0      drained 0     0      0       0       0        -",
		"(no answer from a daemon at " + filepath.Join(t.TempDir(), "none.sock") + ": a weight-0 real server shows as drained, whether its checks fail or not)",
		"",
	}, "\n")
	none := strings.TrimSuffix(strings.TrimPrefix(strings.Split(want, "\n")[8], "(no answer from a daemon at "), ": a weight-0 real server shows as drained, whether its checks fail or not)")
	out, err = h.Run(bin, "lb", "show", "--backend", "nftables", "--api-socket", none)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// With a daemon that says 192.168.118.131:80 fails its checks, the
	// weight-0 real server is down, not drained.
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln, lbDaemon{}, nil) }()
	defer func() { cancel(); <-done }()
	out, err = h.Run(bin, "lb", "show", "--backend", "nftables", "--api-socket", sock)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "192.168.118.131:80                  Masq    0      down ") || !strings.Contains(out, "192.168.118.129:80                  Masq    1      up ") ||
		strings.Contains(out, "no answer") {
		t.Errorf("with a daemon:\n%s", out)
	}
	if after, _ := h.Run("nft", "list", "table", "inet", "vigil"); after != before {
		t.Errorf("lb show changed the table")
	}
	if out, err := h.Run(bin, "lb", "show", "--backend", "ipvs"); err == nil || !strings.Contains(out, "no IPVS") {
		t.Errorf("--backend ipvs without IPVS: %q %v", out, err)
	}
}
