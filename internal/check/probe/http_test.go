package probe

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// rawHTTP serves each connection by reading the request header and writing
// what reply returns, then closing. It records the requests.
type rawHTTP struct {
	l    net.Listener
	reqs chan string
}

func newRawHTTP(t *testing.T, reply func(req string) string) *rawHTTP {
	t.Helper()
	s := &rawHTTP{l: listen(t, "127.0.0.1:0"), reqs: make(chan string, 16)}
	go func() {
		for {
			c, err := s.l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var req strings.Builder
				for {
					line, err := br.ReadString('\n')
					req.WriteString(line)
					if err != nil || line == "\r\n" {
						break
					}
				}
				select {
				case s.reqs <- req.String():
				default:
				}
				c.Write([]byte(reply(req.String())))
			}()
		}
	}()
	return s
}

func (s *rawHTTP) addr() netip.AddrPort { return ap(s.l.Addr()) }

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestHTTPRequestFormat(t *testing.T) {
	noLeak(t)
	srv := newRawHTTP(t, func(string) string { return "HTTP/1.0 200 OK\r\n\r\nok" })
	tests := []struct {
		name string
		h    HTTP
		want string
	}{
		{
			// check_http.c request_template, Host from the connect address.
			name: "http/1.0 host from address",
			h:    HTTP{URLs: []URL{{Path: "/index.html"}}},
			want: "GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: " + srv.addr().String() + "\r\n\r\n",
		},
		{
			name: "checker virtualhost",
			h:    HTTP{URLs: []URL{{Path: "/"}}, VirtualHost: "www.example.com"},
			want: "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: www.example.com\r\n\r\n",
		},
		{
			name: "url virtualhost overrides, http/1.1 adds Connection: close",
			h:    HTTP{URLs: []URL{{Path: "/a?b=c", VirtualHost: "u.example"}}, VirtualHost: "c.example", Protocol: HTTP11},
			want: "GET /a?b=c HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: u.example\r\n\r\n",
		},
		{
			name: "1.0C",
			h:    HTTP{URLs: []URL{{Path: "/"}}, Protocol: HTTP10Close},
			want: "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: " + srv.addr().String() + "\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.h.Conn.Addr = srv.addr()
			if r := tt.h.Check(ctxT(t)); !r.OK {
				t.Fatalf("check failed: %s", r.Reason)
			}
			if diff := cmp.Diff(tt.want, <-srv.reqs); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if r := viaPoller(t, &tt.h, 0, nil); !r.OK {
				t.Fatalf("poller: check failed: %s", r.Reason)
			}
			if diff := cmp.Diff(tt.want, <-srv.reqs); diff != "" {
				t.Errorf("poller's request (-want +got):\n%s", diff)
			}
		})
	}
	v6 := HTTP{Conn: Conn{Addr: netip.MustParseAddrPort("[fd00::5]:8080")}}
	if got := v6.Request(&URL{Path: "/"}); !strings.Contains(got, "\r\nHost: [fd00::5]:8080\r\n") {
		t.Errorf("IPv6 request %q lacks Host: [fd00::5]:8080", got)
	}
}

func TestHTTPResponses(t *testing.T) {
	noLeak(t)
	body := "This is a test page which from IP:192.168.118.131\n"
	tests := []struct {
		name    string
		resp    string
		url     URL
		ok      bool
		reason  string
		wantMD5 string
	}{
		{name: "200 default status", resp: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", url: URL{Path: "/"}, ok: true},
		{name: "204 in default 200-299", resp: "HTTP/1.1 204 No Content\r\n\r\n", url: URL{Path: "/"}, ok: true},
		{name: "404 fails", resp: "HTTP/1.1 404 Not Found\r\n\r\n", url: URL{Path: "/x"}, reason: "GET /x: status 404, want 200-299"},
		{name: "301 outside default", resp: "HTTP/1.1 301 Moved\r\nLocation: /\r\n\r\n", url: URL{Path: "/"}, reason: "status 301, want 200-299"},
		{name: "explicit status list", resp: "HTTP/1.1 404 Not Found\r\n\r\n", url: URL{Path: "/", Status: []StatusRange{{200, 200}, {400, 404}}}, ok: true},
		{name: "explicit status excludes 200", resp: "HTTP/1.1 200 OK\r\n\r\n", url: URL{Path: "/", Status: []StatusRange{{503, 503}}}, reason: "status 200, want 503"},
		{
			name: "digest matches", resp: "HTTP/1.0 200 OK\r\nContent-Length: 51\r\n\r\n" + body,
			url: URL{Path: "/", Digest: md5hex(body)}, ok: true,
		},
		{
			name: "digest mismatch", resp: "HTTP/1.0 200 OK\r\n\r\nother",
			url:    URL{Path: "/", Digest: md5hex(body)},
			reason: "digest mismatch: got " + md5hex("other") + ", want " + md5hex(body),
		},
		{
			// keepalived hashes at most Content-Length bytes.
			name: "digest stops at Content-Length", resp: "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello, world",
			url: URL{Path: "/", Digest: md5hex("hello")}, ok: true,
		},
		{
			// Without one, everything up to the end of the stream.
			name: "digest without Content-Length", resp: "HTTP/1.0 200 OK\r\n\r\nhello, world",
			url: URL{Path: "/", Digest: md5hex("hello, world")}, ok: true,
		},
		{
			// keepalived does not decode chunks: it hashes the framing.
			name: "chunked body hashed raw", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			url: URL{Path: "/", Digest: md5hex("5\r\nhello\r\n0\r\n\r\n")}, ok: true,
		},
		{
			// html.c looks for "Content-Length:" case-sensitively.
			name: "lower-case content-length ignored", resp: "HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nhello",
			url: URL{Path: "/", Digest: md5hex("hello")}, ok: true,
		},
		{name: "no header", resp: "garbage without header end", url: URL{Path: "/"}, reason: "no HTTP header received"},
		{name: "status line without reason phrase", resp: "HTTP/1.1 200\r\n\r\n", url: URL{Path: "/"}, reason: "status 0, want 200-299"},
		{name: "regex", resp: "HTTP/1.0 200 OK\r\n\r\n<h1>healthy</h1>", url: URL{Path: "/", Regex: regexp.MustCompile(`health[a-z]+`)}, ok: true},
		{name: "regex missing", resp: "HTTP/1.0 200 OK\r\n\r\n<h1>sick</h1>", url: URL{Path: "/", Regex: regexp.MustCompile(`healthy`)}, reason: `regex "healthy" not found`},
		{name: "regex_no_match", resp: "HTTP/1.0 200 OK\r\n\r\nERROR", url: URL{Path: "/", Regex: regexp.MustCompile(`ERROR`), RegexNoMatch: true}, reason: "matched (regex_no_match)"},
		{name: "regex_max_offset", resp: "HTTP/1.0 200 OK\r\n\r\n0123456789ok", url: URL{Path: "/", Regex: regexp.MustCompile(`ok`), RegexMaxOffset: 5}, reason: "not found"},
		{
			// html.c: the header must end within GET_BUFFER_LENGTH - 1.
			name: "header longer than 4095 bytes", resp: "HTTP/1.0 200 OK\r\nX-Pad: " + strings.Repeat("x", 5000) + "\r\n\r\nok",
			url: URL{Path: "/"}, reason: "no end of HTTP header in the first 4095 bytes",
		},
		{
			// Many reads, header and body split anywhere.
			name: "large body", resp: "HTTP/1.0 200 OK\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("0123456789", 20000),
			url: URL{Path: "/", Digest: md5hex(strings.Repeat("0123456789", 20000))}, ok: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawHTTP(t, func(string) string { return tt.resp })
			h := &HTTP{Conn: Conn{Addr: srv.addr(), Timeout: 2 * time.Second}, URLs: []URL{tt.url}}
			if err := h.Validate(); err != nil {
				t.Fatal(err)
			}
			r := h.Check(ctxT(t))
			if r.OK != tt.ok {
				t.Fatalf("OK = %v (%s), want %v", r.OK, r.Reason, tt.ok)
			}
			if tt.reason != "" {
				wantReason(t, r.Reason, tt.reason)
			}
			// The Runner's poller reaches the same verdict.
			if p := viaPoller(t, h, 0, nil); p.OK != r.OK || p.Reason != r.Reason {
				t.Errorf("poller: OK = %v (%s), Check: OK = %v (%s)", p.OK, p.Reason, r.OK, r.Reason)
			}
		})
	}
}

func TestHTTPReadTimeout(t *testing.T) {
	noLeak(t)
	l := listen(t, "127.0.0.1:0")
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("HTTP/1.0 200 OK\r\n\r\npartial"))
				// Never close first (keepalived waits for the end of
				// the stream): only after the client has.
				go func() { <-done; c.Close() }()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	h := &HTTP{Conn: Conn{Addr: ap(l.Addr()), Timeout: 300 * time.Millisecond}, URLs: []URL{{Path: "/"}}}
	r := h.Check(ctxT(t))
	if r.OK {
		t.Fatal("check of a stalled response succeeded")
	}
	wantReason(t, r.Reason, "timeout after 300ms")
	if p := viaPoller(t, h, 0, nil); p.OK || p.Reason != r.Reason {
		t.Errorf("poller: OK = %v (%s), Check: %s", p.OK, p.Reason, r.Reason)
	}
}

func TestHTTPCancel(t *testing.T) {
	noLeak(t)
	l := listen(t, "127.0.0.1:0")
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			<-done
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	h := &HTTP{Conn: Conn{Addr: ap(l.Addr()), Timeout: 10 * time.Second}, URLs: []URL{{Path: "/"}}}
	if r := h.Check(ctx); r.OK {
		t.Fatal("canceled check succeeded")
	}
	// Well under the 10 s connect_timeout: the cancel ended it.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("check returned %v after its context was canceled", d)
	}
}

func TestHTTPSteps(t *testing.T) {
	noLeak(t)
	srv := newRawHTTP(t, func(req string) string {
		if strings.HasPrefix(req, "GET /bad ") {
			return "HTTP/1.0 500 Oops\r\n\r\n"
		}
		return "HTTP/1.0 200 OK\r\n\r\n"
	})
	h := &HTTP{Conn: Conn{Addr: srv.addr()}, URLs: []URL{{Path: "/good"}, {Path: "/bad"}}}
	ctx := ctxT(t)
	if h.Steps() != 2 {
		t.Fatalf("Steps() = %d", h.Steps())
	}
	if r := h.CheckStep(ctx, 0); !r.OK {
		t.Errorf("step 0: %s", r.Reason)
	}
	if r := h.CheckStep(ctx, 1); r.OK {
		t.Error("step 1 succeeded")
	}
	r := h.Check(ctx)
	if r.OK {
		t.Error("Check of all urls succeeded")
	}
	wantReason(t, r.Reason, "GET /bad: status 500")
}

func TestSSLGet(t *testing.T) {
	noLeak(t)
	body := "secure page\n"
	sni := make(chan string, 4)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "www.example.com" {
			http.Error(w, "wrong host "+r.Host, http.StatusBadRequest)
			return
		}
		w.Write([]byte(body))
	}))
	ts.TLS = &tls.Config{GetConfigForClient: func(ch *tls.ClientHelloInfo) (*tls.Config, error) {
		sni <- ch.ServerName
		return nil, nil
	}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	addr := netip.MustParseAddrPort(strings.TrimPrefix(ts.URL, "https://"))
	ctx := ctxT(t)
	base := HTTP{Conn: Conn{Addr: addr}, SSL: true, VirtualHost: "www.example.com",
		URLs: []URL{{Path: "/", Digest: md5hex(body)}}}

	t.Run("no verification, no SNI by default", func(t *testing.T) {
		h := base
		if r := h.Check(ctx); !r.OK {
			t.Fatalf("SSL_GET failed: %s", r.Reason)
		}
		if got := <-sni; got != "" {
			t.Errorf("SNI %q sent without enable_sni", got)
		}
	})
	t.Run("enable_sni sends the virtual host", func(t *testing.T) {
		h := base
		h.SNI = true
		if r := h.Check(ctx); !r.OK {
			t.Fatalf("SSL_GET failed: %s", r.Reason)
		}
		if got := <-sni; got != "www.example.com" {
			t.Errorf("SNI %q, want www.example.com", got)
		}
	})
	t.Run("verification against RootCAs", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(ts.Certificate())
		h := base
		h.TLS = &tls.Config{RootCAs: pool}
		// httptest's certificate names *.example.com.
		if r := h.Check(ctx); !r.OK {
			t.Fatalf("verified SSL_GET failed: %s", r.Reason)
		}
		<-sni
		h.VirtualHost = "www.example.org"
		r := h.Check(ctx)
		<-sni
		if r.OK {
			t.Fatal("verification against a name the certificate lacks succeeded")
		}
		wantReason(t, r.Reason, "TLS handshake")
		h.VirtualHost = "www.example.com"
		h.TLS = &tls.Config{RootCAs: x509.NewCertPool()}
		if r := h.Check(ctx); r.OK {
			t.Fatal("verification with an empty pool succeeded")
		}
		<-sni
	})
	t.Run("plain HTTP to a TLS server fails", func(t *testing.T) {
		h := base
		h.SSL = false
		if r := h.Check(ctx); r.OK {
			t.Fatal("HTTP_GET against a TLS port succeeded")
		}
	})
}

func TestParseStatusCodes(t *testing.T) {
	got, err := ParseStatusCodes([]string{"200", "200-299", "400-499", "503"})
	if err != nil {
		t.Fatal(err)
	}
	want := []StatusRange{{200, 200}, {200, 299}, {400, 499}, {503, 503}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"99", "600", "300-200", "abc", "200-"} {
		if _, err := ParseStatusCodes([]string{bad}); err == nil {
			t.Errorf("ParseStatusCodes(%q) succeeded", bad)
		}
	}
}

func TestHeaderParsing(t *testing.T) {
	for _, tc := range []struct {
		h      string
		status int
		clen   int64
	}{
		{"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\n", 200, 12},
		{"HTTP/1.0 404 Not Found\r\nContent-Length:7\r\n\r\n", 404, 7},
		{"HTTP/1.0 200 OK\r\nContent-Length: 12 \r\n\r\n", 200, -1},
		{"HTTP/1.0 200 OK\r\nContent-Length:\r\n\r\n", 200, 0},
		{"HTTP/1.0 200 OK\r\ncontent-length: 12\r\n\r\n", 200, -1},
		{"HTTP/1.0 200\r\n\r\n", 0, -1},
		{"HTTP/1.0  200 OK\r\n\r\n", 0, -1},
		{"HTTP/1.0 2x0 OK\r\n\r\n", 0, -1},
		{"garbage\r\n\r\n", 0, -1},
	} {
		if s, c := statusCode([]byte(tc.h)), contentLength([]byte(tc.h)); s != tc.status || c != tc.clen {
			t.Errorf("%q: status %d content-length %d, want %d %d", tc.h, s, c, tc.status, tc.clen)
		}
	}
}

func TestSSLGetStalledServer(t *testing.T) {
	noLeak(t)
	release := make(chan struct{})
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) })
	h := &HTTP{Conn: Conn{Addr: netip.MustParseAddrPort(strings.TrimPrefix(ts.URL, "https://")), Timeout: 300 * time.Millisecond},
		SSL: true, URLs: []URL{{Path: "/"}}}
	start := time.Now()
	r := h.Check(ctxT(t))
	if r.OK {
		t.Fatal("stalled server passed")
	}
	wantReason(t, r.Reason, "timeout after 300ms")
	// Well under the context's 30 s: the timeout ended it.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("SSL_GET of a stalled server took %v with connect_timeout 300ms", d)
	}
}
