package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/vigil-ha/vigil/internal/check/probe"
)

// genhashName is the name vigil runs as genhash under: keepalived's
// package installs /usr/bin/genhash as a symbolic link to
// ../sbin/keepalived, which dispatches on its own name, so vigil in
// keepalived's place is reached as genhash too.
const genhashName = "genhash"

// genhashUsage mirrors keepalived 2.2.7's genhash usage text.
const genhashUsage = `Usage: vigil genhash COMMAND [OPTIONS]
Commands:
   -s server-address -p port -u url
   -S -s server-address -p port -u url
   -h

Options:
Either long or short options are allowed.
   --use-ssl         -S       Use SSL connection to remote server.
   --use-sni         -I       Use SNI during SSL handshake (uses virtualhost setting; see -V).
   --server          -s       Use the specified remote server address.
   --port            -p       Use the specified remote server port.
   --url             -u       Use the specified remote server url.
   --use-virtualhost -V       Use the specified virtualhost in GET query.
   --verbose         -v       Use verbose mode output.
   --help            -h       Display this short inlined help screen.
   --fwmark          -m       Use the specified FW mark.
   --protocol        -P       Use the specified HTTP protocol - '1.0', 1.0c', '1.1'.
                                1.0c means 1.0 with 'Connection: close'
   --timeout         -t       Timeout in seconds (default 5)
   --hash            -H       Hash algorithm; only md5 (older genhash's option)
`

// runGenhash is `vigil genhash`: keepalived's genhash, which prints the MD5
// digest of a page as HTTP_GET / SSL_GET compute it, for their `digest`.
// The digest line is genhash's; unlike genhash, a failure is reported on
// stderr with exit status 1.
func runGenhash(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("genhash", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	server := fs.StringP("server", "s", "", "")
	port := fs.StringP("port", "p", "", "")
	url := fs.StringP("url", "u", "", "")
	vhost := fs.StringP("use-virtualhost", "V", "", "")
	ssl := fs.BoolP("use-ssl", "S", false, "")
	sni := fs.BoolP("use-sni", "I", false, "")
	verbose := fs.BoolP("verbose", "v", false, "")
	help := fs.BoolP("help", "h", false, "")
	fwmark := fs.StringP("fwmark", "m", "", "")
	proto := fs.StringP("protocol", "P", "1.0", "")
	timeout := fs.StringP("timeout", "t", "5", "")
	hash := fs.StringP("hash", "H", "md5", "")
	usage := func(format string, a ...any) int {
		if format != "" {
			fmt.Fprintf(stderr, format+"\n", a...)
		}
		fmt.Fprint(stderr, genhashUsage)
		return 1
	}
	if err := fs.Parse(args); err != nil {
		return usage("%v", err)
	}
	if *help {
		fmt.Fprint(stdout, genhashUsage)
		return 0
	}
	if fs.NArg() > 0 {
		return usage("Unexpected argument(s): %s", strings.Join(fs.Args(), " "))
	}
	if *server == "" || *port == "" || *url == "" {
		return usage("server (-s), port (-p) and url (-u) are required")
	}
	addr, err := netip.ParseAddr(strings.Trim(*server, "[]"))
	if err != nil {
		return usage("server should be an IP, not %s", *server)
	}
	pn, err := strconv.Atoi(*port)
	if err != nil || pn <= 0 || pn > 65535 {
		return usage("invalid port number '%s'", *port)
	}
	p, err := probe.ParseProtocol(*proto)
	if err != nil {
		return usage("invalid HTTP protocol version '%s'", *proto)
	}
	secs, err := strconv.ParseUint(strings.TrimSpace(*timeout), 10, 32)
	if err != nil || secs == 0 {
		return usage("invalid timeout '%s'", *timeout)
	}
	var mark uint64
	if *fwmark != "" {
		if mark, err = strconv.ParseUint(strings.TrimSpace(*fwmark), 10, 32); err != nil {
			return usage("invalid fwmark '%s'", *fwmark)
		}
	}
	if !strings.EqualFold(*hash, "md5") {
		return usage("unsupported hash '%s': keepalived's digest is MD5", *hash)
	}

	h := &probe.HTTP{
		Conn:        probe.Conn{Addr: netip.AddrPortFrom(addr, uint16(pn)), FWMark: uint32(mark), Timeout: time.Duration(secs) * time.Second},
		VirtualHost: *vhost,
		Protocol:    p,
		SSL:         *ssl,
		SNI:         *sni,
	}
	u := &probe.URL{Path: *url}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var tr *probe.Trace
	if *verbose {
		tr = verboseTrace(stdout)
	}
	start := time.Now()
	resp, err := h.Get(ctx, u, tr)
	if err != nil {
		fmt.Fprintf(stderr, "vigil genhash: %v\n", err)
		return 1
	}
	sum := hex.EncodeToString(resp.Digest[:])
	if *verbose {
		fmt.Fprintf(stdout, "\n%s", delim("    HTML hash resulting    "))
		dumpBuffer(stdout, resp.Digest[:])
		fmt.Fprint(stdout, delim(" HTML hash final resulting "))
		fmt.Fprintln(stdout, sum)
		fmt.Fprintf(stdout, "\nGlobal response time for [%s] = %d usecs\n", *url, time.Since(start).Microseconds())
		return 0
	}
	fmt.Fprintln(stdout, sum)
	return 0
}

// delim frames a section title as genhash's verbose output does.
func delim(title string) string {
	return "-----------------------[" + title + "]-----------------------\n"
}

// verboseTrace prints the header and body as keepalived's genhash -v does
// (check_http.c http_dump_header, lib/utils.c dump_buffer).
func verboseTrace(w io.Writer) *probe.Trace {
	body := false
	return &probe.Trace{
		Header: func(raw []byte) {
			fmt.Fprint(w, delim("    HTTP Header Buffer    "))
			dumpBuffer(w, raw)
			fmt.Fprint(w, delim(" HTTP Header Ascii Buffer "))
			fmt.Fprintf(w, "%s\n", raw)
		},
		Body: func(chunk []byte) {
			if !body {
				body = true
				fmt.Fprint(w, delim("        HTML Buffer        "))
			}
			dumpBuffer(w, chunk)
		},
	}
}

// dumpBuffer is keepalived's dump_buffer: 16 bytes a line, "%.4d" decimal
// offset, two groups of eight separated by " -", then the printable ASCII.
func dumpBuffer(w io.Writer, b []byte) {
	for off := 0; off < len(b); off += 16 {
		var line strings.Builder
		fmt.Fprintf(&line, "%.4d ", off&0xffff)
		for i := 0; i < 16; i++ {
			if off+i < len(b) {
				fmt.Fprintf(&line, "%3.2x", b[off+i])
			} else {
				line.WriteString("   ")
			}
			if i == 7 {
				line.WriteString(" -")
			}
		}
		line.WriteString("   ")
		for i := 0; i < 16; i++ {
			switch {
			case off+i >= len(b):
				line.WriteByte(' ')
			case b[off+i] >= 0x20 && b[off+i] <= 0x7e:
				line.WriteByte(b[off+i])
			default:
				line.WriteByte('.')
			}
		}
		fmt.Fprintln(w, line.String())
	}
}
