package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/bgp"
)

// fakeHelper makes $VIGIL_BGP_HELPER name an executable file: what vigil
// check looks for.
func fakeHelper(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), bgp.HelperName)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(bgp.HelperEnv, p)
	return p
}

func TestCheckShowsBGP(t *testing.T) {
	needIface(t, "eth0")
	fakeHelper(t)
	f := writeConf(t, "bgp.conf", goodConf+`bgp {
    router_id 10.0.0.11
    local_as 65001
    neighbor 10.0.0.254 {
        remote_as 65000
        hold_time 3
    }
    announce {
        vrrp_instance VI_1
        virtual_server 192.168.1.100 80
    }
}
`)
	code, out, errs := runVigil("check", "-f", f)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{
		"bgp: router id 10.0.0.11, AS 65001, graceful shutdown 5s (MED 4294967294)",
		"neighbor 10.0.0.254 AS 65000, hold time 3s",
		"announces 192.168.1.100/32 while MASTER, vrrp_instance VI_1",
		"announces 192.168.1.100/32 while its quorum is up, virtual_server [192.168.1.100]:tcp:80",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	f = writeConf(t, "bad.conf", goodConf+"bgp {\n    local_as 65001\n    announce {\n        vrrp_instance VI_9\n    }\n}\n")
	code, _, errs = runVigil("check", "-f", f)
	if code != 1 || !strings.Contains(errs, "bad.conf:22:1: error: bgp has no router_id") || !strings.Contains(errs, "bad.conf:25:9: error: announce: no vrrp_instance VI_9") {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
}

// TestBGPReloadUnchangedOrRemoved: an unchanged bgp block is no change; a
// removed one waits for a restart (a changed one is applied to the running
// speaker: internal/e2e/bgp TestBGPReloadNeighbors).
func TestBGPReloadUnchangedOrRemoved(t *testing.T) {
	load := func(text string) loaded {
		t.Helper()
		l, ds := loadConfig(runFlags{file: writeConf(t, "k.conf", text), configID: "r1"}, nil)
		if ds.HasErrors() {
			t.Fatal(ds)
		}
		return l
	}
	block := "bgp {\n router_id 10.0.0.11\n local_as 65001\n neighbor 10.0.0.254 {\n  remote_as 65000\n }\n announce {\n  vrrp_instance VI_1\n }\n}\n"
	with := load(goodConf + block)
	d := &daemon{}
	d.bgp, d.bgpCfg = bgpSetup(with, nil)
	if d.bgp == nil {
		t.Fatal("no runtime for a bgp block")
	}
	// A comment line moves every position: still no change.
	if c, note, err := d.bgpReload(context.Background(), load("# moved\n"+goodConf+block)); len(c) != 0 || note != "" || err != nil {
		t.Errorf("unchanged block: %q, %q, %v", c, note, err)
	}
	if c, note, err := d.bgpReload(context.Background(), load(goodConf)); len(c) != 0 || !strings.Contains(note, "next restart") || err != nil {
		t.Errorf("removed block: %q, %q, %v", c, note, err)
	}
}

// TestBGPHelperMissing: vigil check warns at the bgp block, and vigil run
// refuses to start, naming every place it looked for vigil-bgp.
func TestBGPHelperMissing(t *testing.T) {
	if _, err := os.Stat(bgp.DefaultHelper); err == nil {
		t.Skipf("%s is installed on this host", bgp.DefaultHelper)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	beside := filepath.Join(filepath.Dir(exe), bgp.HelperName)
	f := writeConf(t, "bgp.conf", goodConf+"bgp {\n    router_id 10.0.0.11\n    local_as 65001\n    neighbor 10.0.0.254 {\n        remote_as 65000\n    }\n}\n")
	t.Setenv(bgp.HelperEnv, "")
	code, _, errs := runVigil("check", "-f", f)
	want := []string{"bgp.conf:22:1: warning: bgp: the BGP speaker's helper vigil-bgp was not found", "$VIGIL_BGP_HELPER (unset)", beside, bgp.DefaultHelper, "vigil run refuses to start"}
	for _, w := range want {
		if code != 0 || !strings.Contains(errs, w) {
			t.Errorf("vigil check: exit %d, stderr lacks %q:\n%s", code, w, errs)
		}
	}
	d := &daemon{}
	d.bgp, d.bgpCfg = bgpSetup(loadFile(t, f), nil)
	err = d.useBGPHelper()
	for _, w := range want[1:4] {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("start without the helper: %v; want it to name %q", err, w)
		}
	}
	// An explicit $VIGIL_BGP_HELPER that names nothing is an error too.
	t.Setenv(bgp.HelperEnv, filepath.Join(t.TempDir(), "nothing"))
	if err := d.useBGPHelper(); err == nil || !strings.Contains(err.Error(), "$VIGIL_BGP_HELPER="+os.Getenv(bgp.HelperEnv)) {
		t.Errorf("a bad $VIGIL_BGP_HELPER: %v", err)
	}
	t.Setenv(bgp.HelperEnv, fakeHelper(t))
	if err := d.useBGPHelper(); err != nil {
		t.Errorf("with $VIGIL_BGP_HELPER: %v", err)
	}
}

func loadFile(t *testing.T, f string) loaded {
	t.Helper()
	l, ds := loadConfig(runFlags{file: f, configID: "r1"}, nil)
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	return l
}
