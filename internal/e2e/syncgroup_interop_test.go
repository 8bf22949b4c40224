package e2e_test

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// syncGroupConf is one node's two instances (VI_A, VI_B, VRRPv3 at 0.1 s on
// eth0) in vrrp_sync_group G; VI_B tracks the track_file at path (weight 0:
// a non-zero value is a fault).
func syncGroupConf(master bool, path string) e2e.Conf {
	state, prio := "BACKUP", 99
	if master {
		state, prio = "MASTER", 100
	}
	in := func(name string, vrid int, vip string, extra ...string) e2e.Instance {
		return e2e.Instance{Name: name, State: state, Interface: "eth0", VRID: vrid, Priority: prio,
			AdvertInt: "0.1", Version: 3, VIPs: []string{vip + "/24 dev eth0"}, Extra: extra}
	}
	return e2e.Conf{
		Instances: []e2e.Instance{in("VI_A", 61, "192.168.1.161"), in("VI_B", 62, "192.168.1.162", "track_file {", "  tf weight 0", "}")},
		Blocks: []string{
			fmt.Sprintf("track_file tf {\n  file %s\n}\n", path),
			"vrrp_sync_group G {\n  group {\n    VI_A\n    VI_B\n  }\n}\n",
		},
	}
}

// TestSyncGroupInterop runs a vrrp_sync_group of two instances on vigil and
// on keepalived 2.2.7, each in turn as master. When one member of the
// master's group fails (its track_file), the whole group gives way, as
// keepalived's does (vrrp_sync.c: a member in FAULT takes the group to
// FAULT), and the other daemon takes both addresses; when the file is
// cleared, the master takes both back.
func TestSyncGroupInterop(t *testing.T) {
	t.Parallel()
	for _, masterKind := range []e2e.Kind{e2e.Vigil, e2e.Keepalived} {
		backupKind := e2e.Keepalived
		if masterKind == e2e.Keepalived {
			backupKind = e2e.Vigil
		}
		t.Run(string(masterKind)+"-master", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "syncgrp", 2)
			vipA, vipB := netip.MustParseAddr("192.168.1.161"), netip.MustParseAddr("192.168.1.162")
			tf := [2]string{tempFile(t, "tf0", "0\n"), tempFile(t, "tf1", "0\n")}
			master := e.start(masterKind, 0, syncGroupConf(true, tf[0]))
			backup := e.start(backupKind, 1, syncGroupConf(false, tf[1]))
			r1, r2 := e.node(0), e.node(1)
			for _, in := range []string{"VI_A", "VI_B"} {
				e.waitState(master, in, "MASTER", 15*time.Second)
				e.waitState(backup, in, "BACKUP", 10*time.Second)
			}
			e.waitHolds(r1, vipA, true, 10*time.Second)
			e.waitHolds(r1, vipB, true, 10*time.Second)

			t.Log("VI_B's track file on the master reads 1: the master's group fails")
			if err := os.WriteFile(tf[0], []byte("1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			e.waitState(master, "VI_B", "FAULT", 10*time.Second)
			e.waitState(master, "VI_A", "FAULT", 10*time.Second)
			for _, in := range []string{"VI_A", "VI_B"} {
				e.waitState(backup, in, "MASTER", 10*time.Second)
			}
			e.waitHolds(r2, vipA, true, 10*time.Second)
			e.waitHolds(r2, vipB, true, 10*time.Second)
			e.waitHolds(r1, vipA, false, 10*time.Second)
			e.waitHolds(r1, vipB, false, 10*time.Second)

			t.Log("the file reads 0 again: the master takes both back")
			if err := os.WriteFile(tf[0], []byte("0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, in := range []string{"VI_A", "VI_B"} {
				e.waitState(master, in, "MASTER", 15*time.Second)
				e.waitState(backup, in, "BACKUP", 10*time.Second)
			}
			e.waitHolds(r1, vipA, true, 10*time.Second)
			e.waitHolds(r1, vipB, true, 10*time.Second)
			e.waitHolds(r2, vipA, false, 10*time.Second)
			e.waitHolds(r2, vipB, false, 10*time.Second)
		})
	}
}
