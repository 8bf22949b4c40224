package lvs

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

// The test a user of a NAT director pair cares about: established
// connections through the VIP while the MASTER dies (SIGKILL, host
// unplugged) or hands over (`vigil handover`). With conntrack_sync the
// directors replicate their connection tracking table through conntrackd
// on a third link, and the new MASTER commits the replicated DNAT entries
// before traffic needs them: no connection breaks. Without it the new
// MASTER meets mid-stream packets of flows it never saw.
//
// conntrackd's unicast UDP channel carries the flows in the SIGKILL runs,
// its multicast channel in the handover runs.
//
// The runs without sync are the baseline of the figures; they assert
// nothing about broken connections and run only with
// VIGIL_E2E_CONNSYNC_BASELINE=1.
func TestNATConnSync(t *testing.T) {
	t.Parallel()
	netnstest.RequireCommand(t, "conntrackd")
	baseline := os.Getenv("VIGIL_E2E_CONNSYNC_BASELINE") != ""
	for _, tc := range []struct {
		name     string
		sync     bool
		handover bool
	}{
		{"sync/kill9", true, false},
		{"sync/handover", true, true},
		{"nosync/kill9", false, false},
		{"nosync/handover", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.sync && !baseline {
				t.Skip("baseline without sync: set VIGIL_E2E_CONNSYNC_BASELINE=1")
			}
			t.Parallel()
			r := connSyncRun(t, tc.sync, tc.handover)
			t.Logf("%s: %d of %d long-lived connections broke, longest stall %v; bulk download: %d of %d bytes, %d lost, longest stall %v %s",
				tc.name, r.broken, r.flows, r.longest.Round(time.Millisecond), r.bulkGot, r.bulkSize, r.bulkSize-r.bulkGot,
				r.bulkStall.Round(time.Millisecond), r.errs)
			if tc.sync && (r.broken > 0 || r.bulkGot != r.bulkSize) {
				t.Errorf("with conntrack_sync: %d broken connections, bulk download %d of %d bytes (%s)", r.broken, r.bulkGot, r.bulkSize, r.errs)
			}
		})
	}
}

type connSyncResult struct {
	flows, broken     int
	longest           time.Duration
	bulkSize, bulkGot int64
	bulkStall         time.Duration
	errs              []string
}

// bulkSize is the download's size; the client reads it at about 4 MB/s,
// so it spans the failover.
const (
	bulkSize  = 40 << 20
	bulkChunk = 64 << 10
	bulkRate  = 4 << 20 // bytes per second
)

func connSyncConf(i int, withSync, mcast bool) string {
	state, prio := "MASTER", 100
	if i == 1 {
		state, prio = "BACKUP", 90
	}
	check := tcpCheck("1", 1, "1")
	c := vrrpPair(fmt.Sprintf("LVS_%d", i+1), state, prio) +
		vs{port: 80, delayLoop: "1", reals: []rs{{addr: web1, checker: check}, {addr: web2, checker: check}}}.String()
	if withSync {
		// The handover runs use conntrackd's multicast channel, the
		// others its unicast UDP one.
		peer := "unicast_peer " + syncAddrs[1-i]
		if mcast {
			peer = "mcast_group 225.0.0.50"
		}
		c += fmt.Sprintf(`conntrack_sync {
	interface eth2
	%s
	vrrp_sync_group VG_1
}
`, peer)
	}
	return c
}

func connSyncRun(t *testing.T, withSync, handover bool) connSyncResult {
	tp := newTopo(t, "csync", topoOpts{directors: 2, gateway: backVIP, syncLink: true})
	master, backup := tp.dirs[0], tp.dirs[1]
	for _, w := range tp.web {
		big := filepath.Join(w.dir, "html", "big.bin")
		f, err := os.Create(big)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(bulkSize); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	master.writeConfig(connSyncConf(0, withSync, handover))
	backup.writeConfig(connSyncConf(1, withSync, handover))
	startPair(t, master, backup)
	waitChecked(t, master, patience)
	waitChecked(t, backup, patience)
	if withSync {
		if out, err := master.vigil("check", "-f", master.confPath()); err != nil {
			t.Errorf("vigil check: %v\n%s", err, out)
		}
		for _, d := range tp.dirs {
			waitFor(t, patience, d.host.Name()+": conntrackd runs and hears its peer", func() (bool, string) {
				cs := d.mustStatus().ConnSync
				if cs == nil {
					return false, "no conn_sync in the status"
				}
				return cs.Alive && len(cs.Warnings) == 0 && cs.Role != "INIT", fmt.Sprintf("%+v", *cs)
			})
		}
	}

	// 30 long-lived connections asking every 100 ms, and one slow bulk
	// download.
	const nflows = 30
	stop := make(chan struct{})
	var wg sync.WaitGroup
	flows := startFlows(t, tp.client.host, vip+":80", nflows, stop, &wg)
	type bulkResult struct {
		got   int64
		stall time.Duration
		err   error
	}
	bulkDone := make(chan bulkResult, 1)
	var bc net.Conn
	if err := tp.client.host.Do(func() error {
		var err error
		bc, err = net.DialTimeout("tcp", vip+":80", 3*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.Close() })
	go func() {
		var r bulkResult
		defer func() { bulkDone <- r }()
		_ = bc.SetDeadline(time.Now().Add(2 * patience))
		if _, r.err = io.WriteString(bc, "GET /big.bin HTTP/1.1\r\nHost: vip\r\n\r\n"); r.err != nil {
			return
		}
		br := bufio.NewReaderSize(bc, bulkChunk)
		resp, err := http.ReadResponse(br, nil)
		if r.err = err; err != nil {
			return
		}
		defer resp.Body.Close()
		buf := make([]byte, bulkChunk)
		start, last := time.Now(), time.Now()
		for {
			n, err := resp.Body.Read(buf)
			now := time.Now()
			if n > 0 {
				r.stall = max(r.stall, now.Sub(last))
				last = now
				r.got += int64(n)
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				r.err = err
				return
			}
			// Pace the reads: the server's sends follow the window.
			if ahead := time.Duration(float64(r.got)/bulkRate*float64(time.Second)) - now.Sub(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}()
	time.Sleep(2 * time.Second)
	if withSync {
		// The BACKUP's external cache holds the MASTER's flows.
		waitFor(t, patience, "the BACKUP's external cache holds the 31 flows", func() (bool, string) {
			cs := backup.mustStatus().ConnSync
			return cs.External >= nflows+1, fmt.Sprintf("external %d, internal %d", cs.External, cs.Internal)
		})
	}

	if handover {
		if out, err := master.vigil("handover", "--api-socket", master.sock()); err != nil {
			t.Fatalf("vigil handover: %v\n%s", err, out)
		}
	} else {
		master.kill9()
		for _, ifc := range []string{"eth0", "eth1", "eth2"} {
			if err := master.host.SetCable(ifc, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	took := waitFor(t, patience, "BACKUP becomes MASTER", func() (bool, string) {
		s := backup.mustStatus()
		return states(s) == "MASTER MASTER", states(s)
	})
	t.Logf("BACKUP is MASTER %v after the %s", took.Round(time.Millisecond), map[bool]string{true: "handover", false: "SIGKILL"}[handover])
	became := time.Now()
	waitFor(t, patience, "every long-lived connection answers after the failover or fails", func() (bool, string) {
		waiting := 0
		for _, f := range flows {
			f.mu.Lock()
			if f.err == nil && f.last.Before(became) {
				waiting++
			}
			f.mu.Unlock()
		}
		return waiting == 0, fmt.Sprintf("%d still waiting", waiting)
	})
	var b bulkResult
	select {
	case b = <-bulkDone:
	case <-time.After(2 * patience):
		t.Fatal("the bulk download neither ended nor failed")
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	r := connSyncResult{flows: nflows + 1, bulkSize: bulkSize, bulkGot: b.got, bulkStall: b.stall}
	for _, f := range flows {
		if f.err != nil {
			r.broken++
			r.errs = append(r.errs, errString(f.err))
		}
		r.longest = max(r.longest, f.maxGap)
	}
	if b.err != nil || b.got != bulkSize {
		r.broken++
		r.errs = append(r.errs, "bulk: "+errString(b.err))
	}
	r.longest = max(r.longest, b.stall)
	if withSync {
		cs := backup.mustStatus().ConnSync
		if cs.Role != "MASTER" || cs.LastResync.IsZero() || !cs.Alive {
			t.Errorf("new MASTER's conn_sync: %+v", *cs)
		}
		t.Logf("new MASTER's conntrackd: internal %d, external %d, last resync %s", cs.Internal, cs.External, cs.LastResync.Format(time.RFC3339Nano))
		if out, err := backup.vigil("status", "--api-socket", backup.sock()); err != nil || !strings.Contains(out, "connection sync conntrackd  running") {
			t.Errorf("vigil status: %v\n%s", err, out)
		}
		if handover {
			waitFor(t, patience, "the old MASTER's conntrackd follows BACKUP", func() (bool, string) {
				cs := master.mustStatus().ConnSync
				return cs.Role == "BACKUP", cs.Role
			})
		} else {
			// The peer is gone: its silence is a warning, not a silent loss.
			waitFor(t, patience, "the lost sync peer is a warning", func() (bool, string) {
				cs := backup.mustStatus().ConnSync
				return strings.Contains(strings.Join(cs.Warnings, "; "), "nothing heard from the sync peer"), fmt.Sprint(cs.Warnings)
			})
			// A conntrackd that dies is restarted, counted, and follows
			// the MASTER role again.
			old := backup.mustStatus().ConnSync
			if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitFor(t, patience, "conntrackd restarted", func() (bool, string) {
				cs := backup.mustStatus().ConnSync
				return cs.Restarts == 1 && cs.Alive && cs.PID != old.PID && cs.LastResync.After(old.LastResync), fmt.Sprintf("%+v", *cs)
			})
		}
	}
	return r
}
