package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

// pageServer answers each request with what reply returns for it, written
// in pieces of at most chunk bytes, then closes. It hands the requests it
// saw to reqs.
func pageServer(t *testing.T, chunk int, reply func(req string) string) (port string, reqs chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	reqs = make(chan string, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				var req strings.Builder
				for {
					line, err := br.ReadString('\n')
					req.WriteString(line)
					if err != nil || line == "\r\n" {
						break
					}
				}
				reqs <- req.String()
				out := []byte(reply(req.String()))
				for len(out) > 0 {
					n := min(chunk, len(out))
					c.Write(out[:n])
					out = out[n:]
					time.Sleep(time.Millisecond)
				}
			}(c)
		}
	}()
	_, port, _ = net.SplitHostPort(l.Addr().String())
	return port, reqs
}

func hostOf(req string) string {
	for _, l := range strings.Split(req, "\r\n") {
		if v, ok := strings.CutPrefix(l, "Host: "); ok {
			return v
		}
	}
	return ""
}

// TestDispatchAsGenhash: /usr/bin/genhash is keepalived's package's link
// to ../sbin/keepalived; with vigil in keepalived's place, `genhash -sHOST
// -p PORT -u /` (seed 002's command, the address glued to -s) prints the
// page's digest, as keepalived's genhash does, and not vigil's "unknown
// command".
func TestDispatchAsGenhash(t *testing.T) {
	port, _ := pageServer(t, 64, func(string) string {
		return "HTTP/1.0 200 OK\r\nContent-Length: 49\r\n\r\nThis is a test page which from IP:192.168.118.129"
	})
	var out, errb bytes.Buffer
	code := dispatchAs("genhash", []string{"-s127.0.0.1", "-p", port, "-u", "/"}, &out, &errb)
	// md5 of the body
	if want := "047032f5f0242afb47c3d67699e031d5\n"; code != 0 || out.String() != want {
		t.Fatalf("genhash persona: exit %d, stdout %q (want %q), stderr %q", code, out.String(), want, errb.String())
	}
}

// TestGenhashDifferential runs Debian's keepalived genhash and vigil genhash
// against the same pages and compares what they print and what they send.
func TestGenhashDifferential(t *testing.T) {
	genhash := netnstest.RequireCommand(t, "genhash")
	big := strings.Repeat("0123456789abcdef", 6400) // 100 KiB
	tests := []struct {
		name  string
		chunk int
		reply func(req string) string
		args  []string
	}{
		{
			name: "page with Content-Length", chunk: 1 << 20,
			reply: func(string) string {
				return "HTTP/1.0 200 OK\r\nContent-Length: 49\r\n\r\nThis is a test page which from IP:192.168.118.129"
			},
		},
		{
			name: "no Content-Length, body up to close", chunk: 7,
			reply: func(string) string { return "HTTP/1.0 200 OK\r\nServer: test\r\n\r\nhello\nworld\n" },
		},
		{
			name: "chunked body hashed with its framing", chunk: 5,
			reply: func(string) string {
				return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"
			},
		},
		{
			name: "Content-Length shorter than the body", chunk: 3,
			reply: func(string) string { return "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\ntruncated here" },
		},
		{
			name: "large body in pieces", chunk: 1500,
			reply: func(string) string {
				return "HTTP/1.0 200 OK\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big
			},
		},
		{
			name: "virtual host", chunk: 64, args: []string{"-V", "www.b.example"},
			reply: func(req string) string { return "HTTP/1.0 200 OK\r\n\r\npage of " + hostOf(req) },
		},
		{
			name: "404 page is hashed too", chunk: 64,
			reply: func(string) string { return "HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found" },
		},
		{
			name: "http/1.1", chunk: 64, args: []string{"-P", "1.1"},
			reply: func(string) string { return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nv1.1" },
		},
		{
			name: "1.0C long options", chunk: 64, args: []string{"--protocol", "1.0C", "--use-virtualhost=vh.example"},
			reply: func(req string) string { return "HTTP/1.0 200 OK\r\n\r\n" + req },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, reqs := pageServer(t, tt.chunk, tt.reply)
			args := append([]string{"-s", "127.0.0.1", "-p", port, "-u", "/index.html"}, tt.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			want, err := exec.CommandContext(ctx, genhash, args...).Output()
			if err != nil {
				t.Fatalf("genhash %v: %v", args, err)
			}
			wantReq := <-reqs
			var out, errb bytes.Buffer
			if code := runGenhash(args, &out, &errb); code != 0 {
				t.Fatalf("vigil genhash %v: exit %d: %s", args, code, errb.String())
			}
			gotReq := <-reqs
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("stdout (-genhash +vigil genhash):\n%s", diff)
			}
			if diff := cmp.Diff(wantReq, gotReq); diff != "" {
				t.Errorf("request (-genhash +vigil genhash):\n%s", diff)
			}
		})
	}
}

func TestGenhashSSLDifferential(t *testing.T) {
	genhash := netnstest.RequireCommand(t, "genhash")
	sni := make(chan string, 8)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("secure page for " + r.Host + "\n"))
	}))
	ts.TLS = &tls.Config{GetConfigForClient: func(ch *tls.ClientHelloInfo) (*tls.Config, error) {
		sni <- ch.ServerName
		return nil, nil
	}}
	ts.StartTLS()
	defer ts.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.URL, "https://"))
	for _, args := range [][]string{
		{"-S", "-s", "127.0.0.1", "-p", port, "-u", "/"},
		{"--use-ssl", "-I", "-V", "www.example.com", "-s", "127.0.0.1", "-p", port, "-u", "/x"},
	} {
		want, err := exec.Command(genhash, args...).Output()
		if err != nil {
			t.Fatalf("genhash %v: %v", args, err)
		}
		wantSNI := <-sni
		var out, errb bytes.Buffer
		if code := runGenhash(args, &out, &errb); code != 0 {
			t.Fatalf("vigil genhash %v: exit %d: %s", args, code, errb.String())
		}
		if diff := cmp.Diff(string(want), out.String()); diff != "" {
			t.Errorf("%v stdout (-genhash +vigil genhash):\n%s", args, diff)
		}
		if got := <-sni; got != wantSNI {
			t.Errorf("%v: SNI %q, genhash sent %q", args, got, wantSNI)
		}
	}
}

func TestGenhashUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{nil, 1, "required"},
		{[]string{"-s", "localhost", "-p", "80", "-u", "/"}, 1, "server should be an IP, not localhost"},
		{[]string{"-s", "127.0.0.1", "-p", "0", "-u", "/"}, 1, "invalid port number '0'"},
		{[]string{"-s", "127.0.0.1", "-p", "80", "-u", "/", "-P", "2"}, 1, "invalid HTTP protocol version '2'"},
		{[]string{"-s", "127.0.0.1", "-p", "80", "-u", "/", "--hash", "sha1"}, 1, "unsupported hash"},
		{[]string{"-s", "127.0.0.1", "-p", "80", "-u", "/", "extra"}, 1, "Unexpected argument(s): extra"},
		{[]string{"--frobnicate"}, 1, "unknown flag: --frobnicate"},
		{[]string{"-h"}, 0, ""},
	} {
		var out, errb bytes.Buffer
		code := dispatch(append([]string{"genhash"}, tc.args...), &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("genhash %v: exit %d stderr %q, want exit %d and %q", tc.args, code, errb.String(), tc.code, tc.err)
		}
	}
	var out, errb bytes.Buffer
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	if code := runGenhash([]string{"-s", "127.0.0.1", "-p", port, "-u", "/"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "connect 127.0.0.1:"+port+": connection refused") {
		t.Errorf("refused: exit %d stderr %q", code, errb.String())
	}
}
