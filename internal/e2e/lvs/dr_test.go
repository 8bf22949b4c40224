package lvs

import (
	"bufio"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// The seed tutorial (002) as written: LVS direct routing. One LAN
// (ens160) holds the client, the two directors and the two nginx real
// servers, which hold the VIP on lo with arp_ignore=1 / arp_announce=2; a
// second link between the directors is the tutorial's ens224
// (lvs_sync_daemon_interface). No interface is renamed. Here the data plane
// is nftables (the kernel has no IPVS): a netdev ingress table forwarding to
// the real servers' MACs.
const (
	drWeb1 = "192.168.118.131"
	drWeb2 = "192.168.118.129"
)

var drDirs = []string{"192.168.118.128", "192.168.118.130"}

// seedScript is the tutorial's /etc/keepalived/test.sh for MISC_CHECK
// (nmap), line breaks restored and the command substitution's missing ')'
// put back.
const seedScript = `#!/bin/bash
# Check for correct number of parameters (host and port)
if [ $# -ne 2 ]; then
echo "Error: Usage: $0 <host> <port>"
exit 1
fi
host="$1"
port="$2"
# Perform the nmap scan and parse the result
nmap_result=$(nmap -p "$port" "$host" | grep "$2\/tcp" | awk '{print $2}')
# Check the result
if [[ "$nmap_result" == "open" ]]; then
exit 0
else
exit 1
fi
`

// seedDR is the tutorial's keepalived.conf (line breaks restored). Each
// real server carries the three checkers the tutorial shows one after the
// other: its TCP_CHECK, HTTP_GET with the digest genhash prints, and
// MISC_CHECK running script (the tutorial's test.sh).
func seedDR(routerID, state string, priority int, script string) string {
	real := func(addr string) string {
		return fmt.Sprintf(`real_server %s 80 {
weight 1
TCP_CHECK {
connect_timeout 3
retry 3
delay_before_retry 3
connect_port 80
}
HTTP_GET {
url {
path /
digest %x
status_code 200
}
connect_timeout 3
retry 3
delay_before_retry 3
}
MISC_CHECK {
misc_path "%s %s 80"
misc_timeout 3
}
}
`, addr, md5.Sum([]byte(pageOf(addr))), script, addr)
	}
	return fmt.Sprintf(`! Configuration File for keepalived
global_defs {
router_id %s
}
vrrp_instance VI_1 {
state %s
interface ens160
lvs_sync_daemon_interface ens224
virtual_router_id 51
priority %d
advert_int 1
authentication {
auth_type PASS
auth_pass 1111
}
virtual_ipaddress {
192.168.118.110
}
}
virtual_server 192.168.118.110 80 {
delay_loop 6
lb_algo rr
lb_kind DR
#persistence_timeout 50
protocol TCP
%s%s}
`, routerID, state, priority, real(drWeb1), real(drWeb2))
}

func (d *director) scriptPath() string { return filepath.Join(d.dir, "test.sh") }

// writeScript installs the tutorial's MISC_CHECK script.
func (d *director) writeScript() {
	d.t.Helper()
	if err := os.WriteFile(d.scriptPath(), []byte(seedScript), 0o755); err != nil {
		d.t.Fatal(err)
	}
}

type drTopo struct {
	l      *lab.Lab
	client *client
	dirs   []*director
	web    map[string]*webServer
}

func newDRTopo(t testing.TB) *drTopo {
	t.Helper()
	netnstest.RequireCommand(t, "nginx")
	netnstest.RequireCommand(t, "nmap")
	bin := netnstest.VigilBinary(t)
	l := netnstest.New(t, "lvsdr")
	tp := &drTopo{l: l, web: map[string]*webServer{}}
	ch := netnstest.AddHost(t, l, "client", lab.Iface{Name: "ens160", LAN: "lan", Addrs: []string{clientIP + "/24"}})
	tp.client = newClient(ch)
	hosts := []*lab.Host{ch}
	for i, a := range drDirs {
		h := netnstest.AddHost(t, l, fmt.Sprintf("dir%d", i+1),
			lab.Iface{Name: "ens160", LAN: "lan", Addrs: []string{a + "/24"}},
			lab.Iface{Name: "ens224", LAN: "hb", Addrs: []string{fmt.Sprintf("192.168.40.%d/24", 128+2*i)}})
		d := &director{t: t, host: h, bin: bin, dir: t.TempDir()}
		t.Cleanup(d.dumpOnFailure)
		tp.dirs = append(tp.dirs, d)
		// The tutorial's MISC_CHECK script runs nmap, which looks the real
		// server's name up: the director's /etc/hosts names them, as a
		// director's would (the host's resolver is out of the namespace's
		// reach: 13 s per scan, past misc_timeout).
		etc := filepath.Join("/etc/netns", h.NS())
		if err := os.MkdirAll(etc, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(etc) })
		names := "127.0.0.1 localhost\n" + drWeb1 + " web1\n" + drWeb2 + " web2\n"
		if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(names), 0o644); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	for i, a := range []string{drWeb1, drWeb2} {
		h := netnstest.AddHost(t, l, fmt.Sprintf("web%d", i+1), lab.Iface{Name: "ens160", LAN: "lan", Addrs: []string{a + "/24"}})
		// The tutorial's lvs_dr_rs script.
		mustRun(t, h, "ip", "addr", "add", vip+"/32", "dev", "lo", "label", "lo:10")
		for _, k := range []string{"lo", "ens160", "all"} {
			if err := h.Sysctl("net/ipv4/conf/"+k+"/arp_ignore", "1"); err != nil {
				t.Fatal(err)
			}
			if err := h.Sysctl("net/ipv4/conf/"+k+"/arp_announce", "2"); err != nil {
				t.Fatal(err)
			}
		}
		tp.web[a] = newWebServer(t, h, a)
		hosts = append(hosts, h)
	}
	netnstest.WaitLANReady(t, l, hosts...)
	for _, w := range tp.web {
		w.start()
	}
	return tp
}

// drDests reads the DR table's destinations of the VIP's service over
// netlink: address:port -> weight.
func drDests(t testing.TB, h *lab.Host) (map[string]int, bool) {
	var out map[string]int
	var ok bool
	err := h.Do(func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		set, err := c.GetSetByName(&nftables.Table{Name: "vigil_dr", Family: nftables.TableFamilyNetdev}, "svc_tcp_192_168_118_110_80_dests")
		if err != nil {
			if errors.Is(err, syscall.ENOENT) || strings.Contains(err.Error(), "no such file") {
				return nil
			}
			return err
		}
		els, err := c.GetSetElements(set)
		if err != nil {
			return err
		}
		ok = true
		out = map[string]int{}
		for _, e := range els {
			if len(e.Key) == 8 && len(e.Val) == 4 {
				out[fmt.Sprintf("%s:%d", net.IP(e.Key[:4]), int(e.Key[4])<<8|int(e.Key[5]))] = int(e.Val[0])<<24 | int(e.Val[1])<<16 | int(e.Val[2])<<8 | int(e.Val[3])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, ok
}

// who asks /who on a connection: the server's answer "SERVER_ADDR CLIENT".
// The deadline outlasts a failover (advert_int 1: about 3.6 s of master
// down interval, then TCP's retransmission back-off): a connection counts
// as broken when it fails, not when it waits.
func who(c net.Conn, br *bufio.Reader) (string, error) {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET /who HTTP/1.1\r\nHost: vip\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// flow is one long-lived connection sending a request every 100 ms.
type flow struct {
	mu      sync.Mutex
	err     error
	last    time.Time
	maxGap  time.Duration
	answers int
	server  string // who answered last
}

// startFlows opens n long-lived connections from h to addr, each asking
// who served it every 100 ms until stop is closed (wg counts them); each
// flow records its error, longest gap between answers and answers.
func startFlows(t *testing.T, h *lab.Host, addr string, n int, stop <-chan struct{}, wg *sync.WaitGroup) []*flow {
	t.Helper()
	flows := make([]*flow, n)
	for i := range flows {
		var c net.Conn
		if err := h.Do(func() error {
			var err error
			c, err = net.DialTimeout("tcp", addr, 3*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		f := &flow{last: time.Now()}
		flows[i] = f
		br := bufio.NewReader(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				server, err := who(c, br)
				now := time.Now()
				f.mu.Lock()
				if err != nil {
					f.err = err
					f.mu.Unlock()
					return
				}
				f.maxGap = max(f.maxGap, now.Sub(f.last))
				f.last = now
				f.answers++
				f.server = server
				f.mu.Unlock()
			}
		}()
	}
	return flows
}

func TestSeedDRPairFailover(t *testing.T) {
	t.Parallel()
	tp := newDRTopo(t)
	master, backup := tp.dirs[0], tp.dirs[1]
	for _, d := range tp.dirs {
		d.writeScript()
	}
	master.writeConfig(seedDR("LVS_1", "MASTER", 100, master.scriptPath()))
	backup.writeConfig(seedDR("LVS_2", "BACKUP", 90, backup.scriptPath()))
	backup.start()
	master.start()
	waitFor(t, patience, "MASTER and BACKUP settle", func() (bool, string) {
		m, b := master.mustStatus(), backup.mustStatus()
		return states(m) == "MASTER" && states(b) == "BACKUP", states(m) + " / " + states(b)
	})
	for _, d := range tp.dirs {
		waitFor(t, patience, d.host.Name()+": both real servers in the DR table", func() (bool, string) {
			dests, ok := drDests(t, d.host)
			return ok && dests[drWeb1+":80"] == 1 && dests[drWeb2+":80"] == 1, fmt.Sprint(dests)
		})
		waitChecked(t, d, patience)
	}
	if out, err := master.vigil("check", "-f", master.confPath()); err != nil {
		t.Errorf("vigil check of the seed's configuration: %v\n%s", err, out)
	}

	// Requests reach both servers; each sees the client's own address as
	// the source and the VIP as its local address.
	per := map[string]int{}
	for range 20 {
		body, err := tp.client.getURL("http://" + vip + "/who")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(body)
		if len(f) != 2 || f[0] != vip || f[1] != clientIP {
			t.Fatalf("/who answered %q: want %q", body, vip+" "+clientIP)
		}
		p, err := tp.client.getURL("http://" + vip + "/")
		if err != nil {
			t.Fatal(err)
		}
		per[p]++
	}
	if per[drWeb1] == 0 || per[drWeb2] == 0 {
		t.Errorf("40 new connections reached %v, want both real servers", per)
	}
	t.Logf("new connections through the VIP: %v; source and destination unchanged at the real servers", per)

	// Long-lived connections, each asking every 100 ms.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	flows := startFlows(t, tp.client.host, vip+":80", 30, stop, &wg)
	time.Sleep(2 * time.Second)
	// The master dies: vigil killed with SIGKILL and the host unplugged at
	// once (a SIGKILL alone leaves its VIP and table forwarding).
	master.kill9()
	for _, ifc := range []string{"ens160", "ens224"} {
		if err := master.host.SetCable(ifc, false); err != nil {
			t.Fatal(err)
		}
	}
	took := waitFor(t, patience, "BACKUP becomes MASTER", func() (bool, string) {
		s := backup.mustStatus()
		return states(s) == "MASTER", states(s)
	})
	// Every connection answers again through the new MASTER (TCP's
	// retransmissions back off: 1 s, 2 s, 4 s ...), or fails.
	became := time.Now()
	waitFor(t, patience, "every long-lived connection answers after the failover or fails", func() (bool, string) {
		waiting := 0
		for _, f := range flows {
			f.mu.Lock()
			if f.err == nil && f.last.Before(became) {
				waiting++
			}
			f.mu.Unlock()
		}
		return waiting == 0, fmt.Sprintf("%d still waiting", waiting)
	})
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	broken, longest := 0, time.Duration(0)
	var errs []string
	for _, f := range flows {
		if f.err != nil {
			broken++
			errs = append(errs, errString(f.err))
		}
		longest = max(longest, f.maxGap)
	}
	t.Logf("failover: BACKUP MASTER %v after the SIGKILL; %d of %d long-lived connections survived, longest stall %v %v",
		took.Round(time.Millisecond), len(flows)-broken, len(flows), longest.Round(time.Millisecond), errs)
	if broken > 0 {
		t.Errorf("%d of %d established connections broke in the failover: %v", broken, len(flows), errs)
	}

	// A dead real server leaves the pool (the tutorial's checks, as
	// written: about 10-20 s), after which no request fails.
	tp.web[drWeb2].stop()
	waitFor(t, patience, "web2 leaves the new MASTER's pool", func() (bool, string) {
		dests, ok := drDests(t, backup.host)
		_, in := dests[drWeb2+":80"]
		return ok && !in, fmt.Sprint(dests)
	})
	per = map[string]int{}
	var failed []string
	for range 20 {
		p, err := tp.client.getURL("http://" + vip + "/")
		if err != nil {
			failed = append(failed, errString(err))
			continue
		}
		per[p]++
	}
	if len(failed) > 0 || per[drWeb1] != 20 {
		t.Errorf("after web2 left the pool: %v, failed %v", per, failed)
	}
	keys := make([]string, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("after web2 died and left the pool: %v", per)
}
