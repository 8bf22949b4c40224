package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/web/cdp"
)

// TestPageInChromium loads the page in Debian's headless Chromium against a
// fake daemon, checks what it shows, changes the daemon's state and checks
// that the page shows the transition without a reload, that a daemon
// error is shown and cleared, and that the browser reported no console
// error or exception. It shows the peers, drops, held VIPs, handover and
// zones, and each instance's last hour as an SVG strip with one period per
// state and a numbered mark per transition (one more after the failover);
// the screenshot is checked for the strip's colours where the page drew
// it. Set VIGIL_WEB_SCREENSHOT=/path.png to keep the screenshot.
//
// Why the DevTools protocol over --remote-debugging-pipe rather than
// --dump-dom: the test must change the data between two polls of one page
// load and see the page follow, and must read console errors reliably;
// --dump-dom only dumps once and console errors would have to be scraped
// from stderr logging. The pipe needs no port and no websocket library.
//
// Chromium runs inside a lab network namespace with only a loopback
// interface: the page can reach the test server and nothing else.
func TestPageInChromium(t *testing.T) {
	chromium := netnstest.RequireCommand(t, "chromium")
	l := netnstest.New(t, "web")
	h := netnstest.AddHost(t, l, "browser")

	now := time.Now()
	f := &fakeDaemon{snap: backupSnapshot(now)}
	var pageGets, statusGets atomic.Int64
	handler := Handler(f.Snapshot)
	var ln net.Listener
	if err := h.Do(func() (err error) { ln, err = net.Listen("tcp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			pageGets.Add(1)
		case "/v1/status":
			statusGets.Add(1)
		}
		handler.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/"

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := cdp.Launch(t, ctx, h.Command, chromium)
	sess, err := c.Attach(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Call(ctx, sess, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": 1440, "height": 1000, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(ctx, sess, "Page.navigate", map[string]any{"url": url}, nil); err != nil {
		t.Fatal(err)
	}

	text := func(sel string) string {
		return fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.textContent:null})()`, sel)
	}
	waitFor := func(what, expr string, want any) {
		t.Helper()
		wantJSON, _ := json.Marshal(want)
		var last json.RawMessage
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			v, err := c.Eval(ctx, sess, expr)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if bytes.Equal(v, wantJSON) {
				return
			}
			last = v
		}
		t.Fatalf("%s: page shows %s, want %s\nproblems: %v", what, last, wantJSON, c.Problems(sess))
	}

	// What the first snapshot says.
	waitFor("VI_1 state", text(`[data-instance="VI_1"] [data-field=state]`), "BACKUP")
	waitFor("VI_6 state", text(`[data-instance="VI_6"] [data-field=state]`), "MASTER")
	waitFor("failed reload", `(function(){var e=document.getElementById("reload-failed-fact");return !e.hidden && e.textContent.indexOf("vigil.conf:12:3: error: x")>0})()`, true)
	for what, sel := range map[string]string{
		"VIP":         `[data-instance="VI_1"]`,
		"tracker":     `[data-instance="VI_1"]`,
		"real server": `[data-realserver="192.168.1.100:80/tcp 192.168.2.11:80"]`,
		"heartbeat":   `[data-group="nfs"]`,
		"bgp session": `[data-bgp-neighbor="10.1.0.1"]`,
		"bgp route":   `[data-bgp-prefix="10.9.0.1/32"]`,
	} {
		v, err := c.Eval(ctx, sess, text(sel))
		if err != nil {
			t.Fatal(err)
		}
		var s string
		json.Unmarshal(v, &s)
		want := map[string]string{"VIP": "192.168.1.100/24", "tracker": "script chk_nginx", "real server": "down",
			"heartbeat": "node1", "bgp session": "established", "bgp route": "draining"}[what]
		if !strings.Contains(s, want) {
			t.Errorf("%s: %q lacks %q", what, s, want)
		}
	}
	waitFor("real server weight", text(`[data-realserver="192.168.1.100:80/tcp 192.168.2.10:80"] [data-field=weight]`), "3")
	waitFor("transitions shown", `document.querySelectorAll("[data-transition]").length`, 3)
	waitFor("live indicator", `document.getElementById("live").className`, "")

	// Peers, drops, held versus configured VIPs, handover, zones.
	waitFor("peer of VI_1", text(`[data-instance="VI_1"] [data-peer="192.168.1.105"]`)+`.indexOf("prio 100") >= 0`, true)
	waitFor("drop reason", text(`[data-instance="VI_1"] [data-reason="auth_failure"]`), "auth failure 12")
	waitFor("drops before an instance", text(`#dropped`), "unknown vrid 7")
	waitFor("VI_6 holds 1 of 2", text(`[data-instance="VI_6"] [data-field=held]`), "held here: 1 of 2")
	waitFor("VI_6 unheld VIP", `document.querySelectorAll('[data-instance="VI_6"] [data-held=no]').length`, 1)
	waitFor("VI_6 handover", `(function(){var e=document.querySelector('[data-instance="VI_6"] [data-field=handover]');return e.textContent==="handover: holding VIPs" && e.title.indexOf("until the new master is heard")>0})()`, true)
	waitFor("zone on times", `(function(){var z=document.getElementById("tz").textContent;var c=document.querySelector("[data-transition] td").textContent;return z.length>0 && c.slice(-z.length)===z})()`, true)
	waitFor("no year 1", `/0001|1970|NaN|undefined/.test(document.body.innerText)`, false)
	waitFor("real server without change", text(`[data-realserver="192.168.1.100:80/tcp 192.168.2.10:80"] [data-field=since]`), "never")
	waitFor("failures explained", `(function(){var c=document.querySelector('[data-realserver="192.168.1.100:80/tcp 192.168.2.11:80"] [data-checker]');return c.textContent.indexOf("3× in a row")>0 && c.title.indexOf("3 consecutive failed attempts")>=0})()`, true)
	waitFor("kernel counters", text(`[data-realserver="192.168.1.100:80/tcp 192.168.2.10:80"] [data-field=traffic]`)+`.replace(/\W+/g, " ")`, "1520 connectionsin 812 0 kB out 25 3 MB")
	// The timeline: BACKUP, MASTER, BACKUP in the last hour of VI_1 (the
	// INIT -> BACKUP of three hours ago is outside); BACKUP, MASTER for VI_6.
	segments := func(name string) string {
		return fmt.Sprintf(`Array.from(document.querySelectorAll('svg[data-timeline=%q] [data-segment]')).map(function(r){return r.getAttribute("data-state")}).join(" ")`, name)
	}
	marks := func(name string) string {
		return fmt.Sprintf(`document.querySelectorAll('svg[data-timeline=%q] [data-mark]').length`, name)
	}
	waitFor("VI_1 periods", segments("VI_1"), "BACKUP MASTER BACKUP")
	waitFor("VI_1 marks", marks("VI_1"), 2)
	waitFor("VI_6 periods", segments("VI_6"), "BACKUP MASTER")
	waitFor("VI_1 reasons listed", text(`[data-marks="VI_1"]`)+`.indexOf("higher priority master 192.168.1.105 (100)") >= 0`, true)

	// The test's transition: the page follows without a reload.
	if _, err := c.Eval(ctx, sess, `window.__vigilMarker = 7`); err != nil {
		t.Fatal(err)
	}
	polls := statusGets.Load()
	f.set(func(s *status.Snapshot, _ *error) { failover(s, time.Now()) })
	waitFor("VI_1 state after failover", text(`[data-instance="VI_1"] [data-field=state]`), "MASTER")
	waitFor("VI_1 reason after failover", text(`[data-instance="VI_1"] [data-field=reason]`), failoverReason)
	v, _ := c.Eval(ctx, sess, text(`[data-transition]`))
	if !strings.Contains(string(v), "VI_1") || !strings.Contains(string(v), failoverReason) {
		t.Errorf("first timeline row %s does not show the failover", v)
	}
	waitFor("no reload", `window.__vigilMarker`, 7)
	waitFor("VI_1 periods after failover", segments("VI_1"), "BACKUP MASTER BACKUP MASTER")
	waitFor("VI_1 marks after failover", marks("VI_1"), 3)
	waitFor("failover listed", text(`[data-marks="VI_1"] li:last-child`)+`.indexOf(`+fmt.Sprintf("%q", failoverReason)+`) >= 0`, true)
	// The strip is drawn: on screen, full width, the last period the
	// newest (now) at the right edge.
	waitFor("timeline drawn", `(function(){var s=document.querySelector('svg[data-timeline="VI_1"]').getBoundingClientRect();
		var r=Array.from(document.querySelectorAll('svg[data-timeline="VI_1"] [data-segment]')).pop().getBoundingClientRect();
		return s.width>600 && s.height>40 && s.top>0 && Math.abs(r.right-(s.right-10))<2})()`, true)
	if pageGets.Load() != 1 || statusGets.Load() <= polls {
		t.Errorf("page fetched %d times, status %d times (%d before the change): want 1 page load and polling",
			pageGets.Load(), statusGets.Load(), polls)
	}

	if p := c.Problems(sess); len(p) > 0 {
		t.Errorf("browser reported problems:\n%s", strings.Join(p, "\n"))
	}
	shot := screenshot(t, ctx, c, sess)
	checkTimelineInScreenshot(t, ctx, c, sess, shot)

	// The daemon stops answering: the page says so and keeps the last data;
	// then it recovers. (The browser logs the failed fetches itself, so
	// problems are no longer checked.)
	f.set(func(_ *status.Snapshot, err *error) { *err = errors.New("engine: not answering") })
	waitFor("banner on", `document.getElementById("banner").className`, "on")
	waitFor("banner text", `document.getElementById("banner").textContent.indexOf("engine: not answering") >= 0`, true)
	waitFor("old data kept", text(`[data-instance="VI_1"] [data-field=state]`), "MASTER")
	f.set(func(_ *status.Snapshot, err *error) { *err = nil })
	waitFor("banner off", `document.getElementById("banner").className`, "")
}

// timelineColours are the fills index.html gives each state's periods.
var timelineColours = map[string]color.RGBA{
	"MASTER": {0x2f, 0xa5, 0x7a, 0xff},
	"BACKUP": {0x5b, 0x86, 0xd6, 0xff},
}

// checkTimelineInScreenshot finds VI_1's timeline in the screenshot: at the
// middle of each period wider than a few pixels, the pixel has its state's
// colour, so the strip is really drawn, where the page says it is.
func checkTimelineInScreenshot(t *testing.T, ctx context.Context, c *cdp.Client, sess string, shot []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	v, err := c.Eval(ctx, sess, `JSON.stringify(Array.from(document.querySelectorAll('svg[data-timeline="VI_1"] [data-segment]')).map(function(r){
		var b=r.getBoundingClientRect();return {state:r.getAttribute("data-state"),x:b.left+b.width/2+window.scrollX,y:b.top+b.height/2+window.scrollY,w:b.width}}))`)
	if err != nil {
		t.Fatal(err)
	}
	var js string
	var segs []struct {
		State   string
		X, Y, W float64
	}
	if err := json.Unmarshal(v, &js); err != nil || json.Unmarshal([]byte(js), &segs) != nil {
		t.Fatalf("segments: %s", v)
	}
	checked := 0
	for _, sg := range segs {
		want, ok := timelineColours[sg.State]
		if !ok || sg.W < 6 {
			continue
		}
		r, g, b, _ := img.At(int(sg.X), int(sg.Y)).RGBA()
		got := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xff}
		near := func(a, b uint8) bool { return a-b < 8 || b-a < 8 }
		if !near(got.R, want.R) || !near(got.G, want.G) || !near(got.B, want.B) {
			t.Errorf("screenshot at (%.0f,%.0f), a %s period: colour %v, want %v", sg.X, sg.Y, sg.State, got, want)
		}
		checked++
	}
	if checked < 3 {
		t.Errorf("only %d timeline periods found in the screenshot (segments %+v)", checked, segs)
	}
}

func screenshot(t *testing.T, ctx context.Context, c *cdp.Client, sess string) []byte {
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	if err := c.Call(ctx, sess, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &shot); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 20_000 {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	path := os.Getenv("VIGIL_WEB_SCREENSHOT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "status.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return png
}
