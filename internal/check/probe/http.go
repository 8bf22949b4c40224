package probe

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// Protocol is the HTTP version HTTP_GET speaks (http_protocol).
type Protocol uint8

const (
	// HTTP10 sends "HTTP/1.0" (keepalived's default).
	HTTP10 Protocol = iota
	// HTTP10Close sends "HTTP/1.0" with "Connection: close" ("1.0C").
	HTTP10Close
	// HTTP11 sends "HTTP/1.1" with "Connection: close".
	HTTP11
)

// ParseProtocol parses http_protocol's argument: "1.0", "1.0C" (or "1.0c"),
// "1.1".
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "1.0":
		return HTTP10, nil
	case "1.0C", "1.0c":
		return HTTP10Close, nil
	case "1.1":
		return HTTP11, nil
	}
	return 0, fmt.Errorf("probe: invalid http_protocol %q: want 1.0, 1.0C or 1.1", s)
}

// StatusRange is an inclusive range of HTTP status codes (status_code 200 or
// 200-299).
type StatusRange struct{ Min, Max int }

// DefaultStatus is what a url accepts when it names no status_code:
// keepalived 2.2.7 check_http.c url_check() sets 200-299
// (HTTP_DEFAULT_STATUS_CODE_MIN/MAX).
var DefaultStatus = []StatusRange{{200, 299}}

// ParseStatusCodes parses status_code's arguments ("200", "200-299",
// "503"), each within 100-599 as keepalived requires.
func ParseStatusCodes(args []string) ([]StatusRange, error) {
	var out []StatusRange
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		min, err1 := strconv.Atoi(lo)
		max := min
		var err2 error
		if isRange {
			max, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || min < 100 || max > 599 || min > max {
			return nil, fmt.Errorf("probe: invalid HTTP status code %q: want 100-599 or a range of them", a)
		}
		out = append(out, StatusRange{min, max})
	}
	return out, nil
}

// URL is one url block of HTTP_GET / SSL_GET.
type URL struct {
	// Path is sent as is in the request line (path).
	Path string
	// Digest, when set, is the MD5 of the body in 32 hex digits, as genhash
	// prints it (digest).
	Digest string
	// Status lists the accepted status codes; empty means 200-299.
	Status []StatusRange
	// VirtualHost overrides the checker's virtual host for this url.
	VirtualHost string
	// Regex, when set, must match the body (regex). keepalived uses PCRE2;
	// vigil uses Go's RE2 syntax, which covers the simple patterns.
	Regex *regexp.Regexp
	// RegexNoMatch inverts Regex: a match fails the check.
	RegexNoMatch bool
	// RegexMinOffset and RegexMaxOffset bound where a match may start
	// (regex_min_offset, regex_max_offset; 0 means unbounded).
	RegexMinOffset, RegexMaxOffset int
}

// HTTP is HTTP_GET, or SSL_GET when SSL is set.
//
// Concurrency: Check and CheckStep may be called concurrently.
type HTTP struct {
	Conn Conn
	URLs []URL
	// VirtualHost is the Host header and SNI name when a url names none,
	// already resolved from the checker, real server and virtual server.
	// Empty: the Host header is the target's "address:port".
	VirtualHost string
	Protocol    Protocol
	// SSL speaks TLS (SSL_GET).
	SSL bool
	// SNI sends the virtual host as TLS server name (enable_sni).
	SNI bool
	// TLS optionally carries client certificates (SSL { certificate key })
	// and, in RootCAs, the authorities to verify the server against. With
	// no RootCAs the server's certificate is not verified, as keepalived
	// never verifies it.
	TLS *tls.Config
}

// keepalived 2.2.7 check_http.h: GET_BUFFER_LENGTH and MAX_BUFFER_LENGTH.
const (
	maxRequest = 2048
	maxHeader  = 4096 - 1
	// maxRegexBody bounds the body kept for regex matching.
	maxRegexBody = 1 << 20
)

// Validate reports options keepalived would reject.
func (h *HTTP) Validate() error {
	if err := h.Conn.Validate(); err != nil {
		return err
	}
	if len(h.URLs) == 0 {
		return errors.New("probe: HTTP_GET/SSL_GET checker has no urls")
	}
	for i, u := range h.URLs {
		if u.Path == "" {
			return fmt.Errorf("probe: url %d has no path", i+1)
		}
		if u.Digest != "" {
			if b, err := hex.DecodeString(u.Digest); err != nil || len(b) != md5.Size {
				return fmt.Errorf("probe: url %s: digest %q: want 32 hex digits", u.Path, u.Digest)
			}
		}
	}
	return nil
}

// Steps returns the number of urls.
func (h *HTTP) Steps() int { return len(h.URLs) }

// Check checks every url in turn and stops at the first failure. The Runner
// uses CheckStep instead, one url per attempt as keepalived does.
func (h *HTTP) Check(ctx context.Context) check.Result {
	start := time.Now()
	var r check.Result
	for i := range h.URLs {
		r = h.CheckStep(ctx, i)
		if !r.OK {
			break
		}
	}
	r.Latency = elapsed(start)
	return r
}

// CheckStep fetches url i and judges the response as keepalived 2.2.7
// check_http.c http_handle_response() does: some header must arrive, the
// status must be accepted, then the digest and the regex must match.
func (h *HTTP) CheckStep(ctx context.Context, i int) check.Result {
	start := time.Now()
	if i < 0 || i >= len(h.URLs) {
		return check.Result{Reason: fmt.Sprintf("no url %d", i), Latency: elapsed(start)}
	}
	u := &h.URLs[i]
	resp, err := h.Get(ctx, u, nil)
	return h.judge(u, resp, err, start)
}

// judge turns a GET's outcome into the result of the check of u that began
// at start.
func (h *HTTP) judge(u *URL, resp *Response, err error, start time.Time) check.Result {
	fail := func(format string, args ...any) check.Result {
		return check.Result{Reason: fmt.Sprintf("GET %s: ", u.Path) + fmt.Sprintf(format, args...), Latency: elapsed(start)}
	}
	if err != nil {
		return fail("%v", err).WithErr(err)
	}
	if !statusOK(resp.Status, u.Status) {
		return fail("status %d, want %s", resp.Status, formatStatus(u.Status))
	}
	what := "status " + strconv.Itoa(resp.Status)
	if u.Digest != "" {
		var got [2 * md5.Size]byte
		hex.Encode(got[:], resp.Digest[:])
		if !strings.EqualFold(string(got[:]), u.Digest) {
			return fail("digest mismatch: got %s, want %s", got[:], strings.ToLower(u.Digest))
		}
		what += ", digest ok"
	}
	if u.Regex != nil {
		if matched := regexMatch(u, resp.Body); matched == u.RegexNoMatch {
			if u.RegexNoMatch {
				return fail("regex %q matched (regex_no_match)", u.Regex)
			}
			return fail("regex %q not found", u.Regex)
		}
		what += ", regex ok"
	}
	return check.Result{OK: true, Reason: "GET " + u.Path + ": " + what, Latency: elapsed(start)}
}

func statusOK(code int, ranges []StatusRange) bool {
	if len(ranges) == 0 {
		ranges = DefaultStatus
	}
	for _, r := range ranges {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}

func formatStatus(ranges []StatusRange) string {
	if len(ranges) == 0 {
		ranges = DefaultStatus
	}
	var b strings.Builder
	for i, r := range ranges {
		if i > 0 {
			b.WriteByte(' ')
		}
		if r.Min == r.Max {
			fmt.Fprintf(&b, "%d", r.Min)
		} else {
			fmt.Fprintf(&b, "%d-%d", r.Min, r.Max)
		}
	}
	return b.String()
}

func regexMatch(u *URL, body []byte) bool {
	min := u.RegexMinOffset
	if min > len(body) {
		return false
	}
	loc := u.Regex.FindIndex(body[min:])
	if loc == nil {
		return false
	}
	return u.RegexMaxOffset == 0 || min+loc[0] <= u.RegexMaxOffset
}

// Response is what one keepalived-style GET read.
type Response struct {
	// Status is the status code as keepalived extracts it (0 when the
	// status line is not "VERSION SP 3DIGIT SP ...").
	Status int
	// Header is the raw header, up to and including the empty line.
	Header []byte
	// ContentLength is the Content-Length header's value, -1 without one.
	ContentLength int64
	// BodyBytes counts the bytes received after the header.
	BodyBytes int64
	// Digest is the MD5 of the body as keepalived computes it: every byte
	// after the header up to Content-Length, or up to the end of the
	// stream without one (a chunked body is hashed with its chunk framing).
	Digest [md5.Size]byte
	// Body holds the body when the url has a regex (at most 1 MiB).
	Body []byte
}

// Trace observes a GET as it happens (genhash's verbose output).
type Trace struct {
	// Header is called once with the raw header.
	Header func(raw []byte)
	// Body is called with each piece of body that enters the digest.
	Body func(chunk []byte)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// Request returns the request keepalived 2.2.7 sends for u
// (check_http.c request_template): "GET path HTTP/1.x", its User-Agent, and
// a Host header naming the virtual host, else the target's address and
// port ("[v6]:port" for IPv6).
func (h *HTTP) Request(u *URL) string {
	return string(h.appendRequest(make([]byte, 0, 128), u))
}

// appendRequest appends Request(u) to b.
func (h *HTTP) appendRequest(b []byte, u *URL) []byte {
	vhost := u.VirtualHost
	if vhost == "" {
		vhost = h.VirtualHost
	}
	b = append(b, "GET "...)
	b = append(b, u.Path...)
	if h.Protocol == HTTP11 {
		b = append(b, " HTTP/1.1\r\n"...)
	} else {
		b = append(b, " HTTP/1.0\r\n"...)
	}
	b = append(b, "User-Agent: KeepAliveClient\r\n"...)
	if h.Protocol == HTTP10Close || h.Protocol == HTTP11 {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "Host: "...)
	if vhost != "" {
		b = append(b, vhost...)
	} else {
		b = h.Conn.Target().AppendTo(b) // "[addr]:port" for IPv6
	}
	return append(b, "\r\n\r\n"...)
}

// Get sends u's request and reads the response to the end of the stream, as
// keepalived does (it never stops at Content-Length). Each read must
// complete within the connect timeout, and the whole exchange within
// attemptSteps of them. tr may be nil.
func (h *HTTP) Get(ctx context.Context, u *URL, tr *Trace) (*Response, error) {
	to := h.Conn.timeout()
	target := h.Conn.Target()
	c, err := h.Conn.dialConn(ctx)
	if err != nil {
		if check.OutOfResources(err) { // kept for judge: no verdict
			return nil, fmt.Errorf("connect %s: %w", target, err)
		}
		return nil, fmt.Errorf("connect %s: %s", target, describe(err, to))
	}
	raw := c
	stop := closeOnCancel(ctx, raw)
	defer func() {
		stop()
		// Close the socket, not the TLS layer: tls.Conn.Close would send
		// close_notify and wait up to 5 s for a stalled server (keepalived
		// shuts SSL down quietly, SSL_set_quiet_shutdown).
		raw.Close()
	}()
	actx, cancel := attemptContext(ctx, to)
	defer cancel()
	if h.SSL {
		tc := tls.Client(c, h.tlsConfig(u))
		ioDeadline(actx, c, to)
		if err := tc.HandshakeContext(actx); err != nil {
			return nil, fmt.Errorf("TLS handshake with %s: %s", target, describe(overBudget(ctx, actx, err, to), to))
		}
		c = tc
	}
	req := h.Request(u)
	if len(req) > maxRequest-1 {
		return nil, fmt.Errorf("request for %s longer than %d bytes", u.Path, maxRequest-1)
	}
	ioDeadline(actx, c, to)
	if _, err := io.WriteString(c, req); err != nil {
		return nil, fmt.Errorf("send request to %s: %s", target, describe(err, to))
	}

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	hp := bufPool.Get().(*[]byte)
	defer bufPool.Put(hp)
	buf := *bp
	var rr respReader
	rr.reset(u, tr, *hp, md5.New())
	for {
		ioDeadline(actx, c, to)
		r, err := c.Read(buf)
		if r > 0 {
			if err := rr.write(buf[:r]); err != nil {
				return nil, fmt.Errorf("read from %s: %v", target, err)
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if h.SSL && rr.head && !isTimeout(err) {
			// check_ssl.c ssl_read_thread: any SSL error other than
			// "want read" ends the stream.
			break
		}
		return nil, fmt.Errorf("read from %s: %s", target, describe(overBudget(ctx, actx, err, to), to))
	}
	resp, err := rr.finish(target)
	if err != nil {
		return nil, err
	}
	resp.Header = append([]byte(nil), resp.Header...)
	return resp, nil
}

// respReader parses a response as it arrives, as keepalived 2.2.7 does:
// the header must end within the first 4095 bytes; every byte after it,
// up to Content-Length when there is one, enters the digest (and the body
// kept for a regex).
type respReader struct {
	u    *URL
	tr   *Trace
	resp Response
	md   hash.Hash
	hdr  []byte // the header so far (maxHeader bytes of room)
	n    int    // header bytes buffered
	head bool   // header complete
	body int64  // body bytes received
}

// errNoHeaderEnd reports a header that does not end within maxHeader bytes.
var errNoHeaderEnd = fmt.Errorf("no end of HTTP header in the first %d bytes", maxHeader)

// reset prepares rr for a response to u; hdr (at least maxHeader bytes)
// holds the header, which resp.Header then points into, and md computes
// the digest (it is reset).
func (rr *respReader) reset(u *URL, tr *Trace, hdr []byte, md hash.Hash) {
	md.Reset()
	*rr = respReader{u: u, tr: tr, resp: Response{ContentLength: -1}, md: md, hdr: hdr[:maxHeader]}
}

// write takes the next bytes of the stream.
func (rr *respReader) write(p []byte) error {
	if !rr.head {
		k := copy(rr.hdr[rr.n:], p)
		rr.n += k
		end := headerEnd(rr.hdr[:rr.n])
		if end == 0 {
			if rr.n == maxHeader {
				return errNoHeaderEnd
			}
			return nil
		}
		rr.head = true
		rr.resp.Header = rr.hdr[:end]
		rr.resp.Status = statusCode(rr.resp.Header)
		rr.resp.ContentLength = contentLength(rr.resp.Header)
		if rr.tr != nil && rr.tr.Header != nil {
			rr.tr.Header(rr.resp.Header)
		}
		rr.feed(rr.hdr[end:rr.n])
		rr.body = int64(rr.n - end)
		p = p[k:]
	}
	if len(p) > 0 {
		rr.feed(p)
		rr.body += int64(len(p))
	}
	return nil
}

func (rr *respReader) feed(p []byte) {
	// keepalived hashes at most Content-Length bytes of body.
	if cl := rr.resp.ContentLength; cl >= 0 {
		if rr.body >= cl {
			p = nil
		} else if int64(len(p)) > cl-rr.body {
			p = p[:cl-rr.body]
		}
	}
	if len(p) == 0 {
		return
	}
	rr.md.Write(p)
	if rr.tr != nil && rr.tr.Body != nil {
		rr.tr.Body(p)
	}
	if rr.u.Regex != nil && len(rr.resp.Body) < maxRegexBody {
		rr.resp.Body = append(rr.resp.Body, p[:min(len(p), maxRegexBody-len(rr.resp.Body))]...)
	}
}

// finish ends the stream: it returns the response, whose Header points into
// the header buffer, or an error when no header arrived.
func (rr *respReader) finish(target netip.AddrPort) (*Response, error) {
	if !rr.head {
		return nil, fmt.Errorf("no HTTP header received from %s", target)
	}
	rr.resp.BodyBytes = rr.body
	rr.md.Sum(rr.resp.Digest[:0])
	return &rr.resp, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// tlsConfig builds the client configuration for SSL_GET: no verification
// unless RootCAs are given (keepalived never calls SSL_CTX_set_verify), and
// the virtual host as SNI name when enabled (check_ssl.c ssl_connect).
func (h *HTTP) tlsConfig(u *URL) *tls.Config {
	var cfg *tls.Config
	if h.TLS != nil {
		cfg = h.TLS.Clone()
	} else {
		cfg = &tls.Config{}
	}
	vhost := u.VirtualHost
	if vhost == "" {
		vhost = h.VirtualHost
	}
	cfg.ServerName = ""
	if h.SNI {
		cfg.ServerName = vhost
	}
	roots := cfg.RootCAs
	cfg.InsecureSkipVerify = true
	if roots != nil {
		name := vhost
		if name == "" {
			name = h.Conn.Target().Addr().String()
		}
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no server certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return cfg
}

// headerEnd returns the offset just past the first CRLFCRLF, or 0
// (html.c extract_html).
func headerEnd(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return 0
}

// statusCode extracts the status as keepalived 2.2.7 html.c
// extract_status_code: skip to the first space, then exactly three digits
// followed by a space; anything else is 0.
func statusCode(h []byte) int {
	i := 0
	for i < len(h) && h[i] != ' ' && h[i] != '\r' {
		i++
	}
	if i >= len(h) || h[i] != ' ' {
		return 0
	}
	i++
	if i+3 >= len(h) || h[i] == ' ' || h[i+3] != ' ' {
		return 0
	}
	code := 0
	for _, c := range h[i : i+3] {
		if c < '0' || c > '9' {
			return 0
		}
		code = code*10 + int(c-'0')
	}
	return code
}

// contentLength extracts Content-Length as keepalived 2.2.7 html.c
// extract_content_length: the first "Content-Length:" (case-sensitive),
// strtoul of what follows, which must end the line; -1 otherwise.
func contentLength(h []byte) int64 {
	const tag = "Content-Length:"
	i := bytes.Index(h, []byte(tag))
	if i < 0 {
		return -1
	}
	p := h[i+len(tag):]
	j := 0
	for j < len(p) && (p[j] == ' ' || p[j] == '\t') {
		j++
	}
	k := j
	var v int64
	for k < len(p) && p[k] >= '0' && p[k] <= '9' {
		v = v*10 + int64(p[k]-'0')
		if v > 1<<53 {
			return -1
		}
		k++
	}
	if k == j {
		// strtoul read no digit: end points at the tag's end.
		k = 0
	}
	if k < len(p) && p[k] != '\r' && p[k] != '\n' {
		return -1
	}
	return v
}
