package vmtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lb/ipvs"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// directorConf is the seed's LVS-DR director (002) with IPVS as the data
// plane; sync goes into global_defs (lvs_sync_daemon), instSync into the
// vrrp_instance (the old lvs_sync_daemon_interface).
func directorConf(name string, master bool, sync, instSync string) string {
	state, prio := "BACKUP", 100
	if master {
		state, prio = "MASTER", 150
	}
	return fmt.Sprintf(`global_defs {
	router_id %s
	lvs_backend ipvs
	%s
}
vrrp_instance VI_1 {
	state %s
	interface eth0
	virtual_router_id 51
	priority %d
	advert_int 1
	%s
	virtual_ipaddress {
		%s
	}
}
virtual_server %s 80 {
	lb_algo rr
	lb_kind DR
	protocol TCP
	real_server 192.168.118.131 80 {
		weight 1
	}
	real_server 192.168.118.133 80 {
		weight 1
	}
}
`, name, sync, state, prio, instSync, vip, vip)
}

// flow is one long-lived client connection: a line every 100 ms, echoed by
// the real server that holds it.
type flow struct {
	server   string
	replies  int
	broken   error
	maxStall time.Duration
}

func runFlow(c net.Conn, stop <-chan struct{}, f *flow) {
	defer c.Close()
	r := bufio.NewReader(c)
	last := time.Now()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(c, "ping %d\n", i); err != nil {
			f.broken = err
			return
		}
		line, err := r.ReadString('\n')
		if err != nil {
			f.broken = err
			return
		}
		server, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		if rest != fmt.Sprintf("ping %d", i) || (f.server != "" && server != f.server) {
			f.broken = fmt.Errorf("reply %q from %s, want ping %d from %s", line, server, i, f.server)
			return
		}
		f.server = server
		f.replies++
		now := time.Now()
		f.maxStall = max(f.maxStall, now.Sub(last))
		last = now
	}
}

func daemons(t *testing.T, h *lab.Host) []ipvs.SyncDaemon {
	t.Helper()
	var ds []ipvs.SyncDaemon
	if err := h.Do(func() error {
		c, err := ipvs.DialSync()
		if err != nil {
			return err
		}
		defer c.Close()
		ds, err = c.Daemons()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ds
}

func states(ds []ipvs.SyncDaemon) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%v %s %d", d.State, d.Interface, d.SyncID))
	}
	slices.Sort(out)
	return out
}

// TestKernelSyncDaemonFailover: two LVS-DR directors running vigil (the
// seed's shape), a client holding 20 connections through the VIP; the master
// director dies (vigil killed with SIGKILL, its link down). With
// lvs_sync_daemon (on the master; the backup has the seed's old
// lvs_sync_daemon_interface) the backup director's kernel already has every
// connection and all of them survive; without it the new master's IPVS has
// no entry for them and they break.
func TestKernelSyncDaemonFailover(t *testing.T) {
	netnstest.IPVS(t)
	t.Parallel()
	for _, tc := range []struct {
		name, sync string
	}{
		{"lvs_sync_daemon", "lvs_sync_daemon eth0 VI_1"},
		{"without", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			broken, stall := failover(t, tc.sync)
			msg := fmt.Sprintf("%s: %d of 20 connections broken by the failover", tc.name, broken)
			if broken < 20 {
				msg += fmt.Sprintf("; longest stall of a surviving one %v", stall.Round(10*time.Millisecond))
			}
			t.Log(msg)
			if tc.sync != "" && broken != 0 {
				t.Errorf("with lvs_sync_daemon %d connections broke", broken)
			}
			if tc.sync == "" && broken == 0 {
				t.Errorf("without lvs_sync_daemon no connection broke: the test does not show what sync does")
			}
		})
	}
}

func failover(t *testing.T, syncLine string) (int, time.Duration) {
	l := netnstest.New(t, "ipvssync")
	lan := func(addr string) lab.Iface {
		return lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{addr + "/24"}}
	}
	client := netnstest.AddHost(t, l, "client", lan("192.168.118.50"))
	dir1 := netnstest.AddHost(t, l, "dir1", lan("192.168.118.128"))
	dir2 := netnstest.AddHost(t, l, "dir2", lan("192.168.118.130"))
	realServer(t, netnstest.AddHost(t, l, "web1", lan("192.168.118.131")), "web1")
	realServer(t, netnstest.AddHost(t, l, "web2", lan("192.168.118.133")), "web2")
	a1, a2 := addrs(t, dir1), addrs(t, dir2)

	instSync := ""
	if syncLine != "" {
		instSync = "lvs_sync_daemon_interface eth0"
	}
	n1 := vigilNode(t, dir1, directorConf("dir1", true, syncLine, ""))
	waitFor(t, "dir1 holds the VIP", 30*time.Second, func() (bool, error) { return a1.Has("eth0", vip) })
	n2 := vigilNode(t, dir2, directorConf("dir2", false, "", instSync))
	if err := n2.WaitState("VI_1", "BACKUP", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if syncLine != "" {
		// keepalived's roles: master daemon on the MASTER, backup on the
		// BACKUP; the sync id defaults to the instance's VRID.
		waitFor(t, "sync daemons", 20*time.Second, func() (bool, error) {
			return slices.Equal(states(daemons(t, dir1)), []string{"master eth0 51"}) &&
				slices.Equal(states(daemons(t, dir2)), []string{"backup eth0 51"}), nil
		})
		out, err := dir2.Run("ipvsadm", "-L", "--daemon")
		if err != nil || !strings.Contains(out, "backup sync daemon (mcast=eth0, syncid=51,") {
			t.Fatalf("ipvsadm -L --daemon on dir2: %q %v", out, err)
		}
		// A reload with another sync id restarts dir2's daemon with it,
		// in its state, and one back restores it (no VRRP transition).
		for _, c := range []struct{ global, inst, want string }{
			{"lvs_sync_daemon eth0 VI_1 id 52", "", "backup eth0 52"},
			{"", instSync, "backup eth0 51"},
		} {
			if err := n2.WriteConfig(directorConf("dir2", false, c.global, c.inst)); err != nil {
				t.Fatal(err)
			}
			res, err := api.NewClient(n2.Socket()).Reload(context.Background())
			if err != nil || !res.Applied || !slices.ContainsFunc(res.Changes, func(s string) bool { return strings.HasPrefix(s, "~ lvs_sync_daemon") }) {
				t.Fatalf("reload of dir2 (%s): %+v %v", c.want, res, err)
			}
			waitFor(t, "dir2's sync daemon "+c.want, 10*time.Second, func() (bool, error) {
				return slices.Equal(states(daemons(t, dir2)), []string{c.want}), nil
			})
		}
		if st, err := n2.State(context.Background(), "VI_1"); err != nil || st != "BACKUP" {
			t.Fatalf("dir2 after the reloads: %s %v", st, err)
		}
	} else if ds := daemons(t, dir2); len(ds) != 0 {
		t.Fatalf("sync daemons without lvs_sync_daemon: %v", states(ds))
	}

	const n = 20
	flows := make([]*flow, n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range flows {
		var c net.Conn
		if err := client.Do(func() error {
			var err error
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(vip, 80).String(), 5*time.Second)
			return err
		}); err != nil {
			close(stop)
			t.Fatal(err)
		}
		flows[i] = &flow{}
		wg.Add(1)
		go func() { defer wg.Done(); runFlow(c, stop, flows[i]) }()
	}
	stopped := false
	stopFlows := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopFlows()

	if syncLine != "" {
		// The backup's kernel learns the connections from the master's
		// sync messages (sent after a few packets, flushed within 2 s).
		waitFor(t, "dir2's IPVS holds the 20 connections", 30*time.Second, func() (bool, error) {
			out, err := dir2.Run("ipvsadm", "-L", "-n", "-c")
			return strings.Count(out, "ESTABLISHED") >= n, err
		})
	} else {
		time.Sleep(2 * time.Second)
	}

	// The master director dies.
	n1.Kill()
	if err := dir1.SetLink("eth0", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dir2 takes the VIP", 30*time.Second, func() (bool, error) { return a2.Has("eth0", vip) })
	if syncLine != "" {
		waitFor(t, "dir2's sync daemon becomes master", 10*time.Second, func() (bool, error) {
			return slices.Equal(states(daemons(t, dir2)), []string{"master eth0 51"}), nil
		})
	}
	time.Sleep(4 * time.Second)
	stopFlows()

	broken := 0
	var stall time.Duration
	servers := map[string]int{}
	for i, f := range flows {
		servers[f.server]++
		if f.broken != nil {
			broken++
			t.Logf("connection %d (%s, %d replies): %v", i, f.server, f.replies, f.broken)
			continue
		}
		stall = max(stall, f.maxStall)
	}
	if servers["web1"] == 0 || servers["web2"] == 0 {
		t.Errorf("rr spread the connections %v", servers)
	}
	return broken, stall
}
