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
	"path/filepath"
	"runtime"
	"runtime/debug"
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
		"version":    {"print the version", runVersion},
		"run":        {"run the daemon (keepalived-compatible flags: -f FILE, -P, -C, -p PIDFILE, -t)", runRun},
		"status":     {"show the running daemon's instances, trackers and servers", runStatus},
		"handover":   {"hand an instance over to a backup without a gap (maintenance)", runHandover},
		"reload":     {"check the configuration and apply the difference", runReload},
		"check":      {"check a keepalived.conf and print every problem", runCheck},
		"keywords":   {"list every keepalived.conf keyword and whether vigil acts on it", runKeywords},
		"lb":         {"show the kernel's virtual services (lb show)", runLB},
		"convert":    {"write a keepalived.conf equivalent of a heartbeat ha.d (ha.cf, haresources)", runConvert},
		"genhash":    {"print the MD5 digest of a page for HTTP_GET/SSL_GET (keepalived's genhash)", runGenhash},
		"man":        {"print the vigil(8) manual page, generated from the commands' own flags", runMan},
		"completion": {"print a bash completion script (vigil completion bash)", runCompletion},
		"demo":       {"replay the keepalived MASTER/BACKUP tutorial in network namespaces, with measured failovers (root)", runDemo},
	}
}

func main() {
	os.Exit(dispatchAs(filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, os.Stderr))
}

// dispatchAs runs the command line of the program named name: keepalived's
// when vigil was installed as /usr/sbin/keepalived, heartbeat's when it
// replaces heartbeat's binary, vigil's otherwise.
func dispatchAs(name string, args []string, stdout, stderr io.Writer) int {
	switch name {
	case keepalivedName:
		return runKeepalived(args, stdout, stderr)
	case heartbeatName:
		return runHeartbeat(args, stdout, stderr)
	case genhashName:
		return runGenhash(args, stdout, stderr)
	}
	return dispatch(args, stdout, stderr)
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		usage(stderr, cmds)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 {
			if c, ok := cmds[args[1]]; ok {
				return c.run([]string{"--help"}, stdout, stderr)
			}
		}
		usage(stdout, cmds)
		return 0
	case "-v", "--version", "-V":
		return runVersion(args[1:], stdout, stderr)
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "vigil: unknown command %q\n", args[0])
		if s := suggest(args[0], cmds); len(s) > 0 {
			fmt.Fprintf(stderr, "\nDid you mean\n\tvigil %s\n", strings.Join(s, "\n\tvigil "))
		}
		fmt.Fprintln(stderr, "\nRun 'vigil help' for the list of commands.")
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
	fmt.Fprintf(w, "\nRun 'vigil <command> -h' for a command's flags; 'vigil --version' for the version.\n")
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := noArgs(fs); !ok {
		return code
	}
	fmt.Fprintf(stdout, "vigil %s\n", buildVersion())
	return 0
}

// buildVersion is vigil's version with the toolchain and platform, e.g.
// "1.2.0 (go1.26.0, linux/amd64)".
func buildVersion() string {
	v := strings.TrimSpace(version)
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("%s (%s, %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
