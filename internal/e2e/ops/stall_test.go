package ops

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
)

// groupStates returns the state letters (/proc/PID/stat field 3) of the
// processes in process group pgid.
func groupStates(pgid int) []string {
	var out []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fs := strings.Fields(s[i+1:])
		if len(fs) >= 3 && fs[2] == fmt.Sprint(pgid) {
			out = append(out, fs[0])
		}
	}
	return out
}

// stallBackup stops the backup's process group for longer than its master
// down interval (0.72 s here), lets it run, and repeats. Meanwhile the
// master keeps advertising: when the backup wakes, the master's adverts
// wait in its socket.
func stallBackup(t *testing.T, p *lab.Proc, want int) {
	t.Helper()
	for range 4 {
		if err := syscall.Kill(-p.PID(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		// A process stops when it next runs, later on a loaded machine:
		// the stall counts from then.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			stopped := 0
			for _, st := range groupStates(p.PID()) {
				if st == "T" {
					stopped++
				}
			}
			if stopped >= want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d of the backup's processes are stopped 10 s after SIGSTOP (%v), want %d", stopped, groupStates(p.PID()), want)
			}
		}
		time.Sleep(1200 * time.Millisecond)
		if err := syscall.Kill(-p.PID(), syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(800 * time.Millisecond)
	}
}

// TestBackupStallDoesNotFlap stalls a BACKUP (SIGSTOP, as a VM pause, a
// debugger or a starved CPU would) for longer than its master down
// interval while the MASTER keeps advertising, four times. keepalived
// 2.2.7, as the backup, stays BACKUP: when its process resumes it reads
// the adverts queued in its socket before acting on the expired timer
// (its scheduler hands ready file descriptors out before timeouts). vigil,
// as the backup, must do the same: becoming MASTER on wake-up, for a
// millisecond, adds the VIP and sends gratuitous ARP that pull the
// clients' traffic to a node that gives the address back at once.
func TestBackupStallDoesNotFlap(t *testing.T) {
	t.Parallel()
	t.Run("keepalived", func(t *testing.T) {
		t.Parallel()
		ka := netnstest.RequireCommand(t, "keepalived")
		x := newPairLab(t, "stallka")
		d1 := newDaemon(t, x.n1, pairConf("n1", "MASTER", 150))
		d1.start()
		d1.waitFor("n1 MASTER", 20*time.Second, inState("MASTER", "VI_1"))
		dir := t.TempDir()
		conf := filepath.Join(dir, "keepalived.conf")
		if err := os.WriteFile(conf, []byte(pairConf("n2", "BACKUP", 100)), 0o644); err != nil {
			t.Fatal(err)
		}
		// -P: VRRP only (this kernel has no IPVS for the virtual server).
		p, err := x.n2.Start("env", append([]string{"TMPDIR=" + dir, ka}, e2e.KeepalivedArgs("-P", "-f", conf,
			"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"))...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = p.Signal(syscall.SIGTERM)
			p.Wait(10 * time.Second)
			if t.Failed() {
				t.Logf("keepalived output:\n%s", p.Output())
			}
		})
		// keepalived starts its VRRP child, which hears the master.
		if !p.WaitOutput("Entering BACKUP STATE", 30*time.Second) {
			t.Fatalf("keepalived did not enter BACKUP within 30 s")
		}
		time.Sleep(500 * time.Millisecond) // a few of the master's adverts
		stallBackup(t, p, 2)               // keepalived's parent and its VRRP child
		stats := filepath.Join(dir, "keepalived.stats")
		_ = p.Signal(syscall.SIGUSR2)
		var b []byte
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if b, err = os.ReadFile(stats); err == nil && strings.Contains(string(b), "Priority Zero") {
				break
			}
		}
		st := parseStats(t, b)["VI_1"]
		if st == nil {
			t.Fatalf("keepalived.stats: %s", b)
		}
		if st["Became master"] != 0 {
			t.Errorf("keepalived became master %d times during the stalls", st["Became master"])
		}
		t.Logf("keepalived as the backup: became master %d times, %d adverts received", st["Became master"], st["Advertisements/Received"])
	})
	t.Run("vigil", func(t *testing.T) {
		t.Parallel()
		x := newPairLab(t, "stallvg")
		d1 := newDaemon(t, x.n1, pairConf("n1", "MASTER", 150))
		d1.start()
		d1.waitFor("n1 MASTER", 20*time.Second, inState("MASTER", "VI_1"))
		d2 := newDaemon(t, x.n2, pairConf("n2", "BACKUP", 100))
		d2.start()
		d2.waitFor("n2 BACKUP, hearing n1", 20*time.Second, func(s status.Snapshot) bool {
			in, _ := instance(s, "VI_1")
			return in.State == "BACKUP" && in.Counters.AdvertsReceived >= 3
		})
		stallBackup(t, d2.p, 1)
		s := d2.status()
		in, _ := instance(s, "VI_1")
		if in.Counters.BecameMaster != 0 {
			var flaps []string
			for _, tr := range s.Transitions {
				if tr.Name == "VI_1" && tr.From != "INIT" {
					flaps = append(flaps, fmt.Sprintf("%s %s→%s (%s)", tr.At.Format("15:04:05.000"), tr.From, tr.To, tr.Reason))
				}
			}
			t.Errorf("vigil as the backup became master %d times after stalls while the master advertised:\n%s",
				in.Counters.BecameMaster, strings.Join(flaps, "\n"))
		}
	})
}
