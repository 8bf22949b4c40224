package hb_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hblab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// auditErrors are the lines heartbeat's AuditResources (hb_resource.c)
// logs when the two nodes' resource reports disagree.
var auditErrors = regexp.MustCompile(`(?m)^.*(No one owns|Both machines own).*$`)

// ha1Node is the node under test on ha1: vigil or, to compare, heartbeat.
type ha1Node interface {
	Start()
	Stop(time.Duration) error
}

// TestInteropAuditAfterAutoFailback: heartbeat 3.0.6 on ha2 holds
// everything after ha1 stopped; ha1 starts again, and heartbeat's
// auto_failback hands ha1's class of resources back. Then heartbeat's
// resource audit must find every class owned: no "No one owns foreign
// resources!" or "Both machines own ..." ERROR in its log. Run with ha1
// holding the VIP group, and with ha1 home of no group (the group is
// ha2's), against vigil and, as the reference, heartbeat on ha1.
func TestInteropAuditAfterAutoFailback(t *testing.T) {
	hblab.Require(t)
	netnstest.VigilBinary(t) // built before any daemon starts
	for _, tc := range []struct {
		name, home string
		vigil      bool
	}{
		{"vigil home of the group", "ha1", true},
		{"vigil home of no group", "ha2", true},
		{"heartbeat home of no group", "ha2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := netnstest.New(t, "hbaud")
			ha1, ha2 := addPair(t, l)
			files := func(name, peerHB, peerLAN string) hblab.Files {
				return hblab.Files{
					HaCf:        fmt.Sprintf("logfile /var/lib/heartbeat/ha-log\nlogfacility none\nkeepalive 500ms\ndeadtime 3\nwarntime 2\ninitdead 6\nudpport 694\nucast eth1 %s\nucast eth0 %s\nauto_failback on\nnode ha1\nnode ha2\n", peerHB, peerLAN),
					HaResources: tc.home + " IPaddr2::" + vip + "/24/eth0 web\n",
					AuthKeys:    "auth 1\n1 sha1 audit-key\n",
					Extra:       map[string]string{"resource.d/web": hblab.WebScript(vip), "www/index.html": name + "\n"},
				}
			}
			var n1 ha1Node
			var n1Log func() string
			if tc.vigil {
				v := hblab.NewVigil(t, ha1, "ha1", files("ha1", "10.0.0.2", "10.168.0.162"))
				n1, n1Log = v, v.Output
			} else {
				h1 := hblab.New(t, ha1, "ha1", files("ha1", "10.0.0.2", "10.168.0.162"))
				n1, n1Log = h1, h1.Log
			}
			h := hblab.New(t, ha2, "ha2", files("ha2", "10.0.0.1", "10.168.0.161"))
			logs := func() string { return "ha1:\n" + n1Log() + "\nheartbeat ha2:\n" + h.Log() }
			rsc := func(want string, limit time.Duration) {
				t.Helper()
				var out string
				for start := time.Now(); time.Since(start) < limit; time.Sleep(100 * time.Millisecond) {
					o, _ := h.ClStatus("rscstatus")
					if out = strings.TrimSpace(o); out == want {
						return
					}
				}
				t.Fatalf("heartbeat's cl_status rscstatus = %q after %v, want %q\n%s", out, limit, want, logs())
			}
			h.Start()
			n1.Start()
			for i := 0; ; i++ {
				if o, _ := h.ClStatus("nodestatus", "ha1"); strings.TrimSpace(o) == "active" {
					break
				}
				if i == 300 {
					t.Fatalf("heartbeat never saw ha1 active\n%s", logs())
				}
				time.Sleep(100 * time.Millisecond)
			}
			// ha2 holds its own class ("local") once both are up.
			rsc("local", 30*time.Second)
			if tc.home == "ha1" {
				waitVIPHolder(t, ha1, ha2, "ha1", 20*time.Second, logs)
			}
			if err := n1.Stop(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			rsc("all", 20*time.Second)
			if tc.home == "ha1" {
				waitVIPHolder(t, ha1, ha2, "ha2", 20*time.Second, logs)
			}
			mark := len(h.Log())
			n1.Start()
			// auto_failback: heartbeat gives ha1's class back.
			rsc("local", 30*time.Second)
			if tc.home == "ha1" {
				waitVIPHolder(t, ha1, ha2, "ha1", 20*time.Second, logs)
			}
			time.Sleep(5 * time.Second)
			hlog := h.Log()
			if !strings.Contains(hlog[mark:], "wants to go standby [foreign]") {
				t.Fatalf("no auto_failback in heartbeat's log after ha1 came back:\n%s", logs())
			}
			if errs := auditErrors.FindAllString(hlog, -1); len(errs) > 0 {
				t.Errorf("heartbeat's resource audit:\n%s\n%s", strings.Join(errs, "\n"), logs())
			}
		})
	}
}
