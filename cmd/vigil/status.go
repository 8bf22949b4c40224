package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/status"
)

func clientFlags(name, synopsis string, stderr io.Writer) (*pflag.FlagSet, *string) {
	fs := newFlagSet(name, synopsis, stderr)
	sock := fs.String("api-socket", api.DefaultSocket, "the daemon's control API socket")
	return fs, sock
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs, sock := clientFlags("status", "[--json] [--api-socket PATH]", stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := noArgs(fs); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := api.NewClient(*sock).Status(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "vigil status: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return 1
		}
		return 0
	}
	if err := status.WriteText(stdout, s); err != nil {
		return 1
	}
	return 0
}

func runHandover(args []string, stdout, stderr io.Writer) int {
	fs, sock := clientFlags("handover", "[--reclaim] [--api-socket PATH] [INSTANCE]", stderr)
	reclaim := fs.Bool("reclaim", false, "end an earlier handover: let the instance preempt again")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "vigil handover: one instance at most, got %d\n\n", fs.NArg())
		fs.Usage()
		return 2
	}
	name := fs.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := api.NewClient(*sock)
	var err error
	if *reclaim {
		err = c.Reclaim(ctx, name)
	} else {
		err = c.Handover(ctx, name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil handover: %v\n", err)
		return 1
	}
	what := "every master instance"
	if name != "" {
		what = "instance " + name
	}
	if *reclaim {
		fmt.Fprintf(stdout, "%s may preempt again\n", what)
	} else {
		fmt.Fprintf(stdout, "%s is handing over (make before break); see vigil status\n", what)
	}
	return 0
}

func runReload(args []string, stdout, stderr io.Writer) int {
	fs, sock := clientFlags("reload", "[--api-socket PATH]", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := noArgs(fs); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := api.NewClient(*sock).Reload(ctx)
	for _, d := range r.Diagnostics {
		fmt.Fprintln(stderr, d)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil reload: %v\n", err)
		return 1
	}
	if !r.Applied {
		fmt.Fprintln(stderr, "vigil reload: configuration rejected; the running one stays")
		return 1
	}
	for _, c := range r.Changes {
		fmt.Fprintln(stdout, c)
	}
	fmt.Fprintf(stdout, "reloaded in %s (%d changes)\n", r.Duration, r.ChangeCount())
	return 0
}
