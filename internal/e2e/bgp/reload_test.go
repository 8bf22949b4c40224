package bgp

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// reloadPeers are two BIRD routers, each in a namespace of its own, that
// accept the director's session.
var reloadPeers = []string{"10.1.0.1", "10.1.0.3"}

// reloadConf is the director's configuration: one MASTER instance whose
// VIP is announced to the given neighbours, with the router id and MED.
func reloadConf(routerID string, med int, peers ...string) string {
	var nb strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&nb, "    neighbor %s {\n        remote_as 65000\n        hold_time 3\n        connect_retry 1\n    }\n", p)
	}
	return fmt.Sprintf(`vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        %s/32
    }
}
bgp {
    router_id %s
    local_as 65001
    med %d
%s    announce {
        vrrp_instance VI_1
    }
}
`, vrrpVIP, routerID, med, nb.String())
}

// vi2 is a VRRP instance that the bgp block does not announce.
func vi2(prio int) string {
	return fmt.Sprintf(`vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority %d
    advert_int 1
    virtual_ipaddress {
        10.9.0.3/32
    }
}
`, prio)
}

// birdReloadConf is one router: it accepts dir1 and logs the session's
// start to the second, so a flap changes it.
func birdReloadConf(addr string) string {
	return fmt.Sprintf(`router id %[1]s;
log stderr all;
timeformat protocol iso long;
protocol device { scan time 1; }
protocol kernel { ipv4 { import none; export all; }; }
protocol bgp dir1 {
    local %[1]s as 65000;
    neighbor %[2]s as 65001;
    hold time 3;
    connect retry time 1;
    error wait time 1, 2;
    ipv4 { import all; export none; };
}
`, addr, dirAddrs[0])
}

// birdPeer is one BIRD router and its control socket.
type birdPeer struct {
	host *lab.Host
	ctl  string
	proc *lab.Proc
}

var protoRE = regexp.MustCompile(`(?m)^dir1\s+BGP\s+\S+\s+(\S+)\s+(\S+ \S+)\s+(\S+)`)

// session returns the BGP protocol's state ("up"), its start and BIRD's
// info column ("Established").
func (b *birdPeer) session() (state, since, info string) {
	out, err := osexec.Command("birdc", "-s", b.ctl, "show", "protocols", "dir1").CombinedOutput()
	if err != nil {
		return "", "", ""
	}
	m := protoRE.FindStringSubmatch(string(out))
	if m == nil {
		return "", "", ""
	}
	return m[1], m[2], m[3]
}

func (b *birdPeer) established() bool { _, _, info := b.session(); return info == "Established" }

// route returns `birdc show route all` for the VIP.
func (b *birdPeer) route() string {
	out, _ := osexec.Command("birdc", "-s", b.ctl, "show", "route", "all", vrrpVIP+"/32").CombinedOutput()
	return string(out)
}

// TestBGPReloadNeighbors reloads a running director's bgp block against
// two BIRD routers: an added neighbour's session comes up and learns the
// VIP, an unchanged neighbour's session stays up through every reload (its
// start time at BIRD does not move), a removed neighbour's session closes,
// a changed MED reaches the router, and a new router id restarts the BGP
// server alone (every session starts again; the VIP stays on the
// director).
func TestBGPReloadNeighbors(t *testing.T) {
	birdBin := netnstest.RequireCommand(t, "bird")
	netnstest.RequireCommand(t, "birdc")
	bin := netnstest.VigilBinary(t)
	l := netnstest.New(t, "bgprl")
	dir := t.TempDir()
	var peers []*birdPeer
	var hosts []*lab.Host
	for i, a := range reloadPeers {
		h := netnstest.AddHost(t, l, fmt.Sprintf("bird%d", i+1), lab.Iface{Name: "eth0", LAN: "dc", Addrs: []string{a + "/24"}})
		peers = append(peers, &birdPeer{host: h, ctl: filepath.Join(dir, fmt.Sprintf("bird%d.ctl", i+1))})
		hosts = append(hosts, h)
	}
	d1 := netnstest.AddHost(t, l, "dir1", lab.Iface{Name: "eth0", LAN: "dc", Addrs: []string{dirAddrs[0] + "/24"}})
	netnstest.WaitLANReady(t, l, append(hosts, d1)...)
	nd := e2e.NewNode(e2e.Vigil, d1, bin, t.TempDir())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vigil output:\n%s", nd.AllLogs())
			for _, p := range peers {
				if p.proc != nil {
					t.Logf("%s output:\n%s", p.host.Name(), p.proc.Output())
				}
			}
		}
	})
	for i, p := range peers {
		conf := filepath.Join(dir, fmt.Sprintf("bird%d.conf", i+1))
		if err := os.WriteFile(conf, []byte(birdReloadConf(reloadPeers[i])), 0o644); err != nil {
			t.Fatal(err)
		}
		var err error
		if p.proc, err = p.host.Start(birdBin, "-f", "-c", conf, "-s", p.ctl, "-P", filepath.Join(dir, fmt.Sprintf("bird%d.pid", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := nd.WriteConfig(reloadConf(dirAddrs[0], 10, reloadPeers[0])); err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	b1, b2 := peers[0], peers[1]
	waitFor(t, 30*time.Second, "BIRD 1's route to the VIP via dir1", hopsAre(b1.host, vrrpVIP, dirAddrs[0]))
	_, since1, _ := b1.session()
	c := api.NewClient(nd.Socket())
	reload := func(conf string, want ...string) {
		t.Helper()
		// BIRD logs session starts to the second: a flap in this
		// reload would show a later one.
		time.Sleep(1100 * time.Millisecond)
		if err := nd.WriteConfig(conf); err != nil {
			t.Fatal(err)
		}
		res, err := c.Reload(context.Background())
		if err != nil || !res.Applied {
			t.Fatalf("reload: %+v, %v", res, err)
		}
		for _, w := range want {
			if !slices.ContainsFunc(res.Changes, func(s string) bool { return strings.HasPrefix(s, w) }) {
				t.Errorf("reload changes %q lack %q", res.Changes, w)
			}
		}
		for _, n := range res.Diagnostics {
			if strings.Contains(n, "restart") {
				t.Errorf("reload note %q", n)
			}
		}
	}

	// An instance that is not announced, added then changed: no route
	// is sent again, no session flaps.
	routeLines := strings.Count(nd.Log(), "bgp route")
	reload(reloadConf(dirAddrs[0], 10, reloadPeers[0])+vi2(100), "+ vrrp_instance VI_2")
	reload(reloadConf(dirAddrs[0], 10, reloadPeers[0])+vi2(120), "* vrrp_instance VI_2")
	time.Sleep(time.Second)
	if n := strings.Count(nd.Log(), "bgp route"); n != routeLines {
		t.Errorf("reloads of an instance not announced changed %d routes:\n%s", n-routeLines, nd.Log())
	}
	if _, s, info := b1.session(); s != since1 || info != "Established" {
		t.Errorf("BIRD 1's session: %s since %s, before the reloads of VI_2 since %s: it flapped", info, s, since1)
	}

	reload(reloadConf(dirAddrs[0], 10, reloadPeers...), "+ bgp neighbor "+reloadPeers[1])
	took := waitFor(t, 30*time.Second, "BIRD 2's route to the VIP via dir1 after the reload added it", hopsAre(b2.host, vrrpVIP, dirAddrs[0]))
	t.Logf("FIGURE reload adding a neighbour: BIRD learned the VIP %v after the reload", took.Round(time.Millisecond))
	if _, s, info := b1.session(); s != since1 || info != "Established" {
		t.Errorf("BIRD 1's session: %s since %s, before the reload since %s: it flapped", info, s, since1)
	}
	_, since2, _ := b2.session()

	reload(reloadConf(dirAddrs[0], 10, reloadPeers[1]), "- bgp neighbor "+reloadPeers[0])
	waitFor(t, 20*time.Second, "BIRD 1's session to close", func() bool { return !b1.established() })
	waitFor(t, 20*time.Second, "BIRD 1's route to go", hopsAre(b1.host, vrrpVIP))
	if _, s, info := b2.session(); s != since2 || info != "Established" {
		t.Errorf("BIRD 2's session: %s since %s, before the reload since %s: it flapped", info, s, since2)
	}

	reload(reloadConf(dirAddrs[0], 50, reloadPeers[1]), "~ bgp announcements")
	waitFor(t, 20*time.Second, "BIRD 2's route with MED 50", func() bool { return strings.Contains(b2.route(), "BGP.med: 50") })
	if _, s, info := b2.session(); s != since2 || info != "Established" {
		t.Errorf("BIRD 2's session: %s since %s, before the MED change since %s: it flapped", info, s, since2)
	}

	reload(reloadConf("10.1.0.99", 50, reloadPeers[1]), "~ bgp speaker")
	waitFor(t, 30*time.Second, "BIRD 2's session to start again under the new router id", func() bool {
		_, s, info := b2.session()
		return info == "Established" && s != since2
	})
	waitFor(t, 20*time.Second, "BIRD 2's route to the VIP via dir1 after the restart", hopsAre(b2.host, vrrpVIP, dirAddrs[0]))
	if !strings.Contains(nd.Log(), "restarting the BGP server") {
		t.Errorf("the BGP server restart was not logged")
	}
	if st, err := nd.State(context.Background(), "VI_1"); err != nil || st != "MASTER" {
		t.Errorf("VI_1 after the reloads: %s, %v; want MASTER throughout", st, err)
	}
	if strings.Contains(nd.Log(), "from=MASTER") {
		t.Errorf("VI_1 left MASTER during a reload")
	}
}
