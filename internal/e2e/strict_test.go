package e2e_test

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
)

// strictFile is one configuration of TestStrictAccept: instances each with
// its own VIP, all MASTER on a node alone.
type strictFile struct {
	name   string
	global []string
	vips   []strictVIP
}

type strictVIP struct {
	addr  netip.Addr
	extra []string // lines in its instance
	prio  int
	state string
	// answers is what keepalived.conf(5) says: accept mode on, or the
	// address owner.
	answers bool
}

var strictFiles = []strictFile{
	{"vrrp_strict", []string{"vrrp_strict"}, []strictVIP{
		{netip.MustParseAddr("192.168.1.111"), nil, 100, "BACKUP", false},
		{netip.MustParseAddr("192.168.1.112"), []string{"accept"}, 100, "BACKUP", true},
		{netip.MustParseAddr("192.168.1.113"), nil, 255, "MASTER", true},
	}},
	{"no_accept", nil, []strictVIP{
		{netip.MustParseAddr("192.168.1.114"), []string{"no_accept"}, 100, "BACKUP", false},
		{netip.MustParseAddr("192.168.1.115"), nil, 100, "BACKUP", true},
		{netip.MustParseAddr("192.168.1.116"), []string{"strict_mode"}, 100, "BACKUP", false},
	}},
}

func (f strictFile) conf() e2e.Conf {
	c := e2e.Conf{Global: f.global}
	for i, v := range f.vips {
		c.Instances = append(c.Instances, e2e.Instance{
			Name: fmt.Sprintf("VI_%d", i+1), State: v.state, Interface: "eth0", VRID: 60 + i, Priority: v.prio,
			AdvertInt: "0.1", Version: 3, Extra: v.extra, VIPs: []string{v.addr.String() + "/24"},
		})
	}
	return c
}

// reach is what the client gets from a VIP: ICMP echo and TCP port 80.
type reach struct{ ping, tcp bool }

func (e *env) reachVIP(addr netip.Addr) reach {
	_, err := e.net.Client.Run("ping", "-c", "1", "-W", "1", addr.String())
	body, terr := e.get(addr)
	return reach{ping: err == nil, tcp: terr == nil && body == "r1"}
}

// TestStrictAccept runs the same files on vigil and on keepalived 2.2.7
// (one node, every instance MASTER) and compares which VIPs answer ping and
// TCP from a client: without accept mode, below priority 255, both drop
// the traffic; with accept, or as address owner, both answer. vigil's drop
// rules live in table inet vigil_vrrp, and go with the daemon.
func TestStrictAccept(t *testing.T) {
	t.Parallel()
	for _, f := range strictFiles {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "strict", 1)
			e.servers()
			got := map[e2e.Kind]map[netip.Addr]reach{}
			for _, kind := range []e2e.Kind{e2e.Keepalived, e2e.Vigil} {
				nd := e.start(kind, 0, f.conf())
				for i := range f.vips {
					e.waitState(nd, fmt.Sprintf("VI_%d", i+1), "MASTER", 15*time.Second)
				}
				for _, v := range f.vips {
					e.waitHolds(e.node(0), v.addr, true, 15*time.Second)
				}
				// Concurrently: a dropped VIP costs its timeouts.
				got[kind] = map[netip.Addr]reach{}
				var mu sync.Mutex
				var wg sync.WaitGroup
				for _, v := range f.vips {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r := e.reachVIP(v.addr)
						mu.Lock()
						got[kind][v.addr] = r
						mu.Unlock()
					}()
				}
				wg.Wait()
				if kind == e2e.Vigil {
					out, _ := e.node(0).Run("nft", "list", "table", "inet", "vigil_vrrp")
					for _, v := range f.vips {
						if has := strings.Contains(out, v.addr.String()); has == v.answers {
							t.Errorf("vigil: table inet vigil_vrrp mentions %v: %v, want %v:\n%s", v.addr, has, !v.answers, out)
						}
					}
					st := status_(t, nd, "VI_1")
					if st.NoAccept == f.vips[0].answers || st.DroppingVIPs == f.vips[0].answers {
						t.Errorf("vigil status of VI_1: no_accept %v dropping %v", st.NoAccept, st.DroppingVIPs)
					}
				}
				if code, err := nd.Term(15 * time.Second); err != nil || code != 0 {
					t.Fatalf("%s: SIGTERM: exit %d, %v", kind, code, err)
				}
				for _, v := range f.vips {
					e.waitHolds(e.node(0), v.addr, false, 15*time.Second)
				}
			}
			if out, err := e.node(0).Run("nft", "list", "table", "inet", "vigil_vrrp"); err == nil {
				t.Errorf("table inet vigil_vrrp outlived vigil:\n%s", out)
			}
			for _, v := range f.vips {
				k, g := got[e2e.Keepalived][v.addr], got[e2e.Vigil][v.addr]
				t.Logf("%v %v: keepalived ping %v tcp %v, vigil ping %v tcp %v", v.addr, v.extra, k.ping, k.tcp, g.ping, g.tcp)
				if k != g {
					t.Errorf("%v: keepalived %+v, vigil %+v", v.addr, k, g)
				}
				if want := (reach{v.answers, v.answers}); g != want {
					t.Errorf("%v: vigil %+v, want %+v", v.addr, g, want)
				}
			}
		})
	}
}
