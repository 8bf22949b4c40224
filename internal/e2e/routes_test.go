package e2e_test

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// routesConf asks for a representative set of keepalived 2.2.7's route and
// rule options (keepalived.conf(5) virtual_routes, virtual_rules); vigtest
// is a table named in the rt_tables the daemons see. The kernel refuses
// 10.4.0.2 (EINVAL: a local route needs scope host, which keepalived does
// not add for it) and 10.16.0.0/16 (ENODEV: neither dev nor via) from both
// daemons.
const routesConf = `global_defs {
    router_id r1
}
static_routes {
    10.8.0.0/16 via 192.168.2.254 dev eth1 mtu 1280
}
static_rules {
    from 192.168.8.0/24 table 100 priority 90
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 255
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.168.1.100/24
    }
    virtual_routes {
        10.1.0.0/16 via 192.168.1.254 dev eth0 mtu lock 1400 advmss 1360
        10.2.0.0/16 nexthop via 192.168.1.253 dev eth0 weight 1 nexthop via 192.168.2.254 dev eth1 weight 3
        blackhole 10.3.0.0/16
        local 10.4.0.1/32 dev eth0 table vigtest scope host
        local 10.4.0.2/32 dev eth0
        10.5.0.0/16 via 192.168.1.254 dev eth0 table vigtest metric 50 initcwnd 10 rtt 300ms src 192.168.1.100
        2001:db8:5::/48 via fd00::254 dev eth0 hoplimit 9
        unreachable 10.6.0.0/16 table 100
        10.9.0.0/16 via 192.168.1.254 dev eth0 table 101 rto_min lock 300ms quickack 1 congctl lock reno features ecn reordering 5 window 1000 cwnd lock 20 ssthresh 30 initrwnd 40 fastopen_no_cookie 1
        10.10.0.0/16 via 192.168.1.254 dev eth0 table 101 realms 3/4 tos 0x10 protocol zebra no_track
        10.11.0.0/16 via 192.168.1.254 dev eth0 table 101 metric 5
        10.11.0.0/16 via 192.168.2.254 dev eth1 table 101 metric 5 append
        10.12.0.0/16 via 10.99.0.1 dev eth0 onlink table 101
        2001:db8:6::/48 via fd00::254 dev eth0 pref high table 101
        2001:db8:7::/48 from 2001:db8:1::/48 via fd00::254 dev eth0 table 101
        prohibit 10.13.0.0/16 table 101
        throw 10.14.0.0/16 table 101
        10.15.0.0/16 via 192.168.1.254 or 192.168.2.254 table 101
        10.16.0.0/16 table 101
    }
    virtual_rules {
        fwmark 0x10/0xf0 table vigtest priority 100
        iif eth0 oif eth1 table 100 priority 101
        uidrange 1000-2000 table main priority 102
        from 192.168.1.0/24 to 10.0.0.0/8 ipproto tcp dport 80-90 table 100 priority 103
        not from 192.168.2.0/24 goto 110 priority 104
        from 192.168.9.0/24 blackhole priority 105
        from 2001:db8::/32 table 100 priority 106
        from 192.168.10.0/24 tos 0x10 realms 2/3 table 101 priority 107
        to 192.168.11.0/24 suppress_prefixlength 8 suppress_ifgroup 4 table 101 priority 108
        from 192.168.12.0/24 nop priority 109
        from 192.168.13.0/24 prohibit priority 110
        from 192.168.14.0/24 type unreachable priority 111
        from 192.168.15.0/24 sport 1000-1010 ipproto udp table 101 priority 112
        from 192.168.16.0/24 tunnel-id 7 table 101 priority 113
        from 192.168.17.0/24 table 101 priority 114 protocol 4 no_track
        from 192.168.18.0/24 fwmark 7 table 101 priority 115
    }
}
`

// routesState is what the kernel holds of the daemons' routes (proto
// keepalived, in every table) and the rules, as iproute2 prints them.
func routesState(t *testing.T, h *lab.Host) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"-d", "-4", "route", "show", "table", "all", "proto", "keepalived"},
		{"-d", "-6", "route", "show", "table", "all", "proto", "keepalived"},
		{"-d", "-4", "route", "show", "table", "all", "proto", "zebra"},
		{"rule", "show"},
		{"-6", "rule", "show"},
	} {
		out, err := h.Run("ip", args...)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(out)
	}
	return b.String()
}

// startDaemon runs keepalived or vigil on h with conf, in a mount namespace
// where /etc/iproute2/rt_tables names table 200 vigtest.
func startDaemon(t *testing.T, h *lab.Host, kind e2e.Kind, bin, conf string) (*lab.Proc, string) {
	t.Helper()
	dir := t.TempDir()
	rt := filepath.Join(dir, "rt_tables")
	if err := os.WriteFile(rt, []byte("255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n200\tvigtest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"TMPDIR=" + dir, bin}
	if kind == e2e.Keepalived {
		args = append(args, e2e.KeepalivedArgs("-P", "-f", cf, "-p", filepath.Join(dir, "main.pid"),
			"-r", filepath.Join(dir, "vrrp.pid"), "-c", filepath.Join(dir, "checkers.pid"))...)
	} else {
		args = append(args, "run", "-f", cf, "--api-socket", filepath.Join(dir, "vigil.sock"), "-p", filepath.Join(dir, "main.pid"))
	}
	p, err := h.StartIsolated(lab.Isolation{Binds: []lab.Bind{{Source: rt, Target: "/etc/iproute2/rt_tables"}}}, "env", args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p, dir
}

// waitRoutes polls the kernel until ok accepts what it holds, the same in
// two reads in a row (a read is several dumps, which a daemon's adding
// could straddle).
func waitRoutes(t *testing.T, h *lab.Host, p *lab.Proc, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for {
		s := routesState(t, h)
		if ok(s) && s == last {
			return s
		}
		last = s
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 20s; the kernel holds:\n%s\ndaemon output:\n%s", what, s, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heldAll: every route and rule of routesConf is in (rules are added
// after the routes, 115 last).
func heldAll(s string) bool {
	return strings.Contains(s, "115:\t")
}

// heldNone: none of them is.
func heldNone(s string) bool {
	return !strings.Contains(s, "proto keepalived") && !strings.Contains(s, "10.10.0.0/16") && !regexp.MustCompile(`(?m)^(10[0-9]|11[0-5]|90):`).MatchString(s)
}

// TestVirtualRoutesRulesAsKeepalived: a MASTER's virtual_routes and
// virtual_rules (mtu lock + advmss, a multipath route with weights,
// blackhole, local type, a table by name, fwmark/mask, iif/oif, uidrange,
// ports, goto, not) are in the kernel exactly as keepalived 2.2.7 puts them
// there for the same file, and are gone after each daemon stops; so are
// static_routes and static_rules. Then a reload of vigil replaces a
// virtual and a static route whose mtu changed in place, removes the route
// and rule that went and leaves the others untouched; and when it leaves
// MASTER for BACKUP, the virtual routes and rules go and the static stay.
func TestVirtualRoutesRulesAsKeepalived(t *testing.T) {
	netnstest.RequireRoot(t)
	ka := netnstest.RequireCommand(t, "keepalived")
	netnstest.RequireCommand(t, "unshare")
	vigil := netnstest.VigilBinary(t)
	l := netnstest.New(t, "vroutes")
	h := netnstest.AddHost(t, l, "r1",
		lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.1/24", "fd00::1/64"}},
		lab.Iface{Name: "eth1", LAN: "lan2", Addrs: []string{"192.168.2.1/24"}})
	peer := netnstest.AddHost(t, l, "r2", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.2/24"}})
	if s := routesState(t, h); !heldNone(s) {
		t.Fatalf("the host holds routes or rules before the test:\n%s", s)
	}

	held := map[e2e.Kind]string{}
	for _, kind := range []e2e.Kind{e2e.Keepalived, e2e.Vigil} {
		bin := vigil
		if kind == e2e.Keepalived {
			bin = ka
		}
		p, dir := startDaemon(t, h, kind, bin, routesConf)
		held[kind] = waitRoutes(t, h, p, string(kind)+" as MASTER", heldAll)
		if kind == e2e.Vigil {
			// The refused route is logged and counted; the others are in.
			out, err := exec.Command(vigil, "status", "--json", "--api-socket", filepath.Join(dir, "vigil.sock")).CombinedOutput()
			if err != nil || !regexp.MustCompile(`"route_errors":\s*2\b`).Match(out) {
				t.Errorf("vigil status: want route_errors 2 (%v):\n%s", err, out)
			}
			if !strings.Contains(p.Output(), "cannot add virtual route") {
				t.Errorf("vigil did not log the refused route:\n%s", p.Output())
			}
		}
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if !p.Wait(15 * time.Second) {
			t.Fatalf("%s did not stop within 15s:\n%s", kind, p.Output())
		}
		if s := routesState(t, h); !heldNone(s) {
			t.Errorf("%s left routes or rules behind on stopping:\n%s", kind, s)
		}
	}
	if held[e2e.Vigil] != held[e2e.Keepalived] {
		t.Errorf("the kernel's routes and rules differ:\nkeepalived 2.2.7:\n%s\nvigil:\n%s", held[e2e.Keepalived], held[e2e.Vigil])
	}
	for _, want := range []string{
		"unicast 10.1.0.0/16 via 192.168.1.254 dev eth0 table main scope global mtu lock 1400 advmss 1360",
		"nexthop via 192.168.1.253 dev eth0 weight 1",
		"nexthop via 192.168.2.254 dev eth1 weight 3",
		"blackhole 10.3.0.0/16 table main",
		"local 10.4.0.1 dev eth0 table 200 scope host",
		"unicast 10.5.0.0/16 via 192.168.1.254 dev eth0 table 200 scope global src 192.168.1.100 metric 50 rtt 300ms initcwnd 10",
		"unicast 2001:db8:5::/48 via fd00::254 dev eth0 table main scope global metric 1024 hoplimit 9",
		"100:\tfrom all fwmark 0x10/0xf0 lookup 200 proto keepalived",
		"101:\tfrom all iif eth0 oif eth1 lookup 100 proto keepalived",
		"102:\tfrom all uidrange 1000-2000 lookup main proto keepalived",
		"103:\tfrom 192.168.1.0/24 to 10.0.0.0/8 ipproto tcp dport 80-90 lookup 100 proto keepalived",
		"104:\tnot from 192.168.2.0/24 goto 110 proto keepalived",
		"105:\tfrom 192.168.9.0/24 blackhole proto keepalived",
		"106:\tfrom 2001:db8::/32 lookup 100 proto keepalived",
		"unicast 10.8.0.0/16 via 192.168.2.254 dev eth1 table main scope global mtu 1280",
		"90:\tfrom 192.168.8.0/24 lookup 100 proto keepalived",
		"cwnd lock 20 reordering 5 features ecn rto_min lock 300ms initrwnd 40 quickack 1 congctl lock reno fastopen_no_cookie 1",
		"unicast 10.10.0.0/16 tos 0x10 via 192.168.1.254 dev eth0 table 101 scope global realms 3/4",
		"unicast 10.11.0.0/16 via 192.168.2.254 dev eth1 table 101 scope global metric 5",
		"unicast 10.12.0.0/16 via 10.99.0.1 dev eth0 table 101 scope global onlink",
		"prohibit 10.13.0.0/16 table 101", "throw 10.14.0.0/16 table 101",
		"unicast 10.15.0.0/16 table 101 scope global \n\tnexthop via 192.168.1.254 dev eth0 weight 1 \n\tnexthop via 192.168.2.254 dev eth1 weight 1",
		"2001:db8:6::/48 via fd00::254 dev eth0 table 101 scope global metric 1024 pref high",
		"2001:db8:7::/48 from 2001:db8:1::/48 via fd00::254",
		"107:\tfrom 192.168.10.0/24 tos 0x10 lookup 101 realms 2/3 proto keepalived",
		"108:\tfrom all to 192.168.11.0/24 lookup 101 suppress_prefixlength 8 suppress_ifgroup 4 proto keepalived",
		"109:\tfrom 192.168.12.0/24 nop proto keepalived", "110:\tfrom 192.168.13.0/24 prohibit proto keepalived",
		"111:\tfrom 192.168.14.0/24 unreachable proto keepalived",
		"112:\tfrom 192.168.15.0/24 ipproto udp sport 1000-1010 lookup 101 proto keepalived",
		"113:\tfrom 192.168.16.0/24 tun_id 7 lookup 101 proto keepalived",
		"114:\tfrom 192.168.17.0/24 lookup 101 proto static",
	} {
		if !strings.Contains(held[e2e.Vigil], want) {
			t.Errorf("vigil's routes and rules lack %q:\n%s", want, held[e2e.Vigil])
		}
	}

	// Reload: 10.1.0.0/16's mtu changes, 10.6.0.0/16 and rule 105 go.
	p, _ := startDaemon(t, h, e2e.Vigil, vigil, routesConf)
	waitRoutes(t, h, p, "vigil as MASTER again", heldAll)
	mon, err := h.Start("ip", "monitor", "route", "rule")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mon.Kill)
	time.Sleep(200 * time.Millisecond) // the monitor subscribes
	conf := strings.Replace(routesConf, "mtu lock 1400", "mtu lock 1300", 1)
	conf = strings.Replace(conf, "mtu 1280", "mtu 1272", 1)
	conf = strings.Replace(conf, "        unreachable 10.6.0.0/16 table 100\n", "", 1)
	conf = strings.Replace(conf, "        from 192.168.9.0/24 blackhole priority 105\n", "", 1)
	cf := ""
	for _, a := range p.Cmd.Args {
		if strings.HasSuffix(a, "keepalived.conf") {
			cf = a
		}
	}
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	after := waitRoutes(t, h, p, "the reload", func(s string) bool {
		return strings.Contains(s, "mtu lock 1300") && strings.Contains(s, "mtu 1272") && !strings.Contains(s, "10.6.0.0/16") && !strings.Contains(s, "105:")
	})
	time.Sleep(200 * time.Millisecond) // the monitor prints
	events := mon.Output()
	t.Logf("route and rule events during the reload:\n%s", events)
	for _, line := range strings.Split(events, "\n") {
		if strings.HasPrefix(line, "Deleted") && (strings.Contains(line, "10.1.0.0/16") || strings.Contains(line, "10.8.0.0/16") || strings.Contains(line, "10.5.0.0/16") || strings.Contains(line, "10.2.0.0/16")) {
			t.Errorf("the reload deleted a route it should have replaced or left alone: %q", line)
		}
		if !strings.HasPrefix(line, "Deleted") && line != "" && !strings.Contains(line, "10.1.0.0/16") && !strings.Contains(line, "10.8.0.0/16") &&
			!strings.Contains(line, "192.168.1.100") {
			t.Errorf("the reload added something it should have left alone: %q", line)
		}
	}
	if !strings.Contains(events, "Deleted unreachable 10.6.0.0/16") || !regexp.MustCompile(`Deleted 105:`).MatchString(events) {
		t.Errorf("the reload did not remove 10.6.0.0/16 and rule 105; events:\n%s", events)
	}
	for _, keep := range []string{"unicast 10.5.0.0/16 via 192.168.1.254 dev eth0 table 200", "nexthop via 192.168.2.254 dev eth1 weight 3", "104:\tnot from 192.168.2.0/24 goto 110"} {
		if !strings.Contains(after, keep) {
			t.Errorf("after the reload the kernel lacks %q:\n%s", keep, after)
		}
	}

	// A static route deleted by hand is put back (keepalived's
	// reinstate_static_route()).
	if _, err := h.Run("ip", "route", "del", "10.8.0.0/16"); err != nil {
		t.Fatal(err)
	}
	waitRoutes(t, h, p, "the static route put back", func(s string) bool { return strings.Contains(s, "10.8.0.0/16 via 192.168.2.254 dev eth1") })

	// Leaving MASTER for BACKUP (a peer of equal priority and higher
	// address, RFC 5798 §6.4.3): the virtual routes and rules go, the
	// static ones stay.
	j, err := e2e.NewInjector(peer, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	src, group := netip.MustParseAddr("192.168.1.2"), netip.MustParseAddr("224.0.0.18")
	adv, err := (&packet.Advert{Version: 3, Type: 1, VRID: 51, Priority: 255, CountIPAddrs: 1, AdvertInt: 10,
		Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.100")}}).Marshal(src, group)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			if err := j.Send(src, group, 255, 112, adv); err != nil {
				t.Errorf("advert: %v", err)
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	waitRoutes(t, h, p, "BACKUP", func(s string) bool {
		return !strings.Contains(s, "10.1.0.0/16") && !strings.Contains(s, "10.2.0.0/16") && !strings.Contains(s, "100:\t") &&
			!strings.Contains(s, "106:\t") && strings.Contains(s, "10.8.0.0/16") && strings.Contains(s, "90:\t")
	})
	close(stop)
	<-sent
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !p.Wait(15 * time.Second) {
		t.Fatalf("vigil did not stop within 15s:\n%s", p.Output())
	}
	if s := routesState(t, h); !heldNone(s) {
		t.Errorf("vigil left routes or rules behind on stopping after the reload:\n%s", s)
	}
}
