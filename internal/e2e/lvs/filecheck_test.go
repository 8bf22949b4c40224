package lvs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A FILE_CHECK whose file reports a fault when vigil starts: the real
// server never enters the service and its notify_down does not run
// (keepalived 2.2.7 reads its track files at start, track_file.c
// init_track_files, before it installs the real servers). When the file
// clears, the server enters and notify_up runs.
func TestFileCheckFaultAtStart(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, "filechk", topoOpts{})
	d := tp.dirs[0]
	dir := t.TempDir()
	script, notes := noteScript(t, dir)
	state := filepath.Join(dir, "web2.state")
	if err := os.WriteFile(state, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := vrrpSingle() + fmt.Sprintf("track_file web2_file {\n\tfile %s\n\tweight 0\n}\n", state) +
		vs{port: 80, delayLoop: "1", reals: []rs{
			{addr: web1, weight: 1, checker: tcpCheck("1", 1, "1")},
			{addr: web2, weight: 1, checker: "FILE_CHECK {\n\ttrack_file web2_file\n}\n", extra: []string{
				fmt.Sprintf("notify_up \"%s up web2\"", script),
				fmt.Sprintf("notify_down \"%s down web2\"", script),
			}},
		}}.String()
	d.writeConfig(conf)
	d.start()
	k := d.kernel()
	// Watch the kernel from the start: web2 must never be in the service.
	seen := false
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		dests, ok, err := k.dests(80)
		if err != nil {
			t.Fatal(err)
		}
		if _, in := dests[web2+":80"]; in {
			seen = true
		}
		if _, in := dests[web1+":80"]; ok && in {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	waitPool(t, d, 80, web1, true, patience)
	// Several FILE_CHECK reads (one a second) that agree with the start.
	time.Sleep(3 * time.Second)
	if dests, _, err := k.dests(80); err != nil || seen || dests[web2+":80"] != 0 {
		t.Errorf("web2's file is in fault: it entered the service (seen %v, now %v, %v)", seen, dests, err)
	}
	if b, _ := os.ReadFile(notes); len(b) != 0 {
		t.Errorf("notes %q, want none: keepalived runs no notify_down for a server that starts down from its file", b)
	}
	if err := os.WriteFile(state, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitPool(t, d, 80, web2, true, patience)
	waitFor(t, patience, "web2's file clears: notify_up", func() (bool, string) {
		b, _ := os.ReadFile(notes)
		return strings.TrimSpace(string(b)) == "up web2", string(b)
	})
}
