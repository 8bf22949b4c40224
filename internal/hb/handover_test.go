package hb_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hblab"
)

// TestStopWhileAcquiring sends SIGTERM to ha1 while it is still acquiring
// the VIP's group: the address is up, the web script (made slow: 1 s to
// start, 0.5 s to stop) still runs. ha1 releases once the acquisition
// ends and says t=shutdone only after the release, as heartbeat's
// hb_giveup_resources waits for running resource actions; ha2 then takes
// over and the sampler never sees both holding the VIP. (vigil used to
// send t=shutdone when the acquisition finished, with the release still
// queued: both held the VIP for the half second of the slow stop.)
func TestStopWhileAcquiring(t *testing.T) {
	// Its own namespaces: beside the real-timings tutorial test, which
	// mostly waits.
	t.Parallel()
	tu := newTutorial(t, [4]string{"200ms", "1", "500ms", "5"})
	web := hblab.WebScript(vip)
	slow := strings.Replace(web, "case \"$op\" in\n", "case \"$op\" in start) sleep 1;; stop) sleep 0.5;; esac\ncase \"$op\" in\n", 1)
	if slow == web {
		t.Fatal("cannot slow the web script down: its case line changed")
	}
	for _, v := range []*hblab.Vigil{tu.n1, tu.n2} {
		if err := os.WriteFile(filepath.Join(v.Dir, "resource.d", "web"), []byte(slow), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := tu.sample()
	defer s.finish(t, tu)
	s.at("stop while acquiring")
	tu.n1.Start()
	tu.n2.Start()
	// The address is the group's first resource: once it is up, the slow
	// web start is under way.
	tu.waitHolder(t, "ha1", 10*time.Second)
	if err := tu.n1.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	tu.waitHolder(t, "ha2", 15*time.Second)
	tu.curl(t, "ha2")
}
