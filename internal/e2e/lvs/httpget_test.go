package lvs

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The tutorial's improvement: TCP_CHECK only sees the port open, so a
// server that answers a wrong page or a 404 stays in the pool. HTTP_GET
// with the page's digest (computed by `vigil genhash`, keepalived's genhash)
// removes a server that still listens but serves a changed page, and one
// that answers 404; both return when the page is back.
func TestHTTPGetDigestRemovesWrongPage(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, "httpget", topoOpts{})
	d := tp.dirs[0]

	// genhash against each page first, from the director, as an operator
	// would; the digest is the MD5 of the body.
	digest := map[string]string{}
	for _, a := range []string{web1, web2} {
		out, err := d.vigil("genhash", "-s", a, "-p", "80", "-u", "/index.html")
		if err != nil {
			t.Fatal(err)
		}
		got := strings.TrimSpace(out)
		sum := md5.Sum([]byte(pageOf(a)))
		if want := hex.EncodeToString(sum[:]); got != want {
			t.Fatalf("vigil genhash -s %s -p 80 -u /index.html = %q, want the page's MD5 %s", a, got, want)
		}
		digest[a] = got
	}
	check := func(a string) string {
		return fmt.Sprintf("HTTP_GET {\n\turl {\n\t\tpath /index.html\n\t\tdigest %s\n\t}\n\tconnect_timeout 1\n\tretry 1\n\tdelay_before_retry 1\n}\n", digest[a])
	}
	d.writeConfig(vrrpSingle() + vs{port: 80, delayLoop: "1", reals: []rs{
		{addr: web1, checker: check(web1)}, {addr: web2, checker: check(web2)},
	}}.String())
	d.start()
	waitServing(t, d, 80)
	waitChecked(t, d, patience)
	if per := tp.client.spread(80, 10); per[web1] != 5 || per[web2] != 5 {
		t.Fatalf("rr over both servers with good digests: %v", per)
	}

	// web1 still listens and answers 200, with another page.
	tp.web[web1].setPage("This page was changed by a careless deploy\n")
	took := waitPool(t, d, 80, web1, false, patience)
	r, _ := realServer(d.mustStatus(), 80, web1)
	t.Logf("changed page: %s left after %v; status reason %q", web1, took.Round(time.Millisecond), r.Reason)
	if r.Healthy || !strings.Contains(r.Reason, "digest mismatch") {
		t.Errorf("%s with a changed page: healthy=%v reason %q, want down for a digest mismatch", web1, r.Healthy, r.Reason)
	}
	if per := tp.client.spread(80, 10); per[web2] != 10 {
		t.Errorf("with %s out: %v, want every request on %s", web1, per, web2)
	}
	tp.web[web1].setPage(pageOf(web1))
	took = waitPool(t, d, 80, web1, true, patience)
	t.Logf("page restored: %s back after %v", web1, took.Round(time.Millisecond))

	// web2 answers 404.
	tp.web[web2].removePage()
	took = waitPool(t, d, 80, web2, false, patience)
	r, _ = realServer(d.mustStatus(), 80, web2)
	t.Logf("404: %s left after %v; status reason %q", web2, took.Round(time.Millisecond), r.Reason)
	if r.Healthy || !strings.Contains(r.Reason, "status 404") {
		t.Errorf("%s answering 404: healthy=%v reason %q, want down for status 404", web2, r.Healthy, r.Reason)
	}
	if per := tp.client.spread(80, 10); per[web1] != 10 {
		t.Errorf("with %s out: %v, want every request on %s", web2, per, web1)
	}
	tp.web[web2].setPage(pageOf(web2))
	took = waitPool(t, d, 80, web2, true, patience)
	t.Logf("page restored: %s back after %v", web2, took.Round(time.Millisecond))
	if per := tp.client.spread(80, 10); per[web1] != 5 || per[web2] != 5 {
		t.Errorf("both back: %v", per)
	}
}
