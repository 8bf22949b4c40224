package track

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

const (
	vipIn  = "10.10.0.254" // VI_IN on eth0, the inside LAN
	vipOut = "10.20.0.254" // VI_OUT on eth1, the outside LAN
	// syncAdvert: VRRPv3, fast; the group's behaviour is the point.
	syncAdvert = 200 * time.Millisecond
)

// syncConf is a router pair's keepalived.conf: an inside and an outside
// instance in one vrrp_sync_group, with the group's notify scripts and mail.
func syncConf(n *node, smtpPort, prio int) string {
	script := n.write("group.sh", "#!/bin/sh\necho \"$1\" >> "+n.path("group.log")+"\n", 0o755)
	generic := n.write("notify.sh", "#!/bin/sh\necho \"$*\" >> "+n.path("group.log")+"\n", 0o755)
	state := "BACKUP"
	if prio > 100 {
		state = "MASTER"
	}
	inst := func(name, dev string, vrid int, vip string) string {
		return fmt.Sprintf(`vrrp_instance %s {
    state %s
    interface %s
    version 3
    virtual_router_id %d
    priority %d
    advert_int %g
    virtual_ipaddress {
        %s/24
    }
}
`, name, state, dev, vrid, prio, syncAdvert.Seconds(), vip)
	}
	return fmt.Sprintf(`global_defs {
    router_id %s
    script_user root
    notification_email {
        ops@example.com
    }
    notification_email_from vigil@%s.lab
    smtp_server 127.0.0.1 %d
    smtp_connect_timeout 5
}
vrrp_sync_group G {
    group {
        VI_IN
        VI_OUT
    }
    notify_master "%s master"
    notify_backup "%s backup"
    notify_fault "%s fault"
    notify %s
    smtp_alert
}
`, n.host.Name(), n.host.Name(), smtpPort, script, script, script, generic) +
		inst("VI_IN", "eth0", 10, vipIn) + inst("VI_OUT", "eth1", 20, vipOut)
}

// groupLog returns the node's group notify log: each specific script's
// line ("master") followed by the generic script's ("GROUP G MASTER 0").
func groupLog(t *testing.T, n *node) []string { return readLines(t, n.path("group.log")) }

// checkGroupLog checks that every group transition ran the specific script
// and then the generic one with keepalived's arguments (GROUP name state 0,
// vrrp_notify.c send_group_notifies), and that the last one is for state.
func checkGroupLog(t *testing.T, n *node, state string) {
	t.Helper()
	var lines []string
	waitFor(t, 5*time.Second, fmt.Sprintf("%s: group notify for %s", n.host.Name(), state), func() bool {
		lines = groupLog(t, n)
		return len(lines) >= 2 && lines[len(lines)-1] == "GROUP G "+strings.ToUpper(state)+" 0"
	})
	if len(lines)%2 != 0 {
		t.Fatalf("%s: group notify log has an odd number of lines: %q", n.host.Name(), lines)
	}
	for i := 0; i < len(lines); i += 2 {
		if want := "GROUP G " + strings.ToUpper(lines[i]) + " 0"; lines[i+1] != want {
			t.Fatalf("%s: group notify log %q: line %d is %q, want %q after %q", n.host.Name(), lines, i+1, lines[i+1], want, lines[i])
		}
	}
	if got := lines[len(lines)-2]; got != state {
		t.Fatalf("%s: last notify_%s script: %q (log %q)", n.host.Name(), state, got, lines)
	}
}

// waitMail waits for a message with the subject.
func waitMail(t *testing.T, s *smtpServer, subject string) smtpMessage {
	t.Helper()
	var m smtpMessage
	waitFor(t, 10*time.Second, fmt.Sprintf("mail %q", subject), func() bool {
		for _, x := range s.messages() {
			if x.Header.Get("Subject") == subject {
				m = x
				return true
			}
		}
		return false
	})
	return m
}

// neighMAC asks the client for addr (ping) and returns the MAC its
// neighbour table then holds for it.
func neighMAC(t *testing.T, h *lab.Host, addr string) string {
	t.Helper()
	var mac string
	waitFor(t, 5*time.Second, h.Name()+" to reach "+addr, func() bool {
		if _, err := h.Run("ping", "-c1", "-W1", addr); err != nil {
			return false
		}
		out, _ := h.Run("ip", "neigh", "show", addr)
		f := strings.Fields(out)
		for i := range f {
			if f[i] == "lladdr" && i+1 < len(f) {
				mac = f[i+1]
			}
		}
		return mac != ""
	})
	return mac
}

// TestSyncGroupCable: a vrrp_sync_group of an inside (eth0) and an outside
// (eth1) instance fails over as one when the master loses the outside
// cable: both VIPs move to the backup, the inside and outside clients'
// ARP entries follow, the group's notify_fault / notify_master /
// notify_backup and generic notify (GROUP G STATE 0) run on each node, and
// smtp_alert mails "[router_id] VRRP Group G - Entering ... state". With the
// cable back both instances return (preempt).
func TestSyncGroupCable(t *testing.T) {
	t.Parallel()
	l := netnstest.New(t, "sync")
	h1 := netnstest.AddHost(t, l, "n1",
		lab.Iface{Name: "eth0", LAN: "inside", Addrs: []string{"10.10.0.1/24"}},
		lab.Iface{Name: "eth1", LAN: "outside", Addrs: []string{"10.20.0.1/24"}})
	h2 := netnstest.AddHost(t, l, "n2",
		lab.Iface{Name: "eth0", LAN: "inside", Addrs: []string{"10.10.0.2/24"}},
		lab.Iface{Name: "eth1", LAN: "outside", Addrs: []string{"10.20.0.2/24"}})
	cin := netnstest.AddHost(t, l, "cin", lab.Iface{Name: "eth0", LAN: "inside", Addrs: []string{"10.10.0.100/24"}})
	cout := netnstest.AddHost(t, l, "cout", lab.Iface{Name: "eth0", LAN: "outside", Addrs: []string{"10.20.0.100/24"}})
	netnstest.WaitLANReady(t, l, h1, h2, cin, cout)
	mail1, mail2 := startSMTP(t, h1), startSMTP(t, h2)

	n1, n2 := newNode(t, h1), newNode(t, h2)
	n1.start(syncConf(n1, mail1.Port, 150))
	waitFor(t, 20*time.Second, "n1: G MASTER", func() bool { return n1.groupState("G") == "MASTER" })
	n2.start(syncConf(n2, mail2.Port, 100))
	waitFor(t, 20*time.Second, "n2: G BACKUP", func() bool { return n2.groupState("G") == "BACKUP" })
	waitFor(t, 5*time.Second, "both VIPs on n1 only", func() bool {
		return holds(h1, vipIn) && holds(h1, vipOut) && !holds(h2, vipIn) && !holds(h2, vipOut)
	})
	checkGroupLog(t, n1, "master")
	checkGroupLog(t, n2, "backup")
	// keepalived 2.2.7 vrrp_init_state notifies a group that starts in
	// BACKUP: n2's first scripts and mail say so.
	if l := groupLog(t, n2); l[0] != "backup" {
		t.Errorf("n2's first group notify: %q, want notify_backup at start", l)
	}
	waitMail(t, mail2, "[n2] VRRP Group G - Entering BACKUP state")
	m := waitMail(t, mail1, "[n1] VRRP Group G - Entering MASTER state")
	if !strings.Contains(m.Body, "=> All VRRP group instances are now in MASTER state <=") || m.Header.Get("From") != "vigil@n1.lab" || m.Header.Get("To") != "ops@example.com" {
		t.Errorf("group mail: From %q To %q body %q", m.Header.Get("From"), m.Header.Get("To"), m.Body)
	}
	if mac := neighMAC(t, cin, vipIn); mac != h1.Iface("eth0").MAC {
		t.Errorf("inside client: %s at %s, want n1's eth0 %s", vipIn, mac, h1.Iface("eth0").MAC)
	}

	// Pull the outside cable of the master.
	if err := h1.SetCable("eth1", false); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 10*time.Second, "both VIPs on n2", func() bool { return holds(h2, vipIn) && holds(h2, vipOut) })
	t.Logf("outside cable pulled on n1: both VIPs on n2 after %v (Master_Down_Interval %v)", took.Round(time.Millisecond), masterDown(syncAdvert, 100))
	waitFor(t, 5*time.Second, "no VIP on n1", func() bool { return !holds(h1, vipIn) && !holds(h1, vipOut) })
	waitFor(t, 5*time.Second, "n1: G FAULT, n2: G MASTER", func() bool {
		return n1.groupState("G") == "FAULT" && n2.groupState("G") == "MASTER"
	})
	for _, name := range []string{"VI_IN", "VI_OUT"} {
		if st := n1.instance(name).State; st != "FAULT" {
			t.Errorf("n1 %s: %s, want FAULT with its group", name, st)
		}
		if st := n2.instance(name).State; st != "MASTER" {
			t.Errorf("n2 %s: %s, want MASTER", name, st)
		}
	}
	checkGroupLog(t, n1, "fault")
	checkGroupLog(t, n2, "master")
	waitMail(t, mail1, "[n1] VRRP Group G - Entering FAULT state")
	waitMail(t, mail2, "[n2] VRRP Group G - Entering MASTER state")
	if mac := neighMAC(t, cin, vipIn); mac != h2.Iface("eth0").MAC {
		t.Errorf("inside client: %s at %s, want n2's eth0 %s", vipIn, mac, h2.Iface("eth0").MAC)
	}
	if mac := neighMAC(t, cout, vipOut); mac != h2.Iface("eth1").MAC {
		t.Errorf("outside client: %s at %s, want n2's eth1 %s", vipOut, mac, h2.Iface("eth1").MAC)
	}

	// Plug it back: n1 outranks n2 and takes both back.
	if err := h1.SetCable("eth1", true); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, 15*time.Second, "both VIPs back on n1", func() bool {
		return holds(h1, vipIn) && holds(h1, vipOut) && !holds(h2, vipIn) && !holds(h2, vipOut)
	})
	t.Logf("cable back on n1: both VIPs back on n1 after %v", took.Round(time.Millisecond))
	waitFor(t, 5*time.Second, "n1: G MASTER, n2: G BACKUP", func() bool {
		return n1.groupState("G") == "MASTER" && n2.groupState("G") == "BACKUP"
	})
	checkGroupLog(t, n1, "master")
	checkGroupLog(t, n2, "backup")
	waitMail(t, mail2, "[n2] VRRP Group G - Entering BACKUP state")
	if mac := neighMAC(t, cout, vipOut); mac != h1.Iface("eth1").MAC {
		t.Errorf("outside client: %s at %s, want n1's eth1 %s", vipOut, mac, h1.Iface("eth1").MAC)
	}
	// A stop mails "Stopping" before the daemon exits, as keepalived 2.2.7
	// does (vrrp_sync_smtp_notifier).
	n2.stop(20 * time.Second)
	waitMail(t, mail2, "[n2] VRRP Group G - Stopping")
	t.Logf("n1 group notifies: %q", groupLog(t, n1))
	t.Logf("n2 group notifies: %q", groupLog(t, n2))
	t.Logf("n1 mail: %q", mail1.subjects())
	t.Logf("n2 mail: %q", mail2.subjects())
}
