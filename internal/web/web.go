// Package web serves vigil's read-only status page and its data on a TCP
// listener (--http-listen): GET / is one self-contained HTML page (inline CSS
// and JS, no external resources) that polls GET /v1/status every second and
// redraws; GET /v1/status is the same status.Snapshot JSON as the API socket
// serves. Nothing here changes state: reload and handover stay on the
// root-only unix socket.
//
// The listener should be loopback (CheckListen says when it is not). On a
// loopback listener the handler also refuses requests whose Host header is
// a DNS name other than localhost, so a web page from elsewhere cannot read
// the status through DNS rebinding.
package web

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/vigil-ha/vigil/internal/status"
)

//go:embed index.html
var page []byte

// SnapshotFunc returns the daemon's state (api.Daemon's Snapshot method).
type SnapshotFunc func(ctx context.Context) (status.Snapshot, error)

// DefaultPort is used when --http-listen gives a host without a port.
const DefaultPort = "8080"

// contentSecurityPolicy allows exactly the page's own inline script and
// style (by hash), fetches to the same origin, and nothing else.
var contentSecurityPolicy = func() string {
	hash := func(tag string) string {
		m := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`).FindSubmatch(page)
		if m == nil {
			panic("web: index.html has no <" + tag + ">")
		}
		sum := sha256.Sum256(m[1])
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src " + hash("script"),
		"style-src " + hash("style"),
		"connect-src 'self'",
		"img-src data:",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}()

// Handler returns the status page and GET /v1/status. Other paths are 404,
// other methods 405.
func Handler(snap SnapshotFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Cache-Control", "no-cache")
		w.Write(page)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		s, err := snap(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(s)
	})
	return guard(mux)
}

// guard sets the headers every answer carries and applies the DNS
// rebinding check.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && isLoopbackAddr(la) && !loopbackHost(r.Host) {
			http.Error(w, "vigil: this listener answers only to localhost or a loopback address in the Host header", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopbackAddr(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	return false
}

// loopbackHost reports whether a Host header names this machine's loopback:
// "localhost" (and its subdomains, RFC 6761 §6.3), or a loopback IP literal.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ListenAddr completes an --http-listen value: a bare port (":8080" or
// "8080") binds the IPv4 loopback, a bare host gets DefaultPort. Binding
// other addresses takes an explicit host ("0.0.0.0:8080", "[::]:8080",
// "192.0.2.1:8080").
func ListenAddr(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return net.JoinHostPort("127.0.0.1", DefaultPort)
	}
	if !strings.Contains(addr, ":") {
		if isPort(addr) {
			return net.JoinHostPort("127.0.0.1", addr)
		}
		return net.JoinHostPort(addr, DefaultPort)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// An IPv6 literal without brackets or port.
		if ip := net.ParseIP(strings.Trim(addr, "[]")); ip != nil {
			return net.JoinHostPort(ip.String(), DefaultPort)
		}
		return addr
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = DefaultPort
	}
	return net.JoinHostPort(host, port)
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CheckListen returns a warning for the log when addr (as ListenAddr
// completes it) is reachable from other hosts, and "" when it is loopback
// only. A host name is resolved by the listener, not here, so it gets a
// warning unless it is localhost.
func CheckListen(addr string) (warning string) {
	addr = ListenAddr(addr)
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("http listener %q: %v", addr, err)
	}
	if loopbackHost(host) {
		return ""
	}
	ip := net.ParseIP(host)
	switch {
	case ip != nil && ip.IsUnspecified():
		return fmt.Sprintf("http listener %s accepts connections on every interface: the status page shows the cluster's topology to anyone who can reach it; bind 127.0.0.1 or put it behind an authenticating proxy", addr)
	case ip != nil:
		return fmt.Sprintf("http listener %s is not a loopback address: the status page is reachable from the network without authentication", addr)
	}
	return fmt.Sprintf("http listener %s names host %q, which may resolve to a non-loopback address: the status page would be reachable from the network without authentication", addr, host)
}
