package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/vigil-ha/vigil/internal/metrics"
	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

var update = flag.Bool("update", false, "rewrite testdata/scrape-*.txt from this run")

// TestScrapeAndStatusUnchanged: a pair of nodes with three instances (one
// whose password differs, so that adverts are dropped), a stop of the
// master and a takeover, in fake time; the backup's and the master's
// /metrics scrape (the collector's series, without the Go runtime's), their
// status as JSON and as `vigil status` prints it are what they were when
// testdata/scrape-*.txt were written (go test -run ScrapeAndStatus -update
// rewrites them). The engine's bookkeeping may change its representation;
// what it shows may not.
func TestScrapeAndStatusUnchanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		// inst is instance name (VRID) with vip at prio; pass is its
		// password.
		inst := func(name string, vrid uint8, st vrrp.State, prio uint8, vip, pass string) runspec.InstanceSpec {
			s := tutorialInstance(st, prio)
			s.VRRP.Name, s.VRRP.VRID = name, vrid
			s.VRRP.AuthPass = [8]byte{}
			copy(s.VRRP.AuthPass[:], pass)
			p := netip.MustParsePrefix(vip)
			s.VRRP.VIPs = []netip.Addr{p.Addr()}
			s.VIPs = []netif.VIP{{Prefix: p, Dev: "eth0"}}
			return s
		}
		a1, b1 := tutorialInstance(vrrp.StateMaster, 100), tutorialInstance(vrrp.StateBackup, 99)
		a2 := inst("VI_2", 56, vrrp.StateMaster, 150, "192.168.1.101/24", "1111")
		b2 := inst("VI_2", 56, vrrp.StateBackup, 50, "192.168.1.101/24", "1111")
		a3 := inst("VI_3", 57, vrrp.StateMaster, 100, "192.168.1.102/24", "1111")
		b3 := inst("VI_3", 57, vrrp.StateBackup, 99, "192.168.1.102/24", "2222")
		a := startNode(t, lan, "a", "192.168.1.105/24", a1, a2, a3)
		b := startNode(t, lan, "b", "192.168.1.106/24", b1, b2, b3)
		time.Sleep(5 * time.Second)
		check(t, "scrape-backup.txt", render(t, b))
		a.stop(t)
		time.Sleep(5 * time.Second)
		check(t, "scrape-takeover.txt", render(t, b))
		b.stop(t)
	})
}

// render is a node's scrape, status JSON and status text.
func render(t *testing.T, n *node) []byte {
	t.Helper()
	snap := func() status.Snapshot {
		s := n.snapshot(t)
		s.Daemon.PID = 0
		return s
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(func(context.Context) (status.Snapshot, error) { return snap(), nil }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	s := snap()
	buf.WriteString("\n")
	j, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(j)
	buf.WriteString("\n\n")
	if err := status.WriteText(&buf, s); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func check(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; got:\n%s", file, got)
	}
}
