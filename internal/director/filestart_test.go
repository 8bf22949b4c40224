package director

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/probe"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/runspec"
)

// fileReal is oneReal with a FILE_CHECK on path (weight w) instead of a
// TCP_CHECK.
func fileReal(path string, w int) runspec.DirectorSpec {
	vs := lb.VirtualServer{
		Addr: netip.MustParseAddr("192.168.118.110"), Port: 80, Proto: lb.TCP, Family: lb.IPv4, Scheduler: "rr", Method: lb.NAT, Quorum: 1,
		Reals: []lb.RealServer{{Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080, Weight: 1, Method: lb.NAT}},
	}
	return runspec.DirectorSpec{VirtualServers: []lb.VirtualServer{vs}, Checks: []runspec.RealCheck{{
		ID:     lb.RealID{VS: vs.ID(), Addr: vs.Reals[0].AddrPort()},
		Weight: 1,
		Checkers: []runspec.CheckerSpec{{Name: "FILE_CHECK 10.0.0.1:8080", Key: "file " + path,
			Policy: check.Defaults(check.KindFile, 0), Checker: &probe.File{Path: path, Weight: w}}},
	}}}
}

// A FILE_CHECK's file is read before the first kernel update, as keepalived
// 2.2.7 reads its track files at start (track_file.c init_track_files):
// a real server whose file reports a fault is never installed and no
// notify_down runs; one whose file gives a weight offset is installed with
// it from the start.
func TestDirectorFileCheckAtStart(t *testing.T) {
	for _, tc := range []struct {
		name           string
		content        string
		weight         int
		wantEver       []string
		wantEvents     []string
		then           string
		wantThen       []string
		wantThenEvents []string
	}{
		{
			name: "fault at start", content: "1\n", weight: 0,
			wantEver: nil, wantEvents: nil,
			then: "0\n", wantThen: []string{"10.0.0.1:8080 NAT w1"}, wantThenEvents: []string{"real-up 10.0.0.1:8080", "quorum-up"},
		},
		{
			name: "weight offset at start", content: "3\n", weight: 2,
			wantEver: []string{"10.0.0.1:8080 NAT w7"}, wantEvents: []string{"quorum-up"},
			then: "-1073741824\n", wantThen: nil, wantThenEvents: []string{"real-down 10.0.0.1:8080", "quorum-down"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			synctest.Test(t, func(t *testing.T) {
				_, be, log, _, stop := startDirector(t, fileReal(path, tc.weight))
				settle := func() { time.Sleep(10 * time.Second); synctest.Wait() }
				settle()
				if diff := cmp.Diff(tc.wantEver, be.everDests()); diff != "" {
					t.Errorf("destinations ever installed (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantEvents, log.take()); diff != "" {
					t.Errorf("events at start (-want +got):\n%s", diff)
				}
				if err := os.WriteFile(path, []byte(tc.then), 0o644); err != nil {
					t.Fatal(err)
				}
				settle()
				if diff := cmp.Diff(tc.wantThen, be.dests()); diff != "" {
					t.Errorf("after the file changed (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantThenEvents, log.take()); diff != "" {
					t.Errorf("events after the file changed (-want +got):\n%s", diff)
				}
				stop()
			})
		})
	}
}
