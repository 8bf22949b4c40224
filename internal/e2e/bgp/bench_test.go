package bgp

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// benchConf is one director whose VRRP instance holds 998 excluded
// addresses 10.8.x.y besides its VIP, and the anycast virtual server:
// 1,000 prefixes in all. A track_file with weight 0 puts the instance in
// FAULT, which withdraws its 999 routes at once.
func benchConf(trackFile string) string {
	var vips strings.Builder
	for i := range 998 {
		fmt.Fprintf(&vips, "        10.8.%d.%d/32\n", i/250, i%250+1)
	}
	c := vigilConf(0)
	c = strings.Replace(c, "vrrp_instance VI_1 {\n", fmt.Sprintf("track_file down {\n    file %s\n    weight 0\n}\nvrrp_instance VI_1 {\n    track_file {\n        down\n    }\n    virtual_ipaddress_excluded {\n%s    }\n", trackFile, vips.String()), 1)
	// One router only.
	c = strings.Replace(c, "    neighbor "+frrAddr+" {\n        remote_as 65000\n        hold_time 3\n        connect_retry 1\n    }\n", "", 1)
	return c
}

// birdRoutes counts the routes BIRD installed in the router's kernel.
func birdRoutes(h *lab.Host) int {
	out, err := h.Run("ip", "-4", "route", "show", "proto", "bird")
	if err != nil {
		return -1
	}
	return strings.Count(out, "\n")
}

var (
	quorumDownLine = regexp.MustCompile(`time=(\S+) level=INFO msg="virtual server quorum" virtual_server=\S+ up=false`)
	withdrawnLine  = regexp.MustCompile(`time=(\S+) level=INFO msg="bgp route" prefix=` + regexp.QuoteMeta(anyVIP) + `/32 state=withdrawn`)
	masterLine     = regexp.MustCompile(`time=(\S+) level=INFO msg=transition instance=VI_1 from=BACKUP to=MASTER`)
)

// logTime is the time of the first log line matching re.
func logTime(b *testing.B, log string, re *regexp.Regexp) time.Time {
	m := re.FindStringSubmatch(log)
	if m == nil {
		b.Fatalf("no log line matches %s", re)
	}
	t, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkRouter1000 measures, through BIRD and the kernel table it
// programs, with 1,000 prefixes: how fast they are announced and
// withdrawn, and the time from a failed check (the director's quorum-down
// log line) to the router's route change for one of them. One round per
// run: the lab takes seconds to build.
func BenchmarkRouter1000(b *testing.B) {
	track := filepath.Join(b.TempDir(), "down")
	if err := os.WriteFile(track, []byte("0\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	n := buildLab(b, []string{benchConf(track)}, false)
	b.ResetTimer()
	for range b.N {
		// Announce: from MASTER to 1,000 routes in the router's kernel.
		if err := n.nodes[0].WaitLog("to=MASTER", 30*time.Second); err != nil {
			b.Fatal(err)
		}
		waitFor(b, time.Minute, "1,000 routes at BIRD", func() bool { return birdRoutes(n.bird) == 1000 })
		tUp := time.Since(logTime(b, n.nodes[0].Log(), masterLine))

		// A failed check with 1,000 routes in place.
		if err := n.health[0].Close(); err != nil {
			b.Fatal(err)
		}
		waitFor(b, 30*time.Second, "the anycast route gone", func() bool { return len(nextHops(n.bird, anyVIP)) == 0 })
		changed := time.Now()
		failed := logTime(b, n.nodes[0].Log(), quorumDownLine)
		tCheck := changed.Sub(failed)
		tSpeaker := logTime(b, n.nodes[0].Log(), withdrawnLine).Sub(failed)

		// Withdraw: FAULT takes the instance's 999 routes away at once.
		start := time.Now()
		if err := os.WriteFile(track, []byte("1\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		waitFor(b, time.Minute, "no routes at BIRD", func() bool { return birdRoutes(n.bird) == 0 })
		tDown := time.Since(start)
		b.ReportMetric(1000/tUp.Seconds(), "announced/s")
		b.ReportMetric(999/tDown.Seconds(), "withdrawn/s")
		b.ReportMetric(float64(tCheck.Milliseconds()), "ms-check-to-route")
		b.Logf("1,000 routes in BIRD's kernel table %v after MASTER; a failed check reached the speaker in %v and the router's table in %v; 999 withdrawn in %v (incl. track_file detection)",
			tUp.Round(time.Millisecond), tSpeaker.Round(time.Millisecond), tCheck.Round(time.Millisecond), tDown.Round(time.Millisecond))
	}
}
