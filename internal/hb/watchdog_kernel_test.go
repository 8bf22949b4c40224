package hb_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hblab"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// softdogMargin is the softdog timeout (seconds) the kernel test loads.
const softdogMargin = 3

// loadSoftdog loads the kernel's software watchdog with soft_noboot=1 (it
// logs "Triggered - Reboot ignored" where it would reset the machine) and
// unloads it when the test ends. A machine that already has a watchdog
// device is never touched: a real one would reset it.
func loadSoftdog(t *testing.T) {
	t.Helper()
	inVM := os.Getenv("VIGIL_VM") == "1"
	if _, err := os.Stat("/dev/watchdog"); err == nil {
		if inVM {
			t.Fatal("/dev/watchdog exists before the test loaded softdog")
		}
		t.Skip("skipped: this machine has a watchdog device; the test only drives a softdog it loads itself (scripts/vm-test)")
	}
	modprobe := "modprobe"
	if b, err := os.ReadFile("/proc/sys/kernel/modprobe"); err == nil && strings.TrimSpace(string(b)) != "" {
		modprobe = strings.TrimSpace(string(b)) // the VM's wrapper over the shared kernel package
	}
	out, err := exec.Command(modprobe, "softdog", "soft_noboot=1", "nowayout=0", "soft_margin="+strconv.Itoa(softdogMargin)).CombinedOutput()
	if err != nil {
		if inVM {
			t.Fatalf("modprobe softdog: %v\n%s", err, out)
		}
		// As IPVS: this project's CI kernel has no softdog; the VM tier has.
		t.Skipf("skipped: the kernel has no softdog (%v: %s); scripts/vm-test runs this test", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command(modprobe, "-r", "softdog").Run() })
	if _, err := os.Stat("/dev/watchdog"); err != nil {
		t.Fatalf("softdog loaded but: %v", err)
	}
}

// kmsgMark writes a marker line into the kernel log; kernelLogSince returns
// what the kernel logged after the last marker.
func kmsgMark(t *testing.T, mark string) {
	t.Helper()
	if err := os.WriteFile("/dev/kmsg", []byte("vigil-test: "+mark+"\n"), 0); err != nil {
		t.Fatal(err)
	}
}

func kernelLogSince(t *testing.T, mark string) string {
	t.Helper()
	out, err := exec.Command("dmesg").Output()
	if err != nil {
		t.Fatalf("dmesg: %v", err)
	}
	s := string(out)
	i := strings.LastIndex(s, "vigil-test: "+mark)
	if i < 0 {
		t.Fatalf("marker %q not in the kernel log", mark)
	}
	return s[i:]
}

const softdogFired = "Triggered - Reboot ignored"

// TestKernelWatchdog runs vigil with ha.cf's `watchdog /dev/watchdog` on a
// softdog: a clean SIGTERM stop disarms it (no trigger, even after the
// margin), while SIGKILL (`killall -9 heartbeat` of the seed tutorial)
// leaves it armed and the kernel fires once the margin passes. The running
// phase outlasts the margin, so the writes with each heartbeat are what
// keeps the timer from firing.
func TestKernelWatchdog(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.RequireCommand(t, "dmesg")
	loadSoftdog(t)
	l := netnstest.New(t, "hbwd")
	h := netnstest.AddHost(t, l, "ha1", lab.Iface{Name: "eth1", LAN: "hb", Addrs: []string{"10.0.0.1/24"}})
	files := hblab.Files{
		HaCf: "keepalive 500ms\nwarntime 1\ndeadtime 2\ninitdead 2\nucast eth1 10.0.0.2\nauto_failback off\n" +
			"node ha1\nnode ha2\nwatchdog /dev/watchdog\n",
		AuthKeys: "auth 1\n1 crc\n",
	}
	margin := softdogMargin * time.Second
	start := func(t *testing.T) *hblab.Vigil {
		v := hblab.NewVigil(t, h, "ha1", files)
		v.Start()
		if !v.Proc.WaitOutput("using watchdog device", 30*time.Second) {
			t.Fatalf("vigil did not open the watchdog:\n%s", v.Output())
		}
		return v
	}

	t.Run("SIGTERM disarms", func(t *testing.T) {
		kmsgMark(t, "sigterm")
		v := start(t)
		time.Sleep(margin + 2*time.Second) // kept alive by the heartbeats alone
		if log := kernelLogSince(t, "sigterm"); strings.Contains(log, softdogFired) {
			t.Fatalf("softdog fired while vigil ran:\n%s\nvigil:\n%s", log, v.Output())
		}
		if err := v.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(v.Output(), "closing watchdog device") {
			t.Errorf("no magic close logged:\n%s", v.Output())
		}
		time.Sleep(margin + 2*time.Second)
		if log := kernelLogSince(t, "sigterm"); strings.Contains(log, softdogFired) || strings.Contains(log, "did not stop") {
			t.Fatalf("softdog not disarmed by the clean stop:\n%s\nvigil:\n%s", log, v.Output())
		}
	})

	t.Run("SIGKILL fires", func(t *testing.T) {
		kmsgMark(t, "sigkill")
		v := start(t)
		v.KillDaemon()
		killed := time.Now()
		deadline := killed.Add(margin + 15*time.Second)
		for {
			log := kernelLogSince(t, "sigkill")
			if strings.Contains(log, softdogFired) {
				t.Logf("softdog fired %.1f s after SIGKILL (margin %v):\n%s", time.Since(killed).Seconds(), margin, strings.TrimSpace(log))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("softdog did not fire within %v of SIGKILL:\n%s\nvigil:\n%s", time.Since(killed), log, v.Output())
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}
