package track

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestTrackProcessWithoutProcEvents: where the kernel gives vigil no process
// events (here vigil runs in its own PID namespace, as in a container; also
// a kernel without CONFIG_PROC_EVENTS), keepalived 2.2.7 still takes each
// vrrp_track_process's state from its initial /proc scan
// (track_process.c init_track_processes) and only warns "the kernel does not
// support proc events - track_process will not work". Of two trackers with
// weight -20, the one whose process runs is up and the other down: priority
// 100 - 20 = 80.
//
// KNOWN BUG (fails today): procwatch.Watcher.Run returns an error when the
// subscription is refused or unanswered, before its initial scan, and the
// engine leaves both trackers "no result yet", which adds no weight
// (priority 100 whatever runs).
func TestTrackProcessWithoutProcEvents(t *testing.T) {
	t.Parallel()
	netnstest.RequireCommand(t, "unshare")
	l := netnstest.New(t, "noproc")
	h := netnstest.AddHost(t, l, "n1", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.6.0.1/24"}})
	netnstest.WaitLANReady(t, l, h)
	n := newNode(t, h)

	// vigil runs as PID 1 of a new PID namespace, with its /proc, beside a
	// process with a name nothing else runs.
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	present := fmt.Sprintf("vgpres%d", os.Getpid()%1000000)
	copyFile(t, sleepBin, filepath.Join(n.dir, present))
	n.wrap = []string{"unshare", "--pid", "--kill-child=SIGTERM", "--mount-proc",
		"sh", "-c", filepath.Join(n.dir, present) + ` 600 & exec "$@"`, "sh"}
	n.start(fmt.Sprintf(`global_defs {
    router_id noproc
}
vrrp_track_process present {
    process %s
    weight -20
}
vrrp_track_process absent {
    process vgabsent%d
    weight -20
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    version 3
    virtual_router_id 1
    priority 100
    advert_int 0.1
    track_process {
        present
        absent
    }
    virtual_ipaddress {
        10.6.0.100/24
    }
}
`, present, os.Getpid()%1000000))
	n.waitState("VI_1", "MASTER", 10*time.Second)
	// The kernel is given 2 s to answer the subscription.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && n.instance("VI_1").EffectivePriority != 80 {
		time.Sleep(50 * time.Millisecond)
	}
	if in := n.instance("VI_1"); in.EffectivePriority != 80 {
		t.Errorf("priority %d without process events, want 80 as keepalived (from its /proc scan: %s up, vgabsent down); trackers %+v",
			in.EffectivePriority, present, in.Trackers)
	}
}
