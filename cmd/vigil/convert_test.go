package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConvertTutorial converts seed 004's ha.d (heartbeat tutorial) and
// checks the result is a keepalived.conf vigil accepts, with the group's
// VIP, the home node's priority, the ping node and the service scripts.
func TestConvertTutorial(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"ha.cf": "debugfile /var/log/ha-debug\nlogfile /var/log/ha-log\nlogfacility local0\nkeepalive 2\ndeadtime 30\nwarntime 10\ninitdead 60\n" +
			"udpport 694\nucast eth1 10.0.0.2\nauto_failback on\nnode HA1\nnode HA2\nping 10.168.0.1\n",
		"haresources": "ha1 10.168.0.160/24/eth0 nginx\n",
		"authkeys":    "auth 3\n3 md5 hello!\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	if code := runConvert([]string{"--ha-dir", dir, "--node", "HA1"}, &out, &errb); code != 0 {
		t.Fatalf("convert exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"10.168.0.160/24 dev eth0", "priority 150", "advert_int 10", "ping -c 1 -W 1 10.168.0.1", `notify_master "/etc/vigil/HA_GROUP_1.sh start"`, "/etc/init.d/nginx start",
		// heartbeat's dedicated link carries the adverts; the service link is tracked.
		"interface eth1\n", "unicast_peer {\n        10.0.0.2\n", "track_interface {\n        eth0\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("converted configuration lacks %q:\n%s", want, out.String())
		}
	}
	for _, want := range []string{"ha.cf:2:1: warning: logfile /var/log/ha-log: keepalived.conf has no log file; vigil logs to stderr", "ha.cf:1:1: warning: debugfile"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	// --script-dir writes the group's resource script, executable, and the
	// configuration names it there.
	sd := filepath.Join(dir, "scripts")
	var out2, errb2 bytes.Buffer
	if code := runConvert([]string{"--ha-dir", dir, "--node", "HA1", "--script-dir", sd}, &out2, &errb2); code != 0 {
		t.Fatalf("convert --script-dir: exit %d: %s", code, errb2.String())
	}
	script := filepath.Join(sd, "HA_GROUP_1.sh")
	fi, err := os.Stat(script)
	if err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Fatalf("resource script %s: %v %v", script, fi, err)
	}
	body, _ := os.ReadFile(script)
	if !strings.Contains(string(body), "start) /etc/init.d/nginx start ;;") || !strings.Contains(string(body), "stop) /etc/init.d/nginx stop ;;") {
		t.Errorf("resource script:\n%s", body)
	}
	if err := exec.Command("sh", "-n", script).Run(); err != nil {
		t.Errorf("sh -n %s: %v", script, err)
	}
	if !strings.Contains(out2.String(), `notify_master "`+script+` start"`) {
		t.Errorf("configuration does not name the written script:\n%s", out2.String())
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := runCheck([]string{"-f", conf, "-q"}, &out, &errb); code != 0 {
		t.Fatalf("vigil check of the converted file: exit %d\n%s", code, errb.String())
	}
	// The other node gets the lower priority.
	out.Reset()
	if code := runConvert([]string{"--ha-dir", dir, "--node", "HA2"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "priority 100") {
		t.Fatalf("HA2: exit %d\n%s", code, out.String())
	}
	if code := runConvert([]string{"--ha-dir", dir, "--node", "HA9"}, &out, &errb); code != 1 {
		t.Fatalf("a node not in ha.cf: exit %d, want 1", code)
	}
}

// TestCheckHADirWatchdog: ha.cf's watchdog is driven, so check lists it
// and warns about nothing; convert says keepalived.conf has no watchdog.
func TestCheckHADirWatchdog(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"ha.cf":       "keepalive 2\ndeadtime 30\nwarntime 10\ninitdead 60\nucast eth1 10.0.0.2\nauto_failback on\nnode HA1\nnode HA2\nwatchdog /dev/watchdog\n",
		"haresources": "ha1 10.168.0.160/24/eth0\n",
		"authkeys":    "auth 3\n3 md5 hello!\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	if code := runCheck([]string{"--ha-dir", dir}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Fatalf("check exit %d, stderr %q", code, errb.String())
	}
	if !strings.Contains(out.String(), "  watchdog /dev/watchdog: written with every heartbeat") {
		t.Errorf("check does not list the watchdog:\n%s", out.String())
	}
	out.Reset()
	if code := runConvert([]string{"--ha-dir", dir, "--node", "HA1"}, &out, &errb); code != 0 {
		t.Fatalf("convert exit %d: %s", code, errb.String())
	}
	if want := "ha.cf:9:1: warning: watchdog /dev/watchdog: keepalived.conf has no watchdog"; !strings.Contains(errb.String(), want) {
		t.Errorf("convert does not say the watchdog is lost (want %q):\n%s", want, errb.String())
	}
}
