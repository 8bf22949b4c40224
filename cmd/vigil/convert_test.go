package main

import (
	"bytes"
	"os"
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
	for _, want := range []string{"10.168.0.160/24 dev eth0", "priority 150", "advert_int 10", "ping -c 1 -W 1 10.168.0.1", `notify_master "/etc/vigil/HA_GROUP_1.sh start"`, "/etc/init.d/nginx start"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("converted configuration lacks %q:\n%s", want, out.String())
		}
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
