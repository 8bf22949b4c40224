package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// newFlagSet returns the flag set of subcommand name. Every subcommand's
// help has the same shape: a usage line, what the command does, its flags.
func newFlagSet(name, synopsis string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("vigil "+name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() { writeUsage(stderr, name, synopsis, fs) }
	if c, ok := stderr.(*flagCapture); ok {
		c.fs, c.synopsis = fs, synopsis
	}
	return fs
}

func writeUsage(w io.Writer, name, synopsis string, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "usage: vigil %s %s\n", name, synopsis)
	if c, ok := commands()[name]; ok {
		fmt.Fprintf(w, "\n%s\n", c.summary)
	}
	if fs.HasAvailableFlags() {
		fmt.Fprintf(w, "\nflags:\n%s", fs.FlagUsages())
	}
}

// parseFlags parses args into fs. When it returns ok false the command
// ends with code: 0 after -h (the usage was printed), 2 after a bad flag
// (the error and the usage were printed).
func parseFlags(fs *pflag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, pflag.ErrHelp):
		return 0, false
	}
	fmt.Fprintf(fs.Output(), "%s: %v\n\n", fs.Name(), err)
	fs.Usage()
	return 2, false
}

// noArgs ends a command that takes no positional arguments when it was
// given some.
func noArgs(fs *pflag.FlagSet) (code int, ok bool) {
	if fs.NArg() == 0 {
		return 0, true
	}
	fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n\n", fs.Name(), fs.Arg(0))
	fs.Usage()
	return 2, false
}

// suggest returns the command names close to name (a typo, a transposition
// or a prefix), best first.
func suggest(name string, cmds map[string]command) []string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for n := range cmds {
		d := editDistance(name, n)
		if len(name) >= 2 && strings.HasPrefix(n, name) {
			d = min(d, 1)
		}
		if d <= 2 && d < len(n) {
			cs = append(cs, cand{n, d})
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// privilegeHint says what vigil run needs when the process lacks the
// capabilities to manage addresses and raw VRRP sockets; "" when it has
// them (or they cannot be read).
func privilegeHint() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		var caps uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &caps); err != nil {
			return ""
		}
		const netAdmin, netRaw = 12, 13
		var missing []string
		if caps&(1<<netAdmin) == 0 {
			missing = append(missing, "CAP_NET_ADMIN")
		}
		if caps&(1<<netRaw) == 0 {
			missing = append(missing, "CAP_NET_RAW")
		}
		if len(missing) == 0 {
			return ""
		}
		return fmt.Sprintf("vigil run manages addresses, routes and raw VRRP sockets: run it as root or with CAP_NET_ADMIN and CAP_NET_RAW (this process lacks %s)", strings.Join(missing, " and "))
	}
	return ""
}
