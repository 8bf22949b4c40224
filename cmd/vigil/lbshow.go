package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/lb/ipvs"
	"github.com/vigil-ha/vigil/internal/lb/nft"
)

// runLB is `vigil lb show`: the virtual services as the kernel holds them,
// read back from the load balancer backend (ipvsadm -Ln's layout). It only
// reads: the nftables table and IPVS services are left as they are.
func runLB(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lb", "show [--backend auto|nftables|ipvs] [--table NAME] [--api-socket PATH]", stderr)
	backend := fs.String("backend", "auto", "load balancer backend: auto (IPVS when the kernel has it), nftables or ipvs")
	table := fs.String("table", "vigil", "nftables: the inet table vigil owns")
	sock := fs.String("api-socket", api.DefaultSocket, "the daemon's control API socket, asked which real servers are down")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 || fs.Arg(0) != "show" {
		fmt.Fprintf(stderr, "vigil lb: want the subcommand show, got %q\n\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return 2
	}
	name, err := lb.ChooseBackend(*backend, ipvs.Available())
	if err != nil {
		fmt.Fprintf(stderr, "vigil: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var b lb.Backend
	var sr lb.StatsReader
	switch name {
	case lb.BackendIPVS:
		// A fresh IPVS backend manages nothing yet: show everything.
		b, err = ipvs.New(ipvs.Options{Keep: true, All: true, Logger: log})
		sr = ipvs.StatsReader{}
	default:
		b, err = nft.New(nft.Options{Table: *table, Keep: true, Logger: log})
		sr = nft.StatsReader{Table: *table}
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil: %v\n", err)
		return 1
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := b.Observe(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "vigil: %v\n", err)
		return 1
	}
	opts := lb.ShowOptions{}
	if stats, err := sr.Stats(ctx); err != nil {
		fmt.Fprintf(stderr, "vigil: kernel counters: %v\n", err)
	} else {
		opts.Stats = &stats
	}
	health, daemonErr := daemonHealth(ctx, *sock)
	opts.DestState = func(dk lb.DestKey, d lb.Dest) string { return destState(dk, d, health) }
	fmt.Fprintf(stdout, "Backend %s", name)
	var flows map[lb.DestKey]int
	if name == lb.BackendNFTables {
		fmt.Fprintf(stdout, " (table inet %s, direct routing in table netdev %s_dr)", *table, *table)
		// Direct-routing services: the flows each real server holds.
		if fc, ok := b.(interface {
			Flows(context.Context) (map[lb.DestKey]int, error)
		}); ok {
			if flows, err = fc.Flows(ctx); err != nil {
				fmt.Fprintf(stderr, "vigil: %v\n", err)
				return 1
			}
		}
	}
	fmt.Fprintln(stdout)
	opts.Flows = flows
	if err := st.FormatShow(stdout, opts); err != nil && !errors.Is(err, io.ErrShortWrite) {
		return 1
	}
	if daemonErr != nil {
		fmt.Fprintf(stdout, "(no answer from a daemon at %s: a weight-0 real server shows as drained, whether its checks fail or not)\n", *sock)
	}
	return 0
}

// healthKey names a real server of a kernel service the same way from a
// status snapshot and from the kernel: "TCP/10.0.0.1/80 10.0.0.11:80",
// "FWM/7 10.0.0.11:0".
func healthKey(k lb.ServiceKey, rs netip.AddrPort) string {
	if k.IsFWMark() {
		return fmt.Sprintf("FWM/%d %s", k.FWMark, netip.AddrPortFrom(rs.Addr(), 0))
	}
	return fmt.Sprintf("%s/%s/%d %s", k.Proto, k.Addr, k.Port, rs)
}

// daemonHealth asks the running daemon which real servers pass their
// checks.
func daemonHealth(ctx context.Context, sock string) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := api.NewClient(sock).Status(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, vs := range s.VirtualServers {
		var k lb.ServiceKey
		switch {
		case vs.FWMark != 0:
			k = lb.ServiceKey{FWMark: vs.FWMark}
		case vs.VIP != "":
			a, err := netip.ParseAddr(vs.VIP)
			if err != nil {
				continue
			}
			k = lb.ServiceKey{Addr: a, Port: uint16(vs.Port), Proto: map[string]lb.Protocol{"TCP": lb.TCP, "UDP": lb.UDP, "SCTP": lb.SCTP}[vs.Protocol]}
		default:
			continue // a group: its kernel services are not named in the status
		}
		for _, rs := range vs.RealServers {
			if a, err := netip.ParseAddrPort(rs.Addr); err == nil {
				out[healthKey(k, a)] = rs.Healthy
			}
		}
	}
	return out, nil
}

// destState is up when the destination takes new connections, down when
// it has weight 0 because its checks fail (the daemon says so), drained
// when it has weight 0 otherwise (configured so, or no daemon to ask).
func destState(dk lb.DestKey, d lb.Dest, health map[string]bool) string {
	if d.Weight > 0 {
		return "up"
	}
	if ok, known := health[healthKey(dk.Service, dk.Addr)]; known && !ok {
		return "down"
	}
	return "drained"
}
