// Command vigil is a high-availability daemon for Linux: VRRP (v2/v3) virtual
// addresses compatible with keepalived, health-checked virtual services on the
// kernel's load balancer, and heartbeat-style resource groups.
//
// Each subcommand lives in its own file as a function with the signature of
// command.run; main only dispatches.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands; each appears here once it is real.
func commands() map[string]command {
	return map[string]command{
		"version":  {"print the version", runVersion},
		"run":      {"run the daemon (keepalived-compatible flags: -f FILE, -P, -C, -p PIDFILE, -t)", runRun},
		"status":   {"show the running daemon's instances, trackers and servers", runStatus},
		"handover": {"hand an instance over to a backup without a gap (maintenance)", runHandover},
		"reload":   {"check the configuration and apply the difference", runReload},
		"check":    {"check a keepalived.conf and print every problem", runCheck},
		"keywords": {"list every keepalived.conf keyword and whether vigil acts on it", runKeywords},
		"lb":       {"show the kernel's virtual services (lb show)", runLB},
		"convert":  {"write a keepalived.conf equivalent of a heartbeat ha.d (ha.cf, haresources)", runConvert},
		"genhash":  {"print the MD5 digest of a page for HTTP_GET/SSL_GET (keepalived's genhash)", runGenhash},
		"demo":     {"replay the keepalived MASTER/BACKUP tutorial in network namespaces, with measured failovers (root)", runDemo},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "vigil: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: vigil <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'vigil <command> -h' for a command's flags.\n")
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "vigil %s\n", strings.TrimSpace(version))
	return 0
}
