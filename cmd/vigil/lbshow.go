package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/lb/ipvs"
	"github.com/vigil-ha/vigil/internal/lb/nft"
)

// runLB is `vigil lb show`: the virtual services as the kernel holds them,
// read back from the load balancer backend (ipvsadm -Ln's layout). It only
// reads: the nftables table and IPVS services are left as they are.
func runLB(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lb", "show [--backend auto|nftables|ipvs] [--table NAME]", stderr)
	backend := fs.String("backend", "auto", "load balancer backend: auto (IPVS when the kernel has it), nftables or ipvs")
	table := fs.String("table", "vigil", "nftables: the inet table vigil owns")
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
	switch name {
	case lb.BackendIPVS:
		// A fresh IPVS backend manages nothing yet: show everything.
		b, err = ipvs.New(ipvs.Options{Keep: true, All: true, Logger: log})
	default:
		b, err = nft.New(nft.Options{Table: *table, Keep: true, Logger: log})
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
	fmt.Fprintf(stdout, "Backend %s", name)
	if name == lb.BackendNFTables {
		fmt.Fprintf(stdout, " (table inet %s)", *table)
	}
	fmt.Fprintln(stdout)
	if err := st.Format(stdout); err != nil && !errors.Is(err, io.ErrShortWrite) {
		return 1
	}
	return 0
}
